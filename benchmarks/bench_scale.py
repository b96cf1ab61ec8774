"""Scale: embedlab's streamed evaluation against the libraries it wraps, same machine, same run.

    python benchmarks/bench_scale.py                  # parts a and b at full size (many minutes)
    python benchmarks/bench_scale.py --parts a        # one part
    python benchmarks/bench_scale.py --scale 0.01     # a tiny run (the test uses it)

Parts (one function each, `PARTS`; each variant runs in its own subprocess, so its peak RSS
is its own):
  a. a synthetic BEIR set of 200,000 short Chinese documents and 2,000 queries: BM25 through
     `embedlab.evaluate` (jieba + bm25s, streamed ranking, every metric) against bm25s
     called directly (the same jieba tokens, top-10 retrieval only).
     Targets: time <= 1.2x and peak RSS <= 1.3x bm25s direct (`--a-docs 100000`: the size
     of the RSS target).
  b. 1,000,000 random 384-d unit vectors and 10,000 queries: exact top-10 and the rank of
     each query's relevant document through `embedlab.evaluation.scoring.rank_embeddings`
     against faiss `IndexFlatIP` (top-10 only). Targets: time <= 1.2x IndexFlatIP and peak
     RSS beyond the embeddings <= 2 GiB.
  c. (added separately) the OpenAI backend against a local server vs the in-process backend.

Prints wall and CPU seconds (user + system, less sensitive than wall time to other jobs on
a shared machine), peak RSS and the ratios to the baseline measured in the same run (the
ratios are the result); writes them with the machine, `uptime` and settings as JSON
(default benchmarks/results/bench_scale_<date>.json).

A busy machine gives no ratio: each variant runs `--repeats` times (its best wall time is
kept), each run waits up to `--settle-s` for the 1-minute load average to fall to the core
count, and when the load average was above the core count before or after any run of a
part, that part's time ratios are refused (null in the JSON, "refused" says why); the raw
measurements are still written.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import resource
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
GIB = 1024**3

# full sizes; --scale multiplies the counts
A_DOCS, A_QUERIES = 200_000, 2_000
B_DOCS, B_QUERIES, B_DIM = 1_000_000, 10_000, 384
TOP_K = 10


# ---- measuring one variant in its own process ----------------------------------------------
def peak_rss_gib() -> float:
    """This process's peak resident set size (`VmHWM`), GiB; not `ru_maxrss`, which Linux
    carries over from the parent across fork and exec."""
    with open("/proc/self/status") as f:
        kib = next(int(line.split()[1]) for line in f if line.startswith("VmHWM:"))
    return kib * 1024 / GIB


def rss_gib() -> float:
    """This process's current resident set size, GiB."""
    with open("/proc/self/statm") as f:
        return int(f.read().split()[1]) * os.sysconf("SC_PAGE_SIZE") / GIB


def cpu_s() -> float:
    usage = resource.getrusage(resource.RUSAGE_SELF)
    return usage.ru_utime + usage.ru_stime


# how each variant is run (main sets them from --repeats and --settle-s)
REPEATS = {"n": 1, "settle_s": 60.0}


def load_average() -> float:
    """The 1-minute load average."""
    return os.getloadavg()[0]


def settle(limit_s: float, cores: int) -> float:
    """Wait up to `limit_s` seconds for the load average to fall to `cores`; return it."""
    end = time.monotonic() + limit_s
    while (load := load_average()) > cores and time.monotonic() < end:
        time.sleep(5)
    return load


def busy_reason(runs: list[dict[str, Any]], cores: int) -> str | None:
    """Why the runs' times cannot be compared: a load average above `cores` before or after
    any run (other work shared the cores), else None."""
    loads = [(r["variant"], when, r[f"load_{when}"]) for r in runs for when in ("before", "after")]
    high = [(v, w, x) for v, w, x in loads if x > cores]
    if not high:
        return None
    variant, when, load = max(high, key=lambda h: h[2])
    return f"machine busy: load average {load:.2f} above {cores} cores {when} a run of {variant} ({len(high)} of {len(loads)} readings)"


