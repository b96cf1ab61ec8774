"""A run as the explorers read it back: its Report with score matrices (a results folder
keeps none: they are recomputed through the embedding cache) and the settings it ran under."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import replace
from pathlib import Path

from embedlab.data.datasets import Dataset
from embedlab.evaluation.results import Report
from embedlab.types import RunSettings


def run_settings(report: Report, cache_dir: str | Path | None = None) -> RunSettings:
    """The settings the run of `report` ran under (its run.json), quiet, with the embedding
    cache `cache_dir` (default: the run's own cache, else the shared one): what reads the
    run's entries back from the cache rather than marking them stale."""
    from embedlab.run.cache import default_cache_dir

    stored = report.config.get("settings") or {}
    known = set(RunSettings.__dataclass_fields__)
    settings = RunSettings(**{k: v for k, v in stored.items() if k in known})
    return replace(settings, progress=False, cache_dir=str(cache_dir or stored.get("cache_dir") or default_cache_dir()))


def with_scores(
    report: Report | str | Path, datasets: Sequence[Dataset] | None = None, cache_dir: str | Path | None = None
) -> tuple[Report, dict[str, Dataset]]:
    """A Report with its score matrices, and its data sets by name. A results folder keeps no
    score matrices: they are recomputed from the run's own model records and settings
    through the embedding cache (`cache_dir`, default the shared one), after checking that
    each data set is the one the run measured (its fingerprint)."""
    from embedlab.evaluation import evaluate
    from embedlab.report.analysis import resolve_datasets, resolve_models

    folder = None
    if not isinstance(report, Report):
        folder = Path(report)
        if not (folder / "run.json").is_file():
            raise FileNotFoundError(
                f"{folder}: not a results folder (no run.json); expected the --out folder of `embedlab run`"
            )
        report = Report.from_dir(folder)
    sets = (
        list(datasets)
        if datasets is not None
        else resolve_datasets(list(report.config.get("datasets") or report.datasets))
    )
    by_name = {d.name: d for d in sets}
    for name, fingerprint in report.datasets.items():
        if name not in by_name:
            raise ValueError(f"{folder or 'report'}: data set {name!r} of the run not given (datasets=...)")
        if fingerprint and by_name[name].fingerprint() != fingerprint:
            raise ValueError(
                f"{folder or 'report'}: data set {name!r} changed since the run (fingerprint differs); re-run it"
            )
    if not report.scores:
        settings = run_settings(report, cache_dir)
        models = [m for m in report.config.get("models", []) if m.get("name") in set(report.per_query["model"])]
        rescored = evaluate(resolve_models(models), [by_name[n] for n in report.datasets], settings)
        report = replace(report, scores=rescored.scores)
    return report, by_name
