"""Sphinx extension of the hingemetrics docs: what keeps the site built from the code.

* API pages: at the start of every build, one page per name in ``hingemetrics.__all__`` and
  ``hingemetrics.functional.__all__`` is written under ``api/generated/`` (not committed), with a summary table
  per module. A name added to ``__all__`` gets its page in the next build; nothing lists the names by hand.
* Checks, after every page is read: each public name has a docstring of its own and is documented in the API
  reference, and each metric class of ``hingemetrics.__all__`` is drawn in the gallery (``gallery.md``). A failed
  check is a warning, which ``-W`` turns into a failed build.
* Notebooks: ``notebooks/*.ipynb`` are copied to ``nb/`` (not committed), where the notebooks page globs them;
  myst-nb renders their stored outputs.
* MathJax is served from the site itself (copied from the pinned ``django-static-mathjax`` package), so the pages
  load no script from elsewhere.
* Directives for the family pages: ``hm-arguments`` (a function's arguments, defaults and descriptions, read from
  its signature and docstring) and ``hm-neighbours`` (rows of the README's neighbour table).
"""

from __future__ import annotations

import importlib
import importlib.util
import inspect
import re
import shutil
from pathlib import Path
from typing import Any

from docutils import nodes
from docutils.parsers.rst import directives
from docutils.statemachine import StringList
from matplotlib.sphinxext.plot_directive import PlotDirective
from sphinx.application import Sphinx
from sphinx.config import Config
from sphinx.environment import BuildEnvironment
from sphinx.pycode import ModuleAnalyzer
from sphinx.util import logging
from sphinx.util.docutils import SphinxDirective

logger = logging.getLogger(__name__)

DOCS = Path(__file__).resolve().parents[1]
REPO = DOCS.parent
#: The public modules, in the order of the API reference; each lists its public names in ``__all__``.
PUBLIC_MODULES = ("hingemetrics", "hingemetrics.functional")
GENERATED = DOCS / "api" / "generated"
NOTEBOOKS = REPO / "notebooks"
NOTEBOOK_COPIES = DOCS / "nb"
GALLERY = DOCS / "gallery.md"
MATHJAX_STATIC = DOCS / "_build" / "mathjax-static"
#: What the site needs of MathJax 3: the TeX-to-SVG component and the parts it loads on demand.
MATHJAX_PARTS = ("tex-svg.js", "input", "output", "ui", "a11y", "sre", "adaptors")
NEIGHBOURS_START, NEIGHBOURS_END = "<!-- neighbours:start -->", "<!-- neighbours:end -->"


def _warn(message: str, subtype: str) -> None:
    logger.warning(message, type="hm_docs", subtype=subtype)


def _write_if_changed(path: Path, text: str) -> None:
    """Write ``text`` unless the file holds it already, so that an unchanged page is not read again."""
    if not path.exists() or path.read_text() != text:
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(text)


# ------------------------------------------------------------------------------------------------ public names
def public_names(module_name: str) -> list[tuple[str, Any]]:
    """``(name, object)`` for each name in the module's ``__all__``, in that order."""
    module = importlib.import_module(module_name)
    return [(name, getattr(module, name)) for name in module.__all__]


def own_docstring(module_name: str, name: str, obj: Any) -> str:
    """The docstring ``name`` has of its own: a class's or function's ``__doc__``, a constant's ``#:`` comment."""
    if inspect.ismodule(obj) or inspect.isfunction(obj) or inspect.isroutine(obj):
        return inspect.cleandoc(obj.__doc__ or "")
    if inspect.isclass(obj):
        return inspect.cleandoc(obj.__dict__.get("__doc__") or "")
    analyzer = ModuleAnalyzer.for_module(module_name)
    return "\n".join(analyzer.find_attr_docs().get(("", name), [])).strip()


def _kind(obj: Any) -> str:
    from torchmetrics import Metric

    if inspect.ismodule(obj):
        return "module"
    if inspect.isclass(obj):
        if issubclass(obj, BaseException):
            return "exception"
        if issubclass(obj, Metric):
            return "metric"
        return "class"
    if callable(obj):
        return "function"
    return "data"


def _draws_itself(obj: Any) -> bool:
    """Whether ``obj`` is a metric class with a ``plot`` of hingemetrics' own (``HingeLoss`` builds another class)."""
    plot = getattr(obj, "plot", None) if _kind(obj) == "metric" else None
    return plot is not None and plot.__module__.startswith("hingemetrics")


