"""Course .h5 files: the real shared files, the course's loaders, and every malformed file we refuse."""

from __future__ import annotations

import h5py
import numpy as np
import pytest

from npconv.data import KNOWN_FILES, data_dir, find_file, load_h5, load_happy_dataset, load_signs_dataset, verify
from npconv.errors import DataError, ShapeError

pytestmark = pytest.mark.data


# --- the data directory -------------------------------------------------------------------------


def test_data_dir_order(monkeypatch, tmp_path):
    monkeypatch.setenv("NPCONV_DATA", str(tmp_path / "env"))
    assert data_dir(tmp_path / "flag") == tmp_path / "flag"  # the CLI flag wins
    assert data_dir() == tmp_path / "env"  # then NPCONV_DATA
    monkeypatch.delenv("NPCONV_DATA")
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "cache"))
    if not __import__("sys").platform.startswith("win"):
        assert data_dir() == tmp_path / "cache" / "npconv"  # then the user cache


def test_find_file_names_every_place_searched(tmp_path):
    with pytest.raises(FileNotFoundError) as info:
        find_file("train_happy.h5", tmp_path)
    message = str(info.value)
    for place in (tmp_path, tmp_path / "happy", tmp_path / "signs"):
        assert str(place / "train_happy.h5") in message
    assert "NPCONV_DATA" in message and "--data-dir" in message


def test_find_file_looks_in_known_subfolders(data_dir):
    assert find_file("test_signs.h5", data_dir) == data_dir / "signs" / "test_signs.h5"


# --- the real course files ------------------------------------------------------------------------


def test_test_happy(data_dir):
    data = load_h5(data_dir / "happy" / "test_happy.h5")
    assert data.x.shape == (150, 64, 64, 3) and data.x.dtype == np.uint8
    assert data.y.dtype == np.int64 and np.bincount(data.y).tolist() == [66, 84]
    assert data.class_names == ["0", "1"]


def test_signs_files(data_dir):
    test = load_h5(data_dir / "signs" / "test_signs.h5")
    assert test.x.shape == (120, 64, 64, 3) and np.bincount(test.y).tolist() == [20] * 6
    train = load_h5(data_dir / "signs" / "train_signs.h5")
    assert train.x.shape == (1080, 64, 64, 3) and np.bincount(train.y).tolist() == [180] * 6


def test_load_signs_dataset_returns_the_course_arrays(data_dir):
    x_train, y_train, x_test, y_test, classes = load_signs_dataset(data_dir)
    assert x_train.shape == (1080, 64, 64, 3) and x_train.dtype == np.uint8
    assert y_train.shape == (1, 1080) and y_test.shape == (1, 120)  # the course's row vectors
    assert classes.tolist() == list(range(6))


def test_load_happy_dataset_reads_both_files(tmp_path, data_dir):
    # Only the test file is shared; a stand-in train file shows the loader reads the course layout.
    with h5py.File(data_dir / "happy" / "test_happy.h5", "r") as f:
        x, y = f["test_set_x"][:], f["test_set_y"][:]
    with h5py.File(tmp_path / "train_happy.h5", "w") as f:
        f["train_set_x"], f["train_set_y"], f["list_classes"] = x[:10], y[:10], np.array([0, 1])
    (tmp_path / "happy").mkdir()
    (tmp_path / "happy" / "test_happy.h5").symlink_to(data_dir / "happy" / "test_happy.h5")
    x_train, y_train, x_test, y_test, classes = load_happy_dataset(tmp_path)
    assert x_train.shape == (10, 64, 64, 3) and y_train.shape == (1, 10)
    assert x_test.shape == (150, 64, 64, 3) and y_test.shape == (1, 150)


def test_missing_happy_train_file_says_where_to_put_it(data_dir):
    with pytest.raises(FileNotFoundError, match="train_happy.h5.*NPCONV_DATA"):
        load_happy_dataset(data_dir)


@pytest.mark.parametrize(
    "folder, name", [("happy", "test_happy.h5"), ("signs", "test_signs.h5"), ("signs", "train_signs.h5")]
)
def test_verify_knows_the_shared_files(data_dir, folder, name):
    result = verify(data_dir / folder / name)
    assert result.is_known and result.known.name == name
    assert {k.name for k in KNOWN_FILES.values()} >= {"train_happy.h5", "test_happy.h5"}


def test_verify_unknown_file_is_informative_only(tmp_path):
    path = _write(tmp_path, train_set_x=np.zeros((2, 4, 4, 3), np.uint8), train_set_y=[0, 1], list_classes=[0, 1])
    assert not verify(path).is_known and "not a known" in str(verify(path))
    assert len(load_h5(path)) == 2


# --- malformed files ----------------------------------------------------------------------------


def _write(tmp_path, name="data.h5", **arrays):
    path = tmp_path / name
    with h5py.File(path, "w") as f:
        for key, value in arrays.items():
            f[key] = np.asarray(value)
    return path


def test_text_file_renamed_h5(tmp_path):
    path = tmp_path / "train_happy.h5"
    path.write_text("<html>404 Not Found</html>\n")
    with pytest.raises(DataError, match="HDF5.*text file"):
        load_h5(path)


def test_truncated_hdf5(tmp_path, data_dir):
    path = tmp_path / "test_happy.h5"
    path.write_bytes((data_dir / "happy" / "test_happy.h5").read_bytes()[:5000])
    with pytest.raises(DataError, match="truncated"):
        load_h5(path)


def test_missing_keys_lists_found_and_expected(tmp_path):
    path = _write(tmp_path, images=np.zeros((2, 4, 4, 3), np.uint8), labels=[0, 1])
    with pytest.raises(DataError) as info:
        load_h5(path)
    assert "images" in str(info.value) and "train_set_x" in str(info.value)


def test_mismatched_lengths(tmp_path):
    path = _write(tmp_path, test_set_x=np.zeros((3, 4, 4, 3), np.uint8), test_set_y=[0, 1])
    with pytest.raises(ShapeError, match="3 labels.*got 2 labels"):
        load_h5(path)


def test_wrong_rank(tmp_path):
    path = _write(tmp_path, test_set_x=np.zeros((3, 48), np.uint8), test_set_y=[0, 1, 0])
    with pytest.raises(ShapeError, match=r"\(m, n_H, n_W, n_C\)"):
        load_h5(path)


def test_non_integer_labels(tmp_path):
    path = _write(tmp_path, test_set_x=np.zeros((2, 4, 4, 3), np.uint8), test_set_y=[0.5, 1.0])
    with pytest.raises(DataError, match="integer class labels"):
        load_h5(path)


def test_images_scaled_to_unit_range_are_refused(tmp_path):
    path = _write(tmp_path, test_set_x=np.full((2, 4, 4, 3), 0.5), test_set_y=[0, 1])
    with pytest.raises(DataError, match=r"x \* 255"):
        load_h5(path)


def test_lenient_where_the_meaning_is_clear(tmp_path):
    """Grayscale (m, H, W) images, (1, m) labels, integral float labels, no list_classes."""
    path = _write(tmp_path, train_set_x=np.full((2, 4, 4), 7.0), train_set_y=[[0.0, 2.0]])
    data = load_h5(path)
    assert data.x.shape == (2, 4, 4, 1) and data.x.dtype == np.uint8 and data.x.max() == 7
    assert data.y.tolist() == [0, 2] and data.class_names == ["0", "1", "2"]
