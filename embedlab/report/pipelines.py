"""Retrieval pipelines beyond one dense vector, on the trap sets (notebook 14_pipelines):
dense models, BM25, BGE-M3's sparse / ColBERT / hybrid modes, fusions of a lexical and a
dense ranking, and a reranker over a first stage, each a row of one run, compared per trap
category with paired tests.

What runs is a `PipelinePlan`: the bundled CPU models and their fusions always; BGE-M3's
modes and the reranker only where their weights are configured (a local folder or the
Hugging Face cache, as `embedlab.models.weights_path` finds them),
else skipped with the reason."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from embedlab.errors import EmbedlabError
from embedlab.evaluation import evaluate
from embedlab.evaluation.config import Fusion, Rerank, reranker_from_arg
from embedlab.evaluation.results import Report
from embedlab.evaluation.stats import PairedComparison, holm, paired_comparison
from embedlab.models import MODELS, ModelSpec
from embedlab.report.runs import REPORT_SETTINGS, cached_settings, resolve_datasets, resolve_models
from embedlab.types import RunSettings

DENSE_A, DENSE_B, LEXICAL = "multilingual-e5-small", "use-multilingual-v3", "bm25"
BGE_M3_MODES: tuple[str, ...] = ("bge-m3-sparse", "bge-m3-colbert", "bge-m3-hybrid")
DEFAULT_RERANKER = "qwen3-reranker-0.6b"
RERANK_TOP_K = 20
KIND_ORDER: tuple[str, ...] = ("dense", "lexical (BM25)", "sparse", "multi-vector", "hybrid", "fusion", "reranked")


@dataclass(frozen=True)
class PipelinePlan:
    """The rows of a pipeline run: `models` to encode, `fusions` and `reranks` over them,
    and `skipped` (what was left out, with the reason)."""

    models: list[ModelSpec]
    fusions: tuple[Fusion, ...] = ()
    reranks: tuple[Rerank, ...] = ()
    skipped: list[tuple[str, str]] = field(default_factory=list)


def _hub_id(path: str | None) -> bool:
    return bool(path) and not path.startswith(("/", "~", ".")) and path.count("/") == 1 and not Path(path).exists()


def missing_weights_sentence(spec: ModelSpec, what: str) -> str:
    """One plain sentence: which weights are missing and the commands that fix it."""
    from embedlab.models.rerankers import RERANKERS

    record = MODELS.get(spec.name) or RERANKERS.get(spec.name)
    hub = (
        spec.path if _hub_id(spec.path) else (record.path if record is not None and _hub_id(record.path) else spec.name)
    )
    where = (
        f"the folder `{spec.path}` given for `{spec.name}` does not exist or holds no model"
        if spec.path and not _hub_id(spec.path)
        else f"the weights of `{hub}` are not on this machine"
    )
    return (
        f"{what} did not run: {where}. Download them once into the Hugging Face cache with `huggingface-cli download "
        f"{hub}` "
        "and render again with `embedlab report -n 14`."
    )


def weights_missing(spec: ModelSpec) -> str:
    """Why `spec`'s weights cannot be used here ("" when they can): its folder or hub id
    resolved without downloading, as its backend would."""
    from embedlab.models import weights_path

    try:
        weights_path(spec.with_options(download=False))
    except (EmbedlabError, OSError, ImportError) as exc:
        return str(exc)
    return ""


def pipeline_plan(
    models: Sequence[Any] | None = None, reranker: str | None = DEFAULT_RERANKER, top_k: int = RERANK_TOP_K
) -> PipelinePlan:
    """The pipeline rows for `models` (None: the bundled models): RRF fusions of BM25 with
    each dense model and of USE with e5-small (when both are among the models); BGE-M3's
    sparse / ColBERT / hybrid modes beside `bge-m3` when its weights are here (from the
    models' own `bge-m3` entry when given, else the record); `reranker` (a reranker record,
    `NAME=PATH` too; None: none) over the best-known dense model and the BM25 + dense fusion,
    when its weights are here."""
    specs = resolve_models(models)
    skipped: list[tuple[str, str]] = []
    given = {s.name: s for s in specs}
    m3 = given.get("bge-m3", MODELS["bge-m3"])
    why = weights_missing(m3)
    if why:
        skipped += [
            (name, missing_weights_sentence(m3, "BGE-M3 (dense, sparse, multi-vector and hybrid)"))
            for name in ("bge-m3", *BGE_M3_MODES)
        ]
        specs = [s for s in specs if s.name not in ("bge-m3", *BGE_M3_MODES)]
    else:
        specs += [MODELS[n].with_options(path=m3.path) for n in ("bge-m3", *BGE_M3_MODES) if n not in given]
    names = [s.name for s in specs]
    dense = [s.name for s in specs if not s.scores_corpus and s.name != "bge-m3"]
    fusions = [Fusion(f"{LEXICAL}+{d}", (LEXICAL, d)) for d in dense if LEXICAL in names]
    if DENSE_A in names and DENSE_B in names:
        fusions.append(Fusion(f"{DENSE_B}+{DENSE_A}", (DENSE_B, DENSE_A)))
    if "bge-m3" in names and LEXICAL in names:
        fusions.append(Fusion(f"{LEXICAL}+bge-m3", (LEXICAL, "bge-m3")))
    reranks: list[Rerank] = []
    if reranker:
        spec = reranker_from_arg(reranker)
        why = weights_missing(spec)
        firsts = [n for n in ("bge-m3", DENSE_A) if n in names][:1] + [
            f.name for f in fusions if f.models[0] == LEXICAL
        ][:1]
        if why:
            skipped.append((spec.name, missing_weights_sentence(spec, "The reranker")))
        else:
            reranks = [Rerank(first, spec, top_k) for first in firsts]
    return PipelinePlan(specs, tuple(fusions), tuple(reranks), skipped)


def pipeline_report(
    models: Sequence[Any] | None = None,
    datasets: Sequence[Any] | None = None,
    cache_dir: Any = None,
    reranker: str | None = DEFAULT_RERANKER,
    settings: RunSettings = REPORT_SETTINGS,
) -> Report:
    """The run of `pipeline_plan(models, reranker)` on the trap sets (default seed +
    traps-zh): the models through the embedding cache (the entries `trap_report` uses),
    then the fusions and reranks as rows of their own."""
    plan = pipeline_plan(models, reranker)
    return evaluate(
        plan.models,
        resolve_datasets(datasets),
        cached_settings(settings, cache_dir),
        fusions=plan.fusions,
        reranks=plan.reranks,
    )


def skipped_note(plan: PipelinePlan) -> str:
    """Markdown: what the run left out and why, or that nothing was left out."""
    if not plan.skipped:
        return "Nothing was skipped: every pipeline of the plan ran. / 计划中的所有流水线都已运行。"
    reasons = list(dict.fromkeys(reason for _, reason in plan.skipped))
    return "\n".join(f"- {reason}" for reason in reasons)


def pipeline_kinds(report: Report) -> pd.DataFrame:
    """One row per model of the run: its kind (dense, lexical (BM25), sparse, multi-vector,
    hybrid, fusion, reranked) and the stage description of fused / reranked rows."""
    runs = report.runs.drop_duplicates("model")
    stage = runs["stage"].fillna("").astype(str) if "stage" in runs else pd.Series("", index=runs.index)

    def kind(model: str, backend: str) -> str:
        if backend == "fusion":
            return "fusion"
        if backend == "rerank":
            return "reranked"
        if model == LEXICAL:
            return "lexical (BM25)"
        return {"bge-m3-sparse": "sparse", "bge-m3-colbert": "multi-vector", "bge-m3-hybrid": "hybrid"}.get(
            model, "dense"
        )

    return pd.DataFrame(
        {
            "model": runs["model"].to_numpy(),
            "kind": [kind(m, str(b)) for m, b in zip(runs["model"], runs["backend"])],
            "stage": stage.to_numpy(),
        }
    )


def pipeline_summary(report: Report) -> pd.DataFrame:
    """`Report.summary()` with each row's kind, ordered dense -> ... -> reranked."""
    summary = report.summary().merge(pipeline_kinds(report), on="model", how="left", suffixes=("", "_kind"))
    order = {k: i for i, k in enumerate(KIND_ORDER)}
    return summary.sort_values(
        ["dataset", "kind"], key=lambda s: s.map(order) if s.name == "kind" else s, kind="stable"
    ).reset_index(drop=True)


