"""Browser test harness: Debian's Chromium driven by Playwright, axe-core, and a static file server.

Load it as a pytest plugin, ``pytest_plugins = ["tests.support.browser"]`` in tests/conftest.py, to
get the fixtures:

- ``chromium``: one headless Chromium for the session (/usr/bin/chromium; never a downloaded one).
  Skips, saying why, when Chromium or Playwright is missing.
- ``open_page``: a ``PageFactory``; ``open_page(width=375, color_scheme="dark")`` gives a page in a
  fresh browser context, closed after the test. It records JavaScript errors and dialogs, so a test
  can show that nothing ran.
- ``static_server``: ``static_server(folder)`` serves a folder on 127.0.0.1 and returns a
  ``StaticServer`` whose ``url(path)`` addresses a file in it.

and the helpers ``axe_violations``, ``assert_no_axe_violations``, ``check_skip_link``,
``excluded_elements`` and ``horizontal_overflow``.
"""

from __future__ import annotations

import functools
import importlib.util
import os
import threading
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass, field
from http.server import SimpleHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import TYPE_CHECKING, Any, Literal, NoReturn

import pytest

if TYPE_CHECKING:
    from playwright.sync_api import Browser, BrowserContext, Dialog, Page, Playwright

CHROMIUM = Path("/usr/bin/chromium")
# The machine has no network; without these flags Chromium tries to reach it and misbehaves.
CHROMIUM_ARGS = (
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
)
WCAG_TAGS = ("wcag2a", "wcag2aa", "wcag21a", "wcag21aa", "wcag22aa")
VIEWPORT_HEIGHT = 800
SKIP_LINK_TEXT = "Skip to content"

ColorScheme = Literal["light", "dark", "no-preference"]

# ---------------------------------------------------------------------------------------- Chromium


def _skip(reason: str) -> NoReturn:
    print(f"browser tests skipped: {reason}")
    pytest.skip(reason)


@pytest.fixture(scope="session")
def chromium() -> Iterator[Browser]:
    if not CHROMIUM.exists():
        _skip(f"{CHROMIUM} not found: install Debian's chromium package")
    try:
        from playwright.sync_api import Error, sync_playwright
    except ImportError:
        _skip("Playwright for Python is not installed: pip install -e '.[test]'")
    playwright: Playwright = sync_playwright().start()
    try:
        try:
            browser = playwright.chromium.launch(
                executable_path=str(CHROMIUM), headless=True, args=list(CHROMIUM_ARGS)
            )
        except Error as exc:
            _skip(f"{CHROMIUM} did not start: {exc.message.splitlines()[0]}")
        try:
            yield browser
        finally:
            browser.close()
    finally:
        playwright.stop()


@dataclass(slots=True)
class PageFactory:
    """Opens pages, each in its own browser context (no shared cookies, cache or focus)."""

    browser: Browser
    contexts: list[BrowserContext] = field(default_factory=list)
    errors: list[str] = field(default_factory=list)  # uncaught JavaScript exceptions
    dialogs: list[str] = field(default_factory=list)  # alert/confirm/prompt messages

    def __call__(
        self,
        *,
        width: int = 1024,
        height: int = VIEWPORT_HEIGHT,
        color_scheme: ColorScheme = "light",
    ) -> Page:
        context = self.browser.new_context(
            viewport={"width": width, "height": height},
            color_scheme=color_scheme,
            reduced_motion="reduce",
        )
        self.contexts.append(context)
        page = context.new_page()
        page.on("pageerror", lambda error: self.errors.append(str(error)))
        page.on("dialog", lambda dialog: self._dialog(dialog))
        return page

    def _dialog(self, dialog: Dialog) -> None:
        self.dialogs.append(f"{dialog.type}: {dialog.message}")
        dialog.dismiss()

    def close(self) -> None:
        for context in self.contexts:
            context.close()
        self.contexts.clear()


@pytest.fixture
def open_page(chromium: Browser) -> Iterator[PageFactory]:
    factory = PageFactory(chromium)
    try:
        yield factory
    finally:
        factory.close()


# --------------------------------------------------------------------------------------------- axe


@functools.cache
def _axe_source() -> str:
    # Read the file rather than import the package: its import reads the file anyway, and this way
    # a missing package is a clear skip, not an ImportError in every browser test.
    spec = importlib.util.find_spec("axe_playwright_python")
    if spec is None or not spec.submodule_search_locations:
        pytest.skip("axe-playwright-python is not installed: pip install -e '.[test]'")
    folder = Path(next(iter(spec.submodule_search_locations)))
    return (folder / "axe.min.js").read_text(encoding="utf-8")


