"""`engine: ray`: encode texts on a Ray cluster with Ray Data, one model replica per actor,
into the embedding cache's shards (`embedlab.run.shards`); evaluation then reads them.

- Replicas: where the cluster has GPUs and the model runs on one (`cache.expects_gpu`),
  one actor per GPU (`num_gpus=1`); otherwise CPU actors of `threads` CPUs each (the
  record's option, 1 when unset), as many as the cluster's CPUs hold. A served model
  (`backend: openai`) is a CPU actor that sends requests: every actor loads its model
  through `load_backend(spec)`, nothing is special-cased.
- Texts travel as shards (`map_batches(..., batch_size=1)`: one shard per call); each actor
  returns the `.npy` bytes of a shard and the driver writes them into the cache as they
  stream back, so the cache folder only has to exist on the driver.
- Both the corpus and the queries are encoded on Ray (queries as shards of their own, keyed
  by the instruction where the prompt uses it); the driver never loads the model. A second
  run with every shard cached does not start or connect to Ray at all.
- What is measured where: actors time their own model load and report their own peak RSS
  (`ray_actor_*` columns); the driver times the whole pass on its clock. The host and GPU
  memory columns stay empty (the driver does not hold the model) and there are no timed
  repeats or throughput pass (latency and texts/s stay empty): `measurement_note` says so.
- Scorers (BM25, cue baselines) index their corpus on the driver, through the local runner.
"""

from __future__ import annotations

import contextlib
import json
import os
import re
import socket
import statistics
import time
import uuid
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from embedlab.errors import BackendUnavailableError, ConfigError
from embedlab.models import ModelSpec
from embedlab.run.cache import EmbeddingCache, default_cache_dir, encoding_code_digest, expects_gpu, now_iso, npy_bytes
from embedlab.run.shards import Shard, ShardStore, encode_batches, plan_shards, shard_size
from embedlab.types import DatasetOutcome, EncodeTask, ModelOutcome, RunSettings

Runner = Callable[[ModelSpec, Sequence[EncodeTask], RunSettings], ModelOutcome]
CONNECT_TIMEOUT_S = 5.0  # TCP check of a cluster address before ray.init (which retries for minutes)
MEASUREMENT_NOTE = (
    "engine ray: vectors computed by Ray actors; host/GPU memory columns empty (the driver does not hold the model; "
    "ray_actor_rss_peak_gib is the largest actor's own peak RSS, measured in that actor); no timed repeats or "
    "throughput pass (latency, texts/s empty); load_s is the median of the actors' model load times; "
    "ray_encode_wall_s is the driver's clock over the whole pass (actor start, loads, transfers included)"
)


class RayClusterError(ConfigError):
    """The Ray cluster of `settings.ray_address` cannot be reached or used."""


class ShardEncodeError(RuntimeError):
    """Encoding shards on Ray failed (a replica failed to load or to encode)."""


# ---- the cluster ----------------------------------------------------------------------


def check_address(address: str | None, timeout_s: float = CONNECT_TIMEOUT_S) -> None:
    """Raise RayClusterError unless `address` is None, "local", "auto" or a host:port
    (optionally ray://) that accepts a TCP connection within `timeout_s` seconds: Ray's own
    connect retries for minutes on an unreachable address."""
    if address in (None, "local"):
        return
    target = os.environ.get("RAY_ADDRESS") if address == "auto" else address
    if not target or target in ("auto", "local"):
        return
    host, _, port = target.removeprefix("ray://").rpartition(":")
    if not host or not port.isdigit():
        raise RayClusterError(
            f"settings.ray_address: {target!r} is not host:port, ray://host:port, 'auto' or 'local' "
            "(e.g. 10.0.0.5:6379 for `ray start --head`, ray://head:10001 for Ray Client)"
        )
    try:
        socket.create_connection((host.strip("[]"), int(port)), timeout=timeout_s).close()
    except OSError as exc:
        raise RayClusterError(
            f"cannot reach the Ray cluster at {target!r} (settings.ray_address / --ray-address) within {timeout_s:g} "
            f"s: {exc}. "
            "Start one with `ray start --head` and give the address it prints, or leave ray_address unset for a local "
            "cluster"
        ) from None


