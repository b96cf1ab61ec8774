"""Embedding shards: a long list of texts (a corpus, or a data set's queries) encoded in
fixed-size pieces, each stored in the embedding cache under its own content-addressed key,
so a corpus encoded once (on a Ray cluster, `embedlab.run.distributed`, or by `embedlab
encode`) is read back by every later run that needs the same vectors, and an interrupted
encode resumes where it stopped.

A shard's key (`shard_material`) holds what its vectors depend on, like a cache entry's
(`embedlab.run.cache`): the model record without labels or speed options, the model context
(weights identity, embedlab's version and encoding-code digest, effective settings), the
versions of the backend's packages, a digest of this file (the batching below), the kind
(query / document), the task instruction only where the record's prompt for that kind uses
it, the MRL dimensions, the batch size and the SHA-256 of the shard's texts. A shard holds
`k * batch_size` texts, cut from position 0, and is encoded `batch_size` texts at a time, so
its batches are exactly those of the single-process runner and so are its vectors.

Layout: `<cache>/shards/v1/<key[:2]>/<key>/{shard.json, embeddings.npy}`; the array is read
with `allow_pickle=False` and checked against its SHA-256, shape and dtype; a shard that
fails a check is deleted, logged and encoded again. Nothing here imports Ray.
"""

from __future__ import annotations

import functools
import hashlib
import json
import logging
import shutil
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from embedlab.files import write_folder
from embedlab.models import Kind, ModelSpec
from embedlab.run.cache import Counts, EmbeddingCache, array_from_npy, model_context, record_material, texts_material
from embedlab.types import RunSettings

SHARD_FORMAT = "embedlab-shard/1"
SHARD_BATCHES = 16  # texts per shard by default: this many batches of `RunSettings.batch_size`
log = logging.getLogger("embedlab.run.shards")


@functools.lru_cache(maxsize=1)
def shard_code_digest() -> str:
    """SHA-256 of this file: the batching that turns a shard's texts into its vectors."""
    return hashlib.sha256(Path(__file__).read_bytes()).hexdigest()


def shard_size(settings: RunSettings, shard_texts: int | None = None) -> int:
    """Texts per shard: `shard_texts`, else `SHARD_BATCHES * settings.batch_size`. It must
    be a positive multiple of the batch size (a ValueError says so), so a shard's batches
    are the runner's."""
    size = SHARD_BATCHES * settings.batch_size if shard_texts is None else int(shard_texts)
    if size <= 0 or size % settings.batch_size:
        raise ValueError(
            f"shard_texts must be a positive multiple of batch_size ({settings.batch_size}), got {shard_texts}"
        )
    return size


def shard_material(
    spec: ModelSpec,
    kind: Kind,
    instruction: str | None,
    texts: Sequence[str],
    settings: RunSettings,
    context: dict[str, Any],
    versions: dict[str, str],
) -> dict[str, Any]:
    """What one shard's vectors depend on (its key is the SHA-256 of this, as JSON)."""
    material = {
        "format": SHARD_FORMAT,
        "shard_code": shard_code_digest(),
        **texts_material(spec, record_material(spec), kind, instruction, texts, settings, context, versions),
    }
    return json.loads(json.dumps(material, default=str))


@dataclass(frozen=True)
class Shard:
    """Texts `start:start+len(texts)` of a list, of one kind, and their key."""

    kind: Kind
    instruction: str
    start: int
    texts: tuple[str, ...]
    material: dict[str, Any] = field(repr=False, compare=False)

    @property
    def key(self) -> str:
        return hashlib.sha256(json.dumps(self.material, sort_keys=True, ensure_ascii=False).encode()).hexdigest()


def plan_shards(
    spec: ModelSpec,
    texts: Sequence[str],
    kind: Kind,
    instruction: str,
    settings: RunSettings,
    on_gpu: bool = False,
    shard_texts: int | None = None,
) -> list[Shard]:
    """`texts` cut into shards of `shard_size` texts from position 0, keyed for `spec` run
    on a GPU (`on_gpu`) or not (that decides the effective dtype in the key)."""
    size = shard_size(settings, shard_texts)
    context = json.loads(json.dumps(model_context(spec, gpu_present=on_gpu), default=str))
    versions = EmbeddingCache.versions(spec)
    shards = []
    for start in range(0, len(texts), size):
        piece = tuple(texts[start : start + size])
        shards.append(
            Shard(
                kind,
                instruction,
                start,
                piece,
                shard_material(spec, kind, instruction, piece, settings, context, versions),
            )
        )
    return shards


