"""Reliability: every bad input gets a clear answer, saved work is never lost, runs repeat exactly.

A learner's mistakes go in through the public API (``nc.Sequential``/``nc.Model``, layers,
``compile``/``fit``/``evaluate``/``predict``, ``nc.load_model``, the ``npconv.data`` loaders), and each
comes back as a standard error whose message names the argument, what was expected, what was
received and how to fix it. This file is the checklist; a case tested elsewhere points there.

=================================================  ==================================================
case                                               test
=================================================  ==================================================
**Arrays**
model for (64,64,3) fed (64,64,1) / (32,32,3) /    test_models::test_input_shape_errors_name_the_expected_shape_and_the_fix,
a single 3-D image                                 test_wrong_input_shapes_name_expected_received_and_fix
wrong rank into a layer (Dense on images, conv     test_layers::test_dense_on_images_suggests_flatten,
on 2-D)                                            test_layers::test_bad_arguments_are_named, test_layer_rank_errors
kernel larger than its (padded) input, at build    test_kernel_or_pool_larger_than_input_names_the_layer,
                                                   test_layers::test_kernel_larger_than_input_names_the_layer,
                                                   test_conv::test_bad_input_is_explained, test_pool::test_bad_input_is_explained
object / string / complex arrays, ragged lists     test_non_numeric_inputs
NaN or infinity in x, in y                         test_non_finite_inputs_and_labels, test_models::test_training_data_errors
labels out of range (7 for 6 classes, -1, 1.5)     test_labels_out_of_range_or_of_the_wrong_width,
                                                   test_losses::test_sparse_labels_must_be_class_indices
labels of the wrong width (one-hot 4 of 6,         test_labels_out_of_range_or_of_the_wrong_width,
integers for categorical CE, 2 columns for BCE)    test_losses::test_categorical_width_mismatch_suggests_the_fix
len(x) != len(y), empty x, empty y                 test_sample_count_mismatch_and_empty_data
fit/evaluate before compile with integer labels    test_fit_before_compile_says_compile (gap fixed)
**Layer and compile arguments**
Conv2D(0, 3), Dense(0), strides 0, pool 0,         test_zero_or_negative_sizes_are_refused_at_construction,
Dropout(1.5)                                       test_layers::test_bad_arguments_are_named
unknown padding / activation / optimizer /         test_unknown_names_list_the_valid_choices,
loss / metric (lists the valid ones)               test_models::test_unknown_names_list_the_valid_ones
batch_size=0, epochs=-1/0/1.5, initial_epoch       test_bad_fit_arguments (epochs, initial_epoch,
out of range, validation_split=1.5, verbose=5,     verbose, callbacks, validation_data: gaps fixed)
callbacks not a list, validation_data of 3
final activation that does not fit the loss        test_models::test_loss_and_last_activation_must_fit_together
**Training going wrong**
update makes weights inf at epoch 2 batch 3        test_divergence_at_epoch_2_batch_3_keeps_the_last_good_weights
loss NaN at epoch 2 batch 3                        test_nan_loss_at_epoch_2_batch_3_names_it
huge learning rate on large inputs                 test_callbacks::test_divergence_raises_and_keeps_the_last_good_weights
**Files**
missing model path, folder instead of file         test_missing_model_paths
text file, truncated .npz, plain .npz              test_not_a_model_file, test_saving::test_bad_files_get_clear_errors
tampered JSON config / class / kwargs / version    test_tampered_model_files, test_saving::test_tampered_configs_are_refused
.npz with a pickled object: refused, never run     test_pickled_objects_are_never_loaded (gap: message fixed)
.npz missing a weight, weight of other shape,      test_weights_missing_or_damaged, test_saving::test_weights_only_round_trip_and_mismatch
int / text / NaN weights (gap fixed)
damaged optimizer state or compile settings        test_tampered_model_files (gap fixed)
h5: not HDF5, truncated, no keys, empty (gap       test_h5_errors, test_data_h5::test_text_file_renamed_h5,
fixed), mismatched lengths, wrong rank, floats     test_data_h5::test_truncated_hdf5, test_data_h5::test_missing_keys_lists_found_and_expected,
                                                   test_data_h5::test_mismatched_lengths, test_data_h5::test_wrong_rank,
                                                   test_data_h5::test_non_integer_labels
image folder: empty, only .txt, empty              test_image_folder_errors, test_data_folders::test_layout_errors
sub-folders, a path that is a file
corrupt JPEG / non-image skipped, each named       test_corrupt_jpeg_is_skipped_with_a_warning_naming_it,
                                                   test_data_folders::test_loads_classes_in_sorted_order_and_warns_once_naming_skipped_files
CLI: one line on stderr, exit 1/2, --debug         test_cli::test_errors_are_one_line, test_cli::test_usage_errors_exit_2_and_debug_shows_the_traceback
**Saved work is never lost**
crash mid-write (save)                             test_saving::test_a_crash_mid_write_leaves_the_old_file_intact
full disk (ENOSPC) mid-write: save, save_weights,  test_full_disk_mid_write_leaves_the_previous_file,
ModelCheckpoint; first save to a full disk         test_full_disk_on_a_first_save_leaves_nothing
Ctrl-C: last finished batch's weights, history     test_callbacks::test_ctrl_c_stops_after_the_batch_and_returns_the_history,
                                                   test_callbacks::test_a_real_sigint_is_deferred_to_the_end_of_the_batch
ModelCheckpoint resume after a crash, bit for bit  test_checkpoint_resume_after_a_crash_is_bit_identical (gap fixed:
(fresh random state, as in a new process)          per-epoch generators derived from (seed, epoch, updates)),
                                                   test_two_short_fits_do_not_repeat_one_epoch
**Runs repeat exactly**
seeded fits with augmentation, Dropout,            test_seeded_fits_are_bit_identical_and_other_seeds_differ,
validation_split; another seed differs             test_models::test_seeded_runs_are_bit_identical
**Kernels (hypothesis)**
vectorised == loop tier over random shapes         test_conv::test_forward_and_backward_equal_the_course_loops,
                                                   test_pool::test_forward_and_backward_equal_the_course_loops
numerical gradients over random shapes, strides    test_conv2d_gradients_on_random_geometry,
and paddings                                       test_pool2d_gradients_on_random_geometry
=================================================  ==================================================

Left uncovered here: ``npconv.functional`` backwards given a ``dout`` of the wrong shape fail inside
NumPy (``matmul: ... mismatch``) instead of naming ``dout``; kernels accept an empty batch. Exact
resume covers the model, the optimizer and the package generator; layers given their own ``seed=``
and the counters of ``EarlyStopping``/``ReduceLROnPlateau`` start afresh. Boolean inputs are taken as
0/1 on purpose. The CLI's one-line errors are its own tests' (``tests/test_cli.py``).
"""
from __future__ import annotations

