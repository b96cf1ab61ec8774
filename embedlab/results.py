"""The Report: per-query results, per-model measurements and the run's provenance; it
aggregates with confidence intervals, compares models pairwise, shows as DataFrames in
Jupyter and writes to / reads from a results folder."""

from __future__ import annotations

import itertools
import json
import os
import tempfile
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from embedlab.stats import PairedComparison, bootstrap_ci, paired_comparison

CI_METRICS = ("top1", "top3", "top5", "mrr", "ndcg_at_10")
SUMMARY_COLUMNS = [
    "model", "dataset", "status", "n_queries",
    "top1", "top1_low", "top1_high", "top3", "top3_low", "top3_high", "top5", "top5_low", "top5_high",
    "mrr", "mrr_low", "mrr_high", "ndcg_at_10", "ndcg_at_10_low", "ndcg_at_10_high",
    "mean_margin", "load_s", "warmup_s", "latency_median_s", "latency_iqr_s", "n_timed",
    "texts_per_s", "throughput_texts_per_s", "throughput_tokens_per_s",
    "peak_mem_gib", "rss_before_gib", "dim", "error",
]
PER_QUERY_FILE = "per_query.csv"
RUNS_FILE = "runs.csv"


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
    def summary(self) -> pd.DataFrame:
        """One row per model x data set: metrics with bootstrap CIs, then measurements."""
        rows = []
        for (model, dataset), group in self.per_query.groupby(["model", "dataset"], sort=False):
            row: dict[str, Any] = {"model": model, "dataset": dataset, "n_queries": len(group)}
            for metric in CI_METRICS:
                values = group[metric].to_numpy(dtype=float)
                row[metric] = values.mean()
                row[f"{metric}_low"], row[f"{metric}_high"] = bootstrap_ci(values, self.confidence, seed=self.seed)
            row["mean_margin"] = group["margin"].mean()
            rows.append(row)
        metrics = pd.DataFrame(rows, columns=["model", "dataset", "n_queries", *[c for m in CI_METRICS for c in (m, f"{m}_low", f"{m}_high")], "mean_margin"])
        merged = self.runs.merge(metrics, on=["model", "dataset"], how="left")
        return merged.reindex(columns=[c for c in SUMMARY_COLUMNS if c in merged.columns])

    def by_category(self) -> pd.DataFrame:
        """Mean metrics per model x data set x category, with a CI on top1."""
        rows = []
        for (model, dataset, category), group in self.per_query.groupby(["model", "dataset", "category"], sort=False):
            top1 = group["top1"].to_numpy(dtype=float)
            low, high = bootstrap_ci(top1, self.confidence, seed=self.seed)
            rows.append(
                {
                    "model": model, "dataset": dataset, "category": category, "n_queries": len(group),
                    "top1": top1.mean(), "top1_low": low, "top1_high": high,
                    "top3": group["top3"].mean(), "mrr": group["mrr"].mean(),
                    "ndcg_at_10": group["ndcg_at_10"].mean(), "mean_margin": group["margin"].mean(),
                }
            )
        return pd.DataFrame(rows)

    def winner_kinds(self) -> pd.DataFrame:
        """How often each kind of distractor beat the answer, per model x data set."""
        wrong = self.per_query[self.per_query["winner_kind"].fillna("") != ""]
        return (
            wrong.groupby(["model", "dataset", "winner_kind"]).size().rename("n_wins").reset_index()
        )

    def compare(self, model_a: str, model_b: str, dataset: str, metric: str = "top1") -> PairedComparison:
        """Paired comparison of two models on the same queries of one data set."""
        table = self.per_query[self.per_query["dataset"] == dataset].pivot(index="query_id", columns="model", values=metric)
        for model in (model_a, model_b):
            if model not in table.columns:
                raise KeyError(f"no results for model {model!r} on {dataset!r}")
        pair = table[[model_a, model_b]].dropna()
        return paired_comparison(pair[model_a].to_numpy(), pair[model_b].to_numpy(), metric, model_a, model_b, self.confidence, seed=self.seed)

    def comparisons(self, metric: str = "top1") -> pd.DataFrame:
        """Every pair of models on every data set: difference, CI, p-value, wins/ties/losses."""
        rows = []
        for dataset, group in self.per_query.groupby("dataset", sort=False):
            models = list(dict.fromkeys(group["model"]))
            for a, b in itertools.combinations(models, 2):
                rows.append({"dataset": dataset, **self.compare(a, b, dataset, metric).to_dict()})
        return pd.DataFrame(rows)

    # ---- display ----------------------------------------------------------------------
    def _repr_html_(self) -> str:
        cols = ["model", "dataset", "status", "n_queries", "top1", "top1_low", "top1_high", "mrr", "ndcg_at_10", "mean_margin", "texts_per_s", "peak_mem_gib"]
        table = self.summary()
        return table[[c for c in cols if c in table.columns]].to_html(index=False, float_format=lambda x: f"{x:.3f}", na_rep="")

    def __repr__(self) -> str:
        ok = self.runs[self.runs["status"] == "ok"]
        return f"Report({ok['model'].nunique()} models ok, {self.runs['dataset'].nunique()} data sets, {len(self.per_query)} query results)"

    def to_markdown(self) -> str:
        """A readable report: the summary with 95% intervals, top-1 per category, the
        distractor kinds that beat the answer, the paired comparisons, and the machine."""
        def block(frame: pd.DataFrame) -> str:
            return "```\n" + frame.to_string(index=False, float_format=lambda x: f"{x:.3f}", na_rep="-") + "\n```\n"

        summary = self.summary()
        lines = ["# embedlab results", ""]
        hw = self.environment.get("hardware", {})
        pkgs = self.environment.get("packages", {})
        lines.append(f"Machine: {hw.get('cpu', '?')}, {hw.get('cores', '?')} cores, {hw.get('memory_gib', 0):.0f} GiB" + (f", GPU {hw['gpu_name']}" if hw.get("gpu_name") else "") + f"; Python {hw.get('python', '?')}.")
        lines.append("Packages: " + ", ".join(f"{k} {v}" for k, v in sorted(pkgs.items())) + ".")
        lines.append(f"Intervals: {self.confidence:.0%} percentile bootstrap over queries (seed {self.seed}). Ties count against the model.")
        lines += ["", "## Accuracy", ""]
        acc = ["model", "dataset", "status", "n_queries", "top1", "top1_low", "top1_high", "top3", "mrr", "ndcg_at_10", "mean_margin"]
        lines.append(block(summary[[c for c in acc if c in summary.columns]]))
        lines += ["## Speed and memory", ""]
        speed = ["model", "dataset", "load_s", "latency_median_s", "latency_iqr_s", "n_timed", "texts_per_s", "throughput_texts_per_s", "peak_mem_gib", "dim"]
        lines.append(block(summary[[c for c in speed if c in summary.columns]]))
        if not self.per_query.empty and (self.per_query["category"].fillna("") != "").any():
            lines += ["## Top-1 by category", ""]
            cats = self.by_category()
            table = cats.pivot_table(index=["dataset", "category"], columns="model", values="top1").reset_index()
            lines.append(block(table))
        kinds = self.winner_kinds()
        if not kinds.empty:
            lines += ["## What beat the answer (kind of the top document when the model was wrong)", ""]
            lines.append(block(kinds.pivot_table(index=["dataset", "winner_kind"], columns="model", values="n_wins", fill_value=0, aggfunc="sum").astype(int, errors="ignore").reset_index()))
        if self.per_query["model"].nunique() > 1:
            lines += ["## Paired comparisons (top-1; permutation p-value, bootstrap CI of the difference)", ""]
            cmp = self.comparisons("top1")
            lines.append(block(cmp[["dataset", "model_a", "model_b", "n", "diff", "diff_low", "diff_high", "p_value", "wins", "ties", "losses"]]))
        failed = summary[summary["status"] != "ok"][["model", "error"]].drop_duplicates() if "status" in summary else pd.DataFrame()
        if not failed.empty:
            lines += ["## Failed models", ""] + [f"- {r.model}: {r.error}" for r in failed.itertuples()] + [""]
        return "\n".join(lines)

    # ---- files ------------------------------------------------------------------------
    def to_dir(self, out: str | Path) -> Path:
        """Write summary.csv, per_query.csv, by_category.csv, comparisons.csv, runs.csv,
        run.json and report.md. Each file is written to a temporary name and renamed, so an interrupted
        write never leaves a half-written file in place of a good one."""
        out = Path(out)
        out.mkdir(parents=True, exist_ok=True)
        _atomic_csv(self.summary(), out / "summary.csv")
        _atomic_csv(self.per_query, out / PER_QUERY_FILE)
        _atomic_csv(self.by_category(), out / "by_category.csv")
        _atomic_csv(self.runs, out / RUNS_FILE)
        if self.per_query["model"].nunique() > 1:
            _atomic_csv(self.comparisons("top1"), out / "comparisons.csv")
        meta = {
            "format": "embedlab-results/1",
            "config": self.config,
            "environment": self.environment,
            "datasets": self.datasets,
            "seed": self.seed,
            "confidence": self.confidence,
        }
        _atomic_write(out / "run.json", json.dumps(meta, ensure_ascii=False, indent=2, default=str))
        _atomic_write(out / "report.md", self.to_markdown())
        return out

    @classmethod
    def from_dir(cls, out: str | Path) -> Report:
        """Read a results folder written by `to_dir`."""
        out = Path(out)
        meta = json.loads((out / "run.json").read_text(encoding="utf-8"))
        per_query = pd.read_csv(out / PER_QUERY_FILE, dtype={"query_id": str, "category": str, "top1_doc_id": str, "winner_kind": str})
        per_query = per_query.fillna({"category": "", "winner_kind": "", "top1_kind": "", "best_wrong_kind": ""})
        runs = pd.read_csv(out / RUNS_FILE, dtype={"error": str}).fillna({"error": ""})
        return cls(per_query, runs, meta.get("config", {}), meta.get("environment", {}), meta.get("datasets", {}), seed=meta.get("seed", 0), confidence=meta.get("confidence", 0.95))


def _atomic_write(path: Path, text: str) -> None:
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", dir=path.parent)
    try:
        with os.fdopen(fd, "w", encoding="utf-8") as fh:
            fh.write(text)
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise


def _atomic_csv(frame: pd.DataFrame, path: Path) -> None:
    _atomic_write(path, frame.to_csv(index=False))