_RUN_AXE = """
async ([exclude, tags]) => {
  const context = exclude.length ? { exclude: exclude } : document;
  const results = await axe.run(context, {
    runOnly: { type: "tag", values: tags },
    resultTypes: ["violations"],
  });
  return results.violations;
}
"""


def axe_violations(
    page: Page, *, tags: Sequence[str] = WCAG_TAGS, exclude: Sequence[str] = ()
) -> list[dict[str, Any]]:
    """Run axe-core on the page, limited to rules with these tags; ``exclude`` holds CSS selectors
    of elements (with everything inside them) that axe leaves out."""
    if not page.evaluate("() => typeof window.axe === 'object'"):
        page.evaluate(_axe_source())
    violations: list[dict[str, Any]] = page.evaluate(_RUN_AXE, [list(exclude), list(tags)])
    return violations


def format_violations(violations: Sequence[dict[str, Any]]) -> str:
    lines: list[str] = []
    for violation in violations:
        lines.append(
            f"- {violation['id']} ({violation.get('impact') or 'no impact'}): {violation['help']}"
            f"\n  {violation.get('helpUrl', '')}"
        )
        for node in violation.get("nodes", []):
            target = " >> ".join(str(part) for part in node.get("target", []))
            lines.append(f"    at {target}")
            summary = (node.get("failureSummary") or "").replace("\n", "\n       ")
            if summary:
                lines.append(f"       {summary}")
            html = str(node.get("html", ""))
            lines.append(f"       {html[:200]}")
    return "\n".join(lines)


def assert_no_axe_violations(
    page: Page,
    *,
    tags: Sequence[str] = WCAG_TAGS,
    exclude: Sequence[str] = (),
    where: str = "",
) -> None:
    violations = axe_violations(page, tags=tags, exclude=exclude)
    if violations:
        place = where or page.url
        raise AssertionError(
            f"{len(violations)} axe violation(s) on {place}:\n{format_violations(violations)}"
        )


@dataclass(frozen=True, slots=True)
class ExcludedElement:
    tag: str  # lower case
    child_elements: int  # in the light DOM, which is what holds the page's own content
    text: str


def excluded_elements(page: Page, selectors: Sequence[str]) -> list[ExcludedElement]:
    """What axe ``exclude`` selectors cover on the page, to show that they hide nothing else."""
    found: list[dict[str, Any]] = page.evaluate(
        """(selectors) => {
            const seen = new Set();
            for (const s of selectors) for (const e of document.querySelectorAll(s)) seen.add(e);
            return [...seen].map(e => ({
                tag: e.tagName.toLowerCase(),
                child_elements: e.getElementsByTagName("*").length,
                text: e.textContent,
            }));
        }""",
        list(selectors),
    )
    return [ExcludedElement(**item) for item in found]


# ------------------------------------------------------------------------------ keyboard and layout


_FOCUSED = """
() => {
  const a = document.activeElement;
  if (!a || a === document.body || a === document.documentElement) return null;
  const r = a.getBoundingClientRect();
  const style = getComputedStyle(a);
  return {
    tag: a.tagName.toLowerCase(),
    text: (a.textContent || "").replace(/\\s+/g, " ").trim(),
    href: a.getAttribute("href"),
    html: a.outerHTML.slice(0, 200),
    inViewport: r.width > 0 && r.height > 0 && r.top >= 0 && r.left >= 0
      && r.bottom <= window.innerHeight && r.right <= window.innerWidth,
    indicator: (style.outlineStyle !== "none" && parseFloat(style.outlineWidth) >= 2)
      || style.boxShadow !== "none",
  };
}
"""

_IN_SKIPPED = """
(selectors) => {
  const a = document.activeElement;
  return !!a && selectors.some(s => a.closest(s) !== null);
}
"""

_AFTER_SKIP = """
() => {
  const main = document.querySelector("main");
  const a = document.activeElement;
  const describe = a ? a.outerHTML.slice(0, 200) : "nothing";
  if (!main) return { ok: false, why: "the page has no <main>", focused: describe };
  return {
    ok: !!a && (a === main || main.contains(a)),
    isMain: a === main,
    mainId: main.id,
    mainTabindex: main.getAttribute("tabindex"),
    focused: describe,
  };
}
"""

_NEXT_AFTER_MAIN = """
() => {
  const main = document.querySelector("main");
  const a = document.activeElement;
  if (!a || a === document.body) return { ok: true, focused: "the end of the page" };
  const after = main.contains(a)
    || (main.compareDocumentPosition(a) & Node.DOCUMENT_POSITION_FOLLOWING) !== 0;
  return { ok: after, focused: a.outerHTML.slice(0, 200) };
}
"""


