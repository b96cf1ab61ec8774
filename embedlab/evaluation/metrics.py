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

The result schema is declared here once: each metric a run reports is a `MetricSpec`
parsed from its name ("top1", "mrr", "ndcg@10", "recall@100"), carrying its function, the
ranking depth it needs and its interval method; the ranking depth, the per-query and
summary columns, the CLI, plots and notebooks derive from the specs.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from typing import TYPE_CHECKING, Literal

import numpy as np

if TYPE_CHECKING:
    from embedlab.types import RankSummary


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


# ---- the result schema ---------------------------------------------------------------------

Interval = Literal["wilson", "bounded-wilson"]


@dataclass(frozen=True)
class MetricSpec:
    """One per-query metric: its name, per-query function, the ranking depth it needs and how
    its mean gets a confidence interval. `kind` is "hit" (top-k accuracy), "mrr", "ndcg" or
    "recall"; `k` the cut-off (None for MRR, which has none)."""

    kind: Literal["hit", "mrr", "ndcg", "recall"]
    k: int | None = None

    @property
    def name(self) -> str:
        """The name a config or `--metric` uses: top1, mrr, ndcg@10, recall@100."""
        return {"hit": f"top{self.k}", "mrr": "mrr"}.get(self.kind, f"{self.kind}@{self.k}")

    @property
    def column(self) -> str:
        """The column in per_query.csv, summary.csv and by_category.csv."""
        return self.name.replace("@", "_at_")

    @property
    def label(self) -> str:
        """For axes and tables: top-1, MRR, nDCG@10, recall@100."""
        return {"hit": f"top-{self.k}", "mrr": "MRR", "ndcg": f"nDCG@{self.k}"}.get(self.kind, f"recall@{self.k}")

    @property
    def ranx_name(self) -> str:
        """The same metric in ranx (the reference the tests compare with)."""
        return {"hit": f"hit_rate@{self.k}", "mrr": "mrr"}.get(self.kind, f"{self.kind}@{self.k}")

    @property
    def depth(self) -> int:
        """How many top-ranked documents it reads (top-k and MRR read the exact rank)."""
        return self.k if self.kind in ("ndcg", "recall") and self.k else 1

    @property
    def interval(self) -> Interval:
        """Wilson score intervals for hit rates (proportions), the Wilson-type interval of a
        [0, 1]-bounded mean for the other means (`stats.bounded_mean_ci`)."""
        return "wilson" if self.kind == "hit" else "bounded-wilson"

    @property
    def bounds(self) -> tuple[float, float]:
        """Every metric here is a per-query value in [0, 1]."""
        return (0.0, 1.0)

    @property
    def function(self) -> Callable[[np.ndarray, np.ndarray, np.ndarray], np.ndarray]:
        """Per-query values from (first relevant rank, grades in ranked order, all grades)."""
        k = self.k or 0
        return {
            "hit": lambda rank, ordered, judged: hit_at_k(rank, k),
            "mrr": lambda rank, ordered, judged: reciprocal_rank(rank),
            "ndcg": lambda rank, ordered, judged: ndcg_at_k(ordered, judged, k),
            "recall": lambda rank, ordered, judged: recall_at_k(ordered, judged, k),
        }[self.kind]


_METRIC_NAME = re.compile(r"^(?:(top|hit|hit_rate)[@_]?(?:at_)?(\d+)|(mrr)|(ndcg|recall)(?:@|_at_)(\d+))$")
METRIC_FORMS = "top<k> (or hit@<k>), mrr, ndcg@<k>, recall@<k> (or recall_at_<k>)"


def parse_metric(name: str) -> MetricSpec:
    """A metric from its name ("top1", "hit@1", "mrr", "ndcg@10", "ndcg_at_10", "recall@100").
    Raises ValueError naming the accepted forms."""
    match = _METRIC_NAME.match(str(name).strip().lower())
    if not match:
        raise ValueError(f"unknown metric {name!r}; expected {METRIC_FORMS}")
    hit, hit_k, mrr, kind, k = match.groups()
    spec = MetricSpec("mrr") if mrr else MetricSpec("hit", int(hit_k)) if hit else MetricSpec(kind, int(k))  # type: ignore[arg-type]
    if spec.k is not None and spec.k < 1:
        raise ValueError(f"metric {name!r}: the cut-off must be at least 1; expected {METRIC_FORMS}")
    return spec


# what every run reports; a run's `metrics` setting adds to these (the reports read them)
DEFAULT_METRICS: tuple[MetricSpec, ...] = tuple(parse_metric(n) for n in ("top1", "top3", "top5", "mrr", "ndcg@10"))


def metric_set(extra: Iterable[str | MetricSpec] = ()) -> tuple[MetricSpec, ...]:
    """The defaults and then the metrics asked for, each once, in that order."""
    specs = [*DEFAULT_METRICS, *(m if isinstance(m, MetricSpec) else parse_metric(m) for m in extra)]
    return tuple(dict.fromkeys(specs))


def ranking_depth(metrics: Iterable[MetricSpec]) -> int:
    """The ranked-list depth the metrics need (at least 10: the top documents a run keeps)."""
    return max([10, *(m.depth for m in metrics)])


@dataclass(frozen=True)
class QueryScores:
    """Metrics of one block of queries, one array entry per query; `values` by metric column."""

    rank: np.ndarray
    margin: np.ndarray
    top_doc: np.ndarray
    best_wrong_doc: np.ndarray
    values: dict[str, np.ndarray]


def _values(
    metrics: Iterable[MetricSpec], rank: np.ndarray, ordered: np.ndarray, judged: np.ndarray
) -> dict[str, np.ndarray]:
    return {m.column: m.function(rank, ordered, judged) for m in metrics}


def score_queries(
    scores: np.ndarray,
    gains: np.ndarray,
    eligible: np.ndarray | None = None,
    metrics: tuple[MetricSpec, ...] = DEFAULT_METRICS,
) -> QueryScores:
    """Every per-query metric for one block of queries (exact: the whole row is ranked).
    Raises ValueError on a NaN or infinite score among the rankable documents: NaN compares
    false with everything, so it would rank a relevant document first."""
    scores = np.asarray(scores, dtype=np.float64)
    gains = np.asarray(gains)
    bad = ~np.isfinite(scores) if eligible is None else (~np.isfinite(scores) & eligible)
    if bad.any():
        rows = np.flatnonzero(bad.any(axis=-1))
        raise ValueError(
            f"scores must be finite: {bad.sum()} NaN/inf scores in {rows.size} queries (first at query row {rows[0]})"
        )
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
        values=_values(metrics, ranks, ordered_gains, judged_gains),
    )


def summary_scores(summary: RankSummary, metrics: tuple[MetricSpec, ...] = DEFAULT_METRICS) -> QueryScores:
    """Every per-query metric from a streamed ranking (`embedlab.evaluation.ranking.rank_block`):
    the same numbers as `score_queries` on the full score matrix, from the top of each
    ranking and the places of the judged documents only. Raises ValueError when the ranking
    kept fewer documents than a metric reads (it would silently cut recall@100 to the top 10)."""
    n_queries, n_docs = summary.n_queries, summary.n_docs
    need = min(ranking_depth(metrics), n_docs)
    kept = summary.top_ids.shape[1] if summary.top_ids.ndim == 2 else 0
    if n_queries and kept < need:
        raise ValueError(
            f"the ranking kept the top {kept} documents, but the metrics read the top {need}: rank with depth >= {need}"
        )
    width = need
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
        values=_values(metrics, ranks, ordered_gains, all_gains),
    )
