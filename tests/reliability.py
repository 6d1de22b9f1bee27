"""Reliability: every bad input gets a clear answer, saved work is never lost, runs repeat exactly.

The helpers the reliability tests share, and their checklist. The tests themselves, one subject a
file: ``engine/test_input_errors.py`` (arrays), ``engine/test_argument_errors.py`` (layer, compile
and fit arguments), ``engine/test_divergence.py`` (training going wrong),
``test_model_file_errors.py`` and ``data/test_load_errors.py`` (files), ``test_saved_work.py``
(saved work is never lost), ``engine/test_reproducibility.py`` (runs repeat exactly) and
``functional/test_random_geometry.py`` (kernels, hypothesis). A test named without its file below
is in one of those.

A learner's mistakes go in through the public API (``nc.Sequential``/``nc.Model``, layers,
``compile``/``fit``/``evaluate``/``predict``, ``nc.load_model``, the ``npconv.data`` loaders), and each
comes back as a standard error whose message names the argument, what was expected, what was
received and how to fix it. This is the checklist; a case tested elsewhere points there.

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
0/1 on purpose. The CLI's one-line errors are its own tests' (``tests/cli/test_cli.py``).
"""

from __future__ import annotations

import numpy as np

import npconv as nc
from npconv import layers as L


def says(exc_info, *parts):
    """The error's message contains every one of ``parts`` (plain substrings, not patterns)."""
    message = str(exc_info.value)
    missing = [p for p in parts if p not in message]
    assert not missing, f"{missing} not in: {message}"


def signs_like(k=6, shape=(16, 16, 3)):
    """A small SIGNS-like classifier: images ``shape`` -> ``k`` softmax classes."""
    nc.utils.set_random_seed(0)
    model = nc.Sequential(
        [
            L.Conv2D(2, 3, activation="relu", input_shape=shape),
            L.MaxPooling2D(2),
            L.Flatten(),
            L.Dense(k, activation="softmax"),
        ]
    )
    model.compile(optimizer="adam", loss="sparse_categorical_crossentropy", metrics=["accuracy"])
    return model


X = np.zeros((4, 16, 16, 3), np.float32)
Y = np.array([0, 1, 2, 5])


def tiny_classifier(lr=0.05, m=32, seed=0):
    """Dense 5 -> 4 -> 1 sigmoid with SGD; 32 examples = 4 batches of 8."""
    nc.utils.set_random_seed(seed)
    rng = np.random.default_rng(seed)
    x = rng.standard_normal((m, 5)).astype(np.float32)
    y = (x[:, 0] > 0).astype(np.float32)[:, None]
    model = nc.Sequential([L.Dense(4, activation="relu", input_shape=(5,)), L.Dense(1, activation="sigmoid")])
    model.compile(optimizer=nc.optimizers.SGD(lr), loss="binary_crossentropy")
    return model, x, y


def augmented_net():
    """Augmentation, batch norm, dropout and Adam: every kind of state a resume must bring back."""
    return nc.Sequential(
        [
            L.RandomFlip("horizontal", input_shape=(8, 8, 1)),
            L.RandomTranslation(0.2, 0.2),
            L.Conv2D(3, 3, padding="same"),
            L.BatchNormalization(momentum=0.9),
            L.ReLU(),
            L.MaxPooling2D(2),
            L.Flatten(),
            L.Dropout(0.3),
            L.Dense(3, activation="softmax"),
        ]
    )


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