def _stub(module_name: str, name: str, obj: Any) -> str:
    full = f"{module_name}.{name}"
    head = f"{full}\n{'=' * len(full)}\n\n.. currentmodule:: {module_name}\n\n"
    kind = _kind(obj)
    if kind == "exception":
        return head + f".. autoexception:: {name}\n"
    if kind == "metric":
        # the members hingemetrics defines or overrides with a docstring (see `skip_foreign_members`)
        return head + f".. autoclass:: {name}\n   :members:\n   :inherited-members:\n"
    if kind == "class":
        return head + f".. autoclass:: {name}\n"
    if kind == "function":
        return head + f".. autofunction:: {name}\n"
    return head + f".. autodata:: {name}\n   :no-value:\n"


def _summary(module_name: str, name: str, obj: Any) -> str:
    doc = own_docstring(module_name, name, obj)
    return doc.split("\n\n", 1)[0].replace("\n", " ") if doc else ""


def _module_page(module_name: str) -> str:
    module = importlib.import_module(module_name)
    rows, stubs = [], []
    for name, obj in public_names(module_name):
        if _kind(obj) == "module":
            target = f":py:mod:`{obj.__name__}`"
        else:
            target = f":py:obj:`~{module_name}.{name}`"
            stubs.append(f"{module_name}.{name}")
        summary = _summary(module_name, name, obj) or "(no docstring)"
        rows.append(f"   * - {target}\n     - {summary}")
    title = f"``{module_name}``"
    return (
        f"{title}\n{'=' * len(title)}\n\n"
        f".. automodule:: {module.__name__}\n   :no-members:\n\n"
        ".. list-table::\n   :widths: 30 70\n\n" + "\n".join(rows) + "\n\n"
        ".. toctree::\n   :hidden:\n\n" + "".join(f"   {stub}\n" for stub in stubs)
    )


def write_api_pages(app: Sphinx) -> None:
    """Write the module pages and one page per public name under ``api/generated/``; drop stale pages."""
    wanted: dict[Path, str] = {}
    for module_name in PUBLIC_MODULES:
        wanted[GENERATED / f"{module_name}.rst"] = _module_page(module_name)
        for name, obj in public_names(module_name):
            if _kind(obj) != "module":
                wanted[GENERATED / f"{module_name}.{name}.rst"] = _stub(module_name, name, obj)
    for path, text in wanted.items():
        _write_if_changed(path, text)
    for stale in set(GENERATED.glob("*.rst")) - set(wanted):
        stale.unlink()


def skip_foreign_members(app: Sphinx, what: str, name: str, obj: Any, skip: bool, options: Any) -> bool | None:
    """Leave out a class member that torch, torchmetrics or Python defines: theirs to document, not ours.

    A metric page lists what hingemetrics defines or overrides (with a docstring), wherever in its bases it is;
    what it inherits from ``torchmetrics.Metric`` (or a torchmetrics wrapper) and ``torch.nn.Module`` is not
    repeated here.
    """
    function = getattr(obj, "fget", obj)  # a property's getter
    module = getattr(inspect.unwrap(function), "__module__", None) if callable(function) else None
    if what == "class" and isinstance(module, str) and not module.startswith("hingemetrics"):
        return True
    return None


# --------------------------------------------------------------------------------------------------- notebooks
def copy_notebooks(app: Sphinx) -> None:
    """Copy ``notebooks/*.ipynb`` to ``nb/`` (times kept, so unchanged ones are not read again); drop stale ones."""
    NOTEBOOK_COPIES.mkdir(exist_ok=True)
    sources = sorted(NOTEBOOKS.glob("*.ipynb"))
    for source in sources:
        copy = NOTEBOOK_COPIES / source.name
        if not copy.exists() or copy.read_bytes() != source.read_bytes():
            shutil.copy2(source, copy)
    for stale in set(NOTEBOOK_COPIES.glob("*.ipynb")) - {NOTEBOOK_COPIES / s.name for s in sources}:
        stale.unlink()


# ----------------------------------------------------------------------------------------------------- MathJax
def use_local_mathjax(app: Sphinx, config: Config) -> None:
    """Copy MathJax into a static folder of the build and point ``mathjax_path`` at it."""
    spec = importlib.util.find_spec("mathjax")
    if spec is None or not spec.submodule_search_locations:
        raise RuntimeError("MathJax is missing: `make docs` installs it (the django-static-mathjax package).")
    source = Path(next(iter(spec.submodule_search_locations))) / "static" / "mathjax" / "es5"
    target = MATHJAX_STATIC / "mathjax"
    for part in MATHJAX_PARTS:
        if (source / part).is_dir():
            shutil.copytree(source / part, target / part, dirs_exist_ok=True)
        else:
            target.mkdir(parents=True, exist_ok=True)
            shutil.copy2(source / part, target / part)
    config.html_static_path.append(str(MATHJAX_STATIC))
    config.mathjax_path = "mathjax/tex-svg.js"


