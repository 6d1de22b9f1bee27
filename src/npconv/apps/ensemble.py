"""Averaging models: one model whose output is the mean of several trained models' outputs.

``average_models([m1, m2, m3])`` builds one functional model: the input goes through a copy of each
member (its layers renamed ``m1_<name>``, ``m2_<name>``, ...; weights and batch-norm statistics
copied), an :class:`~npconv.layers.Average` layer takes the mean of their logits ``z_i`` (the output
layers' values before the sigmoid or softmax), and the members' output activation follows::

    p(x) = sigmoid or softmax((z_1(x) + ... + z_N(x)) / N)

For a softmax this is the normalised geometric mean of the members' probabilities. Averaging
logits rather than probabilities keeps the model's last layer an activation, so npconv's fused loss
(and with it ``evaluate`` and further ``fit``) works on the average as on any model.

Models trained from different random starts make partly different mistakes, so the average makes
fewer (``npconv train --ensemble N``; ``benchmarks/recipe_cv.py`` measures by how much). The result
is an ordinary model: it saves, loads, evaluates, serves and exports to ONNX like any other, and
costs N times one member's time to train and to run.
"""

from __future__ import annotations

from .. import layers as L
from ..errors import expected
from ..models import Input, Model

PREFIX = "m{}_"


def average_models(members, name: str = "ensemble") -> Model:
    """One model averaging the outputs of ``members`` (models with one input and output shape).

    The members are left as they are: the new model holds copies of their layers and weights.
    """
    members = list(members)
    if len(members) < 2:
        raise ValueError(expected("members", "at least 2 models to average", len(members)))
    shapes = {(m.input_shape[1:], m.output_shape[1:]) for m in members}
    if len(shapes) != 1:
        raise ValueError(
            expected(
                "members",
                "models with the same input and output shapes",
                ", ".join(f"{m.name}: {m.input_shape} -> {m.output_shape}" for m in members),
            )
        )
    activation = {output_activation(m) for m in members}
    if len(activation) != 1:
        raise ValueError(expected("members", "models ending in the same activation", sorted(activation)))
    activation = activation.pop()
    inputs = Input(shape=tuple(members[0].input_shape[1:]), name="image")
    logits, copies = [], []
    for k, member in enumerate(members, start=1):
        tensors = {0: inputs}
        for node in member._nodes:
            layer = node.layer
            config = {**layer.get_config(), "name": PREFIX.format(k) + layer.name}
            if node is member._nodes[-1] and "activation" in config:
                config["activation"] = "linear"  # the logits; the activation follows the average
            copy = type(layer).from_config(config)
            args = [tensors[i] for i in node.inputs]
            tensors[node.output] = copy(args if layer.multi_input else args[0])
            copies.append((copy, layer))
        logits.append(tensors[member._nodes[-1].output])
    output = L.Average(name="average")(logits)
    if activation != "linear":
        output = L.Activation(activation, name="output")(output)
    model = Model(inputs, output, name=name)
    for copy, layer in copies:
        copy.set_weights(layer.get_weights())
    return model


def output_activation(model) -> str:
    """The name of the activation ``model``'s last layer ends in (``"linear"`` when none)."""
    return getattr(getattr(model._nodes[-1].layer, "activation", None), "name", "linear")


def members_of(model) -> int:
    """How many models ``model`` averages (its metadata's ``ensemble``), 1 for a single model."""
    return int(((getattr(model, "metadata", None) or {}).get("ensemble") or {}).get("members", 1))
