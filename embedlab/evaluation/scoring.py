"""Similarity scores and the per-query result table of one model on one data set."""

from __future__ import annotations

from collections.abc import Iterator

import numpy as np
import pandas as pd

from embedlab.models.backends import l2_normalize
from embedlab.data.categories import kind_for_query
from embedlab.data.datasets import CANDIDATE_MODES, Dataset
from embedlab.errors import ConfigError
from embedlab.evaluation.metrics import K_VALUES, score_queries

BLOCK = 512


def cosine_scores(query_embeddings: np.ndarray, doc_embeddings: np.ndarray) -> np.ndarray:
    """Cosine similarity, shape (n_queries, n_docs), float32."""
    return l2_normalize(query_embeddings) @ l2_normalize(doc_embeddings).T


def score_blocks(query_embeddings: np.ndarray, doc_embeddings: np.ndarray, block: int = BLOCK) -> Iterator[tuple[int, np.ndarray]]:
    """Cosine scores a block of queries at a time, so any corpus size fits in memory."""
    docs = l2_normalize(doc_embeddings)
    queries = l2_normalize(query_embeddings)
    for start in range(0, len(queries), block):
        yield start, queries[start : start + block] @ docs.T


def top_k(scores: np.ndarray, k: int) -> tuple[np.ndarray, np.ndarray]:
    """Exact top-k document indices and scores per row, best first (ties by lower index)."""
    k = min(k, scores.shape[1])
    part = np.argpartition(-scores, k - 1, axis=1)[:, :k]
    part_scores = np.take_along_axis(scores, part, axis=1)
    order = np.lexsort((part, -part_scores), axis=1)
    idx = np.take_along_axis(part, order, axis=1)
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


def per_query_table(
    dataset: Dataset,
    model: str,
    *,
    scores: np.ndarray | None = None,
    query_embeddings: np.ndarray | None = None,
    doc_embeddings: np.ndarray | None = None,
    candidates: str | None = None,
) -> pd.DataFrame:
    """One row per evaluated query: rank of the first relevant document (ties against the
    model), top1/top3/top5/top10 hits, MRR, nDCG@10, recall@k, margin, the document ranked
    first and, when the model was wrong, the kind of document that won ("other-answer" when
    it was the answer of another query).

    `candidates` ("all" or "judged") overrides `dataset.meta.candidates`: "judged" ranks
    each query only among its candidates (`judged_candidates`; cue baselines use it)."""
    query_ids = dataset.query_ids
    doc_ids = np.array(dataset.doc_ids, dtype=object)
    kinds = np.array([dataset.kinds.get(d, "") for d in dataset.doc_ids], dtype=object)
    # the kind each document has for a query it does not answer
    wrong_kinds = np.array([kind_for_query(k, relevant=False) for k in kinds], dtype=object)
    gains = dataset.gains(query_ids)
    mode = dataset.meta.candidates if candidates is None else candidates
    if mode not in CANDIDATE_MODES:
        raise ConfigError(f"candidates: expected one of {CANDIDATE_MODES}, got {mode!r}")
    judged = judged_candidates(dataset, query_ids) if mode == "judged" else None
    if scores is not None:
        blocks: Iterator[tuple[int, np.ndarray]] = ((s, scores[s : s + BLOCK]) for s in range(0, len(scores), BLOCK))
    else:
        blocks = score_blocks(query_embeddings, doc_embeddings)
    frames = []
    for start, block in blocks:
        rows = slice(start, start + len(block))
        m = score_queries(block, gains[rows], None if judged is None else judged[rows])
        wrong = m.rank > 1
        frame = {
            "model": model,
            "dataset": dataset.name,
            "query_id": query_ids[rows],
            "category": [dataset.categories.get(q, "") for q in query_ids[rows]],
            "rank": m.rank,
        }
        frame.update({f"top{k}": m.hit[k] for k in K_VALUES})
        frame.update(
            {
                "mrr": m.mrr,
                "ndcg_at_10": m.ndcg_at_10,
                **{f"recall_at_{k}": m.recall[k] for k in K_VALUES},
                "margin": m.margin,
                "top1_doc_id": doc_ids[m.top_doc],
                "top1_kind": kinds[m.top_doc],
                "winner_kind": np.where(wrong, wrong_kinds[m.top_doc], ""),
                "best_wrong_doc_id": np.where(m.best_wrong_doc >= 0, doc_ids[np.maximum(m.best_wrong_doc, 0)], ""),
                "best_wrong_kind": np.where(m.best_wrong_doc >= 0, wrong_kinds[np.maximum(m.best_wrong_doc, 0)], ""),
            }
        )
        frames.append(pd.DataFrame(frame))
    return pd.concat(frames, ignore_index=True)
