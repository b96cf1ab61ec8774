"""Run models over data sets: each model in its own spawned worker process, so its memory is
measured where it lives and released before the next model loads; a model that fails is
reported as failed and the others still run.

Protocol per model (README "Measurement protocol"): load (timed), warm-up on a few texts,
`repeats` timed encodes of the timing set (the data set's texts, at most `timing_texts`),
a separate throughput pass over `throughput_texts` texts (texts/s, and tokens/s where the
backend counts tokens), then the full encode of queries and corpus that the metrics use.
Peak memory is the worker's peak RSS (its own, its children's, and their sum sampled on a
background thread); on a GPU, NVML device-level used memory before load, after load and at
peak. docs/measurement.md describes the whole protocol.
"""

from __future__ import annotations

import json
import pickle
import subprocess
import sys
import tempfile
import time
import traceback
from collections.abc import Sequence
from pathlib import Path
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from embedlab import probe
from embedlab.datasets import Dataset
from embedlab.models import ModelSpec


@dataclass(frozen=True)
class RunSettings:
    """How models are measured. Times in seconds."""

    repeats: int = 5
    timing_texts: int = 256
    warmup_texts: int = 8
    throughput_texts: int = 1000
    batch_size: int = 256
    dimensions: int | None = None
    isolate: bool = True
    progress: bool = True
    seed: int = 0
    cache_dir: str | None = None

    def to_dict(self) -> dict[str, Any]:
        return {k: getattr(self, k) for k in self.__dataclass_fields__}


@dataclass(frozen=True)
class EncodeTask:
    """The texts of one data set, as a worker needs them."""

    dataset: str
    queries: list[str]
    documents: list[str]
    instruction: str

    @classmethod
    def from_dataset(cls, dataset: Dataset) -> EncodeTask:
        return cls(dataset.name, dataset.query_texts(), dataset.document_texts(), dataset.instruction)


@dataclass
class DatasetOutcome:
    """What one model produced on one data set: embeddings (dense) or scores (lexical),
    and the latency of the timed encodes."""

    query_embeddings: np.ndarray | None = None
    doc_embeddings: np.ndarray | None = None
    scores: np.ndarray | None = None
    latency: probe.Timing | None = None
    n_timed: int = 0
    encode_s: float = float("nan")


@dataclass
class ModelOutcome:
    """One model's run: status, load time, memory and per-data-set outputs."""

    model: str
    status: str = "ok"
    error: str = ""
    load_s: float = float("nan")
    warmup_s: float = float("nan")
    dim: int | None = None
    rss_before_gib: float = float("nan")
    rss_after_load_gib: float = float("nan")
    peak_mem_gib: float = float("nan")
    throughput_texts_per_s: float = float("nan")
    throughput_tokens_per_s: float = float("nan")
    extra: dict[str, Any] = field(default_factory=dict)
    datasets: dict[str, DatasetOutcome] = field(default_factory=dict)


def _batched_encode(encoder, texts: Sequence[str], kind: str, settings: RunSettings, instruction: str, desc: str) -> np.ndarray:
    from tqdm.auto import tqdm

    chunks = []
    starts = range(0, len(texts), settings.batch_size)
    for start in tqdm(starts, desc=desc, disable=not settings.progress or len(starts) < 2, leave=False):
        batch = list(texts[start : start + settings.batch_size])
        chunks.append(encoder.encode(batch, kind, instruction=instruction, dimensions=settings.dimensions))
    if not chunks:
        return np.zeros((0, 0), dtype=np.float32)
    return np.concatenate(chunks).astype(np.float32, copy=False)


