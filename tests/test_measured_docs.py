"""GPU memory names: the article's measure is compared with ours like with like, and every
memory column a run writes is in docs/measurement.md's table saying what it includes."""

from __future__ import annotations

import re
from pathlib import Path

import pandas as pd
import pytest

from embedlab.evaluation.results import MEMORY_COLUMNS, Report
from embedlab.report import measured
from embedlab.run.runner import RUN_COLUMNS

ROOT = Path(__file__).resolve().parents[1]
TABLE_HEADER = "| column | what it measures | CUDA context | KV cache | CUDA graphs | profiling batch | comparable to the article |"


def _doc_table() -> dict[str, list[str]]:
    text = (ROOT / "docs" / "measurement.md").read_text(encoding="utf-8")
    assert TABLE_HEADER in text
    rows = {}
    for line in text[text.index(TABLE_HEADER):].splitlines()[2:]:
        if not line.startswith("|"):
            break
        cells = [c.strip() for c in line.strip("|").split("|")]
        rows[cells[0].strip("`")] = cells[1:]
    return rows


def test_every_memory_column_is_in_the_measurement_table() -> None:
    table = _doc_table()
    written = {c for c in (*RUN_COLUMNS, *MEMORY_COLUMNS, *measured.GPU_MEMORY_MEASURES) if c.endswith("_gib") and not c.startswith("host_rss")}
    written -= {"gpu_mem_before_gib", "gpu_mem_after_load_gib"}  # the two readings gpu_mem_load_gib subtracts
    written |= {"torch_max_allocated_start_gib", "torch_max_allocated_gib", "torch_max_reserved_gib", "kv_cache_reserved_gib"}
    assert written <= set(table), written - set(table)
    assert all(len(cells) == 6 and all(cells) for cells in table.values())
    # exactly one column is the article's measure, and it is the one measured.py compares with
    comparable = [c for c, cells in table.items() if cells[-1].startswith("yes")]
    assert comparable == [measured.ARTICLE_MEASURE] == ["torch_allocated_load_gib"]
    assert table["gpu_mem_load_gib"][1] == "yes" and table[measured.ARTICLE_MEASURE][1] == "no"  # CUDA context


def test_the_memory_note_compares_the_article_with_torch_allocated() -> None:
    nan = float("nan")
    runs = pd.DataFrame([{
        "model": "qwen3-embedding-0.6b", "dataset": "seed", "status": "ok", "backend": "transformers",
        "weights_gib": 1.11, "torch_allocated_load_gib": 1.12, "gpu_mem_load_gib": 1.64, "gpu_mem_peak_gib": 1.9,
        "gpu_mem_source": "process", "gpu_device": "NVIDIA H200 (nvml 0, GPU-1)", "kv_cache_gib": nan, "kv_cache_note": "no KV cache",
    }])
    report = Report(pd.DataFrame(columns=["model", "dataset", "query_id", "top1"]), runs, config={"models": [{"name": "qwen3-embedding-0.6b", "params_m": 596}]})
    frame = measured.memory_frame(report)
    values = frame[frame["source"] == measured.MEASURED_LABEL].set_index("measure")["value_gib"]
    assert values[measured.GPU_MEMORY_MEASURES["torch_allocated_load_gib"]] == pytest.approx(1.12)
    assert "the article's measure" in measured.GPU_MEMORY_MEASURES["torch_allocated_load_gib"]
    assert "CUDA context included" in measured.GPU_MEMORY_MEASURES["gpu_mem_load_gib"]
    note = measured.memory_note(frame)
    assert re.search(r"compare them with `torch allocated`", note) and "larger by construction" in note
