"""The notebooks as a person uses them: a real `jupyter lab` server (127.0.0.1, a free port,
no token, its own config and settings folders) and Debian's Chromium driven by Playwright.
It opens 03_idiom and 15_explore, runs every cell from the Run menu, waits for the kernel to
finish, checks that no cell failed, that the heatmaps and the explorer's bars are there,
types a new query into the trap explorer and sees the bars change, and saves screenshots.

Skipped only where Chromium cannot start. The notebooks read the shared embedding cache
(`$EMBEDLAB_CACHE_DIR`, else .cache/embedlab), as the other notebook tests do: quick once
`make report` (or the notebook tests) filled it."""

from __future__ import annotations

import json
import os
import shutil
import signal
import socket
import subprocess
import sys
import time
import urllib.error
import urllib.request
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.tiers import tier

ROOT = Path(__file__).resolve().parents[1]
CHROMIUM = "/usr/bin/chromium"
NOTEBOOKS = ("03_idiom", "15_explore")
RUN_ALL_TIMEOUT_S = 1800  # a cold embedding cache means encoding traps-zh on a small CPU
# JupyterLab user settings for the test: every cell in the DOM (no virtual scrolling), no news pop-up
SETTINGS = {
    "@jupyterlab/notebook-extension/tracker.jupyterlab-settings": {"windowingMode": "none"},
    "@jupyterlab/apputils-extension/notification.jupyterlab-settings": {"fetchNews": "false", "checkForUpdates": False},
}
ACTIVE = ".jp-NotebookPanel:not(.lm-mod-hidden)"


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _prepared_notebooks(folder: Path, figures: Path) -> None:
    """Copies of the notebooks with the parameters `embedlab report` would inject: the shared
    embedding cache, figures saved under the test's folder (not the checkout's)."""
    import nbformat
    from papermill.iorw import load_notebook_node
    from papermill.parameterize import parameterize_notebook

    cache = os.environ.get("EMBEDLAB_CACHE_DIR") or str(ROOT / ".cache" / "embedlab")
    for name in NOTEBOOKS:
        nb = load_notebook_node(str(ROOT / "notebooks" / f"{name}.ipynb"))  # papermill's reading: every cell has its tags
        nb = parameterize_notebook(nb, {"cache_dir": cache, "figures_dir": str(figures)}, kernel_name="python3", language="python")
        nbformat.write(nb, str(folder / f"{name}.ipynb"))


@pytest.fixture(scope="module")
@tier("e2e")
def lab(tmp_path_factory) -> Iterator[str]:
    """A running JupyterLab on a copy of the notebooks; its URL. Stopped (with its kernels)
    at the end."""
    base = tmp_path_factory.mktemp("lab")
    root, figures = base / "notebooks", base / "figures"
    root.mkdir()
    _prepared_notebooks(root, figures)
    settings = base / "settings"
    for rel, value in SETTINGS.items():
        (settings / rel).parent.mkdir(parents=True, exist_ok=True)
        (settings / rel).write_text(json.dumps(value), encoding="utf-8")
    env = {
        **os.environ, "JUPYTER_CONFIG_DIR": str(base / "config"), "JUPYTER_RUNTIME_DIR": str(base / "runtime"),
        "JUPYTERLAB_SETTINGS_DIR": str(settings), "JUPYTERLAB_WORKSPACES_DIR": str(base / "workspaces"),
        "EMBEDLAB_CACHE_DIR": os.environ.get("EMBEDLAB_CACHE_DIR") or str(ROOT / ".cache" / "embedlab"), "HF_HUB_OFFLINE": "1",
    }
    port = _free_port()
    jupyter = Path(sys.executable).with_name("jupyter")
    log = open(base / "server.log", "wb")  # noqa: SIM115 - closed when the server stops
    server = subprocess.Popen(
        [str(jupyter), "lab", "--no-browser", "--ip=127.0.0.1", f"--port={port}", "--ServerApp.port_retries=0",
         "--IdentityProvider.token=", "--ServerApp.password=", "--allow-root", f"--ServerApp.root_dir={root}"],
        env=env, cwd=root, stdout=log, stderr=subprocess.STDOUT, start_new_session=True,
    )
    url = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + 120
        while True:
            try:
                with urllib.request.urlopen(f"{url}/api/status", timeout=5) as response:
                    if response.status == 200:
                        break
            except (urllib.error.URLError, ConnectionError):
                pass
            if server.poll() is not None or time.monotonic() > deadline:
                raise RuntimeError(f"jupyter lab did not start (exit {server.poll()}): {(base / 'server.log').read_text(errors='replace')[-3000:]}")
            time.sleep(0.5)
        yield url
    finally:
        stop_group(server)  # the server shuts its kernels down on SIGTERM
        log.close()


def stop_group(process: subprocess.Popen) -> None:
    """Stop a server started in its own process group: SIGTERM (it shuts its kernels down),
    SIGKILL after a minute."""
    if process.poll() is None:
        os.killpg(process.pid, signal.SIGTERM)
        try:
            process.wait(timeout=60)
        except subprocess.TimeoutExpired:
            os.killpg(process.pid, signal.SIGKILL)
            process.wait(timeout=30)


@pytest.fixture(scope="module")
@tier("e2e")
def browser():
    """Debian's Chromium through Playwright (never a downloaded browser); the test is skipped
    only when it cannot start."""
    sync_api = pytest.importorskip("playwright.sync_api")
    with sync_api.sync_playwright() as p:
        try:
            chromium = p.chromium.launch(executable_path=CHROMIUM, args=["--no-sandbox"])
        except Exception as exc:  # noqa: BLE001 - any launch failure is the skip reason, printed
            pytest.skip(f"Chromium could not start from {CHROMIUM}: {str(exc).splitlines()[0]}")
        try:
            yield chromium
        finally:
            chromium.close()


