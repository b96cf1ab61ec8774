"""Resolving a model argument to a record: a registered name, `NAME=PATH`, a model folder, a
hub id or a YAML config entry; served models' options checked; warnings for a model run without
the query prompt its authors document."""

from __future__ import annotations

import re
import warnings
from dataclasses import replace
from pathlib import Path
from typing import Any

from embedlab.errors import ConfigError, PromptWarning, UnknownNameError
from embedlab.models.folders import (
    FOLDER_BACKENDS,
    is_plain,
    local_path,
    match_folder,
    read_folder,
    record_at,
    shape_check,
    spec_for_folder,
)
from embedlab.models.registry import MODELS
from embedlab.models.spec import ModelSpec


def parse_model_arg(arg: str) -> tuple[str, str | None]:
    """Split a model argument: `NAME=PATH` -> (registered NAME, PATH); anything else (a name,
    a folder, a hub id) -> (arg, None). An unknown NAME raises UnknownNameError."""
    text = arg.strip()
    if "=" not in text or Path(text).expanduser().exists():
        return text, None
    name, path = (part.strip() for part in text.split("=", 1))
    if not name or not path:
        raise ConfigError(f"model {arg!r}: expected NAME=PATH, e.g. qwen3-embedding-0.6b=/models/Qwen3-Embedding-0.6B")
    if name.lower() not in MODELS:
        raise UnknownNameError(
            f"model {arg!r}: {name!r} is not a registered record ({', '.join(sorted(MODELS))}); "
            "NAME=PATH points a registered record at a folder or hub id"
        )
    return name.lower(), path


def get_model(name_or_path: str, **overrides: Any) -> ModelSpec:
    """A model record from a registered name, `NAME=PATH`, a model folder, or a hub id.

    `qwen3-embedding-0.6b=/models/Qwen3-Embedding-0.6B` (or `get_model(name, path=...)`)
    keeps the record's prompts, end token, MRL and pooling and points it at the folder. A
    bare folder is matched to its record (`match_folder`), else read from its
    sentence-transformers files (`spec_from_folder`). A hub id is a record's own (e.g.
    `BAAI/bge-m3`) or needs `backend=`. Overrides (path, backend, pooling, dim, options...)
    are applied last; `prompt_warnings` are emitted as PromptWarning."""
    name, path = parse_model_arg(name_or_path)
    by_path = {s.path.lower(): s for s in MODELS.values() if s.path and s.backend in FOLDER_BACKENDS}
    if path is not None:
        shape_check(name, path)
        spec = record_at(MODELS[name], local_path(path), f"given as {name}={path}")
    elif name.lower() in MODELS:
        spec = MODELS[name.lower()]
    elif Path(name).expanduser().is_dir():
        spec = spec_for_folder(name, backend=overrides.get("backend"), pooling=overrides.get("pooling"))
    elif name.lower() in by_path:
        spec = by_path[name.lower()]
    elif "/" in name and "backend" in overrides:
        spec = ModelSpec(name=name, backend=overrides.pop("backend"), path=name)
    elif overrides.get("backend") == "openai":  # a served model without a base record
        spec = ModelSpec(name=name, backend=overrides.pop("backend"))
    else:
        known = ", ".join(sorted(MODELS))
        raise UnknownNameError(
            f"model {name_or_path!r} is not registered ({known}), not NAME=PATH, not a local folder, "
            "and not a hub id given with a backend"
        )
    if overrides:
        spec = spec.with_options(**overrides)
    if spec.backend == "openai":
        check_served(spec)
    for message in prompt_warnings(spec):
        warnings.warn(message, PromptWarning, stacklevel=2)
    return spec


# Options of a served model (backend "openai"); README "Served models (OpenAI-compatible API)".
SERVED_OPTIONS: dict[str, type | tuple[type, ...]] = {
    "base_url": str,
    "served_model": str,
    "api_key_env": str,
    "batch_size": int,
    "max_concurrency": int,
    "timeout_s": (int, float),
    "max_retries": int,
    "backoff_s": (int, float),
    "max_backoff_s": (int, float),
    "max_retry_after_s": (int, float),
    "send_dimensions": bool,
    "encoding_format": str,
}


