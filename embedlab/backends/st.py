"""In-process PyTorch backends: sentence-transformers, and plain transformers for models
without a sentence-transformers config (pooling and padding side from the model record).

Both apply the record's prompts themselves (never the model's own prompt settings, so a
prompt is never doubled), truncate MRL embeddings first and normalise after, and report
torch's CUDA allocator figures when they run on a GPU."""

from __future__ import annotations

import time
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np

from embedlab.backends import l2_normalize, truncate
from embedlab.backends.hub import end_token_id, max_length, resolve_model_path, tokenize
from embedlab.models import Kind, ModelSpec, spec_from_folder

GIB = 1024**3
POOLINGS = ("cls", "mean", "last")


def pick_device(spec: ModelSpec) -> str:
    """The `device` option, else cuda when torch sees a GPU, else cpu."""
    import torch

    return str(spec.options.get("device") or ("cuda" if torch.cuda.is_available() else "cpu"))


def pick_dtype(spec: ModelSpec, device: str) -> Any:
    """The `dtype` option ("float32", "bfloat16", "float16", "auto"); float32 on CPU and
    the checkpoint's own dtype on a GPU by default."""
    import torch

    name = spec.options.get("dtype") or ("auto" if device.startswith("cuda") else "float32")
    return name if name == "auto" else getattr(torch, name)


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


class SentenceTransformersBackend:
    """A sentence-transformers model folder (modules.json: transformer, pooling, normalise).
    A folder without modules.json is run by `TransformersBackend` instead, with the
    record's pooling (sentence-transformers would silently fall back to mean pooling).

    Options: device, dtype, batch_size (default 32), max_length."""

    def __new__(cls, spec: ModelSpec) -> Any:
        if cls is SentenceTransformersBackend and not (Path(resolve_model_path(spec)) / "modules.json").exists():
            return TransformersBackend(spec)
        return super().__new__(cls)

    def __init__(self, spec: ModelSpec) -> None:
        import torch
        from sentence_transformers import SentenceTransformer

        self.spec = spec
        self.device = pick_device(spec)
        path = resolve_model_path(spec)
        start = time.perf_counter()
        dtype = pick_dtype(spec, self.device)
        self._model = SentenceTransformer(path, device=self.device, model_kwargs={"dtype": dtype}, local_files_only=True)
        if self.device.startswith("cuda"):
            torch.cuda.synchronize()
        self.load_weights_s = time.perf_counter() - start
        limit = max_length(spec)
        if limit is not None and (self._model.max_seq_length is None or limit < self._model.max_seq_length):
            self._model.max_seq_length = limit
        self._tokenizer = self._model.tokenizer
        if spec.padding_side:
            self._tokenizer.padding_side = spec.padding_side
        end_id = end_token_id(self._tokenizer, spec)
        # sentence-transformers tokenises strings itself: an end token it does not add is
        # appended as text (kept unless the text is cut at max_seq_length)
        self._suffix = spec.eos_token if end_id is not None else ""
        self._weights_bytes = _param_bytes(self._model)
        self._batch_size = int(spec.options.get("batch_size", 32))

    def prepare(self, texts: Sequence[str], kind: Kind = "document", instruction: str | None = None) -> list[str]:
        """The exact strings handed to sentence-transformers."""
        return [t + self._suffix for t in self.spec.format(list(texts), kind, instruction)]

    def encode(self, texts: Sequence[str], kind: Kind = "document", *, instruction: str | None = None, dimensions: int | None = None) -> np.ndarray:
        prepared = self.prepare(texts, kind, instruction)
        if not prepared:
            return np.zeros((0, dimensions or self.spec.dim or 0), dtype=np.float32)
        out = self._model.encode(prepared, batch_size=self._batch_size, convert_to_numpy=True, show_progress_bar=False, normalize_embeddings=False)
        out = np.asarray(out, dtype=np.float32)
        if dimensions is not None:
            return truncate(l2_normalize(out), dimensions, self.spec)
        return l2_normalize(out) if self.spec.normalize else out

    def count_tokens(self, texts: Sequence[str]) -> int:
        prepared = self.prepare(texts)
        limit = self._model.max_seq_length
        ids = self._tokenizer(prepared, truncation=limit is not None, max_length=limit)["input_ids"]
        return sum(len(seq) for seq in ids)

    def memory_report(self) -> dict[str, Any]:
        return {
            "load_weights_s": self.load_weights_s, "weights_gib": self._weights_bytes / GIB, "device": self.device,
            **cuda_memory_report(self.device, self._weights_bytes),
        }