def run_variant(name: str, scale: float, workdir: Path) -> dict[str, Any]:
    """Run one variant `REPEATS["n"]` times, each in a fresh interpreter after the load
    settled; return the run of best wall time, with every run's wall time and loads."""
    cores = os.cpu_count() or 1
    runs = []
    for _ in range(REPEATS["n"]):
        before = settle(REPEATS["settle_s"], cores)
        proc = subprocess.run(
            [sys.executable, __file__, "--variant", name, "--scale", str(scale), "--workdir", str(workdir)],
            capture_output=True, text=True, cwd=ROOT, env={**os.environ, "PYTHONPATH": str(ROOT), "HF_HUB_OFFLINE": "1"}, check=False,
        )
        if proc.returncode != 0:
            raise RuntimeError(f"variant {name} failed (exit {proc.returncode}): {proc.stderr[-2000:]}")
        runs.append({**json.loads(proc.stdout.strip().splitlines()[-1]), "variant": name, "load_before": before, "load_after": load_average()})
    best = min(runs, key=lambda r: r["wall_s"])
    return {**best, "runs": [{k: r[k] for k in ("wall_s", "cpu_s", "peak_rss_gib", "load_before", "load_after")} for r in runs]}


def ratios(ours: dict[str, Any], base: dict[str, Any]) -> dict[str, Any]:
    """Time, CPU and peak-RSS ratios of the best runs, or the time ratios refused (None)
    with the reason when the machine was busy. Peak RSS does not depend on the load."""
    cores = os.cpu_count() or 1
    reason = busy_reason([{**r, "variant": side["variant"]} for side in (ours, base) for r in side["runs"]], cores)
    out = {"peak_rss_ratio": ours["peak_rss_gib"] / base["peak_rss_gib"], "refused": reason}
    if reason is None:
        out.update(time_ratio=ours["wall_s"] / base["wall_s"], cpu_ratio=ours["cpu_s"] / base["cpu_s"])
    else:
        out.update(time_ratio=None, cpu_ratio=None)
    return out


def measured(setup: Callable[[], Any], work: Callable[[Any], Any]) -> dict[str, Any]:
    """Time `work(setup())`: wall and CPU seconds, peak RSS, and the RSS after setup (the
    data both variants hold, e.g. the embeddings)."""
    data = setup()
    base = rss_gib()
    wall, cpu = time.perf_counter(), cpu_s()
    extra = work(data) or {}
    return {
        "wall_s": time.perf_counter() - wall, "cpu_s": cpu_s() - cpu,
        "rss_after_setup_gib": base, "peak_rss_gib": peak_rss_gib(), **extra,
    }


# ---- part a: BM25 on a synthetic Chinese BEIR set ---------------------------------------------
def make_beir_set(folder: Path, n_docs: int, n_queries: int, seed: int = 0) -> Path:
    """A synthetic BEIR folder: documents of 4-9 words drawn from a vocabulary of two- and
    three-character Chinese words (Zipf-like frequencies), each query 2-4 words of one
    document (its one relevant document)."""
    import numpy as np

    rng = np.random.default_rng(seed)
    chars = [chr(c) for c in range(0x4E00, 0x4E00 + 3000)]
    vocab = ["".join(rng.choice(chars, size=rng.integers(2, 4))) for _ in range(20_000)]
    weights = 1.0 / np.arange(1, len(vocab) + 1) ** 0.9
    weights /= weights.sum()
    folder.mkdir(parents=True, exist_ok=True)
    docs = []
    with open(folder / "corpus.jsonl", "w", encoding="utf-8") as f:
        for i in range(n_docs):
            words = rng.choice(len(vocab), size=rng.integers(4, 10), p=weights)
            docs.append(words)
            f.write(json.dumps({"_id": f"d{i}", "title": "", "text": "，".join(vocab[w] for w in words) + "。"}, ensure_ascii=False) + "\n")
    targets = rng.choice(n_docs, size=n_queries, replace=False)
    with open(folder / "queries.jsonl", "w", encoding="utf-8") as f:
        for j, d in enumerate(targets):
            words = rng.choice(docs[d], size=min(len(docs[d]), int(rng.integers(2, 5))), replace=False)
            f.write(json.dumps({"_id": f"q{j}", "text": "".join(vocab[w] for w in words) + "？"}, ensure_ascii=False) + "\n")
    (folder / "qrels").mkdir(exist_ok=True)
    with open(folder / "qrels" / "test.tsv", "w", encoding="utf-8") as f:
        f.write("query-id\tcorpus-id\tscore\n")
        for j, d in enumerate(targets):
            f.write(f"q{j}\td{d}\t1\n")
    return folder


