"""The rerank stage: the documented Qwen3-Reranker prompt, the log-odds of "yes" through vLLM
and transformers agreeing on a tiny random reranker (also where P("yes") saturates at 1.0 in
float32 and would tie), and the reranked rows of an embedder's top-k reported as their own
model."""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

import numpy as np
import pytest

import embedlab as el
from embedlab.models import ModelSpec
from embedlab.evaluation.rerank import rerank, rerank_scores
from embedlab.models.rerank import QWEN3_RERANK_PREFIX, QWEN3_RERANK_SUFFIX, get_reranker, rerank_prompt
from embedlab.evaluation.scoring import per_query_table

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


def test_transformers_reranker_builds_the_prompt_ids(reranker_transformers) -> None:
    ids = reranker_transformers.token_ids(PAIRS[:1], "判断相关性")
    tokenizer = reranker_transformers._tokenizer
    assert tokenizer.decode(ids[0]) == rerank_prompt(*PAIRS[0], "判断相关性")


def test_vllm_and_transformers_rerankers_agree(reranker_vllm, reranker_transformers) -> None:
    ours = reranker_vllm.score(PAIRS)
    reference = reranker_transformers.score(PAIRS)
    assert ours.shape == (len(PAIRS),) and np.isfinite(ours).all() and ours.dtype == np.float64
    np.testing.assert_allclose(ours, reference, rtol=1e-4, atol=1e-4)
    assert np.ptp(reference) > 1e-3  # the pairs get different scores
    assert reranker_vllm.token_ids(PAIRS, None) == reranker_transformers.token_ids(PAIRS, None)


# ---- prefix caching: the rerank latency repeats the same pairs ----

def test_vllm_reranker_reads_nothing_from_the_prefix_cache(reranker_vllm) -> None:
    """Every Qwen3-Reranker prompt starts with the same system prefix and a repeated pair is
    the same prompt again: with vLLM's default prefix caching the repeats would be read
    from cached blocks. Off: nothing is read, and the setting says so. (Placed before any test
    that builds and drops a second engine in this process: vLLM's teardown of one in-process
    engine leaves the others without their parallel groups.)"""
    long_pairs = [("天气怎么样", "今天是晴天，气温二十度。" * 30), ("苹果公司的新手机", "我今天吃了一个苹果。" * 30)]
    block = reranker_vllm._llm.llm_engine.vllm_config.cache_config.block_size
    assert min(len(ids) for ids in reranker_vllm.token_ids(long_pairs)) >= 2 * block
    first = reranker_vllm.score(long_pairs)
    for _ in range(2):
        np.testing.assert_allclose(reranker_vllm.score(long_pairs), first, rtol=1e-6)
    assert reranker_vllm.prefix_cache_hit_tokens == 0
    assert reranker_vllm.effective_settings()["prefix_caching"] is False and reranker_vllm.facts["prefix_caching"] is False


class AnswerFinder:
    """A stand-in reranker: `hit` for a document that is relevant to the query, else `miss`."""

    def __init__(self, dataset: el.Dataset, hit: float = 1.0, miss: float = 0.5) -> None:
        self.spec = ModelSpec(name="oracle", backend="test")
        self.relevant = {(dataset.queries[q], dataset.corpus[d]) for q, docs in dataset.qrels.items() for d, g in docs.items() if g > 0}
        self.calls: list[tuple[str, str]] = []
        self.hit, self.miss = hit, miss

    def score(self, pairs: Sequence[tuple[str, str]], instruction: str | None = None) -> np.ndarray:
        self.calls.extend(pairs)
        return np.array([self.hit if pair in self.relevant else self.miss for pair in pairs], dtype=np.float64)


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


@pytest.mark.parametrize(("hit", "miss"), [(1.0, 0.5), (-3.0, -40.0), (250.0, 90.0)])
def test_rerank_scores_keep_the_first_stage_order_below_the_top_k(hit: float, miss: float) -> None:
    """Log-odds can have any sign and size: the documents outside the top k stay below."""
    dataset = el.load_dataset("seed")
    scores = np.tile(np.arange(len(dataset.doc_ids), dtype=float), (len(dataset.query_ids), 1))
    new = rerank_scores(dataset, scores, AnswerFinder(dataset, hit, miss), top_k=3)
    top = np.argsort(-scores[0])[:3]
    rest = np.setdiff1d(np.arange(len(dataset.doc_ids)), top)
    assert set(np.unique(new[0, top])) <= {hit, miss} and new[0, rest].max() < new[0, top].min()
    assert (np.argsort(-new[0, rest]) == np.argsort(-scores[0, rest])).all()
    with pytest.raises(ValueError, match="shape"):
        rerank_scores(dataset, scores[:, :3], AnswerFinder(dataset))