def encode_batches(
    encoder: Any, texts: Sequence[str], kind: Kind, instruction: str, settings: RunSettings
) -> np.ndarray:
    """`texts` encoded by `encoder` (bound to the run's dimensions at load) `settings.batch_size`
    at a time (the runner's batching), float32
    (len(texts), dim); raises ValueError on NaN or inf."""
    chunks = [
        encoder.encode(list(texts[start : start + settings.batch_size]), kind, instruction=instruction)
        for start in range(0, len(texts), settings.batch_size)
    ]
    array = np.concatenate(chunks).astype(np.float32, copy=False) if chunks else np.zeros((0, 0), dtype=np.float32)
    if array.ndim != 2 or len(array) != len(texts):
        raise ValueError(f"{kind} embeddings: expected {len(texts)} rows of vectors, got shape {array.shape}")
    bad = ~np.isfinite(array)
    if bad.any():
        raise ValueError(f"{kind} embeddings: {int(bad.any(axis=1).sum())} of {len(array)} rows contain NaN or inf")
    return array


class CorruptShard(Exception):
    """A stored shard that cannot be trusted; the message says why."""


@dataclass
class ShardStats(Counts):
    """Counts since the store was made (shards)."""


@dataclass
class ShardStore:
    """The shards of one embedding-cache folder (`<root>/shards/v1/...`)."""

    root: Path
    stats: ShardStats = field(default_factory=ShardStats)

    def __post_init__(self) -> None:
        self.root = Path(self.root)

    def folder(self, shard: Shard) -> Path:
        key = shard.key
        return self.root / "shards" / "v1" / key[:2] / key

    def load(self, shard: Shard) -> tuple[np.ndarray, dict[str, Any]] | None:
        """The shard's vectors (float32, (n_texts, dim)) and what its `shard.json` says of
        the run that computed them, or None (a miss). A shard that fails a check is
        deleted, logged, counted and read as a miss."""
        folder = self.folder(shard)
        if not folder.exists():
            self.stats.misses += 1
            return None
        try:
            found = self._read(folder, shard)
        except CorruptShard as exc:
            log.warning("embedlab cache: corrupted shard %s (%s); encoding it again", folder, exc)
            shutil.rmtree(folder, ignore_errors=True)
            self.stats.corrupted += 1
            self.stats.misses += 1
            return None
        self.stats.hits += 1
        return found

    def _read(self, folder: Path, shard: Shard) -> tuple[np.ndarray, dict[str, Any]]:
        try:
            meta = json.loads((folder / "shard.json").read_text(encoding="utf-8"))
        except FileNotFoundError:
            raise CorruptShard("shard.json missing") from None
        except (UnicodeDecodeError, json.JSONDecodeError) as exc:
            raise CorruptShard(f"shard.json unreadable: {exc}") from None
        if not isinstance(meta, dict) or meta.get("format") != SHARD_FORMAT:
            raise CorruptShard(
                f"format {meta.get('format') if isinstance(meta, dict) else meta!r}, expected {SHARD_FORMAT!r}"
            )
        if meta.get("material") != shard.material:
            raise CorruptShard("key material differs from the model record / weights / code / texts")
        try:
            raw = (folder / "embeddings.npy").read_bytes()
        except FileNotFoundError:
            raise CorruptShard("embeddings.npy missing") from None
        if hashlib.sha256(raw).hexdigest() != meta.get("sha256"):
            raise CorruptShard("embeddings.npy does not match its checksum")
        array = array_from_npy(raw, len(shard.texts), CorruptShard)
        return array, dict(meta.get("computed") or {})

    def store(self, shard: Shard, raw: bytes, computed: dict[str, Any]) -> Path:
        """Write one shard from the bytes of its `.npy` file (checked first: shape, dtype,
        finite) and `computed` (run id, time, where and how it was encoded). Built in a
        temporary folder and renamed into place: a reader never sees half a shard."""
        array_from_npy(raw, len(shard.texts), ValueError)
        folder = self.folder(shard)
        meta = {
            "format": SHARD_FORMAT,
            "kind": shard.kind,
            "start": shard.start,
            "material": shard.material,
            "sha256": hashlib.sha256(raw).hexdigest(),
            "computed": computed,
        }
        write_folder(
            folder,
            {
                "embeddings.npy": raw,
                "shard.json": json.dumps(meta, ensure_ascii=False, indent=1, default=str).encode("utf-8"),
            },
        )
        self.stats.stored += 1
        return folder