import errno
import io
import json
import pathlib

import h5py
import numpy as np
import pytest
from hypothesis import assume, given, settings
from hypothesis import strategies as st
from PIL import Image

import npconv as nc
from npconv import callbacks as C
from npconv import layers as L
from npconv import saving
from npconv.data import SkippedFilesWarning, load_h5, load_image_folder
from npconv.errors import DataError, ModelFileError, ShapeError, TrainingDivergedError
from npconv.functional import conv2d_backward, conv2d_forward, pool2d_backward, pool2d_forward
from npconv.gradcheck import gradcheck


def says(exc_info, *parts):
    """The error's message contains every one of ``parts`` (plain substrings, not patterns)."""
    message = str(exc_info.value)
    missing = [p for p in parts if p not in message]
    assert not missing, f"{missing} not in: {message}"


def signs_like(k=6, shape=(16, 16, 3)):
    """A small SIGNS-like classifier: images ``shape`` -> ``k`` softmax classes."""
    nc.utils.set_random_seed(0)
    model = nc.Sequential([L.Conv2D(2, 3, activation="relu", input_shape=shape), L.MaxPooling2D(2),
                           L.Flatten(), L.Dense(k, activation="softmax")])
    model.compile(optimizer="adam", loss="sparse_categorical_crossentropy", metrics=["accuracy"])
    return model


X = np.zeros((4, 16, 16, 3), np.float32)
Y = np.array([0, 1, 2, 5])


# ============================================================================ arrays

@pytest.mark.parametrize("x, parts", [
    (np.zeros((2, 16, 16, 1)), ["(None, 16, 16, 3)", "(2, 16, 16, 1)", "3 channel(s)", "np.repeat"]),
    (np.zeros((2, 8, 8, 3)), ["(None, 16, 16, 3)", "(2, 8, 8, 3)", "Resize"]),
    (np.zeros((16, 16, 3)), ["(None, 16, 16, 3)", "(16, 16, 3)", "x[None]"]),
    (np.zeros((2, 16, 16)), ["(None, 16, 16, 3)", "(2, 16, 16)", "channel axis"]),
])
def test_wrong_input_shapes_name_expected_received_and_fix(x, parts):
    with pytest.raises(ShapeError) as info:
        signs_like().predict(x)
    says(info, "x: expected", *parts)


def test_layer_rank_errors():
    with pytest.raises(ShapeError) as info:
        nc.Sequential([L.Input((64, 64)), L.Conv2D(8, 3)])
    says(info, "conv2d", "(None, n_H, n_W, n_C)", "(None, 64, 64)")


@pytest.mark.parametrize("make, what, size", [(lambda: L.Conv2D(8, 9), "'conv2d' kernel", 9),
                                              (lambda: L.MaxPooling2D(5), "'max_pooling2d' pool", 5)])
