"""The Report: per-query results, per-model measurements and the run's provenance; it
aggregates with confidence intervals, compares models pairwise, shows as DataFrames in
Jupyter and writes to / reads from a results folder."""

from __future__ import annotations

import itertools
import json
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from embedlab.evaluation.metrics import DEFAULT_METRICS, MetricSpec, metric_set
from embedlab.evaluation.stats import (
    PairedComparison,
    bounded_mean_ci,
    hit_rate_ci,
    holm,
    near_ties,
    paired_comparison,
    score_resolution,
)
from embedlab.files import write_text

# Columns every runs.csv row has, filled or empty: a CPU run's GPU columns stay empty.
RUN_COLUMNS = (
    "model",
    "dataset",
    "status",
    "error",
    "backend",
    "load_s",
    "warmup_s",
    "dim",
    "host_rss_before_gib",
    "host_rss_after_load_gib",
    "host_rss_peak_gib",
    "gpu_mem_before_gib",
    "gpu_mem_after_load_gib",
    "gpu_mem_load_gib",
    "gpu_mem_peak_gib",
    "torch_allocated_load_gib",
    "gpu_mem_source",
    "gpu_device",
    "weights_gib",
    "kv_cache_gib",
    "kv_cache_note",
    "max_length",
    "dtype",
    "throughput_texts_per_s",
    "throughput_tokens_per_s",
)

MEMORY_COLUMNS = [
    "host_rss_peak_gib",
    "host_rss_before_gib",
    "gpu_mem_before_gib",
    "gpu_mem_load_gib",
    "gpu_mem_peak_gib",
    "torch_allocated_load_gib",
    "gpu_mem_source",
    "gpu_device",
    "weights_gib",
    "kv_cache_gib",
    "kv_cache_note",
]
# A model "does not clearly beat" a cue baseline when it is less than this far above it on top-1,
# or not significantly above it (paired permutation test) at this level.
CUE_MIN_DIFF = 0.05
CUE_BACKENDS = ("length", "shortcut")  # rows of these backends are cue baselines, not models
CUE_ALPHA = 0.05


def metric_columns(metrics: tuple[MetricSpec, ...] = DEFAULT_METRICS, intervals: bool = True) -> list[str]:
    """Each metric's column, with its `_low` and `_high` interval bounds when `intervals`."""
    return [
        c for m in metrics for c in ((m.column, f"{m.column}_low", f"{m.column}_high") if intervals else (m.column,))
    ]


def summary_columns(metrics: tuple[MetricSpec, ...] = DEFAULT_METRICS) -> list[str]:
    """The columns of summary.csv for a run reporting `metrics`."""
    return ["model", "dataset", "status", "n_queries", *metric_columns(metrics), *MEASUREMENT_COLUMNS]


MEASUREMENT_COLUMNS = [
    "mean_margin",
    "n_near_ties",
    "load_s",
    "warmup_s",
    "latency_median_s",
    "latency_iqr_s",
    "n_timed",
    "texts_per_s",
    "throughput_texts_per_s",
    "throughput_tokens_per_s",
    *MEMORY_COLUMNS,
    "max_length",
    "dtype",
    "dim",
    "backend",
    "error",
    "stage",
    "rerank_s",
    "rerank_latency_s",  # fused / reranked rows (evaluation.fusion, evaluation.rerank)
    "search_index",
    "search_recall_at_10",
    "search_build_s",
    "search_s",  # settings.search (evaluation.search)
]
SUMMARY_COLUMNS = summary_columns()  # of a run with the default metrics
PER_QUERY_FILE = "per_query.csv"
COLUMNS_FILE = "columns.csv"  # the data dictionary of the folder's CSV files (embedlab.evaluation.columns)
RUNS_FILE = "runs.csv"


@dataclass(frozen=True)
class StageRows:
    """Rows a second stage (fusion, reranking) adds to a run: per-query tables, runs.csv
    rows and the (n_queries, n_docs) score matrices it computed, keyed (row, data set)."""

    frames: list[pd.DataFrame] = field(default_factory=list)
    runs: list[dict[str, Any]] = field(default_factory=list)
    scores: dict[tuple[str, str], np.ndarray] = field(default_factory=dict)


