"""The rerank stage: the documented Qwen3-Reranker prompt, P("yes") through vLLM and
transformers agreeing on a tiny random reranker, and the reranked rows of an embedder's
top-k reported as their own model."""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
import pytest

import embedlab as el
from embedlab.models import ModelSpec
from embedlab.rerank import QWEN3_RERANK_PREFIX, QWEN3_RERANK_SUFFIX, get_reranker, rerank, rerank_prompt, rerank_scores
from embedlab.scoring import per_query_table

pytest_plugins = ["tests.conftest_models"]

PAIRS = [
    ("天气怎么样", "今天是晴天，气温二十度"),
    ("苹果公司的新手机", "我今天吃了一个苹果"),
    ("How do I reset my password?", "Click 'forgot password' on the sign-in page and follow the link in the e-mail."),
    ("a", "b"),
]


def test_prompt_is_the_documented_one() -> None:
    text = rerank_prompt("什么是MRL", "MRL 是一种嵌入截断方法", "Given a web search query, retrieve relevant passages that answer the query")
    assert text == (
        "<|im_start|>system\nJudge whether the Document meets the requirements based on the Query and the Instruct "
        'provided. Note that the answer can only be "yes" or "no".<|im_end|>\n<|im_start|>user\n'
        "<Instruct>: Given a web search query, retrieve relevant passages that answer the query\n"
        "<Query>: 什么是MRL\n<Document>: MRL 是一种嵌入截断方法"
        "<|im_end|>\n<|im_start|>assistant\n<think>\n\n</think>\n\n"
    )
    assert text.startswith(QWEN3_RERANK_PREFIX) and text.endswith(QWEN3_RERANK_SUFFIX)
    assert get_reranker("Qwen3-Reranker-4B").path == "Qwen/Qwen3-Reranker-4B"


@pytest.mark.st
def test_transformers_reranker_builds_the_prompt_ids(reranker_transformers) -> None:
    ids = reranker_transformers.token_ids(PAIRS[:1], "判断相关性")
    tokenizer = reranker_transformers._tokenizer
    assert tokenizer.decode(ids[0]) == rerank_prompt(*PAIRS[0], "判断相关性")


@pytest.mark.vllm
@pytest.mark.st
def test_vllm_and_transformers_rerankers_agree(reranker_vllm, reranker_transformers) -> None:
    ours = reranker_vllm.score(PAIRS)
    reference = reranker_transformers.score(PAIRS)
    assert ours.shape == (len(PAIRS),) and ((ours > 0) & (ours < 1)).all()
    np.testing.assert_allclose(ours, reference, atol=1e-4)
    assert np.ptp(reference) > 1e-3  # the pairs get different scores
    assert reranker_vllm.token_ids(PAIRS, None) == reranker_transformers.token_ids(PAIRS, None)


class AnswerFinder:
    """A stand-in reranker: 1 for a document that is relevant to the query, else 0.5."""

    def __init__(self, dataset: el.Dataset) -> None:
        self.spec = ModelSpec(name="oracle", backend="test")
        self.relevant = {(dataset.queries[q], dataset.corpus[d]) for q, docs in dataset.qrels.items() for d, g in docs.items() if g > 0}
        self.calls: list[tuple[str, str]] = []

    def score(self, pairs: Sequence[tuple[str, str]], instruction: str | None = None) -> np.ndarray:
        self.calls.extend(pairs)
        return np.array([1.0 if pair in self.relevant else 0.5 for pair in pairs], dtype=np.float32)


def test_rerank_reorders_the_top_k_and_reports_rows() -> None:
    dataset = el.load_dataset("seed")
    n_q, n_d = len(dataset.query_ids), len(dataset.doc_ids)
    scores = np.random.default_rng(0).normal(size=(n_q, n_d))
    finder = AnswerFinder(dataset)
    table = rerank(dataset, scores, finder, embedder="random", top_k=5)
    base = per_query_table(dataset, "random", scores=scores)
    assert list(table.columns) == list(base.columns)
    assert set(table["model"]) == {"random+oracle"} and len(table) == n_q
    assert len(finder.calls) == 5 * n_q
    # an oracle over the top 5 puts the answer first whenever the first stage had it in its top 5
    assert (table.loc[base["rank"].to_numpy() <= 5, "rank"] == 1).all()
    assert (table.loc[base["rank"].to_numpy() > 5, "rank"].to_numpy() == base.loc[base["rank"] > 5, "rank"].to_numpy()).all()
    assert table.attrs["top_k"] == 5 and table.attrs["n_reranked"] == 5 * n_q


def test_rerank_scores_keep_the_first_stage_order_below_the_top_k() -> None:
    dataset = el.load_dataset("seed")
    scores = np.tile(np.arange(len(dataset.doc_ids), dtype=float), (len(dataset.query_ids), 1))
    new = rerank_scores(dataset, scores, AnswerFinder(dataset), top_k=3)
    top = np.argsort(-scores[0])[:3]
    rest = np.setdiff1d(np.arange(len(dataset.doc_ids)), top)
    assert new[0, top].min() >= 0.5 and new[0, rest].max() <= -1.0
    assert (np.argsort(-new[0, rest]) == np.argsort(-scores[0, rest])).all()
    with pytest.raises(ValueError, match="shape"):
        rerank_scores(dataset, scores[:, :3], AnswerFinder(dataset))


@pytest.mark.vllm
def test_rerank_with_the_tiny_reranker_over_bm25(reranker_vllm) -> None:
    report = el.evaluate(["bm25"], ["seed"], el.RunSettings(progress=False, isolate=False, repeats=5, throughput_texts=0))
    from embedlab.rerank import rerank_report

    dataset = el.load_dataset("seed")
    table = rerank_report(report, dataset, reranker_vllm, "bm25", top_k=3)
    assert set(table["model"]) == {"bm25+qwen3-reranker-0.6b"}
    assert len(table) == len(dataset.query_ids)
    assert table["rank"].min() >= 1
