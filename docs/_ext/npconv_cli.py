"""The CLI reference, written from ``npconv.cli.build_parser()`` when the docs build.

One Markdown page per command (``docs/cli/generated/<command>.md``, git-ignored) with the command's
description, its usage line, every argument with its help, choices and default, and the exact
``npconv <command> --help`` text; plus ``generated/table.inc`` and ``generated/toc.inc``, the
commands in ``npconv --help``'s order, which ``docs/cli/index.md`` includes. Nothing is copied by
hand, so the pages cannot drift from ``--help``.
"""

from __future__ import annotations

import argparse
import os
from pathlib import Path

HELP_WIDTH = "80"  # argparse wraps --help to $COLUMNS; fixed so the pages do not depend on the terminal


def _subcommands(parser: argparse.ArgumentParser):
    """``(name, help, sub-parser)`` for each command, in the order ``npconv --help`` lists them."""
    for action in parser._actions:
        if isinstance(action, argparse._SubParsersAction):
            helps = {choice.dest: choice.help for choice in action._choices_actions}
            seen = {}  # an alias names the same parser again (npconv datasets = npconv data)
            for name, sub in action.choices.items():
                seen.setdefault(id(sub), [name, helps.get(name) or "", sub, []])[3].append(name)
            return [(name, summary, sub, names[1:]) for name, summary, sub, names in seen.values()]
    return []


def _flags(action: argparse.Action) -> str:
    if not action.option_strings:
        return action.metavar or action.dest
    if action.nargs == 0:
        return ", ".join(action.option_strings)
    metavar = action.metavar or action.dest.upper()
    if isinstance(metavar, tuple):
        metavar = " ".join(metavar)
    if action.nargs == "?":
        metavar = f"[{metavar}]"
    elif action.nargs in ("*", "+"):
        metavar = f"{metavar} ..."
    return ", ".join(f"{flag} {metavar}" for flag in action.option_strings)


def _code(text: str) -> str:
    """Inline code that survives backticks inside it."""
    fence = "``" if "`" in text else "`"
    pad = " " if text.startswith("`") or text.endswith("`") else ""
    return f"{fence}{pad}{text}{pad}{fence}"


def _escape(text: str) -> str:
    """Help text as Markdown text: MyST must not read ``*``, ``_`` or ``<`` in it as markup."""
    for char in "\\*_<>[]`|":
        text = text.replace(char, "\\" + char)
    return " ".join(text.split())


def _argument(action: argparse.Action) -> str:
    parts = []
    if action.help:
        parts.append(
            _sentence(
                action.help % {"default": action.default, "prog": "npconv"} if "%(" in action.help else action.help
            )
        )
    if action.choices is not None and not isinstance(action, argparse._SubParsersAction):
        parts.append("Choices: " + ", ".join(_code(str(choice)) for choice in action.choices) + ".")
    default = action.default
    if (
        action.option_strings
        and action.nargs != 0
        and default not in (None, argparse.SUPPRESS)
        and "default" not in (action.help or "")
    ):
        parts.append(f"Default: {_code(str(default))}.")
    if action.required and action.option_strings:
        parts.append("Required.")
    missing = "see the description above" if not action.option_strings else "(no help text)"
    return f"{_code(_flags(action))}\n: {' '.join(parts) or missing}\n"


def _sentence(text: str) -> str:
    text = _escape(text)
    return text[:1].upper() + text[1:] + ("" if text.endswith((".", "!", "?", ")")) else ".")


def command_page(name: str, summary: str, parser: argparse.ArgumentParser, aliases=()) -> str:
    """The Markdown page of ``npconv <name>``."""
    lines = [f"# npconv {name}", ""]
    if summary:
        lines += [_sentence(summary), ""]
    if aliases:
        lines += ["Also spelled " + ", ".join(_code(f"npconv {alias}") for alias in aliases) + ".", ""]
    if parser.description and parser.description != summary:
        lines += [_escape(parser.description), ""]
    lines += ["```text", parser.format_usage().strip(), "```", ""]
    groups = [
        (group.title, [a for a in group._group_actions if a.help != argparse.SUPPRESS])
        for group in parser._action_groups
    ]
    for title, actions in groups:
        if not actions:
            continue
        lines += [f"## {title[0].upper() + title[1:]}", ""]
        lines += [_argument(action) for action in actions]
    if parser.epilog:
        lines += [_escape(parser.epilog), ""]
    lines += ["## `--help`", "", "```text", parser.format_help().rstrip(), "```", ""]
    return "\n".join(lines)


def write_pages(outdir: Path) -> list[str]:
    """Write every command's page and the table of contents into ``outdir``; returns the names."""
    previous = os.environ.get("COLUMNS")
    os.environ["COLUMNS"] = HELP_WIDTH
    try:
        from npconv.cli import build_parser

        parser = build_parser()
        commands = _subcommands(parser)
        pages = {name: command_page(name, summary, sub, aliases) for name, summary, sub, aliases in commands}
        overview = parser.format_help().rstrip()
    finally:
        if previous is None:
            del os.environ["COLUMNS"]
        else:
            os.environ["COLUMNS"] = previous
    outdir.mkdir(parents=True, exist_ok=True)
    for stale in outdir.glob("*.md"):
        if stale.stem not in pages:
            stale.unlink()
    for name, text in pages.items():
        _write_if_changed(outdir / f"{name}.md", text)
    table = ["| command | what it does |", "|---|---|"]
    table += [f"| [`npconv {name}`](generated/{name}.md) | {_escape(summary)} |" for name, summary, _, _ in commands]
    toc = ["```{toctree}", ":hidden:", ""] + [f"generated/{name}" for name in pages] + ["```", ""]
    _write_if_changed(outdir / "table.inc", "\n".join(table) + "\n")
    _write_if_changed(outdir / "toc.inc", "\n".join(toc + ["## `npconv --help`", "", "```text", overview, "```", ""]))
    return list(pages)


def _write_if_changed(path: Path, text: str) -> None:
    """Rewrite only what changed, so Sphinx rebuilds only those pages."""
    if not path.exists() or path.read_text() != text:
        path.write_text(text)


def _on_builder_inited(app) -> None:
    write_pages(Path(app.srcdir) / "cli" / "generated")


def setup(app):
    app.connect("builder-inited", _on_builder_inited)
    return {"parallel_read_safe": True, "parallel_write_safe": True, "version": "1"}
