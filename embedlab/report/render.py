"""Rendered reports: execute every notebook headless (papermill injects the parameters:
models, data sets, cache and figure folders), convert each to `reports/<notebook>.html` with
nbconvert, and write `reports/index.html` linking them with their figures
(`figures/<notebook>/*.png|svg`, saved by the notebooks through `save_figure`).

Before the notebooks run, `prime` computes every embedding they will ask for, one model at
a time in this process, into the embedding cache; the notebooks then only read the cache,
so they can run side by side (`jobs` kernels, each reused from notebook to notebook with its
namespace cleared) without disturbing each other's timings, and a re-render recomputes no
embedding. `embedlab report` is the command line."""

from __future__ import annotations

import html
import json
import os
import shutil
import time
import traceback
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Annotated, Any, Optional

import typer

KERNEL = "python3"
CELL_TIMEOUT_S = 1800
FIGURE_FORMATS = ("png", "svg")
# Parameters every notebook may declare; `build` passes each notebook only those it declares.
COMMON_PARAMETERS = ("models", "datasets", "cache_dir", "figures_dir", "dims", "samples", "sample_seed")


def project_root() -> Path:
    """The checkout embedlab runs from (where pyproject.toml is), else the current folder."""
    root = Path(__file__).resolve().parents[2]
    return root if (root / "pyproject.toml").exists() else Path.cwd()


def default_figures_dir() -> Path:
    return project_root() / "figures"


def default_reports_dir() -> Path:
    return project_root() / "reports"


def default_notebooks_dir() -> Path:
    return project_root() / "notebooks"


# ---- helpers notebooks call ------------------------------------------------------------


def figure_folder(figures_dir: str | Path | None, notebook: str) -> Path:
    """Where a notebook's figures go: `<figures_dir or figures/>/<notebook>`."""
    return Path(figures_dir) / notebook if figures_dir else default_figures_dir() / notebook


@dataclass(frozen=True)
class SavedFigure:
    """A figure written to disk (PNG and SVG). In Jupyter it shows as its saved PNG, so the
    figure is rendered once per format and never again for display."""

    name: str
    paths: tuple[Path, ...]
    dpi: float = 100.0

    @property
    def png(self) -> Path:
        return next(p for p in self.paths if p.suffix == ".png")

    def _repr_mimebundle_(self, include=None, exclude=None):
        import base64
        import struct

        raw = self.png.read_bytes()
        width = struct.unpack(">I", raw[16:20])[0]  # PNG header: IHDR width, pixels
        return {"image/png": base64.b64encode(raw).decode("ascii")}, {"image/png": {"width": round(width * 100 / self.dpi)}}


class SavedFigures(list):
    """Several SavedFigure; Jupyter shows each of them."""

    def _ipython_display_(self) -> None:
        from IPython.display import display

        for figure in self:
            display(figure)


def safe_name(name: str) -> str:
    """A figure name as a file stem: letters, digits, `-`, `_` and `.`; the rest become `-`."""
    return "".join(c if c.isalnum() or c in "-_." else "-" for c in name).strip("-")


def save_figure(fig, name: str, folder: str | Path, formats: Sequence[str] = FIGURE_FORMATS) -> SavedFigure:
    """Save a Figure (or an Axes' figure) as `<folder>/<name>.png` and `.svg`, close it, and
    return what was saved (shown as the PNG in a notebook). SVG text is drawn as paths, so
    the Chinese renders without the font installed."""
    import matplotlib as mpl
    import matplotlib.pyplot as plt

    fig = getattr(fig, "figure", fig)
    folder = Path(folder)
    folder.mkdir(parents=True, exist_ok=True)
    safe = safe_name(name)
    if fig.get_layout_engine() is not None:  # lay out once, not once per format
        fig.draw_without_rendering()
        fig.set_layout_engine("none")
    paths = []
    for fmt in formats:
        path = folder / f"{safe}.{fmt}"
        fig.savefig(path, format=fmt, **({"pil_kwargs": {"compress_level": 3}} if fmt == "png" else {}))
        paths.append(path)
    dpi = fig.get_dpi() if mpl.rcParams["savefig.dpi"] == "figure" else float(mpl.rcParams["savefig.dpi"])
    plt.close(fig)
    return SavedFigure(safe, tuple(paths), dpi)


