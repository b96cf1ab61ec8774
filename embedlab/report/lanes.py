"""Executing and rendering the notebooks: papermill injects each notebook's parameters
(models, data sets, cache and figure folders), `jobs` lanes execute them side by side (a
kernel per lane, reused from notebook to notebook with its namespace cleared), nbconvert
turns each into `reports/<notebook>.html`, and `build` ties it together: priming, lanes,
index.

`build` first computes alone the runs whose timings the notebooks show (`prime`: the trap
run), then starts the lanes; the other declared runs (public sets, dimension sweeps,
instruction variants: timings not shown) are computed in a priming thread meanwhile, and a
notebook that declares one waits for it before it starts. So the notebooks only read the
embedding cache and a re-render recomputes no embedding."""

from __future__ import annotations

import asyncio
import json
import shutil
import sys
import time
import traceback
from collections.abc import Awaitable, Callable, Mapping, Sequence
from pathlib import Path
from typing import Any

from embedlab.report.index import NotebookResult, write_index
from embedlab.report.notebook_files import declared_needs, declared_parameters, list_notebooks, notebook_title
from embedlab.report.paths import default_figures_dir, default_reports_dir
from embedlab.report.prime import distinct, notebook_steps, run_steps

KERNEL = "python3"
CELL_TIMEOUT_S = 1800
# Parameters every notebook may declare; `build` passes each notebook only those it declares.
COMMON_PARAMETERS = ("models", "datasets", "cache_dir", "figures_dir", "dims", "samples", "sample_seed")


def execute_notebook(
    src: str | Path,
    dst: str | Path,
    parameters: Mapping[str, Any] | None = None,
    cwd: str | Path | None = None,
    timeout: int = CELL_TIMEOUT_S,
) -> None:
    """Run a notebook headless with papermill, writing the executed copy to `dst`. Raises
    papermill's PapermillExecutionError when a cell fails (the copy is still written)."""
    import papermill

    papermill.execute_notebook(
        str(src),
        str(dst),
        parameters=dict(parameters or {}),
        kernel_name=KERNEL,
        cwd=str(cwd or Path(src).parent),
        progress_bar=False,
        log_output=False,
        request_save_on_cell_execute=False,
        execution_timeout=timeout,
    )


def render_html(executed: str | Path, out: str | Path, show_code: bool = False) -> Path:
    """nbconvert's HTML (lab template) of an executed notebook, images embedded; code hidden
    unless `show_code`."""
    import nbformat

    nb = nbformat.read(str(executed), as_version=4)
    return _write_html(_exporter(show_code), nb, Path(out), notebook_title(executed))


RESET_CELL = "%reset -f\nimport matplotlib.pyplot as _plt\n_plt.close('all')\ndel _plt"


def _parameterized(src: Path, parameters: Mapping[str, Any]):
    """The notebook with papermill's injected-parameters cell, plus a first cell that clears
    the kernel's namespace (a kernel is reused from notebook to notebook; imported modules
    stay, variables do not)."""
    import nbformat
    from papermill.iorw import load_notebook_node
    from papermill.parameterize import parameterize_notebook

    nb = parameterize_notebook(load_notebook_node(str(src)), dict(parameters), kernel_name=KERNEL, language="python")
    nb.cells.insert(0, nbformat.v4.new_code_cell(RESET_CELL))
    return nb


def _strip_reset(nb) -> None:
    """Remove the reset cell and number the remaining cells from 1."""
    nb.cells.pop(0)
    for cell in nb.cells:
        if cell.get("cell_type") == "code" and cell.get("execution_count"):
            cell["execution_count"] -= 1
            for output in cell.get("outputs", []):
                if output.get("execution_count"):
                    output["execution_count"] -= 1


Ready = Callable[[Path], Awaitable[None]]