def test_kernel_or_pool_larger_than_input_names_the_layer(make, what, size):
    with pytest.raises(ShapeError) as info:
        nc.Sequential([L.Input((4, 4, 3)), make()])
    says(info, what, "at most the padded input's 4 pixels", f"got {size}", "padding='same'")


@pytest.mark.parametrize("x, error, parts", [
    (np.array([[1, "a"]], dtype=object), TypeError, ["x: expected a numeric array", "dtype object"]),
    (np.full((4, 16, 16, 3), "a"), TypeError, ["x: expected a numeric array", "<U1"]),
    (np.zeros((4, 16, 16, 3), complex), TypeError, ["x: expected a numeric array", "complex128"]),
    ([[1.0, 2.0], [3.0]], ValueError, ["x: expected", "ragged", "np.stack"]),
])
def test_non_numeric_inputs(x, error, parts):
    with pytest.raises(error) as info:
        signs_like().fit(x, Y, verbose=0)
    says(info, *parts)


@pytest.mark.parametrize("call", ["fit", "evaluate", "predict"])
def test_a_list_of_batch_pairs_names_what_npconv_takes_for_batches(call):
    """fit([(x1, y1), (x2, y2)]) is refused (Keras reads a list as several inputs), with the fix for
    batches, not the np.stack hint meant for ragged images."""
    batches = [(X[:2], Y[:2]), (X[2:], Y[2:])]
    model = signs_like()
    with pytest.raises(TypeError) as info:
        model.predict(batches) if call == "predict" else getattr(model, call)(batches, verbose=0)
    says(info, "x: expected", "a list of 2 (x, y) pairs", "several inputs",
         "nc.data.Dataset.from_tensor_slices((x, y)).batch(n)", "steps_per_epoch")
    assert "np.stack" not in str(info.value)
    # what the message says works
    model.fit(nc.data.Dataset.from_tensor_slices((X, Y)).batch(2), epochs=1, verbose=0)
    model.fit((batch for _ in range(3) for batch in batches), steps_per_epoch=2, epochs=1, verbose=0)


def test_non_finite_inputs_and_labels():
    model = signs_like()
    x = X.copy()
    x[1, 2, 3, 0] = np.nan
    x[2, 0, 0, 0] = np.inf
    with pytest.raises(ValueError) as info:
        model.fit(x, Y, verbose=0)
    says(info, "x: expected finite values", "2 NaN or infinite", "Clean")
    with pytest.raises(ValueError) as info:
        model.fit(X, np.array([0, 1, np.nan, 2]), verbose=0)
    says(info, "y: expected finite values", "1 NaN or infinite")


def test_finite_values_whose_sum_overflows_are_accepted():
    """check_finite clears data by its sum first: a sum that overflows must fall back, not refuse."""
    from npconv.errors import check_finite
    huge = np.full((4, 8), 3e38, np.float32)  # finite, but their float32 sum is inf
    check_finite(huge, "x")
    check_finite(np.array([np.finfo(np.float32).max, -np.finfo(np.float32).max] * 3, np.float32), "x")
    for bad in (np.inf, -np.inf, np.nan):
        values = huge.copy()
        values[2, 5] = bad
        with pytest.raises(ValueError, match="1 NaN or infinite"):
            check_finite(values, "x")


@pytest.mark.parametrize("loss, k, y, parts", [
    ("sparse_categorical_crossentropy", 6, np.array([0, 1, 7, 2]), ["[0, 6)", "got 7", "more units"]),
    ("sparse_categorical_crossentropy", 6, np.array([0, -1, 1, 2]), ["[0, 6)", "got -1", "re-index"]),
    ("categorical_crossentropy", 6, np.eye(4), ["one-hot labels of shape (4, 6)", "4 column(s)",
                                                 "outputs 6 classes", "to_categorical"]),
    ("categorical_crossentropy", 6, Y, ["(4, 6)", "1 column(s)", "sparse_categorical_crossentropy"]),
    ("binary_crossentropy", 1, np.zeros((4, 2)), ["shape (4, 1)", "(4, 2)", "one 0/1 value"]),
    ("binary_crossentropy", 1, np.array([0, 1, 2, 1]), ["in [0, 1]", "got 2.0", "0/1"]),
])
def test_labels_out_of_range_or_of_the_wrong_width(loss, k, y, parts):
    model = signs_like(k)
    if loss == "binary_crossentropy":
        model.pop()
        model.add(L.Dense(1, activation="sigmoid"))
    model.compile(optimizer="adam", loss=loss)
    for run in (lambda: model.fit(X, y, verbose=0), lambda: model.evaluate(X, y, verbose=0)):
        with pytest.raises(ValueError) as info:
            run()
        says(info, "y_true: expected", *parts)


