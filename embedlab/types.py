"""Types shared between the stages of the pipeline (data -> models -> run -> evaluation ->
report): how a run is measured (RunSettings), what a model worker is given (EncodeTask) and
what it returns (ModelOutcome, DatasetOutcome). They live here, below every stage, so that no
stage imports a later one (tests/test_layout.py walks the imports)."""

from __future__ import annotations

import statistics
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from collections.abc import Callable

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
    # a run whose timings are not shown (prompt variants, public samples) may take its corpus
    # vectors from the cache's documents store (same model, document prompt and documents)
    # and encode only its queries; its timed set then holds queries alone (read by the runner)
    reuse_documents: bool = False
    # metrics reported beside the defaults, by name ("recall@100", "ndcg@20"): parsed and
    # checked by the evaluation stage (evaluation.metrics.parse_metric), which derives the
    # ranking depth from them
    metrics: tuple[str, ...] = ()

    def to_dict(self) -> dict[str, Any]:
        return {k: getattr(self, k) for k in self.__dataclass_fields__}


@dataclass(frozen=True)
class EncodeTask:
    """The texts of one data set, as a worker needs them."""

    dataset: str
    queries: list[str]
    documents: list[str]
    instruction: str
    # what a scorer's worker needs to rank a big corpus itself (`DatasetOutcome.ranks`)
    relevance: Relevance | None = None
    keep_scores: int = 2_000_000  # scorer matrices up to this many cells come back whole
    depth: int = 10  # top documents a scorer's worker keeps per query (set from the run's metrics)
    # the embedding cache holds this corpus's vectors (`RunSettings.reuse_documents`): encode the queries only
    documents_known: bool = False
    # the evaluation stage's ranking of a block of scores, `rank_block(scores, start, relevance, candidates, depth=)`
    # (`embedlab.evaluation.ranking.rank_block`), handed in so that the run stage ranks without importing it
    rank_block: Callable[..., RankSummary] | None = None

    @classmethod
    def from_dataset(
        cls,
        dataset: Any,
        keep_scores: int = 2_000_000,
        depth: int = 10,
        rank_block: Callable[..., RankSummary] | None = None,
    ) -> EncodeTask:
        """From an `embedlab.data.Dataset` (or anything with its text accessors and qrels)."""
        return cls(
            dataset.name,
            dataset.query_texts(),
            dataset.document_texts(),
            dataset.instruction,
            Relevance.from_dataset(dataset),
            keep_scores,
            depth,
            rank_block=rank_block,
        )


@dataclass(frozen=True)
class Relevance:
    """A data set's qrels as sparse (query row, document column, grade) triples, sorted by
    row then column, and its default candidate mode ("all" or "judged"): what ranking a
    block of queries needs, never an n_queries × n_docs array."""

    query_row: np.ndarray  # (n_pairs,) int64
    doc_col: np.ndarray  # (n_pairs,) int64
    gain: np.ndarray  # (n_pairs,) int64, relevance grade (0 = judged not relevant)
    n_queries: int
    n_docs: int
    candidates: str = "all"

    @classmethod
    def from_dataset(cls, dataset: Any) -> Relevance:
        """From an `embedlab.data.Dataset`, rows and columns in its id order."""
        import numpy as np

        index = {d: i for i, d in enumerate(dataset.doc_ids)}
        triples = sorted(
            (row, index[d], int(g))
            for row, q in enumerate(dataset.query_ids)
            for d, g in dataset.qrels.get(q, {}).items()
        )
        arr = np.array(triples, dtype=np.int64).reshape(-1, 3)
        return cls(
            arr[:, 0].copy(),
            arr[:, 1].copy(),
            arr[:, 2].copy(),
            len(dataset.query_ids),
            len(index),
            dataset.meta.candidates,
        )


@dataclass(frozen=True)
class RankSummary:
    """What the metrics need of each query's ranking, kept instead of its scores against the
    whole corpus. Ranks follow the pessimistic rule (ties count against the model: among
    equal scores the less relevant document first, then the lower index).

    Per query (length n_queries): `top_ids`/`top_scores` (n_queries, depth), best first,
    -1/NaN past the last eligible document; `rank` the 1-based rank of the best relevant
    document; `best_relevant`/`best_wrong` the best relevant and non-relevant scores
    (-inf when none) and `best_wrong_doc` the first-indexed document with that score (-1).
    Per judged pair of non-zero grade that the query may rank (`pair_*`, sorted by query):
    its score, `pair_rank` the count of eligible documents scoring >= it (itself
    included) and `pair_position` its 0-based place in the pessimistic order when below
    `depth`, else -1."""

    n_docs: int
    top_ids: np.ndarray
    top_scores: np.ndarray
    rank: np.ndarray
    best_relevant: np.ndarray
    best_wrong: np.ndarray
    best_wrong_doc: np.ndarray
    pair_query: np.ndarray
    pair_doc: np.ndarray
    pair_gain: np.ndarray
    pair_score: np.ndarray
    pair_rank: np.ndarray
    pair_position: np.ndarray

    @property
    def n_queries(self) -> int:
        return len(self.rank)

    @property
    def depth(self) -> int:
        return self.top_ids.shape[1]

    @classmethod
    def concat(cls, parts: list[RankSummary]) -> RankSummary:
        """Blocks of consecutive queries, in order, as one summary."""
        import numpy as np

        if not parts:
            raise ValueError("RankSummary.concat needs at least one block")
        offsets = np.cumsum([0] + [p.n_queries for p in parts[:-1]])
        joined = {
            name: np.concatenate([getattr(p, name) for p in parts])
            for name in (
                "top_ids",
                "top_scores",
                "rank",
                "best_relevant",
                "best_wrong",
                "best_wrong_doc",
                "pair_doc",
                "pair_gain",
                "pair_score",
                "pair_rank",
                "pair_position",
            )
        }
        joined["pair_query"] = np.concatenate([p.pair_query + off for p, off in zip(parts, offsets)])
        return cls(n_docs=parts[0].n_docs, **joined)


@dataclass
class DatasetOutcome:
    """What one model produced on one data set: embeddings (dense) or scores (lexical),
    and the latency of the timed encodes."""

    query_embeddings: np.ndarray | None = None
    doc_embeddings: np.ndarray | None = None
    scores: np.ndarray | None = None
    ranks: RankSummary | None = None  # a scorer's ranking of a corpus too big to return `scores`
    latency: Timing | None = None
    n_timed: int = 0
    encode_s: float = float("nan")


# Numeric measurements of one model run (GiB, seconds, texts/s): what the cache stores
# beside the embeddings. Text facts (GPU device, memory source, engine settings) go to `extra`.
MEASUREMENTS = (
    "load_s",
    "warmup_s",
    "dim",
    "host_rss_before_gib",
    "host_rss_after_load_gib",
    "host_rss_peak_gib",
    "gpu_mem_before_gib",
    "gpu_mem_after_load_gib",
    "gpu_mem_peak_gib",
    "weights_gib",
    "kv_cache_gib",
    "throughput_texts_per_s",
    "throughput_tokens_per_s",
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
