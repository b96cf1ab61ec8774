"""The notebooks' exercises (embedlab.report.exercises): exercise 1 of 15_explore starts from
a trap that does not meet its goal and its answer key does, both scored live by the real
bundled models in the trap explorer; the goal check reads the explorer's state; the answer
keys are the run's own numbers."""

from __future__ import annotations

import os

import pandas as pd
import pytest

pytest.importorskip("ipywidgets")

from embedlab import explore
from embedlab.data.datasets import load_dataset
from embedlab.report import analysis, exercises
from tests.tiers import tier

E5, BM25 = "multilingual-e5-small", "bm25"


def _summary(**outcomes: str) -> pd.DataFrame:
    return pd.DataFrame({"model": list(outcomes), "outcome": list(outcomes.values())})


def test_goal_check_reads_each_models_outcome() -> None:
    met = explore.goal_check(_summary(bm25="distractor first", e5="answer first"), fooled="bm25", holds="e5")
    assert met.met and "Goal met" in met.text and "目标达成" in met.text
    for bm25, e5 in [("answer first", "answer first"), ("distractor first", "tie"), ("tie", "answer first")]:
        check = explore.goal_check(_summary(bm25=bm25, e5=e5), fooled="bm25", holds="e5")
        assert not check.met and "Goal not met yet" in check.text and f"reads “{bm25}”" in check.text
    missing = explore.goal_check(_summary(bm25="distractor first"), fooled="bm25", holds="e5")
    assert not missing.met and "no score" in missing.text
    assert explore.goal_check(_summary(bm25="distractor first", e5="answer first"), "bm25", "e5", lang="en").text.count("目标") == 0


def test_kind_answer_names_the_kind_that_beats_the_answer_most() -> None:
    beats = pd.DataFrame(
        [
            ("a", "traps", "topical", 10, 1, 0.1), ("a", "traps", "literal", 2, 2, 1.0),
            ("b", "traps", "topical", 10, 6, 0.6), ("b", "traps", "literal", 2, 0, 0.0),
            ("a", "seed", "other-answer", 5, 0, 0.0),
        ],
        columns=["model", "dataset", "kind", "n_pairs", "n_beat", "beat_rate"],
    )
    text = exercises.kind_answer(beats, lang="en")
    traps, seed = text.split("\n")[:2]
    assert "`topical`" in traps.split("fools")[0] and "in 7/20 pairs" in traps  # 1 + 6 of 10 + 10: most pairs beaten
    assert "a `literal` 2/2" in traps and "b `topical` 6/10" in traps
    assert seed.startswith("- **seed**: no distractor") and "(5 pairs)" in seed
    assert "话题相同" in exercises.kind_answer(beats, lang="zh")
    assert "Why:" not in text  # no data sets given: no word counts


def test_kind_answer_says_why_with_the_words_each_shares_with_its_query() -> None:
    traps = load_dataset("traps-zh")
    beats = pd.DataFrame([("a", "traps-zh", "literal", 4, 3, 0.75)], columns=["model", "dataset", "kind", "n_pairs", "n_beat", "beat_rate"])
    cases = analysis.category_cases([traps], "idiom")
    mean = {
        kind: sum(len(exercises.shared_words(q, d)) for q, d in zip(rows["query"], rows["document"])) / len(rows)
        for kind, rows in cases.groupby("kind")
    }
    text = exercises.kind_answer(beats, [traps], "idiom", lang="en")
    assert f"share {mean['literal']:.1f} words with their query on average, the answers {mean['answer']:.1f}." in text
    assert exercises.shared_words("银行的利率", "央行调整利率") == ["利率"]


@pytest.fixture(scope="module")
@tier("integration")
def trap_run():
    """bm25 and e5-small on traps-zh through the shared embedding cache, as 15_explore runs them."""
    return analysis.trap_report([BM25, E5], ["traps-zh"], os.environ.get("EMBEDLAB_CACHE_DIR"))


def test_exercise_one_starts_unsolved_and_its_key_solves_it(trap_run, tmp_path) -> None:
    """The real models in the trap explorer: the student's starting trap does not meet "fool
    BM25 but not e5-small", the teacher's worked trap does."""
    dataset, query_id = explore.exercise_start(trap_run, fooled=BM25, holds=E5)
    outcomes = explore.query_table(trap_run, E5, compare=BM25)
    both = outcomes[(outcomes["top1"] > 0) & (outcomes["top1_b"] > 0)]
    assert (dataset, query_id) == tuple(both.loc[both["margin_b"].idxmax(), ["dataset", "query_id"]])  # the rule
    start = explore.trap([BM25, E5], dataset, query_id, cache_dir=tmp_path)
    assert start.query == load_dataset(dataset).queries[query_id]
    check = explore.goal_check(start.summary(), fooled=BM25, holds=E5)
    assert not check.met, check.text
    key = explore.trap([BM25, E5], **explore.FOOL_BM25_KEY, cache_dir=tmp_path)
    check = explore.goal_check(key.summary(), fooled=BM25, holds=E5)
    assert check.met, check.text
    margins = dict(zip(key.summary()["model"], key.summary()["margin"]))
    assert margins[BM25] < 0 < margins[E5]


def test_lexical_trap_answer_is_the_query_bm25_loses_by_most(trap_run) -> None:
    pq = trap_run.per_query
    lost = pq[(pq["model"] == BM25) & (pq["category"] == "idiom") & (pq["top1"] == 0)]
    worst = lost.loc[lost["margin"].idxmin()]
    text = exercises.lexical_trap_answer(trap_run, "idiom", lang="en")
    assert f"**traps-zh · {worst['query_id']}**" in text and f"margin {worst['margin']:+.3f}" in text
    ds = load_dataset("traps-zh")
    shared = exercises.shared_words(ds.queries[worst["query_id"]], worst["top1_document"])
    assert "Words the distractor shares with the query: " in text and f"({len(shared)})" in text
    found = pq[(pq["query_id"] == worst["query_id"]) & (pq["top1"] > 0)]["model"].tolist()
    assert f"still found the answer: {', '.join(found) or 'none'}." in text


def test_loss_explanation_counts_the_kinds_above_the_answer(trap_run) -> None:
    losses = explore.category_losses(trap_run, E5, BM25)
    worst = losses.iloc[0]
    lost = explore.query_table(trap_run, E5, BM25, worst["dataset"], worst["category"], "lost")
    text = explore.loss_explanation(trap_run, E5, BM25, worst["dataset"], worst["category"], lost["query_id"].iloc[0], lang="en")
    assert f"gets {len(lost)} queries wrong that {BM25} gets right" in text
    top_kind, n = lost["winner_kind"].value_counts().index[0], lost["winner_kind"].value_counts().iloc[0]
    assert f"`{top_kind}` {n}" in text and f"Most often `{top_kind}`" in text
    assert f"Take {lost['query_id'].iloc[0]}:" in text
