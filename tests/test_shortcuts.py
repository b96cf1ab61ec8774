"""embedlab.data.shortcuts: the shortcut rules on groups small enough to check by hand, BM25
against bm25s, and the held-out naive Bayes."""

from __future__ import annotations

import numpy as np
import pytest

from embedlab.data import shortcuts
from embedlab.data.shortcuts import Group


def group(query: str, answer: str, *distractors: str, category: str = "c", qid: str = "q") -> Group:
    texts = (answer, *distractors)
    return Group(qid, category, query, tuple(f"{qid}-{i}" for i in range(len(texts))), texts, (True, *[False] * len(distractors)))


def test_tokens():
    assert shortcuts.char_bigrams("苹果，手机") == ["苹果", "手机"]  # never across punctuation
    assert shortcuts.chars("a1，好") == ["a", "1", "好"]
    assert shortcuts.sentence_count("一。二！三？") == 3 and shortcuts.sentence_count("没有句号") == 1


def test_ties_shared_or_against():
    groups = [group("q", "a", "b", "c"), group("q", "a", "b")]
    scores = [np.array([1.0, 1.0, 0.0]), np.array([2.0, 1.0])]
    assert shortcuts.hits(groups, scores).tolist() == [0.5, 1.0]
    assert shortcuts.hits(groups, scores, ties="against").tolist() == [0.0, 1.0]
    with pytest.raises(ValueError, match="ties"):
        shortcuts.hits(groups, scores, ties="for")


def test_a_rule_that_sees_nothing_scores_chance():
    """Every candidate equally long: `length-longer` ties everywhere, so top-1 = chance exactly."""
    groups = [group("问", "一二三", "四五六", "七八九", qid=f"q{i}") for i in range(5)] + [group("问", "一二", "三四", qid="r")]
    row = shortcuts.evaluate_rule(groups, "length-longer").summary().iloc[0]
    assert row["top1"] == pytest.approx(row["chance"]) == pytest.approx((5 / 3 + 1 / 2) / 6)


def test_overlap_rules_by_hand():
    # query bigrams: 苹果, 果手, 手机; the answer shares one (手机), the distractors two and none
    groups = [group("苹果手机", "手机维修", "苹果手表坏了", "香蕉")]
    shared = [s.tolist() for s in shortcuts.rule_scores(groups, "overlap-forward")]
    assert shared == [[1.0, 2.0, 0.0]]
    assert shortcuts.evaluate_rule(groups, "overlap-forward").hits.tolist() == [0.0]
    assert shortcuts.evaluate_rule(groups, "overlap-inverse").hits.tolist() == [0.0]  # 香蕉 shares fewest
    assert shortcuts.overlap_direction(groups) == ("inverse", pytest.approx(1.0 - 1.0))
    assert shortcuts.evaluate_rule([group("苹果手机", "苹果手机好", "香蕉")], "overlap-forward").hits.tolist() == [1.0]


def test_bm25_by_hand():
    """Lucene's BM25 (bm25s): idf = ln(1 + (N - df + 0.5) / (df + 0.5)), tf / (tf + k1 (1 - b + b len / avglen))."""
    docs = [["苹果", "手机", "手机"], ["香蕉"], ["苹果", "香蕉", "梨", "桃"]]
    query = ["苹果", "手机", "梨", "没有"]
    avg = 8 / 3

    def term(tf: float, df: int, length: int) -> float:
        idf = np.log(1 + (3 - df + 0.5) / (df + 0.5))
        return idf * tf / (tf + 1.5 * (1 - 0.75 + 0.75 * length / avg))

    expected = [term(1, 2, 3) + term(2, 1, 3), 0.0, term(1, 2, 4) + term(1, 1, 4)]
    assert shortcuts.bm25_scores(query, docs) == pytest.approx(expected, rel=1e-5)
    assert shortcuts.bm25_scores(["没有"], docs).tolist() == [0.0, 0.0, 0.0]


def test_query_blind_is_held_out():
    """Answers of every group but one open with 据悉; the odd group's distractor reads like those
    answers and its answer like their distractors: held out, the classifier picks the distractor."""
    groups = [group("问", f"据悉甲乙{i}", f"丙丁戊{i}", f"己庚辛{i}", qid=f"q{i}") for i in range(8)]
    groups.append(group("问", "丙丁戊", "据悉甲乙", qid="odd"))
    outcome = shortcuts.evaluate_rule(groups, "query-blind")
    assert outcome.hits[:8].tolist() == [1.0] * 8
    assert outcome.hits[8] == 0.0 and outcome.margins[8] < 0
    carriers = shortcuts.NaiveBayes.from_groups(groups).carriers(5)
    assert {"据", "悉", "据悉"} & set(carriers["ngram"])
    # the held-out weights never see the group's own n-grams: an n-gram used only there weighs 0
    nb = shortcuts.NaiveBayes.from_groups([*groups, group("问", "独有", "另外", qid="only")])
    weights = nb.weights(held_out=9)
    assert weights[nb.vocabulary.index("独有")] == 0.0


def test_summary_per_category_and_binomial():
    groups = [group("问", "长长长长", "短", category="a", qid=f"a{i}") for i in range(10)]
    groups += [group("问", "短", "长长长长", category="b", qid=f"b{i}") for i in range(10)]
    table = shortcuts.evaluate_rule(groups, "length-longer").summary().set_index("category")
    assert table.loc["(all)", "top1"] == 0.5 and table.loc["a", "top1"] == 1.0 and table.loc["b", "top1"] == 0.0
    assert table.loc["a", "p_value"] == pytest.approx(0.5**10)
    assert table.loc["b", "p_value"] == pytest.approx(1.0)


def test_length_conditions():
    groups = [group("问", "长长长长", "短", "中中"), group("问", "短", "长长长长", "中中")]
    cond = shortcuts.length_conditions(groups)
    assert cond["answer_longest_rate"] == 0.5
    # answers 4 and 1 against distractors 1, 2, 4, 2: (1 + 1 + 0.5 + 1 + 0.5 + 0 + 0 + 0) / 8
    assert cond["length_auc"] == pytest.approx(4 / 8)


def test_unknown_rule():
    with pytest.raises(ValueError, match="overlap-inverse"):
        shortcuts.evaluate_rule([], "fewest-bigrams")
