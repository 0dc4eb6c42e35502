"""Sphinx configuration of the hingemetrics documentation (``make docs`` builds it into docs/_build/html).

The site is built from the code: the API pages are generated from ``hingemetrics.__all__`` and
``hingemetrics.functional.__all__`` at build time, the figures are drawn by the package while the docs build, and
the notebooks are rendered from their stored outputs. ``make docs`` runs ``sphinx-build -W --keep-going -n``, so
every warning, a broken cross-reference included, fails the build. Nothing here needs the network.
"""

from __future__ import annotations

import sys
from pathlib import Path

DOCS = Path(__file__).resolve().parent
sys.path.insert(0, str(DOCS / "_ext"))

import hingemetrics  # noqa: E402

project = "hingemetrics"
author = "the hingemetrics authors"
copyright = "the hingemetrics authors"
release = version = hingemetrics.__version__

extensions = [
    "sphinx.ext.autodoc",
    "sphinx.ext.napoleon",
    "sphinx.ext.mathjax",
    "myst_nb",  # Markdown pages (through myst-parser) and notebooks
    "matplotlib.sphinxext.plot_directive",
    "hm_docs",  # docs/_ext/hm_docs.py: API pages from __all__, notebooks, local MathJax, the coverage checks
]

# Markdown and notebooks: myst-nb reads both; notebooks are shown with the outputs they were committed with.
source_suffix = {".rst": "restructuredtext", ".md": "myst-nb", ".ipynb": "myst-nb"}
nb_execution_mode = "off"
myst_enable_extensions = ["dollarmath", "colon_fence"]
myst_heading_anchors = 3  # `[text](page.md#a-heading)` links resolve, and are checked like any other reference

exclude_patterns = ["_build", "_ext", "test_site.py", "conftest.py", "**.ipynb_checkpoints"]
root_doc = "index"

# Warnings are errors (-W), and references are checked (-n): these are the external names that the signatures
# and docstrings mention and that no page here documents. Without intersphinx (it would need the network at
# build time) they are named here, one by one, and ignored on purpose; anything else that does not resolve fails.
nitpicky = True
nitpick_ignore = [
    # torch
    ("py:class", "torch.Tensor"),
    ("py:class", "Tensor"),
    ("py:class", "torch.dtype"),
    ("py:class", "torch.device"),
    ("py:class", "torch.Generator"),
    ("py:class", "torch.nn.Module"),
    # torchmetrics
    ("py:class", "torchmetrics.Metric"),
    ("py:class", "torchmetrics.metric.Metric"),
    ("py:class", "Metric"),
    ("py:class", "torchmetrics.MetricCollection"),
    ("py:class", "torchmetrics.collections.MetricCollection"),
    ("py:class", "MetricCollection"),
    # matplotlib, as torchmetrics' plot types name them
    ("py:class", "matplotlib.axes._axes.Axes"),
    ("py:class", "matplotlib.figure.Figure"),
    ("py:class", "matplotlib.axes.Axes"),
    # the same, as the wrappers' annotations name them (imported for type checking only)
    ("py:class", "Axes"),
    ("py:class", "Figure"),
    # the standard library, without intersphinx
    ("py:class", "collections.abc.Callable"),
    ("py:class", "collections.abc.Sequence"),
    ("py:class", "collections.abc.Iterator"),
    ("py:class", "contextlib._GeneratorContextManager"),
    ("py:class", "typing.Any"),
    ("py:class", "typing.NamedTuple"),
    ("py:class", "RuntimeError"),
    ("py:class", "numpy.ndarray"),
    ("py:class", "UserWarning"),
]
nitpick_ignore_regex = [
    # private type variables and aliases in signatures (the self type of the cast methods, torchmetrics' plot types)
    ("py:class", r"hingemetrics\._base\._Self"),
    # the private base class of every metric, which the wrappers take: its contract is in their docstrings
    ("py:class", r"hingemetrics\._base\.SumStateMetric"),
    ("py:.*", r"_AX_TYPE|_PLOT_OUT_TYPE"),
]

# API pages: autodoc reads the docstrings (Google style, through napoleon); hm_docs writes the stub of every public
# name. Only what hingemetrics itself defines is shown: torchmetrics' and torch's own methods are theirs to document.
autodoc_member_order = "bysource"
autodoc_inherit_docstrings = False
autodoc_typehints = "signature"
autodoc_preserve_defaults = True
python_use_unqualified_type_names = True
napoleon_google_docstring = True
napoleon_numpy_docstring = False
napoleon_use_ivar = True
add_module_names = False

# Figures: the plot directive runs each snippet while the docs build and saves what it draws.
plot_include_source = True
plot_html_show_source_link = False
plot_html_show_formats = False
plot_formats = [("png", 90)]
plot_pre_code = "import torch\nimport matplotlib.pyplot as plt\n"
plot_rcparams = {"figure.figsize": (6.4, 3.6)}
plot_apply_rcparams = True

html_theme = "furo"
html_title = f"hingemetrics {release}"
html_static_path: list[str] = []  # hm_docs adds the local MathJax
html_show_sourcelink = False
html_copy_source = False
