"""The import graph of src/npconv has no cycle: no two modules import each other, even through an
import inside a function, and each subpackage and top-level module builds only on those below it.

The graph is read from the source files with :mod:`ast` (``import x``, ``from . import x``,
``from ..x import y``, and ``importlib.import_module("npconv.x")`` with a literal name), so it sees
the imports a test run would never execute. A package is its ``__init__.py``: ``from ..jobs import
run_jobs`` in ``npconv.apps.job_work`` is an import of ``npconv.jobs``, and so is ``from . import
name`` in a module of ``npconv.jobs`` when ``name`` is not one of its modules. Python importing a
package's ``__init__`` before a module of it is not an edge (``npconv.jobs.local`` importing
``.events`` does not import ``npconv.jobs`` back). The root package, ``npconv/__init__.py``, is the
facade: it imports its subpackages lazily by computed names, which the graph does not follow, so
a module that takes ``__version__`` from it imports nothing back.
"""

from __future__ import annotations

import ast
from pathlib import Path

SRC = Path(__file__).resolve().parents[1] / "src"


def _module_name(path: Path) -> str:
    parts = list(path.relative_to(SRC).with_suffix("").parts)
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


MODULES = {_module_name(path): path for path in (SRC / "npconv").rglob("*.py")}

#: Cycles kept on purpose, each as its sorted list of modules with the reason beside it: none. A
#: cycle is broken by moving what both sides need into a module of its own (as jobs/events.py and
#: apps/fitting.py were), not by an import inside a function, and not by listing it here.
ALLOWED_CYCLES: list[list[str]] = []


def _imported(module: str, is_package: bool, node) -> list[str]:
    """The npconv modules that ``node`` (an import statement, or an ``import_module`` call, in
    ``module``) imports."""
    package = module if is_package else module.rpartition(".")[0]
    if isinstance(node, ast.Call):
        name = node.args[0].value
        level = len(name) - len(name.lstrip("."))
        if level:  # import_module(".x", __package__)
            name = ".".join(package.split(".")[: len(package.split(".")) + 1 - level] + [name[level:]])
        names = [name]
    elif isinstance(node, ast.Import):
        names = [alias.name for alias in node.names]
    else:
        base = node.module or ""
        if node.level:
            parts = module.split(".")[: len(module.split(".")) + is_package - node.level]
            base = ".".join(parts + ([node.module] if node.module else []))
        # `from package import name` imports the module package.name when there is one.
        names = [f"{base}.{alias.name}" if f"{base}.{alias.name}" in MODULES else base for alias in node.names]
    found = []
    for name in names:
        while name and name not in MODULES:
            name = name.rpartition(".")[0]
        if name:
            found.append(name)
    return found


def _imports_by_name(node) -> bool:
    """Whether ``node`` is ``importlib.import_module("literal", ...)`` (or ``import_module(...)``)."""
    return (
        isinstance(node, ast.Call)
        and (
            (isinstance(node.func, ast.Attribute) and node.func.attr == "import_module")
            or (isinstance(node.func, ast.Name) and node.func.id == "import_module")
        )
        and bool(node.args)
        and isinstance(node.args[0], ast.Constant)
        and isinstance(node.args[0].value, str)
    )


def _statements(tree, at_import_time: bool):
    """The import statements (and ``import_module`` calls with a literal name) of ``tree``; only those
    run when the module is imported (not inside a function) with ``at_import_time``."""
    stack = list(tree.body)
    while stack:
        node = stack.pop()
        if isinstance(node, (ast.Import, ast.ImportFrom)) or _imports_by_name(node):
            yield node
            stack.extend(ast.iter_child_nodes(node))
        elif not (at_import_time and isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef, ast.Lambda))):
            stack.extend(ast.iter_child_nodes(node))


