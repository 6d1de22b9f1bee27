"""Recipe files: a recipe as JSON, read back with every field checked (``npconv train --recipe FILE``).

A file is a JSON object of recipe fields, ``{"learning_rate": 0.001, "widths": [16, 32, 64]}``, or
what ``npconv tune`` writes as ``best_recipe.json``: ``{"recipe": {...}, "tune": {...}}`` (the
recipe, and how the search chose it). Fields the file leaves out keep the base recipe's values (the
data set's default); flags given beside the file override it (:func:`merge`).
"""

from __future__ import annotations

import json
from pathlib import Path

from ..errors import expected
from .recipe_fields import check_recipe, check_value, describe_fields
from .recipes import Recipe

#: The keys of a best_recipe.json besides "recipe" (what the search says about its choice).
ABOUT_KEYS = ("tune",)


def fields_json(fields: dict) -> dict:
    """Recipe fields ``{name: value}`` as JSON values (tuples as lists)."""
    return {name: list(value) if isinstance(value, tuple) else value for name, value in fields.items()}


def recipe_json(recipe: Recipe) -> dict:
    """Every field of ``recipe`` as JSON values."""
    return fields_json(vars(recipe))


def read_recipe(path, base: Recipe | None = None) -> Recipe:
    """The recipe in the JSON file ``path``: ``base`` (default :class:`Recipe`'s defaults) with the
    file's fields set. An unknown field or a value of the wrong type is a ``ValueError`` that names
    the file and lists the fields."""
    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(
            expected(
                "--recipe",
                "a recipe file (JSON)",
                f"{path} (no such file)",
                "npconv tune writes one: DIR/best_recipe.json.",
            )
        )
    try:
        content = json.loads(path.read_text())
    except (UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise ValueError(expected(f"--recipe {path}", "a JSON object of recipe fields", f"no JSON ({exc})")) from None
    return recipe_from_json(content, base, f"--recipe {path}")


def recipe_from_json(content, base: Recipe | None = None, where: str = "recipe") -> Recipe:
    """``base`` with the fields of the JSON object ``content`` (see the module docstring) set."""
    if (
        isinstance(content, dict)
        and isinstance(content.get("recipe"), dict)
        and set(content) <= {"recipe", *ABOUT_KEYS}
    ):
        content = content["recipe"]
    if not isinstance(content, dict):
        raise ValueError(
            expected(
                where,
                "a JSON object of recipe fields",
                type(content).__name__,
                f'For example {{"epochs": 24}}. The fields: {describe_fields()}.',
            )
        )
    fields = {name: check_value(name, value, f"{where}: field {name!r}") for name, value in content.items()}
    base = base or Recipe()
    return check_recipe(Recipe(**{**vars(base), **fields}), where)


def merge(base: Recipe, recipe_file=None, **flags) -> Recipe:
    """What ``npconv train --recipe FILE --epochs 5 ...`` trains with: ``base`` (the data set's
    recipe), then the file's fields, then every flag that was given (``None``: not given)."""
    recipe = base if recipe_file is None else read_recipe(recipe_file, base)
    return check_recipe(recipe.replace(**flags), "recipe")


def write_recipe(path, recipe: Recipe, about: dict | None = None) -> None:
    """Write ``recipe`` as ``{"recipe": ..., "tune": about}`` (atomically) to ``path``."""
    from ..saving import atomic_write

    content = {"recipe": recipe_json(recipe), **({"tune": about} if about else {})}
    text = json.dumps(content, indent=2) + "\n"
    atomic_write(path, lambda file: file.write(text.encode()))