def test_non_finite_reranker_scores_are_refused() -> None:
    dataset = el.load_dataset("seed")
    scores = np.random.default_rng(0).normal(size=(len(dataset.query_ids), len(dataset.doc_ids)))
    with pytest.raises(ValueError, match="non-finite"):
        rerank_scores(dataset, scores, AnswerFinder(dataset, hit=np.nan), top_k=len(dataset.doc_ids))


def test_rerank_with_the_tiny_reranker_over_bm25(reranker_vllm) -> None:
    report = el.evaluate(["bm25"], ["seed"], el.RunSettings(progress=False, isolate=False, repeats=5, throughput_texts=0))
    from embedlab.evaluation.rerank import rerank_report

    dataset = el.load_dataset("seed")
    table = rerank_report(report, dataset, reranker_vllm, "bm25", top_k=3)
    assert set(table["model"]) == {"bm25+qwen3-reranker-0.6b"}
    assert len(table) == len(dataset.query_ids)
    assert table["rank"].min() >= 1


# ---- a confident reranker: P("yes") rounds to 1.0 in float32, the log-odds still orders ----

@pytest.fixture(scope="module")
def confident_reranker(tiny_reranker_dir: Path, reranker_spec: ModelSpec, tmp_path_factory: pytest.TempPathFactory):
    """The tiny reranker with its "yes" row of lm_head moved so that every pair of PAIRS gets
    a log-odds of at least 40 (P("yes") = 1.0 in float32), different per pair. Returns the
    spec and the log-odds expected from the construction (float64)."""
    import torch
    from transformers import AutoModelForCausalLM, AutoTokenizer

    from embedlab.models.rerank import load_reranker

    tokenizer = AutoTokenizer.from_pretrained(tiny_reranker_dir)
    model = AutoModelForCausalLM.from_pretrained(tiny_reranker_dir, dtype=torch.float32).eval()
    ids = load_reranker(reranker_spec.with_options(backend="transformers")).token_ids(PAIRS)
    with torch.no_grad():
        last = torch.stack([model.model(torch.tensor([seq])).last_hidden_state[0, -1] for seq in ids]).double()
        direction = last.mean(0)
        base = last @ direction
        assert (base > 0).all(), "the construction needs a common direction"
        u = direction * (40.0 / base.min())
        yes, no = tokenizer.convert_tokens_to_ids("yes"), tokenizer.convert_tokens_to_ids("no")
        head = model.model.embed_tokens.weight.detach().clone()  # untie: lm_head gets its own rows
        head[yes] = head[no] + u.float()
        model.config.tie_word_embeddings = False
        model.lm_head.weight = torch.nn.Parameter(head)
    out = tmp_path_factory.mktemp("confident-reranker") / "model"
    model.save_pretrained(out, safe_serialization=True)
    tokenizer.save_pretrained(out)
    return reranker_spec.with_options(path=str(out)), (last @ u).numpy()


def test_log_odds_order_documents_where_p_yes_saturates(confident_reranker) -> None:
    from embedlab.models.rerank import load_reranker

    spec, expected = confident_reranker
    scores = load_reranker(spec.with_options(backend="transformers", batch_size=4)).score(PAIRS)
    p_yes = 1.0 / (1.0 + np.exp(-scores.astype(np.float32)))
    assert (p_yes == np.float32(1.0)).all(), "the construction must saturate P(yes) in float32"
    assert len(np.unique(scores)) == len(PAIRS), "the log-odds must not tie"
    assert (np.argsort(scores) == np.argsort(expected)).all()
    np.testing.assert_allclose(scores, expected, rtol=1e-4)


