"""Run configurations (YAML): models, data sets, settings, output folder.

Strings may use `${VAR}` or `${VAR:-default}` so that local model folders stay out of the
file; an unset variable without a default is an error that names it."""

from __future__ import annotations

import os
import re
from dataclasses import dataclass, fields
from pathlib import Path
from typing import Any

from embedlab.errors import ConfigError
from embedlab.models.records import ModelSpec, spec_from_config
from embedlab.types import RunSettings

_VAR = re.compile(r"\$\{([A-Za-z_][A-Za-z0-9_]*)(?::-([^}]*))?\}")


@dataclass(frozen=True)
class RunConfig:
    """What `embedlab run` does: these models on these data sets, written to `out`."""

    models: list[ModelSpec]
    datasets: list[str]
    settings: RunSettings
    out: str | None = None
    sample: int | None = None


def expand_vars(value: Any, path: Path) -> Any:
    """Substitute `${VAR}` / `${VAR:-default}` in every string of a parsed YAML tree."""
    if isinstance(value, str):
        def sub(match: re.Match[str]) -> str:
            name, default = match.group(1), match.group(2)
            if name in os.environ:
                return os.environ[name]
            if default is not None:
                return default
            raise ConfigError(f"{path}: environment variable {name!r} is not set and has no default (write ${{{name}:-default}})")

        return _VAR.sub(sub, value)
    if isinstance(value, list):
        return [expand_vars(v, path) for v in value]
    if isinstance(value, dict):
        return {k: expand_vars(v, path) for k, v in value.items()}
    return value


def load_config(path: str | Path) -> RunConfig:
    """Parse a run config file; errors name the file and the offending key."""
    import yaml

    path = Path(path)
    try:
        raw = yaml.safe_load(path.read_text(encoding="utf-8"))
    except FileNotFoundError:
        raise ConfigError(f"{path}: file not found") from None
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        where = f", line {mark.line + 1}" if mark else ""
        raise ConfigError(f"{path}{where}: invalid YAML ({getattr(exc, 'problem', exc)})") from None
    if not isinstance(raw, dict):
        raise ConfigError(f"{path}: expected a mapping with 'models' and 'datasets'")
    raw = expand_vars(raw, path)
    unknown = set(raw) - {"models", "datasets", "settings", "out", "sample"}
    if unknown:
        raise ConfigError(f"{path}: unknown keys {sorted(unknown)}; expected models, datasets, settings, out, sample")
    for key in ("models", "datasets"):
        if not isinstance(raw.get(key), list) or not raw[key]:
            raise ConfigError(f"{path}: '{key}' must be a non-empty list")
    settings_raw = raw.get("settings") or {}
    known = {f.name for f in fields(RunSettings)}
    bad = set(settings_raw) - known
    if bad:
        raise ConfigError(f"{path}: unknown settings {sorted(bad)}; known: {sorted(known)}")
    try:
        models = [spec_from_config(entry) for entry in raw["models"]]
    except (KeyError, ValueError) as exc:
        raise ConfigError(f"{path}: models: {exc}") from None
    return RunConfig(
        models=models,
        datasets=[str(d) for d in raw["datasets"]],
        settings=RunSettings(**settings_raw),
        out=raw.get("out"),
        sample=raw.get("sample"),
    )
