"""Priming: before the notebooks execute, compute into the embedding cache every run they
declare in their parameters cell (`needs = {need: {option: value}}`, read with `ast` by
`notebook_files.declared_needs`, never executed), so the notebooks only read the cache and
can run side by side without disturbing each other's timings.

`NEEDS` is the registry: need name -> Need (the analysis function, the notebook parameters
it reads, the options a declaration may set). To let notebooks declare a new kind of run,
add one entry. Each need is computed one model at a time (a Step), so identical work
declared by several notebooks is done once and progress shows every model × data set."""

from __future__ import annotations

import json
import sys
import time
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field, replace
from functools import partial
from pathlib import Path
from typing import Any

from embedlab.errors import ConfigError
from embedlab.report.notebook_files import NEEDS_NAME, declared_needs, parameter_values


@dataclass(frozen=True)
class Step:
    """One model of one need: `run()` computes it into the cache; `size` is its number of
    model × data-set pairs; steps with equal `key` are the same work."""

    need: str
    model: str
    size: int
    key: str
    timed: bool
    run: Callable[[], Any] = field(compare=False, repr=False)


# A need's expansion: (notebook parameters, options) -> (spec, data sets, call, extra key) per model
Expansion = Callable[..., list[tuple[Any, list, Callable[[], Any], Any]]]


@dataclass(frozen=True)
class Need:
    """A run a notebook may declare. `expand(parameters, **options)` yields one call per
    model; `parameters` are the notebook parameters it reads (the notebook must assign
    them); `options` the keywords a declaration may set; `timed`: its timings are shown, so
    it is computed alone, before anything else."""

    expand: Expansion
    parameters: tuple[str, ...]
    options: frozenset[str] = frozenset()
    timed: bool = False
    doc: str = ""


def _trap(p: Mapping[str, Any], cues: bool = False) -> list:
    from embedlab.report import analysis

    specs = analysis.with_cue_baselines(p["models"]) if cues else analysis.resolve_models(p["models"])
    sets = analysis.resolve_datasets(p["datasets"])
    return [(s, sets, partial(analysis.trap_report, [s], sets, p["cache_dir"]), None) for s in specs]


def _dimensions(p: Mapping[str, Any]) -> list:
    from embedlab.report import analysis

    sets = analysis.resolve_datasets(p["datasets"])
    return [
        (s, sets, partial(analysis.dimension_report, [s], sets, p["dims"], p["cache_dir"]), p["dims"])
        for s in analysis.resolve_models(p["models"])
    ]


def _instructions(p: Mapping[str, Any]) -> list:
    from embedlab.report import analysis

    sets = analysis.resolve_datasets(p["datasets"])
    return [
        (s, sets, partial(analysis.instruction_report, [s], sets, p["cache_dir"]), None)
        for s in analysis.resolve_models(p["models"])
    ]


def _public(p: Mapping[str, Any]) -> list:
    from embedlab.report import analysis

    sets = analysis.real_datasets(p["samples"], p["sample_seed"])
    return [
        (s, sets, partial(analysis.real_data_report, [s], sets, p["cache_dir"]), None)
        for s in analysis.resolve_models(p["models"])
    ]


def _pipelines(p: Mapping[str, Any], reranker: str | None = None) -> list:
    from embedlab.report import (
        analysis,  # the models of the plan, as trap_report caches them; fusion and reranking run in the notebook
    )

    sets = analysis.resolve_datasets(p["datasets"])
    return [
        (s, sets, partial(analysis.trap_report, [s], sets, p["cache_dir"]), None)
        for s in analysis.pipeline_plan(p["models"], reranker).models
    ]


NEEDS: dict[str, Need] = {
    "trap_report": Need(
        _trap,
        ("models", "datasets", "cache_dir"),
        frozenset({"cues"}),
        timed=True,
        doc="analysis.trap_report(models, datasets, cache_dir, cues=...)",
    ),
    "dimension_report": Need(
        _dimensions,
        ("models", "datasets", "dims", "cache_dir"),
        doc="analysis.dimension_report(models, datasets, dims, cache_dir)",
    ),
    "instruction_report": Need(
        _instructions,
        ("models", "datasets", "cache_dir"),
        doc="analysis.instruction_report(models, datasets, cache_dir)",
    ),
    "pipeline_report": Need(
        _pipelines,
        ("models", "datasets", "cache_dir"),
        frozenset({"reranker"}),
        timed=True,
        doc="analysis.pipeline_report(models, datasets, cache_dir, reranker=...)",
    ),
    "real_data_report": Need(
        _public,
        ("models", "samples", "sample_seed", "cache_dir"),
        doc="analysis.real_data_report(models, analysis.real_datasets(samples, sample_seed), cache_dir)",
    ),
}


def notebook_parameters(path: str | Path, parameters: Mapping[str, Any] | None = None) -> dict[str, Any]:
    """A notebook's parameter values as it will run: its parameters cell's literals,
    overridden by `parameters` for the names the cell assigns (as `build` passes them)."""
    values = parameter_values(path)
    values.update({k: v for k, v in dict(parameters or {}).items() if k in values and k != NEEDS_NAME})
    return values


