"""The runner's robustness and its measurement columns: a worker that hangs, crashes or
returns NaN is a failed row with a one-line reason; a run where every model fails still
writes its report; GPU columns are always there (empty on CPU) beside host RSS; the CLI
merges --config with -m/-d/--backend."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd
import pytest

import embedlab as el
from embedlab.models import ModelSpec
from embedlab.run.probe import resolve_visible_device
from embedlab.run.runner import RUN_COLUMNS
from tests.fake_encoders import fake_spec

ROOT = Path(__file__).resolve().parents[1]
GPU_COLUMNS = ["gpu_mem_before_gib", "gpu_mem_load_gib", "gpu_mem_peak_gib", "gpu_mem_source", "gpu_device", "weights_gib", "kv_cache_gib"]




# ---- which GPU NVML should read ---------------------------------------------------------
DEVICES = [
    {"uuid": "GPU-aaaa-0000", "pci_bus_id": "00000000:01:00.0"},
    {"uuid": "GPU-bbbb-1111", "pci_bus_id": "00000000:41:00.0"},
    {"uuid": "GPU-cccc-2222", "pci_bus_id": "00000000:81:00.0"},
]


@pytest.mark.parametrize(
    ("visible", "order", "torch_uuid", "override", "expected"),
    [
        (None, None, None, None, 0),
        ("2", "PCI_BUS_ID", None, None, 2),
        ("2,0", "PCI_BUS_ID", None, None, 2),  # the first visible device is this process's cuda:0
        ("1", None, "GPU-cccc-2222", None, 2),  # torch's own UUID beats an ambiguous index
        ("GPU-bbbb", None, None, None, 1),  # a unique UUID prefix, as CUDA accepts
        ("GPU-cccc-2222,GPU-aaaa-0000", None, None, None, 2),
        ("0", "PCI_BUS_ID", None, "GPU-bbbb-1111", 1),  # EMBEDLAB_GPU wins
        ("0", None, None, "2", 2),
    ],
)
def test_resolve_visible_device(visible, order, torch_uuid, override, expected) -> None:
    index, how = resolve_visible_device(DEVICES, visible, order, torch_uuid, override)
    assert index == expected and how


def test_resolve_visible_device_refuses_what_it_cannot_know() -> None:
    assert resolve_visible_device(DEVICES, "") is None  # CUDA_VISIBLE_DEVICES="" hides every GPU
    assert resolve_visible_device(DEVICES, "-1") is None
    assert resolve_visible_device([], "0") is None
    with pytest.raises(ValueError, match="matches 0"):
        resolve_visible_device(DEVICES, "GPU-ffff")
    with pytest.raises(ValueError, match="only 3"):
        resolve_visible_device(DEVICES, "5", "PCI_BUS_ID")
    index, how = resolve_visible_device(DEVICES, "1")
    assert index == 1 and "assumed" in how  # said, not silently trusted


def test_throughput_is_timed_on_a_second_identical_call_of_all_its_texts() -> None:
    """Steady state: the backend gets every throughput text in one call, once untimed and
    once timed (a fresh worker's first pass read 5x low on an H200)."""
    from embedlab.run.runner import run_model
    from embedlab.types import EncodeTask
    from tests.fake_encoders import FakeEncoder

    task = EncodeTask("t", queries=["问题一", "问题二"], documents=[f"文档{i}" for i in range(20)], instruction="find it")
    FakeEncoder.sizes.clear()
    settings = el.RunSettings(progress=False, isolate=False, repeats=1, timing_texts=4, throughput_texts=300, batch_size=64)
    outcome = run_model(fake_spec("fake"), [task], settings)
    assert outcome.status == "ok", outcome.error
    assert FakeEncoder.sizes[-2:] == [300, 300] and outcome.throughput_texts_per_s > 0


def test_gpu_load_memory_subtracts_readings_of_one_kind() -> None:
    """Seen on an H200 (gpu_smoke, 2026-11-27): before load NVML did not list the fresh
    worker (process reading None) while the device showed 0.60 GiB, the parent's CUDA
    context; after load the worker held 1.64 GiB. Subtracting the device reading from the
    process one gave 1.03 GiB for 1.11 GiB of weights."""
    from embedlab.run.runner import _gpu_reading

    before, after = (None, 0.6038), (1.6387, 2.2425)
    assert _gpu_reading(before, "process") == 0.0
    assert _gpu_reading(after, "process") - _gpu_reading(before, "process") == pytest.approx(1.6387)
    assert _gpu_reading(after, "device") - _gpu_reading(before, "device") == pytest.approx(1.6387)
    assert np.isnan(_gpu_reading(None, "process")) and np.isnan(_gpu_reading((None, None), "device"))


def test_memory_sampler_on_cpu_has_no_gpu_figures() -> None:
    from embedlab.run.probe import MemorySampler

    with MemorySampler() as sampler:
        assert sampler.device is None and sampler.gpu_readings() is None
    assert sampler.rss_peak_gib > 0 and sampler.device_peak_gib is None


# ---- failures become rows, never hangs or tracebacks -----------------------------------
@pytest.mark.integration
def test_hung_crashed_and_overflowing_models_fail_with_a_reason_and_the_others_finish() -> None:
    models = [
        ModelSpec(name="hangs", backend="tests.crashing_backend:HangingBackend"),
        ModelSpec(name="noisy-crash", backend="tests.crashing_backend:NoisyCrashBackend"),
        ModelSpec(name="overflow", backend="tests.crashing_backend:OverflowEncoder"),
        fake_spec("fake"),
    ]
    settings = el.RunSettings(progress=False, repeats=1, throughput_texts=0, isolate=True, timeout_s=8)
    report = el.evaluate(models, ["seed"], settings)
    runs = report.runs.set_index("model")
    assert runs.loc["hangs", "status"] == "failed"
    assert "timed out after 8 s" in runs.loc["hangs", "error"] and "never frees up" in runs.loc["hangs", "error"]
    noisy = runs.loc["noisy-crash", "error"]
    assert "crashed (exit code 1)" in noisy and "CUDA out of memory" in noisy and "\n" not in noisy
    assert runs.loc["overflow", "status"] == "failed" and "NaN or inf" in runs.loc["overflow", "error"]
    assert runs.loc["fake", "status"] == "ok"
    assert set(report.per_query["model"]) == {"fake"}  # nothing of a failed model is ranked
    import psutil

    assert not [p for p in psutil.Process().children(recursive=True) if "embedlab.run.worker" in " ".join(p.cmdline())]


def test_non_finite_scores_are_never_ranked() -> None:
    """Scores reaching the metrics with a NaN (e.g. from a cache written before the check)
    fail that row instead of counting NaN as a hit."""
    from embedlab.evaluation.scoring import per_query_table

    ds = el.load_dataset("seed")
    scores = np.zeros((len(ds.query_ids), len(ds.doc_ids)), dtype=np.float32)
    scores[0, :] = np.nan
    with pytest.raises(ValueError, match="finite"):
        per_query_table(ds, "nan-model", scores=scores)


def test_every_model_failing_gives_a_failed_row_and_no_traceback(embedlab_cli, tmp_path: Path) -> None:
    """The issue's reproduction: USE has no MRL, so --dimensions 64 fails its only model."""
    proc = embedlab_cli("run", "-m", "use-multilingual-v3", "-d", "seed", "--dimensions", "64", "--out", "x", cwd=tmp_path)
    assert proc.returncode == 1, proc.stderr[-2000:]
    assert "Traceback" not in proc.stderr and "Traceback" not in proc.stdout
    failed = [line for line in proc.stderr.splitlines() if line.startswith("FAILED use-multilingual-v3:")]
    assert len(failed) == 1 and "MRL" in failed[0]
    summary = pd.read_csv(tmp_path / "x" / "summary.csv")
    assert list(summary["status"]) == ["failed"]
    for column in [*GPU_COLUMNS, "host_rss_peak_gib", "max_length", "dtype"]:
        assert column in summary.columns
    report = (tmp_path / "x" / "report.md").read_text(encoding="utf-8")
    assert "No model produced results" in report and "use-multilingual-v3 on seed" in report


def test_cpu_run_has_empty_gpu_columns_and_names_host_rss(tmp_path: Path) -> None:
    report = el.evaluate([fake_spec("fake")], ["seed"], el.RunSettings(progress=False, repeats=1, throughput_texts=0, isolate=True))
    report.to_dir(tmp_path)
    summary = pd.read_csv(tmp_path / "summary.csv")
    assert set(RUN_COLUMNS) - {"error", "kv_cache_note", "backend"} <= set(summary.columns) | {"warmup_s", "host_rss_before_gib", "host_rss_after_load_gib", "gpu_mem_after_load_gib", "throughput_tokens_per_s"}
    for column in GPU_COLUMNS:
        assert summary[column].isna().all(), column  # no GPU here: empty, never a made-up number
    assert (summary["host_rss_peak_gib"] > 0).all()
    assert "peak_mem_gib" not in summary.columns
    text = (tmp_path / "report.md").read_text(encoding="utf-8")
    assert "host RSS, CPU run" in text


def test_config_takes_command_line_models_datasets_and_backend(tmp_path: Path) -> None:
    from embedlab.cli import select
    from embedlab.run.config import load_config

    config = tmp_path / "run.yaml"
    config.write_text(
        "models:\n  - name: e5-long\n    model: multilingual-e5-small\n    max_length: 128\n  - bm25\n"
        "datasets: [seed, traps-zh]\nout: results/x\n",
        encoding="utf-8",
    )
    cfg = load_config(config)
    picked = select(cfg, ["e5-long", "use-multilingual-v3"], ["seed"], None)
    assert [s.name for s in picked.models] == ["e5-long", "use-multilingual-v3"]
    assert picked.models[0].options["max_length"] == 128  # the config's entry, not a bare record
    assert picked.datasets == ["seed"] and picked.out == "results/x"
    assert select(cfg, None, None, None).datasets == ["seed", "traps-zh"]
    assert {s.backend for s in select(cfg, None, None, "st").models} == {"st"}
