"""The README is the front door to the docs: its links lead to pages that exist, and the docs read its table.

The site itself is checked by `make docs` (every reference) and `make docs-check` (every link, in a browser);
the README is not part of the site, so its links are checked here, in `make test`.
"""

from __future__ import annotations

import re
from pathlib import Path

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt
import pytest

REPO = Path(__file__).resolve().parents[1]
README = REPO / "README.md"
NEIGHBOURS_START, NEIGHBOURS_END = "<!-- neighbours:start -->", "<!-- neighbours:end -->"


def _slug(heading: str) -> str:
    """A heading's anchor, as GitHub and the docs (myst-parser) make it: lower case, punctuation out, spaces to -."""
    text = re.sub(r"[^\w\- ]", "", heading.strip().lower())
    return text.replace(" ", "-")


def _anchors(markdown: str) -> set[str]:
    body = re.sub(r"```.*?```", "", markdown, flags=re.S)  # a "# comment" in a code block is no heading
    return {_slug(match) for match in re.findall(r"^#{1,6} (.+)$", body, flags=re.M)}


def _relative_links(markdown: str) -> list[str]:
    return [link for link in re.findall(r"\]\(([^)\s]+)\)", markdown) if not re.match(r"[a-z]+:", link)]


def test_the_slug_matches_the_anchors_the_docs_use():
    assert _slug("The demo: `make demo`") == "the-demo-make-demo"
    assert _slug("With Lightning and torchmetrics' wrappers") == "with-lightning-and-torchmetrics-wrappers"
    assert _slug("`DistributedSampler`'s padded duplicates") == "distributedsamplers-padded-duplicates"


def test_every_relative_link_of_the_readme_resolves():
    links = _relative_links(README.read_text())
    assert len(links) >= 10, links  # one per docs page, at least
    broken = []
    for link in links:
        path, _, anchor = link.partition("#")
        target = (REPO / path) if path else README
        if not target.is_file():
            broken.append(f"{link}: no file {target.relative_to(REPO)}")
        elif anchor and anchor not in _anchors(target.read_text()):
            broken.append(f"{link}: no heading #{anchor} in {target.relative_to(REPO)}")
    assert not broken, "\n".join(broken)


def test_the_readme_links_every_docs_page():
    linked = {(REPO / link.partition("#")[0]).resolve() for link in _relative_links(README.read_text())}
    pages = {p.resolve() for folder in ("families", "guides") for p in (REPO / "docs" / folder).glob("*.md")}
    pages |= {(REPO / "docs" / name).resolve() for name in ("getting-started.md", "gallery.md", "contributing.md")}
    missing = sorted(str(p.relative_to(REPO)) for p in pages - linked)
    assert not missing, f"README.md links no page {missing}"


def test_the_neighbour_table_is_marked_for_the_docs():
    text = README.read_text()
    assert text.count(NEIGHBOURS_START) == 1 and text.count(NEIGHBOURS_END) == 1
    table = text.split(NEIGHBOURS_START, 1)[1].split(NEIGHBOURS_END, 1)[0]
    rows = [line for line in table.strip().splitlines()]
    assert rows[0] == "| neighbour | formula | hingemetrics |"
    assert all(line.startswith("|") and line.endswith("|") and line.count("|") == 4 for line in rows), rows
    assert len(rows) >= 10  # the header, its rule, and a row per neighbour


# --- the examples of the README and the docs' pages run -------------------------------------------------------
PAGES = sorted([README, *(REPO / "docs").glob("*.md"), *(REPO / "docs").glob("*/*.md")])


@pytest.mark.parametrize("page", PAGES, ids=lambda p: str(p.relative_to(REPO)))
def test_the_python_examples_of_a_page_run(page, tmp_path, monkeypatch):
    """Every ```python block of the page, in order and in one namespace, as a reader would run the page."""
    blocks = re.findall(r"```python\n(.*?)```", page.read_text(), re.S)
    monkeypatch.chdir(tmp_path)  # an example may save a figure
    namespace: dict = {"__name__": "docs_example"}  # a script's `if __name__ == "__main__"` part does not run
    for block in blocks:
        exec(compile(block, str(page), "exec"), namespace)
    plt.close("all")


def test_the_pages_have_examples():
    counts = {page.name: len(re.findall(r"```python\n", page.read_text())) for page in PAGES}
    assert sum(counts.values()) >= 10, counts
    assert counts["README.md"] >= 1 and counts["getting-started.md"] >= 6, counts
