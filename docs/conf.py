"""Sphinx configuration for npconv's documentation.

Build (offline, warnings as errors; ``pip install -e '.[docs]'``)::

    python -m sphinx -W --keep-going -b html docs docs/_build/html

Three pages are generated at build time so that they never drift from the code and the results:
the CLI reference (``_ext/npconv_cli.py``, from the argparse parsers), the benchmarks page
(``_ext/npconv_benchmarks.py``, from ``benchmarks/results/*.json``) and the API reference
(autodoc + numpydoc, from the docstrings). The notebooks are shown with their committed outputs,
never executed here.
"""

from __future__ import annotations

import sys
from pathlib import Path

DOCS = Path(__file__).resolve().parent
ROOT = DOCS.parent
sys.path.insert(0, str(ROOT / "src"))  # the checkout's npconv, also where an older one is installed
sys.path.insert(0, str(DOCS / "_ext"))

import npconv  # noqa: E402

project = "npconv"
author = "the npconv authors"
copyright = "2026, the npconv authors"
release = npconv.__version__
version = release

extensions = [
    "myst_nb",  # Markdown pages (MyST) and the notebooks
    "sphinx.ext.autodoc",
    "sphinx.ext.autosummary",
    "sphinx.ext.mathjax",
    "sphinx.ext.viewcode",
    "numpydoc",
    "npconv_cli",
    "npconv_benchmarks",
]

exclude_patterns = ["_build", "**.ipynb_checkpoints"]
templates_path = []
html_static_path = ["_static"]
html_css_files = ["custom.css"]

# MyST and notebooks: the notebooks' committed outputs are shown as they are (no kernel runs here).
myst_enable_extensions = ["colon_fence", "deflist", "dollarmath"]
myst_heading_anchors = 3
nb_execution_mode = "off"
nb_merge_streams = True

# API reference: autodoc reads the docstrings, numpydoc renders their sections.
autodoc_default_options = {"members": True, "member-order": "bysource"}
autodoc_typehints = "none"  # the docstrings say the shapes and types; signatures stay readable
autosummary_generate = False  # the module pages list their members themselves (no stub files)
numpydoc_show_class_members = False  # autodoc already documents the members; the tables would repeat them
numpydoc_class_members_toctree = False
numpydoc_validation_checks: set[str] = set()  # render the project's docstrings as written; no style audit
numpydoc_xref_param_type = False

html_theme = "pydata_sphinx_theme"
html_title = f"npconv {release}"
html_theme_options = {
    "navigation_with_keys": False,
    "show_toc_level": 2,
    "navbar_align": "left",
    "header_links_before_dropdown": 6,
    "secondary_sidebar_items": ["page-toc"],
    "footer_start": ["copyright"],
    "footer_end": ["sphinx-version"],
}
html_sidebars = {"index": [], "benchmarks/index": []}
html_show_sourcelink = False
