"""``fit``, ``evaluate`` and ``predict`` on iterables of ``(x, y)`` batches.

The course trains SIGNS on ``tf.data.Dataset.from_tensor_slices((X_train, Y_train)).batch(64)``;
npconv runs that line with ``npconv.data`` for ``tf.data``, and a dataset of batches trains exactly
as the same arrays with ``shuffle=False`` do. Generators and image folders streamed from disk work too.
"""

from __future__ import annotations

import numpy as np
import pytest
from PIL import Image

import npconv as nc
from npconv import layers as L
from npconv.apps import convolutional_model
from npconv.data import ImageFolderBatches, SkippedFilesWarning, from_tensor_slices, load_signs_dataset


def small_model():
    nc.utils.set_random_seed(0)
    model = nc.Sequential(
        [L.Conv2D(3, 3, padding="same"), L.ReLU(), L.MaxPooling2D(2), L.Flatten(), L.Dense(3, activation="softmax")]
    )
    model.compile(optimizer="adam", loss="sparse_categorical_crossentropy", metrics=["accuracy"])
    return model


def data(m=20, seed=0):
    rng = np.random.default_rng(seed)
    return rng.random((m, 6, 6, 2)).astype(np.float32), rng.integers(0, 3, m)


def assert_same_weights(a, b):
    for wa, wb in zip(a.get_weights(), b.get_weights()):
        np.testing.assert_array_equal(wa, wb)


@pytest.mark.data
def test_the_course_signs_program_trains_from_a_batched_dataset(data_dir):
    X_train_orig, Y_train_orig, X_test_orig, Y_test_orig, classes = load_signs_dataset(data_dir)
    X_train, X_test = X_train_orig / 255.0, X_test_orig / 255.0
    Y_train = nc.utils.convert_to_one_hot(Y_train_orig, 6).T
    Y_test = nc.utils.convert_to_one_hot(Y_test_orig, 6).T

    nc.utils.set_random_seed(1)
    conv_model = convolutional_model((64, 64, 3))
    conv_model.compile(optimizer="adam", loss="categorical_crossentropy", metrics=["accuracy"])
    train_dataset = nc.data.Dataset.from_tensor_slices((X_train, Y_train)).batch(64)
    test_dataset = nc.data.Dataset.from_tensor_slices((X_test, Y_test)).batch(64)
    history = conv_model.fit(train_dataset, epochs=2, validation_data=test_dataset, verbose=0)

    assert history.params == {"verbose": 0, "epochs": 2, "steps": 17}
    assert list(history.history) == ["loss", "accuracy", "val_loss", "val_accuracy"]
    assert history.history["loss"][-1] < history.history["loss"][0]
    nc.utils.set_random_seed(1)
    arrays = convolutional_model((64, 64, 3))
    arrays.compile(optimizer="adam", loss="categorical_crossentropy", metrics=["accuracy"])
    same = arrays.fit(
        X_train, Y_train, batch_size=64, epochs=2, shuffle=False, validation_data=(X_test, Y_test), verbose=0
    )
    assert_same_weights(conv_model, arrays)
    assert same.history == history.history
    assert conv_model.evaluate(test_dataset, verbose=0) == arrays.evaluate(X_test, Y_test, batch_size=64, verbose=0)
    np.testing.assert_array_equal(conv_model.predict(test_dataset), arrays.predict(X_test, batch_size=64))


def test_a_dataset_of_batches_trains_like_the_arrays_without_shuffling():
    x, y = data()
    batched = small_model()  # no input shape: the first batch builds it
    batched.fit(from_tensor_slices((x, y)).batch(8), epochs=2, verbose=0)
    arrays = small_model()
    arrays.fit(x, y, batch_size=8, epochs=2, shuffle=False, verbose=0)
    assert_same_weights(batched, arrays)


def test_a_generator_runs_steps_per_epoch_and_goes_on_where_it_stopped():
    x, y = data(24)

    def batches():
        while True:
            for start in range(0, 24, 8):
                yield x[start : start + 8], y[start : start + 8]

    streamed = small_model()
    history = streamed.fit(batches(), steps_per_epoch=3, epochs=2, verbose=0)
    assert history.params["steps"] == 3 and len(history.history["loss"]) == 2
    arrays = small_model()
    arrays.fit(x, y, batch_size=8, epochs=2, shuffle=False, verbose=0)
    assert_same_weights(streamed, arrays)


