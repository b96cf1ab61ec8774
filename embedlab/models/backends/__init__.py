"""Model backends: one protocol for encoders, one for lexical scorers, loaded by name.

Heavy dependencies (vLLM, torch, sentence-transformers) are imported inside each backend's
constructor, so `import embedlab` stays light."""

from __future__ import annotations

import importlib
from collections.abc import Sequence
from typing import Protocol, runtime_checkable

import numpy as np

from embedlab.errors import BackendUnavailableError
from embedlab.models.records import Kind, ModelSpec


@runtime_checkable
class Encoder(Protocol):
    """A dense embedding model.

    `encode` returns float32 of shape (len(texts), dim); rows are L2-normalised when
    `spec.normalize`. The backend applies `spec.format` (prompts) itself; `instruction` is
    the data set's task instruction; `dimensions` asks for an MRL-truncated embedding."""

    spec: ModelSpec

    def encode(
        self,
        texts: Sequence[str],
        kind: Kind = "document",
        *,
        instruction: str | None = None,
        dimensions: int | None = None,
    ) -> np.ndarray: ...


@runtime_checkable
class LexicalScorer(Protocol):
    """A lexical model: index a corpus, then score queries against it (n_queries, n_docs)."""

    spec: ModelSpec

    def index(self, corpus: Sequence[str]) -> None: ...

    def score(self, queries: Sequence[str]) -> np.ndarray: ...


EXTRAS = {
    "embedlab.models.backends.vllm": "vllm",
    "embedlab.models.backends.st": "st",
    "embedlab.models.backends.bundled": "core",
    "embedlab.models.backends.lexical": "core",
}


def load_backend(spec: ModelSpec) -> Encoder | LexicalScorer:
    """Instantiate the backend named by `spec.backend` ("module:Class" or a short name)."""
    module_name, _, class_name = spec.backend_target.partition(":")
    try:
        module = importlib.import_module(module_name)
    except ImportError as exc:
        extra = EXTRAS.get(module_name)
        hint = f"pip install 'embedlab[{extra}]'" if extra and extra != "core" else "pip install embedlab"
        raise BackendUnavailableError(
            f"model {spec.name!r} needs backend {spec.backend!r}, which could not be imported "
            f"({exc}); install it with: {hint}"
        ) from exc
    return getattr(module, class_name)(spec)


def l2_normalize(x: np.ndarray) -> np.ndarray:
    """Rows scaled to unit length (zero rows stay zero), as float32."""
    x = np.asarray(x, dtype=np.float32)
    norms = np.linalg.norm(x, axis=-1, keepdims=True)
    return np.divide(x, norms, out=np.zeros_like(x), where=norms > 0)


def truncate(x: np.ndarray, dimensions: int | None, spec: ModelSpec) -> np.ndarray:
    """MRL: keep the first `dimensions` components, then renormalise."""
    if dimensions is None or dimensions == x.shape[-1]:
        return x
    if spec.mrl_min_dim is None:
        raise ValueError(f"model {spec.name!r} does not support MRL dimensions")
    if not spec.mrl_min_dim <= dimensions <= x.shape[-1]:
        raise ValueError(f"dimensions must be in [{spec.mrl_min_dim}, {x.shape[-1]}], got {dimensions}")
    return l2_normalize(x[..., :dimensions])
