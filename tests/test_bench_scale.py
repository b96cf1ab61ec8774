"""benchmarks/bench_scale.py runs end to end at a tiny --scale and writes its JSON (each
variant in its own subprocess); no assertion on time, only that the figures are there and
both sides found the same answers."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]


@pytest.mark.integration
def test_bench_scale_tiny_run_writes_its_json(tmp_path: Path) -> None:
    pytest.importorskip("faiss")
    out = tmp_path / "bench.json"
    proc = subprocess.run(
        [sys.executable, str(ROOT / "benchmarks" / "bench_scale.py"), "--scale", "0.002", "--parts", "a,b", "--out", str(out)],
        capture_output=True, text=True, cwd=ROOT, timeout=900, check=False,
    )
    assert proc.returncode == 0, proc.stderr[-3000:]
    result = json.loads(out.read_text(encoding="utf-8"))
    a, b = result["parts"]["a"], result["parts"]["b"]
    for part in (a, b):
        for side in ("embedlab", "baseline"):
            assert part[side]["wall_s"] > 0 and part[side]["peak_rss_gib"] > 0
        assert part["time_ratio"] > 0
    assert a["embedlab"]["streamed"] is False  # tiny: the matrix fits keep_scores
    assert a["embedlab"]["top1"] == pytest.approx(a["baseline"]["top1"], abs=0.1)  # same BM25, ties aside
    assert b["same_top_ids"] is True
    assert "load average" in result["machine_before"]["uptime"]
    assert "time_ratio" in proc.stdout


def test_unknown_part_is_refused() -> None:
    proc = subprocess.run(
        [sys.executable, str(ROOT / "benchmarks" / "bench_scale.py"), "--parts", "z"], capture_output=True, text=True, cwd=ROOT, check=False,
    )
    assert proc.returncode == 2 and "unknown ['z']" in proc.stderr
