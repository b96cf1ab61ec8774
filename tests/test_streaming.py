"""Streamed evaluation (blocks of queries, sparse qrels, a RankSummary per block) gives the
same numbers as ranking whole score rows (`metrics.score_queries`, the reference kept from
before streaming) to 1e-12, on random cases with ties and on every bundled data set."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from embedlab.data.datasets import load_dataset
from embedlab.evaluation import ranking
from embedlab.evaluation.metrics import metric_set, score_queries, summary_scores
from embedlab.evaluation.ranking import judged_block, rank_block
from embedlab.evaluation.scoring import judged_candidates, per_query_table, rank_embeddings, rank_scores
from embedlab.models.backends import l2_normalize
from embedlab.types import RankSummary, Relevance

BUNDLED = ["seed", "traps-zh", "cmrc2018", "csl", "idioms", "pawsx-zh"]
METRICS = metric_set(["top1", "top3", "recall@1", "recall@3", "recall@5"])


def reference_table(dataset, scores: np.ndarray, candidates: str | None = None) -> pd.DataFrame:
    """The per-query numbers as computed before streaming: whole rows, dense gains."""
    mode = dataset.meta.candidates if candidates is None else candidates
    gains = dataset.gains()
    eligible = judged_candidates(dataset) if mode == "judged" else None
    m = score_queries(scores, gains, eligible, METRICS)
    out = {"rank": m.rank, "margin": m.margin, "top_doc": m.top_doc, "best_wrong_doc": m.best_wrong_doc, **m.values}
    return pd.DataFrame(out)


def assert_same(summary: RankSummary, expected: pd.DataFrame) -> None:
    m = summary_scores(summary, METRICS)
    np.testing.assert_array_equal(m.rank, expected["rank"])
    np.testing.assert_array_equal(m.top_doc, expected["top_doc"])
    np.testing.assert_array_equal(m.best_wrong_doc, expected["best_wrong_doc"])
    np.testing.assert_allclose(m.margin, expected["margin"], rtol=0, atol=1e-12, equal_nan=True)
    for metric in METRICS:
        np.testing.assert_allclose(m.values[metric.column], expected[metric.column], rtol=0, atol=1e-12, err_msg=metric.name)


class _Set:
    """A minimal data set built from arrays (random cases)."""

    def __init__(self, gains: np.ndarray, candidates: str = "all") -> None:
        self.query_ids = [f"q{i}" for i in range(gains.shape[0])]
        self.doc_ids = [f"d{j}" for j in range(gains.shape[1])]
        self.qrels = {q: {self.doc_ids[j]: int(g) for j, g in enumerate(row) if g != 0 or (j % 7 == 0)} for q, row in zip(self.query_ids, gains)}

        class Meta:
            pass

        self.meta = Meta()
        self.meta.candidates = candidates
        self._gains = gains

    def gains(self, query_ids=None):
        return self._gains

    def judged(self, query_ids=None):
        return np.array([[d in self.qrels[q] for d in self.doc_ids] for q in self.query_ids])


@pytest.mark.parametrize("seed", [0, 1, 2, 3])
@pytest.mark.parametrize("mode", ["all", "judged"])
@pytest.mark.parametrize("chunk", [7, 256])
def test_streamed_ranking_equals_whole_rows_with_ties(seed: int, mode: str, chunk: int, monkeypatch) -> None:
    rng = np.random.default_rng(seed)
    n_q, n_d = 37, 20000
    scores = np.round(rng.normal(size=(n_q, n_d)), 1).astype(np.float32)  # many ties
    scores[3] = 0.0  # a query whose every score ties
    gains = np.where(rng.random((n_q, n_d)) < 0.002, rng.integers(1, 4, (n_q, n_d)), 0)
    gains[np.arange(n_q), rng.integers(0, n_d, n_q)] = rng.integers(1, 4, n_q)
    gains[5, :60] = 2  # more relevant documents than MANY_PAIRS and than the depth
    gains[6, :] = 0  # a query without any relevant document
    if mode == "judged":
        gains[7, rng.integers(0, n_d, 5)] = -1  # negative grades rank first among ties
    monkeypatch.setattr(ranking, "CHUNK", chunk)  # chunk-maxima threshold; 20,000 % 7 = 1: a 1-column last chunk
    ds = _Set(gains, mode)
    relevance = Relevance.from_dataset(ds)
    expected = reference_table(ds, scores.astype(np.float64), mode)
    for block in (1, 5, 256):
        assert_same(rank_scores(scores, relevance, mode, block), expected)
    if mode == "judged":
        np.testing.assert_array_equal(judged_block(relevance, 0, n_q), judged_candidates(ds))


def test_pair_ranks_count_documents_scoring_at_least_as_high() -> None:
    scores = np.array([[0.9, 0.5, 0.5, 0.1, 0.5]], dtype=np.float32)
    relevance = Relevance(np.array([0, 0]), np.array([2, 3]), np.array([1, 2]), 1, 5)
    summary = rank_block(scores, 0, relevance, depth=10)
    assert summary.pair_rank.tolist() == [4, 5]  # 0.5 ties three documents, all counted
    assert summary.pair_position.tolist() == [3, 4]  # tied non-relevant first, then by grade
    assert summary.rank.tolist() == [4]
    assert summary.top_ids[0, :5].tolist() == [0, 1, 4, 2, 3]
    assert summary.best_wrong_doc.tolist() == [0]


def test_non_finite_scores_fail_clearly() -> None:
    scores = np.array([[0.9, np.nan, 0.1]], dtype=np.float32)
    relevance = Relevance(np.array([0]), np.array([0]), np.array([1]), 1, 3)
    with pytest.raises(ValueError, match="scores must be finite"):
        rank_block(scores, 0, relevance, depth=10)


@pytest.mark.parametrize("name", BUNDLED)
def test_bundled_sets_dense_equal_reference(name: str) -> None:
    ds = load_dataset(name)
    rng = np.random.default_rng(len(name))
    q = np.round(rng.normal(size=(len(ds.query_ids), 8)), 0).astype(np.float32)  # coarse: ties
    d = np.round(rng.normal(size=(len(ds.doc_ids), 8)), 0).astype(np.float32)
    full = (l2_normalize(q) @ l2_normalize(d).T).astype(np.float64)
    expected = reference_table(ds, full)
    summary = rank_embeddings(q, d, Relevance.from_dataset(ds), block=100)
    assert_same(summary, expected)
    table = per_query_table(ds, "m", query_embeddings=q, doc_embeddings=d)
    assert table["rank"].tolist() == expected["rank"].tolist()


@pytest.mark.parametrize("name", BUNDLED)
def test_bundled_sets_bm25_and_length_equal_reference(name: str) -> None:
    from embedlab.models import get_model
    from embedlab.models.backends.lexical import BM25Backend, LengthBackend

    ds = load_dataset(name)
    for backend, mode in ((BM25Backend(get_model("bm25")), None), (LengthBackend(get_model("length")), "judged")):
        backend.index(ds.document_texts())
        scores = backend.score(ds.query_texts())
        expected = reference_table(ds, scores.astype(np.float64), mode)
        assert_same(rank_scores(scores, Relevance.from_dataset(ds), mode, block=64), expected)


@pytest.mark.integration
def test_scorer_worker_ranks_big_corpora_itself_with_the_same_numbers() -> None:
    """BM25 in its own worker: a matrix over keep_scores cells never leaves the worker (a
    RankSummary does), and the per-query numbers equal those from the whole matrix."""
    import embedlab as el

    settings = el.RunSettings(progress=False, repeats=1, throughput_texts=0, isolate=True, query_block=50, metrics=("recall@10",))
    whole = el.evaluate(["bm25", "length-judged"], ["traps-zh"], settings)
    streamed = el.evaluate(["bm25", "length-judged"], ["traps-zh"], settings, keep_scores=1000)
    assert set(whole.scores) == {("bm25", "traps-zh"), ("length-judged", "traps-zh")} and not streamed.scores
    assert (streamed.runs["status"] == "ok").all()
    cols = ["rank", "mrr", "ndcg_at_10", "recall_at_10", "top1", "margin", "top1_doc_id", "best_wrong_doc_id"]
    pd.testing.assert_frame_equal(streamed.per_query[cols], whole.per_query[cols])


def test_huge_finite_scores_are_ranked_not_refused() -> None:
    """The finite check sums each row first; a sum that overflows is checked element-wise."""
    scores = np.full((2, 50), 3e38, dtype=np.float32)
    scores[1, 7] = 3.3e38
    relevance = Relevance(np.array([0, 1]), np.array([3, 7]), np.array([1, 1]), 2, 50)
    summary = rank_block(scores, 0, relevance, depth=10)
    assert summary.rank.tolist() == [50, 1]


def test_a_scorer_ranks_in_blocks_with_the_ranking_the_evaluation_hands_it() -> None:
    """The run stage imports no ranking: the task carries `rank_block`, and a scorer whose
    matrix is over `keep_scores` cells returns that ranking's summary, never the matrix."""
    from embedlab.models import get_model
    from embedlab.run.runner import run_model
    from embedlab.types import EncodeTask, RunSettings

    ds = load_dataset("seed")
    settings = RunSettings(progress=False, repeats=1, throughput_texts=0, query_block=3)
    task = EncodeTask.from_dataset(ds, keep_scores=10, rank_block=rank_block)
    assert task.rank_block is rank_block and not task.documents_known
    result = run_model(get_model("bm25"), [task], settings).datasets["seed"]
    assert result.scores is None and result.ranks is not None and len(result.ranks.rank) == len(ds.query_ids)
    whole = run_model(get_model("bm25"), [EncodeTask.from_dataset(ds, keep_scores=10)], settings).datasets["seed"]
    assert whole.ranks is None and whole.scores.shape == (len(ds.query_ids), len(ds.doc_ids))
