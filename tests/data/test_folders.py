"""Image folders and single photos: layout, resizing, colour modes, EXIF, bad files, cache."""

from __future__ import annotations

import io

import numpy as np
import pytest
from PIL import Image, UnidentifiedImageError

from npconv.data import SkippedFilesWarning, load_dataset, load_image, load_image_folder
from npconv.data.images import decode_image
from npconv.errors import DataError


def _image(path, size=(20, 30), colour=(200, 30, 10), mode="RGB", **save):
    Image.new(mode, (size[1], size[0]), colour if mode == "RGB" else colour[0]).save(path, **save)


@pytest.fixture
def folder(tmp_path):
    """root/cat: 3 PNGs (RGB); root/dog: 2 grayscale JPEGs, a corrupt JPEG and a text file."""
    root = tmp_path / "pets"
    (root / "cat").mkdir(parents=True)
    (root / "dog").mkdir()
    for i in range(3):
        _image(root / "cat" / f"c{i}.png")
    for i in range(2):
        _image(root / "dog" / f"d{i}.jpg", colour=(90,), mode="L")
    (root / "dog" / "broken.jpg").write_bytes(b"\xff\xd8\xff\xe0" + b"\x00" * 40)
    (root / "dog" / "notes.txt").write_text("not an image")
    (root / "dog" / ".DS_Store").write_bytes(b"\x00")  # hidden files are ignored
    return root


def test_loads_classes_in_sorted_order_and_warns_once_naming_skipped_files(folder):
    with pytest.warns(SkippedFilesWarning) as record:
        data = load_image_folder(folder, image_size=(16, 8))
    skipped = [w for w in record if issubclass(w.category, SkippedFilesWarning)]  # others may come from Pillow
    assert len(skipped) == 1
    assert "broken.jpg" in str(skipped[0].message) and "notes.txt" in str(skipped[0].message)
    assert data.class_names == ["cat", "dog"] and data.y.tolist() == [0, 0, 0, 1, 1]
    assert data.x.shape == (5, 16, 8, 3) and data.x.dtype == np.uint8
    assert [p.split("/")[-1] for p in data.paths] == ["c0.png", "c1.png", "c2.png", "d0.jpg", "d1.jpg"]
    assert np.all(data.x[0] == [200, 30, 10])
    assert np.all(np.abs(data.x[3].astype(int) - 90) <= 1)  # grayscale -> RGB: equal channels


def test_grayscale_mode_and_class_subset(folder):
    with pytest.warns(SkippedFilesWarning):
        data = load_image_folder(folder, image_size=(8, 8), color_mode="grayscale", class_names=["dog"])
    assert data.x.shape == (2, 8, 8, 1) and data.class_names == ["dog"] and data.y.tolist() == [0, 0]


def test_max_per_class(folder):
    data = load_image_folder(folder, image_size=8, class_names=["cat"], max_per_class=2)
    assert len(data) == 2


def test_layout_errors(tmp_path):
    with pytest.raises(DataError, match="sub-folder"):
        load_image_folder(tmp_path)  # no class folders
    (tmp_path / "a").mkdir()
    with pytest.raises(DataError, match="one sub-folder per class"):
        load_image_folder(tmp_path)  # empty class folders
    with pytest.raises(FileNotFoundError):
        load_image_folder(tmp_path / "missing")
    with pytest.raises(DataError, match="class_names"):
        load_image_folder(tmp_path, class_names=["b"])


def test_exif_orientation_is_applied(tmp_path):
    path = tmp_path / "phone.jpg"
    exif = Image.Exif()
    exif[0x0112] = 6  # "rotate 90 CW to display"
    _image(path, size=(20, 40), exif=exif.tobytes())
    assert load_image(path, image_size=None).shape == (40, 20, 3)


def test_crop_to_aspect_ratio_keeps_the_centre(tmp_path):
    path = tmp_path / "wide.png"
    pixels = np.zeros((10, 30, 3), np.uint8)
    pixels[:, 10:20] = 255  # white centre square
    Image.fromarray(pixels).save(path)
    assert load_image(path, (10, 10), crop_to_aspect_ratio=True).min() == 255
    assert load_image(path, (10, 10)).min() < 255


def test_load_image_errors(tmp_path):
    bad = tmp_path / "x.jpg"
    bad.write_text("hello")
    with pytest.raises(DataError, match="x.jpg"):
        load_image(bad)
    with pytest.raises(ValueError, match="color_mode"):
        load_image(bad, color_mode="cmyk")


def test_decode_image_reads_file_objects_within_formats_and_a_pixel_limit():
    """For uploads (``npconv serve``): bytes in memory, browser formats only, size checked from the header."""
    buffer = io.BytesIO()
    Image.new("RGB", (40, 30), (10, 200, 30)).save(buffer, format="PNG")
    image = decode_image(io.BytesIO(buffer.getvalue()), (8, 8), formats=("PNG",))
    assert image.shape == (8, 8, 3) and tuple(image[4, 4]) == (10, 200, 30)
    with pytest.raises(Image.DecompressionBombError, match="40x30 pixels is over the limit of 1,000"):
        decode_image(io.BytesIO(buffer.getvalue()), (8, 8), max_pixels=1000)
    with pytest.raises(UnidentifiedImageError):
        decode_image(io.BytesIO(buffer.getvalue()), (8, 8), formats=("JPEG",))


def test_cache_round_trip(folder, tmp_path, monkeypatch):
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "cache"))
    with pytest.warns(SkippedFilesWarning):
        first = load_image_folder(folder, image_size=8, cache=True)
    assert list((tmp_path / "cache").rglob("*.npz"))
    with pytest.warns(SkippedFilesWarning, match="broken.jpg"):  # still named from the cache
        second = load_image_folder(folder, image_size=8, cache=True)
    assert np.array_equal(first.x, second.x) and second.paths == first.paths
    _image(folder / "cat" / "c0.png", colour=(0, 0, 255))  # a changed file misses the cache
    with pytest.warns(SkippedFilesWarning):
        third = load_image_folder(folder, image_size=8, cache=True)
    assert np.all(third.x[0] == [0, 0, 255])


@pytest.mark.data
def test_real_smiles_folder(data_dir):
    data = load_dataset(data_dir / "smiles", max_per_class=100, color_mode="grayscale")
    assert data.x.shape == (200, 64, 64, 1) and data.class_names == ["not_smiling", "smiling"]
    assert data.y.tolist() == [0] * 100 + [1] * 100  # its speed (target < 5 s): benchmarks/data_loading.py


@pytest.mark.data
def test_real_sign_language_digits_folder(data_dir):
    data = load_image_folder(data_dir / "sign-language-digits", image_size=(64, 64), max_per_class=5)
    assert data.x.shape == (50, 64, 64, 3) and data.class_names == [str(d) for d in range(10)]
    assert np.bincount(data.y).tolist() == [5] * 10
