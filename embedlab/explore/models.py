"""The trap explorer's models: loaded once per kernel process, in the kernel (no worker
process), through `embedlab.models.load_backend`; embeddings kept per (model, kind,
instruction, text), so an edit re-encodes only the text that changed."""

from __future__ import annotations

import functools
import json
from collections.abc import Sequence
from dataclasses import dataclass, field

import numpy as np

from embedlab.models import ModelSpec


def _spec_key(spec: ModelSpec) -> str:
    return json.dumps(spec.to_dict(), sort_keys=True, default=str)


@functools.cache
def _backend(key: str):
    """The backend of a record, loaded once per process (the record's JSON is the key)."""
    from embedlab.models.backends import load_backend

    return load_backend(ModelSpec(**json.loads(key)))


def load_model(spec: ModelSpec):
    """The Encoder or Scorer of `spec`, loaded in this process once and reused."""
    return _backend(_spec_key(spec))


@dataclass
class EmbeddingMemo:
    """Embeddings kept per (model, kind, instruction, text); `encoded[model]` counts the
    texts each model actually encoded (a cached text costs nothing)."""

    vectors: dict[tuple[str, str, str, str], np.ndarray] = field(default_factory=dict)
    encoded: dict[str, int] = field(default_factory=dict)

    def embed(self, spec: ModelSpec, encoder, texts: Sequence[str], kind: str, instruction: str) -> np.ndarray:
        """Unit-length embeddings of `texts`, shape (len(texts), dim), float64; only the
        texts not seen before (for this model, kind and instruction) go to the encoder."""
        key = _spec_key(spec)
        missing = list(dict.fromkeys(t for t in texts if (key, kind, instruction, t) not in self.vectors))
        if missing:
            out = np.asarray(encoder.encode(missing, kind, instruction=instruction), dtype=np.float64)
            if out.shape[0] != len(missing):
                raise RuntimeError(f"model {spec.name!r} returned {out.shape[0]} embeddings for {len(missing)} texts")
            norms = np.linalg.norm(out, axis=1, keepdims=True)
            out = np.divide(out, norms, out=np.zeros_like(out), where=norms > 0)
            for text, vector in zip(missing, out):
                self.vectors[(key, kind, instruction, text)] = vector
            self.encoded[spec.name] = self.encoded.get(spec.name, 0) + len(missing)
        return np.stack([self.vectors[(key, kind, instruction, t)] for t in texts]) if texts else np.zeros((0, 0))


def score_candidates(spec: ModelSpec, model, memo: EmbeddingMemo, query: str, documents: Sequence[str], instruction: str) -> tuple[np.ndarray, str]:
    """Scores of `documents` for `query` under one model, and the score's name: cosine
    similarity for an encoder (embeddings from `memo`), the scorer's own score for a scorer
    (BM25 indexes just these documents, so its IDF is theirs)."""
    from embedlab.models.backends import Encoder, Scorer

    if isinstance(model, Scorer) and not isinstance(model, Encoder):
        model.index(list(documents))
        scores = np.asarray(model.score([query]), dtype=np.float64)[0]
        return scores, spec.score_name
    q = memo.embed(spec, model, [query], "query", instruction)
    d = memo.embed(spec, model, list(documents), "document", instruction)
    return d @ q[0], "cosine similarity"