def a_embedlab(folder: Path) -> dict[str, Any]:
    import embedlab as el  # imports are not timed, in either variant
    from embedlab.data.datasets import Dataset

    def setup():
        return Dataset.from_beir(folder)

    def work(dataset):
        settings = el.RunSettings(progress=False, isolate=False, repeats=1, timing_texts=16, warmup_texts=2, throughput_texts=0)
        report = el.evaluate(["bm25"], [dataset], settings)
        row = report.runs.iloc[0]
        if row["status"] != "ok":
            raise RuntimeError(f"embedlab bm25 failed: {row['error']}")
        return {"top1": float(report.per_query["top1"].mean()), "streamed": not report.scores}

    return measured(setup, work)


def a_bm25s(folder: Path) -> dict[str, Any]:
    import bm25s
    import numpy as np

    from embedlab.data.datasets import Dataset
    from embedlab.models.backends.lexical import segment  # the same jieba tokens

    def setup():
        dataset = Dataset.from_beir(folder)
        return dataset.document_texts(), dataset.query_texts(), dataset

    def work(data):
        corpus, queries, dataset = data
        tokens = segment(corpus)
        vocab: dict[str, int] = {}
        ids = [[vocab.setdefault(w, len(vocab)) for w in doc] for doc in tokens]
        retriever = bm25s.BM25(k1=1.5, b=0.75)
        retriever.index(bm25s.tokenization.Tokenized(ids=ids, vocab=vocab), show_progress=False)
        query_ids = [[vocab[w] for w in q if w in vocab] or [0] for q in segment(queries)]
        found, _ = retriever.retrieve(query_ids, k=TOP_K, show_progress=False)
        index = {d: i for i, d in enumerate(dataset.doc_ids)}
        answers = np.array([index[next(iter(dataset.qrels[q]))] for q in dataset.query_ids])
        return {"top1": float((found[:, 0] == answers).mean())}

    return measured(setup, work)


def a_sizes(scale: float) -> tuple[int, int]:
    """Documents and queries of part a; EMBEDLAB_BENCH_A_DOCS overrides the document count
    (`--a-docs`: e.g. 100,000 documents with the full 2,000 queries)."""
    docs = os.environ.get("EMBEDLAB_BENCH_A_DOCS")
    return int(docs) if docs else max(200, int(A_DOCS * scale)), max(20, int(A_QUERIES * scale))


def part_a(scale: float, workdir: Path) -> dict[str, Any]:
    n_docs, n_queries = a_sizes(scale)
    folder = make_beir_set(workdir / "beir_zh", n_docs, n_queries)
    ours, base = run_variant("a:embedlab", scale, workdir), run_variant("a:bm25s", scale, workdir)
    return {
        "what": "BM25, synthetic Chinese BEIR set: embedlab.evaluate vs bm25s direct (jieba tokens, top-10)",
        "n_docs": n_docs, "n_queries": n_queries, "data": str(folder),
        "embedlab": ours, "baseline": base, **ratios(ours, base),
        "targets": {"time_ratio": 1.2, "peak_rss_ratio": 1.3},
    }


