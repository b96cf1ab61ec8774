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
        [sys.executable, str(ROOT / "benchmarks" / "bench_scale.py"), "--scale", "0.002", "--parts", "a,b", "--out", str(out),
         "--repeats", "2", "--settle-s", "0"],
        capture_output=True, text=True, cwd=ROOT, timeout=900, check=False,
    )
    assert proc.returncode == 0, proc.stderr[-3000:]
    result = json.loads(out.read_text(encoding="utf-8"))
    a, b = result["parts"]["a"], result["parts"]["b"]
    for part in (a, b):
        for side in ("embedlab", "baseline"):
            assert part[side]["wall_s"] > 0 and part[side]["peak_rss_gib"] > 0
            assert len(part[side]["runs"]) == 2 and part[side]["wall_s"] == min(r["wall_s"] for r in part[side]["runs"])
        assert part["peak_rss_ratio"] > 0
        if part["refused"]:  # a busy machine (the usual case on a shared box): no time ratio
            assert part["time_ratio"] is None and part["cpu_ratio"] is None and "machine busy" in part["refused"]
            assert "time ratios refused" in proc.stdout
        else:
            assert part["time_ratio"] > 0
    assert a["embedlab"]["streamed"] is False  # tiny: the matrix fits keep_scores
    assert a["embedlab"]["top1"] == pytest.approx(a["baseline"]["top1"], abs=0.1)  # same BM25, ties aside
    assert b["same_top_ids"] is True
    assert "load average" in result["machine_before"]["uptime"]
    assert "peak_rss_ratio" in proc.stdout


def test_a_busy_machine_gives_no_time_ratio() -> None:
    sys.path.insert(0, str(ROOT / "benchmarks"))
    try:
        from bench_scale import busy_reason, ratios
    finally:
        sys.path.remove(str(ROOT / "benchmarks"))
    quiet = [{"variant": "b:faiss", "load_before": 0.4, "load_after": 1.9}]
    assert busy_reason(quiet, cores=2) is None
    busy = quiet + [{"variant": "b:embedlab", "load_before": 1.0, "load_after": 5.5}]
    assert busy_reason(busy, cores=2) == "machine busy: load average 5.50 above 2 cores after a run of b:embedlab (1 of 4 readings)"
    side = {"wall_s": 2.0, "cpu_s": 3.0, "peak_rss_gib": 1.0}
    ours = {**side, "variant": "b:embedlab", "runs": [{**side, "load_before": 9.0, "load_after": 9.0}]}
    base = {**side, "variant": "b:faiss", "runs": [{**side, "load_before": 0.0, "load_after": 0.0}]}
    out = ratios(ours, base)
    assert out["time_ratio"] is None and out["cpu_ratio"] is None and out["peak_rss_ratio"] == 1.0 and "busy" in out["refused"]


def test_unknown_part_is_refused() -> None:
    proc = subprocess.run(
        [sys.executable, str(ROOT / "benchmarks" / "bench_scale.py"), "--parts", "z"], capture_output=True, text=True, cwd=ROOT, check=False,
    )
    assert proc.returncode == 2 and "unknown ['z']" in proc.stderr


def test_bm25_index_never_holds_every_word_as_a_string() -> None:
    """BM25Backend.index turns each document's words into ids as it goes: its peak Python
    memory stays below that of segmenting the whole corpus first (bm25s's usual idiom, the
    benchmark's baseline), and the scores are those of the segmented corpus."""
    import tracemalloc

    import bm25s
    import numpy as np

    from embedlab.models import get_model
    from embedlab.models.backends.lexical import BM25Backend, segment

    rng = np.random.default_rng(0)
    chars = [chr(c) for c in range(0x4E00, 0x4E00 + 500)]
    corpus = ["，".join("".join(rng.choice(chars, 2)) for _ in range(8)) + "。" for _ in range(2000)]
    queries = corpus[:5]
    segment(corpus[:2])  # jieba's dictionary loads once, outside both measurements

    def peak(work) -> int:
        tracemalloc.start()
        try:
            work()
            return tracemalloc.get_traced_memory()[1]
        finally:
            tracemalloc.stop()

    def idiom():
        tokens = segment(corpus)
        vocab: dict[str, int] = {}
        ids = [[vocab.setdefault(w, len(vocab)) for w in doc] for doc in tokens]
        retriever = bm25s.BM25(k1=1.5, b=0.75)
        retriever.index(bm25s.tokenization.Tokenized(ids=ids, vocab=vocab), show_progress=False)
        return retriever, vocab

    backend = BM25Backend(get_model("bm25"))
    ours, theirs = peak(lambda: backend.index(corpus)), peak(idiom)
    assert ours < 0.8 * theirs, (ours, theirs)
    retriever, vocab = idiom()
    expected = np.stack([retriever.get_scores([w for w in q if w in vocab]) for q in segment(queries)])
    np.testing.assert_array_equal(backend.score(queries), expected)
