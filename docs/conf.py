"""Sphinx configuration of the jaxpapers documentation.

Build (warnings are errors), from the repository root:

    python -m sphinx -W --keep-going -b html docs docs/_build/html
"""

from __future__ import annotations

import os
import pathlib
import shutil
import sys

DOCS = pathlib.Path(__file__).resolve().parent
ROOT = DOCS.parent
sys.path.insert(0, str(ROOT))  # document this checkout's jaxpapers, not an installed copy
os.environ.setdefault("JAX_PLATFORMS", "cpu")

import jaxpapers  # noqa: E402

project = "jaxpapers"
author = "the jaxpapers authors"
copyright = "2026, the jaxpapers authors"
version = release = jaxpapers.__version__

extensions = [
    "myst_nb",
    "sphinx.ext.autodoc",
    "sphinx.ext.autosummary",
    "sphinx.ext.napoleon",
    "sphinx.ext.mathjax",
]

# The notebooks live in notebooks/ beside the package; they are rendered from a copy made here at
# every build (docs/notebooks/ is not committed), with their stored outputs, never executed.
_NOTEBOOKS = DOCS / "notebooks"
_NOTEBOOKS.mkdir(exist_ok=True)
for _nb in sorted((ROOT / "notebooks").glob("*.ipynb")):
    _dest = _NOTEBOOKS / _nb.name
    if not _dest.exists() or _dest.read_bytes() != _nb.read_bytes():
        shutil.copyfile(_nb, _dest)

nb_execution_mode = "off"
myst_enable_extensions = ["colon_fence", "deflist"]
myst_heading_anchors = 3

source_suffix = {".rst": "restructuredtext", ".md": "myst-nb", ".ipynb": "myst-nb"}
exclude_patterns = ["_build", "**/.ipynb_checkpoints", "Thumbs.db", ".DS_Store"]

# One API page per package (docs/api/*.rst: a summary table, then one directive per name); a
# generated page per name made the build about five times slower.
autosummary_generate = False
autodoc_typehints = "description"
autodoc_typehints_description_target = "documented_params"  # no empty "Parameters:" lists
autodoc_typehints_format = "short"
autodoc_member_order = "bysource"
autodoc_preserve_defaults = True
napoleon_google_docstring = True
napoleon_numpy_docstring = False
napoleon_use_rtype = False

html_theme = "sphinx_book_theme"
html_title = "jaxpapers"
html_theme_options = {
    "repository_url": "https://github.com/jaxpapers/jaxpapers",
    "use_repository_button": True,
    "show_toc_level": 2,
}
napoleon_attr_annotations = False  # shapes and dtypes are in the text; no "jax.jaxlib._jax.Array"
napoleon_use_ivar = True  # "Attributes:" as fields, so NamedTuple fields are not described twice


def _drop_type_docstrings(app, what, name, obj, options, lines):
    """A module-level constant (a dict, a tuple) has no docstring of its own; autodoc would show
    its type's (``dict.__doc__``), so drop that."""
    from sphinx.util.docstrings import prepare_docstring

    doc = type(obj).__doc__
    if what in ("data", "attribute") and isinstance(doc, str):
        type_lines = [line.strip() for line in prepare_docstring(doc) if line.strip()]
        if [line.strip() for line in lines if line.strip()] == type_lines:
            lines.clear()


def _skip_namedtuple_aliases(app, what, name, obj, skip, options):
    """A NamedTuple's fields are documented in its ``Attributes:`` section; skip the generated
    "Alias for field number k" members."""
    doc = getattr(obj, "__doc__", None)
    if isinstance(doc, str) and doc.startswith("Alias for field number"):
        return True
    return None


def setup(app):
    app.connect("autodoc-process-docstring", _drop_type_docstrings)
    app.connect("autodoc-skip-member", _skip_namedtuple_aliases)
