"""Training going wrong: a diverged update or a NaN loss stops fit, names where, and keeps the last
good weights."""

from __future__ import annotations

import numpy as np
import pytest
from reliability import says, tiny_classifier

import npconv as nc
from npconv import callbacks as C
from npconv.errors import TrainingDivergedError


class Snapshots(C.Callback):
    """Keeps the weights after every finished batch, keyed by (epoch, batch), 1-based like messages."""

    def __init__(self, poison_after=None, poison=None):
        self.weights, self.poison_after, self.poison = {}, poison_after, poison

    def on_epoch_begin(self, epoch, logs=None):
        self.epoch = epoch + 1

    def on_batch_end(self, batch, logs=None):
        self.weights[self.epoch, batch + 1] = self.model.get_weights()
        if (self.epoch, batch + 1) == self.poison_after:
            self.poison(self.model)


def test_divergence_at_epoch_2_batch_3_keeps_the_last_good_weights():
    model, x, y = tiny_classifier()

    def explode(model):  # the next update (epoch 2, batch 3) sends every weight with a gradient to inf
        model.optimizer.learning_rate = 1e300

    spy = Snapshots(poison_after=(2, 2), poison=explode)
    with np.errstate(over="ignore", invalid="ignore"), pytest.raises(TrainingDivergedError) as info:
        model.fit(x, y, epochs=4, batch_size=8, shuffle=False, callbacks=[spy], verbose=0)
    says(info, "epoch 2, batch 3", "Lower the learning rate", "keeps the weights from before this batch")
    assert isinstance(info.value, FloatingPointError)
    assert max(spy.weights) == (2, 2)
    for kept, good in zip(model.get_weights(), spy.weights[2, 2]):
        np.testing.assert_array_equal(kept, good)


def test_nan_loss_at_epoch_2_batch_3_names_it():
    model, x, y = tiny_classifier()

    class FlakyLoss(nc.losses.BinaryCrossentropy):
        calls = 0

        def from_logits_and_grad(self, y_true, logits):
            FlakyLoss.calls += 1
            loss, grad = super().from_logits_and_grad(y_true, logits)
            return (np.nan, grad) if FlakyLoss.calls == 4 + 3 else (loss, grad)

    model.compile(optimizer=nc.optimizers.SGD(0.05), loss=FlakyLoss())
    spy = Snapshots()
    with pytest.raises(TrainingDivergedError) as info:
        model.fit(x, y, epochs=4, batch_size=8, shuffle=False, callbacks=[spy], verbose=0)
    says(info, "epoch 2, batch 3", "the loss is nan", "Lower the learning rate (now 0.05)")
    for kept, good in zip(model.get_weights(), spy.weights[2, 2]):
        np.testing.assert_array_equal(kept, good)


@pytest.mark.usefixtures("tier")
@pytest.mark.parametrize("optimizer", ["adam", "sgd"])
def test_a_diverged_update_is_caught_whichever_optimizer_checks_it(optimizer):
    """The compiled Adam counts the values its update left infinite or NaN; the others are checked
    after the update: either way the batch's weights are put back and fit names the batch."""
    model, x, y = tiny_classifier()
    model.compile(optimizer=optimizer, loss="binary_crossentropy")

    def explode(model):
        model.optimizer.learning_rate = 1e300

    spy = Snapshots(poison_after=(1, 2), poison=explode)
    with np.errstate(over="ignore", invalid="ignore"), pytest.raises(TrainingDivergedError) as info:
        model.fit(x, y, epochs=2, batch_size=8, shuffle=False, callbacks=[spy], verbose=0)
    says(info, "epoch 1, batch 3")
    for kept, good in zip(model.get_weights(), spy.weights[1, 2]):
        np.testing.assert_array_equal(kept, good)