def baselines(report: Report) -> list[tuple[str, str]]:
    """(pipeline row, the row it is built on) pairs to test: a fusion against each member,
    a reranked row against its first stage, a BGE-M3 mode against BGE-M3 dense."""
    runs = report.runs.drop_duplicates("model").set_index("model")
    models = list(runs.index)
    pairs: list[tuple[str, str]] = []
    for model, row in runs.iterrows():
        stage = str(row.get("stage", "") or "")
        if row["backend"] == "fusion":
            members = stage.split(" of ", 1)[1].split(", ")
            pairs += [(model, m) for m in members if m in models]
        elif row["backend"] == "rerank":
            first = stage.split(" of ", 1)[1].split(" by ", 1)[0]
            pairs += [(model, first)] if first in models else []
        elif model in BGE_M3_MODES and "bge-m3" in models:
            pairs.append((model, "bge-m3"))
    return pairs


def category_tests(report: Report, metric: str = "top1") -> pd.DataFrame:
    """Per data set, per trap category (and "all"): each pipeline row against the row it is
    built on (`baselines`), paired over the same queries: difference of `metric`, its
    bootstrap interval, permutation p-value, Holm-adjusted within the data set (`p_holm`),
    wins / ties / losses."""
    rows = []
    for dataset, group in report.per_query.groupby("dataset", sort=False):
        table = group.pivot(index="query_id", columns="model", values=metric)
        category = group.drop_duplicates("query_id").set_index("query_id")["category"].reindex(table.index).fillna("")
        for model, base in baselines(report):
            if model not in table or base not in table:
                continue
            for name, mask in [
                ("all", np.ones(len(table), dtype=bool)),
                *((c, (category == c).to_numpy()) for c in dict.fromkeys(category) if c),
            ]:
                pair = table.loc[mask, [model, base]].dropna()
                if pair.empty:
                    continue
                cmp = paired_comparison(
                    pair[model].to_numpy(),
                    pair[base].to_numpy(),
                    metric,
                    model,
                    base,
                    report.confidence,
                    seed=report.seed,
                )
                rows.append({"dataset": dataset, "category": name, **cmp.to_dict()})
    columns = ["dataset", "category", *PairedComparison.__dataclass_fields__, "p_holm"]  # as Report.comparisons
    if not rows:
        return pd.DataFrame(columns=columns)
    frame = pd.DataFrame(rows)
    frame["p_holm"] = np.nan
    for index in frame.groupby("dataset").groups.values():
        frame.loc[index, "p_holm"] = holm(frame.loc[index, "p_value"].to_numpy(dtype=float))
    return frame[columns]