@dataclass
class Report:
    """Results of one `embedlab run`: `per_query` (one row per model x data set x query),
    `runs` (one row per model x data set: status, timing, memory), and provenance."""

    per_query: pd.DataFrame
    runs: pd.DataFrame
    config: dict[str, Any] = field(default_factory=dict)
    environment: dict[str, Any] = field(default_factory=dict)
    datasets: dict[str, str] = field(default_factory=dict)
    scores: dict[tuple[str, str], np.ndarray] = field(default_factory=dict, repr=False)
    seed: int = 0
    confidence: float = 0.95

    # ---- aggregates -------------------------------------------------------------------
    @property
    def metrics(self) -> tuple[MetricSpec, ...]:
        """The metrics this run reports: the defaults and its `settings.metrics`."""
        return metric_set(self.config.get("settings", {}).get("metrics") or ())

    def _interval(self, metric: MetricSpec, values: np.ndarray) -> tuple[float, float]:
        """The metric's interval method: Wilson for hit rates, the Wilson-type interval of a
        [0, 1]-bounded mean otherwise (`stats.bounded_mean_ci`): neither is zero-width on a
        perfect score."""
        if metric.interval == "wilson":
            return hit_rate_ci(values, self.confidence)
        return bounded_mean_ci(values, self.confidence)

    def _aggregate(self, keys: list[str]) -> pd.DataFrame:
        """Per group of `keys`: n_queries, each metric's mean and interval, the mean margin."""
        rows, metrics = [], self.metrics  # parsed once, not per group
        for key, group in self.per_query.groupby(keys, sort=False):
            row: dict[str, Any] = {**dict(zip(keys, key)), "n_queries": len(group)}
            for metric in metrics:
                values = group[metric.column].to_numpy(dtype=float)
                row[metric.column] = values.mean()
                row[f"{metric.column}_low"], row[f"{metric.column}_high"] = self._interval(metric, values)
            row["mean_margin"] = group["margin"].mean()
            resolution = self.resolution(row["model"], row["dataset"])
            row["n_near_ties"] = (
                int(near_ties(group["margin"], resolution).sum()) if np.isfinite(resolution) else np.nan
            )
            rows.append(row)
        return pd.DataFrame(rows, columns=[*keys, "n_queries", *metric_columns(metrics), "mean_margin", "n_near_ties"])

    def resolution(self, model: str, dataset: str) -> float:
        """The numeric resolution of a row's scores (`stats.score_resolution` of its backend
        and dtype): queries whose margin is below it are near-ties (`n_near_ties`)."""
        match = (
            self.runs[(self.runs["model"] == model) & (self.runs["dataset"] == dataset)]
            if not self.runs.empty
            else self.runs
        )
        row = match.iloc[0] if len(match) else {}
        return score_resolution(str(row.get("backend", "") or ""), str(row.get("dtype", "") or ""))

    def summary(self) -> pd.DataFrame:
        """One row per model x data set: metrics with 95% intervals, then measurements.
        Every column of `summary_columns(self.metrics)` is present (GPU columns empty on a CPU run)."""
        metrics = self._aggregate(["model", "dataset"])
        runs = self.runs if not self.runs.empty else pd.DataFrame(columns=["model", "dataset", "status", "error"])
        merged = runs.merge(metrics, on=["model", "dataset"], how="left")
        return merged.reindex(columns=summary_columns(self.metrics))

    def by_category(self) -> pd.DataFrame:
        """Per model x data set x category: each metric's mean with its interval."""
        return self._aggregate(["model", "dataset", "category"])

    def winner_kinds(self) -> pd.DataFrame:
        """How often each kind of distractor beat the answer, per model x data set."""
        if self.per_query.empty or "winner_kind" not in self.per_query:
            return pd.DataFrame(columns=["model", "dataset", "winner_kind", "n_wins"])
        wrong = self.per_query[self.per_query["winner_kind"].fillna("") != ""]
        return wrong.groupby(["model", "dataset", "winner_kind"]).size().rename("n_wins").reset_index()

    def compare(self, model_a: str, model_b: str, dataset: str, metric: str = "top1") -> PairedComparison:
        """Paired comparison of two models on the same queries of one data set; a query either
        model decided within its numeric resolution (`resolution`) counts as a tie."""
        rows = self.per_query[self.per_query["dataset"] == dataset]
        table = rows.pivot(index="query_id", columns="model", values=metric)
        for model in (model_a, model_b):
            if model not in table.columns:
                raise KeyError(f"no results for model {model!r} on {dataset!r}")
        pair = table[[model_a, model_b]].dropna()
        margins = rows.pivot(index="query_id", columns="model", values="margin").loc[pair.index]
        near = near_ties(margins[model_a], self.resolution(model_a, dataset)) | near_ties(
            margins[model_b], self.resolution(model_b, dataset)
        )
        return paired_comparison(
            pair[model_a].to_numpy(),
            pair[model_b].to_numpy(),
            metric,
            model_a,
            model_b,
            self.confidence,
            seed=self.seed,
            near_tie=near,
        )

    def comparisons(self, metric: str = "top1") -> pd.DataFrame:
        """Every pair of models on every data set: difference, CI, p-value, wins/ties/losses."""
        frames = []
        for dataset, group in self.per_query.groupby("dataset", sort=False):
            models = list(dict.fromkeys(group["model"]))
            rows = [
                {"dataset": dataset, **self.compare(a, b, dataset, metric).to_dict()}
                for a, b in itertools.combinations(models, 2)
            ]
            if rows:
                frame = pd.DataFrame(rows)
                # Holm over the pairs of one data set and metric: the family a reader scans
                frame["p_holm"] = holm(frame["p_value"].to_numpy(dtype=float))
                frames.append(frame)
        columns = ["dataset", *PairedComparison.__dataclass_fields__, "p_holm"]
        return pd.concat(frames, ignore_index=True)[columns] if frames else pd.DataFrame(columns=columns)

    def cue_models(self) -> list[str]:
        """Models that are cue baselines (a backend of CUE_BACKENDS), not real models."""
        if "backend" not in self.runs:
            return []
        return list(dict.fromkeys(self.runs.loc[self.runs["backend"].isin(CUE_BACKENDS), "model"]))

    def cue_flags(self, metric: str = "top1") -> pd.DataFrame:
        """Each real model against the best cue baseline of each data set: flagged when it
        is less than CUE_MIN_DIFF above it or not significantly above it (paired
        permutation p >= CUE_ALPHA): such a score may come from form, not meaning."""
        columns = ["dataset", "model", metric, "best_cue", f"best_cue_{metric}", "diff", "p_value", "flagged"]
        cues = set(self.cue_models())
        rows = []
        if not cues or self.per_query.empty:
            return pd.DataFrame(columns=columns)
        for dataset, group in self.per_query.groupby("dataset", sort=False):
            means = group.groupby("model", sort=False)[metric].mean()
            present = [m for m in means.index if m in cues]
            if not present:
                continue
            best = max(present, key=lambda m: means[m])
            for model in means.index:
                if model in cues:
                    continue
                cmp = self.compare(model, best, dataset, metric)
                flagged = bool(cmp.diff < CUE_MIN_DIFF or not cmp.p_value < CUE_ALPHA)
                rows.append(
                    {
                        "dataset": dataset,
                        "model": model,
                        metric: means[model],
                        "best_cue": best,
                        f"best_cue_{metric}": means[best],
                        "diff": cmp.diff,
                        "p_value": cmp.p_value,
                        "flagged": flagged,
                    }
                )
        return pd.DataFrame(rows, columns=columns)

    # ---- display ----------------------------------------------------------------------
    def _repr_html_(self) -> str:
        cols = [
            "model",
            "dataset",
            "status",
            "n_queries",
            *metric_columns(self.metrics[:1]),
            *metric_columns(self.metrics[1:], intervals=False),
            "mean_margin",
            "texts_per_s",
            *self.memory_columns(),
        ]
        table = self.summary()
        return table[[c for c in cols if c in table.columns]].to_html(
            index=False, float_format=lambda x: f"{x:.3f}", na_rep=""
        )

    def __repr__(self) -> str:
        if self.runs.empty:
            return "Report(no runs)"
        ok = self.runs[self.runs["status"] == "ok"]
        return (
            f"Report({ok['model'].nunique()} models ok, {self.runs['dataset'].nunique()} data sets, "
            f"{len(self.per_query)} query results)"
        )

    def on_gpu(self) -> bool:
        """True when any model ran on a GPU (see `gpu_rows`)."""
        return bool(gpu_rows(self.runs).any())

    def memory_columns(self) -> list[str]:
        """The memory columns worth showing: GPU memory when a GPU was used, else host RSS."""
        if self.on_gpu():
            return ["gpu_mem_load_gib", "gpu_mem_peak_gib", "weights_gib", "kv_cache_gib", "host_rss_peak_gib"]
        return ["host_rss_peak_gib"]

    def to_markdown(self) -> str:
        """A readable report: the summary with 95% intervals, speed and memory (GPU memory
        when a GPU was used, else host RSS, named as such), cue baselines, top-1 per
        category, the distractor kinds that beat the answer, the paired comparisons, the
        failed models and the machine. Works when every model failed."""

        def block(frame: pd.DataFrame) -> str:
            return markdown_table(frame) + "\n"

        summary = self.summary()
        ok = summary[summary["status"] == "ok"]
        has_results = not self.per_query.empty
        lines = ["# embedlab results", ""]
        hw = self.environment.get("hardware", {})
        pkgs = self.environment.get("packages", {})
        lines.append(
            f"Machine: {hw.get('cpu', '?')}, {hw.get('cores', '?')} cores, {hw.get('memory_gib', 0):.0f} GiB"
            + (f", GPU {hw['gpu_name']}" if hw.get("gpu_name") else "")
            + f"; Python {hw.get('python', '?')}."
        )
        lines.append("Packages: " + ", ".join(f"{k} {v}" for k, v in sorted(pkgs.items())) + ".")
        lines.append(
            f"Intervals: {self.confidence:.0%} Wilson score intervals for top-k, Wilson-type intervals of the bounded "
            "mean for MRR and nDCG (conservative, never zero-width). Ties count against the model; n_near_ties: "
            "queries decided within the numeric resolution of the row's scores."
        )
        failed = summary[summary["status"] != "ok"][["model", "dataset", "error"]]
        if not has_results:
            lines += ["", "**No model produced results.**", ""]
        else:
            lines += ["", "## Accuracy", ""]
            acc = [
                "model",
                "dataset",
                "status",
                "n_queries",
                *metric_columns(self.metrics[:1]),
                *metric_columns(self.metrics[1:], intervals=False),
                "mean_margin",
                "n_near_ties",
            ]
            lines.append(block(ok[acc]))
            lines += ["## Speed and memory", ""]
            if self.on_gpu():
                lines.append(
                    "GPU memory of the device each worker used (NVML; `gpu_mem_source` says whether the worker's own "
                    "usage or the whole device's), GiB: load = after load minus before; weights = parameter bytes; KV "
                    "cache = what the engine allocated. Host RSS beside it."
                )
            else:
                lines.append(
                    "No GPU was used: memory is **host RSS, CPU run** (peak resident memory of the worker process), "
                    "GiB; not comparable with GPU memory."
                )
            lines.append("")
            speed = [
                "model",
                "dataset",
                "load_s",
                "latency_median_s",
                "latency_iqr_s",
                "n_timed",
                "texts_per_s",
                "throughput_texts_per_s",
                *self.memory_columns(),
                "max_length",
                "dtype",
                "dim",
            ]
            lines.append(block(ok[speed]))
            flags = self.cue_flags()
            if not flags.empty:
                lines += [
                    "## Cue baselines",
                    "",
                    (
                        "`length` ranks longer documents higher; `length-judged` does so among each query's own "
                        "answer and distractors; among the same candidates, `overlap-inverse` prefers the document "
                        "sharing the fewest character bigrams with the query (ties at random) and `query-blind` the "
                        "one a naive Bayes over the documents' character n-grams, trained on the other queries' "
                        "answers against their distractors, finds most answer-like (the rules `embedlab lint` flags). "
                        f"A model is flagged when its top-1 is less than {CUE_MIN_DIFF:.2f} above the best cue's or "
                        f"not significantly above it (paired permutation p >= {CUE_ALPHA})."
                    ),
                    "",
                ]
                lines.append(block(flags))
                for r in flags[flags["flagged"]].itertuples():
                    lines.append(
                        f"- **{r.model}** does not clearly beat the `{r.best_cue}` cue on {r.dataset} (top-1 "
                        f"{r.top1:.3f} vs {r.best_cue_top1:.3f}, p = {r.p_value:.3g})."
                    )
                lines.append("")
            if (self.per_query["category"].fillna("") != "").any():
                lines += ["## Top-1 by category", ""]
                cats = self.by_category()
                table = cats.pivot_table(index=["dataset", "category"], columns="model", values="top1").reset_index()
                lines.append(block(table))
            kinds = self.winner_kinds()
            if not kinds.empty:
                lines += ["## What beat the answer (kind of the top document when the model was wrong)", ""]
                lines.append(
                    block(
                        kinds.pivot_table(
                            index=["dataset", "winner_kind"],
                            columns="model",
                            values="n_wins",
                            fill_value=0,
                            aggfunc="sum",
                        )
                        .astype(int, errors="ignore")
                        .reset_index()
                    )
                )
            if self.per_query["model"].nunique() > 1:
                lines += [
                    (
                        "## Paired comparisons (top-1; permutation p-value, Holm-adjusted within each data set; "
                        "bootstrap CI of the difference)"
                    ),
                    "",
                ]
                cmp = self.comparisons("top1")
                lines.append(
                    block(
                        cmp[
                            [
                                "dataset",
                                "model_a",
                                "model_b",
                                "n",
                                "diff",
                                "diff_low",
                                "diff_high",
                                "p_value",
                                "p_holm",
                                "wins",
                                "ties",
                                "losses",
                                "near_ties",
                            ]
                        ]
                    )
                )
        if not failed.empty:
            lines += (
                ["## Failed models", ""]
                + [f"- {r.model} on {r.dataset}: {r.error}" for r in failed.itertuples()]
                + [""]
            )
        return "\n".join(lines)

    # ---- files ------------------------------------------------------------------------
    def to_dir(self, out: str | Path) -> Path:
        """Write summary.csv, per_query.csv, by_category.csv, comparisons.csv, runs.csv,
        columns.csv (what each of their columns means, and its unit), run.json and report.md. Each file is
        written to a temporary name and renamed, so an interrupted write never leaves a half-written file in
        place of a good one."""
        from embedlab.evaluation.columns import dictionary, typed

        out = Path(out)
        out.mkdir(parents=True, exist_ok=True)
        files = {
            "summary.csv": self.summary(),
            PER_QUERY_FILE: self.per_query,
            "by_category.csv": self.by_category(),
            RUNS_FILE: self.runs,
        }
        if self.per_query["model"].nunique() > 1:
            files["comparisons.csv"] = self.comparisons("top1")
        for name, frame in files.items():
            write_text(out / name, typed(frame).to_csv(index=False))
        write_text(
            out / COLUMNS_FILE,
            dictionary({name: frame.columns for name, frame in files.items()}, strict=False).to_csv(index=False),
        )
        meta = {
            "format": "embedlab-results/1",
            "config": self.config,
            "environment": self.environment,
            "datasets": self.datasets,
            "seed": self.seed,
            "confidence": self.confidence,
        }
        write_text(out / "run.json", json.dumps(meta, ensure_ascii=False, indent=2, default=str))
        write_text(out / "report.md", self.to_markdown())
        return out

    @classmethod
    def from_dir(cls, out: str | Path) -> Report:
        """Read a results folder written by `to_dir`."""
        out = Path(out)
        meta = json.loads((out / "run.json").read_text(encoding="utf-8"))
        per_query = pd.read_csv(
            out / PER_QUERY_FILE, dtype={"query_id": str, "category": str, "top1_doc_id": str, "winner_kind": str}
        )
        per_query = per_query.fillna({"category": "", "winner_kind": "", "top1_kind": "", "best_wrong_kind": ""})
        runs = pd.read_csv(out / RUNS_FILE, dtype={"error": str}).fillna({"error": ""})
        return cls(
            per_query,
            runs,
            meta.get("config", {}),
            meta.get("environment", {}),
            meta.get("datasets", {}),
            seed=meta.get("seed", 0),
            confidence=meta.get("confidence", 0.95),
        )


