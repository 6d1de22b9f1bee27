"""The training loop: ``compile``, ``fit``, ``evaluate`` and ``predict`` over batches of a model's graph.

Training runs one forward and one backward pass per batch; the last layer's softmax/sigmoid is
fused with the loss (see :mod:`npconv.losses`), and the optimizer updates the trainable weights.
"""

from __future__ import annotations

import contextlib
import warnings

import numpy as np

from .. import callbacks as cbks
from .. import utils
from ..errors import TrainingDivergedError, check_positive_int, expected
from ..functional._threads import blas_scope
from .batches import ONE_PASS_HINT, is_batch_source
from .data_checks import as_input_batch
from .feeding import EpochPlan, Feeding
from .fit_guards import DeferredInterrupt, Diverged, EpochGenerators, epoch_range
from .plan import execution_steps, plan_backward


class Training(Feeding):
    """The training half of :class:`npconv.Model` (it runs the graph through ``_forward``/``_backward``)."""

    def compile(self, optimizer="rmsprop", loss=None, metrics=None) -> None:
        """Choose the optimizer (name or object), the loss (name or object) and ``metrics=["accuracy"]``."""
        from .. import losses, optimizers
        from .. import metrics as metrics_module

        if loss is None:
            raise ValueError(
                expected("loss", "a loss such as 'binary_crossentropy' or 'categorical_crossentropy'", "None")
            )
        self.optimizer = optimizers.get(optimizer)
        self.loss = losses.get(loss)
        names = [metrics] if isinstance(metrics, str) or callable(metrics) else list(metrics or [])
        self._metric_names = [m if isinstance(m, str) else m.__name__ for m in names]
        self._metrics = [metrics_module.get(m) for m in names]
        self._compiled = True
        self._updated_weights = None

    @property
    def metrics_names(self) -> list[str]:
        """What ``evaluate`` returns, in order: ``["loss", "accuracy"]`` (Keras's names)."""
        if not self._compiled:
            return []
        return ["loss"] + self._metric_names

    def _training_plan(self):
        """Check the loss fits the last layer; return whether the last activation is fused."""
        self._require_compiled()
        last = self._nodes[-1].layer
        activation = getattr(getattr(last, "activation", None), "name", "linear")
        wanted = "linear" if self.loss.from_logits else self.loss.activation
        if activation != wanted:
            fix = (
                "Use from_logits=False or remove the final activation."
                if self.loss.from_logits
                else f"End the model with activation='{wanted}' (npconv fuses it with the loss)."
            )
            raise ValueError(
                expected(
                    f"last layer {last.name!r} activation (for loss {self.loss.name})",
                    repr(wanted),
                    repr(activation),
                    fix,
                )
            )
        updated = self.trainable_weights
        if self._updated_weights is None or [id(w) for w in updated] != [id(w) for w in self._updated_weights]:
            if self._updated_weights is not None and len(self.optimizer.get_state()) > 1:
                raise RuntimeError(
                    "fit: layers were frozen or unfrozen (trainable) since the optimizer started, and "
                    "its state belongs to the old set of weights. Call model.compile(...) again after "
                    "changing trainable (Keras's rule); it starts a fresh optimizer."
                )
            self._updated_weights = updated
            self._all_weights = self.weights
            self._last_good = [np.empty_like(w.value) for w in self._all_weights]
            plan_backward(self._steps)
        return activation != "linear"

    @contextlib.contextmanager
    def _plan_layer_by_layer(self):
        """Within the block the model runs each convolution, max pool and batch norm as its own
        layer (the learner's functions replace their ``forward`` and ``backward``; the steps that
        fuse a pool or fold a batch norm run npconv's own kernels), in training and inference
        alike, planned for training; then its own steps again, planned."""
        steps, inference_steps = self._steps, self._inference_steps
        self._steps = self._inference_steps = execution_steps(self._nodes, pools=False)
        plan_backward(self._steps)
        try:
            yield
        finally:
            self._steps, self._inference_steps = steps, inference_steps
            plan_backward(steps)

    def _require_compiled(self):
        if not self._compiled:
            raise RuntimeError(
                "fit/evaluate: compile the model first, e.g. model.compile(optimizer='adam', "
                "loss='binary_crossentropy', metrics=['accuracy'])."
            )

    def _output_probabilities(self, logits, fused):
        if not fused:
            return logits
        return self._nodes[-1].layer.activation.forward(logits)[0]

    def _train_step(self, xb, yb, fused):
        """One forward, one backward, one update; returns ``(loss, output)``.

        A non-finite loss or update restores the weights from before the batch (one copy of the
        weights per batch: microseconds next to the convolutions) and raises ``Diverged``. One BLAS
        scope for the whole step (the forward's and backward's own then do nothing).
        """
        with blas_scope():
            return self._step_in_scope(xb, yb, fused)

    def _step_in_scope(self, xb, yb, fused):
        for saved, w in zip(self._last_good, self._all_weights):
            np.copyto(saved, w.value)
        out = self._forward(xb, True, logits=fused)
        loss, dout = self.loss.from_logits_and_grad(yb, out)
        if not np.isfinite(loss):
            self._restore_last_good()
            raise Diverged(f"the loss is {loss}")
        self._backward(dout)
        grads = [(w.grad, w.value) for w in self._updated_weights]
        finite = self.optimizer.apply_gradients(grads)  # checked by the update itself, or None
        if finite is None:
            finite = all(np.isfinite(p).all() for _, p in grads)
        if not finite:
            self._restore_last_good()
            raise Diverged("the update made a weight infinite or NaN")
        return loss, out

    def _restore_last_good(self):
        for saved, w in zip(self._last_good, self._all_weights):
            np.copyto(w.value, saved)

    def fit(
        self,
        x=None,
        y=None,
        batch_size=32,
        epochs=1,
        verbose=1,
        callbacks=None,
        validation_split=0.0,
        validation_data=None,
        shuffle=True,
        initial_epoch=0,
        steps_per_epoch=None,
        kernels=None,
    ):
        """Train for ``epochs`` passes over ``(x, y)``; returns a :class:`~npconv.callbacks.History`.

        Parameters
        ----------
        x : array (m, n_H, n_W, n_C) (or (m, n) for dense models); uint8 images are cast to float32
            once (not rescaled, as in Keras: divide by 255 yourself). Or an iterable of ``(x, y)``
            batches: ``npconv.data.from_tensor_slices((x, y)).batch(64)`` (the course's ``tf.data``
            line), a generator, a folder streamed from disk. The batches come as they are (``y``,
            ``batch_size``, ``shuffle`` and ``validation_split`` do not apply, as in Keras).
        y : labels (m,), (m, 1) or one-hot (m, K); the course's row layout (1, m) is transposed
            with a warning
        validation_split : fraction of the data, taken from the end before shuffling (Keras's rule)
        validation_data : a tuple ``(x_val, y_val)`` or an iterable of ``(x, y)`` batches
        shuffle : reshuffle every epoch (one gather, then contiguous batches)
        verbose : 0 silent, 1 a progress bar per epoch, 2 one line per epoch
        initial_epoch : the epoch to start from (0-based) when resuming; ``epochs`` is the index
            of the last epoch plus one, not a count of further epochs
        steps_per_epoch : batches per epoch from an iterable (default: all it yields); a generator
            goes on where the last epoch stopped
        kernels : the learner's course functions (a module, or the path of a ``.py`` file with
            ``conv_forward``, ``conv_backward``, ``pool_forward``, ``pool_backward``): the model's
            ``Conv2D`` and pooling layers train through them, slowly but truly (see
            :mod:`npconv.learner_kernels`)

        Randomness: each epoch's shuffling, ``Dropout`` masks and augmentation draw from a
        generator derived from the model's training seed (drawn from the package generator at the
        first ``fit`` and saved with the model), the epoch and the optimizer's update count. So a
        run resumed from a full checkpoint (``ModelCheckpoint``, ``save_weights_only=False``) with
        ``fit(initial_epoch=...)`` repeats the uninterrupted run bit for bit, in any process.
        Layers given their own ``seed=`` and callbacks' counters (``EarlyStopping``,
        ``ReduceLROnPlateau``) are not part of that: they start afresh. A
        :class:`~npconv.callbacks.BackupAndRestore` callback keeps those too, and sets
        ``initial_epoch`` itself.

        Raises
        ------
        TrainingDivergedError
            The loss became NaN/inf; the weights are those before the failing update.
        """
        self._require_compiled()
        if kernels is not None:
            from ..learner_kernels import learner_layers

            if not is_batch_source(x):
                as_input_batch(self, x, "x", build=True)  # the layers' sizes decide what the course can run
            with learner_layers(self, kernels), self._plan_layer_by_layer():
                return self.fit(
                    x,
                    y,
                    batch_size,
                    epochs,
                    verbose,
                    callbacks,
                    validation_split,
                    validation_data,
                    shuffle,
                    initial_epoch,
                    steps_per_epoch,
                )
        epochs, initial_epoch = epoch_range(epochs, initial_epoch)
        if verbose not in (0, 1, 2):
            raise ValueError(expected("verbose", "0 (silent), 1 (progress bar) or 2 (one line per epoch)", verbose))
        if isinstance(callbacks, cbks.Callback):
            raise TypeError(
                expected(
                    "callbacks", "a list of callbacks", type(callbacks).__name__, "Wrap it in a list: callbacks=[...]."
                )
            )
        if not 0 <= validation_split < 1:
            raise ValueError(expected("validation_split", "a fraction in [0, 1)", validation_split))
        plan = self._prepare_batches(
            x,
            y,
            check_positive_int(batch_size, "batch_size"),
            validation_split,
            validation_data,
            shuffle,
            steps_per_epoch,
        )
        history = cbks.History()
        callback_list = cbks.CallbackList(
            [history] + list(callbacks or []) + ([cbks.ProgressBar(verbose, epochs)] if verbose else []),
            self,
            {"verbose": verbose, "epochs": epochs, "steps": plan.n_batches},
        )
        self.history = history
        self.stop_training = False
        self._initial_epoch = None
        callback_list.on_train_begin()
        if self._initial_epoch is not None:  # a BackupAndRestore put its backup back
            initial_epoch = min(self._initial_epoch, epochs)
        plan.epoch = initial_epoch
        if self._training_seed is None:
            self._training_seed = int(utils.global_rng().integers(2**63))
        try:
            logs = self._run_epochs(plan, initial_epoch, epochs, callback_list)
        except Diverged as exc:
            callback_list.close()
            raise TrainingDivergedError(
                f"training diverged at epoch {plan.epoch + 1}, batch {plan.batch + 1}: {exc}. The model keeps the "
                f"weights from before this batch (the optimizer state is not restored). Lower the learning rate (now "
                f"{self.optimizer.learning_rate:g}), e.g. compile(optimizer=optimizers.Adam(1e-4)), "
                "or check the inputs' scale (divide images by 255)."
            ) from None
        except KeyboardInterrupt:
            callback_list.close()
            warnings.warn(
                f"fit interrupted at epoch {plan.epoch + 1}, batch {plan.batch + 1}: the model holds the "
                "weights after the last finished batch; returning the history so far.",
                stacklevel=2,
            )
            self.stop_training = True
            return history
        except BaseException:
            callback_list.close()
            raise
        callback_list.on_train_end(logs)
        return history

    def _run_epochs(self, plan: EpochPlan, initial_epoch: int, epochs: int, callback_list) -> dict:
        """Epochs ``initial_epoch`` to ``epochs - 1`` of ``plan``, each drawing from its own generator
        (:meth:`_epoch_rng`); returns the last logs. ``plan.epoch`` and ``plan.batch`` follow where
        training is, for ``fit``'s messages; Ctrl-C takes effect after the batch it arrives in."""
        logs: dict = {}
        with DeferredInterrupt() as interrupt, EpochGenerators() as package_rng:
            for epoch in range(initial_epoch, epochs):
                plan.epoch = epoch
                package_rng.use(self._epoch_rng(epoch))
                callback_list.on_epoch_begin(epoch, {"steps": plan.n_batches})
                names = self.metrics_names
                totals = [0.0] * len(names)  # Python floats: the float64 sums NumPy's would give
                seen = 0
                for batch, (xb, yb) in enumerate(self._epoch_batches(plan, epoch)):
                    plan.batch = batch
                    loss, out = self._train_step(xb, yb, plan.fused)
                    seen += len(xb)
                    values = [loss] + self._metric_values(yb, out, plan.fused)
                    totals = [total + len(xb) * float(value) for total, value in zip(totals, values)]
                    logs = {name: total / seen for name, total in zip(names, totals)}
                    callback_list.on_batch_end(batch, logs)
                    if interrupt.requested:
                        raise KeyboardInterrupt
                    if self.stop_training:
                        break
                if plan.validation is not None:
                    values = self._evaluate_batches(plan.validation(epoch), plan.fused, "validation_data")
                    logs.update({"val_" + k: v for k, v in values.items()})
                callback_list.on_epoch_end(epoch, logs)
                if self.stop_training:
                    break
        return logs

    def _epoch_rng(self, epoch) -> np.random.Generator:
        """The generator of one epoch: a function of the training seed, the epoch and the update
        count only, all three saved in a checkpoint, so resuming needs no saved generator state."""
        key = np.random.SeedSequence(self._training_seed, spawn_key=(epoch, self.optimizer.iterations))
        return np.random.Generator(np.random.PCG64(key))

    def _metric_values(self, y, out, fused):
        if not self._metrics:
            return []
        probabilities = self._output_probabilities(out, fused)
        return [metric(y, probabilities) for metric in self._metrics]

    def _evaluate_batches(self, batches, fused, name="x") -> dict:
        totals = np.zeros(1 + len(self._metrics))
        seen = 0
        for xb, yb in batches:
            out = self._forward(xb, False, logits=fused)
            loss = self.loss.from_logits_and_grad(yb, out)[0]
            totals += len(xb) * np.array([loss] + self._metric_values(yb, out, fused))
            seen += len(xb)
        if not seen:
            raise ValueError(expected(name, "at least one batch", "none", ONE_PASS_HINT))
        return dict(zip(self.metrics_names, (totals / seen).tolist()))

    def evaluate(self, x=None, y=None, batch_size=32, verbose=1, return_dict=False, steps=None):
        """``[loss, metric, ...]`` on ``(x, y)`` (arrays, or an iterable of ``(x, y)`` batches) at
        inference; just the loss without metrics."""
        self._require_compiled()
        batches = self._inference_batches(x, y, batch_size, steps, need_y=True)
        values = self._evaluate_batches(batches, self._training_plan())
        if verbose:
            print(" - ".join(f"{k}: {v:.4f}" for k, v in values.items()))
        if return_dict:
            return values
        result = list(values.values())
        return result if len(result) > 1 else result[0]

    def predict(self, x, batch_size=32, verbose=0, steps=None) -> np.ndarray:
        """The model's outputs (probabilities after a final softmax/sigmoid) for ``x`` (an array, or
        an iterable of ``x`` or ``(x, y)`` batches), batch by batch."""
        outputs = [
            self._forward(xb, False) for xb, _ in self._inference_batches(x, None, batch_size, steps, need_y=False)
        ]
        if not outputs:
            raise ValueError(expected("x", "at least one batch", "none", ONE_PASS_HINT))
        return outputs[0] if len(outputs) == 1 else np.concatenate(outputs)