# ---- part b: exact dense top-k on random unit vectors ------------------------------------------
def b_sizes(scale: float) -> tuple[int, int]:
    """Documents and queries of part b; EMBEDLAB_BENCH_B_QUERIES overrides the query count
    (`--b-queries`: the full corpus with fewer queries on a busy machine)."""
    queries = os.environ.get("EMBEDLAB_BENCH_B_QUERIES")
    return max(1000, int(B_DOCS * scale)), int(queries) if queries else max(20, int(B_QUERIES * scale))


def random_vectors(scale: float, seed: int = 0):
    import numpy as np

    n_docs, n_queries = b_sizes(scale)
    rng = np.random.default_rng(seed)
    docs = np.empty((n_docs, B_DIM), dtype=np.float32)
    for lo in range(0, n_docs, 100_000):  # no float64 copy of the corpus
        chunk = rng.standard_normal((min(100_000, n_docs - lo), B_DIM), dtype=np.float32)
        docs[lo : lo + len(chunk)] = chunk / np.linalg.norm(chunk, axis=1, keepdims=True)
    queries = rng.standard_normal((n_queries, B_DIM), dtype=np.float32)
    queries /= np.linalg.norm(queries, axis=1, keepdims=True)
    relevant = rng.integers(0, n_docs, n_queries)
    return queries, docs, relevant


def b_embedlab(scale: float) -> dict[str, Any]:
    import numpy as np

    from embedlab.evaluation.metrics import summary_scores
    from embedlab.evaluation.scoring import rank_embeddings
    from embedlab.types import Relevance

    def work(data):
        queries, docs, relevant = data
        relevance = Relevance(np.arange(len(queries)), relevant.astype(np.int64), np.ones(len(queries), dtype=np.int64), len(queries), len(docs))
        summary = rank_embeddings(queries, docs, relevance)
        m = summary_scores(summary)
        return {"mrr": float(m.values["mrr"].mean()), "top_ids_sample": summary.top_ids[:3, :3].tolist()}

    return measured(lambda: random_vectors(scale), work)


def b_faiss(scale: float) -> dict[str, Any]:
    import faiss

    def work(data):
        queries, docs, _ = data
        index = faiss.IndexFlatIP(docs.shape[1])
        index.add(docs)
        _, ids = index.search(queries, TOP_K)
        return {"top_ids_sample": ids[:3, :3].tolist()}

    return measured(lambda: random_vectors(scale), work)


def part_b(scale: float, workdir: Path) -> dict[str, Any]:
    n_docs, n_queries = b_sizes(scale)
    ours, base = run_variant("b:embedlab", scale, workdir), run_variant("b:faiss", scale, workdir)
    return {
        "what": "exact top-10 on random unit vectors: embedlab rank_embeddings (and relevant ranks) vs faiss IndexFlatIP",
        "n_docs": n_docs, "n_queries": n_queries, "dim": B_DIM, "embeddings_gib": n_docs * B_DIM * 4 / GIB,
        "embedlab": ours, "baseline": base, **ratios(ours, base),
        "peak_rss_beyond_embeddings_gib": ours["peak_rss_gib"] - ours["rss_after_setup_gib"],
        "baseline_peak_rss_beyond_embeddings_gib": base["peak_rss_gib"] - base["rss_after_setup_gib"],
        "same_top_ids": ours["top_ids_sample"] == base["top_ids_sample"],
        "targets": {"time_ratio": 1.2, "peak_rss_beyond_embeddings_gib": 2.0},
    }


def part_c(scale: float, workdir: Path) -> dict[str, Any]:
    """(c) the openai backend against a local `vllm serve` vs the same model in process: benchmarks/bench_served.py."""
    sys.path.insert(0, str(ROOT / "benchmarks"))
    from bench_served import part_c as served_part

    return served_part(scale, workdir)