def check_skip_link(page: Page, *, skip_past: Sequence[str] = ()) -> None:
    """On a freshly loaded page: the first Tab reaches a visible "Skip to content" link with a focus
    indicator; Enter on it moves focus to <main> (or into it); the next Tab stays past the header.

    ``skip_past`` lists selectors of elements the browser itself put before the page's content
    (Chromium's XSLT deprecation banner): Tab moves on through their controls first.
    """
    start = page.evaluate(
        "() => ({focused: document.activeElement ? document.activeElement.tagName : null,"
        " scrollY: window.scrollY})"
    )
    assert start["focused"] in (None, "BODY") and start["scrollY"] == 0, (
        f"check_skip_link needs a freshly loaded page, but focus is on {start['focused']} "
        f"and the page is scrolled by {start['scrollY']}px"
    )
    page.keyboard.press("Tab")
    for _ in range(20):
        if not skip_past or not page.evaluate(_IN_SKIPPED, list(skip_past)):
            break
        page.keyboard.press("Tab")
    focused = page.evaluate(_FOCUSED)
    assert focused is not None, "Tab from the top of the page focused nothing"
    assert focused["tag"] == "a" and focused["text"] == SKIP_LINK_TEXT, (
        f"the first focusable element is not a {SKIP_LINK_TEXT!r} link: {focused['html']}"
    )
    assert focused["inViewport"], f"the focused skip link is not visible: {focused['html']}"
    assert focused["indicator"], f"the focused skip link shows no focus outline: {focused['html']}"
    assert str(focused["href"]).startswith("#"), f"skip link href is {focused['href']!r}"
    page.keyboard.press("Enter")
    after = page.evaluate(_AFTER_SKIP)
    assert after["ok"], f"after Enter on the skip link, focus is not in <main>: {after}"
    page.keyboard.press("Tab")
    following = page.evaluate(_NEXT_AFTER_MAIN)
    assert following["ok"], (
        f"after skipping to <main>, Tab went back before it, to {following['focused']}"
    )


def horizontal_overflow(page: Page) -> int:
    """How many CSS pixels the page is wider than the viewport (0 when it fits)."""
    overflow: int = page.evaluate(
        "() => Math.max(0, document.documentElement.scrollWidth - window.innerWidth)"
    )
    return overflow


# ------------------------------------------------------------------------------ static file server

CONTENT_TYPES = {
    ".html": "text/html; charset=utf-8",
    # Feeds as application/xml: served as application/rss+xml or application/atom+xml, Chromium
    # shows the document as plain text and never applies its XSL stylesheet.
    ".xml": "application/xml; charset=utf-8",
    ".xsl": "text/xsl; charset=utf-8",
    ".json": "application/feed+json; charset=utf-8",
    ".css": "text/css; charset=utf-8",
    ".js": "text/javascript; charset=utf-8",
    ".png": "image/png",
    ".svg": "image/svg+xml",
}


class _Handler(SimpleHTTPRequestHandler):
    def guess_type(self, path: str | os.PathLike[str]) -> str:
        return CONTENT_TYPES.get(Path(path).suffix.lower(), "application/octet-stream")

    def end_headers(self) -> None:
        self.send_header("Cache-Control", "no-store")
        super().end_headers()

    def log_message(self, format: str, *args: Any) -> None:
        pass


class StaticServer:
    """A folder served over HTTP on 127.0.0.1 (an ephemeral port) until ``close()``."""

    def __init__(self, folder: Path) -> None:
        self.folder = folder
        handler = functools.partial(_Handler, directory=str(folder))
        self._httpd = ThreadingHTTPServer(("127.0.0.1", 0), handler)
        self._httpd.daemon_threads = True
        self.port = int(self._httpd.server_address[1])
        self._thread = threading.Thread(
            target=self._httpd.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True
        )
        self._thread.start()

    def url(self, path: str = "") -> str:
        return f"http://127.0.0.1:{self.port}/{path.lstrip('/')}"

    def close(self) -> None:
        self._httpd.shutdown()
        self._httpd.server_close()
        self._thread.join(timeout=5)


@pytest.fixture
def static_server() -> Iterator[Callable[[Path], StaticServer]]:
    servers: list[StaticServer] = []

    def serve(folder: Path) -> StaticServer:
        server = StaticServer(folder)
        servers.append(server)
        return server

    try:
        yield serve
    finally:
        for server in servers:
            server.close()