def check_served(spec: ModelSpec) -> None:
    """Validate a served model's options (`base_url`, `served_model`, `api_key_env`, ...):
    ConfigError naming the model and the field. The API key itself is never an option: only
    the name of the environment variable holding it."""
    from urllib.parse import urlsplit

    where = f"model {spec.name!r} (backend openai)"
    opts = spec.options
    if "api_key" in opts:
        raise ConfigError(
            f"{where}: field 'api_key' is not accepted; put the key in an environment variable and name it in "
            "'api_key_env'"
        )
    for required in ("base_url", "served_model"):
        if not opts.get(required):
            raise ConfigError(
                f"{where}: field {required!r} is required (e.g. base_url: http://127.0.0.1:8000/v1, served_model: the "
                "name the server expects)"
            )
    for key, kind in SERVED_OPTIONS.items():
        value = opts.get(key)
        if value is None:
            continue
        if not isinstance(value, kind) or (isinstance(value, bool) and kind is not bool):
            raise ConfigError(
                f"{where}: field {key!r} must be {getattr(kind, '__name__', 'a number')}, got {type(value).__name__}"
            )
        if key in ("batch_size", "max_concurrency", "timeout_s") and value <= 0:
            raise ConfigError(f"{where}: field {key!r} must be > 0, got {value}")
        if key in ("max_retries", "backoff_s", "max_backoff_s", "max_retry_after_s") and value < 0:
            raise ConfigError(f"{where}: field {key!r} must be >= 0, got {value}")
    url = urlsplit(str(opts["base_url"]))
    if url.scheme not in ("http", "https") or not url.hostname:
        raise ConfigError(f"{where}: field 'base_url' must be an http(s) URL such as http://127.0.0.1:8000/v1")
    if url.username or url.password or url.query or url.fragment:
        raise ConfigError(
            f"{where}: field 'base_url' must hold no credentials, query or fragment; name the key's environment "
            "variable in 'api_key_env'"
        )
    env = opts.get("api_key_env")
    if env is not None and not re.fullmatch(r"[A-Za-z_][A-Za-z0-9_]*", env):
        raise ConfigError(
            f"{where}: field 'api_key_env' must name an environment variable (e.g. OPENAI_API_KEY), not hold the key"
        )
    if opts.get("encoding_format", "float") not in ("float", "base64"):
        raise ConfigError(
            f"{where}: field 'encoding_format' must be 'float' or 'base64', got {opts['encoding_format']!r}"
        )


def _documented_record(spec: ModelSpec) -> ModelSpec | None:
    """The registered record `spec` runs: by name, by the record's own path, or by its folder."""
    if spec.name in MODELS:
        return MODELS[spec.name]
    for record in MODELS.values():
        if spec.path and record.path == spec.path:
            return record
    if spec.path and Path(spec.path).expanduser().is_dir() and spec.backend in FOLDER_BACKENDS:
        try:
            found = match_folder(spec.path).record
        except ConfigError:
            return None
        return MODELS[found] if found else None
    return None


def prompt_warnings(spec: ModelSpec) -> list[str]:
    """Why `spec` may score below its documented quality for want of a query prompt: a model
    documented with a query prompt or task instruction (its registered record, or its folder's
    config_sentence_transformers.json) running with a plain "{text}" query template, or a
    `{instruction}` template with no default instruction. [] when nothing is missing."""
    if spec.scores_corpus:
        return []
    query = spec.prompts.get("query", "{text}")
    record = _documented_record(spec)
    documented = record.prompts.get("query", "{text}") if record is not None else "{text}"
    if not is_plain(documented):
        if is_plain(query):
            return [
                (
                    f"model {spec.name!r} runs without a query prompt, but {record.name!r} is documented with one "
                    f"({documented!r}): queries are embedded like documents, which costs retrieval quality "
                    "(Qwen3-Embedding's card: 1-5%)"
                )
            ]
        if "{instruction}" in query and not spec.default_instruction.strip():
            return [
                (
                    f"model {spec.name!r} takes a task instruction ({query!r}) but has no default_instruction: "
                    "queries of a data set without an instruction get an empty one"
                )
            ]
        return []
    if is_plain(query) and spec.path and Path(spec.path).expanduser().is_dir():
        try:
            folder_prompt = read_folder(Path(spec.path).expanduser()).any_query_prompt()
        except ConfigError:
            return []
        if folder_prompt:
            return [
                (
                    f"model {spec.name!r} runs without a query prompt, but its folder's "
                    f"config_sentence_transformers.json defines one ({folder_prompt!r})"
                )
            ]
    return []


def spec_from_config(entry: dict[str, Any] | str) -> ModelSpec:
    """A model entry of a YAML run config: a name, `NAME=PATH` or a folder; or a mapping with
    `name` plus overrides (path, backend, pooling, dim, options...). `model:` names the
    registered record to start from; an unregistered `name` with a `path` gets the folder's
    record or its sentence-transformers files, under that name."""
    if isinstance(entry, str):
        return get_model(entry)
    if not isinstance(entry, dict) or "name" not in entry:
        raise ConfigError(f"model entry {entry!r}: expected a name or a mapping with 'name'")
    entry = dict(entry)
    name = str(entry.pop("name"))
    base = entry.pop("model", None)
    if base:
        return replace(get_model(str(base), **entry), name=name)
    if "=" in name or name.lower() in MODELS or "path" not in entry:
        return get_model(name, **entry)
    path = str(entry.pop("path"))
    return replace(get_model(path, **entry), name=name)
