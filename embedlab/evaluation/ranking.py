"""Rank one block of queries against a whole corpus from its scores and the sparse qrels,
keeping only what the metrics need (`embedlab.types.RankSummary`): pure numpy, used by the
evaluation stage (dense scores) and handed by it to scorer workers (BM25 and other scorers
that hold their own index: `EncodeTask.rank_block`), so no n_queries × n_docs array is ever
built.

Cost per block of b queries against n documents: two passes over the (b, n) scores (the
maxima of CHUNK-column chunks, which bound the top-k threshold and pick the few chunks read
again for the top candidates; one count per relevant document), extra memory O(b × n /
CHUNK); judged mode adds its (b, n) boolean candidate mask."""

from __future__ import annotations

import numpy as np

from embedlab.data.datasets import CANDIDATE_MODES
from embedlab.types import RankSummary, Relevance

CHUNK = 256  # columns per chunk whose maximum bounds the top-k threshold (`_candidates`)
MANY_PAIRS = 32  # rows with more relevant documents than this are sorted instead of counted


def block_pairs(relevance: Relevance, start: int, stop: int) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """(row within the block, document, grade) of the qrels of queries start..stop-1."""
    lo, hi = np.searchsorted(relevance.query_row, [start, stop])
    return relevance.query_row[lo:hi] - start, relevance.doc_col[lo:hi], relevance.gain[lo:hi]


def judged_block(relevance: Relevance, start: int, stop: int) -> np.ndarray:
    """Boolean (stop - start, n_docs) candidates of judged mode: the documents each query's
    qrels judge; a query that judges no non-relevant document (a shared-corpus set that
    lists only answers) also gets every document that answers no query (grade != 0 for
    none), its distractors by construction (`evaluation.scoring.judged_candidates`)."""
    rows, cols, gains = block_pairs(relevance, start, stop)
    out = np.zeros((stop - start, relevance.n_docs), dtype=bool)
    out[rows, cols] = True
    lonely = np.ones(stop - start, dtype=bool)
    lonely[rows[gains == 0]] = False
    if lonely.any():
        answers_none = np.ones(relevance.n_docs, dtype=bool)
        answers_none[relevance.doc_col[relevance.gain != 0]] = False
        out[lonely] |= answers_none
    return out


