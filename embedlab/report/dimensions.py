"""Accuracy against truncated dimension (MRL): which models support it, the dimensions
to try and the sweep, each dimension a cached run."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import replace

import numpy as np
import pandas as pd

from embedlab.evaluation import evaluate
from embedlab.evaluation.metrics import parse_metric
from embedlab.evaluation.results import metric_columns
from embedlab.models import MODELS, ModelSpec
from embedlab.report.runs import LIGHT_SETTINGS, REPORT_SETTINGS, cached_settings, resolve_datasets, resolve_models
from embedlab.types import RunSettings


def mrl_support(models=None) -> pd.DataFrame:
    """Per model: full dimension, smallest MRL dimension (None: no MRL) and whether it can
    be truncated."""
    specs = resolve_models(models)
    return pd.DataFrame(
        {
            "model": [s.name for s in specs],
            "backend": [s.backend for s in specs],
            "dim": [s.dim for s in specs],
            "mrl_min_dim": [s.mrl_min_dim for s in specs],
            "supports_mrl": [s.supports_mrl for s in specs],
        }
    )


def sweep_dimensions(spec: ModelSpec, dims: Sequence[int] | None = None) -> list[int]:
    """The dimensions to try for an MRL model: powers of two from `mrl_min_dim`, and `dim`."""
    if spec.mrl_min_dim is None or spec.dim is None:
        return []
    if dims is None:
        dims = [2**k for k in range(int(np.log2(spec.mrl_min_dim)), int(np.log2(spec.dim)) + 1)] + [spec.dim]
    return sorted({d for d in dims if spec.mrl_min_dim <= d <= spec.dim})


def dimension_report(
    models=None,
    datasets=None,
    dims: Sequence[int] | None = None,
    cache_dir=None,
    settings: RunSettings = REPORT_SETTINGS,
    truncated_settings: RunSettings = LIGHT_SETTINGS,
) -> pd.DataFrame:
    """Accuracy against truncated dimension: each MRL model run at each dimension (the
    backend's own truncation, cached), the others at their full dimension only. The full
    dimension runs with `settings` (so it is the trap run's cache entry), truncated ones
    with `truncated_settings` (their timings are not shown). One row per (model, dataset,
    dimensions) with the summary's metrics and CIs."""
    specs = [s for s in resolve_models(models) if not s.scores_corpus]
    sets = resolve_datasets(datasets)
    frames = []
    for spec in specs:
        for d in sweep_dimensions(spec, dims) or [None]:
            full = d is None or d == spec.dim
            chosen = replace(settings if full else truncated_settings, dimensions=None if full else d)
            run = evaluate([spec], sets, cached_settings(chosen, cache_dir))
            summary = run.summary()
            summary["dimensions"] = summary["dim"] if full else d
            summary["mrl"] = spec.mrl_min_dim is not None
            frames.append(summary)
    columns = [
        "model",
        "dataset",
        "dimensions",
        "mrl",
        "status",
        "n_queries",
        *metric_columns(tuple(map(parse_metric, ("top1", "mrr")))),
    ]
    if not frames:
        return pd.DataFrame(columns=columns)
    out = pd.concat(frames, ignore_index=True)
    return out[[c for c in columns if c in out.columns]]


def support_note(frame: pd.DataFrame, flag: str, what: str, example_field: str) -> str:
    """Markdown saying which chosen models support a feature (`flag` column true), and which
    registered records would, read from the data and the model registry."""
    yes = frame.loc[frame[flag].astype(bool), "model"].tolist()
    no = frame.loc[~frame[flag].astype(bool), "model"].tolist()
    candidates = [s.name for s in MODELS.values() if getattr(s, example_field)]
    if not yes:
        return (
            f"**None of the chosen models supports {what}** ({', '.join(no)}). They are shown as they are, "
            f"so nothing below compares {what} settings. Records that do: {', '.join(candidates) or 'none'}; "
            "name them in this notebook's `models` parameter where their backend is installed."
        )
    return f"Supports {what}: {', '.join(yes)}." + (f" Does not: {', '.join(no)}." if no else "")
