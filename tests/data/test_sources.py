"""Finding a data source by name: here, in the data directory, or in its known sub-folders."""

import h5py
import numpy as np
import pytest

from npconv.data.registry import load_dataset, not_found, resolve_source


def _course_file(path, n=4):
    path.parent.mkdir(parents=True, exist_ok=True)
    with h5py.File(path, "w") as f:
        f["test_set_x"] = np.zeros((n, 8, 8, 3), np.uint8)
        f["test_set_y"] = np.arange(n) % 2
        f["list_classes"] = np.array([0, 1])
    return path


def test_a_bare_file_name_finds_the_course_file_in_its_sub_folder(tmp_path, monkeypatch):
    # `npconv evaluate MODEL test_signs.h5` with the data directory holding signs/test_signs.h5
    monkeypatch.chdir(tmp_path)
    data = tmp_path / "data"
    expected = _course_file(data / "signs" / "test_signs.h5")
    assert resolve_source("test_signs.h5", data) == expected
    assert len(load_dataset("test_signs.h5", data_dir=data)) == 4


def test_a_file_here_wins_over_the_data_directory(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    here = _course_file(tmp_path / "test_signs.h5")
    _course_file(tmp_path / "data" / "signs" / "test_signs.h5")
    assert resolve_source("test_signs.h5", tmp_path / "data").resolve() == here.resolve()


def test_a_missing_source_suggests_the_data_directorys_files_of_that_name(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    data = tmp_path / "data"
    _course_file(data / "extra" / "held_out.h5")
    message = not_found("old/held_out.h5", data)
    assert "Did you mean extra/held_out.h5" in message
    with pytest.raises(FileNotFoundError, match="Did you mean extra/held_out.h5"):
        load_dataset("old/held_out.h5", data_dir=data)
    assert "NPCONV_DATA" in not_found("nothing.h5", data)
