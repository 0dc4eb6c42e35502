"""The built site in a real headless browser: `make docs-check` runs this file (`make test` does not collect it).

It serves docs/_build/html on 127.0.0.1, opens every HTML page in Debian's Chromium (driven by playwright, with
no browser download of its own) and checks that each page loads without a console error, a script error or a
failed request; that every internal link and #anchor resolves; that every image loads with a non-zero size; and
that the search finds "hinge". It saves screenshots of the index and of one metric page under
docs/_build/screenshots/.
"""

from __future__ import annotations

import functools
import os
import threading
from collections.abc import Iterator
from dataclasses import dataclass, field
from http.server import SimpleHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from urllib.parse import unquote, urldefrag, urlsplit

import playwright.sync_api as playwright_sync  # `make docs-check` installs it: without it, this file fails
import pytest

DOCS = Path(__file__).resolve().parent
SITE = DOCS / "_build" / "html"
SCREENSHOTS = DOCS / "_build" / "screenshots"
CHROMIUM = os.environ.get("HINGEMETRICS_CHROMIUM", "/usr/bin/chromium")
# The site has the index, getting started, the families, the guides, the gallery, the notebooks, the API pages and
# Sphinx's own pages: fewer than this many pages means the crawl (or the build) missed most of it.
MIN_PAGES = 30
METRIC_PAGE = "families/binary.html"
TIMEOUT_MS = 20_000
IDS_JS = "() => Array.from(document.querySelectorAll('[id], a[name]'), e => e.id || e.name)"
SEARCH_RESULTS_JS = "() => Array.from(document.querySelectorAll('#search-results ul.search li a'), a => a.href)"


class _QuietHandler(SimpleHTTPRequestHandler):
    def log_message(self, format: str, *args: object) -> None:
        pass

    def do_GET(self) -> None:
        # The browser asks every server for /favicon.ico on its own; no page links one, so it is not the site's
        # request to check: "no content", rather than a 404 that would show up as a console error.
        if self.path == "/favicon.ico":
            self.send_response(204)
            self.end_headers()
            return
        super().do_GET()


@dataclass
class PageReport:
    """What one page did in the browser."""

    errors: list[str] = field(default_factory=list)  # console errors, script errors, failed requests
    links: list[str] = field(default_factory=list)  # absolute same-site hrefs
    ids: set[str] = field(default_factory=set)  # every id (and <a name>) on the page
    images: list[tuple[str, int, int]] = field(default_factory=list)  # (src, naturalWidth, naturalHeight)


@dataclass
class Crawl:
    """Every page's report, and what the search for "hinge" listed."""

    base: str
    reports: dict[str, PageReport]  # path relative to the site -> report
    search_results: list[str]


def _html_pages() -> list[str]:
    pages = [p.relative_to(SITE).as_posix() for p in SITE.rglob("*.html")]
    return sorted(p for p in pages if not p.startswith(("_static/", "_sources/", "_images/")))


def _site_path(url: str, base: str) -> str:
    """The path of a same-site URL relative to the site root (``index.html`` for a folder)."""
    path = unquote(urlsplit(url).path)[len(urlsplit(base).path) :]
    return path + "index.html" if path.endswith("/") or not path else path