def _run_all(page, url: str, name: str) -> None:
    """Open a notebook, wait for its kernel, run every cell from the Run menu and wait until
    each code cell has an execution count (none queued or running)."""
    page.goto(f"{url}/lab/tree/{name}.ipynb?reset", wait_until="domcontentloaded")
    page.wait_for_selector(f"{ACTIVE} .jp-Notebook .jp-CodeCell", timeout=120_000)
    page.wait_for_selector("#jp-main-statusbar >> text=Idle", timeout=180_000)
    page.click(".lm-MenuBar-itemLabel:text-is('Run')")
    page.click(".lm-Menu-item[data-command='runmenu:run-all']")
    page.wait_for_function(
        """(active) => {
            const prompts = [...document.querySelectorAll(active + ' .jp-CodeCell .jp-InputPrompt')];
            return prompts.length > 0 && prompts.every(p => /\\[\\d+\\]/.test(p.textContent));
        }""",
        arg=ACTIVE, timeout=RUN_ALL_TIMEOUT_S * 1000, polling=1000,
    )
    page.wait_for_selector("#jp-main-statusbar >> text=Idle", timeout=120_000)


def _assert_no_errors(page, name: str) -> None:
    stderr = page.locator(f"{ACTIVE} .jp-RenderedText[data-mime-type='application/vnd.jupyter.stderr']").all_inner_texts()
    failed = [t for t in stderr if "Traceback" in t or "Error" in t]
    assert not failed, f"{name}: a cell failed:\n" + "\n---\n".join(t[-2000:] for t in failed)


SCORES_JS = """(selector) => {
    const explorer = document.querySelector(selector);
    return explorer ? [...explorer.querySelectorAll('.embedlab-bar')].map(b => b.dataset.model + ':' + b.dataset.score) : [];
}"""


def _scores(page, selector: str) -> list[str]:
    """model:score of every bar of the first explorer matching `selector`."""
    return page.evaluate(SCORES_JS, selector)


def test_notebooks_run_in_jupyterlab_and_the_explorer_reacts(lab: str, browser, tmp_path: Path) -> None:
    page = browser.new_page(viewport={"width": 1400, "height": 1000})
    try:
        _run_all(page, lab, "03_idiom")
        _assert_no_errors(page, "03_idiom")
        images = page.locator(f"{ACTIVE} .jp-RenderedImage img")
        assert images.count() >= 5, f"03_idiom: {images.count()} figures shown (heatmaps, margins, kinds, ranks, top-1)"
        page.screenshot(path=str(tmp_path / "03_idiom.png"))

        _run_all(page, lab, "15_explore")
        _assert_no_errors(page, "15_explore")
        trap = f"{ACTIVE} .jupyter-widgets.embedlab-trap"  # the first one: section 1's explorer
        page.wait_for_selector(f"{trap} .embedlab-bar", timeout=120_000)
        before = _scores(page, trap)
        models = {s.split(":")[0] for s in before}
        assert {"bm25", "use-multilingual-v3", "multilingual-e5-small"} <= models, models
        heatmaps = page.locator(f"{ACTIVE} .jupyter-widgets img.embedlab-heatmap")
        assert heatmaps.count() >= 1, "15_explore: the results explorer shows no heatmap row"

        query = page.locator(f"{trap} .embedlab-query input").first
        query.fill("怎样判断一份简历里的经历是不是夸大了")
        query.press("Enter")
        page.wait_for_function(
            f"([selector, before]) => {{ const now = ({SCORES_JS})(selector); return now.length === before.length && now.join() !== before.join(); }}",
            arg=[trap, before], timeout=300_000,
        )
        after = _scores(page, trap)
        assert after != before and len(after) == len(before)

        # the results explorer, live: "compare with" shows two rankings side by side, and the
        # export button writes the selected failures as a trap file the data loader reads
        results = f"{ACTIVE} .jupyter-widgets.embedlab-results"
        panel = page.locator(results).first
        panel.scroll_into_view_if_needed()
        panel.locator(".widget-dropdown:has(label:has-text('compare with')) select").select_option(label="bm25")
        page.wait_for_selector(f"{results} .embedlab-side-by-side table[data-model='bm25']", timeout=120_000)
        assert panel.locator(".embedlab-side-by-side table").count() == 2
        exported = tmp_path / "failures.yaml"
        file_box = panel.locator(".widget-text:has(label:has-text('file')) input")
        file_box.fill(str(exported))
        file_box.press("Enter")
        panel.locator("button:has-text('export failures')").click()
        page.wait_for_function(
            "(selector) => (document.querySelector(selector)?.innerText || '').includes('failures.yaml')",
            arg=results, timeout=120_000,
        )
        from embedlab.data.datasets import load_dataset

        again = load_dataset(str(exported))
        assert len(again.queries) > 0 and again.meta.description, exported.read_text(encoding="utf-8")[:500]
        explorer = page.locator(trap).first
        explorer.scroll_into_view_if_needed()
        page.screenshot(path=str(tmp_path / "15_explore.png"))
        explorer.screenshot(path=str(tmp_path / "15_explore-trap.png"))
        if os.environ.get("EMBEDLAB_SCREENSHOT"):  # e.g. for the README: where to copy the explorer's picture
            shutil.copy(tmp_path / "15_explore-trap.png", os.environ["EMBEDLAB_SCREENSHOT"])
        assert (tmp_path / "15_explore.png").stat().st_size > 10_000
    finally:
        page.close()
