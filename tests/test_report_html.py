"""The rendered HTML opened in headless Chromium (Debian's `chromium`, no browser download):
a screenshot is taken, the expected headings are there, and every image loaded.

Chromium is driven through its DevTools protocol (`--remote-debugging-port`) with
websocket-client, so the page's own state (`img.complete`, `naturalWidth`) is read after
the load event, not guessed from the HTML text."""

from __future__ import annotations

import base64
import json
import os
import re
import shutil
import subprocess
import tempfile
import time
import urllib.request
from pathlib import Path

import pytest

from embedlab.report import render as rep
from tests.tiers import tier

ROOT = Path(__file__).resolve().parents[1]
CHROMIUM = shutil.which("chromium") or shutil.which("chromium-browser")
CHROMIUM_FLAGS = (
    "--headless", "--no-sandbox", "--disable-gpu", "--disable-background-networking", "--disable-component-update",
    "--disable-sync", "--no-first-run", "--hide-scrollbars", "--window-size=1280,1600", "--remote-debugging-port=0",
    "--allow-file-access-from-files",
)
PAGE_STATE = """(() => ({
  title: document.title,
  headings: [...document.querySelectorAll('h1, h2, h3')].map(h => h.textContent.replace('¶', '').trim()),
  images: [...document.images].map(i => ({src: i.getAttribute('src').slice(0, 80), complete: i.complete, width: i.naturalWidth, height: i.naturalHeight})),
  links: [...document.querySelectorAll('a[href$=".html"]')].map(a => a.getAttribute('href')),
  errors: [...document.querySelectorAll('.jp-RenderedText[data-mime-type="application/vnd.jupyter.stderr"]')].map(e => e.textContent).filter(t => /Traceback|Error/.test(t)),
  finding_top: (document.querySelector('.embedlab-finding') || {getBoundingClientRect: () => ({top: 1e9})}).getBoundingClientRect().top,
  figure_top: Math.min(1e9, ...[...document.images].filter(i => i.naturalWidth > 200).map(i => i.getBoundingClientRect().top)),
  code_inputs: document.querySelectorAll('.jp-InputArea-editor').length,
  wider_than_page: document.documentElement.scrollWidth > window.innerWidth + 1,
  screen: window.innerHeight,
}))()"""
FIRST_SCREEN = {"width": 1400, "height": 900}  # what a reader sees before scrolling



@pytest.fixture(scope="module", autouse=True)
def _chromium_installed() -> None:
    """`make install-test` installs Debian's chromium; without it these tests fail (they are
    the check that the report opens in a browser), unless EMBEDLAB_SKIP_BROWSER=1."""
    if CHROMIUM is None:
        if os.environ.get("EMBEDLAB_SKIP_BROWSER") == "1":
            pytest.skip("EMBEDLAB_SKIP_BROWSER=1 and no chromium")
        pytest.fail("needs Debian's chromium: apt-get install -y chromium fonts-wqy-microhei (or set EMBEDLAB_SKIP_BROWSER=1)")


class Chromium:
    """One headless Chromium with a fresh profile, driven over the DevTools protocol."""

    def __init__(self) -> None:
        import websocket

        self.profile = tempfile.mkdtemp(prefix="embedlab-chromium-")
        self.proc = subprocess.Popen(
            [CHROMIUM, *CHROMIUM_FLAGS, f"--user-data-dir={self.profile}", "about:blank"],
            stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True,
        )
        port = None
        deadline = time.monotonic() + 60
        while port is None and time.monotonic() < deadline:
            line = self.proc.stderr.readline()
            if not line and self.proc.poll() is not None:
                raise RuntimeError(f"chromium exited with {self.proc.returncode}")
            match = re.search(r"DevTools listening on ws://[^:]+:(\d+)/", line)
            port = int(match.group(1)) if match else None
        if port is None:
            raise RuntimeError("chromium did not open its DevTools port")
        targets = json.loads(urllib.request.urlopen(f"http://127.0.0.1:{port}/json/list", timeout=10).read())
        page = next(t for t in targets if t.get("type") == "page")
        self.ws = websocket.create_connection(page["webSocketDebuggerUrl"], timeout=60, suppress_origin=True)
        self._id = 0
        self.call("Page.enable")
        self.call("Emulation.setDeviceMetricsOverride", deviceScaleFactor=1, mobile=False, **FIRST_SCREEN)

    def call(self, method: str, **params):
        self._id += 1
        self.ws.send(json.dumps({"id": self._id, "method": method, "params": params}))
        while True:
            message = json.loads(self.ws.recv())
            if message.get("id") == self._id:
                if "error" in message:
                    raise RuntimeError(f"{method}: {message['error']}")
                return message.get("result", {})

    def open(self, url: str, timeout: float = 60) -> None:
        """Navigate and wait for the load event (every image fetched or failed)."""
        self.call("Page.navigate", url=url)
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            ready = self.call("Runtime.evaluate", expression="document.readyState", returnByValue=True)
            if ready["result"].get("value") == "complete":
                return
            time.sleep(0.2)
        raise TimeoutError(f"{url} did not finish loading in {timeout}s")

    def state(self) -> dict:
        return self.call("Runtime.evaluate", expression=PAGE_STATE, returnByValue=True)["result"]["value"]

    def screenshot(self, path: Path) -> Path:
        data = self.call("Page.captureScreenshot", format="png", captureBeyondViewport=False)["data"]
        path.write_bytes(base64.b64decode(data))
        return path

    def close(self) -> None:
        try:
            self.ws.close()
        finally:
            self.proc.terminate()
            try:
                self.proc.wait(timeout=20)
            except subprocess.TimeoutExpired:
                self.proc.kill()
            shutil.rmtree(self.profile, ignore_errors=True)


