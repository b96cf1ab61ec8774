"""The cue baselines: `length` (longer document scores higher) over the whole corpus and
over each query's judged documents (`candidates` override of per_query_table)."""

from __future__ import annotations

import numpy as np
import pytest

from embedlab.models.backends import Scorer, load_backend
from embedlab.data.datasets import Dataset, DatasetMeta
from embedlab.errors import ConfigError
from embedlab.models import get_model
from embedlab.evaluation.scoring import per_query_table


def tiny() -> Dataset:
    """q1's answer is the longest of its own group but shorter than q2's answer."""
    corpus = {
        "q1-a": "一二三四五六",  # 6
        "q1-d1": "一二三",  # 3
        "q1-d2": "一二三四",  # 4
        "q2-a": "一二三四五六七八九十",  # 10: longest in the corpus
        "q2-d1": "一二三四五六七八九十甲",  # 11: longer than q2's answer
    }
    qrels = {"q1": {"q1-a": 1, "q1-d1": 0, "q1-d2": 0}, "q2": {"q2-a": 1, "q2-d1": 0}}
    kinds = {"q1-a": "answer", "q2-a": "answer", "q1-d1": "topical", "q1-d2": "literal", "q2-d1": "topical"}
    return Dataset(DatasetMeta(name="tiny"), {"q1": "查询一", "q2": "查询二"}, corpus, qrels, {"q1": "homonym", "q2": "idiom"}, kinds)


def length_scores(ds: Dataset, name: str = "length") -> np.ndarray:
    backend = load_backend(get_model(name))
    assert isinstance(backend, Scorer)
    backend.index(ds.document_texts())
    return backend.score(ds.query_texts())


def test_records():
    whole, judged = get_model("length"), get_model("length-judged")
    assert whole.backend == judged.backend == "length"
    assert whole.lexical and judged.lexical
    assert "candidates" not in whole.options
    assert judged.options["candidates"] == "judged"


def test_length_scores_are_lengths_for_every_query():
    ds = tiny()
    scores = length_scores(ds)
    assert scores.shape == (2, 5)
    assert scores[0].tolist() == [6, 3, 4, 10, 11]
    assert (scores[0] == scores[1]).all()


def test_length_picks_the_longest_document_of_the_corpus():
    ds = tiny()
    table = per_query_table(ds, "length", scores=length_scores(ds))
    assert table["top1_doc_id"].tolist() == ["q2-d1", "q2-d1"]
    assert table["top1"].tolist() == [0.0, 0.0]
    assert table["rank"].tolist() == [3, 2]  # q1: behind q2-d1 and q2-a; q2: behind q2-d1


def test_judged_mode_ranks_only_judged_documents():
    ds = tiny()
    scores = length_scores(ds, "length-judged")
    table = per_query_table(ds, "length-judged", scores=scores, candidates="judged")
    # q1 among its own three documents: its answer is the longest
    assert table.loc[0, "top1_doc_id"] == "q1-a"
    assert table.loc[0, "top1"] == 1.0
    # q2 among its own two: the distractor is longer
    assert table.loc[1, "top1_doc_id"] == "q2-d1"
    assert table.loc[1, "rank"] == 2
    # the data set's own setting is untouched; the override works both ways
    assert ds.meta.candidates == "all"
    judged_ds = Dataset(DatasetMeta(name="tiny", candidates="judged"), ds.queries, ds.corpus, ds.qrels, ds.categories, ds.kinds)
    assert per_query_table(judged_ds, "length", scores=scores, candidates="all")["top1"].tolist() == [0.0, 0.0]
    assert per_query_table(judged_ds, "length", scores=scores)["top1"].tolist() == [1.0, 0.0]


def test_a_tie_counts_against_the_cue():
    ds = tiny()
    corpus = dict(ds.corpus, **{"q1-d2": "甲乙丙丁戊己"})  # as long as q1's answer (6)
    tied = Dataset(ds.meta, ds.queries, corpus, ds.qrels, ds.categories, ds.kinds)
    table = per_query_table(tied, "length", scores=length_scores(tied), candidates="judged")
    assert table.loc[0, "rank"] == 2
    assert table.loc[0, "top1"] == 0.0
    assert table.loc[0, "top1_doc_id"] == "q1-d2"


def test_unknown_candidates_mode_is_an_error():
    ds = tiny()
    with pytest.raises(ConfigError, match="candidates"):
        per_query_table(ds, "length", scores=length_scores(ds), candidates="judge")


def test_judged_mode_never_ranks_a_query_among_its_answers_alone() -> None:
    """`seed` judges only each query's answer: judged mode then uses every document that
    answers no query as the distractors, so `length-judged` cannot score 8/8 by default."""
    import numpy as np

    from embedlab.data.datasets import load_dataset
    from embedlab.evaluation.scoring import judged_candidates

    ds = load_dataset("seed")
    mask = judged_candidates(ds)
    gains = ds.gains()
    answers_none = (gains == 0).all(axis=0)
    assert answers_none.sum() > 0
    for row in range(len(ds.query_ids)):
        assert mask[row, gains[row] > 0].all()  # its answers
        assert mask[row, answers_none].all()  # and every document that answers no query
        assert not mask[row, (gains[row] == 0) & ~answers_none].any()  # not other queries' answers
    traps = load_dataset("traps-zh")
    np.testing.assert_array_equal(judged_candidates(traps), traps.judged())  # judged distractors exist: unchanged