@contextlib.contextmanager
def ray_session(address: str | None, progress: bool = True) -> Iterator[str]:
    """This process connected to Ray for the block; yields a one-line description of the
    cluster. An existing connection (`ray.init` called before, e.g. in a notebook) is used
    as it is; otherwise `address` is connected to (None: a new local cluster) and shut down
    after the block. Ray Data's progress bars follow `progress`."""
    try:
        import ray
        from ray.data import DataContext
    except ImportError as exc:
        raise BackendUnavailableError(
            f"engine 'ray' needs Ray Data ({exc}); install it with: pip install 'embedlab[ray]'"
        ) from exc
    started = False
    if not ray.is_initialized():
        check_address(address)
        kwargs: dict[str, Any] = {"log_to_driver": progress}
        if address in (None, "local"):
            kwargs["include_dashboard"] = False
        try:
            ray.init(address=address or "local", **kwargs)
        except Exception as exc:  # noqa: BLE001 - Ray raises bare Exceptions for a node that fails to start
            where = (
                f"connect to the Ray cluster at {address!r} (settings.ray_address)"
                if address not in (None, "local")
                else "start a local Ray cluster"
            )
            raise RayClusterError(f"could not {where}: {type(exc).__name__}: {' '.join(str(exc).split())}") from None
        started = True
    context = DataContext.get_current()
    bars, original = context.enable_progress_bars, context.raise_original_map_exception
    context.enable_progress_bars = progress
    context.raise_original_map_exception = True  # a replica's own error, not Ray's UserCodeException
    try:
        resources = ray.cluster_resources()
        nodes = sum(1 for n in ray.nodes() if n.get("Alive"))
        cpus, gpus = resources.get("CPU", 0), resources.get("GPU", 0)
        yield f"{address or 'local'}: {nodes} node(s), {cpus:g} CPUs, {gpus:g} GPUs"
    finally:
        context.enable_progress_bars, context.raise_original_map_exception = bars, original
        if started:
            ray.shutdown()


@dataclass(frozen=True)
class Replicas:
    """How many model replicas run and what each one holds."""

    actors: int
    on_gpu: bool
    remote_args: dict[str, Any]

    @property
    def label(self) -> str:
        return "1 GPU per actor" if self.on_gpu else f"{self.remote_args['num_cpus']:g} CPU(s) per actor"


