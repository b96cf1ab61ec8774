"""No ranking path breaks an exact tie toward the answer (issue 18, point 4): a scorer that gives
every candidate the same score ranks no answer first, on the run's ranking, fusion, the
reranker's preselection, `scoring.top_k`, explore and lint.

The constant scorer is the real `length` cue baseline on a set whose documents are all six
characters long; each answer is its query's first document (`-a`, loaded first), where a
tie broken by position would put it."""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
import pytest

import embedlab as el
from embedlab.data.datasets import Dataset, DatasetMeta
from embedlab.evaluation.rerank import rerank
from embedlab.evaluation.scoring import top_k
from embedlab.models import ModelSpec, get_model
from embedlab.run.config import Fusion

WORDS = ["天地山水风云", "花草木石日月", "星辰春夏秋冬", "东西南北江河", "湖海城乡田园", "桥路门窗书画", "琴棋茶酒米面", "金银铜铁锡铅",
         "红橙黄绿青蓝", "甲乙丙丁戊己", "子丑寅卯辰巳", "午未申酉戌亥"]
QUERIES = ["一二", "三四", "五六", "七八"]


def equal_lengths(candidates: str = "all") -> Dataset:
    """4 queries, each with an answer and 2 distractors, every document 6 characters."""
    corpus, qrels, kinds = {}, {}, {}
    for i, q in enumerate(QUERIES):
        qid = f"q{i}"
        ids = [f"{qid}-a", f"{qid}-d1", f"{qid}-d2"]
        for j, d in enumerate(ids):
            corpus[d] = WORDS[3 * i + j]
            kinds[d] = "answer" if j == 0 else "topical"
        qrels[qid] = {d: int(j == 0) for j, d in enumerate(ids)}
    queries = {f"q{i}": q for i, q in enumerate(QUERIES)}
    categories = {f"q{i}": "homonym" for i in range(len(QUERIES))}
    return Dataset(DatasetMeta(name=f"equal-{candidates}", candidates=candidates), queries, corpus, qrels, categories, kinds)


class ConstantReranker:
    """A stand-in reranker that scores every pair the same; records what it was given."""

    def __init__(self) -> None:
        self.spec = ModelSpec(name="constant", backend="test")
        self.calls: list[tuple[str, str]] = []

    def score(self, pairs: Sequence[tuple[str, str]], instruction: str | None = None) -> np.ndarray:
        self.calls.extend(pairs)
        return np.full(len(pairs), 0.5)


@pytest.fixture(scope="module")
def run() -> el.Report:
    settings = el.RunSettings(progress=False, isolate=False, repeats=1, throughput_texts=0, timing_texts=8)
    fusions = [Fusion("rrf", ("length", "length-judged")), Fusion("wsum", ("length", "length-judged"), method="wsum")]
    return el.evaluate(["length", "length-judged"], [equal_lengths("all"), equal_lengths("judged")], settings, fusions=fusions)


def test_the_scorer_is_constant(run) -> None:
    for (model, _), scores in run.scores.items():
        if model.startswith("length"):
            assert (scores == scores.flat[0]).all()


def test_run_and_fusion_rows_rank_no_answer_first(run) -> None:
    per_query = run.per_query
    assert set(per_query["model"]) == {"length", "length-judged", "rrf", "wsum"}
    assert len(per_query) == 4 * 2 * len(QUERIES)
    assert (per_query["top1"] == 0).all(), per_query[per_query["top1"] != 0]
    assert (per_query["top1_doc_id"] != per_query["query_id"] + "-a").all()


@pytest.mark.parametrize("k", [1, 2, 3, 12])
def test_rerank_preselection_and_result(k: int) -> None:
    dataset = equal_lengths("judged")
    scores = np.zeros((len(dataset.query_ids), len(dataset.doc_ids)))
    reranker = ConstantReranker()
    table = rerank(dataset, scores, reranker, embedder="length", top_k=k)
    assert (table["top1"] == 0).all()
    answers = {dataset.corpus[f"{q}-a"] for q in dataset.query_ids}
    preselected_answers = sum(doc in answers for _, doc in reranker.calls)
    # a tie at the cut lets an answer in only when every distractor of its query is in already
    assert preselected_answers == (len(dataset.query_ids) if k >= 3 else 0)


def test_top_k_orders_ties_against_the_relevant() -> None:
    dataset = equal_lengths()
    scores = np.ones((len(dataset.query_ids), len(dataset.doc_ids)))
    gains = dataset.gains()
    idx, values = top_k(scores, 1, gains)
    assert (np.take_along_axis(gains, idx, axis=1) == 0).all() and (values == 1).all()
    idx, _ = top_k(scores, len(dataset.doc_ids), gains)
    answers = np.argmax(gains, axis=1)
    assert (idx[:, -1] == answers).all()  # the answer last among the tied
    scores[0, answers[0]] = 2.0  # a real win still comes first
    assert top_k(scores, 1, gains)[0][0, 0] == answers[0]


def test_explore_counts_a_tie_against_the_model(run) -> None:
    from embedlab import explore

    dataset = equal_lengths("all")
    ranked = explore.ranked_documents(run, dataset, "length", "q0", k=3)
    assert ranked.loc[ranked["kind"] == "answer", "rank"].iloc[0] > 1
    query, candidates = explore.trap_candidates(dataset, "q0")
    frame = explore.candidate_scores([get_model("length")], explore.EmbeddingMemo(), query, candidates, "")
    assert set(frame["outcome"]) == {"tie"}


def test_lint_judged_cues_count_ties_against() -> None:
    from embedlab.report.lint import lint

    report = lint(equal_lengths("all"), model=False)
    cues = {c.name: c for c in report.cues}
    assert cues["length-judged"].values["top1"] == 0.0
    assert cues["bm25-judged"].values["top1"] == 0.0  # no query shares a word with a document: BM25 0 everywhere
    assert cues["length"].values["answer_longest_rate"] == 0.0
