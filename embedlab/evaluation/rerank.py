"""The reranker stage of a run: a first stage's top-k re-scored by a reranker
(`embedlab.models.rerankers`), the other documents kept below them in first-stage order."""

from __future__ import annotations

import json
import time
from collections.abc import Mapping, Sequence
from functools import partial
from typing import Any

import numpy as np
import pandas as pd

from embedlab.data.datasets import Dataset
from embedlab.evaluation.config import Rerank
from embedlab.evaluation.metrics import metric_set, pessimistic_order
from embedlab.evaluation.results import RUN_COLUMNS, StageRows
from embedlab.evaluation.scoring import judged_candidates, per_query_table
from embedlab.models.rerankers import Reranker
from embedlab.run import probe
from embedlab.types import RunSettings


def _rerank(
    dataset: Dataset, scores: np.ndarray, reranker: Reranker, top_k: int, instruction: str | None
) -> tuple[np.ndarray, int]:
    """`rerank_scores` and the number of pairs the reranker scored."""
    scores = np.asarray(scores, dtype=np.float64)
    n_queries, n_docs = len(dataset.query_ids), len(dataset.doc_ids)
    if scores.shape != (n_queries, n_docs):
        raise ValueError(
            f"scores must have shape {(n_queries, n_docs)} (queries x corpus of {dataset.name!r}), got {scores.shape}"
        )
    eligible = judged_candidates(dataset) if dataset.meta.candidates == "judged" else np.ones_like(scores, dtype=bool)
    first = np.where(eligible, scores, -np.inf)
    k = min(top_k, n_docs)
    top = pessimistic_order(first, dataset.gains(), eligible)[:, :k]  # a tie at the cut never lets an answer in first
    queries, docs = dataset.query_texts(), dataset.document_texts()
    pairs, cells = [], []
    for row in range(n_queries):
        for col in top[row]:
            if eligible[row, col]:
                pairs.append((queries[row], docs[col]))
                cells.append((row, col))
    rescored = (
        np.asarray(reranker.score(pairs, instruction or dataset.instruction or None), dtype=np.float64)
        if pairs
        else np.zeros(0)
    )
    if rescored.shape != (len(pairs),):
        raise ValueError(f"reranker {reranker.spec.name!r} returned shape {rescored.shape} for {len(pairs)} pairs")
    if not np.isfinite(rescored).all():
        bad = int((~np.isfinite(rescored)).sum())
        raise ValueError(
            f"reranker {reranker.spec.name!r} gave {bad} non-finite scores of {len(pairs)} on {dataset.name!r}"
        )
    # each row's reranked documents keep their scores; the others go below the lowest of
    # them, in the first stage's order
    floor = np.zeros((n_queries, 1))
    if cells:
        rows, cols = np.array(cells).T
        lowest = np.full(n_queries, np.inf)
        np.minimum.at(lowest, rows, rescored)
        floor[:, 0] = np.where(np.isfinite(lowest), lowest, 0.0)
    finite = np.isfinite(first)
    row_max = np.max(np.where(finite, first, -np.inf), axis=1, keepdims=True)
    row_max = np.where(np.isfinite(row_max), row_max, 0.0)
    out = np.where(finite, first - row_max - 1.0 + floor, first)
    if cells:
        out[rows, cols] = rescored
    return out, len(pairs)


def rerank_scores(
    dataset: Dataset,
    scores: np.ndarray,
    reranker: Reranker,
    *,
    top_k: int = 10,
    instruction: str | None = None,
) -> np.ndarray:
    """A new (n_queries, n_docs) score matrix: each query's `top_k` documents by `scores`
    (rows in `dataset.query_ids` order, columns in `doc_ids` order) get the reranker's score
    (a log-odds); every other document keeps the first stage's order below them (shifted
    under the row's lowest reranked score, ties kept). Pair data sets
    (`candidates="judged"`) rerank each query's candidates only (`scoring.judged_candidates`,
    the rule of the metrics and fusion). Non-finite reranker scores raise ValueError."""
    return _rerank(dataset, scores, reranker, top_k, instruction)[0]


def rerank(
    dataset: Dataset,
    scores: np.ndarray,
    reranker: Reranker,
    *,
    embedder: str,
    top_k: int = 10,
    instruction: str | None = None,
) -> pd.DataFrame:
    """Per-query rows (the columns of `scoring.per_query_table`) for the embedder's top-k
    reranked, under the model name "<embedder>+<reranker>". `scores` is the embedder's
    (n_queries, n_docs) score matrix, e.g. `report.scores[(embedder, dataset.name)]`.
    The frame's `attrs` hold the rerank time (s), the pairs scored and k."""
    start = time.perf_counter()
    new_scores, n_pairs = _rerank(dataset, scores, reranker, top_k, instruction)
    elapsed = time.perf_counter() - start
    table = per_query_table(dataset, f"{embedder}+{reranker.spec.name}", scores=new_scores)
    table.attrs.update(rerank_s=elapsed, top_k=top_k, n_reranked=n_pairs)
    return table