class Drawer:
    """`draw(name, plot, *args, **kwargs)`: call a plotting function (one of embedlab.report.plots,
    or any function returning a Figure / Axes, or a mapping of them), save what it drew into
    `folder` as `<name>.png/.svg` (`<name>-<key>` for a mapping) and return it for display.

    Through the figure cache (`embedlab.report.figure_cache`, under `cache_dir`; None: the
    embedding cache's folder): when the same
    function was called on the same data with the same style before, its saved files are
    copied instead of drawn again, so a warm re-render draws only what changed. To get the
    Figure itself (to change it), call the plotting function directly and `save_figure`."""

    def __init__(self, folder: str | Path, cache_dir: str | Path | None = None, formats: Sequence[str] = FIGURE_FORMATS) -> None:
        from embedlab.report import figure_cache
        from embedlab.run.cache import default_cache_dir

        self.folder = Path(folder)
        self.formats = tuple(formats)
        self.cache = figure_cache.FigureCache(Path(cache_dir) if cache_dir else default_cache_dir()) if figure_cache.enabled() else None

    def __call__(self, name: str, plot: Any, *args: Any, **kwargs: Any) -> SavedFigure | SavedFigures:
        from embedlab.report import figure_cache

        key = None
        if self.cache is not None:
            try:
                key = figure_cache.figure_key(plot, args, kwargs, self.formats)
            except figure_cache.Unfingerprintable as exc:
                figure_cache.log.info("drawing %s without the figure cache: %s", name, exc)
            if key is not None and (hit := self.cache.load(key)) is not None:
                return self._restore(name, *hit)
        drawn = plot(*args, **kwargs)
        many = isinstance(drawn, Mapping)
        figures = drawn if many else {None: drawn}
        saved = [save_figure(fig, name if k is None else f"{name}-{k}", self.folder, self.formats) for k, fig in figures.items()]
        if key is not None:
            entries = [figure_cache.CachedFigure(None if k is None else str(k), s.dpi, {p.suffix[1:]: p.read_bytes() for p in s.paths}) for k, s in zip(figures, saved)]
            self.cache.store(key, entries, many)
        return SavedFigures(saved) if many else saved[0]

    def _restore(self, name: str, many: bool, cached: list) -> SavedFigure | SavedFigures:
        self.folder.mkdir(parents=True, exist_ok=True)
        saved = []
        for fig in cached:
            safe = safe_name(name if fig.suffix is None else f"{name}-{fig.suffix}")
            paths = []
            for fmt in self.formats:
                path = self.folder / f"{safe}.{fmt}"
                path.write_bytes(fig.files[fmt])
                paths.append(path)
            saved.append(SavedFigure(safe, tuple(paths), fig.dpi))
        return SavedFigures(saved) if many else saved[0]


def table(frame, columns: Sequence[str] | None = None, digits: int = 3):
    """A DataFrame for display: chosen columns, numbers rounded, no index (a Styler)."""
    if columns is not None:
        frame = frame[[c for c in columns if c in frame.columns]]
    from pandas.api.types import is_numeric_dtype

    text = [c for c in frame.columns if not is_numeric_dtype(frame[c])]
    styler = frame.style.format(precision=digits, na_rep="–").hide(axis="index")
    return styler.set_properties(subset=text, **{"text-align": "left"}) if text else styler


# ---- executing and rendering -------------------------------------------------------------


@dataclass
class NotebookResult:
    """One notebook's execution and rendering: seconds of execution, error (None if fine)."""

    name: str
    title: str
    executed: Path
    html: Path | None
    seconds: float
    error: str | None = None
    figures: list[Path] = field(default_factory=list)


def list_notebooks(folder: str | Path | None = None, only: Sequence[str] | None = None) -> list[Path]:
    """The notebooks of `folder` in name order; `only` keeps those whose name starts with one
    of the given prefixes (e.g. "00", "03_idiom")."""
    folder = Path(folder) if folder else default_notebooks_dir()
    paths = sorted(p for p in folder.glob("*.ipynb") if not p.name.startswith("."))
    if only:
        paths = [p for p in paths if any(p.stem.startswith(o) for o in only)]
    return paths