def import_graph(at_import_time: bool = False, depth: int | None = None) -> dict[str, set[str]]:
    """``{importer: {imported, ...}}`` between npconv modules, or between the units made of their first
    ``depth`` name parts (``depth=2``: ``npconv.apps``, ``npconv.losses``, ...)."""

    def unit(name):
        return name if depth is None else ".".join(name.split(".")[:depth])

    graph: dict[str, set[str]] = {}
    for module, path in MODULES.items():
        tree = ast.parse(path.read_text(encoding="utf-8"))
        for node in _statements(tree, at_import_time):
            for target in _imported(module, path.name == "__init__.py", node):
                a, b = unit(module), unit(target)
                if a != b:
                    graph.setdefault(a, set()).add(b)
    return graph


def cycles(graph: dict[str, set[str]]) -> list[list[str]]:
    """The strongly connected components of more than one node (Tarjan's algorithm, iterative)."""
    index, low, on_stack, stack, found = {}, {}, set(), [], []
    for root in sorted(graph):
        if root in index:
            continue
        work = [(root, iter(sorted(graph.get(root, ()))))]
        index[root] = low[root] = len(index)
        stack.append(root)
        on_stack.add(root)
        while work:
            node, children = work[-1]
            child = next(children, None)
            if child is not None:
                if child not in index:
                    index[child] = low[child] = len(index)
                    stack.append(child)
                    on_stack.add(child)
                    work.append((child, iter(sorted(graph.get(child, ())))))
                elif child in on_stack:
                    low[node] = min(low[node], index[child])
                continue
            work.pop()
            if work:
                low[work[-1][0]] = min(low[work[-1][0]], low[node])
            if low[node] == index[node]:
                component = []
                while True:
                    member = stack.pop()
                    on_stack.discard(member)
                    component.append(member)
                    if member == node:
                        break
                if len(component) > 1:
                    found.append(sorted(component))
    return found


def test_the_graph_is_read_from_the_sources():
    graph = import_graph()
    assert "npconv.functional._shapes" in graph["npconv.layers.conv"]  # from ..functional._shapes import
    assert "npconv.functional" in graph["npconv.layers.conv"]  # from .. import functional
    assert "npconv.layers.activations" in graph["npconv.layers.conv"]  # from . import activations
    assert "npconv.jobs" in graph["npconv.apps.job_work"]  # from ..jobs import run_jobs
    assert "npconv.jobs.local" in graph["npconv.jobs.runners"]  # inside run_jobs
    assert "npconv.jobs.local" not in import_graph(at_import_time=True).get("npconv.jobs.runners", ())


def test_packages_and_imports_by_name_are_read_as_python_imports_them():
    graph = import_graph()
    assert "npconv.jobs" in graph["npconv.apps.training"]  # from ..jobs import ...: the package's __init__
    assert "npconv" in graph["npconv.apps.fitting"]  # from .. import __version__: the root's __init__
    assert "npconv.jobs" not in graph["npconv.jobs.local"]  # from .events import ...: not the package
    assert "npconv" not in graph  # the facade imports its subpackages by computed names
    assert "npconv.data.augment" in graph["npconv.layers.augmentation"]  # import_module("npconv.data.augment")
    call = ast.parse('import_module(".course", __package__)').body[0].value
    assert _imported("npconv.utils", False, call) == ["npconv.course"]
    assert _imported("npconv.cli", True, ast.parse('import_module(".train", __name__)').body[0].value) == [
        "npconv.cli.train"
    ]


def test_the_finder_finds_a_cycle():
    assert cycles({"a": {"b"}, "b": {"c"}, "c": {"a"}, "d": {"a"}}) == [["a", "b", "c"]]
    assert cycles({"a": {"b"}, "b": set()}) == []


def test_no_subpackage_or_top_level_module_imports_one_that_imports_it_back():
    assert cycles(import_graph(depth=2)) == []


def test_no_modules_import_each_other_at_import_time():
    assert cycles(import_graph(at_import_time=True)) == []


def test_no_modules_import_each_other_even_inside_functions():
    assert cycles(import_graph()) == ALLOWED_CYCLES
