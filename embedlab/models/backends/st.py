"""In-process PyTorch backends: sentence-transformers, and plain transformers for models
without a sentence-transformers config (pooling and padding side from the model record).

Both apply the record's prompts themselves (never the model's own prompt settings, so a
prompt is never doubled), tokenise alike (`hub.tokenize`: truncated to the effective max
length, then the record's end token appended as an id, so a long input keeps it), truncate
MRL embeddings first and normalise after, and report torch's CUDA allocator figures when
they run on a GPU."""

from __future__ import annotations

import time
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np

from embedlab.errors import ConfigError
from embedlab.models.backends import BaseEncoder, l2_normalize, truncate
from embedlab.models.backends.hub import (
    effective_dtype,
    effective_max_length,
    end_token_id,
    resolve_model_path,
    tokenize,
)
from embedlab.models.spec import Kind, ModelSpec
from embedlab.types import GIB

POOLINGS = ("cls", "mean", "last")


def pick_device(spec: ModelSpec) -> str:
    """The `device` option, else cuda when torch sees a GPU, else cpu."""
    import torch

    return str(spec.options.get("device") or ("cuda" if torch.cuda.is_available() else "cpu"))


def pick_dtype(spec: ModelSpec, device: str, model_path: str | None = None) -> Any:
    """The torch dtype of `hub.effective_dtype` (the one rule every backend follows)."""
    import torch

    return getattr(torch, effective_dtype(spec, model_path, on_gpu=device != "cpu"))


def _version(package: str) -> str:
    from importlib.metadata import version

    return version(package)


NO_KV_CACHE = {"kv_cache_gib": float("nan"), "kv_cache_note": "no KV cache: one forward pass per batch"}


def cuda_memory_report(device: str, weights_bytes: int | None = None) -> dict[str, float]:
    """torch's view of this process's GPU memory, GiB: allocated after load (the weights),
    and the allocator's peaks while encoding."""
    import torch

    if not device.startswith("cuda"):
        return {}
    report = {
        "torch_max_allocated_gib": torch.cuda.max_memory_allocated() / GIB,
        "torch_max_reserved_gib": torch.cuda.max_memory_reserved() / GIB,
    }
    if weights_bytes is not None:
        report["torch_weights_gib"] = weights_bytes / GIB
    return report


def _param_bytes(model: Any) -> int:
    return sum(p.numel() * p.element_size() for p in model.parameters())


def embed_in_batches(ids: list[list[int]], tokenizer: Any, device: str, batch_size: int, forward: Any) -> np.ndarray:
    """Token ids run through `forward` (padded inputs on `device` -> a (batch, dim) tensor)
    `batch_size` at a time, longest first (similar lengths together: less padding); float32
    rows in the order of `ids`."""
    import torch

    order = np.argsort([-len(seq) for seq in ids], kind="stable")
    chunks = []
    with torch.inference_mode():
        for start in range(0, len(ids), batch_size):
            batch = [{"input_ids": ids[i]} for i in order[start : start + batch_size]]
            inputs = tokenizer.pad(batch, padding=True, return_tensors="pt").to(device)
            chunks.append(forward(inputs).float().cpu().numpy())
    out = np.empty((len(ids), chunks[0].shape[1]), dtype=np.float32)
    out[order] = np.concatenate(chunks)
    return out


