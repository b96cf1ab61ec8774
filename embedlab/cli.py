"""The `embedlab` command: run models on data sets, list what is available."""

from __future__ import annotations

import sys
from dataclasses import replace
from pathlib import Path
from typing import Annotated

import typer

from embedlab.errors import ConfigError, EmbedlabError
from embedlab.run.check import CHECK_QUERIES, DEFAULT_TEXTS, DEFAULT_TIMEOUT_S  # numpy only; backends load in workers

app = typer.Typer(
    add_completion=False, no_args_is_help=True, help="Choose a text-embedding model by testing it on your own data."
)


def select(cfg, models: list[str] | None, datasets: list[str] | None, backend: str | None):
    """The run config the command line asks for: the config file's (or the defaults'),
    with -m/-d replacing its models/data sets and --backend applied to every model."""
    from embedlab.data.datasets import TRAP_SETS
    from embedlab.evaluation.config import RunConfig
    from embedlab.models import DEFAULT_MODELS, get_model
    from embedlab.types import RunSettings

    if cfg is None:
        cfg = RunConfig(models=[], datasets=list(TRAP_SETS), settings=RunSettings())
        models = models or list(DEFAULT_MODELS)
    specs = list(cfg.models)
    if models:
        by_name = {s.name: s for s in cfg.models}
        specs = [by_name[m] if m in by_name else get_model(m) for m in models]
    if backend:
        specs = [s.with_options(backend=backend) for s in specs]
    names = {s.name for s in specs}
    reranks = tuple(r for r in cfg.reranks if r.first_stage in names or r.first_stage in {f.name for f in cfg.fusions})
    return replace(cfg, models=specs, datasets=list(datasets) if datasets else cfg.datasets, reranks=reranks)


def second_stages(cfg, fuse: list[str] | None, fuse_method: str, fuse_k: float, rerank: str | None, rerank_top_k: int):
    """The run config with `--fuse` fusions added and `--rerank` applied to every model
    (cue baselines aside) and fusion of the run; names checked against the run's models."""
    from embedlab.evaluation.config import Fusion, Rerank, check_stage_names, reranker_from_arg
    from embedlab.evaluation.results import CUE_BACKENDS

    fusions = (*cfg.fusions, *(Fusion.from_arg(text, fuse_method, fuse_k) for text in fuse or []))
    reranks = cfg.reranks
    if rerank:
        spec = reranker_from_arg(rerank)
        stages = [s.name for s in cfg.models if s.backend not in CUE_BACKENDS] + [f.name for f in fusions]
        reranks = (*reranks, *(Rerank(name, spec, rerank_top_k) for name in stages))
    check_stage_names(cfg.models, fusions, reranks, "--fuse/--rerank")
    return replace(cfg, fusions=fusions, reranks=reranks)