def tests_note(tests: pd.DataFrame, alpha: float = 0.05) -> str:
    """Markdown, computed from `category_tests`: per data set, each pipeline against its base
    over all queries, and the categories where the difference survives Holm at `alpha`."""
    if tests.empty:
        return "No pipeline row could be compared (no fusion or reranked row ran). / 没有可比较的流水线。"
    lines = []
    for dataset, group in tests.groupby("dataset", sort=False):
        lines.append(f"**{dataset}** (top-1, paired over the same queries; Holm within the data set, α = {alpha}):")
        lines.append("")
        overall = group[group["category"] == "all"]
        for r in overall.itertuples():
            verdict = "significant" if r.p_holm < alpha else "not significant"
            lines.append(
                f"- `{r.model_a}` vs `{r.model_b}`: {r.mean_a:.3f} vs {r.mean_b:.3f} ({r.diff:+.3f}, 95% CI "
                f"{r.diff_low:+.3f} to {r.diff_high:+.3f}; p_holm = {r.p_holm:.3g}, {verdict}; wins/ties/losses "
                f"{r.wins}/{r.ties}/{r.losses})."
            )
        found = group[(group["category"] != "all") & (group["p_holm"] < alpha)]
        if found.empty:
            lines.append(
                "- No single category shows a difference that survives the Holm adjustment. / "
                "没有任何单个类别的差异在 Holm 校正后显著。"
            )
        for r in found.itertuples():
            direction = "helps" if r.diff > 0 else "hurts"
            lines.append(
                f"- In `{r.category}`, `{r.model_a}` {direction} against `{r.model_b}` ({r.diff:+.3f}, p_holm = "
                f"{r.p_holm:.3g})."
            )
        lines.append("")
    return "\n".join(lines)


def rerank_cost(report: Report) -> pd.DataFrame:
    """The latency the reranker stage adds, per reranked row and data set: seconds for the
    whole set (batched), the median seconds to rerank one query's top k on its own, pairs."""
    runs = report.runs
    if "rerank_s" not in runs:
        return pd.DataFrame(
            columns=["model", "dataset", "stage", "top_k", "n_reranked", "rerank_s", "rerank_latency_s", "load_s"]
        )
    rows = runs[runs["backend"] == "rerank"]
    return rows.reindex(
        columns=[
            "model",
            "dataset",
            "status",
            "stage",
            "top_k",
            "n_reranked",
            "rerank_s",
            "rerank_latency_s",
            "load_s",
            "error",
        ]
    ).reset_index(drop=True)


__all__ = [
    "PipelinePlan",
    "baselines",
    "category_tests",
    "pipeline_kinds",
    "pipeline_plan",
    "pipeline_report",
    "pipeline_summary",
    "rerank_cost",
    "skipped_note",
    "tests_note",
    "weights_missing",
]