class SentenceTransformersBackend(BaseEncoder):
    """A sentence-transformers model folder (modules.json: transformer, pooling, normalise),
    its modules fed the record's token ids: sentence-transformers' own tokenisation would
    cut an end token appended as text from a long input (Qwen3's last-token pooling then
    reads another token). A folder without modules.json is run by `TransformersBackend`
    instead, with the record's pooling (sentence-transformers would silently fall back to
    mean pooling).

    Options: device, dtype, batch_size (default 32), max_length (dtype and max length through
    `hub.effective_dtype` / `hub.effective_max_length`, as every backend)."""

    def __init__(self, spec: ModelSpec) -> None:
        import torch
        from sentence_transformers import SentenceTransformer

        self.spec = spec
        self.device = pick_device(spec)
        path = resolve_model_path(spec)
        start = time.perf_counter()
        self._dtype = pick_dtype(spec, self.device, path)
        self._model = SentenceTransformer(
            path, device=self.device, model_kwargs={"dtype": self._dtype}, local_files_only=True
        ).eval()
        if self.device.startswith("cuda"):
            torch.cuda.synchronize()
        self.load_weights_s = time.perf_counter() - start
        self._max_length = effective_max_length(spec, path)
        self._model.max_seq_length = self._max_length
        self._tokenizer = self._model.tokenizer
        if spec.padding_side:
            self._tokenizer.padding_side = spec.padding_side
        if self._tokenizer.pad_token_id is None:
            self._tokenizer.pad_token = spec.eos_token or self._tokenizer.eos_token
        self._end_id = end_token_id(self._tokenizer, spec)
        self._weights_bytes = _param_bytes(self._model)
        self._batch_size = int(spec.options.get("batch_size", 32))

    def prepare(self, texts: Sequence[str], kind: Kind = "document", instruction: str | None = None) -> list[str]:
        """The exact strings tokenised (the end token, when needed, is appended as an id)."""
        return self.spec.format(list(texts), kind, instruction)

    def token_ids(
        self, texts: Sequence[str], kind: Kind = "document", instruction: str | None = None
    ) -> list[list[int]]:
        """The token ids the model's modules receive for `texts`."""
        return tokenize(self._tokenizer, self.prepare(texts, kind, instruction), self._max_length, self._end_id)

    def encode(
        self,
        texts: Sequence[str],
        kind: Kind = "document",
        *,
        instruction: str | None = None,
        dimensions: int | None = None,
    ) -> np.ndarray:
        ids = self.token_ids(texts, kind, instruction)
        if not ids:
            return np.zeros((0, dimensions or self.spec.dim or 0), dtype=np.float32)
        out = embed_in_batches(
            ids,
            self._tokenizer,
            self.device,
            self._batch_size,
            lambda inputs: self._model(dict(inputs))["sentence_embedding"],
        )
        if dimensions is not None:
            return truncate(l2_normalize(out), dimensions, self.spec)
        return l2_normalize(out) if self.spec.normalize else out

    def effective_settings(self) -> dict[str, Any]:
        """What this model actually runs with: max_length (tokens), dtype, pooling,
        normalize, device, engine."""
        pooling = self.spec.pooling
        if pooling is None:
            # the folder's Pooling module: `pooling_mode` (sentence-transformers >= 6), else
            # the older `get_pooling_mode_str()`
            modes = [
                getattr(m, "pooling_mode", None) or m.get_pooling_mode_str()
                for m in self._model
                if hasattr(m, "pooling_mode") or hasattr(m, "get_pooling_mode_str")
            ]
            pooling = (
                "+".join(modes[0])
                if modes and not isinstance(modes[0], str)
                else (modes[0] if modes else "the model's own")
            )
        return {
            "max_length": self._model.max_seq_length,
            "dtype": str(self._dtype).removeprefix("torch."),
            "pooling": pooling,
            "normalize": self.spec.normalize,
            "device": self.device,
            "engine": f"sentence-transformers {_version('sentence-transformers')}",
        }

    def count_tokens(self, texts: Sequence[str]) -> int:
        return sum(len(seq) for seq in self.token_ids(texts))

    def memory_report(self) -> dict[str, Any]:
        return {
            "load_weights_s": self.load_weights_s,
            "weights_gib": self._weights_bytes / GIB,
            "device": self.device,
            **NO_KV_CACHE,
            **cuda_memory_report(self.device, self._weights_bytes),
        }


