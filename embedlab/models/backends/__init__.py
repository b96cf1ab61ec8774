"""Model backends: one protocol for encoders, one for lexical scorers, loaded by name.

Heavy dependencies (vLLM, torch, sentence-transformers) are imported inside each backend's
constructor, so `import embedlab` stays light."""

from __future__ import annotations

import importlib
from collections.abc import Sequence
from typing import Any, Protocol, runtime_checkable

import numpy as np

from embedlab.errors import BackendUnavailableError
from embedlab.models.spec import Kind, ModelSpec


@runtime_checkable
class Encoder(Protocol):
    """A dense embedding model: what the runner, the cache and `embedlab check` call.

    `encode` returns float32 of shape (len(texts), dim); rows are L2-normalised when
    `spec.normalize`. The backend applies `spec.format` (prompts) itself; `instruction` is
    the data set's task instruction; `dimensions` asks for an MRL-truncated embedding.
    The other methods are capabilities every backend declares; one it lacks answers None
    (`token_ids`, `count_tokens`) or an empty mapping (`memory_report`): `BaseEncoder`
    gives those answers, so a backend overrides only what it has."""

    spec: ModelSpec

    def encode(
        self,
        texts: Sequence[str],
        kind: Kind = "document",
        *,
        instruction: str | None = None,
        dimensions: int | None = None,
    ) -> np.ndarray: ...

    def prepare(self, texts: Sequence[str], kind: Kind = "document", instruction: str | None = None) -> list[str]:
        """The exact strings the model is given (prompt applied, end token appended)."""
        ...

    def token_ids(
        self, texts: Sequence[str], kind: Kind = "document", instruction: str | None = None
    ) -> list[list[int]] | None:
        """The token ids the model sees for `texts`, or None where the engine hides them."""
        ...

    def count_tokens(self, texts: Sequence[str]) -> int | None:
        """Tokens of `texts` as documents (for tokens/s), or None where it cannot count."""
        ...

    def memory_report(self) -> dict[str, Any]:
        """What the backend knows of its memory: weights_gib, kv_cache_gib, engine figures."""
        ...

    def effective_settings(self) -> dict[str, Any]:
        """What the model actually runs with: max_length, dtype, pooling, normalize, device, engine."""
        ...


@runtime_checkable
class Scorer(Protocol):
    """A model that scores a corpus itself (BM25, cue baselines, multi-vector or sparse
    modes): index a corpus, then score queries against it, (n_queries, n_docs) float32."""

    spec: ModelSpec

    def index(self, corpus: Sequence[str]) -> None: ...

    def judge(self, queries: Sequence[str], relevance: Any) -> None:
        """The data set's judgements of the indexed corpus (an `embedlab.types.Relevance`, rows in
        `queries` order), given after `index` by a run; a scorer that learns from them (the
        query-blind cue baseline) uses them, the others ignore them (`BaseScorer`)."""
        ...

    def score(self, queries: Sequence[str]) -> np.ndarray: ...

    def count_tokens(self, texts: Sequence[str]) -> int | None: ...

    def memory_report(self) -> dict[str, Any]: ...

    def effective_settings(self) -> dict[str, Any]: ...


class _BaseBackend:
    """Defaults both kinds of backend share: no token count, no memory figures; what a
    backend runs with must be said (`effective_settings`)."""

    spec: ModelSpec

    def count_tokens(self, texts: Sequence[str]) -> int | None:
        return None

    def memory_report(self) -> dict[str, Any]:
        return {}

    def effective_settings(self) -> dict[str, Any]:
        raise NotImplementedError(f"{type(self).__name__} must say what it runs with (effective_settings)")


class BaseEncoder(_BaseBackend):
    """Defaults for the optional capabilities of `Encoder`: prompts applied by
    `spec.format`, no token ids, no token count, no memory figures. Subclasses set
    `self.spec` and implement `encode` and `effective_settings`."""

    def prepare(self, texts: Sequence[str], kind: Kind = "document", instruction: str | None = None) -> list[str]:
        return self.spec.format(list(texts), kind, instruction)

    def token_ids(
        self, texts: Sequence[str], kind: Kind = "document", instruction: str | None = None
    ) -> list[list[int]] | None:
        return None


class BaseScorer(_BaseBackend):
    """Defaults for `Scorer`'s optional capabilities (no token count, no memory figures, no
    use for the judgements)."""

    def judge(self, queries: Sequence[str], relevance: Any) -> None:
        return None


EXTRAS = {
    "embedlab.models.backends.vllm": "vllm",
    "embedlab.models.backends.st": "st",
    "embedlab.models.backends.bundled": "core",
    "embedlab.models.backends.lexical": "core",
    "embedlab.models.backends.shortcut": "core",
    "embedlab.models.backends.openai": "openai",
}


def load_backend(spec: ModelSpec, dimensions: int | None = None) -> Encoder | Scorer:
    """Instantiate the backend named by `spec.backend` ("module:Class" or a short name); an
    encoder with `dimensions` (MRL) is bound to them: every `encode` then asks for them."""
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
    wanted, what = (Scorer, "a scorer (index/score)") if spec.scores_corpus else (Encoder, "an encoder (encode)")
    backend = getattr(module, class_name)(spec)
    if not isinstance(backend, wanted):
        raise BackendUnavailableError(
            f"model {spec.name!r}: backend {spec.backend!r} gave {type(backend).__name__}, not {what}, which this "
            "record needs"
        )
    if dimensions is None or spec.scores_corpus:
        return backend
    spec.check_dimensions(dimensions)
    return DimensionsBound(backend, dimensions)


class DimensionsBound:
    """An encoder whose every `encode` asks for `dimensions` (MRL truncation), bound once at
    load; everything else is the encoder's own."""

    def __init__(self, encoder: Encoder, dimensions: int) -> None:
        self.encoder, self.dimensions = encoder, dimensions

    def encode(self, texts: Sequence[str], kind: Kind = "document", *, instruction: str | None = None) -> np.ndarray:
        return self.encoder.encode(texts, kind, instruction=instruction, dimensions=self.dimensions)

    def __getattr__(self, name: str) -> Any:
        return getattr(self.encoder, name)


def l2_normalize(x: np.ndarray) -> np.ndarray:
    """Rows scaled to unit length (zero rows stay zero), as float32."""
    x = np.asarray(x, dtype=np.float32)
    norms = np.linalg.norm(x, axis=-1, keepdims=True)
    return np.divide(x, norms, out=np.zeros_like(x), where=norms > 0)


def truncate(x: np.ndarray, dimensions: int | None, spec: ModelSpec) -> np.ndarray:
    """MRL: keep the first `dimensions` components, then renormalise."""
    spec.check_dimensions(dimensions, full=x.shape[-1])
    if dimensions is None or dimensions == x.shape[-1]:
        return x
    return l2_normalize(x[..., :dimensions])