def test_sample_count_mismatch_and_empty_data():
    model = signs_like()
    with pytest.raises(ValueError) as info:
        model.fit(X, Y[:3], verbose=0)
    says(info, "y: expected 4 labels", "shape (3,)", "same number of examples")
    with pytest.raises(ValueError) as info:
        model.fit(np.zeros((0, 16, 16, 3)), np.zeros(0), verbose=0)
    says(info, "x: expected at least one example", "(0, 16, 16, 3)", "data loading")
    with pytest.raises(ValueError) as info:
        model.fit(X, np.zeros(0), verbose=0)
    says(info, "y: expected 4 labels", "shape (0,)")
    with pytest.raises(ValueError) as info:
        model.predict(np.zeros((0, 16, 16, 3)))
    says(info, "at least one example")


def test_fit_before_compile_says_compile():
    # Integer labels used to reach the loss before the compile check: AttributeError 'loss'.
    model = nc.Sequential([L.Flatten(input_shape=(16, 16, 3)), L.Dense(6, activation="softmax")])
    for run in (lambda: model.fit(X, Y, verbose=0), lambda: model.evaluate(X, Y, verbose=0)):
        with pytest.raises(RuntimeError) as info:
            run()
        says(info, "compile the model first", "model.compile(")


# ============================================================================ arguments

@pytest.mark.parametrize("make, parts", [
    (lambda: L.Conv2D(0, 3), ["filters: expected a positive integer", "0"]),
    (lambda: L.Conv2D(8, -3), ["kernel_size: expected", ">= 1", "-3"]),
    (lambda: L.Conv2D(8, 3, strides=0), ["strides: expected", ">= 1"]),
    (lambda: L.Dense(0), ["units: expected a positive integer"]),
    (lambda: L.MaxPooling2D(0), ["pool_size: expected", ">= 1"]),
    (lambda: L.Dropout(1.5), ["rate: expected a fraction in [0, 1)", "1.5"]),
    (lambda: nc.Input(shape=(0, 3)), ["shape: expected positive integers", "(0, 3)"]),
])
def test_zero_or_negative_sizes_are_refused_at_construction(make, parts):
    with pytest.raises(ValueError) as info:
        make()
    says(info, *parts)


@pytest.mark.parametrize("make, parts", [
    (lambda: L.Conv2D(8, 3, padding="full"), ["padding: expected one of 'same', 'valid'", "full"]),
    (lambda: L.MaxPooling2D(2, padding="full"), ["padding: expected one of 'same', 'valid'"]),
    (lambda: L.Dense(1, activation="swish-ish"), ["activation: expected one of", "'relu'", "'softmax'",
                                                  "swish-ish"]),
    (lambda: signs_like().compile(optimizer="adamw?", loss="binary_crossentropy"),
     ["optimizer: expected one of 'adam', 'adamw', 'rmsprop', 'sgd'", "'adamw?'"]),
    (lambda: signs_like().compile(optimizer="adam", loss="mse?"),
     ["loss: expected one of 'binary_crossentropy', 'categorical_crossentropy', "
      "'sparse_categorical_crossentropy'", "'mse?'"]),
    (lambda: signs_like().compile(optimizer="adam", loss="mse"), ["loss: expected one of", "'mse'"]),
    (lambda: signs_like().compile(optimizer="adam", loss="binary_crossentropy", metrics=["f1"]),
     ["metric: expected one of", "'accuracy'", "'f1'"]),
])
def test_unknown_names_list_the_valid_choices(make, parts):
    with pytest.raises(ValueError) as info:
        make()
    says(info, *parts)


@pytest.mark.parametrize("kwargs, error, parts", [
    ({"batch_size": 0}, ValueError, ["batch_size: expected a positive integer", "0"]),
    ({"epochs": -1}, ValueError, ["epochs: expected a positive integer", "-1"]),
    ({"epochs": 0}, ValueError, ["epochs: expected a positive integer"]),
    ({"epochs": 1.5}, ValueError, ["epochs: expected a positive integer", "1.5"]),
    ({"epochs": 2, "initial_epoch": 4}, ValueError, ["initial_epoch: expected an integer from 0 to epochs=2",
                                                     "4", "fit(initial_epoch=2, epochs=4)"]),
    ({"initial_epoch": -1}, ValueError, ["initial_epoch", "-1"]),
    ({"validation_split": 1.5}, ValueError, ["validation_split: expected a fraction in [0, 1)", "1.5"]),
    ({"validation_split": 0.1}, ValueError, ["validation_split", "both parts of the 4 examples"]),
    ({"verbose": 5}, ValueError, ["verbose: expected 0", "5"]),
    ({"callbacks": C.History()}, TypeError, ["callbacks: expected a list", "History", "callbacks=[...]"]),
    ({"callbacks": [print]}, TypeError, ["callbacks: expected", "Callback"]),
    ({"validation_data": (X, Y, Y)}, TypeError, ["validation_data: expected a tuple (x_val, y_val)",
                                                 "a tuple of 3 items"]),
    ({"validation_data": (X[..., :1], Y)}, ShapeError, ["validation_data[0]: expected", "3 channel(s)"]),
])
def test_bad_fit_arguments(kwargs, error, parts):
    with pytest.raises(error) as info:
        signs_like().fit(X, Y, **{"verbose": 0, **kwargs})
    says(info, *parts)


