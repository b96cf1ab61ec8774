"""Run models over data sets: each model in its own spawned worker process, so its memory is
measured where it lives and released before the next model loads; a model that fails is
reported as failed and the others still run.

Protocol per model (README "Measurement protocol"): load (timed), warm-up on a few texts,
`repeats` timed encodes of the timing set (the data set's texts, at most `timing_texts`),
a separate throughput pass over `throughput_texts` texts in one encode call, timed after
an identical untimed call (texts/s, and tokens/s where the backend counts tokens), then the
full encode of queries and corpus that the metrics use.
Peak memory is the worker's peak RSS (its own, its children's, and their sum sampled on a
background thread); on a GPU, NVML device-level used memory before load, after load and at
peak. docs/measurement.md describes the whole protocol.
"""

from __future__ import annotations

import functools
import time
import traceback
from collections.abc import Sequence
from typing import Any

import numpy as np

from embedlab.models import ModelSpec
from embedlab.run import probe
from embedlab.run.worker import run_in_worker, stderr_tail
from embedlab.types import MEASUREMENTS, DatasetOutcome, EncodeTask, ModelOutcome, RankSummary, RunSettings

__all__ = [
    "MEASUREMENTS",
    "DatasetOutcome",
    "EncodeTask",
    "ModelOutcome",
    "NonFiniteError",
    "RunSettings",
    "check_finite",
    "model_runner",
    "run_model",
    "run_model_isolated",
]


class NonFiniteError(ValueError):
    """A model produced NaN or infinite embeddings or scores (e.g. an fp16 overflow)."""


def check_finite(array: np.ndarray | None, what: str) -> None:
    """Raise NonFiniteError when `array` holds NaN or inf: such a model never gets ranked."""
    if array is None or array.size == 0:
        return
    bad = ~np.isfinite(array)
    if bad.any():
        rows = int(bad.reshape(len(array), -1).any(axis=1).sum())
        raise NonFiniteError(
            f"{what}: {rows} of {len(array)} rows contain NaN or inf (overflow in a half-precision dtype?)"
        )


def _batched_encode(
    encoder, texts: Sequence[str], kind: str, settings: RunSettings, instruction: str, desc: str
) -> np.ndarray:
    from tqdm.auto import tqdm

    chunks = []
    starts = range(0, len(texts), settings.batch_size)
    for start in tqdm(starts, desc=desc, disable=not settings.progress or len(starts) < 2, leave=False):
        batch = list(texts[start : start + settings.batch_size])
        chunks.append(encoder.encode(batch, kind, instruction=instruction))
    if not chunks:
        return np.zeros((0, 0), dtype=np.float32)
    return np.concatenate(chunks).astype(np.float32, copy=False)


def _score_once(backend: Any, timed: list[str], n_q: int) -> None:
    """One timed scorer call: index the timed documents, score the timed queries."""
    backend.index(timed[n_q:] or timed)
    backend.score(timed[:n_q] or timed[:1])


def _encode_once(backend: Any, timed: list[str], n_q: int, instruction: str) -> None:
    """One timed encoder call: the timed queries, then the timed documents."""
    backend.encode(timed[:n_q], "query", instruction=instruction)
    if n_q < len(timed):
        backend.encode(timed[n_q:], "document")


def _nan(value: float | None) -> float:
    return float("nan") if value is None else float(value)


def _gpu_reading(reading: tuple[float | None, float | None] | None, source: str) -> float:
    """One (process, device) reading in the run's source, GiB. NVML lists a process only
    once it holds GPU memory, so an unlisted process holds 0; NaN where nothing was read
    (the run failed before that point)."""
    if reading is None:
        return float("nan")
    process, device = reading
    if source == "process":
        return 0.0 if process is None else process
    return _nan(device)


def _memory_facts(outcome: ModelOutcome, report: dict[str, Any]) -> None:
    """Weights and KV cache from the backend's own report (engine or parameter bytes)."""
    weights = report.get("weights_gib", report.get("vllm_weights_gib"))
    outcome.weights_gib = _nan(weights)
    kv = _nan(report.get("kv_cache_gib"))
    outcome.kv_cache_gib = kv if kv > 0 else float("nan")
    note = report.get("kv_cache_note")
    if note is None and outcome.kv_cache_gib != outcome.kv_cache_gib and outcome.weights_gib == outcome.weights_gib:
        # a neural model; BM25 and the cues hold no weights and get no note
        note = "no KV cache (one forward pass per batch)"
    if note:
        outcome.extra["kv_cache_note"] = note


