"""Cold against warm `embedlab report`: how much the embedding cache saves on a re-render.

    python benchmarks/bench_cache.py                 # all notebooks, bundled models
    python benchmarks/bench_cache.py -n 00 -n 06     # a subset

Runs the report twice into a temporary folder: cold (an empty embedding cache: every model
loads, is timed and encodes everything) and warm (the same cache: no model loads). Prints
both wall times, the ratio, and how many cache entries each run read or wrote. The same
command, notebooks and machine for both runs; the ratio is the result, not either time.
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]


def entries(cache: Path) -> dict[str, str]:
    """Entry -> measured_at, to tell computed entries from reused ones."""
    out = {}
    for meta in cache.rglob("meta.json"):
        out[meta.parent.name] = json.loads(meta.read_text(encoding="utf-8")).get("measured_at", "")
    return out


def render(work: Path, cache: Path, notebooks: list[str], jobs: int) -> tuple[float, float]:
    """One `embedlab report` in a fresh process: wall-clock seconds and CPU seconds (user +
    system of the process tree: less sensitive than wall time to other jobs on the machine)."""
    cmd = [sys.executable, "-m", "embedlab.report", "--out", str(work / "reports"), "--figures", str(work / "figures"), "--cache-dir", str(cache), "--jobs", str(jobs)]
    for n in notebooks:
        cmd += ["--notebook", n]
    before = resource.getrusage(resource.RUSAGE_CHILDREN)
    start = time.perf_counter()
    proc = subprocess.run(cmd, cwd=ROOT, capture_output=True, text=True, env={**os.environ, "PYTHONWARNINGS": "ignore"})
    seconds = time.perf_counter() - start
    after = resource.getrusage(resource.RUSAGE_CHILDREN)
    if proc.returncode != 0:
        sys.stderr.write(proc.stdout[-3000:] + proc.stderr[-3000:])
        raise SystemExit(f"embedlab report failed ({proc.returncode})")
    return seconds, (after.ru_utime - before.ru_utime) + (after.ru_stime - before.ru_stime)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("-n", "--notebook", action="append", default=[], help="notebook name prefix (repeatable; default: all)")
    parser.add_argument("--jobs", type=int, default=2)
    parser.add_argument("--keep", action="store_true", help="keep the temporary folder")
    args = parser.parse_args()
    work = Path(tempfile.mkdtemp(prefix="embedlab-bench-cache-"))
    cache = work / "cache"
    try:
        cold, cold_cpu = render(work, cache, args.notebook, args.jobs)
        after_cold = entries(cache)
        warm, warm_cpu = render(work, cache, args.notebook, args.jobs)
        after_warm = entries(cache)
        recomputed = sum(1 for k, v in after_warm.items() if after_cold.get(k) != v)
        print(f"notebooks: {', '.join(args.notebook) or 'all'}; jobs {args.jobs}; cores {os.cpu_count()}; load average now {os.getloadavg()[0]:.1f}")
        print(f"cold (empty cache, {len(after_cold)} entries written): {cold:8.1f} s wall {cold_cpu:8.1f} s CPU")
        print(f"warm (same cache, {recomputed} entries recomputed):   {warm:8.1f} s wall {warm_cpu:8.1f} s CPU")
        print(f"warm is {cold / warm:.1f}x faster than cold (wall), {cold_cpu / warm_cpu:.1f}x (CPU)")
    finally:
        if args.keep:
            print(f"kept {work}")
        else:
            shutil.rmtree(work, ignore_errors=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
