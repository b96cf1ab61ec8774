"""A deterministic fake encoder for plumbing tests of the cache, the dimension sweep and
the prompt variants: each text's vector is seeded by its SHA-256, so equal inputs give equal
vectors and nothing is learned. Its results mean nothing; tests compare runs with each other.

`FakeEncoder.calls` counts loads and encodes in this process (use `isolate=False`);
`FakeEncoder.sizes` lists how many texts each encode call got, `FakeEncoder.kinds` their kind."""

from __future__ import annotations

import hashlib
from collections import Counter
from collections.abc import Sequence

import numpy as np

from embedlab.models.backends import BaseEncoder, l2_normalize, truncate
from embedlab.models import ModelSpec

TARGET = "tests.fake_encoders:FakeEncoder"


class FakeEncoder(BaseEncoder):
    calls: Counter = Counter()
    sizes: list[int] = []
    kinds: list[str] = []

    def __init__(self, spec: ModelSpec) -> None:
        if spec.options.get("fail"):
            raise RuntimeError("this fake model was asked to fail")
        self.spec = spec
        FakeEncoder.calls["load"] += 1

    def effective_settings(self) -> dict[str, object]:
        return {"max_length": None, "dtype": "float32", "pooling": "none (seeded by SHA-256)", "normalize": True, "device": "cpu", "engine": "fake"}

    def encode(self, texts: Sequence[str], kind: str = "document", *, instruction: str | None = None, dimensions: int | None = None) -> np.ndarray:
        FakeEncoder.calls["encode"] += 1
        FakeEncoder.sizes.append(len(texts))
        FakeEncoder.kinds.append(kind)
        dim = self.spec.dim or 64
        rows = []
        for text in self.spec.format(list(texts), kind, instruction):
            seed = int.from_bytes(hashlib.sha256(text.encode("utf-8")).digest()[:8], "little")
            rows.append(np.random.default_rng(seed).standard_normal(dim))
        out = l2_normalize(np.asarray(rows, dtype=np.float32).reshape(len(rows), dim))
        return truncate(out, dimensions, self.spec)


def fake_spec(name: str = "fake-mrl", **changes) -> ModelSpec:
    """A record shaped like Qwen3-Embedding (instruction slot on queries, MRL from 8 up to
    64) that runs the fake encoder."""
    base = ModelSpec(
        name=name, backend=TARGET, dim=64, mrl_min_dim=8, prompts={"query": "Instruct: {instruction}\nQuery:{text}", "document": "{text}"},
        default_instruction="retrieve the passage", params_m=0.01, description="fake encoder for tests",
    )
    return base.with_options(**changes)