# ============================================================================ training going wrong

def tiny_classifier(lr=0.05, m=32, seed=0):
    """Dense 5 -> 4 -> 1 sigmoid with SGD; 32 examples = 4 batches of 8."""
    nc.utils.set_random_seed(seed)
    rng = np.random.default_rng(seed)
    x = rng.standard_normal((m, 5)).astype(np.float32)
    y = (x[:, 0] > 0).astype(np.float32)[:, None]
    model = nc.Sequential([L.Dense(4, activation="relu", input_shape=(5,)), L.Dense(1, activation="sigmoid")])
    model.compile(optimizer=nc.optimizers.SGD(lr), loss="binary_crossentropy")
    return model, x, y


class Snapshots(C.Callback):
    """Keeps the weights after every finished batch, keyed by (epoch, batch), 1-based like messages."""

    def __init__(self, poison_after=None, poison=None):
        self.weights, self.poison_after, self.poison = {}, poison_after, poison

    def on_epoch_begin(self, epoch, logs=None):
        self.epoch = epoch + 1

    def on_batch_end(self, batch, logs=None):
        self.weights[self.epoch, batch + 1] = self.model.get_weights()
        if (self.epoch, batch + 1) == self.poison_after:
            self.poison(self.model)


def test_divergence_at_epoch_2_batch_3_keeps_the_last_good_weights():
    model, x, y = tiny_classifier()

    def explode(model):  # the next update (epoch 2, batch 3) sends every weight with a gradient to inf
        model.optimizer.learning_rate = 1e300

    spy = Snapshots(poison_after=(2, 2), poison=explode)
    with np.errstate(over="ignore", invalid="ignore"), pytest.raises(TrainingDivergedError) as info:
        model.fit(x, y, epochs=4, batch_size=8, shuffle=False, callbacks=[spy], verbose=0)
    says(info, "epoch 2, batch 3", "Lower the learning rate", "keeps the weights from before this batch")
    assert isinstance(info.value, FloatingPointError)
    assert max(spy.weights) == (2, 2)
    for kept, good in zip(model.get_weights(), spy.weights[2, 2]):
        np.testing.assert_array_equal(kept, good)


def test_nan_loss_at_epoch_2_batch_3_names_it():
    model, x, y = tiny_classifier()

    class FlakyLoss(nc.losses.BinaryCrossentropy):
        calls = 0

        def from_logits_and_grad(self, y_true, logits):
            FlakyLoss.calls += 1
            loss, grad = super().from_logits_and_grad(y_true, logits)
            return (np.nan, grad) if FlakyLoss.calls == 4 + 3 else (loss, grad)

    model.compile(optimizer=nc.optimizers.SGD(0.05), loss=FlakyLoss())
    spy = Snapshots()
    with pytest.raises(TrainingDivergedError) as info:
        model.fit(x, y, epochs=4, batch_size=8, shuffle=False, callbacks=[spy], verbose=0)
    says(info, "epoch 2, batch 3", "the loss is nan", "Lower the learning rate (now 0.05)")
    for kept, good in zip(model.get_weights(), spy.weights[2, 2]):
        np.testing.assert_array_equal(kept, good)


# ============================================================================ files

@pytest.fixture
def saved(tmp_path):
    """A trained small model saved to ``m.npz``; returns (model, path, arrays in the file)."""
    model = signs_like()
    model.fit(np.random.default_rng(0).random((8, 16, 16, 3)).astype(np.float32), np.arange(8) % 6,
              epochs=1, verbose=0)
    path = tmp_path / "m.npz"
    model.save(path)
    with np.load(path) as f:
        arrays = {k: f[k] for k in f.files}
    return model, path, arrays


def test_missing_model_paths(tmp_path):
    for path in (tmp_path / "nope.npz", tmp_path):
        with pytest.raises(FileNotFoundError) as info:
            nc.load_model(path)
        says(info, "path: expected an existing npconv model file", str(path), "Check the file name")


def test_not_a_model_file(tmp_path, saved):
    _, good, _ = saved
    text = tmp_path / "model.h5"
    text.write_text("model weights, trust me")
    with pytest.raises(ModelFileError) as info:
        nc.load_model(text)
    says(info, str(text), "not an npconv model file", "a text file", "model.save")
    assert "allow_pickle" not in str(info.value)  # never advise loading pickles
    cut = tmp_path / "cut.npz"
    cut.write_bytes(good.read_bytes()[:300])
    with pytest.raises(ModelFileError) as info:
        nc.load_model(cut)
    says(info, str(cut), "save the model again")


