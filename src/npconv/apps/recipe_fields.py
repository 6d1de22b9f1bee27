"""A recipe's fields as a user writes them: on the command line (``npconv tune --grid FIELD=V1,V2``)
and in recipe files (:mod:`.recipe_files`). Every value is read as its field's type, then checked;
a field that does not exist, or a value that does not fit, is an error that lists the fields.

Text syntax (:func:`parse_value`), by the field's type:

==============  ===========================================================================
type            text
==============  ===========================================================================
bool            ``true``/``false`` (also ``yes``/``no``, ``on``/``off``, ``1``/``0``)
int             ``12``
float           ``0.002``, ``2e-3``
str             as written (``grayscale``); ``none`` for "not set" where the field allows it
tuple (widths)  ``16-32-64``, or ``(16,32,64)``; ``none`` for the arch's default
==============  ===========================================================================
"""

from __future__ import annotations

import dataclasses
import math
import types
import typing

from ..errors import expected
from .recipes import Recipe

BOOLEANS = {"true": True, "yes": True, "on": True, "1": True, "false": False, "no": False, "off": False, "0": False}
COLOR_MODES = ("rgb", "grayscale")

_TYPES = typing.get_type_hints(Recipe)


def field_names() -> list[str]:
    """The recipe's fields, in the order :class:`~.recipes.Recipe` declares them."""
    return [f.name for f in dataclasses.fields(Recipe)]


def describe_fields() -> str:
    """``"arch (str), epochs (int), ..."``: what error messages list."""
    return ", ".join(f"{name} ({_type_name(name)})" for name in field_names())


def _type_name(name: str) -> str:
    kind, optional = _kind(name)
    return f"{kind.__name__} or none" if optional else kind.__name__


def _kind(name: str) -> tuple[type, bool]:
    """``(type, whether None is allowed)`` of field ``name``."""
    hint = _TYPES[name]
    if isinstance(hint, types.UnionType) or typing.get_origin(hint) is typing.Union:
        args = [a for a in typing.get_args(hint) if a is not type(None)]
        return args[0], True
    return hint, False


def check_field(name: str, where: str) -> str:
    """``name`` if it is a recipe field, else a ``ValueError`` (``where`` says what was given)."""
    if name not in _TYPES:
        raise ValueError(expected(where, "a recipe field", repr(name), f"The fields: {describe_fields()}."))
    return name


def parse_value(name: str, text: str, where: str):
    """The value ``text`` says for field ``name`` (syntax in the module docstring), checked by
    :func:`check_value`."""
    check_field(name, where)
    kind, optional = _kind(name)
    word = text.strip()
    if optional and word.lower() == "none":
        return check_value(name, None, where)
    try:
        if kind is bool:
            value = BOOLEANS[word.lower()]
        elif kind is int:
            value = int(word)
        elif kind is float:
            value = float(word)
        elif kind is tuple:
            value = _parse_tuple(word)
        else:
            value = word
    except (KeyError, ValueError):
        raise ValueError(
            expected(
                where,
                f"{name} as {_type_name(name)} ({_syntax(kind)})",
                repr(text),
                f"The fields: {describe_fields()}.",
            )
        ) from None
    return check_value(name, value, where)


def _syntax(kind: type) -> str:
    return {
        bool: "true or false",
        int: "a whole number",
        float: "a number such as 0.002 or 2e-3",
        tuple: "numbers joined by '-', such as 16-32-64, or (16,32,64)",
    }.get(kind, "text")


def _parse_tuple(word: str) -> tuple:
    inner = word[1:-1] if word.startswith("(") and word.endswith(")") else word
    parts = inner.split("," if "," in inner else "-")
    return tuple(int(p) for p in parts)


def check_value(name: str, value, where: str):
    """``value`` for field ``name``, if it has the field's type (an int is a float; a list is a
    tuple) and is in its range; else a ``ValueError`` saying what fits."""
    check_field(name, where)
    kind, optional = _kind(name)
    if value is None:
        if optional:
            return None
        raise ValueError(expected(where, f"{name} as {_type_name(name)}", "none", f"The fields: {describe_fields()}."))
    if kind is float and isinstance(value, int) and not isinstance(value, bool):
        value = float(value)
    if kind is tuple and isinstance(value, list):
        value = tuple(value)
    if not isinstance(value, kind) or (kind is int and isinstance(value, bool)):
        raise ValueError(
            expected(
                where,
                f"{name} as {_type_name(name)}",
                f"{value!r} ({type(value).__name__})",
                f"The fields: {describe_fields()}.",
            )
        )
    problem = _out_of_range(name, value)
    if problem:
        raise ValueError(expected(where, f"{name} as {problem}", repr(value)))
    return value


def _out_of_range(name: str, value) -> str:
    """What ``value`` should be for field ``name`` if it is not; ``""`` when it fits."""
    if name == "arch":
        from .registry import ARCHS, list_archs

        return "" if value in ARCHS else "one of " + ", ".join(list_archs())
    if name in ("epochs", "batch_size", "image_size", "ensemble"):
        return "" if value > 0 else "a positive whole number"
    if name == "frozen_epochs":
        return "" if value >= 0 else "a whole number >= 0"
    if isinstance(value, float) and not math.isfinite(value):
        return "a finite number"
    if name == "learning_rate":
        return "" if value > 0 else "a positive number"
    if name == "weight_decay":
        return "" if value >= 0 else "a number >= 0"
    if name in ("translate", "label_smoothing", "zoom", "contrast"):
        return "" if 0 <= value <= 1 else "a number from 0 to 1"
    if name == "val_split":
        return "" if 0 < value < 1 else "a fraction between 0 and 1"
    if name == "color_mode":
        return "" if value in COLOR_MODES else "one of " + ", ".join(COLOR_MODES)
    if name == "tta":
        from .tta import TTA_MODES

        return "" if value in TTA_MODES else "one of " + ", ".join(TTA_MODES) + " or none"
    if name == "widths":
        return (
            ""
            if value and all(isinstance(w, int) and not isinstance(w, bool) and w > 0 for w in value)
            else "positive whole numbers, one per stage"
        )
    return ""


def check_recipe(recipe: Recipe, where: str = "recipe") -> Recipe:
    """``recipe`` if every field has its type and range (:func:`check_value`), else a ``ValueError``."""
    for name in field_names():
        check_value(name, getattr(recipe, name), f"{where}: {name}")
    return recipe
