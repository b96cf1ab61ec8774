"""Types shared between the stages of the pipeline (data -> models -> run -> evaluation ->
report): how a run is measured (RunSettings), what a model worker is given (EncodeTask) and
what it returns (ModelOutcome, DatasetOutcome). They live here, below every stage, so that no
stage imports a later one (tests/test_layout.py walks the imports)."""

from __future__ import annotations

import statistics
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    import numpy as np

GIB = 1024**3
"""Bytes per GiB: every memory figure of embedlab is in GiB (2**30 bytes)."""


@dataclass(frozen=True)
class Timing:
    """Repeated wall-clock timings of one call, seconds."""

    times: tuple[float, ...]

    @property
    def median(self) -> float:
        return statistics.median(self.times)

    @property
    def iqr(self) -> float:
        """Interquartile range, seconds (the spread; min/max are kept in `times`)."""
        if len(self.times) < 2:
            return 0.0
        q = statistics.quantiles(self.times, n=4, method="inclusive")
        return q[2] - q[0]



@dataclass(frozen=True)
class RunSettings:
    """How models are measured and scored. Times in seconds. `timeout_s`: a worker that has
    not finished by then is killed and its model reported failed (None = wait for ever)."""

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
    timeout_s: float | None = 3600.0
    # scale (README "Large corpora"): queries scored per block against the whole corpus,
    # the nearest-neighbour search used for top-k, and where the corpus is encoded
    query_block: int = 256
    search: dict[str, Any] | None = None  # {"index": "flat" | "hnsw" | "ivf", ...}; None: exact, numpy
    engine: str = "local"  # "local": one worker process per model; "ray": corpus encoded on a Ray cluster
    ray_address: str | None = None  # None with engine "ray": a local Ray cluster

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
    def from_dataset(cls, dataset: Any) -> EncodeTask:
        """From an `embedlab.data.Dataset` (or anything with its text accessors)."""
        return cls(dataset.name, dataset.query_texts(), dataset.document_texts(), dataset.instruction)


@dataclass
class DatasetOutcome:
    """What one model produced on one data set: embeddings (dense) or scores (lexical),
    and the latency of the timed encodes."""

    query_embeddings: np.ndarray | None = None
    doc_embeddings: np.ndarray | None = None
    scores: np.ndarray | None = None
    latency: Timing | None = None
    n_timed: int = 0
    encode_s: float = float("nan")


# Numeric measurements of one model run (GiB, seconds, texts/s): what the cache stores
# beside the embeddings. Text facts (GPU device, memory source, engine settings) go to `extra`.
MEASUREMENTS = (
    "load_s", "warmup_s", "dim",
    "host_rss_before_gib", "host_rss_after_load_gib", "host_rss_peak_gib",
    "gpu_mem_before_gib", "gpu_mem_after_load_gib", "gpu_mem_peak_gib", "weights_gib", "kv_cache_gib",
    "throughput_texts_per_s", "throughput_tokens_per_s",
)


@dataclass
class ModelOutcome:
    """One model's run: status, load time, memory and per-data-set outputs.

    Memory, GiB: `host_rss_*` is resident host memory of the worker process tree (the only
    memory figure of a CPU run); `gpu_mem_*` is GPU memory of the device the worker used,
    from NVML (this process's own usage when NVML reports it, else the device's used
    memory: `extra["gpu_mem_source"]`); NaN without a GPU. `weights_gib` is the size of the
    loaded parameters, `kv_cache_gib` the KV cache the engine allocated (NaN if none)."""

    model: str
    status: str = "ok"
    error: str = ""
    load_s: float = float("nan")
    warmup_s: float = float("nan")
    dim: int | None = None
    host_rss_before_gib: float = float("nan")
    host_rss_after_load_gib: float = float("nan")
    host_rss_peak_gib: float = float("nan")
    gpu_mem_before_gib: float = float("nan")
    gpu_mem_after_load_gib: float = float("nan")
    gpu_mem_peak_gib: float = float("nan")
    weights_gib: float = float("nan")
    kv_cache_gib: float = float("nan")
    throughput_texts_per_s: float = float("nan")
    throughput_tokens_per_s: float = float("nan")
    extra: dict[str, Any] = field(default_factory=dict)
    datasets: dict[str, DatasetOutcome] = field(default_factory=dict)


