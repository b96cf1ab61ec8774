"""The runs the notebooks make, through the embedding cache: the report's measurement
settings, model and data-set resolution, the trap run with its cue baselines."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import replace
from typing import Any

from embedlab.data.datasets import TRAP_SETS, Dataset, load_dataset
from embedlab.evaluation import evaluate
from embedlab.evaluation.results import Report
from embedlab.models import DEFAULT_MODELS, MODELS, ModelSpec, spec_from_config
from embedlab.types import RunSettings

# The report's measurement protocol, the same as configs/default.yaml, so that `embedlab run
# --config configs/default.yaml --cache-dir .cache/embedlab` and the notebooks share entries.
REPORT_SETTINGS = RunSettings(repeats=5, timing_texts=64, throughput_texts=200, progress=False)
# For runs whose timings no notebook shows (public sets, prompt variants, truncated
# dimensions): one short timed encode and no throughput pass (1000 more texts: about a
# minute per run of multilingual-e5-small on 2 cores), and corpus vectors taken from the
# cache's documents store where an earlier run encoded the same documents the same way (a
# prompt variant re-encodes its queries only), so the bundled CPU models finish in minutes.
LIGHT_SETTINGS = RunSettings(
    repeats=1, timing_texts=16, warmup_texts=4, throughput_texts=0, progress=False, reuse_documents=True
)
REAL_DATA_SETTINGS = LIGHT_SETTINGS

CUE_LABEL = "cue baseline"
# Records of the cue baselines (backends "length" and "shortcut"); added to every overview.
CUE_BASELINES: tuple[str, ...] = ("length", "length-judged", "overlap-inverse", "query-blind")


def _spec(entry: str | Mapping[str, Any] | ModelSpec) -> ModelSpec:
    if isinstance(entry, ModelSpec):
        return entry
    if isinstance(entry, Mapping) and set(entry) == set(ModelSpec.__dataclass_fields__):
        return ModelSpec(**entry)  # a complete record (`ModelSpec.to_dict()`, as `embedlab report --config` passes it)
    return spec_from_config(dict(entry) if isinstance(entry, Mapping) else entry)


def resolve_models(models: Sequence[str | Mapping[str, Any] | ModelSpec] | None = None) -> list[ModelSpec]:
    """Model records from names (`NAME=PATH` too), config mappings (`{name, model, path,
    backend, ...}`), complete records (`ModelSpec.to_dict()`) or specs; None means the
    bundled models."""
    entries = list(models) if models is not None else list(DEFAULT_MODELS)
    return [_spec(m) for m in entries]


def resolve_datasets(
    datasets: Sequence[str | Dataset] | None = None, default: Sequence[str] = TRAP_SETS
) -> list[Dataset]:
    return [d if isinstance(d, Dataset) else load_dataset(d) for d in (datasets if datasets is not None else default)]


def cached_settings(settings: RunSettings, cache_dir: Any) -> RunSettings:
    from embedlab.run.cache import default_cache_dir

    return replace(settings, cache_dir=str(cache_dir) if cache_dir else str(default_cache_dir()))


def trap_report(
    models=None, datasets=None, cache_dir=None, settings: RunSettings = REPORT_SETTINGS, cues: bool = False
) -> Report:
    """The models on the trap sets (default: bundled models on seed + traps-zh), cached: the
    first call computes, later calls (every other notebook, a re-render) read the cache.
    `cues=True` adds the cue baselines (`with_cue_baselines`)."""
    specs = with_cue_baselines(models) if cues else resolve_models(models)
    return evaluate(specs, resolve_datasets(datasets), cached_settings(settings, cache_dir))


def with_cue_baselines(models=None) -> list[ModelSpec]:
    """The models (None: the bundled ones) plus the registered cue baselines (`CUE_BASELINES`)
    that are not among them already."""
    specs = resolve_models(models)
    have = {s.name for s in specs}
    return specs + [MODELS[n] for n in CUE_BASELINES if n not in have]
