"""Data files that cannot be read (HDF5, image folders, corrupt JPEGs) get a clear error or a warning
naming them."""

from __future__ import annotations

import io

import h5py
import numpy as np
import pytest
from PIL import Image
from reliability import says

from npconv.data import SkippedFilesWarning, load_h5, load_image_folder
from npconv.errors import DataError


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