async def _lane(
    queue,
    results: dict,
    reports_dir: Path,
    figures_dir: Path,
    cwd: Path,
    timeout: int,
    ready: Ready | None = None,
    show_code: bool = False,
) -> None:
    """Execute notebooks from `queue` one after another on one kernel of its own (started
    once: the imports are paid once per lane, not per notebook), write each executed copy and
    its HTML. A kernel that dies is replaced for the next notebook. `ready(notebook)` is
    awaited, once the kernel is up, before a notebook starts (its declared runs primed)."""
    import nbformat
    from jupyter_client.manager import AsyncKernelManager
    from nbclient import NotebookClient
    from nbclient.exceptions import CellExecutionError, DeadKernelError

    km = None
    exporter = None
    try:
        while True:
            try:
                src, parameters = queue.get_nowait()
            except asyncio.QueueEmpty:
                return
            if km is None or not await km.is_alive():
                km = AsyncKernelManager(kernel_name=KERNEL)
                log = reports_dir / "executed" / f"kernel-{id(km):x}.log"  # the kernel process's own messages
                log.parent.mkdir(parents=True, exist_ok=True)
                with open(log, "ab") as stderr:  # noqa: ASYNC230 - opening a local log file does not block
                    await km.start_kernel(cwd=str(cwd), stderr=stderr)
            if ready is not None:
                await ready(src)
            shutil.rmtree(figures_dir / src.stem, ignore_errors=True)  # no stale figure survives a re-render
            nb = _parameterized(src, parameters)
            # no widget state: a rendered page has no kernel, so widgets show their static HTML (embedlab.explore)
            client = NotebookClient(
                nb,
                km=km,
                timeout=timeout,
                kernel_name=KERNEL,
                resources={"metadata": {"path": str(cwd)}},
                store_widget_state=False,
            )
            start = time.perf_counter()
            error = None
            try:
                await client.async_execute()
            except (CellExecutionError, DeadKernelError, TimeoutError, RuntimeError) as exc:
                error = f"{type(exc).__name__}: {exc}"[:4000]
            finally:
                if client.kc is not None:
                    client.kc.stop_channels()
            seconds = time.perf_counter() - start
            _strip_reset(nb)
            executed = reports_dir / "executed" / src.name
            executed.parent.mkdir(parents=True, exist_ok=True)
            nbformat.write(nb, str(executed))
            html_path = None
            try:
                exporter = exporter or _exporter(show_code)
                html_path = _write_html(exporter, nb, reports_dir / f"{src.stem}.html", notebook_title(src))
            except Exception:  # noqa: BLE001 - report the notebook as failed, go on with the others
                error = (error or "") + "\nrendering failed: " + traceback.format_exc(limit=3)
            figures = sorted(
                (figures_dir / src.stem).glob("*.png"), key=lambda f: (f.stat().st_mtime_ns, f.name)
            )  # in the order drawn
            results[src] = NotebookResult(
                src.stem, notebook_title(src), executed, html_path, seconds, error, figures, finding_of(nb)
            )
    finally:
        if km is not None and await km.is_alive():
            await km.shutdown_kernel(now=True)


# Cells never shown in a rendered page: papermill's injected parameters (and, with the code
# hidden, the notebook's own parameters cell).
HIDDEN_TAGS = ("injected-parameters",)
PAGE_CSS = (
    "<style>.embedlab-nav{display:flex;gap:1.5em;padding:.5em 1em;border-bottom:1px solid #ddd;font:14px "
    "system-ui,sans-serif}"
    ".embedlab-nav .here{color:#555;flex:1;text-align:center}"
    ".jp-OutputArea-output{overflow-x:auto;max-width:100%}.jp-OutputArea-output img{max-width:100%;height:auto}"
    ".jp-RenderedHTMLCommon table{font-size:12px}details>summary{cursor:pointer;color:#1565c0;margin:.4em 0}"
    ".embedlab-finding{border-left:4px solid #1a7f37;background:#f3faf4;padding:.3em 1em;margin:.3em "
    "0;font-size:15px}</style>"
)