def _cell(value: Any) -> str:
    if value is None or (isinstance(value, float) and np.isnan(value)) or value is pd.NA:
        return "–"
    if isinstance(value, float):
        return f"{value:.3f}"
    return str(value).replace("|", "\\|").replace("\n", " ")


def markdown_table(frame: pd.DataFrame) -> str:
    """A GitHub-flavoured Markdown table of `frame` (no index; floats to 3 decimals, missing
    values as –, pipes escaped)."""
    header = "| " + " | ".join(map(str, frame.columns)) + " |"
    rule = "|" + "|".join("---" for _ in frame.columns) + "|"
    rows = ["| " + " | ".join(_cell(v) for v in row) + " |" for row in frame.itertuples(index=False)]
    return "\n".join([header, rule, *rows])


def gpu_rows(runs: pd.DataFrame) -> pd.Series:
    """Per run row: whether GPU memory was measured (`gpu_mem_peak_gib` or
    `gpu_mem_load_gib` filled, or a `gpu_device` named). False on a CPU run."""

    def numbers(column: str) -> pd.Series:
        return (
            pd.to_numeric(runs[column], errors="coerce")
            if column in runs
            else pd.Series(np.nan, index=runs.index, dtype=float)
        )

    # an all-empty column reads back from CSV as float64 NaN: fill after the cast to object
    device = (
        runs["gpu_device"].astype(object).fillna("").astype(str)
        if "gpu_device" in runs
        else pd.Series("", index=runs.index, dtype=object)
    )
    return numbers("gpu_mem_peak_gib").notna() | numbers("gpu_mem_load_gib").notna() | (device != "")