def test_a_used_up_generator_says_how_to_train_several_epochs():
    x, y = data()
    one_pass = ((x[k : k + 10], y[k : k + 10]) for k in (0, 10))
    with pytest.raises(ValueError, match="steps_per_epoch"):
        small_model().fit(one_pass, epochs=2, verbose=0)


def test_a_generator_that_runs_dry_before_steps_per_epoch_warns():
    x, y = data()
    with pytest.warns(UserWarning, match="ran out of batches after 2 of steps_per_epoch=5"):
        small_model().fit(((x[k : k + 10], y[k : k + 10]) for k in (0, 10)), steps_per_epoch=5, verbose=0)


def test_evaluate_and_predict_take_batches_too():
    x, y = data()
    model = small_model()
    model.fit(x, y, epochs=1, verbose=0)
    dataset = from_tensor_slices((x, y)).batch(6)
    assert model.evaluate(dataset, verbose=0) == model.evaluate(x, y, batch_size=6, verbose=0)
    np.testing.assert_array_equal(model.predict(dataset), model.predict(x))
    np.testing.assert_array_equal(model.predict(from_tensor_slices(x).batch(6)), model.predict(x))
    np.testing.assert_array_equal(model.predict(iter([x[:5], x[5:]])), model.predict(x))


def test_dataset_mistakes_get_clear_errors():
    x, y = data()
    model = small_model()
    with pytest.raises(ValueError, match=r"\.batch\(64\)"):
        model.fit(from_tensor_slices((x, y)), verbose=0)
    with pytest.raises(ValueError, match="labels come with each batch"):
        model.fit(from_tensor_slices((x, y)).batch(4), y, verbose=0)
    with pytest.raises(ValueError, match="validation_split"):
        model.fit(from_tensor_slices((x, y)).batch(4), validation_split=0.2, verbose=0)
    with pytest.raises(TypeError, match=r"x batch 1.*a tuple \(x, y\)"):
        model.fit(iter([(x[:4], y[:4]), (x[4:8], y[4:8], y[4:8])]), verbose=0)
    with pytest.raises(ValueError, match="one length"):
        from_tensor_slices((x, y[:-1]))
    with pytest.raises(ValueError, match="at least one batch"):
        model.fit(iter([]), verbose=0)


def test_tensor_slices_count_and_slice_like_tf_data():
    x, y = data(10)
    examples = from_tensor_slices((x, y))
    assert len(examples) == 10 and np.array_equal(next(iter(examples))[0], x[0])
    assert len(examples.batch(4)) == 3 and len(examples.batch(4, drop_remainder=True)) == 2
    assert [len(b[0]) for b in examples.batch(4)] == [4, 4, 2]
    assert "10 examples" in repr(examples.batch(4))


def test_progress_bar_with_an_unknown_number_of_batches(capsys):
    x, y = data()
    small_model().fit(((x[k : k + 5], y[k : k + 5]) for k in range(0, 20, 5)), verbose=2)
    captured = capsys.readouterr()
    assert "loss" in captured.err + captured.out


def test_an_image_folder_streams_from_disk(tmp_path):
    for label, colour in (("dark", 30), ("light", 220)):
        (tmp_path / label).mkdir()
        for i in range(5):
            Image.new("RGB", (12, 10), (colour, colour, colour)).save(tmp_path / label / f"{i}.png")
    (tmp_path / "light" / "broken.png").write_bytes(b"not a png")
    batches = ImageFolderBatches(tmp_path, batch_size=4, image_size=(8, 8), seed=0, rescale=1 / 255)
    assert batches.class_names == ["dark", "light"] and len(batches) == 3
    nc.utils.set_random_seed(0)
    model = nc.Sequential([L.Flatten(), L.Dense(1, activation="sigmoid")])
    model.compile(optimizer=nc.optimizers.Adam(0.01), loss="binary_crossentropy", metrics=["accuracy"])
    with pytest.warns(SkippedFilesWarning, match="broken.png"):
        history = model.fit(batches, epochs=5, verbose=0)
        assert model.predict(batches).shape == (10, 1)  # every readable image, once per pass
    assert history.history["loss"][-1] < history.history["loss"][0]
    with pytest.warns(SkippedFilesWarning):
        first, second = [np.concatenate([b[1] for b in batches]) for _ in range(2)]
    assert sorted(first) == sorted(second) and not np.array_equal(first, second)  # reshuffled each pass
