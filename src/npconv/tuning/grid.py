"""Grids of recipe variants: ``FIELD=V1,V2[,...]``, several grids making their product.

``parse_grids(["learning_rate=1e-3,2e-3", "widths=16-32-64,(32,64,128)"])`` is four variants, the
first grid's field changing slowest. Values are read as their field's type
(:mod:`npconv.apps.recipe_fields`); commas inside parentheses belong to one value.
"""

from __future__ import annotations

import dataclasses
import itertools

from ..apps.recipe_fields import check_field, check_recipe, parse_value
from ..errors import expected


def split_values(text: str) -> list[str]:
    """``"a,(1,2),b"`` -> ``["a", "(1,2)", "b"]``: the commas outside parentheses separate values."""
    values, depth, current = [], 0, ""
    for char in text:
        depth += {"(": 1, ")": -1}.get(char, 0)
        if char == "," and depth == 0:
            values.append(current)
            current = ""
        else:
            current += char
    return values + [current]


def parse_grid(text: str) -> tuple[str, list]:
    """``"FIELD=V1,V2"`` -> ``(FIELD, [v1, v2])``, each value of the field's type."""
    where = f"--grid {text!r}"
    name, equals, values = text.partition("=")
    name = name.strip()
    if not equals or not name:
        raise ValueError(
            expected(where, "FIELD=V1,V2[,...]", repr(text), "For example --grid learning_rate=1e-3,2e-3.")
        )
    check_field(name, where)
    words = split_values(values)
    if not values.strip() or any(not w.strip() for w in words):
        raise ValueError(
            expected(where, f"values for {name} separated by commas", repr(values), f"For example --grid {name}=V1,V2.")
        )
    parsed = [parse_value(name, word, where) for word in words]
    if len(set(map(repr, parsed))) != len(parsed):
        raise ValueError(expected(where, f"different values for {name}", repr(values)))
    return name, parsed


def parse_grids(texts) -> list[dict]:
    """The variants of the grids ``texts``: one dict of changed fields per variant (``[{}]`` for no
    grid: the base recipe alone)."""
    grids = [parse_grid(text) for text in texts]
    names = [name for name, _ in grids]
    repeated = sorted({n for n in names if names.count(n) > 1})
    if repeated:
        raise ValueError(
            expected(
                "--grid",
                "each field in one grid",
                f"{', '.join(repeated)} in several",
                f"Put all the values in one: --grid {repeated[0]}=V1,V2,V3.",
            )
        )
    return [dict(zip(names, values)) for values in itertools.product(*(values for _, values in grids))]


def variant_recipes(base, variants: list[dict]) -> list:
    """``base`` with each variant's fields set, every one checked (:func:`check_recipe`)."""
    return [check_recipe(dataclasses.replace(base, **changes), f"variant {describe(changes)}") for changes in variants]


def describe(changes: dict) -> str:
    """``{"learning_rate": 0.001, "widths": (16, 32)}`` -> ``"learning_rate=0.001 widths=16-32"``
    (``"base"`` for no change)."""
    if not changes:
        return "base"
    return " ".join(f"{name}={_text(value)}" for name, value in changes.items())


def _text(value) -> str:
    """A value as a grid writes it."""
    if value is None:
        return "none"
    if isinstance(value, bool):
        return str(value).lower()
    return "-".join(map(str, value)) if isinstance(value, tuple) else str(value)