def _exporter(show_code: bool = False):
    """nbconvert's lab-template HTML exporter: code inputs and prompts hidden unless
    `show_code`, papermill's injected-parameters cell (and, with code hidden, the
    parameters cell) removed."""
    from nbconvert import HTMLExporter
    from nbconvert.preprocessors import TagRemovePreprocessor

    hidden = set(HIDDEN_TAGS) | (set() if show_code else {"parameters"})
    exporter = HTMLExporter(
        template_name="lab",
        exclude_input=not show_code,
        exclude_input_prompt=not show_code,
        exclude_output_prompt=not show_code,
    )
    exporter.register_preprocessor(TagRemovePreprocessor(remove_cell_tags=hidden, enabled=True), enabled=True)
    exporter.show_code = show_code
    return exporter


def _shown(nb, show_code: bool):
    """The notebook as a page shows it: with the code hidden, code cells that output nothing
    are left out (an empty block each otherwise)."""
    if show_code:
        return nb
    import copy

    shown = copy.deepcopy(nb)
    shown.cells = [c for c in shown.cells if c.get("cell_type") != "code" or c.get("outputs")]
    return shown


def _write_html(exporter, nb, out: Path, title: str) -> Path:
    body, _ = exporter.from_notebook_node(
        _shown(nb, getattr(exporter, "show_code", True)), resources={"metadata": {"name": title}}
    )
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(body.replace("</head>", PAGE_CSS + "</head>", 1), encoding="utf-8")
    return out


def finding_of(nb) -> str | None:
    """The headline a notebook displayed as its finding (`embedlab.report.findings`), if any."""
    from embedlab.report.findings import FINDING_KEY

    for cell in nb.cells:
        for output in cell.get("outputs", []):
            headline = output.get("metadata", {}).get(FINDING_KEY)
            if headline:
                return str(headline)
    return None


def link_pages(results: Sequence[NotebookResult]) -> None:
    """Previous / index / next links at the top and bottom of every rendered page, in the
    order of `results`."""
    import html

    pages = [r for r in results if r.html is not None and r.html.exists()]
    for i, page in enumerate(pages):

        def link(j: int, arrow: str) -> str:
            if 0 <= j < len(pages):
                return f"<a href='{html.escape(pages[j].html.name)}'>{arrow} {html.escape(pages[j].title)}</a>"
            return "<span></span>"

        nav = (
            f"<nav class='embedlab-nav'>{link(i - 1, '←')}<span class='here'><a href='index.html'>all reports</a> · "
            f"{i + 1} of {len(pages)}</span>{link(i + 1, '→')}</nav>"
        )
        text = page.html.read_text(encoding="utf-8")
        start = text.index(">", text.index("<body")) + 1
        end = text.rindex("</body>")
        page.html.write_text(text[:start] + nav + text[start:end] + nav + text[end:], encoding="utf-8")


def execute_all(
    paths: Sequence[Path],
    parameters: Sequence[Mapping[str, Any]],
    reports_dir: Path,
    figures_dir: Path,
    jobs: int = 2,
    timeout: int = CELL_TIMEOUT_S,
    ready: Ready | None = None,
    beside: Callable[[], Awaitable[Any]] | None = None,
    show_code: bool = False,
) -> list[NotebookResult]:
    """Execute and render notebooks on `jobs` kernels side by side (each kernel reused for
    its share of the notebooks), taking them in the order of `paths`; results in that order.
    `beside()` runs alongside the lanes (the priming thread); `ready` see `_lane`."""

    async def run() -> dict:
        queue: asyncio.Queue = asyncio.Queue()
        for path, params in zip(paths, parameters):
            queue.put_nowait((Path(path).resolve(), params))
        results: dict = {}
        cwd = Path(paths[0]).resolve().parent
        lanes = [
            _lane(queue, results, reports_dir, figures_dir, cwd, timeout, ready, show_code)
            for _ in range(max(1, min(jobs, len(paths))))
        ]
        await asyncio.gather(*lanes, *([beside()] if beside is not None else []))
        return results

    done = asyncio.run(run()) if paths else {}
    return [done[Path(p).resolve()] for p in paths]