@app.command()
def run(
    model: Annotated[
        list[str] | None,
        typer.Option("--model", "-m", help="Model name (see `embedlab models`) or model folder; repeatable."),
    ] = None,
    dataset: Annotated[
        list[str] | None,
        typer.Option(
            "--dataset", "-d", help="Bundled data set name or a BEIR folder / trap file / pairs CSV; repeatable."
        ),
    ] = None,
    out: Annotated[Path | None, typer.Option("--out", "-o", help="Results folder.")] = None,
    config: Annotated[Path | None, typer.Option("--config", "-c", help="YAML run config.")] = None,
    backend: Annotated[
        str | None, typer.Option(help="Backend for every --model (vllm, st, transformers, ...).")
    ] = None,
    repeats: Annotated[int | None, typer.Option(help="Timed encodes per data set (>= 5 recommended).")] = None,
    throughput_texts: Annotated[
        int | None, typer.Option(help="Texts in the separate throughput run (0 = none).")
    ] = None,
    dimensions: Annotated[int | None, typer.Option(help="MRL: truncate embeddings to this size.")] = None,
    sample: Annotated[
        int | None, typer.Option(help="Evaluate a seeded sample of this many queries per data set.")
    ] = None,
    cache_dir: Annotated[Path | None, typer.Option(help="Embedding cache folder.")] = None,
    isolate: Annotated[bool, typer.Option(help="Run each model in its own worker process.")] = True,
    timeout: Annotated[
        float | None, typer.Option(help="Seconds a model's worker may take before it is killed and reported failed.")
    ] = None,
    fuse: Annotated[
        list[str] | None,
        typer.Option("--fuse", help="Fuse models of the run into a row of its own: [NAME=]A+B[+C]; repeatable."),
    ] = None,
    fuse_method: Annotated[
        str, typer.Option(help="Fusion method of --fuse: rrf (reciprocal rank) or wsum (min-max, equal weights).")
    ] = "rrf",
    fuse_k: Annotated[float, typer.Option(help="k of reciprocal rank fusion.")] = 60.0,
    rerank: Annotated[
        str | None,
        typer.Option(
            help="Rerank every model and fusion with this reranker (NAME or NAME=PATH): rows '<model>+<reranker>'."
        ),
    ] = None,
    rerank_top_k: Annotated[int, typer.Option(help="Documents per query the reranker re-scores.", min=1)] = 20,
    metric: Annotated[
        list[str] | None,
        typer.Option(
            "--metric",
            help=(
                "A metric beside the defaults (top1, top3, top5, mrr, ndcg@10): top<k>, mrr, ndcg@<k>, recall@<k>; "
                "repeatable."
            ),
        ),
    ] = None,
) -> None:
    """Evaluate models on data sets; write summary.csv, per_query.csv, by_category.csv and run.json.

    With --config, -m/-d replace the config's models/data sets (a -m naming one of the
    config's models keeps that entry's settings) and --backend applies to every model."""
    from embedlab.data.datasets import load_dataset
    from embedlab.evaluation import evaluate
    from embedlab.evaluation.config import load_config
    from embedlab.evaluation.pipeline import run_metrics
    from embedlab.evaluation.results import metric_columns

    try:
        cfg = select(load_config(config) if config is not None else None, model, dataset, backend)
        cfg = second_stages(cfg, fuse, fuse_method, fuse_k, rerank, rerank_top_k)
        changes = {
            k: v
            for k, v in {
                "repeats": repeats,
                "throughput_texts": throughput_texts,
                "dimensions": dimensions,
                "cache_dir": str(cache_dir) if cache_dir else None,
                "timeout_s": timeout,
            }.items()
            if v is not None
        }
        settings = replace(
            cfg.settings,
            isolate=isolate,
            metrics=tuple(dict.fromkeys([*cfg.settings.metrics, *(metric or [])])),
            **changes,
        )
        try:
            run_metrics(settings)
        except ConfigError as exc:
            raise ConfigError(f"{config or '--metric'}: {exc}") from None
        out_dir = out or (Path(cfg.out) if cfg.out else None)
        if out_dir is None:
            raise typer.BadParameter("give --out DIR (or `out:` in the config)")
        n = sample if sample is not None else cfg.sample
        sets = [load_dataset(d) for d in cfg.datasets]
        if n:
            sets = [d.sample(n, seed=settings.seed) for d in sets]
        report = evaluate(
            cfg.models,
            sets,
            settings,
            config={"config_file": str(config) if config else None, "argv": sys.argv[1:]},
            fusions=cfg.fusions,
            reranks=cfg.reranks,
        )
        report.to_dir(out_dir)
    except EmbedlabError as exc:
        typer.echo(f"error: {exc}", err=True)
        raise typer.Exit(2) from None
    summary = report.summary()
    first, *rest = report.metrics
    cols = [
        "model",
        "dataset",
        "status",
        "n_queries",
        *metric_columns((first,)),
        *(m.column for m in rest if m.kind != "hit"),
        "texts_per_s",
        *report.memory_columns()[:2],
    ]
    typer.echo(summary[cols].to_string(index=False, float_format=lambda x: f"{x:.3f}", na_rep="-"))
    typer.echo(f"results written to {out_dir}")
    if (summary["status"] != "ok").any():
        failed = summary.loc[summary["status"] != "ok", ["model", "error"]].drop_duplicates()
        for _, row in failed.iterrows():
            typer.echo(f"FAILED {row['model']}: {row['error']}", err=True)
        raise typer.Exit(1)


