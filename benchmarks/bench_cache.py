"""Cold against warm `make report`: how much the caches save on a re-render.

    python benchmarks/bench_cache.py            # `make report` (run + every notebook)
    python benchmarks/bench_cache.py -n 01      # only `embedlab report -n 01` (no make)
    python benchmarks/bench_cache.py --fresh-clone   # in a clone of HEAD, set-up timed too

Runs the same command three times in this checkout (its .venv must be installed: `make
install`), with the results, reports, figures and cache in a temporary folder:

1. cold: an empty cache: every model loads, is timed and encodes everything, every figure
   is drawn;
2. warm: the same cache: no model loads (the embedding cache), unchanged figures are copied
   (the figure cache);
3. warm, figure cache off (`EMBEDLAB_FIGURE_CACHE=0`): what the embedding cache alone saves.

Prints wall and CPU seconds (user + system of the process tree, less sensitive than wall
time to other jobs on the machine) and the ratios to the cold run measured in the same
invocation, the load average before and after each run (other jobs inflate wall time), and
where the cold report's priming went (seconds per declared need, from reports/index.html).
With `--fresh-clone` the three runs happen in a fresh `git clone` of this checkout's HEAD
whose set-up (`make install`: venv and `pip install`, from whatever pip cache the machine
has) is timed first, and the cold first report is given with its set-up against the
6-minute target; otherwise this checkout's .venv is brought up to date, untimed.
"""

from __future__ import annotations

import argparse
import html
import json
import os
import platform
import resource
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]


def entries(cache: Path) -> dict[str, str]:
    """Embedding-cache entry -> measured_at, to tell computed entries from reused ones."""
    out = {}
    for meta in cache.glob("v*/[0-9a-f][0-9a-f]/*/meta.json"):
        out[meta.parent.name] = json.loads(meta.read_text(encoding="utf-8")).get("measured_at", "")
    return out


def figure_entries(cache: Path) -> int:
    return sum(1 for _ in cache.glob("figures/*/*/manifest.json"))


def priming(reports: Path) -> str:
    """The 'priming (s)' row of the index `embedlab report` wrote (seconds per need)."""
    index = reports / "index.html"
    if not index.exists():
        return "no index"
    text = index.read_text(encoding="utf-8")
    marker = "<tr><th>priming (s)</th><td>"
    if marker not in text:
        raise SystemExit(f"{index}: no 'priming (s)' row; the index format changed")
    return html.unescape(text.split(marker, 1)[1].split("</td>", 1)[0])


COLD_TARGET_S = 360.0  # a fresh clone's first `make report`, set-up included (issue 10)


def command(work: Path, notebooks: list[str], jobs: int, root: Path = ROOT) -> list[str]:
    if not notebooks:
        return ["make", "--no-print-directory", "report", f"OUT={work / 'results'}", f"REPORTS={work / 'reports'}", f"FIGURES={work / 'figures'}"]
    cmd = [str(root / ".venv" / "bin" / "embedlab"), "report", "--out", str(work / "reports"), "--figures", str(work / "figures"), "--jobs", str(jobs)]
    for n in notebooks:
        cmd += ["--notebook", n]
    return cmd


