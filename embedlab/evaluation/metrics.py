"""Per-query retrieval metrics as pure functions over score and relevance arrays.

Conventions (checked against ranx in tests/test_metrics.py):
- `scores` has shape (n_queries, n_docs); `gains` the same shape, integer relevance grades
  (0 = not relevant). `eligible` (optional, bool) marks the documents each query may rank;
  the others are left out entirely (pair and reranking tasks).
- Ties count against the model: a relevant document tied with a non-relevant one is ranked
  below it. So a model that gives every document the same score gets the worst rank, not an
  average or a lucky one.
- nDCG uses linear gain (grade) and log2(rank + 1) discount, as trec_eval and ranx do.
- MRR is the reciprocal rank of the first relevant document, with no cut-off.
`score_queries` ranks whole rows (the reference); `summary_scores` gives the same numbers
from a streamed `RankSummary`, which is what evaluation uses.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING

import numpy as np

if TYPE_CHECKING:
    from embedlab.types import RankSummary

K_VALUES: tuple[int, ...] = (1, 3, 5, 10)


def pessimistic_order(scores: np.ndarray, gains: np.ndarray, eligible: np.ndarray | None = None) -> np.ndarray:
    """Document indices per row, best first; among equal scores the least relevant first.
    Ineligible documents go last."""
    scores = np.asarray(scores, dtype=np.float64)
    if eligible is not None:
        scores = np.where(eligible, scores, -np.inf)
        # ineligible after every eligible doc, even one scored -inf by the model
        return np.lexsort((gains, -scores, ~eligible), axis=-1)
    return np.lexsort((gains, -scores), axis=-1)


def first_relevant_rank(scores: np.ndarray, gains: np.ndarray, eligible: np.ndarray | None = None) -> np.ndarray:
    """1-based rank of the best relevant document per query, ties against the model."""
    scores = np.asarray(scores, dtype=np.float64)
    relevant = gains > 0
    if eligible is None:
        eligible = np.ones_like(relevant)
    best_relevant = np.where(relevant & eligible, scores, -np.inf).max(axis=-1)
    others = eligible & ~relevant
    return 1 + (others & (scores >= best_relevant[:, None])).sum(axis=-1)


def margin(scores: np.ndarray, gains: np.ndarray, eligible: np.ndarray | None = None) -> np.ndarray:
    """Best relevant score minus best non-relevant score per query (NaN if no non-relevant
    document is eligible). Positive means the answer won."""
    scores = np.asarray(scores, dtype=np.float64)
    relevant = gains > 0
    if eligible is None:
        eligible = np.ones_like(relevant)
    best_relevant = np.where(relevant & eligible, scores, -np.inf).max(axis=-1)
    best_other = np.where(~relevant & eligible, scores, -np.inf).max(axis=-1)
    out = best_relevant - best_other
    return np.where(np.isinf(best_other), np.nan, out)


def best_non_relevant(scores: np.ndarray, gains: np.ndarray, eligible: np.ndarray | None = None) -> np.ndarray:
    """Index of the highest-scored non-relevant document per query (-1 if none)."""
    scores = np.asarray(scores, dtype=np.float64)
    allowed = gains <= 0
    if eligible is not None:
        allowed = allowed & eligible
    masked = np.where(allowed, scores, -np.inf)
    idx = masked.argmax(axis=-1)
    return np.where(allowed.any(axis=-1), idx, -1)


def hit_at_k(ranks: np.ndarray, k: int) -> np.ndarray:
    """1.0 where the first relevant document is within the top k."""
    return (np.asarray(ranks) <= k).astype(np.float64)


def reciprocal_rank(ranks: np.ndarray) -> np.ndarray:
    """1 / rank of the first relevant document (the per-query term of MRR)."""
    return 1.0 / np.asarray(ranks, dtype=np.float64)


def ndcg_at_k(ordered_gains: np.ndarray, all_gains: np.ndarray, k: int) -> np.ndarray:
    """nDCG@k from the grades in ranked order and the grades of all judged documents."""
    ordered = np.asarray(ordered_gains, dtype=np.float64)[:, :k]
    discounts = 1.0 / np.log2(np.arange(2, ordered.shape[1] + 2))
    dcg = (ordered * discounts).sum(axis=-1)
    ideal = -np.sort(-np.clip(np.asarray(all_gains, dtype=np.float64), 0, None), axis=-1)[:, :k]
    idcg = (ideal * discounts[: ideal.shape[1]]).sum(axis=-1)
    with np.errstate(invalid="ignore", divide="ignore"):
        return np.where(idcg > 0, dcg / idcg, 0.0)


def recall_at_k(ordered_gains: np.ndarray, all_gains: np.ndarray, k: int) -> np.ndarray:
    """Share of the relevant documents found in the top k."""
    found = (np.asarray(ordered_gains)[:, :k] > 0).sum(axis=-1)
    total = (np.asarray(all_gains) > 0).sum(axis=-1)
    with np.errstate(invalid="ignore", divide="ignore"):
        return np.where(total > 0, found / total, 0.0)


@dataclass(frozen=True)
class QueryScores:
    """Metrics of one block of queries, one array entry per query."""

    rank: np.ndarray
    margin: np.ndarray
    top_doc: np.ndarray
    best_wrong_doc: np.ndarray
    hit: dict[int, np.ndarray]
    recall: dict[int, np.ndarray]
    mrr: np.ndarray
    ndcg_at_10: np.ndarray


def score_queries(
    scores: np.ndarray,
    gains: np.ndarray,
    eligible: np.ndarray | None = None,
    k_values: tuple[int, ...] = K_VALUES,
) -> QueryScores:
    """Every per-query metric for one block of queries (exact: the whole row is ranked).
    Raises ValueError on a NaN or infinite score among the rankable documents: NaN compares
    false with everything, so it would rank a relevant document first."""
    scores = np.asarray(scores, dtype=np.float64)
    gains = np.asarray(gains)
    bad = ~np.isfinite(scores) if eligible is None else (~np.isfinite(scores) & eligible)
    if bad.any():
        rows = np.flatnonzero(bad.any(axis=-1))
        raise ValueError(f"scores must be finite: {bad.sum()} NaN/inf scores in {rows.size} queries (first at query row {rows[0]})")
    ranks = first_relevant_rank(scores, gains, eligible)
    order = pessimistic_order(scores, gains, eligible)
    ordered_gains = np.take_along_axis(gains, order, axis=-1)
    if eligible is not None:
        ordered_gains = np.where(np.take_along_axis(eligible, order, axis=-1), ordered_gains, 0)
        judged_gains = np.where(eligible, gains, 0)
    else:
        judged_gains = gains
    return QueryScores(
        rank=ranks,
        margin=margin(scores, gains, eligible),
        top_doc=order[:, 0],
        best_wrong_doc=best_non_relevant(scores, gains, eligible),
        hit={k: hit_at_k(ranks, k) for k in k_values},
        recall={k: recall_at_k(ordered_gains, judged_gains, k) for k in k_values},
        mrr=reciprocal_rank(ranks),
        ndcg_at_10=ndcg_at_k(ordered_gains, judged_gains, 10),
    )


def summary_scores(summary: RankSummary, k_values: tuple[int, ...] = K_VALUES) -> QueryScores:
    """Every per-query metric from a streamed ranking (`embedlab.data.ranking.rank_block`):
    the same numbers as `score_queries` on the full score matrix, from the top of each
    ranking and the places of the judged documents only."""
    n_queries, n_docs = summary.n_queries, summary.n_docs
    width = min(max(max(k_values), 10), n_docs)
    ordered_gains = np.zeros((n_queries, width), dtype=np.int64)
    placed = (summary.pair_position >= 0) & (summary.pair_position < width)
    ordered_gains[summary.pair_query[placed], summary.pair_position[placed]] = summary.pair_gain[placed]
    # the grades of each query's eligible judged documents, left-aligned, zero padded
    counts = np.bincount(summary.pair_query, minlength=n_queries)
    first = np.concatenate([[0], np.cumsum(counts)[:-1]])
    slot = np.arange(len(summary.pair_query)) - first[summary.pair_query]
    all_gains = np.zeros((n_queries, max(int(counts.max(initial=0)), width)), dtype=np.int64)
    all_gains[summary.pair_query, slot] = summary.pair_gain
    ranks = summary.rank
    with np.errstate(invalid="ignore"):
        margins = np.where(np.isinf(summary.best_wrong), np.nan, summary.best_relevant - summary.best_wrong)
    return QueryScores(
        rank=ranks,
        margin=margins,
        top_doc=summary.top_ids[:, 0],
        best_wrong_doc=summary.best_wrong_doc,
        hit={k: hit_at_k(ranks, k) for k in k_values},
        recall={k: recall_at_k(ordered_gains, all_gains, k) for k in k_values},
        mrr=reciprocal_rank(ranks),
        ndcg_at_10=ndcg_at_k(ordered_gains, all_gains, 10),
    )