@app.command()
def encode(
    model: Annotated[
        list[str], typer.Option("--model", "-m", help="Model name or NAME=PATH (as in `run`); repeatable.")
    ],
    dataset: Annotated[
        list[str] | None,
        typer.Option("--dataset", "-d", help="Bundled data set or BEIR folder whose corpus to encode; repeatable."),
    ] = None,
    corpus: Annotated[Path | None, typer.Option(help="A BEIR corpus.jsonl to encode instead of a data set.")] = None,
    config: Annotated[
        Path | None, typer.Option("--config", "-c", help="YAML run config (its models, data sets and settings).")
    ] = None,
    cache_dir: Annotated[Path | None, typer.Option(help="Embedding cache folder (default: the run's).")] = None,
    ray_address: Annotated[
        str | None,
        typer.Option(
            help="Ray cluster: host:port, ray://host:port or auto (default: the config's, else a local cluster)."
        ),
    ] = None,
    shard_texts: Annotated[
        int | None, typer.Option(help="Texts per shard, a multiple of the batch size (default 16 batches).")
    ] = None,
    actors: Annotated[
        int | None, typer.Option(help="Model replicas (default: one per GPU, else as many as the CPUs hold).", min=1)
    ] = None,
) -> None:
    """Encode a corpus alone on a Ray cluster into the embedding cache's shards; a later
    `embedlab run` with `engine: ray` and the same cache reads them instead of encoding."""
    from embedlab.data.datasets import corpus_texts, load_dataset
    from embedlab.evaluation.config import load_config
    from embedlab.run.distributed import encode_corpus

    try:
        cfg = select(load_config(config) if config is not None else None, model, dataset, None)
        settings = replace(
            cfg.settings,
            engine="ray",
            ray_address=ray_address or cfg.settings.ray_address,
            cache_dir=str(cache_dir) if cache_dir else cfg.settings.cache_dir,
        )
        if corpus is not None and dataset:
            raise typer.BadParameter("give --corpus or -d, not both")
        sources = (
            [(str(corpus), corpus_texts(corpus), "")]
            if corpus is not None
            else [(d.name, d.document_texts(), d.instruction) for d in map(load_dataset, cfg.datasets)]
        )
        for spec in cfg.models:
            for name, texts, instruction in sources:
                summary = encode_corpus(spec, texts, settings, instruction, shard_texts, actors)
                typer.echo(
                    f"{spec.name} {name}: {len(texts)} texts, {summary.shards_total} shards "
                    f"({summary.shards_cached} already cached, {summary.shards_encoded} encoded on "
                    f"{summary.actors} actor(s), {summary.replicas or '-'}; {summary.wall_s:.1f} s)"
                )
    except EmbedlabError as exc:
        typer.echo(f"error: {exc}", err=True)
        raise typer.Exit(2) from None
    except (ValueError, RuntimeError) as exc:  # a bad --shard-texts, a replica that failed on Ray
        typer.echo(f"error: {exc}", err=True)
        raise typer.Exit(1) from None


@app.command()
def models() -> None:
    """List the registered models."""
    from embedlab.models import MODELS

    for spec in MODELS.values():
        dim = spec.dim or "-"
        typer.echo(
            f"{spec.name:28s} backend={spec.backend:6s} dim={dim!s:5s} pooling={spec.pooling or '-':5s} "
            f"{spec.description}"
        )


