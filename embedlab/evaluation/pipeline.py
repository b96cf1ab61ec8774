"""The whole evaluation of a run: every model on every data set (run stage), then scores,
per-query metrics and the Report (this stage)."""

from __future__ import annotations

import json
import sys
import time
from collections.abc import Sequence
from typing import Any

import pandas as pd
from tqdm.auto import tqdm

from embedlab.data.datasets import Dataset, load_dataset
from embedlab.errors import ConfigError
from embedlab.evaluation.config import Fusion, Rerank
from embedlab.evaluation.fusion import check_second_stages, fused_rows
from embedlab.evaluation.metrics import MetricSpec, metric_set, ranking_depth
from embedlab.evaluation.ranking import rank_block
from embedlab.evaluation.rerank import reranked_rows
from embedlab.evaluation.results import RUN_COLUMNS, Report
from embedlab.evaluation.scoring import cosine_scores, per_query_table, rank_embeddings, rank_scores
from embedlab.evaluation.search import SearchSettings, require_faiss, search_columns
from embedlab.models import ModelSpec, get_model, prompt_warnings
from embedlab.run import probe
from embedlab.run.runner import model_runner
from embedlab.types import MEASUREMENTS, DatasetOutcome, EncodeTask, ModelOutcome, RankSummary, Relevance, RunSettings


def evaluate(
    models: Sequence[ModelSpec | str],
    datasets: Sequence[Dataset | str],
    settings: RunSettings | None = None,
    config: dict[str, Any] | None = None,
    keep_scores: int = 2_000_000,
    fusions: Sequence[Fusion] = (),
    reranks: Sequence[Rerank] = (),
):
    """Run every model on every data set and return a Report.

    `keep_scores`: score matrices up to this many cells are kept on the Report (for
    heatmaps); every model is evaluated streamed, `settings.query_block` queries at a time
    (docs/scale.md), and `settings.search` adds a FAISS index's recall against the exact
    top k. `fusions` and `reranks` add rows computed from the kept matrices after every
    model ran (second stages: embedlab.evaluation.fusion, embedlab.evaluation.rerank)."""
    settings = settings or RunSettings()
    metrics = run_metrics(settings)  # a bad metric name fails before any model runs
    specs = [get_model(m) if isinstance(m, str) else m for m in models]
    sets = [load_dataset(d) if isinstance(d, str) else d for d in datasets]
    names = [d.name for d in sets]
    if len(set(names)) != len(names):
        raise ValueError(f"data set names must be unique, got {names}")
    if len({s.name for s in specs}) != len(specs):
        raise ValueError(f"model names must be unique, got {[s.name for s in specs]}")
    check_second_stages(specs, sets, fusions, reranks, keep_scores)  # before any model runs
    if settings.search:
        SearchSettings.from_dict(settings.search)  # a bad search setting or no faiss fails before any model runs
        require_faiss()
    depth = max(ranking_depth(metrics), SearchSettings.from_dict(settings.search).k if settings.search else 0)
    tasks = [EncodeTask.from_dataset(d, keep_scores, depth, rank_block) for d in sets]
    runner = model_runner(settings)

    frames, run_rows, scores_kept = [], [], {}
    for spec in tqdm(specs, desc="models", disable=not settings.progress):
        for warning in prompt_warnings(spec):
            print(f"embedlab: warning: {warning}", file=sys.stderr)
        outcome = runner(spec, tasks, settings)
        effective = outcome.extra.get("effective") or {}
        for dataset in sets:
            result = outcome.datasets.get(dataset.name)
            row = outcome_row(spec, dataset.name, outcome, effective)
            table = scores = None
            if result is not None:
                try:
                    ranks, scores = _rank(dataset, spec, result, settings, keep_scores, depth)
                    table = per_query_table(dataset, spec.name, ranks=ranks, metrics=metrics)
                    if settings.search and result.doc_embeddings is not None:
                        judged = (
                            spec.options.get("candidates") or dataset.meta.candidates
                        ) == "judged"  # an index searches every document
                        row.update(
                            search_columns(
                                result.query_embeddings,
                                result.doc_embeddings,
                                None if judged else ranks.top_ids,
                                settings.search,
                            )
                        )
                except ValueError as exc:  # non-finite scores: never ranked, the row fails
                    row.update(status="failed", error=" ".join(f"{type(exc).__name__}: {exc}".split()))
                    table = None
                if table is not None and result.latency is not None:
                    row.update(
                        latency_median_s=result.latency.median,
                        latency_iqr_s=result.latency.iqr,
                        latency_times_s=json.dumps([round(t, 6) for t in result.latency.times]),
                        n_timed=result.n_timed,
                        texts_per_s=result.n_timed / result.latency.median,
                        encode_s=result.encode_s,
                    )
            run_rows.append(row)
            if table is None:
                continue
            if scores is not None:
                scores_kept[(spec.name, dataset.name)] = scores
            frames.append(table)
            if row["status"] != "ok":
                print(f"embedlab: model {spec.name!r} failed on {dataset.name!r}: {row['error']}", file=sys.stderr)
        if outcome.status != "ok":
            print(f"embedlab: model {spec.name!r} failed: {outcome.error}", file=sys.stderr)

    # ---- second stages: fusions, then rerankers, over the score matrices kept above (no encoding) ----
    fused = fused_rows(fusions, sets, run_rows, scores_kept, metrics)
    reranked = reranked_rows(reranks, sets, [*run_rows, *fused.runs], {**scores_kept, **fused.scores}, settings)
    for stage in (fused, reranked):
        frames += stage.frames
        run_rows += stage.runs
        scores_kept.update(stage.scores)
    effective_by_model = {
        row["model"]: {
            **{k: row.get(k) for k in ("max_length", "dtype", "pooling", "normalize", "device")},
            **({"prefix_caching": row["prefix_caching"]} if "prefix_caching" in row else {}),  # every vLLM engine's
        }
        for row in run_rows
    }
    per_query = (
        pd.concat(frames, ignore_index=True)
        if frames
        else pd.DataFrame(columns=["model", "dataset", "query_id", "category"])
    )
    return Report(
        per_query=per_query,
        runs=pd.DataFrame(run_rows),
        config={
            "models": [s.to_dict() for s in specs],
            "datasets": names,
            "settings": settings.to_dict(),
            "effective": effective_by_model,
            "dataset_meta": {d.name: d.meta.to_dict() for d in sets},
            **(config or {}),
        },
        environment={
            "packages": probe.package_versions(),
            "hardware": probe.hardware(),
            "finished": time.strftime("%Y-%m-%dT%H:%M:%S%z"),
        },
        datasets={d.name: d.fingerprint() for d in sets},
        scores=scores_kept,
        seed=settings.seed,
    )