SCORER_BLOCK = 64  # queries a scorer ranks at a time at most: it scores one query at a time anyway


def rank_in_blocks(backend, task: EncodeTask, block: int, candidates: str | None) -> RankSummary:
    """A scorer's streamed ranking of a corpus too big to return whole: `block` queries (at
    most SCORER_BLOCK) scored at a time by the backend's own index and summarised by the
    evaluation stage's `task.rank_block`, so the worker never holds more than block × n_docs
    scores."""
    block = min(block, SCORER_BLOCK)
    parts = []
    for start in range(0, len(task.queries), block):
        scores = np.asarray(backend.score(task.queries[start : start + block]), dtype=np.float32)
        try:
            parts.append(task.rank_block(scores, start, task.relevance, candidates, depth=task.depth))
        except ValueError as exc:
            raise NonFiniteError(f"{task.dataset}: {exc}") from None
    return RankSummary.concat(parts)


def run_model(spec: ModelSpec, tasks: Sequence[EncodeTask], settings: RunSettings, backend: Any = None) -> ModelOutcome:
    """Load one model in this process, measure it and encode every task. Any exception is
    caught and returned as a failed outcome with its reason. `backend`: the model already
    loaded in this process (the explorer keeps its models across runs): not loaded again."""
    from embedlab.models.backends import load_backend

    outcome = ModelOutcome(model=spec.name)
    sampler = probe.MemorySampler()
    try:
        sampler.start()
        outcome.host_rss_before_gib = probe.rss_gib()
        # both readings now; the source (process or device) is chosen once the run is over, so
        # before, after load and peak always count the same thing
        sampler.mark("before")
        torch_before = probe.torch_allocated_gib()
        start = time.perf_counter()
        if backend is None:
            backend = load_backend(spec, settings.dimensions)
        outcome.load_s = time.perf_counter() - start
        outcome.host_rss_after_load_gib = probe.tree_rss_gib()
        sampler.mark("after_load")
        torch_after = probe.torch_allocated_gib()
        if torch_before is not None and torch_after is not None and sampler.device is not None:
            outcome.extra["torch_allocated_load_gib"] = torch_after - torch_before  # the article's own measure
        outcome.extra["effective"] = dict(backend.effective_settings())
        scorer = spec.scores_corpus
        warm = [t for task in tasks for t in (*task.queries, *task.documents)][: settings.warmup_texts]
        start = time.perf_counter()
        if scorer:
            backend.index(warm)
            backend.score(warm[:2])
        else:
            backend.encode(warm, "document")
        outcome.warmup_s = time.perf_counter() - start

        for task in tasks:
            result = DatasetOutcome()
            # a run whose timings are not shown (reuse_documents) times its queries alone, cached corpus or not
            timed_documents = [] if settings.reuse_documents and not scorer else task.documents
            timed = [*task.queries, *timed_documents][: settings.timing_texts]
            n_q = min(len(task.queries), len(timed))
            if scorer:
                one = functools.partial(_score_once, backend, timed, n_q)
            else:
                one = functools.partial(_encode_once, backend, timed, n_q, task.instruction)
            result.latency = probe.time_call(one, settings.repeats)
            result.n_timed = len(timed)
            start = time.perf_counter()
            if scorer:
                backend.index(task.documents)
                if task.relevance is not None:
                    backend.judge(
                        task.queries, task.relevance
                    )  # only a scorer that learns from them (query-blind) uses them
                streamed = task.rank_block is not None and task.relevance is not None
                if streamed and len(task.queries) * len(task.documents) > task.keep_scores:
                    result.ranks = rank_in_blocks(backend, task, settings.query_block, spec.options.get("candidates"))
                else:
                    result.scores = np.asarray(backend.score(task.queries), dtype=np.float32)
                    check_finite(result.scores, f"{task.dataset}: scores")
            else:
                result.query_embeddings = _batched_encode(
                    backend, task.queries, "query", settings, task.instruction, f"{spec.name} {task.dataset} queries"
                )
                check_finite(result.query_embeddings, f"{task.dataset}: query embeddings")
                outcome.dim = int(result.query_embeddings.shape[1])
                if not task.documents_known:  # else the cache attaches the stored corpus vectors
                    desc = f"{spec.name} {task.dataset} corpus"
                    result.doc_embeddings = _batched_encode(
                        backend, task.documents, "document", settings, task.instruction, desc
                    )
                    check_finite(result.doc_embeddings, f"{task.dataset}: document embeddings")
            result.encode_s = time.perf_counter() - start
            outcome.datasets[task.dataset] = result

        if settings.throughput_texts and not scorer:
            pool = [t for task in tasks for t in (*task.queries, *task.documents)]
            texts = [pool[i % len(pool)] for i in range(settings.throughput_texts)]
            # Steady state: the same call once untimed, then timed. The whole list goes to the
            # backend in one call, so it batches (and sorts by length) as it would a corpus. A
            # first pass also pays one-time costs (lazily loaded GPU kernels, allocator growth,
            # clocks ramping up) that made a fresh worker's figure up to 5x low on an H200.
            backend.encode(texts, "document")
            start = time.perf_counter()
            backend.encode(texts, "document")
            elapsed = time.perf_counter() - start
            outcome.throughput_texts_per_s = len(texts) / elapsed
            tokens = backend.count_tokens(texts)
            if tokens is not None:
                outcome.throughput_tokens_per_s = tokens / elapsed
        memory = dict(backend.memory_report())
        _memory_facts(outcome, memory)
        outcome.extra.update(
            {k: v for k, v in memory.items() if k not in ("weights_gib", "kv_cache_gib", "kv_cache_note")}
        )
    except Exception as exc:  # noqa: BLE001 - one failing model must not stop the others
        outcome.status = "failed"
        outcome.error = " ".join(f"{type(exc).__name__}: {exc}".split())
        outcome.extra["traceback"] = traceback.format_exc(limit=8)
        outcome.datasets = {}
    finally:
        sampler.stop()
    outcome.host_rss_peak_gib = max(probe.peak_rss_gib(), sampler.rss_peak_gib)
    served = (outcome.extra.get("effective") or {}).get("device") == "served"
    if served and (sampler.device is not None or sampler.unsettled):
        # the model runs in a server: this GPU's memory (if any) is not the model's
        outcome.gpu_mem_before_gib = outcome.gpu_mem_after_load_gib = float("nan")
        outcome.extra.update(gpu_mem_source="served: the server's GPU memory is not measured here")
    elif sampler.device is not None:
        source = "process" if sampler.process_peak_gib is not None else "device"
        outcome.gpu_mem_peak_gib = _nan(sampler.process_peak_gib if source == "process" else sampler.device_peak_gib)
        outcome.gpu_mem_before_gib = _gpu_reading(sampler.marked("before"), source)
        outcome.gpu_mem_after_load_gib = _gpu_reading(sampler.marked("after_load"), source)
        outcome.extra.update(gpu_mem_source=source, gpu_device=sampler.device.label(), gpu_found_by=sampler.device.how)
    elif sampler.unsettled:
        outcome.extra.update(gpu_mem_source=f"not measured: {sampler.unsettled}, and the model never showed it")
    # the GPU named in the row is the one its memory was read from, never one resolved afresh
    outcome.extra.update(probe.runtime_info(sampler.device, resolve=False))
    return outcome