PARTS: dict[str, Callable[[float, Path], dict[str, Any]]] = {"a": part_a, "b": part_b, "c": part_c}
VARIANTS: dict[str, Callable[[float, Path], dict[str, Any]]] = {
    "a:embedlab": lambda scale, workdir: a_embedlab(workdir / "beir_zh"),
    "a:bm25s": lambda scale, workdir: a_bm25s(workdir / "beir_zh"),
    "b:embedlab": lambda scale, workdir: b_embedlab(scale),
    "b:faiss": lambda scale, workdir: b_faiss(scale),
}


def machine() -> dict[str, Any]:
    uptime = subprocess.run(["uptime"], capture_output=True, text=True, check=False).stdout.strip()
    return {"platform": platform.platform(), "python": platform.python_version(), "cores": os.cpu_count(), "uptime": uptime}


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--parts", default="a,b", help="comma-separated parts to run (a, b, c)")
    parser.add_argument("--scale", type=float, default=1.0, help="multiply every document and query count (tiny: 0.005)")
    parser.add_argument("--out", type=Path, default=None, help="JSON file to write (default benchmarks/results/bench_scale_<date>.json)")
    parser.add_argument("--b-queries", type=int, default=None, help="part b: this many queries instead of 10,000 x scale")
    parser.add_argument("--a-docs", type=int, default=None, help="part a: this many documents instead of 200,000 x scale")
    parser.add_argument("--repeats", type=int, default=3, help="runs of each variant; the best wall time is kept")
    parser.add_argument("--settle-s", type=float, default=60.0, help="seconds to wait before a run for the load average to fall to the core count")
    parser.add_argument("--variant", help=argparse.SUPPRESS)
    parser.add_argument("--workdir", type=Path, help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    if args.b_queries:
        os.environ["EMBEDLAB_BENCH_B_QUERIES"] = str(args.b_queries)  # read by the variant processes too
    if args.a_docs:
        os.environ["EMBEDLAB_BENCH_A_DOCS"] = str(args.a_docs)
    if args.variant:
        print(json.dumps(VARIANTS[args.variant](args.scale, args.workdir)))
        return 0
    REPEATS.update(n=max(1, args.repeats), settle_s=args.settle_s)
    parts = [p.strip() for p in args.parts.split(",") if p.strip()]
    unknown = [p for p in parts if p not in PARTS]
    if unknown:
        parser.error(f"--parts: unknown {unknown}, expected some of {sorted(PARTS)}")
    result: dict[str, Any] = {"scale": args.scale, "a_docs": args.a_docs, "b_queries": args.b_queries, "repeats": args.repeats, "machine_before": machine(), "parts": {}}
    with tempfile.TemporaryDirectory(prefix="embedlab-bench-scale-") as tmp:
        for part in parts:
            out = PARTS[part](args.scale, Path(tmp))
            result["parts"][part] = out
            ours, base = out["embedlab"], out["baseline"]
            print(f"[{part}] {out['what']}: {out['n_docs']} docs x {out['n_queries']} queries")
            print(f"    embedlab {ours['wall_s']:.1f} s wall, {ours['cpu_s']:.1f} s CPU, peak RSS {ours['peak_rss_gib']:.2f} GiB")
            print(f"    baseline {base['wall_s']:.1f} s wall, {base['cpu_s']:.1f} s CPU, peak RSS {base['peak_rss_gib']:.2f} GiB")
            shown = {k: v for k, v in out.items() if k.endswith(("_ratio", "_gib")) and k != "embeddings_gib" and v is not None}
            print("    " + ", ".join(f"{k} {v:.2f}" for k, v in shown.items()) + f"  (targets {out['targets']})")
            if out["refused"]:
                print(f"    time ratios refused: {out['refused']}")
    result["machine_after"] = machine()
    out_path = args.out or ROOT / "benchmarks" / "results" / f"bench_scale_{time.strftime('%Y-%m-%d')}.json"
    out_path.parent.mkdir(parents=True, exist_ok=True)
    out_path.write_text(json.dumps(result, indent=1) + "\n", encoding="utf-8")
    print(f"wrote {out_path}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