def _candidates(scores: np.ndarray, depth: int, eligible: np.ndarray | None) -> tuple[np.ndarray, np.ndarray]:
    """(row, column) of every eligible score >= a lower bound on its row's depth-th largest,
    in row-major order. On long rows the bound is the depth-th largest of the CHUNK-column
    maxima (those are depth distinct scores, so it is <= the depth-th largest score): one
    max-reduction over the scores, then only the chunks reaching the bound (usually depth
    of them) are read again. Short rows are partitioned whole (an exact threshold)."""
    b, n = scores.shape
    n_chunks = -(-n // CHUNK)
    if n_chunks < 4 * depth:
        threshold = scores.min(axis=1) if n <= depth else np.partition(scores, n - depth, axis=1)[:, n - depth]
        mask = scores >= threshold[:, None]
        if eligible is not None:
            mask &= eligible
        return np.divmod(np.flatnonzero(mask), n)  # flatnonzero: far faster than a 2-d nonzero
    full = n // CHUNK * CHUNK
    maxima = np.empty((b, n_chunks), dtype=scores.dtype)
    scores[:, :full].reshape(b, -1, CHUNK).max(axis=2, out=maxima[:, : full // CHUNK])
    if full < n:
        maxima[:, -1] = scores[:, full:].max(axis=1)
    threshold = np.partition(maxima, n_chunks - depth, axis=1)[:, n_chunks - depth]
    chunk_row, chunk = np.nonzero(maxima >= threshold[:, None])
    cols = chunk[:, None] * CHUNK + np.arange(CHUNK)  # (selected chunks, CHUNK); past n on the last
    inside = cols < n
    cols = np.minimum(cols, n - 1)
    rows = np.broadcast_to(chunk_row[:, None], cols.shape)
    keep = inside & (scores[rows, cols] >= threshold[chunk_row, None])
    if eligible is not None:
        keep &= eligible[rows, cols]
    return rows[keep], cols[keep]


def _count_at_least(scores: np.ndarray, rows: np.ndarray, thresholds: np.ndarray) -> np.ndarray:
    """For each (row, threshold) pair, the number of scores in that row >= threshold."""
    counts = np.zeros(len(rows), dtype=np.int64)
    if not len(rows):
        return counts
    b = scores.shape[0]
    per_row = np.bincount(rows, minlength=b)
    many = per_row[rows] > MANY_PAIRS
    for row in np.unique(rows[many]):  # many relevant documents: sort the row once
        ordered = np.sort(scores[row])
        sel = np.flatnonzero(rows == row)
        counts[sel] = len(ordered) - np.searchsorted(ordered, thresholds[sel].astype(scores.dtype), side="left")
    mask = np.empty(scores.shape[1], dtype=bool)  # one row at a time: fast and small
    for i in np.flatnonzero(~many):
        np.greater_equal(scores[rows[i]], thresholds[i], out=mask)
        counts[i] = np.count_nonzero(mask)
    return counts


def rank_block(
    scores: np.ndarray,
    start: int,
    relevance: Relevance,
    candidates: str | None = None,
    *,
    depth: int,
    check_finite: bool = True,
) -> RankSummary:
    """Summarise the ranking of queries start..start+len(scores)-1 (rows of `scores`, shape
    (b, n_docs), any float dtype) under the pessimistic rule, keeping the top `depth`
    documents (the evaluation stage derives it from its metrics: `metrics.ranking_depth`).
    `candidates` ("all" or "judged") overrides `relevance.candidates`. Raises ValueError on
    a NaN or infinite score that a query may rank (`check_finite=False`: the caller knows
    there is none)."""
    mode = relevance.candidates if candidates is None else candidates
    if mode not in CANDIDATE_MODES:
        raise ValueError(f"candidates: expected one of {CANDIDATE_MODES}, got {mode!r}")
    scores = np.asarray(scores)
    if scores.dtype.kind != "f":
        scores = scores.astype(np.float64)
    b, n = scores.shape
    if depth < 1:
        raise ValueError(f"depth must be at least 1, got {depth}")
    rows, cols, gains = block_pairs(relevance, start, start + b)
    eligible = judged_block(relevance, start, start + b) if mode == "judged" else None
    if not check_finite:
        bad_rows, bad = np.array([], dtype=np.int64), 0
    elif eligible is None:
        bad_rows = np.flatnonzero(~np.isfinite(scores.sum(axis=1)))  # one pass; a huge finite sum is checked below
        bad_rows = bad_rows[~np.isfinite(scores[bad_rows]).all(axis=1)]
        bad = int((~np.isfinite(scores[bad_rows])).sum()) if len(bad_rows) else 0
    else:
        bad_mask = ~np.isfinite(scores) & eligible
        bad_rows, bad = np.flatnonzero(bad_mask.any(axis=1)), int(bad_mask.sum())
    if len(bad_rows):
        raise ValueError(
            f"scores must be finite: {bad} NaN/inf scores in {len(bad_rows)} queries (first at query row "
            f"{start + bad_rows[0]})"
        )
    if eligible is not None:  # a new array: the caller's scores are never changed
        scores = np.where(eligible, scores, -np.inf).astype(scores.dtype, copy=False)
    keep = eligible[rows, cols] if eligible is not None else np.ones(len(rows), dtype=bool)
    rows, cols, gains = rows[keep], cols[keep], gains[keep]
    n_eligible = eligible.sum(axis=1) if eligible is not None else np.full(b, n)

    # candidates: every eligible document scoring >= a bound on the depth-th best score
    cand_row, cand_col = _candidates(scores, min(depth, n), eligible)
    cand_val = scores[cand_row, cand_col]
    cand_key = cand_row * n + cand_col  # sorted: nonzero walks rows in order
    pair_key = rows * n + cols
    cand_gain = np.zeros(len(cand_key), dtype=np.int64)
    if len(pair_key):
        at = np.searchsorted(pair_key, cand_key).clip(max=len(pair_key) - 1)
        match = pair_key[at] == cand_key
        cand_gain[match] = gains[at[match]]
    order = np.lexsort((cand_col, cand_gain, -cand_val.astype(np.float64), cand_row))
    sorted_row = cand_row[order]
    position = np.empty(len(order), dtype=np.int64)
    position[order] = np.arange(len(order)) - np.searchsorted(sorted_row, sorted_row)
    top_ids = np.full((b, depth), -1, dtype=np.int64)
    top_scores = np.full((b, depth), np.nan)
    shown = position < depth
    top_ids[cand_row[shown], position[shown]] = cand_col[shown]
    top_scores[cand_row[shown], position[shown]] = cand_val[shown]

    # judged pairs of non-zero grade: score, count of documents scoring >= it, place
    graded = gains != 0
    p_row, p_col, p_gain = rows[graded], cols[graded], gains[graded]
    p_score = scores[p_row, p_col].astype(np.float64)
    p_rank = _count_at_least(scores, p_row, scores[p_row, p_col])
    p_key = p_row * n + p_col
    found = np.searchsorted(cand_key, p_key).clip(max=max(len(cand_key) - 1, 0))
    p_position = np.full(len(p_key), -1, dtype=np.int64)
    if len(cand_key):
        hit = cand_key[found] == p_key
        p_position[hit] = position[found[hit]]
    p_position[p_position >= depth] = -1

    relevant = p_gain > 0
    best_relevant = np.full(b, -np.inf)
    np.maximum.at(best_relevant, p_row[relevant], p_score[relevant])
    ties = relevant & (p_score == best_relevant[p_row])
    n_ties = np.bincount(p_row[ties], minlength=b)
    count_best = np.full(b, np.iinfo(np.int64).max)
    np.minimum.at(count_best, p_row[ties], p_rank[ties])
    n_relevant = np.bincount(p_row[relevant], minlength=b)
    rank = np.where(n_ties > 0, 1 + count_best - n_ties, 1 + n_eligible - n_relevant)

    # best non-relevant document: the highest score, then the lowest index
    best_wrong = np.full(b, -np.inf)
    best_wrong_doc = np.full(b, -1, dtype=np.int64)
    wrong = cand_gain <= 0
    w_order = np.lexsort((cand_col[wrong], -cand_val[wrong].astype(np.float64), cand_row[wrong]))
    w_row = cand_row[wrong][w_order]
    first = np.flatnonzero(np.r_[True, w_row[1:] != w_row[:-1]]) if len(w_row) else np.array([], dtype=np.int64)
    best_wrong[w_row[first]] = cand_val[wrong][w_order][first]
    best_wrong_doc[w_row[first]] = cand_col[wrong][w_order][first]
    missing = np.flatnonzero((best_wrong_doc < 0) & (n_eligible > n_relevant))
    for row in missing:  # every candidate was relevant: look past them in this row only
        masked = scores[row].astype(np.float64)
        masked[p_col[relevant & (p_row == row)]] = -np.inf
        best_wrong_doc[row] = int(masked.argmax())
        best_wrong[row] = masked[best_wrong_doc[row]]
    return RankSummary(
        n_docs=n,
        top_ids=top_ids,
        top_scores=top_scores,
        rank=rank.astype(np.int64),
        best_relevant=best_relevant,
        best_wrong=best_wrong,
        best_wrong_doc=best_wrong_doc,
        pair_query=p_row,
        pair_doc=p_col,
        pair_gain=p_gain,
        pair_score=p_score,
        pair_rank=p_rank,
        pair_position=p_position,
    )