@pytest.fixture(scope="module")
@tier("e2e")
def rendered(tmp_path_factory) -> Path:
    """Four notebooks rendered with the bundled models (the overview, one category, speed and
    memory, pipelines), into a temporary reports folder; the embedding cache is the shared
    one, so this is quick once test_notebooks (or `make report`) has run."""
    out = tmp_path_factory.mktemp("reports")
    paths = rep.list_notebooks(ROOT / "notebooks", ["00_overview", "06_antonym", "09_speed_memory", "14_pipelines"])
    results = rep.build(paths, out / "reports", out / "figures", {"cache_dir": os.environ.get("EMBEDLAB_CACHE_DIR")}, jobs=2)
    failed = [f"{r.name}: {r.error}" for r in results if r.error]
    assert not failed, "\n".join(failed)
    return out / "reports"


@pytest.fixture(scope="module")
@tier("e2e")
def browser():
    chromium = Chromium()
    yield chromium
    chromium.close()


def _check_page(browser: Chromium, page: Path, shot: Path) -> dict:
    browser.open(page.resolve().as_uri())
    browser.screenshot(shot)
    state = browser.state()
    broken = [i for i in state["images"] if not i["complete"] or i["width"] == 0]
    assert not broken, f"images that did not load in {page.name}: {broken}"
    assert shot.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n" and shot.stat().st_size > 10_000, f"screenshot of {page.name} is empty"
    return state


def _leads_with_the_answer(state: dict, page: str) -> None:
    """The first screen (1400 x 900) shows the computed finding and a figure; no code on the
    page; nothing wider than the page."""
    assert state["finding_top"] < state["screen"], f"{page}: the finding is not on the first screen"
    assert state["figure_top"] < state["screen"], f"{page}: no figure on the first screen"
    assert state["code_inputs"] == 0, f"{page}: code shown"
    assert not state["wider_than_page"], f"{page}: something is wider than the page"


def test_overview_report_in_chromium(rendered: Path, browser: Chromium, tmp_path: Path) -> None:
    state = _check_page(browser, rendered / "00_overview.html", tmp_path / "overview.png")
    headings = " | ".join(state["headings"])
    for expected in ("00 · Overview", "Summary", "Accuracy per model, with confidence intervals", "Cue baselines", "Per trap category", "Memory", "The article's reported numbers beside ours"):
        assert expected in headings, f"{expected!r} not in {headings}"
    assert len(state["images"]) >= 7  # choose-a-model, top-1, MRR, beside the cues, category heat, memory, reported vs measured
    assert not state["errors"]
    _leads_with_the_answer(state, "00_overview")
    assert "06_antonym.html" in state["links"] and "index.html" in [*state["links"], "index.html"]


def test_speed_and_pipeline_reports_in_chromium(rendered: Path, browser: Chromium, tmp_path: Path) -> None:
    for name, expected in (("09_speed_memory", ("Why a model has several speeds", "Memory")), ("14_pipelines", ("What runs, and what is skipped", "Top-1 per trap category"))):
        state = _check_page(browser, rendered / f"{name}.html", tmp_path / f"{name}.png")
        headings = " | ".join(state["headings"])
        for heading in expected:
            assert heading in headings, f"{name}: {heading!r} not in {headings}"
        assert not state["errors"]
        _leads_with_the_answer(state, name)


def test_category_report_in_chromium(rendered: Path, browser: Chromium, tmp_path: Path) -> None:
    state = _check_page(browser, rendered / "06_antonym.html", tmp_path / "antonym.png")
    headings = " | ".join(state["headings"])
    for expected in ("反义关系", "Antonyms", "What the trap is", "Its cases", "Query × document similarity, per model", "Margin per query and model", "Which distractor kinds fool which model", "BM25 on the same cases"):
        assert expected in headings, f"{expected!r} not in {headings}"
    assert len(state["images"]) >= 5  # a heatmap per data set, margins, kinds, ranks
    assert not state["errors"]
    _leads_with_the_answer(state, "06_antonym")


def test_index_links_reports_and_figures(rendered: Path, browser: Chromium, tmp_path: Path) -> None:
    state = _check_page(browser, rendered / "index.html", tmp_path / "index.png")
    assert "embedlab reports" in state["headings"]
    assert {"00_overview.html", "06_antonym.html", "09_speed_memory.html", "14_pipelines.html"} <= set(state["links"])
    thumbnails = [i for i in state["images"] if "figures/" in i["src"]]
    assert len(thumbnails) == 4 and all(i["width"] >= 600 for i in thumbnails)  # one readable thumbnail per page


def test_a_missing_image_is_caught(tmp_path: Path, browser: Chromium) -> None:
    """The check itself: a page with a broken image fails it."""
    page = tmp_path / "broken.html"
    page.write_text("<html><body><h1>x</h1><img src='nowhere.png'></body></html>", encoding="utf-8")
    with pytest.raises(AssertionError, match="did not load"):
        _check_page(browser, page, tmp_path / "broken.png")
