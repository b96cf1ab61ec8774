"""BGE-M3's sparse, ColBERT and hybrid modes on a tiny random checkpoint (heads saved as
BAAI/bge-m3 ships them): the transformers path against a reference written here from the
model card's formulas, vLLM against transformers, and the records as rows of a run."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

import embedlab as el
from embedlab.data.datasets import Dataset, DatasetMeta
from embedlab.errors import ConfigError
from embedlab.models import ModelSpec, get_model, spec_from_config
from tests.tiny_models import TEXTS

pytest_plugins = ["tests.conftest_models"]

QUERIES = ["苹果手机", "How do I reset my password?", "银行利率"]
# shared words with the queries (sparse scores differ from 0), repeated tokens (max per token)
CORPUS = [*TEXTS, "苹果苹果苹果手机", "password password reset"]
# conftest_models' small fixed engine settings (float32, 512 tokens, small KV cache, eager)
ENGINE = {"dtype": "float32", "max_model_len": 512, "kv_cache_memory_bytes": 64 * 2**20, "enforce_eager": True}


def m3_spec(folder: Path, mode: str, backend: str = "bge-m3-transformers", **changes) -> ModelSpec:
    return get_model(f"bge-m3-{mode}", path=str(folder), backend=backend, max_tokens=512, **ENGINE, **changes)


def reference(folder: Path, queries: list[str], corpus: list[str], weights=(0.4, 0.2, 0.4)) -> dict[str, np.ndarray]:
    """The model card's scores, one text at a time (no padding) and one pair at a time:
    dense = CLS dot product; sparse = sum over shared ids of max-weight products (CLS, EOS,
    PAD, UNK left out); ColBERT = mean over query vectors (CLS dropped) of the best match;
    hybrid = weighted sum / sum of weights."""
    import torch
    from transformers import AutoTokenizer, XLMRobertaModel

    tokenizer = AutoTokenizer.from_pretrained(folder)
    model = XLMRobertaModel.from_pretrained(folder, dtype=torch.float32).eval()
    hidden = model.config.hidden_size
    sparse_head, colbert_head = torch.nn.Linear(hidden, 1), torch.nn.Linear(hidden, hidden)
    sparse_head.load_state_dict(torch.load(folder / "sparse_linear.pt"))
    colbert_head.load_state_dict(torch.load(folder / "colbert_linear.pt"))
    unused = {tokenizer.cls_token_id, tokenizer.eos_token_id, tokenizer.pad_token_id, tokenizer.unk_token_id} - {None}

    def encode(text: str):
        ids = tokenizer(text, truncation=True, max_length=512, return_tensors="pt")["input_ids"]
        with torch.no_grad():
            h = model(input_ids=ids).last_hidden_state[0]
            dense = torch.nn.functional.normalize(h[0], dim=-1).numpy()
            token_weights = torch.relu(sparse_head(h)).squeeze(-1).numpy()
            colbert = torch.nn.functional.normalize(colbert_head(h[1:]), dim=-1).numpy()
        lexical: dict[int, float] = {}
        for token, w in zip(ids[0].tolist(), token_weights.tolist()):
            if token not in unused and w > 0:
                lexical[token] = max(lexical.get(token, 0.0), w)
        return dense, lexical, colbert

    q_out, d_out = [encode(t) for t in queries], [encode(t) for t in corpus]
    shape = (len(queries), len(corpus))
    dense, sparse, colbert = np.zeros(shape), np.zeros(shape), np.zeros(shape)
    for i, (qd, ql, qc) in enumerate(q_out):
        for j, (dd, dl, dc) in enumerate(d_out):
            dense[i, j] = float(qd @ dd)
            sparse[i, j] = sum(w * dl[t] for t, w in ql.items() if t in dl)
            colbert[i, j] = float((qc @ dc.T).max(axis=1).sum() / len(qc))
    hybrid = (weights[0] * dense + weights[1] * sparse + weights[2] * colbert) / sum(weights)
    return {"dense": dense, "sparse": sparse, "colbert": colbert, "hybrid": hybrid}


@pytest.fixture(scope="module")
def expected(tiny_bge_m3_dir: Path) -> dict[str, np.ndarray]:
    return reference(tiny_bge_m3_dir, QUERIES, CORPUS)


def scores_of(backend, queries=QUERIES, corpus=CORPUS) -> np.ndarray:
    backend.index(corpus)
    return backend.score(queries)


@pytest.mark.parametrize("mode", ["sparse", "colbert", "hybrid"])
def test_transformers_path_matches_the_model_card_formulas(tiny_bge_m3_dir: Path, expected, mode: str) -> None:
    from embedlab.models.backends import load_backend

    backend = load_backend(m3_spec(tiny_bge_m3_dir, mode, batch_size=3))  # batches: padding must not change scores
    got = scores_of(backend)
    assert got.shape == (len(QUERIES), len(CORPUS)) and got.dtype == np.float32
    np.testing.assert_allclose(got, expected[mode], rtol=1e-4, atol=1e-5)
    if mode == "sparse":
        assert (expected["sparse"] > 0).any() and (expected["sparse"] == 0).any(), "the test texts must share some tokens, not all"
    settings = backend.effective_settings()
    assert settings["mode"] == mode and settings["dtype"] == "float32"


def test_hybrid_is_the_weighted_mean_and_weights_come_from_the_config(tiny_bge_m3_dir: Path, expected) -> None:
    from embedlab.models.backends import load_backend

    weights = [0.7, 0.1, 0.2]
    spec = spec_from_config({"name": "m3-mix", "model": "bge-m3-hybrid", "path": str(tiny_bge_m3_dir), "backend": "bge-m3-transformers", "weights": weights, "max_tokens": 512})
    assert spec.options["weights"] == weights and spec.lexical
    got = scores_of(load_backend(spec))
    by_hand = (0.7 * expected["dense"] + 0.1 * expected["sparse"] + 0.2 * expected["colbert"]) / 1.0
    np.testing.assert_allclose(got, by_hand, rtol=1e-4, atol=1e-5)
    assert not np.allclose(got, expected["hybrid"], atol=1e-3), "other weights must give other scores"


def test_records_and_bad_options(tiny_bge_m3_dir: Path) -> None:
    from embedlab.models.backends import load_backend
    from embedlab.models.backends.bge_m3 import BGEM3VLLMBackend, hybrid_weights

    for mode in ("sparse", "colbert", "hybrid"):
        record = get_model(f"bge-m3-{mode}")
        assert record.lexical and record.options["mode"] == mode and record.path == "BAAI/bge-m3"
        assert record.backend_target.endswith(":BGEM3VLLMBackend")
    assert hybrid_weights(get_model("bge-m3-hybrid")) == (0.4, 0.2, 0.4)
    assert get_model("bge-m3").backend == "vllm" and not get_model("bge-m3").lexical  # dense row unchanged
    for bad in ([1, 2], [0, 0, 0], [-1, 1, 1], "0.4,0.2,0.4"):
        with pytest.raises(ConfigError, match="'weights'"):
            hybrid_weights(get_model("bge-m3-hybrid", weights=bad))
    with pytest.raises(ConfigError, match="'mode'"):
        load_backend(m3_spec(tiny_bge_m3_dir, "sparse").with_options(mode="dense"))
    missing = tiny_bge_m3_dir.parent / "no-heads"
    missing.mkdir(exist_ok=True)
    for name in ("config.json", "tokenizer.json", "tokenizer_config.json", "model.safetensors", "sparse_linear.pt"):
        target = missing / name
        if not target.exists():
            target.symlink_to(tiny_bge_m3_dir / name)
    with pytest.raises(ConfigError, match="colbert_linear.pt is missing"):
        load_backend(m3_spec(missing, "hybrid"))
    with pytest.raises(ConfigError, match="colbert_linear.pt is missing"):
        BGEM3VLLMBackend(m3_spec(missing, "colbert", backend="bge-m3-vllm"))  # before any engine starts


def test_modes_are_rows_of_their_own_in_evaluate(tiny_bge_m3_dir: Path, expected) -> None:
    corpus = {f"d{i}": text for i, text in enumerate(CORPUS)}
    queries = {f"q{i}": text for i, text in enumerate(QUERIES)}
    qrels = {"q0": {"d6": 1, "d0": 0}, "q1": {"d7": 1, "d2": 0}, "q2": {"d5": 1, "d3": 0}}
    dataset = Dataset(DatasetMeta(name="m3-tiny"), queries, corpus, qrels, {q: "homonym" for q in queries}, {d: "answer" for d in corpus})
    specs = [m3_spec(tiny_bge_m3_dir, mode) for mode in ("sparse", "colbert", "hybrid")]
    settings = el.RunSettings(repeats=1, timing_texts=4, warmup_texts=2, throughput_texts=0, isolate=False, progress=False)
    report = el.evaluate(specs, [dataset], settings)
    assert set(report.runs["model"]) == {"bge-m3-sparse", "bge-m3-colbert", "bge-m3-hybrid"}
    assert (report.runs["status"] == "ok").all(), report.runs[["model", "error"]].to_dict("records")
    for mode in ("sparse", "colbert", "hybrid"):
        np.testing.assert_allclose(report.scores[(f"bge-m3-{mode}", "m3-tiny")], expected[mode], rtol=1e-4, atol=1e-5)


@pytest.fixture(scope="module")
def vllm_hybrid(tiny_bge_m3_dir: Path):
    pytest.importorskip("vllm")
    from embedlab.models.backends import load_backend

    return load_backend(m3_spec(tiny_bge_m3_dir, "hybrid", backend="bge-m3-vllm"))


def test_vllm_agrees_with_transformers_in_every_mode(tiny_bge_m3_dir: Path, vllm_hybrid) -> None:
    from embedlab.models.backends import load_backend

    fp32 = {"rtol": 1e-4, "atol": 1e-5}
    hf = load_backend(m3_spec(tiny_bge_m3_dir, "hybrid"))
    q_hf, q_vllm = hf.encode_outputs(QUERIES, "query"), vllm_hybrid.encode_outputs(QUERIES, "query")
    np.testing.assert_allclose(q_vllm.dense, q_hf.dense, **fp32)
    for a, b in zip(q_vllm.sparse, q_hf.sparse):
        assert a.keys() == b.keys()
        np.testing.assert_allclose([a[t] for t in b], list(b.values()), **fp32)
    for a, b in zip(q_vllm.colbert, q_hf.colbert):
        np.testing.assert_allclose(a, b, **fp32)
    np.testing.assert_allclose(scores_of(vllm_hybrid), scores_of(hf), **fp32)
    assert vllm_hybrid.effective_settings()["engine"].startswith("vllm") and vllm_hybrid.memory_report()["engines"] == 2
    # sparse alone runs on vLLM's token_classify task (one engine)
    sparse = load_backend(m3_spec(tiny_bge_m3_dir, "sparse", backend="bge-m3-vllm"))
    hf.mode, hf.weights = "sparse", None
    np.testing.assert_allclose(scores_of(sparse), scores_of(hf), **fp32)