class TransformersBackend(BaseEncoder):
    """`AutoModel` plus the record's pooling: "cls", "mean" or "last" (the last real token,
    found from the attention mask, so left and right padding both work). Padding side from
    the record (Qwen3-Embedding: left); the record's end token appended after truncation.

    Options: device, dtype, batch_size (default 32), max_length, attn_implementation (dtype
    and max length through `hub.effective_dtype` / `hub.effective_max_length`). A record
    without pooling is refused (no default pooling is guessed)."""

    def __init__(self, spec: ModelSpec) -> None:
        import torch
        from transformers import AutoModel, AutoTokenizer

        if spec.pooling is None:
            raise ConfigError(
                f"model {spec.name!r} ({spec.path}): no pooling given and the transformers backend guesses none; "
                f"set `pooling:` to one of {POOLINGS} in the model's entry (or give the folder a sentence-transformers "
                "1_Pooling/config.json)"
            )
        if spec.pooling not in POOLINGS:
            raise ConfigError(f"model {spec.name!r}: pooling must be one of {POOLINGS}, got {spec.pooling!r}")
        path = resolve_model_path(spec)
        self.spec = spec
        self.device = pick_device(spec)
        self._torch = torch
        start = time.perf_counter()
        self._tokenizer = AutoTokenizer.from_pretrained(path, local_files_only=True)
        self._tokenizer.padding_side = spec.padding_side or "right"
        if self._tokenizer.pad_token_id is None:
            self._tokenizer.pad_token = spec.eos_token or self._tokenizer.eos_token
        self._dtype = pick_dtype(spec, self.device, path)
        kwargs: dict[str, Any] = {"dtype": self._dtype, "local_files_only": True}
        if spec.options.get("attn_implementation"):
            kwargs["attn_implementation"] = spec.options["attn_implementation"]
        self._model = AutoModel.from_pretrained(path, **kwargs).to(self.device).eval()
        if hasattr(self._model.config, "use_cache"):
            self._model.config.use_cache = False  # one forward pass per batch: no KV cache to keep
        if self.device.startswith("cuda"):
            torch.cuda.synchronize()
        self.load_weights_s = time.perf_counter() - start
        self._end_id = end_token_id(self._tokenizer, spec)
        self._max_length = effective_max_length(spec, path)
        self._weights_bytes = _param_bytes(self._model)
        self._batch_size = int(spec.options.get("batch_size", 32))

    def effective_settings(self) -> dict[str, Any]:
        """What this model actually runs with: max_length (tokens), dtype, pooling,
        normalize, device, engine."""
        return {
            "max_length": self._max_length,
            "dtype": str(self._dtype).removeprefix("torch."),
            "pooling": self.spec.pooling,
            "normalize": self.spec.normalize,
            "device": self.device,
            "engine": f"transformers {_version('transformers')}",
        }

    def prepare(self, texts: Sequence[str], kind: Kind = "document", instruction: str | None = None) -> list[str]:
        """The exact strings tokenised (the end token, when needed, is appended as an id)."""
        return self.spec.format(list(texts), kind, instruction)

    def token_ids(
        self, texts: Sequence[str], kind: Kind = "document", instruction: str | None = None
    ) -> list[list[int]]:
        """The token ids the model receives for `texts`."""
        return tokenize(self._tokenizer, self.prepare(texts, kind, instruction), self._max_length, self._end_id)

    def _pool(self, hidden: Any, mask: Any) -> Any:
        torch = self._torch
        if self.spec.pooling == "mean":
            weights = mask.unsqueeze(-1).to(hidden.dtype)
            return (hidden * weights).sum(1) / weights.sum(1).clamp(min=1e-9)
        lengths = mask.sum(1)
        rows = torch.arange(hidden.shape[0], device=hidden.device)
        if self._tokenizer.padding_side == "left":
            first, last = hidden.shape[1] - lengths, torch.full_like(lengths, hidden.shape[1] - 1)
        else:
            first, last = torch.zeros_like(lengths), lengths - 1
        return hidden[rows, first if self.spec.pooling == "cls" else last]

    def _embed(self, ids: list[list[int]]) -> np.ndarray:
        return embed_in_batches(
            ids,
            self._tokenizer,
            self.device,
            self._batch_size,
            lambda inputs: self._pool(self._model(**inputs).last_hidden_state, inputs["attention_mask"]),
        )

    def encode(
        self,
        texts: Sequence[str],
        kind: Kind = "document",
        *,
        instruction: str | None = None,
        dimensions: int | None = None,
    ) -> np.ndarray:
        ids = self.token_ids(texts, kind, instruction)
        if not ids:
            return np.zeros((0, dimensions or self.spec.dim or 0), dtype=np.float32)
        out = self._embed(ids)
        if dimensions is not None:
            return truncate(l2_normalize(out), dimensions, self.spec)
        return l2_normalize(out) if self.spec.normalize else out

    def count_tokens(self, texts: Sequence[str]) -> int:
        return sum(len(seq) for seq in self.token_ids(texts))

    def memory_report(self) -> dict[str, Any]:
        return {
            "load_weights_s": self.load_weights_s,
            "weights_gib": self._weights_bytes / GIB,
            "device": self.device,
            **NO_KV_CACHE,
            **cuda_memory_report(self.device, self._weights_bytes),
        }


def sentence_transformers_or_transformers(spec: ModelSpec) -> SentenceTransformersBackend | TransformersBackend:
    """The `st` backend: a folder with modules.json runs through sentence-transformers; one
    without runs through plain transformers with the record's pooling (sentence-transformers
    would silently fall back to mean pooling there)."""
    if (Path(resolve_model_path(spec)) / "modules.json").exists():
        return SentenceTransformersBackend(spec)
    return TransformersBackend(spec)
