"""FAISS search (`settings.search`): flat returns the exact top k, hnsw and ivf report their
recall@k against the exact streamed top k; metrics always come from the exact pass."""

from __future__ import annotations

import numpy as np
import pytest

import embedlab as el
from embedlab.errors import ConfigError
from embedlab.evaluation.scoring import rank_embeddings
from embedlab.evaluation.search import SearchSettings, exact_top_ids, recall_at_k, search_top_k
from embedlab.types import Relevance
from tests.fake_encoders import fake_spec

pytest.importorskip("faiss")


@pytest.fixture(scope="module")
def vectors():
    rng = np.random.default_rng(0)
    queries = rng.standard_normal((50, 16)).astype(np.float32)
    docs = rng.standard_normal((2000, 16)).astype(np.float32)
    relevance = Relevance(np.arange(50), np.arange(50), np.ones(50, dtype=np.int64), 50, 2000)
    exact = rank_embeddings(queries, docs, relevance).top_ids
    return queries, docs, exact


def test_flat_index_returns_the_exact_top_k(vectors) -> None:
    queries, docs, exact = vectors
    ids, scores, build_s, search_s = search_top_k(queries, docs, SearchSettings(index="flat"))
    np.testing.assert_array_equal(ids, exact)
    assert np.all(np.diff(scores, axis=1) <= 0) and build_s >= 0 and search_s >= 0


def test_hnsw_recall_is_measured_against_exact(vectors) -> None:
    queries, docs, exact = vectors
    wide, *_ = search_top_k(queries, docs, SearchSettings(index="hnsw", hnsw_m=8, ef_search=2000))
    narrow, *_ = search_top_k(queries, docs, SearchSettings(index="hnsw", hnsw_m=4, ef_construction=8, ef_search=10))
    assert recall_at_k(wide, exact, 10) == 1.0
    assert recall_at_k(narrow, exact, 10) <= recall_at_k(wide, exact, 10)


def test_ivf_recall_is_exact_when_every_cell_is_probed_and_lower_with_one(vectors) -> None:
    queries, docs, exact = vectors
    every, *_ = search_top_k(queries, docs, SearchSettings(index="ivf", nlist=32, nprobe=32))
    one, *_ = search_top_k(queries, docs, SearchSettings(index="ivf", nlist=32, nprobe=1))
    assert recall_at_k(every, exact, 10) == 1.0
    assert recall_at_k(one, exact, 10) < 1.0


def test_bad_search_settings_fail_before_any_model_runs() -> None:
    with pytest.raises(ConfigError, match="settings.search.index"):
        SearchSettings.from_dict({"index": "annoy"})
    with pytest.raises(ConfigError, match="unknown keys"):
        el.evaluate([fake_spec("fake")], ["seed"], el.RunSettings(progress=False, isolate=False, search={"index": "flat", "efs": 3}))


@pytest.mark.parametrize("index", ["flat", "hnsw", "ivf"])
def test_evaluate_reports_search_recall_and_keeps_exact_metrics(index: str) -> None:
    settings = el.RunSettings(progress=False, isolate=False, repeats=1, throughput_texts=0)
    exact = el.evaluate([fake_spec("fake")], ["traps-zh"], settings)
    searched = el.evaluate([fake_spec("fake")], ["traps-zh"], el.RunSettings(**{**settings.to_dict(), "search": {"index": index}}))
    row = searched.runs.iloc[0]
    assert row["search_index"] == index and 0.0 <= row["search_recall_at_10"] <= 1.0
    if index == "flat":
        assert row["search_recall_at_10"] == 1.0
    cols = ["rank", "mrr", "ndcg_at_10", "top1"]
    assert searched.per_query[cols].equals(exact.per_query[cols])


def test_exact_flat_index_has_recall_one_on_a_judged_data_set() -> None:
    """pawsx-zh ranks each query among its judged candidates; the index searches the whole
    corpus, so its recall is measured against the exact whole-corpus top 10 (like with like)."""
    from embedlab.data.datasets import load_dataset

    dataset = load_dataset("pawsx-zh")
    assert dataset.meta.candidates == "judged"
    settings = el.RunSettings(progress=False, isolate=False, repeats=1, throughput_texts=0, search={"index": "flat"})
    report = el.evaluate([fake_spec("fake")], [dataset], settings, keep_scores=0)
    assert report.runs.iloc[0]["search_recall_at_10"] == 1.0
    # the judged-only top ids are not the whole corpus's: comparing with them scored below 1
    rng = np.random.default_rng(0)
    queries, docs = rng.standard_normal((20, 8)), rng.standard_normal((60, 8))
    relevance = Relevance(np.arange(20), np.arange(20), np.ones(20, dtype=np.int64), 20, 60, "judged")
    judged_top = rank_embeddings(queries, docs, relevance).top_ids
    ids, *_ = search_top_k(queries.astype(np.float32), docs.astype(np.float32), SearchSettings(index="flat"))
    assert recall_at_k(ids, judged_top, 10) < 1.0
    assert recall_at_k(ids, exact_top_ids(queries, docs, 10), 10) == 1.0


def test_exact_dense_ranking_paths_agree(monkeypatch: pytest.MonkeyPatch) -> None:
    """Unit-length documents are multiplied as they are and each block is ranked by a thread
    per core: the summary equals one-thread ranking of the whole score matrix, field by field."""
    from dataclasses import fields

    from embedlab.evaluation import scoring

    rng = np.random.default_rng(3)
    docs = rng.standard_normal((3000, 16)).astype(np.float32)
    docs /= np.linalg.norm(docs, axis=1, keepdims=True)
    queries = rng.standard_normal((300, 16)).astype(np.float32)
    relevance = Relevance(np.arange(300), rng.integers(0, 3000, 300), np.ones(300, dtype=np.int64), 300, 3000)
    assert scoring.is_unit(docs) and not scoring.is_unit(docs * 1.001) and not scoring.is_unit(docs.astype(np.float64))
    assert scoring.unit_rows(docs) is docs
    monkeypatch.setattr(scoring, "rank_threads", lambda n_rows: 3)
    threaded = rank_embeddings(queries, docs, relevance, block=128)
    monkeypatch.setattr(scoring, "rank_threads", lambda n_rows: 1)
    reference = scoring.rank_scores(scoring.cosine_scores(queries, docs), relevance, block=300)
    for field in fields(reference):
        np.testing.assert_array_equal(getattr(threaded, field.name), getattr(reference, field.name), err_msg=field.name)
    scaled = rank_embeddings(queries, docs * 3.0, relevance, block=128)  # not unit length: normalised in chunks
    np.testing.assert_array_equal(scaled.top_ids, reference.top_ids)