def notebook_steps(
    path: str | Path, parameters: Mapping[str, Any] | None = None, memo: dict | None = None
) -> list[Step]:
    """The steps a notebook declares, with its own parameter values. Raises ConfigError
    naming the notebook file and the need when the need is unknown, an option is not one
    it takes, or the notebook does not assign a parameter the need reads. `memo` (a dict
    shared by the notebooks of one plan) keeps an expansion for the next notebook that
    declares the same need with the same values, so data sets load once.

    A step's key is the call it makes (function, model record, data-set fingerprints,
    cache folder, extra arguments), so two needs that make the same call share a step."""
    name = Path(path).name
    values = notebook_parameters(path, parameters)
    steps = []
    memo = {} if memo is None else memo
    for need_name, options in (declared_needs(path) or {}).items():
        need = NEEDS.get(need_name)
        if need is None:
            raise ConfigError(
                f"{name}: needs {need_name!r}: no such need (known: {', '.join(NEEDS)}; register one in "
                "embedlab.report.prime.NEEDS)"
            )
        unknown = set(options) - need.options
        if unknown:
            raise ConfigError(
                f"{name}: needs {need_name!r}: unknown option(s) {sorted(unknown)} (it takes: "
                f"{sorted(need.options) or 'none'})"
            )
        missing = [p for p in need.parameters if p not in values]
        if missing:
            raise ConfigError(
                f"{name}: needs {need_name!r}, which reads {missing}, but its parameters cell assigns no such name"
            )
        reads = {p: values[p] for p in need.parameters}
        known = json.dumps([need_name, reads, options], sort_keys=True, default=str)
        if known not in memo:
            memo[known] = [
                (spec, sets, call, extra, memo.setdefault(id(sets), [d.fingerprint() for d in sets]))
                for spec, sets, call, extra in need.expand(reads, **options)
            ]
        for spec, sets, call, extra, prints in memo[known]:
            function = getattr(call, "func", call)
            key = json.dumps(
                [
                    f"{function.__module__}.{function.__qualname__}",
                    spec.to_dict(),
                    prints,
                    values.get("cache_dir"),
                    extra,
                ],
                sort_keys=True,
                default=str,
            )
            steps.append(Step(need_name, spec.name, len(sets), key, need.timed, call))
    return steps


def distinct(steps: Iterable[Step]) -> list[Step]:
    """Each call once (the first step that makes it, timed if any of them is), timed steps
    first, otherwise in the given order."""
    kept: dict[str, Step] = {}
    for step in steps:
        first = kept.setdefault(step.key, step)
        if step.timed and not first.timed:
            kept[step.key] = replace(first, timed=True)
    return sorted(kept.values(), key=lambda s: not s.timed)


def plan(parameters: Mapping[str, Any] | None = None, notebooks: Sequence[str | Path] = ()) -> list[Step]:
    """The distinct steps of every notebook's declaration, timed ones first (in notebook
    order otherwise)."""
    memo: dict = {}
    return distinct(step for path in notebooks for step in notebook_steps(path, parameters, memo))


def run_steps(
    steps: Sequence[Step],
    desc: str = "priming",
    progress: bool = True,
    on_done: Callable[[Step], Any] | None = None,
    failed: list[str] | None = None,
) -> dict[str, float]:
    """Compute the steps one after another with a progress bar over model × data-set pairs;
    seconds per need. `on_done(step)` is called after each step, done or failed. A step
    that raises stops the run, unless `failed` is given: then `need: model: error` is
    appended to it and the next step goes on (the notebook that declared it reports the
    error when it runs the same call). A model that fails inside a run is not an exception:
    it is in the run's records, for the notebooks to report."""
    from tqdm.auto import tqdm

    seconds: dict[str, float] = {}
    with tqdm(
        total=sum(s.size for s in steps),
        desc=desc,
        unit="model×set",
        file=sys.stderr,
        disable=not progress or not steps,
    ) as bar:
        for step in steps:
            bar.set_postfix_str(f"{step.need}: {step.model}")
            start = time.perf_counter()
            try:
                step.run()
            except Exception as exc:  # recorded in `failed`, or re-raised
                if failed is None:
                    raise
                failed.append(f"{step.need}: {step.model}: {type(exc).__name__}: {exc}")
            finally:
                seconds[step.need] = seconds.get(step.need, 0.0) + time.perf_counter() - start
                bar.update(step.size)
                if on_done is not None:
                    on_done(step)
    return seconds


def prime(
    parameters: Mapping[str, Any] | None = None, notebooks: Sequence[str | Path] = (), progress: bool = True
) -> dict[str, float]:
    """Compute, into the embedding cache, exactly what the notebooks declare in `needs`,
    with the parameters each will get (its own defaults, overridden by `parameters`).
    Returns seconds per need."""
    return run_steps(plan(parameters, notebooks), progress=progress)