def rerank_report(report: Any, dataset: Dataset, reranker: Reranker, embedder: str, *, top_k: int = 10) -> pd.DataFrame:
    """`rerank` over the scores a Report kept for `embedder` on `dataset`."""
    key = (embedder, dataset.name)
    if key not in report.scores:
        raise KeyError(
            f"the report kept no scores for {embedder!r} on {dataset.name!r} (raise keep_scores in evaluate)"
        )
    return rerank(dataset, report.scores[key], reranker, embedder=embedder, top_k=top_k)


def _one_query_pairs(dataset: Dataset, scores: np.ndarray, top_k: int) -> list[tuple[str, str]]:
    """The (query, document) pairs of the first query's top-k: what one user waits for."""
    row = np.asarray(scores[0], dtype=np.float64)
    if dataset.meta.candidates == "judged":
        row = np.where(judged_candidates(dataset)[0], row, -np.inf)
    top = [c for c in np.argsort(-row, kind="stable")[:top_k] if np.isfinite(row[c])]
    query, docs = dataset.query_texts()[0], dataset.document_texts()
    return [(query, docs[c]) for c in top]


def reranked_rows(
    reranks: Sequence[Rerank],
    sets: Sequence[Dataset],
    run_rows: Sequence[Mapping[str, Any]],
    scores: Mapping[tuple[str, str], np.ndarray],
    settings: RunSettings,
) -> StageRows:
    """Each reranker stage on each data set as a row of the run, "<first stage>+<reranker>"
    (backend "rerank"), beside its first-stage row. The reranker is loaded once per record,
    in this process (`load_s`). Columns of the latency the stage adds: `rerank_s` (seconds to
    rerank the whole data set, batched), `rerank_latency_s` (one query's top-k reranked on
    its own: median over `settings.repeats` runs; `rerank_latency_iqr_s`, `_times_s`). A first stage that
    failed gives a failed row; a reranker that fails to load or score fails its rows."""
    from embedlab.models.rerankers import load_reranker

    out = StageRows()
    status = {(r["model"], r["dataset"]): (r["status"], r.get("error", "")) for r in run_rows}
    loaded: dict[str, tuple[Reranker | None, float, str]] = {}
    for stage in reranks:
        key = json.dumps(stage.reranker.to_dict(), sort_keys=True, default=str)
        if key not in loaded:
            start = time.perf_counter()
            try:
                loaded[key] = (load_reranker(stage.reranker), time.perf_counter() - start, "")
            except Exception as exc:  # noqa: BLE001 - a reranker that cannot load fails its rows, not the run
                loaded[key] = (None, float("nan"), " ".join(f"{type(exc).__name__}: {exc}".split()))
        reranker, load_s, load_error = loaded[key]
        for dataset in sets:
            row: dict[str, Any] = {k: "" for k in RUN_COLUMNS}
            row.update(
                model=stage.name,
                dataset=dataset.name,
                status="ok",
                error="",
                backend="rerank",
                stage=stage.describe(),
                load_s=load_s,
                max_length=stage.reranker.max_tokens or "",
                dtype=stage.reranker.options.get("dtype", ""),
            )
            first_status, first_error = status.get((stage.first_stage, dataset.name), ("missing", "not run"))
            try:
                if first_status != "ok":
                    raise RuntimeError(
                        f"first stage {stage.first_stage!r} has no result on {dataset.name!r} ({first_error})"
                    )
                if reranker is None:
                    raise RuntimeError(f"reranker {stage.reranker.name!r} did not load: {load_error}")
                if (stage.first_stage, dataset.name) not in scores:
                    raise ValueError(
                        f"no score matrix kept for {stage.first_stage!r} on {dataset.name!r} (raise keep_scores)"
                    )
                first = scores[(stage.first_stage, dataset.name)]
                if hasattr(reranker, "effective_settings"):
                    effective = reranker.effective_settings()
                    row.update(max_length=effective.get("max_length", ""), dtype=effective.get("dtype", ""))
                    if "prefix_caching" in effective:  # a vLLM engine's, for run.json
                        row["prefix_caching"] = effective["prefix_caching"]
                start = time.perf_counter()
                new_scores, n_pairs = _rerank(dataset, first, reranker, stage.top_k, None)
                row.update(rerank_s=time.perf_counter() - start, n_reranked=n_pairs, top_k=stage.top_k)
                pairs = _one_query_pairs(dataset, first, stage.top_k)
                latency = probe.time_call(
                    partial(reranker.score, pairs, dataset.instruction or None), max(settings.repeats, 1)
                )
                row.update(
                    rerank_latency_s=latency.median,
                    rerank_latency_iqr_s=latency.iqr,
                    rerank_latency_times_s=json.dumps([round(t, 6) for t in latency.times]),
                )
                out.frames.append(
                    per_query_table(dataset, stage.name, scores=new_scores, metrics=metric_set(settings.metrics))
                )
                out.scores[(stage.name, dataset.name)] = new_scores
            except Exception as exc:  # noqa: BLE001 - one failing stage must not stop the run
                row.update(status="failed", error=" ".join(f"{type(exc).__name__}: {exc}".split()))
            out.runs.append(row)
    return out


__all__ = ["rerank", "rerank_report", "rerank_scores", "reranked_rows"]