def build(
    notebooks: Sequence[str | Path] | None = None,
    reports_dir: str | Path | None = None,
    figures_dir: str | Path | None = None,
    parameters: Mapping[str, Any] | None = None,
    jobs: int = 2,
    prime_cache: bool = True,
    timeout: int = CELL_TIMEOUT_S,
    progress: bool = True,
    show_code: bool = False,
) -> list[NotebookResult]:
    """Prime the cache with what the notebooks declare (`needs`), execute the notebooks
    (`jobs` at a time) and render them (code hidden unless `show_code`), link the pages to
    each other and write the index. `parameters` go to every
    notebook that declares them (models, datasets, cache_dir, dims, samples, ...);
    `figures_dir` is passed as the notebooks' figures folder. The timed runs are primed
    alone first; the others beside the lanes, each notebook waiting for its own."""
    paths = [Path(p) for p in notebooks] if notebooks is not None else list_notebooks()
    reports_dir = Path(reports_dir) if reports_dir else default_reports_dir()
    figures_dir = Path(figures_dir) if figures_dir else default_figures_dir()
    reports_dir.mkdir(parents=True, exist_ok=True)
    params = {k: v for k, v in dict(parameters or {}).items() if v is not None}
    params["figures_dir"] = str(figures_dir.resolve())
    if params.get("cache_dir"):
        params["cache_dir"] = str(Path(params["cache_dir"]).resolve())
    per_notebook = [{k: v for k, v in params.items() if k in declared_parameters(path)} for path in paths]
    memo: dict = {}
    steps = {path: notebook_steps(path, params, memo) for path in paths} if prime_cache else {}
    undeclared = [p.name for p in paths if prime_cache and declared_needs(p) is None]
    if undeclared:
        print(
            f"embedlab report: no `needs` in the parameters cell of {', '.join(undeclared)}: nothing primed for them",
            file=sys.stderr,
        )
    planned = distinct(s for listed in steps.values() for s in listed)
    primed = run_steps([s for s in planned if s.timed], "priming (timed runs, alone)", progress) if prime_cache else {}
    later = [s for s in planned if not s.timed]
    order = {s.key: i for i, s in enumerate(later)}

    def waits_for(path: Path) -> int:  # notebooks ready first go first
        return max((order[s.key] + 1 for s in steps.get(path, []) if s.key in order), default=0)

    ranked = sorted(range(len(paths)), key=lambda i: waits_for(paths[i]))
    events = {s.key: asyncio.Event() for s in later}  # set when that step is done
    declared = {p.resolve(): steps.get(p, []) for p in paths}

    async def ready(src: Path) -> None:
        for step in declared[src]:
            if step.key in events:
                await events[step.key].wait()

    async def beside() -> None:
        loop = asyncio.get_running_loop()
        failed: list[str] = []
        seconds = await asyncio.to_thread(
            run_steps,
            later,
            "priming (beside the notebooks)",
            progress,
            lambda s: loop.call_soon_threadsafe(events[s.key].set),
            failed,
        )
        primed.update(seconds)
        if failed:  # the notebooks that declared these run them again and report the error
            print("embedlab report: priming failed for " + "; ".join(failed), file=sys.stderr)

    results = execute_all(
        [paths[i] for i in ranked],
        [per_notebook[i] for i in ranked],
        reports_dir,
        figures_dir,
        jobs,
        timeout,
        ready=ready if later else None,
        beside=beside if later else None,
        show_code=show_code,
    )
    results = [results[ranked.index(i)] for i in range(len(paths))]
    link_pages(results)
    if primed:  # on the terminal, not on the pages
        print("embedlab report: priming (s): " + ", ".join(f"{k} {v:.1f}" for k, v in primed.items()), file=sys.stderr)
    shown = {k: v for k, v in params.items() if k in ("models", "datasets")}
    write_index(reports_dir, results, figures_dir, {"run": json.dumps(shown, ensure_ascii=False)} if shown else None)
    return results