def plan_replicas(spec: ModelSpec, resources: dict[str, float], n_shards: int, actors: int | None = None) -> Replicas:
    """One actor per GPU when the cluster has GPUs and `spec` runs on one; else CPU actors
    of the record's `threads` CPUs (1 when unset), as many as the cluster's CPUs hold. At
    most one actor per shard; `actors` overrides the count."""
    gpus = int(resources.get("GPU", 0))
    if gpus and expects_gpu(spec, True):
        count, on_gpu, remote = gpus, True, {"num_gpus": 1}
    else:
        cpus = max(1.0, float(resources.get("CPU", 1)))
        per = min(float(spec.options.get("threads", 1)), cpus)
        count, on_gpu, remote = max(1, int(cpus // per)), False, {"num_cpus": per}
    if actors is not None:
        if actors < 1:
            raise ConfigError(f"actors must be >= 1, got {actors}")
        count = actors
    return Replicas(max(1, min(count, n_shards)), on_gpu, remote)


# ---- the replica (a Ray Data actor) -----------------------------------------------------


class ShardEncoder:
    """One model replica: loads the model once (timed) and encodes one shard per call,
    returning its `.npy` bytes with what it measured. Refuses to start when its package
    versions or encoding code differ from the driver's (the key would lie)."""

    def __init__(self, spec: ModelSpec, settings: RunSettings, versions: dict[str, str], encoding_code: str) -> None:
        from embedlab.models.backends import load_backend

        mine = EmbeddingCache.versions(spec)
        if mine != versions:
            raise RuntimeError(
                f"this Ray worker ({socket.gethostname()}) has {mine}, the driver {versions}: install the same "
                "versions on every node"
            )
        if encoding_code_digest() != encoding_code:
            raise RuntimeError(
                f"this Ray worker ({socket.gethostname()}) runs other embedlab encoding code than the driver: install "
                "the same embedlab on every node"
            )
        self.spec, self.settings = spec, settings
        start = time.perf_counter()
        self.backend = load_backend(spec, settings.dimensions)
        self.load_s = time.perf_counter() - start
        if spec.scores_corpus:
            raise RuntimeError(f"model {spec.name!r} is a scorer, not an encoder: it cannot encode shards")
        self.effective = json.dumps(dict(self.backend.effective_settings()), default=str)
        self.node, self.pid = socket.gethostname(), os.getpid()

    def __call__(self, batch: dict[str, np.ndarray]) -> dict[str, np.ndarray]:
        from embedlab.run import probe

        keys, raws, seconds = [], [], []
        for key, texts, kind, instruction in zip(batch["key"], batch["texts"], batch["kind"], batch["instruction"]):
            start = time.perf_counter()
            array = encode_batches(self.backend, [str(t) for t in texts], str(kind), str(instruction), self.settings)
            seconds.append(time.perf_counter() - start)
            keys.append(str(key))
            raws.append(npy_bytes(array))
        n = len(keys)
        return {
            "key": np.array(keys),
            "npy": np.array(raws, dtype=object),
            "encode_s": np.array(seconds),
            "load_s": np.full(n, self.load_s),
            "rss_peak_gib": np.full(n, probe.peak_rss_gib()),
            "node": np.array([self.node] * n),
            "pid": np.full(n, self.pid),
            "effective": np.array([self.effective] * n),
        }


# ---- encoding shards --------------------------------------------------------------------


@dataclass
class EncodeSummary:
    """One Ray pass: shards and texts encoded, the driver's wall time (s), and per actor
    (node:pid) its model load time (s) and own peak RSS (GiB)."""

    cluster: str = ""
    replicas: str = ""
    actors: int = 0
    shards_total: int = 0
    shards_cached: int = 0
    shards_encoded: int = 0
    texts_encoded: int = 0
    wall_s: float = float("nan")
    actor_load_s: dict[str, float] = field(default_factory=dict)
    actor_rss_peak_gib: dict[str, float] = field(default_factory=dict)
    effective: dict[str, Any] = field(default_factory=dict)
    run_id: str = ""


_ERROR_LINE = re.compile(r"^([A-Za-z_][\w.]*(?:Error|Exception)): (.+)$", re.MULTILINE)
_RAY_WRAPPERS = ("UserCodeException", "RayTaskError", "SystemException", "ActorDiedError")


def _root_cause(exc: BaseException) -> str:
    """The innermost cause of a Ray error, as one line: the first error line that is not one
    of Ray's wrappers, looked for in the texts of the exception chain from the innermost out
    (a replica that fails while it is built reaches the driver as an ActorDiedError whose
    text, not its chain, holds the original error)."""
    chain = [exc]
    while True:
        inner = getattr(chain[-1], "cause", None) or chain[-1].__cause__
        if not isinstance(inner, BaseException) or inner in chain:
            break
        chain.append(inner)
    for link in reversed(chain):
        for name, message in _ERROR_LINE.findall(str(link)):
            if not name.startswith("ray.") and name not in _RAY_WRAPPERS:
                return f"{name.rpartition('.')[2]}: {message.strip()[:800]}"
    seen = chain[-1]
    return f"{type(seen).__name__}: {' '.join(str(seen).split())[:800]}"


def encode_missing(
    spec: ModelSpec,
    shards: Sequence[Shard],
    settings: RunSettings,
    store: ShardStore,
    summary: EncodeSummary,
    actors: int | None = None,
) -> None:
    """Encode `shards` (all missing from `store`) on the connected Ray cluster and store each
    as it comes back; fills `summary`. Raises ShardEncodeError with the replica's error."""
    import ray

    unique = list({s.key: s for s in shards}.values())
    if not unique:
        return
    replicas = plan_replicas(spec, ray.cluster_resources(), len(unique), actors)
    summary.replicas, summary.actors = replicas.label, replicas.actors
    summary.run_id = summary.run_id or uuid.uuid4().hex
    by_key = {s.key: s for s in unique}
    items = [{"key": s.key, "texts": list(s.texts), "kind": s.kind, "instruction": s.instruction} for s in unique]
    start = time.perf_counter()
    try:
        ds = ray.data.from_items(items, override_num_blocks=len(items))
        ds = ds.map_batches(
            ShardEncoder,
            batch_size=1,
            compute=ray.data.ActorPoolStrategy(size=replicas.actors),
            fn_constructor_kwargs={
                "spec": spec,
                "settings": settings,
                "versions": EmbeddingCache.versions(spec),
                "encoding_code": encoding_code_digest(),
            },
            **replicas.remote_args,
        )
        for row in ds.iter_rows():
            shard = by_key[str(row["key"])]
            actor = f"{row['node']}:{row['pid']}"
            effective = json.loads(row["effective"])
            store.store(
                shard,
                bytes(row["npy"]),
                {
                    "run_id": summary.run_id,
                    "measured_at": now_iso(),
                    "engine": "ray",
                    "actor": actor,
                    "encode_s": float(row["encode_s"]),
                    "effective": effective,
                },
            )
            summary.shards_encoded += 1
            summary.texts_encoded += len(shard.texts)
            summary.actor_load_s[actor] = float(row["load_s"])
            summary.actor_rss_peak_gib[actor] = max(
                float(row["rss_peak_gib"]), summary.actor_rss_peak_gib.get(actor, 0.0)
            )
            summary.effective = effective
    except Exception as exc:
        raise ShardEncodeError(f"encoding on Ray failed: {_root_cause(exc)}") from exc
    finally:
        summary.wall_s = time.perf_counter() - start


def _cache_dir(settings: RunSettings) -> Path:
    """Where shards go: `settings.cache_dir`, else the default embedding cache."""
    return Path(settings.cache_dir) if settings.cache_dir else default_cache_dir()


def _device_variants(spec: ModelSpec) -> list[bool]:
    """The keys a model's shards may have: on a GPU (first, where it can run on one) or not."""
    return sorted({expects_gpu(spec, False), expects_gpu(spec, True)}, reverse=True)


def _complete_variant(spec: ModelSpec, plan: Callable[[bool], list[Shard]], store: ShardStore) -> bool | None:
    """The device variant whose shards are all stored (no Ray needed), or None."""
    for on_gpu in _device_variants(spec):
        if all(store.folder(s).exists() for s in plan(on_gpu)):
            return on_gpu
    return None


def ensure_shards(
    spec: ModelSpec,
    plan: Callable[[bool], list[Shard]],
    settings: RunSettings,
    store: ShardStore,
    actors: int | None = None,
) -> tuple[list[Shard], dict[str, np.ndarray], EncodeSummary]:
    """Every shard of `plan(on_gpu)` read from `store`, those missing encoded on Ray first.
    Returns the shards, their vectors by key, and the summary of the Ray pass (empty when
    every shard was stored: then Ray is not started)."""
    summary = EncodeSummary()
    on_gpu = _complete_variant(spec, plan, store)
    if on_gpu is not None:
        shards = plan(on_gpu)
        vectors = {}
        for s in shards:
            if s.key not in vectors and (found := store.load(s)) is not None:
                vectors[s.key] = found[0]
                summary.effective = summary.effective or dict(found[1].get("effective") or {})
        if len(vectors) == len({s.key for s in shards}):
            summary.shards_total = summary.shards_cached = len(vectors)
            return shards, vectors, summary
        summary.effective = {}
    with ray_session(settings.ray_address, settings.progress) as cluster:
        import ray

        summary.cluster = cluster
        gpus = ray.cluster_resources().get("GPU", 0)
        shards = plan(bool(gpus) and expects_gpu(spec, True))
        vectors = {}
        for s in shards:
            if s.key not in vectors and (found := store.load(s)) is not None:
                vectors[s.key] = found[0]
        missing = [s for s in shards if s.key not in vectors]
        summary.shards_total = len({s.key for s in shards})
        summary.shards_cached = len(vectors)
        encode_missing(spec, missing, settings, store, summary, actors)
    for s in missing:
        if s.key not in vectors:
            found = store.load(s)
            if found is None:
                raise ShardEncodeError(
                    f"shard {s.key[:12]} ({s.kind}s {s.start}..{s.start + len(s.texts)}) was not stored by the Ray pass"
                )
            vectors[s.key] = found[0]
    return shards, vectors, summary


def encode_corpus(
    spec: ModelSpec,
    texts: Sequence[str],
    settings: RunSettings,
    instruction: str = "",
    shard_texts: int | None = None,
    actors: int | None = None,
) -> EncodeSummary:
    """`embedlab encode`: the corpus `texts` encoded as documents into the embedding cache
    (`settings.cache_dir`, else the default) on the Ray cluster of `settings.ray_address`;
    shards already stored are not encoded again."""
    if spec.scores_corpus:
        raise ConfigError(f"model {spec.name!r} is a scorer (it indexes its corpus when it runs): nothing to encode")
    store = ShardStore(_cache_dir(settings))
    _, _, summary = ensure_shards(
        spec,
        lambda on_gpu: plan_shards(spec, texts, "document", instruction, settings, on_gpu, shard_texts),
        settings,
        store,
        actors,
    )
    return summary


# ---- the runner -------------------------------------------------------------------------


def run_on_ray(
    spec: ModelSpec, tasks: Sequence[EncodeTask], settings: RunSettings, shard_texts: int | None = None
) -> ModelOutcome:
    """One dense model on every task, its queries and corpora encoded on Ray into the
    cache's shards (what is stored is read, not encoded again); the outcome holds the same
    embeddings as the local runner's, and the measurements described in
    `MEASUREMENT_NOTE`. A replica's failure is a failed outcome with its reason."""
    store = ShardStore(_cache_dir(settings))

    def plan(on_gpu: bool) -> list[Shard]:
        shards: list[Shard] = []
        for task in tasks:
            shards += plan_shards(spec, task.queries, "query", task.instruction, settings, on_gpu, shard_texts)
            shards += plan_shards(spec, task.documents, "document", task.instruction, settings, on_gpu, shard_texts)
        return shards

    outcome = ModelOutcome(model=spec.name)
    try:
        shards, vectors, summary = ensure_shards(spec, plan, settings, store)
    except ShardEncodeError as exc:
        outcome.status, outcome.error = "failed", " ".join(str(exc).split())
        return outcome
    by_task: dict[tuple[int, str], list[np.ndarray]] = {}
    position = 0
    for index, task in enumerate(tasks):
        for kind, texts in (("query", task.queries), ("document", task.documents)):
            n = -(-len(texts) // shard_size(settings, shard_texts))
            by_task[(index, kind)] = [vectors[s.key] for s in shards[position : position + n]]
            position += n
    for index, task in enumerate(tasks):
        result = DatasetOutcome()
        result.query_embeddings = _join(by_task[(index, "query")])
        result.doc_embeddings = _join(by_task[(index, "document")])
        outcome.dim = int(result.doc_embeddings.shape[1]) if result.doc_embeddings.size else outcome.dim
        outcome.datasets[task.dataset] = result
    encoded = summary.shards_encoded > 0
    if encoded:
        outcome.load_s = statistics.median(summary.actor_load_s.values())
    outcome.extra.update(
        engine="ray",
        cached=not encoded,
        effective=summary.effective,
        measurement_note=MEASUREMENT_NOTE,
        ray_cluster=summary.cluster or "not connected (every shard was in the cache)",
        ray_replicas=summary.replicas,
        ray_actors=summary.actors,
        ray_shards_cached=summary.shards_cached,
        ray_shards_encoded=summary.shards_encoded,
        ray_texts_encoded=summary.texts_encoded,
        ray_encode_wall_s=summary.wall_s if encoded else float("nan"),
        ray_actor_rss_peak_gib=max(summary.actor_rss_peak_gib.values(), default=float("nan")),
        ray_run_id=summary.run_id,
        shard_cache=str(store.root),
    )
    return outcome


def _join(arrays: list[np.ndarray]) -> np.ndarray:
    return np.concatenate(arrays) if arrays else np.zeros((0, 0), dtype=np.float32)


def ray_runner(local: Runner) -> Runner:
    """The runner of `engine: ray`: dense models through `run_on_ray`; scorers (BM25, cue
    baselines) through `local`, the runner of `engine: local`, marked so in `extra`."""

    def run(spec: ModelSpec, tasks: Sequence[EncodeTask], settings: RunSettings) -> ModelOutcome:
        if spec.scores_corpus:
            outcome = local(spec, tasks, settings)
            outcome.extra["engine"] = "local (a scorer indexes its corpus on the driver)"
            return outcome
        return run_on_ray(spec, tasks, settings)

    return run