def notebook_title(path: str | Path) -> str:
    """The first `# ` heading of a notebook's markdown cells (else its file name)."""
    nb = json.loads(Path(path).read_text(encoding="utf-8"))
    for cell in nb.get("cells", []):
        if cell.get("cell_type") == "markdown":
            for line in "".join(cell.get("source", "")).splitlines():
                if line.startswith("# "):
                    return line[2:].strip()
    return Path(path).stem


def declared_parameters(path: str | Path) -> list[str]:
    """Names assigned in the notebook's cell tagged `parameters` (papermill's convention)."""
    import ast

    nb = json.loads(Path(path).read_text(encoding="utf-8"))
    for cell in nb.get("cells", []):
        if "parameters" in cell.get("metadata", {}).get("tags", []):
            tree = ast.parse("".join(cell.get("source", "")))
            return [t.id for node in tree.body if isinstance(node, ast.Assign) for t in node.targets if isinstance(t, ast.Name)]
    return []


def execute_notebook(src: str | Path, dst: str | Path, parameters: Mapping[str, Any] | None = None, cwd: str | Path | None = None, timeout: int = CELL_TIMEOUT_S) -> None:
    """Run a notebook headless with papermill, writing the executed copy to `dst`. Raises
    papermill's PapermillExecutionError when a cell fails (the copy is still written)."""
    import papermill

    papermill.execute_notebook(
        str(src), str(dst), parameters=dict(parameters or {}), kernel_name=KERNEL, cwd=str(cwd or Path(src).parent),
        progress_bar=False, log_output=False, request_save_on_cell_execute=False, execution_timeout=timeout,
    )


def render_html(executed: str | Path, out: str | Path) -> Path:
    """nbconvert's HTML (lab template) of an executed notebook, images embedded."""
    import nbformat

    nb = nbformat.read(str(executed), as_version=4)
    return _write_html(_exporter(), nb, Path(out), notebook_title(executed))


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


async def _lane(queue, results: dict, reports_dir: Path, figures_dir: Path, cwd: Path, timeout: int) -> None:
    """Execute notebooks from `queue` one after another on one kernel of its own (started
    once: the imports are paid once per lane, not per notebook), write each executed copy and
    its HTML. A kernel that dies is replaced for the next notebook."""
    import asyncio

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
                with open(log, "ab") as stderr:
                    await km.start_kernel(cwd=str(cwd), stderr=stderr)
            shutil.rmtree(figures_dir / src.stem, ignore_errors=True)  # no stale figure survives a re-render
            nb = _parameterized(src, parameters)
            client = NotebookClient(nb, km=km, timeout=timeout, kernel_name=KERNEL, resources={"metadata": {"path": str(cwd)}})
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
                exporter = exporter or _exporter()
                html_path = _write_html(exporter, nb, reports_dir / f"{src.stem}.html", notebook_title(src))
            except Exception:  # noqa: BLE001 - report the notebook as failed, go on with the others
                error = (error or "") + "\nrendering failed: " + traceback.format_exc(limit=3)
            figures = sorted((figures_dir / src.stem).glob("*.png"))
            results[src] = NotebookResult(src.stem, notebook_title(src), executed, html_path, seconds, error, figures)
    finally:
        if km is not None and await km.is_alive():
            await km.shutdown_kernel(now=True)


def _exporter():
    from nbconvert import HTMLExporter

    return HTMLExporter(template_name="lab")


def _write_html(exporter, nb, out: Path, title: str) -> Path:
    body, _ = exporter.from_notebook_node(nb, resources={"metadata": {"name": title}})
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(body, encoding="utf-8")
    return out


def execute_all(paths: Sequence[Path], parameters: Sequence[Mapping[str, Any]], reports_dir: Path, figures_dir: Path, jobs: int = 2, timeout: int = CELL_TIMEOUT_S) -> list[NotebookResult]:
    """Execute and render notebooks on `jobs` kernels side by side (each kernel reused for
    its share of the notebooks); results in the order of `paths`."""
    import asyncio

    async def run() -> dict:
        queue: asyncio.Queue = asyncio.Queue()
        for path, params in zip(paths, parameters):
            queue.put_nowait((Path(path).resolve(), params))
        results: dict = {}
        cwd = Path(paths[0]).resolve().parent
        await asyncio.gather(*[_lane(queue, results, reports_dir, figures_dir, cwd, timeout) for _ in range(max(1, min(jobs, len(paths))))])
        return results

    done = asyncio.run(run()) if paths else {}
    return [done[Path(p).resolve()] for p in paths]