def run_model(spec: ModelSpec, tasks: Sequence[EncodeTask], settings: RunSettings) -> ModelOutcome:
    """Load one model in this process, measure it and encode every task. Any exception is
    caught and returned as a failed outcome with its reason."""
    from embedlab.backends import load_backend

    outcome = ModelOutcome(model=spec.name)
    sampler = probe.MemorySampler().start()
    gpu: dict[str, float | None] = {"gpu_used_before_gib": sampler.gpu_used_gib()}
    try:
        outcome.rss_before_gib = probe.rss_gib()
        start = time.perf_counter()
        backend = load_backend(spec)
        outcome.load_s = time.perf_counter() - start
        outcome.rss_after_load_gib = probe.tree_rss_gib()
        gpu["gpu_used_after_load_gib"] = sampler.gpu_used_gib()
        lexical = spec.lexical
        warm = [t for task in tasks for t in (*task.queries, *task.documents)][: settings.warmup_texts]
        start = time.perf_counter()
        if lexical:
            backend.index(warm)
            backend.score(warm[:2])
        else:
            backend.encode(warm, "document", dimensions=settings.dimensions)
        outcome.warmup_s = time.perf_counter() - start

        for task in tasks:
            result = DatasetOutcome()
            timed = [*task.queries, *task.documents][: settings.timing_texts]
            n_q = min(len(task.queries), len(timed))
            if lexical:
                def one() -> None:
                    backend.index(timed[n_q:] or timed)
                    backend.score(timed[:n_q] or timed[:1])
            else:
                def one() -> None:
                    backend.encode(timed[:n_q], "query", instruction=task.instruction, dimensions=settings.dimensions)
                    backend.encode(timed[n_q:], "document", dimensions=settings.dimensions)
            result.latency = probe.time_call(one, settings.repeats)
            result.n_timed = len(timed)
            start = time.perf_counter()
            if lexical:
                backend.index(task.documents)
                result.scores = np.asarray(backend.score(task.queries), dtype=np.float32)
            else:
                result.query_embeddings = _batched_encode(backend, task.queries, "query", settings, task.instruction, f"{spec.name} {task.dataset} queries")
                result.doc_embeddings = _batched_encode(backend, task.documents, "document", settings, task.instruction, f"{spec.name} {task.dataset} corpus")
                outcome.dim = int(result.doc_embeddings.shape[1])
            result.encode_s = time.perf_counter() - start
            outcome.datasets[task.dataset] = result

        if settings.throughput_texts and not lexical:
            pool = [t for task in tasks for t in (*task.queries, *task.documents)]
            texts = [pool[i % len(pool)] for i in range(settings.throughput_texts)]
            start = time.perf_counter()
            _batched_encode(backend, texts, "document", settings, "", f"{spec.name} throughput")
            elapsed = time.perf_counter() - start
            outcome.throughput_texts_per_s = len(texts) / elapsed
            count = getattr(backend, "count_tokens", None)
            if count is not None:
                outcome.throughput_tokens_per_s = count(texts) / elapsed
        report = getattr(backend, "memory_report", None)
        if report is not None:
            outcome.extra.update(report())
    except Exception as exc:  # noqa: BLE001 - one failing model must not stop the others
        outcome.status = "failed"
        outcome.error = f"{type(exc).__name__}: {exc}"
        outcome.extra["traceback"] = traceback.format_exc(limit=8)
        outcome.datasets = {}
    finally:
        sampler.stop()
    outcome.peak_mem_gib = max(probe.peak_rss_gib(), sampler.rss_peak_gib)
    if sampler.gpu_peak_gib is not None:
        gpu["gpu_used_peak_gib"] = sampler.gpu_peak_gib
        outcome.extra.update({k: v for k, v in gpu.items() if v is not None})
    outcome.extra.update(probe.runtime_info())
    return outcome


def run_model_isolated(spec: ModelSpec, tasks: Sequence[EncodeTask], settings: RunSettings) -> ModelOutcome:
    """`run_model` in a fresh interpreter (`python -m embedlab.worker`), so the model's
    memory is measured where it lives and is released when the process exits. Works from
    scripts, notebooks and stdin alike (no `__main__` guard needed). A crash of that
    process (killed, out of memory, segfault) becomes a failed outcome, not an exception."""
    with tempfile.TemporaryDirectory(prefix="embedlab-worker-") as tmp:
        job, result = Path(tmp) / "job.pkl", Path(tmp) / "result.pkl"
        # pickle only crosses between this process and its own child, never a file kept on disk
        job.write_bytes(pickle.dumps((spec, list(tasks), settings)))
        proc = subprocess.run([sys.executable, "-m", "embedlab.worker", str(job), str(result)], stdin=subprocess.DEVNULL)
        if proc.returncode != 0 or not result.exists():
            how = f"signal {-proc.returncode}" if proc.returncode < 0 else f"exit code {proc.returncode}"
            return ModelOutcome(model=spec.name, status="failed", error=f"worker process crashed ({how})")
        return pickle.loads(result.read_bytes())  # noqa: S301 - written by our own child


