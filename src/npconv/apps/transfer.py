"""Transfer learning: start a model from a saved one (``npconv train DATA --init MODEL``).

The new model is the pretrained model's arch, built for the new data's classes; every layer whose
name and weight shapes match takes the pretrained weights (batch-norm moving statistics included).
The output layer is kept when the classes are the same (a smile model fine-tuned on the Happy House
pictures keeps its smile/no-smile unit); otherwise it starts fresh. A model that averages N models
(``npconv train --ensemble N``) is fine-tuned as N models, each from its own member, then averaged.
Data is fed at the pretrained model's input size and colour mode: :meth:`Pretrained.adapt` sets
them in the recipe.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from ..errors import expected
from .datasets import match_classes
from .ensemble import PREFIX, members_of
from .photos import color_mode


@dataclass
class Pretrained:
    """A saved model to start training from: ``Pretrained.load("runs/smiles.npz")``."""

    path: Path
    model: object

    @classmethod
    def load(cls, path) -> Pretrained:
        from ..models import load_model

        path = Path(path)
        if not path.is_file():
            raise FileNotFoundError(
                expected(
                    "--init",
                    "a model file saved by npconv",
                    f"{path} (no such file)",
                    "Train one first, e.g. npconv train smiles --out runs/smiles.npz.",
                )
            )
        model = load_model(path)
        meta = model.metadata or {}
        if "app" not in meta or "input_shape" not in meta:
            raise ValueError(
                expected(
                    f"--init {path}",
                    "a model trained by npconv train (it records its arch)",
                    "a model without that metadata",
                    "Fine-tune it in Python instead: load_model, then fit.",
                )
            )
        return cls(path, model)

    def __reduce__(self):
        # Sent to a worker process (npconv.jobs) as its file's bytes, loaded there as load() loads it.
        from ..saving import model_bytes

        return _from_bytes, (str(self.path), model_bytes(self.model))

    @property
    def meta(self) -> dict:
        return self.model.metadata

    @property
    def arch(self) -> str:
        return self.meta["app"]

    @property
    def members(self) -> int:
        """How many models the pretrained model averages (``npconv train --ensemble``), else 1."""
        return members_of(self.model)

    def adapt(self, recipe):
        """``recipe`` at the pretrained model's input size and colour mode, and its arch and width; an
        average of N models is fine-tuned as N models, each from its own (``ensemble=N``)."""
        image_size, color_mode = pretrained_input(self.meta)
        widths = self.meta.get("recipe", {}).get("widths")
        return recipe.replace(
            arch=self.arch,
            image_size=image_size,
            color_mode=color_mode,
            widths=tuple(widths) if widths else None,
            ensemble=self.members,
        )

    def initialise(self, model, member: int = 0) -> list[str]:
        """Copy the shared layers' weights into ``model`` (see :func:`copy_matching_weights`) and record
        where they came from in ``model.metadata["initialised_from"]``. From an average of models,
        ``member`` k takes the weights of the pretrained model's member k (its layers ``m{k+1}_*``)."""
        if self.members > 1 and not 0 <= member < self.members:
            raise ValueError(
                expected("member", f"one of the {self.members} averaged models (0 to {self.members - 1})", member)
            )
        keep_head = same_classes(self.meta["class_names"], model.metadata["class_names"])
        prefix = PREFIX.format(member + 1) if self.members > 1 else ""
        copied = copy_matching_weights(self.model, model, keep_head, prefix)
        with_weights = sum(1 for layer in model.layers if layer.weights)
        model.metadata["initialised_from"] = describe_init(self.path, self.meta, copied, with_weights)
        if self.members > 1:
            model.metadata["initialised_from"]["member"] = member + 1
        return copied


def _from_bytes(path: str, content: bytes) -> Pretrained:
    from ..models import load_model

    return Pretrained(Path(path), load_model(content))


def pretrained_input(meta: dict) -> tuple[int, str]:
    """``(image_size, color_mode)`` the pretrained model takes, from its metadata ``input_shape``."""
    n_H, n_W, n_C = (int(s) for s in meta["input_shape"])
    if n_H != n_W:
        raise ValueError(expected("--init model input", "square images", f"{n_H}x{n_W}"))
    return n_H, color_mode((n_H, n_W, n_C))


def same_classes(pretrained_names, class_names) -> bool:
    """Whether the data's classes are the pretrained model's, in the same order (matched by name)."""
    if len(pretrained_names) != len(class_names):
        return False
    try:
        return list(match_classes(class_names, pretrained_names)) == list(range(len(class_names)))
    except ValueError:
        return False


def copy_matching_weights(source, target, keep_head: bool, prefix: str = "") -> list[str]:
    """Copy ``source``'s weights into ``target`` layer by layer, matched by name and shape: the
    target's layer ``name`` takes the source's layer ``prefix + name``.

    The output layer (``target.layers[-1]``) is copied only when ``keep_head``. Returns the names of
    the layers that took pretrained weights; the others keep their fresh initialisation.
    """
    by_name = {layer.name[len(prefix) :]: layer for layer in source.layers if layer.name.startswith(prefix)}
    head = target.layers[-1].name
    copied = []
    for layer in target.layers:
        old = by_name.get(layer.name)
        if old is None or not layer.weights or (layer.name == head and not keep_head):
            continue
        if [w.value.shape for w in old.weights] != [w.value.shape for w in layer.weights]:
            continue
        layer.set_weights(old.get_weights())
        copied.append(layer.name)
    return copied


def describe_init(path, meta: dict, copied: list[str], n_layers_with_weights: int) -> dict:
    """The ``initialised_from`` entry of the fine-tuned model's metadata."""
    trained = meta.get("trained", {})
    return {
        "path": str(Path(path)),
        "app": meta.get("app"),
        "dataset": meta.get("dataset"),
        "class_names": meta.get("class_names"),
        "held_out_accuracy": trained.get("held_out_accuracy"),
        "layers_copied": len(copied),
        "layers_with_weights": n_layers_with_weights,
    }