def rewrite(path, arrays, **changes):
    np.savez(path, **{**arrays, **changes})
    return path


def edit_config(arrays, edit):
    config = json.loads(str(arrays["__config__"]))
    edit(config)
    return np.array(json.dumps(config))


def test_tampered_model_files(tmp_path, saved):
    _, _, arrays = saved

    def set_filters(c):
        c["model"]["config"]["layers"][0]["config"]["filters"] = -2

    def foreign_optimizer(c):
        c["compile"]["optimizer"]["class_name"] = "Evil"

    cases = [
        ("json.npz", {"__config__": np.array(str(arrays["__config__"])[:-7])}, ["model description is damaged"]),
        ("filters.npz", {"__config__": edit_config(arrays, set_filters)},
         ["model description is damaged", "filters: expected a positive integer"]),
        ("version.npz", {"__npconv__": np.array("x")}, ["format version 'x'", "reads version 1"]),
        ("optimizer.npz", {"__config__": edit_config(arrays, foreign_optimizer)},
         ["training settings are damaged", "'Evil'", "compile=False"]),
        ("state.npz", {"optimizer/m/0": np.zeros(3, np.float32)},
         ["training settings are damaged", "optimizer state m/0: expected shape (3, 3, 3, 2)", "got shape (3,)"]),
        ("slots.npz", {"optimizer/v/1": None},
         ["training settings are damaged", "optimizer slot 'v'", "v/0 ... v/3", "['0', '2', '3']"]),
    ]
    for name, change, parts in cases:
        path = tmp_path / name
        np.savez(path, **{k: v for k, v in {**arrays, **change}.items() if v is not None})
        with pytest.raises(ModelFileError) as info:
            nc.load_model(path)
        says(info, str(path), *parts)
    # The weights of a file with damaged training settings still load, as the message says.
    assert nc.load_model(tmp_path / "optimizer.npz", compile=False).built


class _Armed:
    """Unpickling this creates ``marker``: what a malicious model file would do instead."""

    def __init__(self, marker):
        self.marker = marker

    def __reduce__(self):
        return pathlib.Path.touch, (pathlib.Path(self.marker),)


def test_pickled_objects_are_never_loaded(tmp_path, saved):
    _, _, arrays = saved
    marker = tmp_path / "code-ran"
    armed = np.array([_Armed(str(marker))], dtype=object)
    for key in ("conv2d/kernel", "__config__"):
        path = tmp_path / f"armed-{key.replace('/', '-')}.npz"
        np.savez(path, allow_pickle=True, **{**arrays, key: armed})
        with pytest.raises(ModelFileError) as info:
            nc.load_model(path)
        says(info, str(path), repr(key), "pickled Python objects", "never loads")
        with pytest.raises(ModelFileError):
            signs_like().load_weights(path)
        assert not marker.exists()
    with np.load(path, allow_pickle=True) as f:  # control: the file really was armed
        f["__config__"]
    assert marker.exists()


def test_weights_missing_or_damaged(tmp_path, saved):
    _, _, arrays = saved
    missing = tmp_path / "missing.npz"
    np.savez(missing, **{k: v for k, v in arrays.items() if k != "dense/bias"})
    with pytest.raises(ModelFileError) as info:
        nc.load_model(missing)
    says(info, str(missing), "missing ['dense/bias']", "different architecture")
    bias = arrays["dense/bias"]
    for name, value, got in [("int.npz", bias.astype(np.int64), "dtype int64"),
                             ("text.npz", np.array(["a"] * bias.size), "dtype <U1"),
                             ("nan.npz", np.full_like(bias, np.nan), "6 NaN or infinite")]:
        path = rewrite(tmp_path / name, arrays, **{"dense/bias": value})
        with pytest.raises(ModelFileError) as info:
            nc.load_model(path)
        says(info, f"weight dense/bias in {path}", "finite floating-point values", got, "damaged")
    path = rewrite(tmp_path / "shape.npz", arrays, **{"dense/bias": np.zeros(5, np.float32)})
    with pytest.raises(ShapeError) as info:
        nc.load_model(path)
    says(info, "weight dense/bias", "shape (6,)", "shape (5,)", "other layer sizes")