@app.command()
def datasets() -> None:
    """List the bundled data sets."""
    from embedlab.data.datasets import bundled_datasets, load_dataset

    for name in bundled_datasets():
        ds = load_dataset(name)
        typer.echo(f"{name:12s} {len(ds.query_ids):5d} queries {len(ds.corpus):6d} docs  {ds.meta.description}")


@app.command("report")
def report_command(
    notebook: Annotated[
        list[str] | None,
        typer.Option(
            "--notebook", "-n", help="Only notebooks whose name starts with this (e.g. 00, 03_idiom); repeatable."
        ),
    ] = None,
    model: Annotated[
        list[str] | None,
        typer.Option(
            "--model",
            "-m",
            help="Model name, folder or NAME=PATH; repeatable (default: the config's, else the bundled models).",
        ),
    ] = None,
    dataset: Annotated[
        list[str] | None,
        typer.Option(
            "--dataset",
            "-d",
            help=(
                "Trap data set (name or path) for notebooks 00-11; repeatable "
                "(default: the config's, else seed, traps-zh)."
            ),
        ),
    ] = None,
    config: Annotated[
        Path | None,
        typer.Option(
            "--config",
            "-c",
            help=(
                "Run config (YAML, as for `embedlab run`): its models, data sets and cache folder; "
                "-m / -d / --cache-dir override them."
            ),
        ),
    ] = None,
    out: Annotated[
        Path | None, typer.Option("--out", "-o", help="Folder for the HTML reports (default: reports/).")
    ] = None,
    figures: Annotated[
        Path | None, typer.Option("--figures", help="Folder for the PNG/SVG figures (default: figures/).")
    ] = None,
    notebooks_dir: Annotated[
        Path | None, typer.Option("--notebooks-dir", help="Folder of the notebooks (default: notebooks/).")
    ] = None,
    cache_dir: Annotated[
        Path | None,
        typer.Option("--cache-dir", help="Embedding cache (default: $EMBEDLAB_CACHE_DIR or .cache/embedlab)."),
    ] = None,
    jobs: Annotated[int, typer.Option(help="Notebooks executed at the same time.")] = 2,
    show_code: Annotated[
        bool,
        typer.Option(
            "--show-code",
            help="Show the notebooks' code in the HTML pages (hidden by default; the .ipynb always keep it).",
        ),
    ] = False,
) -> None:
    """Execute the notebooks and render reports/*.html, figures/ and an index page."""
    import time

    from embedlab.report.command import report_parameters
    from embedlab.report.lanes import build  # notebooks load lazily
    from embedlab.report.notebook_files import list_notebooks
    from embedlab.report.paths import default_reports_dir

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
    typer.echo(
        f"{len(results)} notebooks in {time.perf_counter() - start:.1f}s; index: "
        f"{(Path(out) if out else default_reports_dir()) / 'index.html'}"
    )
    if any(r.error for r in results):
        raise typer.Exit(1)