def prime(parameters: Mapping[str, Any] | None = None, notebooks: Sequence[Path] = ()) -> dict[str, float]:
    """Compute, into the embedding cache, everything the notebooks will read: the trap run
    (00-09), the dimension sweep (10), the instruction variants (11) and the public-set run
    (12), with the same arguments the notebooks get. Returns seconds per step. Failures are
    left for the notebooks to report."""
    from embedlab.report import analysis

    p = dict(parameters or {})
    names = {n.stem[:2] for n in notebooks} if notebooks else None
    models, datasets, cache_dir = p.get("models"), p.get("datasets"), p.get("cache_dir")
    steps = {
        "trap run": (lambda: analysis.trap_report(models, datasets, cache_dir, cues=True), {f"{i:02d}" for i in range(10)}),
        "dimensions": (lambda: analysis.dimension_report(models, datasets, p.get("dims"), cache_dir), {"10"}),
        "instructions": (lambda: analysis.instruction_report(models, datasets, cache_dir), {"11"}),
        "public sets": (lambda: analysis.real_data_report(models, analysis.real_datasets(p.get("samples"), p.get("sample_seed", 0)), cache_dir), {"12"}),
    }
    seconds = {}
    for name, (step, used_by) in steps.items():
        if names is not None and not names & used_by:
            continue
        start = time.perf_counter()
        step()
        seconds[name] = time.perf_counter() - start
    return seconds


def write_index(reports_dir: str | Path, results: Sequence[NotebookResult], figures_dir: str | Path, extra: Mapping[str, Any] | None = None) -> Path:
    """`reports/index.html`: one section per notebook with its link, status, execution time
    and figure thumbnails (linked to the PNG and SVG files)."""
    from embedlab import __version__

    reports_dir = Path(reports_dir)
    parts = [
        "<!DOCTYPE html><html lang='en'><head><meta charset='utf-8'><title>embedlab reports</title>",
        "<style>body{font-family:system-ui,sans-serif;max-width:1100px;margin:2em auto;padding:0 1em;color:#222}"
        "h2{border-bottom:1px solid #ddd;padding-bottom:.2em}.fig{display:inline-block;margin:.3em;text-align:center;font-size:.8em}"
        ".fig img{max-width:240px;max-height:180px;border:1px solid #ccc;display:block}.err{color:#b00}"
        "table{border-collapse:collapse}td,th{padding:.2em .6em;border-bottom:1px solid #eee;text-align:left}</style></head><body>",
        "<h1>embedlab reports</h1>",
        f"<p>Rendered {html.escape(time.strftime('%Y-%m-%d %H:%M:%S %z'))} by embedlab {html.escape(__version__)}. "
        "Every number comes from the run that rendered it, except the article's table, which is labelled as reported.</p>",
    ]
    if extra:
        parts.append("<table>" + "".join(f"<tr><th>{html.escape(str(k))}</th><td>{html.escape(str(v))}</td></tr>" for k, v in extra.items()) + "</table>")
    parts.append("<table><tr><th>notebook</th><th>status</th><th>seconds</th></tr>")
    for r in results:
        link = f"<a href='{html.escape(r.html.name)}'>{html.escape(r.title)}</a>" if r.html else html.escape(r.title)
        status = "ok" if r.error is None else "<span class='err'>failed</span>"
        parts.append(f"<tr><td>{link}</td><td>{status}</td><td>{r.seconds:.1f}</td></tr>")
    parts.append("</table>")
    for r in results:
        parts.append(f"<h2 id='{html.escape(r.name)}'>{html.escape(r.title)}</h2>")
        if r.html:
            parts.append(f"<p><a href='{html.escape(r.html.name)}'>open the report</a></p>")
        if r.error:
            parts.append(f"<pre class='err'>{html.escape(r.error[:2000])}</pre>")
        for fig in r.figures:
            rel = Path(os.path.relpath(fig, reports_dir)).as_posix()
            svg = Path(os.path.relpath(fig.with_suffix(".svg"), reports_dir)).as_posix()
            parts.append(
                f"<div class='fig'><a href='{html.escape(rel)}'><img src='{html.escape(rel)}' alt='{html.escape(fig.stem)}'></a>"
                f"{html.escape(fig.stem)} (<a href='{html.escape(svg)}'>svg</a>)</div>"
            )
    parts.append("</body></html>")
    out = reports_dir / "index.html"
    out.write_text("\n".join(parts), encoding="utf-8")
    return out