def render(cmd: list[str], cache: Path, figure_cache: bool = True, root: Path = ROOT) -> tuple[float, float, float]:
    """One run in fresh processes: wall-clock seconds, CPU seconds of the process tree and
    the 1-minute load average before it started."""
    load = os.getloadavg()[0]
    env = {**os.environ, "PYTHONWARNINGS": "ignore", "EMBEDLAB_CACHE_DIR": str(cache), "EMBEDLAB_FIGURE_CACHE": "1" if figure_cache else "0"}
    before = resource.getrusage(resource.RUSAGE_CHILDREN)
    start = time.perf_counter()
    proc = subprocess.run(cmd, cwd=root, capture_output=True, text=True, env=env)
    seconds = time.perf_counter() - start
    after = resource.getrusage(resource.RUSAGE_CHILDREN)
    if proc.returncode != 0:
        sys.stderr.write(proc.stdout[-3000:] + proc.stderr[-3000:])
        raise SystemExit(f"{' '.join(cmd[:2])} failed ({proc.returncode})")
    return seconds, (after.ru_utime - before.ru_utime) + (after.ru_stime - before.ru_stime), load


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("-n", "--notebook", action="append", default=[], help="only `embedlab report` on notebooks with this prefix (repeatable)")
    parser.add_argument("--jobs", type=int, default=2)
    parser.add_argument("--keep", action="store_true", help="keep the temporary folder")
    parser.add_argument("--fresh-clone", action="store_true", help="run in a fresh clone of HEAD and time its `make install` too")
    args = parser.parse_args()
    work = Path(tempfile.mkdtemp(prefix="embedlab-bench-cache-"))
    cache = work / "cache"
    root, setup = ROOT, None
    if args.fresh_clone:
        root = work / "clone"
        subprocess.run(["git", "clone", "-q", str(ROOT), str(root)], check=True)
        setup = render(["make", "--no-print-directory", "install"], work / "setup-cache", root=root)
    elif not args.notebook:  # bring the checkout's .venv up to date first, outside the timings
        subprocess.run(["make", "--no-print-directory", "install"], cwd=ROOT, check=True, capture_output=True)
    cmd = command(work, args.notebook, args.jobs, root)
    try:
        cold = render(cmd, cache, root=root)
        after_cold, figures_cold = entries(cache), figure_entries(cache)
        primed_cold = priming(work / "reports")
        warm = render(cmd, cache, root=root)
        after_warm = entries(cache)
        recomputed = sum(1 for k, v in after_warm.items() if after_cold.get(k) != v)
        redrawn = figure_entries(cache) - figures_cold
        no_figures = render(cmd, cache, figure_cache=False, root=root)
        print(f"command: {' '.join(c if len(c) < 60 else '...' for c in cmd)}")
        if setup is not None:
            head = subprocess.run(["git", "rev-parse", "--short", "HEAD"], cwd=root, capture_output=True, text=True).stdout.strip()
            print(f"fresh clone of {head}: set-up (make install) {setup[0]:7.1f} s wall {setup[1]:7.1f} s CPU (load average before {setup[2]:.1f})")
        print(f"machine: {platform.processor() or platform.machine()}, {os.cpu_count()} cores; Python {platform.python_version()}; load average after {os.getloadavg()[0]:.1f}")
        print(f"load average before: cold {cold[2]:.1f}, warm {warm[2]:.1f}, warm without figure cache {no_figures[2]:.1f}")
        print(f"cold  (empty cache: {len(after_cold)} embedding entries, {figures_cold} figure entries written): {cold[0]:7.1f} s wall {cold[1]:7.1f} s CPU")
        print(f"      priming in the cold report (s): {primed_cold}")
        print(f"warm  ({recomputed} embedding entries recomputed, {redrawn} figure entries added):       {warm[0]:7.1f} s wall {warm[1]:7.1f} s CPU"
              f"  -> {cold[0] / warm[0]:5.1f}x wall, {cold[1] / warm[1]:5.1f}x CPU faster than cold")
        print(f"warm, figure cache off (every figure drawn):                        {no_figures[0]:7.1f} s wall {no_figures[1]:7.1f} s CPU"
              f"  -> {cold[0] / no_figures[0]:5.1f}x wall, {cold[1] / no_figures[1]:5.1f}x CPU faster than cold")
        if setup is not None:
            first = setup[0] + cold[0]
            verdict = "meets" if first <= COLD_TARGET_S else "misses"
            print(f"first report on a fresh clone, set-up included: {first:7.1f} s ({first / 60:.1f} min): {verdict} the {COLD_TARGET_S / 60:.0f}-minute target")
    finally:
        if args.keep:
            print(f"kept {work}")
        else:
            shutil.rmtree(work, ignore_errors=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