def run_metrics(settings: RunSettings) -> tuple[MetricSpec, ...]:
    """The metrics a run reports: the defaults and `settings.metrics`. Raises ConfigError
    on a name that is no metric."""
    try:
        return metric_set(settings.metrics)
    except ValueError as exc:
        raise ConfigError(f"metrics: {exc}") from None


def _rank(
    dataset: Dataset, spec: ModelSpec, result: DatasetOutcome, settings: RunSettings, keep_scores: int, depth: int
) -> tuple[RankSummary, Any]:
    """One model's streamed ranking of one data set, `depth` documents deep, and, when it
    has at most `keep_scores` cells, its full score matrix for heatmaps (else None). A
    scorer's worker ranks a big corpus itself (`result.ranks`); embeddings are ranked here
    block by block."""
    candidates = spec.options.get("candidates")
    if result.ranks is not None:
        return result.ranks, None
    relevance = Relevance.from_dataset(dataset)
    if result.scores is not None:
        scores = result.scores
    else:
        cells = len(result.query_embeddings) * len(result.doc_embeddings)
        scores = cosine_scores(result.query_embeddings, result.doc_embeddings) if cells <= keep_scores else None
    if scores is not None:
        ranks = rank_scores(scores, relevance, candidates, settings.query_block, depth)
        return ranks, scores if scores.size <= keep_scores else None
    ranks = rank_embeddings(
        result.query_embeddings, result.doc_embeddings, relevance, candidates, settings.query_block, depth
    )
    return ranks, None


def outcome_row(spec: ModelSpec, dataset: str, outcome: ModelOutcome, effective: dict[str, Any]) -> dict[str, Any]:
    """One runs.csv row: the model's measurements (named after what they measure) and the
    engine settings it actually ran with."""
    row: dict[str, Any] = {k: "" for k in RUN_COLUMNS}
    row.update({k: getattr(outcome, k) for k in MEASUREMENTS})
    row.update(
        model=spec.name,
        dataset=dataset,
        status=outcome.status,
        error=outcome.error,
        backend=spec.backend,
        gpu_mem_load_gib=outcome.gpu_mem_after_load_gib - outcome.gpu_mem_before_gib,
    )
    row.update({k: v for k, v in outcome.extra.items() if k not in ("traceback", "effective")})
    row.update({k: effective[k] for k in ("max_length", "dtype", "pooling", "normalize", "device") if k in effective})
    return row
