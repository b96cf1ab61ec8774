"""The `embedlab` command: run models on data sets, list what is available."""

from __future__ import annotations

import sys
from dataclasses import replace
from pathlib import Path
from typing import Annotated, Optional

import typer

from embedlab.errors import EmbedlabError

app = typer.Typer(add_completion=False, no_args_is_help=True, help="Choose a text-embedding model by testing it on your own data.")


@app.command()
def run(
    model: Annotated[Optional[list[str]], typer.Option("--model", "-m", help="Model name (see `embedlab models`) or model folder; repeatable.")] = None,
    dataset: Annotated[Optional[list[str]], typer.Option("--dataset", "-d", help="Bundled data set name or a BEIR folder / trap file / pairs CSV; repeatable.")] = None,
    out: Annotated[Optional[Path], typer.Option("--out", "-o", help="Results folder.")] = None,
    config: Annotated[Optional[Path], typer.Option("--config", "-c", help="YAML run config.")] = None,
    backend: Annotated[Optional[str], typer.Option(help="Backend for every --model (vllm, st, transformers, ...).")] = None,
    repeats: Annotated[Optional[int], typer.Option(help="Timed encodes per data set (>= 5 recommended).")] = None,
    throughput_texts: Annotated[Optional[int], typer.Option(help="Texts in the separate throughput run (0 = none).")] = None,
    dimensions: Annotated[Optional[int], typer.Option(help="MRL: truncate embeddings to this size.")] = None,
    sample: Annotated[Optional[int], typer.Option(help="Evaluate a seeded sample of this many queries per data set.")] = None,
    cache_dir: Annotated[Optional[Path], typer.Option(help="Embedding cache folder.")] = None,
    isolate: Annotated[bool, typer.Option(help="Run each model in its own worker process.")] = True,
) -> None:
    """Evaluate models on data sets; write summary.csv, per_query.csv, by_category.csv and run.json."""
    from embedlab.config import RunConfig, load_config
    from embedlab.datasets import load_dataset
    from embedlab.models import DEFAULT_MODELS, get_model
    from embedlab.runner import RunSettings, evaluate

    try:
        if config is not None:
            cfg = load_config(config)
        else:
            names = model or list(DEFAULT_MODELS)
            specs = [get_model(m, **({"backend": backend} if backend else {})) for m in names]
            cfg = RunConfig(models=specs, datasets=dataset or ["seed", "traps-zh"], settings=RunSettings())
        changes = {k: v for k, v in {"repeats": repeats, "throughput_texts": throughput_texts, "dimensions": dimensions, "cache_dir": str(cache_dir) if cache_dir else None}.items() if v is not None}
        settings = replace(cfg.settings, isolate=isolate, **changes)
        out_dir = out or (Path(cfg.out) if cfg.out else None)
        if out_dir is None:
            raise typer.BadParameter("give --out DIR (or `out:` in the config)")
        n = sample if sample is not None else cfg.sample
        sets = [load_dataset(d) for d in cfg.datasets]
        if n:
            sets = [d.sample(n, seed=settings.seed) for d in sets]
        report = evaluate(cfg.models, sets, settings, config={"config_file": str(config) if config else None, "argv": sys.argv[1:]})
        report.to_dir(out_dir)
    except EmbedlabError as exc:
        typer.echo(f"error: {exc}", err=True)
        raise typer.Exit(2) from None
    summary = report.summary()
    cols = ["model", "dataset", "status", "n_queries", "top1", "top1_low", "top1_high", "mrr", "ndcg_at_10", "texts_per_s", "peak_mem_gib"]
    typer.echo(summary[[c for c in cols if c in summary.columns]].to_string(index=False, float_format=lambda x: f"{x:.3f}"))
    typer.echo(f"results written to {out_dir}")
    if (summary["status"] != "ok").any():
        failed = summary.loc[summary["status"] != "ok", ["model", "error"]].drop_duplicates()
        for _, row in failed.iterrows():
            typer.echo(f"FAILED {row['model']}: {row['error']}", err=True)
        raise typer.Exit(1)


@app.command()
def models() -> None:
    """List the registered models."""
    from embedlab.models import MODELS

    for spec in MODELS.values():
        dim = spec.dim or "-"
        typer.echo(f"{spec.name:28s} backend={spec.backend:6s} dim={dim!s:5s} pooling={spec.pooling or '-':5s} {spec.description}")


@app.command()
def datasets() -> None:
    """List the bundled data sets."""
    from embedlab.datasets import bundled_datasets, load_dataset

    for name in bundled_datasets():
        ds = load_dataset(name)
        typer.echo(f"{name:12s} {len(ds.query_ids):5d} queries {len(ds.corpus):6d} docs  {ds.meta.description}")


def _register_report() -> None:
    from embedlab.report import report as render_report  # typer only; notebooks load lazily

    app.command("report", help="Execute the notebooks and render reports/*.html, figures/ and an index page.")(render_report)


_register_report()


def _register_check() -> None:
    from embedlab.check import check  # numpy and typer only; backends load in worker processes

    app.command("check", help="Check models on this machine first: versions, device, weights, inputs sent, agreement with transformers.")(check)


_register_check()


def main() -> None:
    app()


if __name__ == "__main__":
    main()
