"""The course's two Keras programs, import changed, on the real course data (``NPCONV_DATA``).

Happy House trains on part of ``test_happy.h5`` (the course's train file is not shipped here) and
SIGNS on ``train_signs.h5``; each loss falls, and each model survives a save/load round trip: the
loaded model predicts exactly what the saved one did and carries on training exactly as it would have.
"""

import numpy as np
import pytest

import npconv as nc
from npconv.apps import convolutional_model, happyModel
from npconv.data import load_h5, load_signs_dataset

pytestmark = pytest.mark.data


def round_trip(model, x, tmp_path):
    path = tmp_path / f"{model.name}.npz"
    model.save(path)
    loaded = nc.load_model(path)
    np.testing.assert_array_equal(loaded.predict(x), model.predict(x))
    return loaded


def test_happy_model_trains_on_real_faces_and_round_trips(data_dir, tmp_path):
    happy = load_h5(data_dir / "happy" / "test_happy.h5")
    x, y = happy.x / 255.0, happy.y.reshape(-1, 1)
    nc.utils.set_random_seed(0)
    model = happyModel()
    model.compile(optimizer="adam", loss="binary_crossentropy", metrics=["accuracy"])
    history = model.fit(x[:100], y[:100], epochs=4, batch_size=16, verbose=0)
    assert history.history["loss"][-1] < history.history["loss"][0]
    loaded = round_trip(model, x[100:], tmp_path)
    # A fifth epoch from the file repeats the fifth epoch of the model in memory, bit for bit.
    continued = model.fit(x[:100], y[:100], epochs=5, initial_epoch=4, batch_size=16, verbose=0)
    resumed = loaded.fit(x[:100], y[:100], epochs=5, initial_epoch=4, batch_size=16, verbose=0)
    assert resumed.history == continued.history
    for a, b in zip(loaded.get_weights(), model.get_weights()):
        np.testing.assert_array_equal(a, b)


def test_signs_model_trains_on_the_course_files_and_round_trips(data_dir, tmp_path):
    x_train, y_train, x_test, y_test, classes = load_signs_dataset(data_dir)
    assert x_train.shape == (1080, 64, 64, 3) and y_train.shape == (1, 1080) and len(classes) == 6
    x_train, x_test = x_train[:360] / 255.0, x_test / 255.0
    y_train = nc.utils.convert_to_one_hot(y_train[:, :360], 6).T
    y_test = nc.utils.convert_to_one_hot(y_test, 6).T
    nc.utils.set_random_seed(0)
    model = convolutional_model((64, 64, 3))
    model.compile(optimizer="adam", loss="categorical_crossentropy", metrics=["accuracy"])
    history = model.fit(x_train, y_train, epochs=4, batch_size=64, validation_data=(x_test, y_test), verbose=0)
    assert history.history["loss"][-1] < history.history["loss"][0]
    assert set(history.history) == {"loss", "accuracy", "val_loss", "val_accuracy"}
    loaded = round_trip(model, x_test, tmp_path)
    assert loaded.evaluate(x_test, y_test, verbose=0) == model.evaluate(x_test, y_test, verbose=0)