def test_vllm_log_odds_order_documents_where_p_yes_saturates(confident_reranker) -> None:
    from embedlab.models.rerank import load_reranker

    spec, expected = confident_reranker
    reranker = load_reranker(spec.with_options(backend="vllm"))
    scores = reranker.score(PAIRS)
    assert (scores > 20).all() and len(np.unique(scores)) == len(PAIRS)
    assert (np.argsort(scores) == np.argsort(expected)).all()
    np.testing.assert_allclose(scores, expected, rtol=1e-3)
    settings = reranker.effective_settings()
    assert settings["max_length"] == 512 and settings["dtype"] == "float32"


# ---- bge-reranker-v2-m3: an XLM-RoBERTa cross-encoder, its raw logit ----

def test_bge_reranker_record_is_the_card_usage() -> None:
    from embedlab.errors import UnknownNameError
    from embedlab.models.rerank import load_reranker, scorer_of

    spec = get_reranker("bge-reranker-v2-m3")
    assert spec.path == "BAAI/bge-reranker-v2-m3" and spec.max_tokens == 512 and not spec.default_instruction
    assert scorer_of(spec) == "cross-encoder" and scorer_of(get_reranker("qwen3-reranker-0.6b")) == "qwen3"
    assert scorer_of(spec.with_options(backend="transformers")) == "cross-encoder"
    with pytest.raises(UnknownNameError, match="options.scorer must be one of"):
        load_reranker(spec.with_options(scorer="listwise"))


@pytest.fixture(scope="module")
def bge_reranker_spec(tiny_bge_reranker_dir: Path) -> ModelSpec:
    from tests.conftest_models import VLLM_TEST_OPTIONS

    return get_reranker("bge-reranker-v2-m3", path=str(tiny_bge_reranker_dir), **VLLM_TEST_OPTIONS)


@pytest.fixture(scope="module")
def bge_reranker_transformers(bge_reranker_spec: ModelSpec):
    from embedlab.models.rerank import load_reranker

    return load_reranker(bge_reranker_spec.with_options(backend="transformers", batch_size=3))


def test_bge_reranker_pairs_are_framed_and_truncated_as_the_card_does(bge_reranker_transformers) -> None:
    from tests.tiny_models import BGE_M3_CLS, BGE_M3_EOS

    tokenizer = bge_reranker_transformers._tokenizer
    ids = bge_reranker_transformers.token_ids(PAIRS[:1], "ignored: no instruction")
    assert tokenizer.decode(ids[0]) == f"{BGE_M3_CLS}{PAIRS[0][0]}{BGE_M3_EOS}{BGE_M3_EOS}{PAIRS[0][1]}{BGE_M3_EOS}"
    assert ids == [tokenizer(PAIRS[0][0], PAIRS[0][1], truncation=True, max_length=512)["input_ids"]]
    long_ids = bge_reranker_transformers.token_ids([("问题" * 400, "文档" * 400)])[0]
    assert len(long_ids) == 512 and long_ids[0] == tokenizer.cls_token_id and long_ids[-1] == tokenizer.eos_token_id


def test_bge_reranker_vllm_and_transformers_agree(bge_reranker_spec: ModelSpec, bge_reranker_transformers) -> None:
    from embedlab.models.rerank import load_reranker

    reranker = load_reranker(bge_reranker_spec.with_options(backend="vllm"))
    ours, reference = reranker.score(PAIRS), bge_reranker_transformers.score(PAIRS)
    assert ours.shape == (len(PAIRS),) and ours.dtype == np.float64 and np.isfinite(ours).all()
    np.testing.assert_allclose(ours, reference, rtol=1e-4, atol=1e-5)
    assert np.ptp(reference) > 1e-3  # the pairs get different scores
    assert (reference < 0).any() and (reference > 0).any()  # raw logits, not a sigmoid in (0, 1)
    assert reranker.token_ids(PAIRS) == bge_reranker_transformers.token_ids(PAIRS)
    settings = reranker.effective_settings()
    assert settings["pooling"] == bge_reranker_transformers.effective_settings()["pooling"] == "cls"
    assert settings["max_length"] == 512 and settings["dtype"] == "float32" and settings["prefix_caching"] is False
    assert reranker.facts["kv_cache_note"] == "encoder-only: no KV cache"
