"""The `embedlab report` command: its options, and the notebooks' parameters made from them
(every path absolute, a run config's models, data sets and cache folder)."""

from __future__ import annotations

import time
from collections.abc import Sequence
from pathlib import Path
from typing import Annotated, Any, Optional

import typer

from embedlab.report.lanes import build
from embedlab.report.notebook_files import list_notebooks
from embedlab.report.paths import default_reports_dir


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
    show_code: Annotated[bool, typer.Option("--show-code", help="Show the notebooks' code in the HTML pages (hidden by default; the .ipynb always keep it).")] = False,
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
    results = build(paths, out, figures, parameters, jobs=jobs, show_code=show_code)
    for r in results:
        typer.echo(f"{'ok    ' if r.error is None else 'FAILED'} {r.seconds:6.1f}s  {r.html or r.executed}")
        if r.error:
            typer.echo(r.error.splitlines()[-1] if r.error.splitlines() else r.error, err=True)
    typer.echo(f"{len(results)} notebooks in {time.perf_counter() - start:.1f}s; index: {(Path(out) if out else default_reports_dir()) / 'index.html'}")
    if any(r.error for r in results):
        raise typer.Exit(1)


if __name__ == "__main__":
    typer.run(report)