def build(
    notebooks: Sequence[str | Path] | None = None,
    reports_dir: str | Path | None = None,
    figures_dir: str | Path | None = None,
    parameters: Mapping[str, Any] | None = None,
    jobs: int = 2,
    prime_cache: bool = True,
    timeout: int = CELL_TIMEOUT_S,
) -> list[NotebookResult]:
    """Prime the cache, execute the notebooks (`jobs` at a time) and render them, then write
    the index. `parameters` go to every notebook that declares them (models, datasets,
    cache_dir, dims, samples, ...); `figures_dir` is passed as the notebooks' figures folder."""
    paths = [Path(p) for p in notebooks] if notebooks is not None else list_notebooks()
    reports_dir = Path(reports_dir) if reports_dir else default_reports_dir()
    figures_dir = Path(figures_dir) if figures_dir else default_figures_dir()
    reports_dir.mkdir(parents=True, exist_ok=True)
    params = {k: v for k, v in dict(parameters or {}).items() if v is not None}
    params["figures_dir"] = str(figures_dir.resolve())
    if params.get("cache_dir"):
        params["cache_dir"] = str(Path(params["cache_dir"]).resolve())
    primed = prime(params, paths) if prime_cache else {}
    per_notebook = [{k: v for k, v in params.items() if k in declared_parameters(path)} for path in paths]
    results = execute_all(paths, per_notebook, reports_dir, figures_dir, jobs, timeout)
    write_index(reports_dir, results, figures_dir, {"priming (s)": ", ".join(f"{k} {v:.1f}" for k, v in primed.items()) or "skipped",
                                                   "parameters": json.dumps({k: v for k, v in params.items() if k != "figures_dir"}, ensure_ascii=False)})
    return results


# ---- command line ------------------------------------------------------------------------


def absolute_path(value: str, cwd: Path) -> str:
    """`value` as an absolute path when it names something on disk relative to `cwd` (or
    is written as a path: `./x`, `../x`, `~/x`, `/x`); else unchanged (a registered name,
    a bundled data set, a hub id such as `Qwen/Qwen3-Embedding-0.6B`)."""
    path = Path(value).expanduser()
    target = path if path.is_absolute() else cwd / path
    if target.exists() or value.startswith(("./", "../", "~")):
        return str(target.resolve())
    return value


def resolve_model_arg(value: str, cwd: Path) -> str:
    """A `-m` value with its path made absolute: a registered name stays as it is, a
    folder becomes absolute, and in `NAME=PATH` the PATH part does."""
    from embedlab.models.records import MODELS

    if value.lower() in MODELS:
        return value
    name, sep, path = value.partition("=")
    if sep and name and path:
        return f"{name}={absolute_path(path, cwd)}"
    return absolute_path(value, cwd)


def resolve_dataset_arg(value: str, cwd: Path) -> str:
    """A `-d` value with its path made absolute (an existing path wins over a bundled name,
    as in `load_dataset`). A value that is neither raises ConfigError now, not inside a
    notebook."""
    from embedlab.data.datasets import bundled_datasets
    from embedlab.errors import ConfigError

    path = Path(value).expanduser()
    target = path if path.is_absolute() else cwd / path
    if target.exists():
        return str(target.resolve())
    if value in bundled_datasets():
        return value
    raise ConfigError(f"data set {value!r}: not a bundled name ({', '.join(bundled_datasets())}) and no such path under {cwd}")


def _spec_entry(spec, cwd: Path) -> str | dict[str, Any]:
    """A config's model record as a notebook parameter: its name when it is the registered
    record unchanged, else the complete record (JSON-able) with its path made absolute."""
    from embedlab.models.records import MODELS

    if MODELS.get(spec.name) == spec:
        return spec.name
    entry = spec.to_dict()
    if entry.get("path"):
        entry["path"] = absolute_path(str(entry["path"]), cwd)
    return entry


