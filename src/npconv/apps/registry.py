"""Networks by name: ``get_arch("smallres", (64, 64, 3), 6)``; :func:`list_archs` names them all."""

from __future__ import annotations

import inspect
from collections.abc import Callable
from dataclasses import dataclass

from ..errors import expected
from .happy import happyModel
from .heads import check_n_classes
from .residual import smallres, tiny
from .signs import convolutional_model


@dataclass(frozen=True)
class Arch:
    build: Callable
    description: str


def _happy(input_shape, n_classes):
    if n_classes != 2:
        raise ValueError(
            expected(
                "n_classes for arch 'happy'",
                "2 (smiling or not: one sigmoid unit)",
                n_classes,
                "Use --arch smallres or --arch signs for more classes.",
            )
        )
    return happyModel(input_shape)


ARCHS: dict[str, Arch] = {
    "smallres": Arch(smallres, "small residual CNN, batch norm, global average pooling (default)"),
    "happy": Arch(_happy, "the course's Happy House model (binary; 37,633 params at 64x64x3)"),
    "signs": Arch(convolutional_model, "the course's SIGNS model (1,310 params for 6 classes)"),
    "tiny": Arch(tiny, "one strided convolution and a dense layer: seconds to train, for tests"),
}
DEFAULT_ARCH = "smallres"


def list_archs() -> list[str]:
    """The names :func:`get_arch` accepts, default first."""
    return [DEFAULT_ARCH] + sorted(n for n in ARCHS if n != DEFAULT_ARCH)


def check_arch(name) -> str:
    """``name`` (any case) if it is a registered arch, else a ``ValueError`` listing the valid ones."""
    key = name.lower() if isinstance(name, str) else name
    if key not in ARCHS:
        raise ValueError(expected("arch", "one of " + ", ".join(repr(n) for n in list_archs()), repr(name)))
    return key


def arch_options(name: str) -> set[str]:
    """The keyword options an arch takes besides ``input_shape`` and ``n_classes`` (e.g. ``flip``)."""
    params = inspect.signature(ARCHS[check_arch(name)].build).parameters
    return set(params) - {"input_shape", "n_classes"}


def get_arch(name: str, input_shape, n_classes: int, **options):
    """Build the network ``name`` for inputs ``(n_H, n_W, n_C)`` and ``n_classes`` classes.

    ``options`` go to the builder (for ``smallres``: ``widths``, ``dropout``, ``flip``,
    ``translate``, ``stem_pool``); an option the arch does not take is a ``ValueError``.
    """
    key = check_arch(name)
    n_classes = check_n_classes(n_classes)
    shape = tuple(int(s) for s in input_shape)
    if len(shape) != 3 or min(shape) < 1:
        raise ValueError(expected("input_shape", "(n_H, n_W, n_C)", repr(input_shape)))
    unknown = set(options) - arch_options(key)
    if unknown:
        raise ValueError(
            expected(f"options of arch {key!r}", f"some of {sorted(arch_options(key))}", repr(sorted(unknown)))
        )
    return ARCHS[key].build(input_shape=shape, n_classes=n_classes, **options)