def evaluate(
    models: Sequence[ModelSpec | str],
    datasets: Sequence[Dataset | str],
    settings: RunSettings | None = None,
    config: dict[str, Any] | None = None,
    keep_scores: int = 2_000_000,
):
    """Run every model on every data set and return a Report.

    `keep_scores`: score matrices up to this many cells are kept on the Report (for
    heatmaps); larger ones are scored block by block and dropped."""
    import pandas as pd
    from tqdm.auto import tqdm

    from embedlab.datasets import load_dataset
    from embedlab.models import get_model
    from embedlab.results import Report
    from embedlab.scoring import cosine_scores, per_query_table

    settings = settings or RunSettings()
    specs = [get_model(m) if isinstance(m, str) else m for m in models]
    sets = [load_dataset(d) if isinstance(d, str) else d for d in datasets]
    names = [d.name for d in sets]
    if len(set(names)) != len(names):
        raise ValueError(f"data set names must be unique, got {names}")
    if len({s.name for s in specs}) != len(specs):
        raise ValueError(f"model names must be unique, got {[s.name for s in specs]}")
    tasks = [EncodeTask.from_dataset(d) for d in sets]
    runner = run_model_isolated if settings.isolate else run_model
    if settings.cache_dir:
        from embedlab.cache import cached_runner

        runner = cached_runner(runner, settings.cache_dir)

    frames, run_rows, scores_kept = [], [], {}
    for spec in tqdm(specs, desc="models", disable=not settings.progress):
        outcome = runner(spec, tasks, settings)
        for dataset in sets:
            result = outcome.datasets.get(dataset.name)
            row = {
                "model": spec.name, "dataset": dataset.name, "status": outcome.status, "error": outcome.error,
                "backend": spec.backend, "load_s": outcome.load_s, "warmup_s": outcome.warmup_s,
                "dim": outcome.dim, "rss_before_gib": outcome.rss_before_gib,
                "rss_after_load_gib": outcome.rss_after_load_gib, "peak_mem_gib": outcome.peak_mem_gib,
                "throughput_texts_per_s": outcome.throughput_texts_per_s,
                "throughput_tokens_per_s": outcome.throughput_tokens_per_s,
                **{k: v for k, v in outcome.extra.items() if k != "traceback"},
            }
            if result is not None and result.latency is not None:
                row.update(
                    latency_median_s=result.latency.median, latency_iqr_s=result.latency.iqr,
                    latency_times_s=json.dumps([round(t, 6) for t in result.latency.times]),
                    n_timed=result.n_timed, texts_per_s=result.n_timed / result.latency.median,
                    encode_s=result.encode_s,
                )
            run_rows.append(row)
            if result is None:
                continue
            if result.scores is not None:
                scores = result.scores
                table = per_query_table(dataset, spec.name, scores=scores)
            else:
                cells = len(result.query_embeddings) * len(result.doc_embeddings)
                scores = cosine_scores(result.query_embeddings, result.doc_embeddings) if cells <= keep_scores else None
                table = per_query_table(dataset, spec.name, scores=scores, query_embeddings=result.query_embeddings, doc_embeddings=result.doc_embeddings)
            if scores is not None and scores.size <= keep_scores:
                scores_kept[(spec.name, dataset.name)] = scores
            frames.append(table)
        if outcome.status != "ok":
            print(f"embedlab: model {spec.name!r} failed: {outcome.error}", file=sys.stderr)
    per_query = pd.concat(frames, ignore_index=True) if frames else pd.DataFrame(columns=["model", "dataset", "query_id", "category"])
    return Report(
        per_query=per_query,
        runs=pd.DataFrame(run_rows),
        config={"models": [s.to_dict() for s in specs], "datasets": names, "settings": settings.to_dict(), **(config or {})},
        environment={"packages": probe.package_versions(), "hardware": probe.hardware(), "finished": time.strftime("%Y-%m-%dT%H:%M:%S%z")},
        datasets={d.name: d.fingerprint() for d in sets},
        scores=scores_kept,
        seed=settings.seed,
    )