# ------------------------------------------------------------------------------------------------------ checks
def check_public_names(app: Sphinx, env: BuildEnvironment) -> None:
    """Every public name has a docstring and an API entry; every metric class is drawn in the gallery."""
    python = env.get_domain("py")
    documented = set(python.objects)  # type: ignore[attr-defined]
    gallery = GALLERY.read_text()
    for module_name in PUBLIC_MODULES:
        for name, obj in public_names(module_name):
            full = f"{module_name}.{name}"
            if not own_docstring(module_name, name, obj):
                _warn(f"{full} is public (in {module_name}.__all__) but has no docstring of its own", "docstring")
            target = obj.__name__ if inspect.ismodule(obj) else full
            if target not in documented:
                _warn(f"{full} is public (in {module_name}.__all__) but the API reference does not document it", "api")
            if _draws_itself(obj) and module_name == "hingemetrics" and not re.search(rf"\b{name}\(", gallery):
                _warn(f"{full} is a public metric but docs/gallery.md draws no figure of it: add one", "gallery")


# -------------------------------------------------------------------------------------------------- directives
def _args_section(doc: str) -> dict[str, str]:
    """The ``Args:`` entries of a Google-style docstring: name -> description (continuation lines joined)."""
    entries: dict[str, str] = {}
    lines = doc.splitlines()
    try:
        start = next(i for i, line in enumerate(lines) if line.strip() == "Args:") + 1
    except StopIteration:
        return entries
    indent = None
    current = None
    for line in lines[start:]:
        if line.strip() and not line.startswith(" "):
            break  # the next section
        stripped = line.strip()
        if not stripped:
            continue
        depth = len(line) - len(line.lstrip())
        if indent is None:
            indent = depth
        match = re.match(r"\*{0,2}(\w+):\s*(.*)", stripped)
        if depth == indent and match:
            current = match.group(1)
            entries[current] = match.group(2)
        elif current is not None:
            entries[current] += " " + stripped
    return entries


class ArgumentsDirective(SphinxDirective):
    """``.. hm-arguments:: dotted.name``: a table of the arguments of a function (or class), from the code.

    The names and defaults come from the signature, the descriptions from the docstring's ``Args:`` section
    (for a class, from the function named by ``:docstring-of:``). ``:skip:`` leaves out arguments. An argument
    without a description is an error, so the table cannot fall behind the signature.
    """

    required_arguments = 1
    option_spec = {"skip": directives.unchanged, "docstring-of": directives.unchanged}  # noqa: RUF012

    def run(self) -> list[nodes.Node]:
        """The table, parsed as reStructuredText in the module of the docstring it quotes."""
        obj = _resolve(self.arguments[0])
        described = _resolve(self.options.get("docstring-of", self.arguments[0]))
        skip = {s.strip() for s in self.options.get("skip", "").split(",") if s.strip()}
        descriptions = _args_section(inspect.getdoc(described) or "")
        signature = inspect.signature(obj)
        rows = []
        for name, parameter in signature.parameters.items():
            if name in skip or name == "self" or parameter.kind is inspect.Parameter.VAR_KEYWORD:
                continue
            if name not in descriptions:
                _warn(f"hm-arguments: {self.arguments[0]} has no description of `{name}` in its docstring", "arguments")
                continue
            default = "required" if parameter.default is inspect.Parameter.empty else f"``{parameter.default!r}``"
            keyword = " (keyword-only)" if parameter.kind is inspect.Parameter.KEYWORD_ONLY else ""
            rows.append(f"   * - ``{name}``{keyword}\n     - {default}\n     - {descriptions[name]}")
        text = ".. list-table::\n   :header-rows: 1\n   :widths: 22 14 64\n\n"
        text += "   * - argument\n     - default\n     - meaning\n" + "\n".join(rows) + "\n"
        # the descriptions' short references (:func:`binary_hinge_loss`) resolve as in the docstring's own module
        context = self.env.ref_context
        before = context.get("py:module")
        context["py:module"] = described.__module__ if inspect.isclass(described) else _public_module(described)
        try:
            container = nodes.container()
            source = StringList(text.splitlines(), source=self.arguments[0])
            self.state.nested_parse(source, self.content_offset, container)
        finally:
            if before is None:
                context.pop("py:module", None)
            else:
                context["py:module"] = before
        return list(container.children)


