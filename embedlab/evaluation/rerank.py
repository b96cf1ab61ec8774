"""The reranker stage of a run: a first stage's top-k re-scored by a reranker
(`embedlab.models.rerank`), the other documents kept below them in first-stage order."""

from __future__ import annotations

import time
from typing import Any

import numpy as np
import pandas as pd

from embedlab.data.datasets import Dataset
from embedlab.evaluation.scoring import per_query_table
from embedlab.models.rerank import Reranker


def _rerank(dataset: Dataset, scores: np.ndarray, reranker: Reranker, top_k: int, instruction: str | None) -> tuple[np.ndarray, int]:
    """`rerank_scores` and the number of pairs the reranker scored."""
    scores = np.asarray(scores, dtype=np.float64)
    n_queries, n_docs = len(dataset.query_ids), len(dataset.doc_ids)
    if scores.shape != (n_queries, n_docs):
        raise ValueError(f"scores must have shape {(n_queries, n_docs)} (queries x corpus of {dataset.name!r}), got {scores.shape}")
    eligible = dataset.judged() if dataset.meta.candidates == "judged" else np.ones_like(scores, dtype=bool)
    first = np.where(eligible, scores, -np.inf)
    k = min(top_k, n_docs)
    top = np.argsort(-first, axis=1, kind="stable")[:, :k]
    queries, docs = dataset.query_texts(), dataset.document_texts()
    pairs, cells = [], []
    for row in range(n_queries):
        for col in top[row]:
            if eligible[row, col]:
                pairs.append((queries[row], docs[col]))
                cells.append((row, col))
    rescored = np.asarray(reranker.score(pairs, instruction or dataset.instruction or None), dtype=np.float64) if pairs else np.zeros(0)
    if rescored.shape != (len(pairs),):
        raise ValueError(f"reranker {reranker.spec.name!r} returned shape {rescored.shape} for {len(pairs)} pairs")
    if not np.isfinite(rescored).all():
        bad = int((~np.isfinite(rescored)).sum())
        raise ValueError(f"reranker {reranker.spec.name!r} gave {bad} non-finite scores of {len(pairs)} on {dataset.name!r}")
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
    (`candidates="judged"`) rerank judged documents only. Non-finite reranker scores raise
    ValueError."""
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
        raise KeyError(f"the report kept no scores for {embedder!r} on {dataset.name!r} (raise keep_scores in evaluate)")
    return rerank(dataset, report.scores[key], reranker, embedder=embedder, top_k=top_k)


__all__ = ["rerank", "rerank_report", "rerank_scores"]
