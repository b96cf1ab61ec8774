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


# ---- the shortcut cue baselines: the rules of embedlab lint, one implementation ------------


def shortcut_set() -> Dataset:
    """30 queries, each with an answer and 3 distractors of random filler; every answer opens
    with 据专家介绍 (query-blind finds them), and in every other query the distractors repeat the
    query (there overlap-inverse finds the answer without a tie)."""
    rng = np.random.default_rng(5)
    filler = "天地山水风云花草木石日月星辰春夏秋冬东西南北江河湖海城乡田园桥路门窗书画琴棋茶酒米面"
    queries, corpus, qrels, kinds = {}, {}, {}, {}
    for i in range(30):
        q = f"q{i:02d}"
        queries[q] = "".join(rng.choice(list("甲乙丙丁戊己庚辛壬癸子丑寅卯辰巳午未申酉戌亥"), size=6))
        texts = ["".join(rng.choice(list(filler), size=int(rng.integers(20, 30)))) + "。" for _ in range(4)]
        texts[0] = "据专家介绍，" + texts[0]
        if i % 2:
            texts[1:] = [queries[q] + t for t in texts[1:]]
        ids = [f"{q}-a", f"{q}-d1", f"{q}-d2", f"{q}-d3"]
        corpus.update(zip(ids, texts))
        kinds.update({d: "answer" if j == 0 else "topical" for j, d in enumerate(ids)})
        qrels[q] = {d: int(j == 0) for j, d in enumerate(ids)}
    return Dataset(DatasetMeta(name="shortcuts"), queries, corpus, qrels, {q: "homonym" for q in queries}, kinds)


def test_shortcut_records():
    from embedlab.report.runs import CUE_BASELINES

    for name in ("overlap-inverse", "query-blind"):
        spec = get_model(name)
        assert spec.backend == "shortcut" and spec.lexical and spec.options == {"candidates": "judged", "rule": name}
    assert CUE_BASELINES == ("length", "length-judged", "overlap-inverse", "query-blind")
    with pytest.raises(ValueError, match="options.rule"):
        load_backend(get_model("query-blind").with_options(rule="longest"))


@pytest.mark.integration  # a worker process
def test_run_rows_agree_with_lint(tmp_path):
    """The run's query-blind and overlap-inverse rows rank each query as lint's cues do: the same
    per-query top-1 (overlap: where lint's rule has no tie, as the run breaks ties at random)."""
    import embedlab as el
    from embedlab.data import shortcuts
    from embedlab.report.lint import lint

    dataset = shortcut_set()
    settings = el.RunSettings(progress=False, isolate=True, repeats=1, throughput_texts=0, timing_texts=8)  # a worker process, as runs go
    report = el.evaluate(["overlap-inverse", "query-blind", "length-judged"], [dataset], settings)
    assert set(report.cue_models()) == {"overlap-inverse", "query-blind", "length-judged"}
    assert (report.summary()["status"] == "ok").all()
    per_query = report.per_query.set_index(["model", "query_id"])["top1"]
    queries = lint(dataset, model=False).queries.set_index("query_id")
    blind = per_query.loc["query-blind"].reindex(queries.index)
    np.testing.assert_array_equal(blind.to_numpy(), queries["query_blind_top1"].to_numpy())
    assert blind.mean() == 1.0
    groups = shortcuts.groups_from_dataset(dataset)
    untied = [g.query_id for g, s in zip(groups, shortcuts.rule_scores(groups, "overlap-inverse")) if (s == s.max()).sum() == 1]
    assert len(untied) == 15
    np.testing.assert_array_equal(per_query.loc["overlap-inverse"].reindex(untied).to_numpy(), queries.loc[untied, "overlap_top1"].to_numpy())
    assert per_query.loc["overlap-inverse"].reindex(untied).mean() == 1.0


def test_query_blind_learns_only_from_judge():
    ds = tiny()
    backend = load_backend(get_model("query-blind"))
    backend.index(ds.document_texts())
    assert (backend.score(ds.query_texts()) == 0).all()  # nothing learnt yet
    from embedlab.types import Relevance

    backend.judge(ds.query_texts(), Relevance.from_dataset(ds))
    scores = backend.score(ds.query_texts())
    assert scores.shape == (2, 5) and not (scores == 0).all()
    with pytest.raises(ValueError, match="not judged"):
        backend.score(["另一个查询"])
    with pytest.raises(ValueError, match="judgements for"):
        backend.judge(ds.query_texts()[:1], Relevance.from_dataset(ds))


def test_cue_flags_and_markdown_include_the_shortcut_rows(tmp_path):
    import embedlab as el

    dataset = shortcut_set()
    settings = el.RunSettings(progress=False, isolate=False, repeats=1, throughput_texts=0, timing_texts=8)
    report = el.evaluate(["bm25", "length-judged", "overlap-inverse", "query-blind"], [dataset], settings)
    flags = report.cue_flags()
    assert flags["model"].tolist() == ["bm25"]
    assert flags["best_cue"].iloc[0] == "query-blind" and flags["best_cue_top1"].iloc[0] == 1.0 and bool(flags["flagged"].iloc[0])
    markdown = report.to_markdown()
    assert "`query-blind`" in markdown and "`overlap-inverse`" in markdown and "does not clearly beat the `query-blind` cue" in markdown
