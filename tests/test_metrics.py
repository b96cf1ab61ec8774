"""Metrics agree with ranx on random runs (1e-9), and ties count against the model."""

from __future__ import annotations

import numpy as np
import pytest

from embedlab.evaluation.metrics import (
    first_relevant_rank,
    margin,
    metric_set,
    ndcg_at_k,
    parse_metric,
    pessimistic_order,
    ranking_depth,
    score_queries,
)


def _random_case(rng: np.random.Generator, n_queries: int = 40, n_docs: int = 60):
    scores = rng.normal(size=(n_queries, n_docs))
    gains = np.where(rng.random((n_queries, n_docs)) < 0.08, rng.integers(1, 4, (n_queries, n_docs)), 0)
    gains[np.arange(n_queries), rng.integers(0, n_docs, n_queries)] = rng.integers(1, 4, n_queries)
    return scores, gains


@pytest.mark.parametrize("seed", [0, 1, 2])
def test_metrics_agree_with_ranx(seed: int) -> None:
    ranx = pytest.importorskip("ranx")
    rng = np.random.default_rng(seed)
    scores, gains = _random_case(rng)
    qids = [f"q{i:03d}" for i in range(scores.shape[0])]
    dids = [f"d{j:03d}" for j in range(scores.shape[1])]
    qrels = ranx.Qrels({q: {dids[j]: int(g) for j, g in enumerate(row) if g > 0} for q, row in zip(qids, gains)})
    run = ranx.Run({q: {d: float(s) for d, s in zip(dids, row)} for q, row in zip(qids, scores)})
    metrics = metric_set(["recall@5", "ndcg@3", "recall@50"])
    expected = ranx.evaluate(qrels, run, [m.ranx_name for m in metrics], return_mean=False, make_comparable=True)
    ours = score_queries(scores, gains, metrics=metrics)
    for metric in metrics:
        np.testing.assert_allclose(ours.values[metric.column], np.asarray(expected[metric.ranx_name]), rtol=0, atol=1e-9, err_msg=metric.name)


@pytest.mark.parametrize(
    ("name", "column", "depth", "interval"),
    [("top1", "top1", 1, "wilson"), ("hit@5", "top5", 1, "wilson"), ("MRR", "mrr", 1, "bounded-wilson"),
     ("ndcg@10", "ndcg_at_10", 10, "bounded-wilson"), ("recall_at_100", "recall_at_100", 100, "bounded-wilson")],
)
def test_metric_names_parse_into_specs(name: str, column: str, depth: int, interval: str) -> None:
    spec = parse_metric(name)
    assert (spec.column, spec.depth, spec.interval, spec.bounds) == (column, depth, interval, (0.0, 1.0))
    assert parse_metric(spec.name) == spec  # the canonical name reads back


@pytest.mark.parametrize("bad", ["top", "recall", "ndcg@0", "map@10", "precision@5"])
def test_unknown_metric_names_are_refused_with_the_forms(bad: str) -> None:
    with pytest.raises(ValueError, match="expected top<k>"):
        parse_metric(bad)


def test_ranking_depth_comes_from_the_metrics() -> None:
    assert ranking_depth(metric_set()) == 10
    assert ranking_depth(metric_set(["recall@100"])) == 100
    assert [m.column for m in metric_set(["top1", "recall@100"])][-1] == "recall_at_100"  # defaults first, each once


def test_ties_count_against_the_model() -> None:
    # every document scored the same: the relevant one is ranked last, not first
    scores = np.zeros((1, 4))
    gains = np.array([[0, 1, 0, 0]])
    assert first_relevant_rank(scores, gains)[0] == 4
    assert pessimistic_order(scores, gains)[0, -1] == 1
    m = score_queries(scores, gains)
    assert m.values["top1"][0] == 0.0 and m.values["top3"][0] == 0.0
    assert m.values["mrr"][0] == pytest.approx(0.25)
    assert m.values["ndcg_at_10"][0] == pytest.approx(1 / np.log2(5))
    assert m.margin[0] == 0.0


def test_partial_tie_only_ties_push_down() -> None:
    scores = np.array([[0.9, 0.5, 0.5, 0.1]])
    gains = np.array([[0, 1, 0, 0]])
    # one doc above, one tied: rank 3
    assert first_relevant_rank(scores, gains)[0] == 3
    np.testing.assert_allclose(margin(scores, gains), [-0.4])


def test_hand_checked_ndcg_graded() -> None:
    # ranking: grades 0, 2, 1 -> DCG = 2/log2(3) + 1/log2(4); ideal 2, 1 -> 2 + 1/log2(3)
    ordered = np.array([[0, 2, 1]])
    expected = (2 / np.log2(3) + 1 / 2) / (2 + 1 / np.log2(3))
    assert ndcg_at_k(ordered, ordered, 10)[0] == pytest.approx(expected, abs=1e-12)


def test_eligible_mask_ranks_only_judged_documents() -> None:
    scores = np.array([[0.9, 0.2, 0.8, 0.1]])
    gains = np.array([[0, 0, 1, 0]])
    eligible = np.array([[False, True, True, False]])  # doc 0 outscores the answer but is not a candidate
    m = score_queries(scores, gains, eligible)
    assert m.rank[0] == 1 and m.top_doc[0] == 2
    assert m.margin[0] == pytest.approx(0.6)
    assert m.best_wrong_doc[0] == 1


def test_margin_positive_when_answer_wins() -> None:
    scores = np.array([[0.7, 0.4, 0.2]])
    gains = np.array([[1, 0, 0]])
    assert margin(scores, gains)[0] == pytest.approx(0.3)
    assert first_relevant_rank(scores, gains)[0] == 1


def test_non_finite_scores_are_refused_not_ranked() -> None:
    """A NaN relevant score used to give rank 1 (NaN >= x is false): now it is an error."""
    from embedlab.evaluation.metrics import score_queries

    gains = np.array([[1, 0, 0]])
    for bad in (np.nan, np.inf, -np.inf):
        with pytest.raises(ValueError, match="finite"):
            score_queries(np.array([[bad, 0.5, 0.2]]), gains)
    eligible = np.array([[True, True, False]])
    result = score_queries(np.array([[0.9, 0.5, np.nan]]), gains, eligible)  # a NaN outside the candidates is never ranked
    assert result.rank[0] == 1
