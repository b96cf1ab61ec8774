"""What `embedlab report` hands the notebooks: their parameters made from its options
(every path absolute, a run config's models, data sets and cache folder)."""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path
from typing import Any


def absolute_path(value: str, cwd: Path) -> str:
    """`value` as an absolute path when it names something on disk relative to `cwd` (or
    is written as a path: `./x`, `../x`, `~/x`, `/x`); else unchanged (a registered name,
    a bundled data set, a hub id such as `Qwen/Qwen3-Embedding-0.6B`)."""
    path = Path(value).expanduser()
    target = path if path.is_absolute() else cwd / path
    if target.exists() or value.startswith(("./", "../", "~")):
        return str(target.resolve())
    return value


def resolve_model_arg(value: str, cwd: Path) -> str:
    """A `-m` value with its path made absolute: a registered name stays as it is, a
    folder becomes absolute, and in `NAME=PATH` the PATH part does."""
    from embedlab.models import MODELS

    if value.lower() in MODELS:
        return value
    name, sep, path = value.partition("=")
    if sep and name and path:
        return f"{name}={absolute_path(path, cwd)}"
    return absolute_path(value, cwd)


def resolve_dataset_arg(value: str, cwd: Path) -> str:
    """A `-d` value with its path made absolute (an existing path wins over a bundled name,
    as in `load_dataset`). A value that is neither raises ConfigError now, not inside a
    notebook."""
    from embedlab.data.datasets import bundled_datasets
    from embedlab.errors import ConfigError

    path = Path(value).expanduser()
    target = path if path.is_absolute() else cwd / path
    if target.exists():
        return str(target.resolve())
    if value in bundled_datasets():
        return value
    raise ConfigError(
        f"data set {value!r}: not a bundled name ({', '.join(bundled_datasets())}) and no such path under {cwd}"
    )


def _spec_entry(spec, cwd: Path) -> str | dict[str, Any]:
    """A config's model record as a notebook parameter: its name when it is the registered
    record unchanged, else the complete record (JSON-able) with its path made absolute."""
    from embedlab.models import MODELS

    if MODELS.get(spec.name) == spec:
        return spec.name
    entry = spec.to_dict()
    if entry.get("path"):
        entry["path"] = absolute_path(str(entry["path"]), cwd)
    return entry


def report_parameters(
    models: Sequence[str] | None = None,
    datasets: Sequence[str] | None = None,
    config: str | Path | None = None,
    cache_dir: str | Path | None = None,
    cwd: str | Path | None = None,
) -> dict[str, Any]:
    """The notebooks' `models`, `datasets` and `cache_dir`, with every path absolute (the
    notebooks run from notebooks/, not from where the command was typed). With `config` (a
    run config, `embedlab.evaluation.config.load_config`), its models, data sets and cache folder are
    used unless `models` / `datasets` / `cache_dir` are given, which override them."""
    cwd = Path(cwd or Path.cwd()).resolve()
    chosen_models: list[Any] | None = [resolve_model_arg(m, cwd) for m in models] if models else None
    chosen_sets: list[str] | None = [resolve_dataset_arg(d, cwd) for d in datasets] if datasets else None
    chosen_cache = str(cache_dir) if cache_dir else None
    if config is not None:
        from embedlab.evaluation.config import load_config

        cfg = load_config(config if Path(config).is_absolute() else cwd / config)
        if chosen_models is None:
            chosen_models = [_spec_entry(s, cwd) for s in cfg.models]
        if chosen_sets is None:
            chosen_sets = [resolve_dataset_arg(d, cwd) for d in cfg.datasets]
        if chosen_cache is None and cfg.settings.cache_dir:
            chosen_cache = cfg.settings.cache_dir
    if chosen_cache is not None:
        chosen_cache = str((cwd / Path(chosen_cache).expanduser()).resolve())
    return {"models": chosen_models, "datasets": chosen_sets, "cache_dir": chosen_cache}
