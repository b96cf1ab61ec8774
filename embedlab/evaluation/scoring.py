"""Similarity scores and the per-query result table of one model on one data set.

Evaluation streams: queries are ranked a block at a time against the whole corpus
(`rank_embeddings`, `rank_scores`, via `embedlab.evaluation.ranking.rank_block`) into a
`RankSummary`, so no n_queries × n_docs array is built beyond one block (docs/scale.md)."""

from __future__ import annotations

import itertools
import os
from concurrent.futures import ThreadPoolExecutor

import numpy as np
import pandas as pd

from embedlab.data.categories import kind_for_query
from embedlab.data.datasets import CANDIDATE_MODES, Dataset
from embedlab.errors import ConfigError
from embedlab.evaluation.metrics import DEFAULT_METRICS, MetricSpec, pessimistic_order, ranking_depth, summary_scores
from embedlab.evaluation.ranking import rank_block
from embedlab.models.backends import l2_normalize
from embedlab.types import RankSummary, Relevance

BLOCK = 256  # queries per block (RunSettings.query_block)
DEFAULT_DEPTH = ranking_depth(DEFAULT_METRICS)
DOC_CHUNK = 65_536  # documents normalised and multiplied at a time
UNIT_TOL = 1e-5  # rows whose length is within this of 1 count as unit length (cosine error <= 2e-5)


def is_unit(embeddings: np.ndarray, tol: float = UNIT_TOL) -> bool:
    """True when `embeddings` is float32 and every row's length is within `tol` of 1 (what
    normalising backends return): such rows are used as they are, without a normalised
    copy. Checked DOC_CHUNK rows at a time, no temporary of the array's size."""
    if embeddings.dtype != np.float32 or embeddings.ndim != 2:
        return False
    for lo in range(0, len(embeddings), DOC_CHUNK):
        chunk = embeddings[lo : lo + DOC_CHUNK]
        if np.abs(np.einsum("ij,ij->i", chunk, chunk) - 1.0).max(initial=0.0) > 2 * tol:
            return False
    return True


def unit_rows(embeddings: np.ndarray) -> np.ndarray:
    """`embeddings` itself when its rows are already unit length (`is_unit`), else an
    L2-normalised float32 copy: the one rule of every cosine in embedlab."""
    embeddings = np.asarray(embeddings)
    return embeddings if is_unit(embeddings) else l2_normalize(embeddings)


def cosine_scores(query_embeddings: np.ndarray, doc_embeddings: np.ndarray) -> np.ndarray:
    """Cosine similarity, shape (n_queries, n_docs), float32."""
    return unit_rows(query_embeddings) @ unit_rows(doc_embeddings).T


def top_k(scores: np.ndarray, k: int, gains: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Exact top-k document indices and scores per row, best first. Exact ties go against the
    relevant documents, as every ranking of embedlab (`metrics.pessimistic_order`): among equal
    scores the lower grade in `gains` (shape of `scores`) first, then the lower index."""
    k = min(k, scores.shape[1])
    idx = pessimistic_order(scores, np.asarray(gains))[:, :k]
    return idx, np.take_along_axis(scores, idx, axis=1)


def judged_candidates(dataset: Dataset, query_ids: list[str] | None = None) -> np.ndarray:
    """Boolean mask (n_queries, n_docs) of each query's candidates in judged mode: the
    documents its qrels judge. A query whose qrels judge no non-relevant document (a
    shared-corpus set such as `seed`, which lists only answers) would otherwise be "ranked"
    among its answers alone and always win; its candidates are its judged documents plus
    every document that answers no query, its distractors by construction (the rule
    `embedlab lint` uses too)."""
    query_ids = dataset.query_ids if query_ids is None else query_ids
    judged = dataset.judged(query_ids)
    gains = dataset.gains(query_ids)
    lonely = ~(judged & (gains == 0)).any(axis=1)
    if lonely.any():
        answers_none = (dataset.gains(dataset.query_ids) == 0).all(axis=0)
        judged[lonely] |= answers_none
    return judged


def rank_scores(
    scores: np.ndarray,
    relevance: Relevance,
    candidates: str | None = None,
    block: int = BLOCK,
    depth: int = DEFAULT_DEPTH,
) -> RankSummary:
    """Streamed ranking of a score matrix (or any array-like of rows), `block` rows at a time."""
    parts = [
        rank_block(scores[s : s + block], s, relevance, candidates, depth=depth) for s in range(0, len(scores), block)
    ]
    return (
        RankSummary.concat(parts)
        if parts
        else rank_block(np.zeros((0, relevance.n_docs)), 0, relevance, candidates, depth=depth)
    )


def cosine_block(
    queries: np.ndarray, doc_embeddings: np.ndarray, out: np.ndarray | None = None, unit: bool = False
) -> np.ndarray:
    """Cosine scores of unit-length `queries` against every document, shape (len(queries),
    n_docs), float32: one matrix product when the documents are `unit` length already, else
    documents normalised DOC_CHUNK at a time, so the corpus is never copied."""
    n = len(doc_embeddings)
    out = np.empty((len(queries), n), dtype=np.float32) if out is None else out[:, :n]
    if unit or n <= DOC_CHUNK:
        np.matmul(queries, doc_embeddings.T if unit else l2_normalize(doc_embeddings).T, out=out)
        return out
    for lo in range(0, n, DOC_CHUNK):
        out[:, lo : lo + DOC_CHUNK] = queries @ l2_normalize(doc_embeddings[lo : lo + DOC_CHUNK]).T
    return out


def rank_threads(n_rows: int) -> int:
    """Threads that rank one block's rows side by side (numpy releases the GIL in the passes
    over the scores): one per core, at most one per 32 rows."""
    return max(1, min(os.cpu_count() or 1, n_rows // 32))


def _rank_rows(
    pool: ThreadPoolExecutor | None,
    scores: np.ndarray,
    start: int,
    relevance: Relevance,
    candidates: str | None,
    depth: int,
) -> RankSummary:
    """`rank_block` of a block, its rows split among the pool's threads (same result)."""
    parts = rank_threads(len(scores)) if pool is not None else 1
    if parts == 1:
        return rank_block(scores, start, relevance, candidates, depth=depth, check_finite=False)
    bounds = np.linspace(0, len(scores), parts + 1).astype(int)
    jobs = [
        pool.submit(rank_block, scores[lo:hi], start + lo, relevance, candidates, depth=depth, check_finite=False)
        for lo, hi in itertools.pairwise(bounds)
    ]
    return RankSummary.concat([job.result() for job in jobs])


