"""Run configurations (YAML): models, data sets, settings, output folder, and the second
stages the evaluation adds: fusions of models' rankings (`Fusion`) and rerankers (`Rerank`).

Strings may use `${VAR}` or `${VAR:-default}` so that local model folders stay out of the
file; an unset variable without a default is an error that names it."""

from __future__ import annotations

from dataclasses import dataclass, fields
from pathlib import Path
from typing import Any

from embedlab.errors import ConfigError, EmbedlabError
from embedlab.files import expand_vars
from embedlab.models import ModelSpec, spec_from_config
from embedlab.models.rerankers import get_reranker
from embedlab.run.config import check_engine
from embedlab.types import RunSettings

FUSION_METHODS: tuple[str, ...] = ("rrf", "wsum")
RERANK_TOP_K = 20


@dataclass(frozen=True)
class Fusion:
    """A fused row `name`: the rankings of `models` (rows of the same run) combined by
    `method` ("rrf": reciprocal rank fusion with constant `k`; "wsum": per-query min-max
    normalised scores summed with `weights`, equal when None), as ranx defines them
    (`embedlab.evaluation.fusion`)."""

    name: str
    models: tuple[str, ...]
    method: str = "rrf"
    k: float = 60.0
    weights: tuple[float, ...] | None = None

    def __post_init__(self) -> None:
        if len(self.models) < 2 or len(set(self.models)) != len(self.models):
            raise ConfigError(
                f"fusion {self.name!r}: 'models' must name two or more different models, got {list(self.models)}"
            )
        if self.method not in FUSION_METHODS:
            raise ConfigError(f"fusion {self.name!r}: 'method' must be one of {FUSION_METHODS}, got {self.method!r}")
        if not self.k >= 0:
            raise ConfigError(f"fusion {self.name!r}: 'k' must be a number >= 0, got {self.k!r}")
        if self.weights is not None and (len(self.weights) != len(self.models) or self.method != "wsum"):
            raise ConfigError(
                f"fusion {self.name!r}: 'weights' needs method wsum and one weight per model ({len(self.models)}), got "
                f"{list(self.weights)}"
            )

    def describe(self) -> str:
        """One line for runs.csv: method, parameters and members."""
        how = (
            f"rrf k={self.k:g}"
            if self.method == "rrf"
            else f"wsum min-max weights={list(self.weights or [1.0 / len(self.models)] * len(self.models))}"
        )
        return f"fusion {how} of {', '.join(self.models)}"

    @classmethod
    def from_arg(cls, text: str, method: str = "rrf", k: float = 60.0) -> Fusion:
        """`--fuse [NAME=]A+B[+C]`: the named models of the run, NAME defaulting to `A+B`."""
        name, _, members = text.rpartition("=")
        models = tuple(m.strip() for m in members.split("+"))
        return cls(name=name.strip() or "+".join(models), models=models, method=method, k=k)


@dataclass(frozen=True)
class Rerank:
    """A reranked row "<first_stage>+<reranker>": the `top_k` documents of row
    `first_stage` (a model or fusion of the run) re-scored by `reranker` (a record of
    `embedlab.models.rerankers`)."""

    first_stage: str
    reranker: ModelSpec
    top_k: int = RERANK_TOP_K

    @property
    def name(self) -> str:
        return f"{self.first_stage}+{self.reranker.name}"

    def describe(self) -> str:
        """One line for runs.csv: reranker, its backend and path, and k."""
        return (
            f"rerank top-{self.top_k} of {self.first_stage} by {self.reranker.name} "
            f"({self.reranker.backend}, {self.reranker.path})"
        )


def reranker_from_arg(text: str) -> ModelSpec:
    """`--rerank NAME` or `NAME=PATH`: a registered reranker, pointed at PATH if given."""
    name, sep, path = text.partition("=")
    return get_reranker(name.strip(), path=path.strip()) if sep else get_reranker(name.strip())


def rerank_from_config(first_stage: str, entry: Any, where: str) -> Rerank:
    """The `rerank:` of a model or fusion entry: a reranker name, or a mapping with `model`
    (the reranker record), optional `top_k` (20) and record overrides (path, backend,
    dtype, max_tokens, batch_size, ...). `where` names the file and key in errors."""
    if isinstance(entry, str):
        entry = {"model": entry}
    if not isinstance(entry, dict) or "model" not in entry:
        raise ConfigError(
            f"{where}: expected a reranker name or a mapping with 'model' "
            f"(e.g. {{model: qwen3-reranker-0.6b, top_k: 20}}), got {entry!r}"
        )
    overrides = dict(entry)
    name = str(overrides.pop("model"))
    top_k = overrides.pop("top_k", RERANK_TOP_K)
    if isinstance(top_k, bool) or not isinstance(top_k, int) or top_k < 1:
        raise ConfigError(f"{where}.top_k: expected a positive integer, got {top_k!r}")
    try:
        return Rerank(first_stage, get_reranker(name, **overrides), top_k)
    except EmbedlabError as exc:
        raise ConfigError(f"{where}.model: {exc}") from None