@app.command("check")
def check(
    config: Annotated[Path | None, typer.Option("--config", "-c", help="Run config (YAML): check its models.")] = None,
    model: Annotated[
        list[str] | None, typer.Option("--model", "-m", help="Model name, folder or NAME=PATH; repeatable.")
    ] = None,
    backend: Annotated[str | None, typer.Option(help="Backend for every model (vllm, st, transformers, ...).")] = None,
    reference: Annotated[
        str, typer.Option(help="Backend the configured one is compared with ('none': no comparison).")
    ] = "transformers",
    texts: Annotated[
        int, typer.Option(help=f"Built-in Chinese queries and documents to encode, each (1-{len(CHECK_QUERIES)}).")
    ] = DEFAULT_TEXTS,
    out: Annotated[Path | None, typer.Option("--out", "-o", help="Also write check.csv and check.json here.")] = None,
    timeout: Annotated[
        float, typer.Option(help="Seconds each backend worker may take (load and encode).")
    ] = DEFAULT_TIMEOUT_S,
) -> None:
    """Check models on this machine first: versions, device, weights, inputs sent, agreement with transformers.

    Exit 0 when every check passed, 1 when one failed, 2 on a usage or config error."""
    from embedlab.evaluation.config import load_config
    from embedlab.run.check import CheckTexts, check_meta, format_table, load_targets, run_checks, write_outputs

    try:
        text_set = CheckTexts.builtin(texts)
        config_models = load_config(config).models if config is not None else []
        specs, origins = load_targets(config, config_models, model or [], backend)
    except (EmbedlabError, KeyError) as exc:
        typer.echo(f"error: {exc}", err=True)
        raise typer.Exit(2) from None
    ref = None if reference.lower() == "none" else reference
    table = run_checks(specs, texts=text_set, reference=ref, timeout_s=timeout, origins=origins)
    typer.echo(format_table(table))
    failed = table[table["status"] == "fail"]
    for _, row in failed.iterrows():
        typer.echo(f"FAIL {row['model']} {row['check']} ({row['backend']}): {row['detail']}", err=True)
    if out is not None:
        meta = check_meta(sys.argv[1:], config, ref, text_set, table)
        write_outputs(table, out, meta)
        typer.echo(f"written to {out / 'check.csv'} and {out / 'check.json'}")
    n_models = table["model"].nunique()
    typer.echo(
        f"{n_models} model(s): {len(failed)} check(s) failed"
        if len(failed)
        else f"{n_models} model(s): all checks passed"
    )
    raise typer.Exit(1 if len(failed) else 0)


@app.command("lint")
def lint(
    dataset: Annotated[
        str, typer.Argument(help="Bundled data set name, BEIR folder, trap file (.yaml/.jsonl) or pairs CSV.")
    ],
    output_format: Annotated[str, typer.Option("--format", "-f", help="table (readable) or json.")] = "table",
    threshold: Annotated[
        list[str] | None,
        typer.Option(
            "--threshold", "-t", help="NAME=VALUE, e.g. auc_high=0.65; repeatable (see docs/writing-traps.md)."
        ),
    ] = None,
    model: Annotated[
        bool,
        typer.Option(
            "--model/--no-model", help="Check with multilingual-e5-small which answers also fit another query."
        ),
    ] = True,
) -> None:
    """Find shortcut cues (length, word overlap, query-blind genre, style) in a data set; exit 1 if any is flagged."""
    import json

    from embedlab.data.datasets import load_dataset
    from embedlab.report.lint import Thresholds
    from embedlab.report.lint import lint as lint_dataset

    if output_format not in ("table", "json"):
        typer.echo(f"error: --format: expected 'table' or 'json', got {output_format!r}", err=True)
        raise typer.Exit(2)
    try:
        thresholds = Thresholds().with_overrides(threshold or [])
        report = lint_dataset(load_dataset(dataset), thresholds, model=model)
    except EmbedlabError as exc:
        typer.echo(f"error: {exc}", err=True)
        raise typer.Exit(2) from None
    if output_format == "json":
        typer.echo(json.dumps(report.to_dict(), ensure_ascii=False, indent=2))
    else:
        typer.echo(report.to_text())
    raise typer.Exit(1 if report.flagged else 0)


