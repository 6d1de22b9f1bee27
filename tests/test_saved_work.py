"""Saved work is never lost: a full disk leaves the previous file, and a checkpoint resumes a crashed
run bit for bit."""

from __future__ import annotations

import errno

import numpy as np
import pytest
from reliability import says, seeded_run, three_classes, tiny_classifier

import npconv as nc
from npconv import callbacks as C
from npconv import saving


def full_disk(file, arrays):
    file.write(b"PK\x03\x04 the first few kilobytes")
    raise OSError(errno.ENOSPC, "No space left on device")


@pytest.mark.parametrize("how", ["save", "save_weights", "checkpoint"])
def test_full_disk_mid_write_leaves_the_previous_file(tmp_path, monkeypatch, how):
    model, x, y = tiny_classifier()
    path = tmp_path / "keep.npz"
    write = {
        "save": model.save,
        "save_weights": model.save_weights,
        "checkpoint": lambda p: model.fit(
            x, y, epochs=1, verbose=0, callbacks=[C.ModelCheckpoint(p, save_best_only=False)]
        ),
    }[how]
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
        seeded_run(3, epochs=4, callbacks=[C.ModelCheckpoint(checkpoint, save_best_only=False), CutAfterEpoch2()])
    nc.utils.set_random_seed(12345)  # a new process: the package generator is elsewhere
    np.random.default_rng(0).random(100)
    resumed = nc.load_model(checkpoint)
    x, y = three_classes()
    history = resumed.fit(x, y, batch_size=8, epochs=4, initial_epoch=2, verbose=0)
    assert history.epoch == [2, 3]
    for a, b in zip(straight.get_weights(), resumed.get_weights()):
        np.testing.assert_array_equal(a, b)
