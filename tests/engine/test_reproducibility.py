"""Runs repeat exactly: seeded fits are bit-identical, another seed differs, two short fits are not one
long one repeated."""

from __future__ import annotations

import numpy as np
from reliability import seeded_run, tiny_classifier

import npconv as nc
from npconv import callbacks as C


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
