"""Backends that misbehave on purpose, for the runner's robustness tests: a worker killed
while loading (like an out-of-memory kill), one that says why on stderr before dying, one
that hangs, and one whose embeddings overflow to NaN/inf like an fp16 model can."""

import os
import sys
import time

import numpy as np

from embedlab.models.backends import BaseEncoder


class CrashBackend:
    def __init__(self, spec) -> None:
        os._exit(137)


class NoisyCrashBackend:
    def __init__(self, spec) -> None:
        print("loading weights 3/4", file=sys.stderr)
        print("RuntimeError: CUDA out of memory. Tried to allocate 2.00 GiB", file=sys.stderr, flush=True)
        os._exit(1)


class HangingBackend:
    def __init__(self, spec) -> None:
        print("waiting for a GPU that never frees up", file=sys.stderr, flush=True)
        time.sleep(3600)


class OverflowEncoder(BaseEncoder):
    """Finite for documents, NaN/inf for queries (as an overflowing half-precision model)."""

    def __init__(self, spec) -> None:
        self.spec = spec

    def effective_settings(self):
        return {"dtype": "float16", "device": "cpu", "engine": "overflow on purpose"}

    def encode(self, texts, kind="document", *, instruction=None, dimensions=None):
        out = np.ones((len(texts), 8), dtype=np.float32)
        if kind == "query" and len(texts):
            out[0, 0] = np.nan
            out[-1, 1] = np.inf
        return out