@pytest.fixture(scope="module")
def crawl() -> Iterator[Crawl]:
    """Serve the site, open every page once in Chromium, and hand the reports to the tests."""
    if not (SITE / "index.html").is_file():
        pytest.fail(f"no built site at {SITE}: run `make docs` first (`make docs-check` does)")
    if not Path(CHROMIUM).is_file():
        pytest.fail(f"no Chromium at {CHROMIUM}: `make docs-check` installs Debian's package")
    handler = functools.partial(_QuietHandler, directory=str(SITE))
    server = ThreadingHTTPServer(("127.0.0.1", 0), handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    base = f"http://127.0.0.1:{server.server_address[1]}/"
    try:
        with playwright_sync.sync_playwright() as playwright:
            browser = playwright.chromium.launch(executable_path=CHROMIUM, args=["--no-sandbox"])
            try:
                yield _crawl(browser, base)
            finally:
                browser.close()
    finally:
        server.shutdown()
        server.server_close()


def _crawl(browser: playwright_sync.Browser, base: str) -> Crawl:
    page = browser.new_page(viewport={"width": 1280, "height": 900})
    page.set_default_timeout(TIMEOUT_MS)
    current: list[PageReport] = []

    def note(text: str) -> None:
        if current:
            current[-1].errors.append(text)

    def on_console(message: playwright_sync.ConsoleMessage) -> None:
        if message.type == "error":
            note(f"console error: {message.text} (at {message.location.get('url')})")

    page.on("console", on_console)
    page.on("pageerror", lambda error: note(f"script error: {error}"))
    page.on("requestfailed", lambda request: note(f"request failed: {request.url} ({request.failure})"))

    def on_response(response: playwright_sync.Response) -> None:
        if response.status >= 400:
            note(f"HTTP {response.status}: {response.url}")

    page.on("response", on_response)

    reports: dict[str, PageReport] = {}
    for path in _html_pages():
        report = PageReport()
        current[:] = [report]
        page.goto(base + path, wait_until="load")
        # MathJax typesets after the load event; wait for it, so that its errors (a missing part) are seen here
        page.evaluate("() => window.MathJax?.startup?.promise ?? null")
        page.evaluate(
            "() => Promise.all(Array.from(document.images).map(i => i.complete ? null :"
            " new Promise(done => { i.addEventListener('load', done); i.addEventListener('error', done); })))"
        )
        report.links = page.evaluate("() => Array.from(document.querySelectorAll('a[href]'), a => a.href)")
        report.ids = set(page.evaluate(IDS_JS))
        report.images = [
            (src, width, height)
            for src, width, height in page.evaluate(
                "() => Array.from(document.images, i => [i.currentSrc || i.src, i.naturalWidth, i.naturalHeight])"
            )
        ]
        if path == "index.html" or path == METRIC_PAGE:
            SCREENSHOTS.mkdir(parents=True, exist_ok=True)
            name = "index.png" if path == "index.html" else "metric-page.png"
            page.screenshot(path=str(SCREENSHOTS / name), full_page=True)
        reports[path] = report

    search = PageReport()
    current[:] = [search]
    page.goto(base + "search.html?q=hinge", wait_until="load")
    page.wait_for_selector("#search-results ul.search li", state="attached")
    results = page.evaluate(SEARCH_RESULTS_JS)
    reports["search.html?q=hinge"] = search
    page.close()
    return Crawl(base, reports, results)


def test_every_page_of_the_site_was_opened(crawl):
    opened = [path for path in crawl.reports if path.endswith(".html")]
    assert len(opened) >= MIN_PAGES, f"only {len(opened)} pages: {opened}"
    for expected in ("index.html", "getting-started.html", METRIC_PAGE, "gallery.html", "api/index.html"):
        assert expected in crawl.reports


def test_pages_load_without_console_errors(crawl):
    failures = {path: report.errors for path, report in crawl.reports.items() if report.errors}
    assert not failures, failures


def test_internal_links_and_anchors_resolve(crawl):
    checked, broken = 0, []
    for path, report in crawl.reports.items():
        for href in report.links:
            url, fragment = urldefrag(href)
            if not url.startswith(crawl.base):
                continue  # another site: not followed (the build needs no network, and neither does this check)
            target = _site_path(url, crawl.base)
            checked += 1
            if not (SITE / target).is_file():
                broken.append(f"{path}: {href} (no file {target})")
            elif fragment and target.endswith(".html"):
                ids = crawl.reports[target].ids if target in crawl.reports else set()
                if unquote(fragment) not in ids:
                    broken.append(f"{path}: {href} (no #{fragment} on {target})")
    assert checked > MIN_PAGES * 10, f"only {checked} internal links checked"
    assert not broken, "\n".join(broken)


def test_every_image_loads_with_a_size(crawl):
    images = [(path, image) for path, report in crawl.reports.items() for image in report.images]
    assert len(images) >= 20, "the gallery alone has more figures than that"
    empty = [f"{path}: {src} is {w}x{h}" for path, (src, w, h) in images if w <= 0 or h <= 0]
    assert not empty, "\n".join(empty)


def test_the_gallery_shows_figures_drawn_at_build_time(crawl):
    gallery = [src for src, _, _ in crawl.reports["gallery.html"].images]
    assert len(gallery) >= 15
    assert len(set(gallery)) == len(gallery), "two figures of the gallery share one file"


def test_search_finds_hinge(crawl):
    assert crawl.search_results, "searching for 'hinge' found nothing"
    found = {_site_path(urldefrag(url)[0], crawl.base) for url in crawl.search_results}
    assert METRIC_PAGE in found or any(p.startswith("api/") for p in found), found


def test_screenshots_are_saved(crawl):
    for name in ("index.png", "metric-page.png"):
        shot = SCREENSHOTS / name
        assert shot.is_file() and shot.stat().st_size > 10_000, shot