def run_model_isolated(spec: ModelSpec, tasks: Sequence[EncodeTask], settings: RunSettings) -> ModelOutcome:
    """`run_model` in a fresh interpreter (`embedlab.run.worker`), so the model's memory is
    measured where it lives and is released when the process exits. A crash of that process
    or a run past `settings.timeout_s` becomes a failed outcome with the tail of the worker's
    stderr, not an exception or a hang. The worker's stderr is passed through as it comes."""
    done = run_in_worker(run_model, (spec, list(tasks), settings), settings.timeout_s)
    if not done.error:
        return done.value
    error = done.error + (" (settings.timeout_s / --timeout)" if "timed out" in done.error else "")
    tail = stderr_tail(done.stderr)
    return ModelOutcome(model=spec.name, status="failed", error=f"{error}; stderr: {tail}" if tail else error)


def model_runner(settings: RunSettings):
    """The function that runs one model on the tasks under `settings`: in its own worker
    process when `settings.isolate`, through the embedding cache when `settings.cache_dir`;
    with `settings.engine == "ray"`, dense models encode on a Ray cluster into the cache's
    shards (`embedlab.run.distributed`) and scorers run as above."""
    from embedlab.run.config import check_engine

    check_engine(settings.engine, settings.ray_address, "settings")
    runner = run_model_isolated if settings.isolate else run_model
    if settings.cache_dir:
        from embedlab.run.cache import cached_runner

        runner = cached_runner(runner, settings.cache_dir)
    if settings.engine == "ray":
        from embedlab.run.distributed import ray_runner

        runner = ray_runner(runner)
    return runner