def report_parameters(
    models: Sequence[str] | None = None,
    datasets: Sequence[str] | None = None,
    config: str | Path | None = None,
    cache_dir: str | Path | None = None,
    cwd: str | Path | None = None,
) -> dict[str, Any]:
    """The notebooks' `models`, `datasets` and `cache_dir`, with every path absolute (the
    notebooks run from notebooks/, not from where the command was typed). With `config` (a
    run config, `embedlab.run.config.load_config`), its models, data sets and cache folder are
    used unless `models` / `datasets` / `cache_dir` are given, which override them."""
    cwd = Path(cwd or Path.cwd()).resolve()
    chosen_models: list[Any] | None = [resolve_model_arg(m, cwd) for m in models] if models else None
    chosen_sets: list[str] | None = [resolve_dataset_arg(d, cwd) for d in datasets] if datasets else None
    chosen_cache = str(cache_dir) if cache_dir else None
    if config is not None:
        from embedlab.run.config import load_config

        cfg = load_config(config if Path(config).is_absolute() else cwd / config)
        if chosen_models is None:
            chosen_models = [_spec_entry(s, cwd) for s in cfg.models]
        if chosen_sets is None:
            chosen_sets = [resolve_dataset_arg(d, cwd) for d in cfg.datasets]
        if chosen_cache is None and cfg.settings.cache_dir:
            chosen_cache = cfg.settings.cache_dir
    if chosen_cache is not None:
        chosen_cache = str((cwd / Path(chosen_cache).expanduser()).resolve())
    return {"models": chosen_models, "datasets": chosen_sets, "cache_dir": chosen_cache}



def report(
    notebook: Annotated[Optional[list[str]], typer.Option("--notebook", "-n", help="Only notebooks whose name starts with this (e.g. 00, 03_idiom); repeatable.")] = None,
    model: Annotated[Optional[list[str]], typer.Option("--model", "-m", help="Model name, folder or NAME=PATH; repeatable (default: the config's, else the bundled models).")] = None,
    dataset: Annotated[Optional[list[str]], typer.Option("--dataset", "-d", help="Trap data set (name or path) for notebooks 00-11; repeatable (default: the config's, else seed, traps-zh).")] = None,
    config: Annotated[Optional[Path], typer.Option("--config", "-c", help="Run config (YAML, as for `embedlab run`): its models, data sets and cache folder; -m / -d / --cache-dir override them.")] = None,
    out: Annotated[Optional[Path], typer.Option("--out", "-o", help="Folder for the HTML reports (default: reports/).")] = None,
    figures: Annotated[Optional[Path], typer.Option("--figures", help="Folder for the PNG/SVG figures (default: figures/).")] = None,
    notebooks_dir: Annotated[Optional[Path], typer.Option("--notebooks-dir", help="Folder of the notebooks (default: notebooks/).")] = None,
    cache_dir: Annotated[Optional[Path], typer.Option("--cache-dir", help="Embedding cache (default: $EMBEDLAB_CACHE_DIR or .cache/embedlab).")] = None,
    jobs: Annotated[int, typer.Option(help="Notebooks executed at the same time.")] = 2,
) -> None:
    """Execute every notebook and render reports/*.html, figures/ and reports/index.html."""
    from embedlab.errors import EmbedlabError

    paths = list_notebooks(notebooks_dir, notebook)
    if not paths:
        typer.echo("error: no notebook matched", err=True)
        raise typer.Exit(2)
    try:
        parameters = report_parameters(model, dataset, config, cache_dir)
    except EmbedlabError as exc:
        typer.echo(f"error: {exc}", err=True)
        raise typer.Exit(2) from None
    start = time.perf_counter()
    results = build(paths, out, figures, parameters, jobs=jobs)
    for r in results:
        typer.echo(f"{'ok    ' if r.error is None else 'FAILED'} {r.seconds:6.1f}s  {r.html or r.executed}")
        if r.error:
            typer.echo(r.error.splitlines()[-1] if r.error.splitlines() else r.error, err=True)
    typer.echo(f"{len(results)} notebooks in {time.perf_counter() - start:.1f}s; index: {(Path(out) if out else default_reports_dir()) / 'index.html'}")
    if any(r.error for r in results):
        raise typer.Exit(1)


if __name__ == "__main__":
    typer.run(report)
