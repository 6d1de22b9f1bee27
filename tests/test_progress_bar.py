"""The training progress bar: a first run says that it is compiling, and its time left ignores that."""

import numpy as np
import pytest

import npconv as nc
from npconv import callbacks
from npconv import layers as L
from npconv.functional import _tier


def _fit(verbose):
    model = nc.Sequential([L.Conv2D(2, 3, input_shape=(12, 12, 1)), L.Flatten(), L.Dense(1, activation="sigmoid")])
    model.compile(optimizer="adam", loss="binary_crossentropy")
    x = np.random.default_rng(0).random((8, 12, 12, 1), dtype=np.float32)
    model.fit(x, (x.mean(axis=(1, 2, 3)) > 0.5).astype(np.float32), epochs=2, batch_size=4, verbose=verbose)


@pytest.mark.parametrize("verbose", [1, 2])
def test_a_first_run_says_it_compiles_once(monkeypatch, capsys, verbose):
    monkeypatch.setattr(_tier, "kernels_will_compile", lambda: True)
    _fit(verbose)
    out, err = capsys.readouterr()
    said = out + err
    assert said.count(callbacks.ProgressBar.COMPILING) == 1
    assert "Epoch 2/2" in said and f"Epoch 2/2 - {callbacks.ProgressBar.COMPILING}" not in said


def test_a_warm_run_says_nothing_of_compiling(monkeypatch, capsys):
    monkeypatch.setattr(_tier, "kernels_will_compile", lambda: False)
    _fit(2)
    assert "compiling" not in capsys.readouterr().out


def test_the_kernel_cache_is_found_once_the_kernels_ran():
    if _tier.compiled() is None:
        assert _tier.kernels_will_compile() is False
        return
    _fit(0)  # compiles or loads the convolution kernels, and Numba writes its cache
    assert _tier.kernels_will_compile() is False