class TransformersBackend:
    """`AutoModel` plus the record's pooling: "cls", "mean" or "last" (the last real token,
    found from the attention mask, so left and right padding both work). Padding side from
    the record (Qwen3-Embedding: left); the record's end token appended after truncation.

    Options: device, dtype, batch_size (default 32), max_length, attn_implementation."""

    def __init__(self, spec: ModelSpec) -> None:
        import torch
        from transformers import AutoModel, AutoTokenizer

        path = resolve_model_path(spec)
        if spec.pooling is None:  # an unregistered model: pooling from its sentence-transformers config
            found = spec_from_folder(Path(path)).pooling
            spec = spec.with_options(pooling=found or "mean")
        if spec.pooling not in POOLINGS:
            raise ValueError(f"model {spec.name!r}: pooling must be one of {POOLINGS}, got {spec.pooling!r}")
        self.spec = spec
        self.device = pick_device(spec)
        self._torch = torch
        start = time.perf_counter()
        self._tokenizer = AutoTokenizer.from_pretrained(path, local_files_only=True)
        self._tokenizer.padding_side = spec.padding_side or "right"
        if self._tokenizer.pad_token_id is None:
            self._tokenizer.pad_token = spec.eos_token or self._tokenizer.eos_token
        kwargs: dict[str, Any] = {"dtype": pick_dtype(spec, self.device), "local_files_only": True}
        if spec.options.get("attn_implementation"):
            kwargs["attn_implementation"] = spec.options["attn_implementation"]
        self._model = AutoModel.from_pretrained(path, **kwargs).to(self.device).eval()
        if hasattr(self._model.config, "use_cache"):
            self._model.config.use_cache = False  # one forward pass per batch: no KV cache to keep
        if self.device.startswith("cuda"):
            torch.cuda.synchronize()
        self.load_weights_s = time.perf_counter() - start
        self._end_id = end_token_id(self._tokenizer, spec)
        config_limit = getattr(self._model.config, "max_position_embeddings", None)
        self._max_length = max_length(spec, config_limit)
        self._weights_bytes = _param_bytes(self._model)
        self._batch_size = int(spec.options.get("batch_size", 32))

    def prepare(self, texts: Sequence[str], kind: Kind = "document", instruction: str | None = None) -> list[str]:
        """The exact strings tokenised (the end token, when needed, is appended as an id)."""
        return self.spec.format(list(texts), kind, instruction)

    def token_ids(self, texts: Sequence[str], kind: Kind = "document", instruction: str | None = None) -> list[list[int]]:
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
        torch = self._torch
        order = np.argsort([-len(seq) for seq in ids], kind="stable")  # similar lengths together: less padding
        chunks = []
        with torch.inference_mode():
            for start in range(0, len(ids), self._batch_size):
                batch = [{"input_ids": ids[i]} for i in order[start : start + self._batch_size]]
                inputs = self._tokenizer.pad(batch, padding=True, return_tensors="pt").to(self.device)
                hidden = self._model(**inputs).last_hidden_state
                chunks.append(self._pool(hidden, inputs["attention_mask"]).float().cpu().numpy())
        out = np.empty((len(ids), chunks[0].shape[1]), dtype=np.float32)
        out[order] = np.concatenate(chunks)
        return out

    def encode(self, texts: Sequence[str], kind: Kind = "document", *, instruction: str | None = None, dimensions: int | None = None) -> np.ndarray:
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
            "load_weights_s": self.load_weights_s, "weights_gib": self._weights_bytes / GIB, "device": self.device,
            **cuda_memory_report(self.device, self._weights_bytes),
        }