def fusion_from_config(entry: Any, where: str) -> tuple[Fusion, Rerank | None]:
    """One entry of `fusions:` (`{name, models, method, k, weights, rerank}`) and its
    reranker stage if it has one. `where` names the file and key in errors."""
    known = {"name", "models", "method", "k", "weights", "rerank"}
    if not isinstance(entry, dict):
        raise ConfigError(
            f"{where}: expected a mapping with 'models' (and name, method, k, weights, rerank), got {entry!r}"
        )
    if set(entry) - known:
        raise ConfigError(f"{where}: unknown keys {sorted(set(entry) - known)}; expected {sorted(known)}")
    models = entry.get("models")
    if not isinstance(models, list) or not all(isinstance(m, str) for m in models):
        raise ConfigError(f"{where}.models: expected a list of model names, got {models!r}")
    k, weights = entry.get("k", 60), entry.get("weights")
    if isinstance(k, bool) or not isinstance(k, (int, float)):
        raise ConfigError(f"{where}.k: expected a number, got {k!r}")
    if weights is not None and (
        not isinstance(weights, list)
        or not all(isinstance(w, (int, float)) and not isinstance(w, bool) for w in weights)
    ):
        raise ConfigError(f"{where}.weights: expected a list of numbers, got {weights!r}")
    try:
        fusion = Fusion(
            name=str(entry.get("name") or "+".join(models)),
            models=tuple(models),
            method=str(entry.get("method", "rrf")),
            k=float(k),
            weights=None if weights is None else tuple(float(w) for w in weights),
        )
    except ConfigError as exc:
        raise ConfigError(f"{where}: {exc}") from None
    rerank = (
        rerank_from_config(fusion.name, entry["rerank"], f"{where}.rerank") if entry.get("rerank") is not None else None
    )
    return fusion, rerank


@dataclass(frozen=True)
class RunConfig:
    """What `embedlab run` does: these models on these data sets, written to `out`; then
    the `fusions` of their rankings and the `reranks` of models or fusions, as rows of
    their own."""

    models: list[ModelSpec]
    datasets: list[str]
    settings: RunSettings
    out: str | None = None
    sample: int | None = None
    fusions: tuple[Fusion, ...] = ()
    reranks: tuple[Rerank, ...] = ()


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
    unknown = set(raw) - {"models", "datasets", "settings", "out", "sample", "fusions", "metrics"}
    if unknown:
        raise ConfigError(
            f"{path}: unknown keys {sorted(unknown)}; expected models, datasets, settings, out, sample, fusions, "
            "metrics"
        )
    for key in ("models", "datasets"):
        if not isinstance(raw.get(key), list) or not raw[key]:
            raise ConfigError(f"{path}: '{key}' must be a non-empty list")
    settings_raw = raw.get("settings") or {}
    known = {f.name for f in fields(RunSettings)}
    bad = set(settings_raw) - known
    if bad:
        raise ConfigError(f"{path}: unknown settings {sorted(bad)}; known: {sorted(known)}")
    check_engine(settings_raw.get("engine", "local"), settings_raw.get("ray_address"), f"{path}: settings")
    # `metrics:` (top level, or under settings): names checked by the evaluation stage
    metrics = [*(settings_raw.pop("metrics", None) or []), *(raw.get("metrics") or [])]
    if not all(isinstance(m, str) for m in metrics):
        raise ConfigError(f"{path}: 'metrics' must be a list of metric names such as [top1, recall@100]")
    settings_raw["metrics"] = tuple(dict.fromkeys(metrics))
    models, reranks = [], []
    for i, entry in enumerate(raw["models"]):
        stage = entry.pop("rerank", None) if isinstance(entry, dict) else None
        try:
            models.append(spec_from_config(entry))
        except (KeyError, ValueError) as exc:
            raise ConfigError(f"{path}: models: {exc}") from None
        if stage is not None:
            reranks.append(rerank_from_config(models[-1].name, stage, f"{path}: models[{i}].rerank"))
    if not isinstance(raw.get("fusions") or [], list):
        raise ConfigError(f"{path}: 'fusions' must be a list of mappings with 'models'")
    fusions = []
    for i, entry in enumerate(raw.get("fusions") or []):
        fusion, rerank = fusion_from_config(entry, f"{path}: fusions[{i}]")
        fusions.append(fusion)
        reranks += [rerank] if rerank else []
    check_stage_names(models, fusions, reranks, str(path))
    return RunConfig(
        models=models,
        datasets=[str(d) for d in raw["datasets"]],
        settings=RunSettings(**settings_raw),
        out=raw.get("out"),
        sample=raw.get("sample"),
        fusions=tuple(fusions),
        reranks=tuple(reranks),
    )


def check_stage_names(
    models: list[ModelSpec],
    fusions: list[Fusion] | tuple[Fusion, ...],
    reranks: list[Rerank] | tuple[Rerank, ...],
    where: str,
) -> None:
    """Every fusion member and rerank first stage names a model of the run or an earlier
    fusion; every row name is unique. Raises ConfigError naming `where` (file or option)."""
    names = [m.name for m in models]
    for fusion in fusions:
        missing = [m for m in fusion.models if m not in names]
        if missing:
            raise ConfigError(
                f"{where}: fusion {fusion.name!r} needs {missing}, not models of this run (models: {names})"
            )
        if fusion.name in names:
            raise ConfigError(f"{where}: fusion name {fusion.name!r} is already a model or fusion of this run")
        names.append(fusion.name)
    for rerank in reranks:
        if rerank.first_stage not in names:
            raise ConfigError(
                f"{where}: rerank {rerank.name!r}: first stage {rerank.first_stage!r} is not a model or fusion of this "
                f"run ({names})"
            )
        if rerank.name in names:
            raise ConfigError(f"{where}: reranked row name {rerank.name!r} is already a row of this run")
        names.append(rerank.name)