def test_h5_errors(tmp_path):
    with h5py.File(tmp_path / "nokeys.h5", "w") as f:
        f["images"] = np.zeros((2, 4, 4, 3), np.uint8)
    with pytest.raises(DataError) as info:
        load_h5(tmp_path / "nokeys.h5")
    says(info, "nokeys.h5", "train_set_x+train_set_y", "keys ['images']", "Write the images under")
    with h5py.File(tmp_path / "empty.h5", "w") as f:
        f["train_set_x"] = np.zeros((0, 4, 4, 3), np.uint8)
        f["train_set_y"] = np.zeros(0, np.int64)
    with pytest.raises(DataError) as info:
        load_h5(tmp_path / "empty.h5")
    says(info, "empty.h5[train_set_x]", "at least one image", "(0, 4, 4, 3)")
    with pytest.raises(FileNotFoundError) as info:
        load_h5(tmp_path / "nope.h5")
    says(info, "nope.h5", "NPCONV_DATA")


def test_image_folder_errors(tmp_path):
    (tmp_path / "empty").mkdir()
    with pytest.raises(DataError) as info:
        load_image_folder(tmp_path / "empty")
    says(info, "empty", "class sub-folders", "one sub-folder per class")
    (tmp_path / "txt" / "smiling").mkdir(parents=True)
    (tmp_path / "txt" / "smiling" / "readme.txt").write_text("not a photo")
    with pytest.warns(SkippedFilesWarning, match="readme.txt"), pytest.raises(DataError) as info:
        load_image_folder(tmp_path / "txt")
    says(info, "at least one readable image", "got none")
    with pytest.raises(FileNotFoundError) as info:
        load_image_folder(tmp_path / "txt" / "smiling" / "readme.txt")
    says(info, "readme.txt", "an existing folder of class sub-folders")


def test_corrupt_jpeg_is_skipped_with_a_warning_naming_it(tmp_path):
    for name in ("no", "yes"):
        (tmp_path / name).mkdir()
        Image.fromarray(np.full((10, 10, 3), 200, np.uint8)).save(tmp_path / name / "ok.jpg")
    buffer = io.BytesIO()
    Image.fromarray(np.zeros((10, 10, 3), np.uint8)).save(buffer, "JPEG")
    (tmp_path / "yes" / "cut.jpg").write_bytes(buffer.getvalue()[:60])
    with pytest.warns(SkippedFilesWarning) as record:
        data = load_image_folder(tmp_path, image_size=(8, 8))
    assert len(record) == 1 and str(tmp_path / "yes" / "cut.jpg") in str(record[0].message)
    assert data.x.shape == (2, 8, 8, 3) and list(data.y) == [0, 1]


# ============================================================================ saved work is never lost

def full_disk(file, arrays):
    file.write(b"PK\x03\x04 the first few kilobytes")
    raise OSError(errno.ENOSPC, "No space left on device")


@pytest.mark.parametrize("how", ["save", "save_weights", "checkpoint"])
def test_full_disk_mid_write_leaves_the_previous_file(tmp_path, monkeypatch, how):
    model, x, y = tiny_classifier()
    path = tmp_path / "keep.npz"
    write = {"save": model.save, "save_weights": model.save_weights,
             "checkpoint": lambda p: model.fit(x, y, epochs=1, verbose=0,
                                               callbacks=[C.ModelCheckpoint(p, save_best_only=False)])}[how]
    write(path)
    before = path.read_bytes()
    model.fit(x, y, epochs=1, verbose=0)  # something new to save
    monkeypatch.setattr(saving, "_write_npz", full_disk)
    with pytest.raises(OSError) as info:
        write(path)
    assert info.value.errno == errno.ENOSPC
    says(info, str(path), "No space left on device", "the previous file is unchanged", "Free some disk space")
    assert path.read_bytes() == before
    assert [p.name for p in tmp_path.iterdir()] == ["keep.npz"]
    monkeypatch.undo()
    nc.load_model(path) if how != "save_weights" else model.load_weights(path)


def test_full_disk_on_a_first_save_leaves_nothing(tmp_path, monkeypatch):
    model, _, _ = tiny_classifier()
    monkeypatch.setattr(saving, "_write_npz", full_disk)
    with pytest.raises(OSError) as info:
        model.save(tmp_path / "new.npz")
    says(info, "new.npz", "nothing was written")
    assert list(tmp_path.iterdir()) == []


def augmented_net():
    """Augmentation, batch norm, dropout and Adam: every kind of state a resume must bring back."""
    return nc.Sequential([
        L.RandomFlip("horizontal", input_shape=(8, 8, 1)), L.RandomTranslation(0.2, 0.2),
        L.Conv2D(3, 3, padding="same"), L.BatchNormalization(momentum=0.9), L.ReLU(),
        L.MaxPooling2D(2), L.Flatten(), L.Dropout(0.3), L.Dense(3, activation="softmax")])


def three_classes(m=40):
    rng = np.random.default_rng(1)
    x = rng.random((m, 8, 8, 1)).astype(np.float32)
    y = rng.integers(0, 3, m)
    x[np.arange(m), y * 2, :, 0] += 1.0  # a bright row tells the class
    return x, y