def rank_embeddings(
    query_embeddings: np.ndarray,
    doc_embeddings: np.ndarray,
    relevance: Relevance,
    candidates: str | None = None,
    block: int = BLOCK,
    depth: int = DEFAULT_DEPTH,
) -> RankSummary:
    """Streamed exact cosine ranking: per block of queries, the scores against the whole
    corpus (one matrix product; unit-length documents are used as they are, others are
    normalised in chunks), ranked by a thread per core and dropped. Peak extra memory about
    block × n_docs × 4 bytes (float32 scores; judged candidates add a boolean mask)."""
    for name, array in (("query", query_embeddings), ("document", doc_embeddings)):
        if not all(np.isfinite(array[lo : lo + DOC_CHUNK]).all() for lo in range(0, len(array), DOC_CHUNK)):
            raise ValueError(f"{name} embeddings must be finite: found NaN or inf")
    queries = unit_rows(query_embeddings)
    unit = is_unit(np.asarray(doc_embeddings))
    buffer = np.empty((min(block, len(queries)), len(doc_embeddings)), dtype=np.float32)
    parts = []
    with ThreadPoolExecutor(max_workers=rank_threads(block)) as pool:
        for start in range(0, len(queries), block):
            chunk = cosine_block(
                queries[start : start + block], doc_embeddings, buffer[: len(queries[start : start + block])], unit
            )
            parts.append(_rank_rows(pool, chunk, start, relevance, candidates, depth))  # finite inputs, unit vectors
    return (
        RankSummary.concat(parts)
        if parts
        else rank_block(np.zeros((0, relevance.n_docs)), 0, relevance, candidates, depth=depth)
    )


def per_query_table(
    dataset: Dataset,
    model: str,
    *,
    scores: np.ndarray | None = None,
    query_embeddings: np.ndarray | None = None,
    doc_embeddings: np.ndarray | None = None,
    ranks: RankSummary | None = None,
    candidates: str | None = None,
    block: int = BLOCK,
    metrics: tuple[MetricSpec, ...] = DEFAULT_METRICS,
) -> pd.DataFrame:
    """One row per evaluated query: rank of the first relevant document (ties against the
    model), a column per metric of `metrics` (top-k hits, MRR, nDCG@k, recall@k), margin,
    the document ranked first and, when the model was wrong, the kind of document that won
    ("other-answer" when it was the answer of another query).

    From `ranks` (a streamed RankSummary), else from `scores` or the embeddings, ranked
    `block` queries at a time. `candidates` ("all" or "judged") overrides
    `dataset.meta.candidates`: "judged" ranks each query only among its candidates
    (`judged_candidates`; cue baselines use it)."""
    mode = dataset.meta.candidates if candidates is None else candidates
    if mode not in CANDIDATE_MODES:
        raise ConfigError(f"candidates: expected one of {CANDIDATE_MODES}, got {mode!r}")
    if ranks is None:
        relevance = Relevance.from_dataset(dataset)
        if scores is not None:
            ranks = rank_scores(scores, relevance, mode, block, ranking_depth(metrics))
        else:
            ranks = rank_embeddings(query_embeddings, doc_embeddings, relevance, mode, block, ranking_depth(metrics))
    query_ids = dataset.query_ids
    doc_ids = np.array(dataset.doc_ids, dtype=object)
    kinds = np.array([dataset.kinds.get(d, "") for d in dataset.doc_ids], dtype=object)
    # the kind each document has for a query it does not answer
    wrong_kinds = np.array([kind_for_query(k, relevant=False) for k in kinds], dtype=object)
    m = summary_scores(ranks, metrics)
    wrong = m.rank > 1
    best_wrong = np.maximum(m.best_wrong_doc, 0)
    frame = {
        "model": model,
        "dataset": dataset.name,
        "query_id": query_ids,
        "query": [dataset.queries[q] for q in query_ids],
        "category": [dataset.categories.get(q, "") for q in query_ids],
        "rank": m.rank,
    }
    frame.update(m.values)
    frame.update(
        {
            "margin": m.margin,
            "top1_doc_id": doc_ids[m.top_doc],
            "top1_document": [dataset.corpus[d] for d in doc_ids[m.top_doc]],
            "top1_kind": kinds[m.top_doc],
            "winner_kind": np.where(wrong, wrong_kinds[m.top_doc], ""),
            "best_wrong_doc_id": np.where(m.best_wrong_doc >= 0, doc_ids[best_wrong], ""),
            "best_wrong_kind": np.where(m.best_wrong_doc >= 0, wrong_kinds[best_wrong], ""),
        }
    )
    return pd.DataFrame(frame)