def _public_module(obj: Any) -> str:
    """The public module that exports ``obj`` (``hingemetrics.functional`` for its functions), else its own."""
    for module_name in PUBLIC_MODULES:
        if any(value is obj for _, value in public_names(module_name)):
            return module_name
    return obj.__module__


def _resolve(dotted: str) -> Any:
    module_name, _, attribute = dotted.rpartition(".")
    return getattr(importlib.import_module(module_name), attribute)


def _rst_cell(markdown: str) -> str:
    """A README table cell as reStructuredText: code spans kept as literals, everything else escaped."""
    parts = re.split(r"(`[^`]+`)", markdown.strip())
    out = []
    for part in parts:
        if part.startswith("`") and part.endswith("`") and len(part) > 1:
            out.append(f"``{part[1:-1]}``")
        else:
            out.append(re.sub(r"([\\*_|`\[\]<>])", r"\\\1", part))
    return "".join(out) or r"\ "


def neighbour_rows(readme: str) -> list[list[str]]:
    """The rows (header first) of the README's neighbour table, between its two markers."""
    try:
        body = readme.split(NEIGHBOURS_START, 1)[1].split(NEIGHBOURS_END, 1)[0]
    except IndexError:
        raise ValueError(f"README.md has no neighbour table between {NEIGHBOURS_START} and {NEIGHBOURS_END}") from None
    lines = [line.strip() for line in body.splitlines() if line.strip().startswith("|")]
    rows = [[cell.strip().replace("\\|", "|") for cell in re.split(r"(?<!\\)\|", line[1:-1])] for line in lines]
    rows = [row for row in rows if not set("".join(row)) <= set("-: ")]  # not the |---|---| line
    if not rows or any(len(row) != len(rows[0]) for row in rows):
        raise ValueError("README.md's neighbour table has rows of different lengths")
    return rows


class NeighboursDirective(SphinxDirective):
    """``.. hm-neighbours::``: the README's neighbour table, or with ``:classes: A, B`` the rows that name them."""

    option_spec = {"classes": directives.unchanged}  # noqa: RUF012

    def run(self) -> list[nodes.Node]:
        """The table (or its rows that name the classes), as a reStructuredText list table."""
        readme = REPO / "README.md"
        self.env.note_dependency(str(readme))
        header, *rows = neighbour_rows(readme.read_text())
        wanted = [c.strip() for c in self.options.get("classes", "").split(",") if c.strip()]
        if wanted:
            rows = [row for row in rows if any(re.search(rf"\b{c}\b", row[-1]) for c in wanted)]
            if not rows:
                _warn(f"hm-neighbours: no row of the README's table names {', '.join(wanted)}", "neighbours")
        text = ".. list-table::\n   :header-rows: 1\n   :widths: 30 30 40\n\n"
        for row in [header, *rows]:
            text += "   * - " + "\n     - ".join(_rst_cell(cell) for cell in row) + "\n"
        container = nodes.container()
        self.state.nested_parse(StringList(text.splitlines(), source="README.md"), self.content_offset, container)
        return list(container.children)


class NamedPlotDirective(PlotDirective):
    """matplotlib's ``plot`` directive, with a ``:filename-prefix:`` required.

    Without one, the directive numbers the figures of a page, and the numbering restarts in every ``eval-rst``
    block of a Markdown page, so the figures of one page would overwrite each other under one name. A prefix
    names each figure once for the whole site (the directive refuses a name used twice).
    """

    def run(self) -> list[nodes.Node]:
        """Warn about a missing prefix, then draw as matplotlib's directive does."""
        if not self.options.get("filename-prefix"):
            _warn("a `plot` directive needs a `:filename-prefix:` naming its figure uniquely", "plot")
        return super().run()


def setup(app: Sphinx) -> dict[str, Any]:
    """Register the hooks and the directives."""
    app.setup_extension("matplotlib.sphinxext.plot_directive")
    app.add_directive("plot", NamedPlotDirective, override=True)
    app.connect("config-inited", use_local_mathjax)
    app.connect("builder-inited", write_api_pages)
    app.connect("builder-inited", copy_notebooks)
    app.connect("env-check-consistency", check_public_names)
    app.connect("autodoc-skip-member", skip_foreign_members)
    app.add_directive("hm-arguments", ArgumentsDirective)
    app.add_directive("hm-neighbours", NeighboursDirective)
    return {"version": "1", "parallel_read_safe": True, "parallel_write_safe": True}