def seeded_run(seed, **fit_kwargs):
    nc.utils.set_random_seed(seed)
    model = augmented_net()
    model.compile(optimizer="adam", loss="sparse_categorical_crossentropy", metrics=["accuracy"])
    x, y = three_classes()
    history = model.fit(x, y, batch_size=8, verbose=0, **fit_kwargs)
    return model, history


class PowerCut(Exception):
    pass


def test_checkpoint_resume_after_a_crash_is_bit_identical(tmp_path):
    straight, _ = seeded_run(3, epochs=4)

    class CutAfterEpoch2(C.Callback):
        def on_epoch_end(self, epoch, logs=None):
            if epoch == 1:
                raise PowerCut

    checkpoint = tmp_path / "last.npz"
    with pytest.raises(PowerCut):
        seeded_run(3, epochs=4, callbacks=[C.ModelCheckpoint(checkpoint, save_best_only=False),
                                           CutAfterEpoch2()])
    nc.utils.set_random_seed(12345)  # a new process: the package generator is elsewhere
    np.random.default_rng(0).random(100)
    resumed = nc.load_model(checkpoint)
    x, y = three_classes()
    history = resumed.fit(x, y, batch_size=8, epochs=4, initial_epoch=2, verbose=0)
    assert history.epoch == [2, 3]
    for a, b in zip(straight.get_weights(), resumed.get_weights()):
        np.testing.assert_array_equal(a, b)


# ============================================================================ runs repeat exactly

def test_seeded_fits_are_bit_identical_and_other_seeds_differ():
    runs = [seeded_run(seed, epochs=2, validation_split=0.25) for seed in (5, 5, 6)]
    (a, history_a), (b, history_b), (c, _) = runs
    assert history_a.history == history_b.history and "val_loss" in history_a.history
    for wa, wb in zip(a.get_weights(), b.get_weights()):
        np.testing.assert_array_equal(wa, wb)
    assert any(not np.array_equal(wa, wc) for wa, wc in zip(a.get_weights(), c.get_weights()))


def test_two_short_fits_do_not_repeat_one_epoch():
    # Epoch generators are keyed by the update count too, so fit(epochs=1) in a loop still reshuffles.
    model, x, y = tiny_classifier()
    orders = []

    class Order(C.Callback):
        def on_epoch_begin(self, epoch, logs=None):
            orders.append(nc.utils.global_rng().permutation(len(x)))

    for _ in range(2):
        model.fit(x, y, epochs=1, callbacks=[Order()], verbose=0)
    assert not np.array_equal(*orders)


# ============================================================================ kernels (hypothesis)

@settings(max_examples=25, deadline=None, derandomize=True)
@given(m=st.integers(1, 2), n_h=st.integers(1, 6), n_w=st.integers(1, 6), n_c=st.integers(1, 3),
       n_k=st.integers(1, 3), f_h=st.integers(1, 3), f_w=st.integers(1, 3), stride=st.integers(1, 3),
       padding=st.sampled_from(["valid", "same", 0, 1, ((0, 1), (2, 0))]), seed=st.integers(0, 2**31))
def test_conv2d_gradients_on_random_geometry(m, n_h, n_w, n_c, n_k, f_h, f_w, stride, padding, seed):
    pads = {"valid": ((0, 0), (0, 0)), "same": ((f_h, f_h), (f_w, f_w)), 0: ((0, 0), (0, 0)),
            1: ((1, 1), (1, 1))}.get(padding, padding)
    assume(f_h <= n_h + sum(pads[0]) and f_w <= n_w + sum(pads[1]))  # else a ShapeError, tested above
    rng = np.random.default_rng(seed)
    inputs = {"x": rng.standard_normal((m, n_h, n_w, n_c)), "w": rng.standard_normal((f_h, f_w, n_c, n_k)),
              "b": rng.standard_normal(n_k)}
    gradcheck(lambda x, w, b: conv2d_forward(x, w, b, stride, padding), conv2d_backward, inputs)


@settings(max_examples=25, deadline=None, derandomize=True)
@given(n_h=st.integers(1, 7), n_w=st.integers(1, 7), n_c=st.integers(1, 3), f=st.integers(1, 3),
       stride=st.one_of(st.none(), st.integers(1, 3)), padding=st.sampled_from(["valid", "same"]),
       mode=st.sampled_from(["max", "average"]), seed=st.integers(0, 2**31))
def test_pool2d_gradients_on_random_geometry(n_h, n_w, n_c, f, stride, padding, mode, seed):
    assume(padding != "valid" or f <= min(n_h, n_w))  # else a ShapeError
    x = np.random.default_rng(seed).permutation(2 * n_h * n_w * n_c).reshape(2, n_h, n_w, n_c) / 7.0
    # Distinct values (a permutation) keep every max window free of ties, where max has no derivative.
    gradcheck(lambda x: pool2d_forward(x, f, stride, padding, mode), pool2d_backward, {"x": x})
