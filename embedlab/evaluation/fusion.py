"""Fusion of the rankings of several models of one run into a row of its own, with ranx's
definitions (checked against `ranx.fuse` in tests/test_fusion.py):

- "rrf" (ranx `fusion/rrf.py`, Cormack et al. 2009): score(d) = sum over models of
  1 / (k + rank_m(d)), k = 60 by default.
- "wsum" (ranx `normalization/min_max_norm.py` then `fusion/wsum.py`): each model's scores
  min-max normalised per query, (s - min) / max(max - min, 1e-9), then sum over models of
  weight_m * s_m (equal weights 1/n by default).

Full matrices only: every member must have scored every document (its (n_queries, n_docs)
matrix kept on the run, `evaluate(keep_scores=...)`); a member without one raises
ConfigError naming keep_scores, never a fusion of truncated lists. Because every document is
in every member's list, ranx's CombMNZ / wMNZ order documents exactly as wsum does and are
not offered separately.

Ties follow the metrics' rule (ties count against the model, `metrics.first_relevant_rank`):
documents that a member scores equally all get the worst rank of their group (the number
of documents scoring at least as high), so a tie never lifts a document; ties of the fused
scores are then ranked against the model by the metrics. ranx ranks tied documents in
arbitrary order; without ties the two agree.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np

from embedlab.data.datasets import Dataset
from embedlab.errors import ConfigError
from embedlab.evaluation.config import Fusion, Rerank, check_stage_names
from embedlab.evaluation.metrics import DEFAULT_METRICS, MetricSpec
from embedlab.evaluation.results import RUN_COLUMNS, StageRows
from embedlab.evaluation.scoring import judged_candidates, per_query_table
from embedlab.models import ModelSpec

MIN_MAX_FLOOR = 1e-9  # ranx's smallest min-max denominator


def _rows_eligible(scores: np.ndarray, eligible: np.ndarray | None) -> np.ndarray:
    return np.ones(scores.shape, dtype=bool) if eligible is None else np.asarray(eligible, dtype=bool)


def pessimistic_ranks(scores: np.ndarray, eligible: np.ndarray | None = None) -> np.ndarray:
    """1-based rank of every document per query (shape of `scores`, float64): the number of
    eligible documents scoring at least as high, so tied documents share the worst rank of
    their group. Ineligible documents get rank inf (they are not in the ranking)."""
    scores = np.asarray(scores, dtype=np.float64)
    eligible = _rows_eligible(scores, eligible)
    ranks = np.full(scores.shape, np.inf)
    for row in range(scores.shape[0]):
        mask = eligible[row]
        values = scores[row, mask]
        ascending = np.sort(values)
        # documents scoring >= s = all eligible minus those scoring < s
        ranks[row, mask] = len(values) - np.searchsorted(ascending, values, side="left")
    return ranks


def rrf(score_matrices: Sequence[np.ndarray], k: float = 60.0, eligible: np.ndarray | None = None) -> np.ndarray:
    """Reciprocal rank fusion: sum over members of 1 / (k + rank), ranks by
    `pessimistic_ranks`. Ineligible documents score 0."""
    return sum(1.0 / (k + pessimistic_ranks(s, eligible)) for s in score_matrices)


def min_max(scores: np.ndarray, eligible: np.ndarray | None = None) -> np.ndarray:
    """Per-query min-max normalisation over the eligible documents, as ranx's
    `min_max_norm` ((s - min) / max(max - min, 1e-9)); ineligible documents get 0."""
    scores = np.asarray(scores, dtype=np.float64)
    eligible = _rows_eligible(scores, eligible)
    low = np.where(eligible, scores, np.inf).min(axis=1, keepdims=True)
    high = np.where(eligible, scores, -np.inf).max(axis=1, keepdims=True)
    span = np.maximum(high - low, MIN_MAX_FLOOR)
    with np.errstate(invalid="ignore"):
        return np.where(eligible, (scores - low) / span, 0.0)


def weighted_sum(
    score_matrices: Sequence[np.ndarray], weights: Sequence[float] | None = None, eligible: np.ndarray | None = None
) -> np.ndarray:
    """ranx's `fuse(norm="min-max", method="wsum")`: min-max normalised scores, summed
    with `weights` (None: 1/n each)."""
    weights = [1.0 / len(score_matrices)] * len(score_matrices) if weights is None else list(weights)
    if len(weights) != len(score_matrices):
        raise ValueError(f"weighted_sum: {len(weights)} weights for {len(score_matrices)} score matrices")
    return sum(w * min_max(s, eligible) for w, s in zip(weights, score_matrices))


def fuse_scores(score_matrices: Sequence[np.ndarray], fusion: Fusion, eligible: np.ndarray | None = None) -> np.ndarray:
    """The fused (n_queries, n_docs) matrix of `fusion`'s method from its members' score
    matrices (same shape, in `fusion.models` order)."""
    shapes = {np.shape(s) for s in score_matrices}
    if len(shapes) != 1:
        raise ValueError(f"fusion {fusion.name!r}: members' score matrices differ in shape: {sorted(shapes)}")
    for member, s in zip(fusion.models, score_matrices):
        bad = ~np.isfinite(s) & _rows_eligible(np.asarray(s), eligible)
        if bad.any():
            raise ValueError(f"fusion {fusion.name!r}: member {member!r} has {int(bad.sum())} non-finite scores")
    if fusion.method == "rrf":
        return rrf(score_matrices, fusion.k, eligible)
    return weighted_sum(score_matrices, fusion.weights, eligible)


def check_second_stages(
    specs: Sequence[ModelSpec],
    sets: Sequence[Dataset],
    fusions: Sequence[Fusion],
    reranks: Sequence[Rerank],
    keep_scores: int,
) -> None:
    """Before any model runs: fusion members and rerank first stages name rows of the run
    (ConfigError), and, as second stages read full score matrices, every data set's must be
    small enough to be kept (`keep_scores` cells; ConfigError naming keep_scores)."""
    check_stage_names(list(specs), fusions, reranks, "evaluate(fusions=..., reranks=...)")
    if not fusions and not reranks:
        return
    for dataset in sets:
        cells = len(dataset.query_ids) * len(dataset.doc_ids)
        if cells > keep_scores:
            raise ConfigError(
                f"fusion and reranking need each first stage's full score matrix, but {dataset.name!r} has "
                f"{len(dataset.query_ids)} x "
                f"{len(dataset.doc_ids)} = {cells} cells, more than keep_scores={keep_scores}: raise keep_scores "
                "(memory: 8 bytes a cell) or sample the queries (--sample)"
            )


def _stage_row(
    name: str, dataset: str, backend: str, stage: str, status: str = "ok", error: str = ""
) -> dict[str, Any]:
    row: dict[str, Any] = {k: "" for k in RUN_COLUMNS}
    row.update(model=name, dataset=dataset, status=status, error=error, backend=backend, stage=stage)
    return row


def fused_rows(
    fusions: Sequence[Fusion],
    sets: Sequence[Dataset],
    run_rows: Sequence[Mapping[str, Any]],
    scores: Mapping[tuple[str, str], np.ndarray],
    metrics: tuple[MetricSpec, ...] = DEFAULT_METRICS,
) -> StageRows:
    """Each fusion on each data set as a row of the run (backend "fusion", no encoding):
    per-query table (the run's `metrics`), runs.csv row and fused score matrix. A fusion whose member failed on a
    data set becomes a failed row naming that member. A fusion may fuse earlier fusions."""
    out = StageRows()
    status = {(r["model"], r["dataset"]): (r["status"], r.get("error", "")) for r in run_rows}
    available = dict(scores)
    for fusion in fusions:
        for dataset in sets:
            row = _stage_row(fusion.name, dataset.name, "fusion", fusion.describe())
            failed = [m for m in fusion.models if status.get((m, dataset.name), ("missing", ""))[0] != "ok"]
            if failed:
                row.update(
                    status="failed",
                    error=(
                        f"member {failed[0]!r} has no result on {dataset.name!r} "
                        f"({status.get((failed[0], dataset.name), ('', 'not run'))[1]})"
                    ),
                )
            else:
                missing = [m for m in fusion.models if (m, dataset.name) not in available]
                if missing:
                    raise ValueError(
                        f"fusion {fusion.name!r}: no score matrix kept for {missing} on {dataset.name!r} (raise "
                        "keep_scores)"
                    )
                eligible = judged_candidates(dataset) if dataset.meta.candidates == "judged" else None
                fused = fuse_scores([available[(m, dataset.name)] for m in fusion.models], fusion, eligible)
                out.frames.append(per_query_table(dataset, fusion.name, scores=fused, metrics=metrics))
                out.scores[(fusion.name, dataset.name)] = fused
                available[(fusion.name, dataset.name)] = fused
            status[(fusion.name, dataset.name)] = (row["status"], row["error"])
            out.runs.append(row)
    return out


__all__ = ["check_second_stages", "fuse_scores", "fused_rows", "min_max", "pessimistic_ranks", "rrf", "weighted_sum"]