@app.command("handout")
def handout(
    category: Annotated[
        list[str] | None, typer.Option("--category", help="Trap category (e.g. idiom); repeatable.")
    ] = None,
    all_categories: Annotated[bool, typer.Option("--all", help="Every category, plus an index page.")] = False,
    lang: Annotated[str, typer.Option(help="zh, en or both.")] = "zh",
    out: Annotated[Path, typer.Option("--out", "-o", help="Folder for the pages.")] = Path("handouts"),
    model: Annotated[
        list[str] | None,
        typer.Option(
            "--model", "--models", "-m", help="Model name or NAME=PATH; repeatable (added to the bundled ones)."
        ),
    ] = None,
    dataset: Annotated[
        list[str] | None,
        typer.Option("--dataset", "--datasets", "-d", help="Trap data set; repeatable (default: seed, traps-zh)."),
    ] = None,
    cache_dir: Annotated[
        Path | None,
        typer.Option("--cache-dir", help="Embedding cache (default: $EMBEDLAB_CACHE_DIR or .cache/embedlab)."),
    ] = None,
    cases: Annotated[
        int | None, typer.Option(help="Cases per page (default: 4 in zh or en, 3 in both).", min=1, max=6)
    ] = None,
    pdf: Annotated[bool, typer.Option("--pdf/--no-pdf", help="Also print each page to PDF (Chromium).")] = True,
) -> None:
    """Write a printable handout (HTML, and PDF where Chromium is installed) per trap category."""
    from embedlab.data.categories import CATEGORY_IDS
    from embedlab.teach.handout import make_handouts

    if bool(category) == all_categories:
        typer.echo("error: give --category NAME (repeatable) or --all", err=True)
        raise typer.Exit(2)
    try:
        written, note = make_handouts(
            list(CATEGORY_IDS) if all_categories else category,
            lang,
            out,
            model,
            dataset,
            cache_dir,
            cases,
            pdf,
            index=all_categories,
        )
    except (EmbedlabError, KeyError, ValueError) as exc:
        typer.echo(f"error: {exc.args[0] if isinstance(exc, KeyError) else exc}", err=True)
        raise typer.Exit(2) from None
    for path in written:
        typer.echo(str(path))
    if note:
        typer.echo(note, err=True)


@app.command()
def teach(
    model: Annotated[
        list[str] | None,
        typer.Option(
            "--model", "--models", "-m", help="Model name or NAME=PATH; repeatable (default: bm25, USE, e5-small)."
        ),
    ] = None,
    dataset: Annotated[
        list[str] | None,
        typer.Option(
            "--dataset", "--datasets", "-d", help="Trap data set (name or path); repeatable (default: seed, traps-zh)."
        ),
    ] = None,
    lang: Annotated[str, typer.Option(help="Language of the pages: zh, en or both.")] = "both",
    host: Annotated[
        str, typer.Option(help="Address to listen on; 0.0.0.0 opens it to the room (default: this machine only).")
    ] = "127.0.0.1",
    port: Annotated[int, typer.Option(help="Port to listen on.")] = 8866,
    token: Annotated[
        str | None, typer.Option(help="Token a student needs (in the URL); default: a new random one, printed.")
    ] = None,
    cache_dir: Annotated[
        Path | None,
        typer.Option("--cache-dir", help="Embedding cache (default: $EMBEDLAB_CACHE_DIR or .cache/embedlab)."),
    ] = None,
    work_dir: Annotated[
        Path | None, typer.Option("--work-dir", help="Folder for the served notebooks (default: a temporary one).")
    ] = None,
) -> None:
    """Serve the trap explorer and the results explorer to a class (Voila: no code shown, one kernel per student)."""
    from embedlab.report.lang import LANGS
    from embedlab.teach.server import teach as serve

    if lang not in LANGS:
        typer.echo(f"error: --lang: expected one of {', '.join(LANGS)}, got {lang!r}", err=True)
        raise typer.Exit(2)
    try:
        serve(model, dataset, lang, cache_dir, host, port, token, work_dir, echo=typer.echo)
    except (ImportError, OSError, EmbedlabError) as exc:
        typer.echo(f"error: {exc}", err=True)
        raise typer.Exit(2) from None


def exit_on_sigterm() -> None:
    """Let SIGTERM (`kill`, `timeout`, a job scheduler) end the command as Ctrl+C does: as an
    exception, so the workers it started are stopped (`run.worker.run_in_worker`) and
    nothing is left half-written, instead of the interpreter dying with its workers orphaned.
    A server the command starts (Voilà) installs its own handler while it serves."""
    import signal

    def stop(signum: int, frame: object) -> None:
        raise SystemExit(128 + signum)

    signal.signal(signal.SIGTERM, stop)


def main() -> None:
    exit_on_sigterm()
    app()


if __name__ == "__main__":
    main()
