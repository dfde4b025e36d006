"""Open a report in headless Chromium and check what a reader sees; keep screenshots.

The browser is the system's Chromium (Debian's ``chromium`` package; ``.ci/run`` installs it),
driven by Playwright for Python: nothing is downloaded at run time. ``DLPIPE_CHROMIUM`` names
another executable. Without one the browser tests skip, unless ``DLPIPE_REQUIRE_BROWSER=1``
(set in CI), where they fail.
"""

from __future__ import annotations

import os
import shutil
from dataclasses import dataclass, field
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
#: Where the screenshots go (gitignored); ``DLPIPE_TEST_ARTEFACTS`` moves them.
ARTEFACTS = Path(os.environ.get("DLPIPE_TEST_ARTEFACTS", ROOT / "test-artefacts"))
LAPTOP = {"width": 1366, "height": 768}

_IMAGES = """async () => {
  const bad = [];
  for (const img of Array.from(document.images)) {
    try { await img.decode(); } catch (e) { bad.push(img.alt + ': ' + e); continue; }
    if (!img.complete || img.naturalWidth === 0) bad.push(img.alt + ': no pixels');
  }
  return [document.images.length, bad];
}"""
_LINKS = """() => {
  const links = Array.from(document.querySelectorAll('a[href^="#"]'));
  const missing = links.map(a => a.getAttribute('href').slice(1))
    .filter(id => !document.getElementById(decodeURIComponent(id)));
  return [links.length, missing];
}"""
#: Widths that spill out of the page, and whether the contents overlap the text column.
_LAYOUT = """() => {
  const main = document.querySelector('main').getBoundingClientRect();
  const nav = document.querySelector('nav.toc');
  const toc = nav ? nav.getBoundingClientRect() : null;
  const wide = Array.from(document.querySelectorAll('main *'))
    .filter(e => e.getBoundingClientRect().right > main.right + 1
                 && !e.closest('.table-wrap, pre'))
    .map(e => e.tagName + '.' + e.className).slice(0, 10);
  return {
    overflow: document.documentElement.scrollWidth - window.innerWidth,
    overlap: toc && toc.height > 0 && toc.right > main.left + 1 && toc.bottom > main.top,
    wide: wide,
  };
}"""


def chromium() -> str | None:
    """Path of the Chromium executable, or ``None``; skip or fail the caller without one."""
    path = os.environ.get("DLPIPE_CHROMIUM") or shutil.which("chromium")
    path = path or shutil.which("chromium-browser")
    try:
        import playwright.sync_api  # noqa: F401
    except ImportError:
        path = None
    if path is None:
        if os.environ.get("DLPIPE_REQUIRE_BROWSER") == "1":
            pytest.fail(
                "DLPIPE_REQUIRE_BROWSER=1 but no Chromium (apt-get install chromium) or "
                "no playwright (pip install -e '.[dev]')"
            )
        pytest.skip("no Chromium or playwright: apt-get install chromium; pip install playwright")
    return path


@dataclass
class PageCheck:
    """What the browser saw on one page."""

    console: list[str] = field(default_factory=list)
    errors: list[str] = field(default_factory=list)
    images: int = 0
    broken_images: list[str] = field(default_factory=list)
    links: int = 0
    missing_targets: list[str] = field(default_factory=list)
    layout: dict = field(default_factory=dict)
    screenshots: list[Path] = field(default_factory=list)


def check_page(html: Path, name: str, sections: bool = True) -> PageCheck:
    """Open ``html`` at laptop size; collect console messages, images, links and screenshots.

    Screenshots land in ``ARTEFACTS/name/``: the top of the page at 1366×768, the full page,
    one per top-level section (readable at full size) and the top at phone width.
    """
    from playwright.sync_api import sync_playwright

    out = ARTEFACTS / name
    out.mkdir(parents=True, exist_ok=True)
    for old in out.glob("*.png"):
        old.unlink()
    check = PageCheck()
    with sync_playwright() as p:
        browser = p.chromium.launch(executable_path=chromium(), args=["--no-sandbox"])
        try:
            page = browser.new_page(viewport=LAPTOP)
            page.on(
                "console",
                lambda m: (
                    check.console.append(f"{m.type}: {m.text}")
                    if m.type in ("error", "warning", "assert")
                    else None
                ),
            )
            page.on("pageerror", lambda e: check.errors.append(str(e)))
            page.goto(html.resolve().as_uri(), wait_until="load")
            check.images, check.broken_images = page.evaluate(_IMAGES)
            check.links, check.missing_targets = page.evaluate(_LINKS)
            check.layout = page.evaluate(_LAYOUT)
            shots = [(out / "top-1366x768.png", {})]
            shots.append((out / "full-page.png", {"full_page": True}))
            for shot, options in shots:
                page.screenshot(path=shot, **options)
                check.screenshots.append(shot)
            if sections:
                for i, element in enumerate(page.query_selector_all("main > section")):
                    ident = element.get_attribute("id") or str(i)
                    shot = out / f"section-{i:02d}-{ident}.png"
                    element.screenshot(path=shot)
                    check.screenshots.append(shot)
            # In-page navigation works: the last table-of-contents entry scrolls its target in.
            entries = page.query_selector_all("nav.toc a")
            if entries:
                entries[-1].click()
                page.wait_for_timeout(600)  # smooth scrolling
                shot = out / "after-toc-click-1366x768.png"
                page.screenshot(path=shot)
                check.screenshots.append(shot)
            page.evaluate("window.scrollTo({top: 0, behavior: 'instant'})")
            page.set_viewport_size({"width": 412, "height": 915})
            shot = out / "top-412x915.png"
            page.screenshot(path=shot)
            check.screenshots.append(shot)
        finally:
            browser.close()
    print(f"screenshots of {html}: {out}")  # noqa: T201
    return check


def assert_page_ok(check: PageCheck) -> None:
    """Fail on console errors, undecodable images, dangling in-page links or page overflow."""
    assert check.errors == [], check.errors
    assert [m for m in check.console if m.startswith(("error", "assert"))] == [], check.console
    assert check.broken_images == [], check.broken_images
    assert check.missing_targets == [], check.missing_targets
    assert check.layout["overflow"] <= 0, check.layout  # wide tables scroll in their wrapper
    assert not check.layout["overlap"], check.layout  # the contents never cover the text
    assert check.layout["wide"] == [], check.layout
