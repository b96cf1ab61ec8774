"""What a report page says first, computed from its own numbers: who leads, by how much (with
its interval and paired p-value), what it beats and what it does not, and where the best cue
baseline stands. A notebook displays a `Finding`; its headline also travels, as output
metadata, to reports/index.html (`FINDING_KEY`)."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import pandas as pd

from embedlab.evaluation.metrics import parse_metric
from embedlab.evaluation.results import CUE_ALPHA, CUE_MIN_DIFF
from embedlab.report.formats import p_text

FINDING_KEY = "embedlab/finding"  # output metadata key the index reads the headline from
MIN_QUERIES = 5  # fewer queries than this (a data set, a category cell, a test): too few to read; greyed or left out
ALPHA = 0.05  # a difference "holds" when its paired p (Holm-adjusted where given) is below this


@dataclass(frozen=True)
class Finding:
    """A page's lead: one headline (plain text) and a few lines of detail (Markdown)."""

    headline: str
    lines: tuple[str, ...] = ()

    def to_markdown(self) -> str:
        detail = "\n".join(f"- {line}" for line in self.lines)
        return f"**{self.headline}**" + (f"\n\n{detail}" if detail else "")

    def to_html(self) -> str:
        """The finding as HTML in a `div.embedlab-finding` (the rendered pages style it)."""
        import html
        import re

        def inline(text: str) -> str:
            return re.sub(r"`([^`]+)`", r"<code>\1</code>", html.escape(text))

        items = "".join(f"<li>{inline(line)}</li>" for line in self.lines)
        return (
            f"<div class='embedlab-finding'><p><strong>{inline(self.headline)}</strong></p>"
            + (f"<ul>{items}</ul>" if items else "")
            + "</div>"
        )

    def _ipython_display_(self) -> None:
        from IPython.display import display

        bundle = {"text/html": self.to_html(), "text/markdown": self.to_markdown(), "text/plain": self.headline}
        display(bundle, raw=True, metadata={FINDING_KEY: self.headline})


def _ok(frame: pd.DataFrame, metric: str, exclude: Sequence[str], name: str) -> pd.DataFrame:
    rows = frame[frame[metric].notna() & ~frame[name].isin(list(exclude))]
    if "status" in rows.columns:
        rows = rows[rows["status"].fillna("ok") == "ok"]
    return rows.sort_values(metric, ascending=False, kind="stable")


def _pair(comparisons: pd.DataFrame | None, dataset: str, a: str, b: str) -> dict | None:
    """The comparison of `a` against `b` on `dataset`, oriented a - b (None if absent)."""
    if comparisons is None or comparisons.empty:
        return None
    same = comparisons["dataset"] == dataset
    for first, second, sign in ((a, b, 1.0), (b, a, -1.0)):
        hit = comparisons[same & (comparisons["model_a"] == first) & (comparisons["model_b"] == second)]
        if not hit.empty:
            row = hit.iloc[0]
            low, high = sign * row["diff_low"], sign * row["diff_high"]
            p = row["p_holm"] if "p_holm" in row.index and pd.notna(row["p_holm"]) else row["p_value"]
            return {
                "diff": sign * row["diff"],
                "low": min(low, high),
                "high": max(low, high),
                "p": p,
                "n": int(row["n"]),
            }
    return None


def _interval(row: pd.Series, metric: str) -> str:
    low, high = row.get(f"{metric}_low"), row.get(f"{metric}_high")
    if low is None or high is None or pd.isna(low) or pd.isna(high):
        return ""
    return f" (95% CI {low:.2f}–{high:.2f})"


def _versus(pair: dict | None) -> str:
    if pair is None:
        return ""
    interval = "" if pd.isna(pair["low"]) else f", difference CI {pair['low']:+.2f} to {pair['high']:+.2f}"
    return f"{interval}, {p_text(pair['p'])}" if pd.notna(pair["p"]) else interval


def _holds(pair: dict | None) -> bool:
    return pair is not None and pd.notna(pair["p"]) and pair["p"] < ALPHA and pair["diff"] > 0


def dataset_lead(
    frame: pd.DataFrame,
    dataset: str,
    comparisons: pd.DataFrame | None = None,
    metric: str = "top1",
    cues: Sequence[str] = (),
    name: str = "model",
) -> tuple[str, list[str]] | None:
    """On one data set: the sentence naming the leader (value, interval, n, margin over the
    runner-up with its test) and the details (beats / does not clearly beat; best cue)."""
    rows = frame[frame["dataset"] == dataset]
    models = _ok(rows, metric, cues, name)
    if models.empty:
        return None
    label = parse_metric(metric).label
    if "n_queries" in models.columns and models["n_queries"].max() < MIN_QUERIES:
        n = int(models["n_queries"].max())
        return f"On {dataset}: {n} {'query' if n == 1 else 'queries'} only, too few to rank the models.", []
    best = models.iloc[0]
    n = f", n = {int(best['n_queries'])} queries" if "n_queries" in best.index and pd.notna(best["n_queries"]) else ""
    sentence = f"On {dataset}, {best[name]} leads with {label} {best[metric]:.2f}{_interval(best, metric)}{n}"
    details = []
    if len(models) > 1:
        second = models.iloc[1]
        pair = _pair(comparisons, dataset, best[name], second[name])
        tie = best[metric] == second[metric]
        sentence += (
            f", tied with {second[name]}"
            if tie
            else f", {best[metric] - second[metric]:.2f} above {second[name]} ({second[metric]:.2f}{_versus(pair)})"
        )
        beaten, close = [], []
        for other in models.iloc[1:].itertuples(index=False):
            other_name = getattr(other, name)
            (beaten if _holds(_pair(comparisons, dataset, best[name], other_name)) else close).append(other_name)
        if comparisons is not None and not comparisons.empty:
            if beaten:
                details.append(f"{best[name]} is ahead of {', '.join(beaten)} on {dataset} (paired test, p < {ALPHA}).")
            if close:
                details.append(
                    f"It is not clearly ahead of {', '.join(close)} on {dataset}: the paired difference could be "
                    f"chance (p ≥ {ALPHA})."
                )
    present = _ok(rows, metric, [], name)
    cue_rows = present[present[name].isin(list(cues))]
    if not cue_rows.empty:
        cue = cue_rows.iloc[0]
        pair = _pair(comparisons, dataset, best[name], cue[name])
        clear = (
            pair is not None and pd.notna(pair["p"]) and pair["p"] < CUE_ALPHA and pair["diff"] >= CUE_MIN_DIFF
        )  # Report.cue_flags' rule
        verdict = "clearly ahead of it" if clear else "not clearly ahead of it"
        details.append(
            f"The best form cue on {dataset}, {cue[name]}, scores {cue[metric]:.2f}: {best[name]} is {verdict} "
            f"({best[metric] - cue[metric]:+.2f}{_versus(pair)})."
        )
    return sentence + ".", details


def lead(
    frame: pd.DataFrame,
    comparisons: pd.DataFrame | None = None,
    metric: str = "top1",
    cues: Sequence[str] = (),
    name: str = "model",
    subject: str = "",
) -> Finding:
    """Who leads on each data set of `frame` (a summary: `name`, dataset, n_queries, metric
    with `_low`/`_high`), by how much over the runner-up with the paired test from
    `comparisons` (`Report.comparisons`: p_holm where present, else p_value), what it beats
    and what it does not, and where the best of `cues` (cue baselines) stands. The headline
    is the data set with the most queries; `subject` prefixes it (e.g. "Homonyms: ")."""
    if frame.empty or metric not in frame.columns:
        return Finding(f"{subject}no results to compare.")
    sizes = (
        frame.groupby("dataset", sort=False)["n_queries"].max()
        if "n_queries" in frame.columns
        else pd.Series(1, index=frame["dataset"].unique())
    )
    order = list(sizes.sort_values(ascending=False, kind="stable").index)
    leads = {d: dataset_lead(frame, d, comparisons, metric, cues, name) for d in order}
    found = [(d, r) for d, r in leads.items() if r is not None]
    if not found:
        return Finding(f"{subject}no model produced results.")
    (_, (headline, details)), rest = found[0], found[1:]
    lines = list(details)
    for _, (sentence, more) in rest:
        lines += [sentence, *more]
    return Finding(subject + headline, tuple(lines))


def largest_effect(comparisons: pd.DataFrame, subject: str, label: str = "model_b", metric: str = "top1") -> Finding:
    """The comparison with the largest absolute difference (a - b), with its interval and
    p-value, and how many of the comparisons hold at ALPHA. For tables such as instruction
    variants against the documented prompt."""
    rows = comparisons.dropna(subset=["diff"])
    if rows.empty:
        return Finding(f"{subject}: nothing to compare.")
    top = rows.loc[rows["diff"].abs().idxmax()]
    p = top["p_holm"] if "p_holm" in top.index and pd.notna(top["p_holm"]) else top["p_value"]
    pair = {"diff": top["diff"], "low": top["diff_low"], "high": top["diff_high"], "p": p}
    p_col = rows["p_holm"] if "p_holm" in rows.columns else rows["p_value"]
    holding = int((p_col < ALPHA).sum())
    name = parse_metric(metric).label
    headline = (
        f"{subject}: the largest change is {top[label]} on {top['dataset']}, {name} {top['diff']:+.2f}{_versus(pair)}."
    )
    return Finding(headline, (f"{holding} of {len(rows)} differences hold at p < {ALPHA}; the rest could be chance.",))


def fastest(speed: pd.DataFrame, column: str, unit: str, where: str) -> str | None:
    """ "`model` is fastest `where`: value unit, k× the slowest" over the rows with a value."""
    rows = speed.dropna(subset=[column])
    if rows.empty:
        return None
    top = rows.loc[rows[column].idxmax()]
    slowest = rows.loc[rows[column].idxmin()]
    ratio = (
        f", {top[column] / slowest[column]:.1f}× {slowest['model']}" if len(rows) > 1 and slowest[column] > 0 else ""
    )
    return f"{top['model']} is fastest {where}: {top[column]:,.1f} {unit}{ratio}"


def speed_lead(speed: pd.DataFrame, measured_label: str, gpu: bool) -> Finding:
    """Who is fastest on the machine that ran the models (the throughput pass where it ran,
    else the timed batches), and why a model has several speeds. Rows of other sources (the
    article's) are left out: another device. `gpu`: whether the run used a GPU."""
    device = "the GPU of this run" if gpu else "this machine's CPU"
    ours = speed[speed["source"] == measured_label]
    column, unit = "throughput_texts_per_s", "texts/s in the throughput pass"
    if column not in ours or pd.to_numeric(ours[column], errors="coerce").isna().all():
        column, unit = "texts_per_s", "texts/s (median timed batch)"
    ours = ours.assign(**{column: pd.to_numeric(ours[column], errors="coerce")})
    headline = fastest(ours, column, unit, f"on {device}")
    if headline is None:
        return Finding(f"No speed was measured on {device}.")
    return Finding(
        headline + ".",
        (
            (
                "A model has several speeds because they measure different things: `texts_per_s` is the median of "
                "timed batches "
                "of the data set's first texts (latency protocol, includes per-call overhead), "
                "`throughput_texts_per_s` a longer "
                "pass of many texts at once (steady rate), `latency_median_s` the seconds of one timed batch."
            ),
            (
                "The article's GPU figures are a different device: they are drawn in a panel of their own, "
                "never on this machine's axis."
            ),
        ),
    )


def dimension_lead(sweep: pd.DataFrame, metric: str = "top1") -> Finding:
    """For each model swept over dimensions: its metric at the smallest dimension tried
    against its full dimension, on the data set with the most queries."""
    rows = sweep[sweep.get("status", pd.Series("ok", index=sweep.index)).fillna("ok") == "ok"].dropna(subset=[metric])
    swept = rows.groupby(["model", "dataset"]).filter(lambda g: g["dimensions"].nunique() > 1)
    if swept.empty:
        return Finding("No chosen model was run at a truncated dimension, so nothing here compares dimensions.")
    dataset = swept.groupby("dataset")["n_queries"].max().idxmax()
    lines = []
    for model, group in swept[swept["dataset"] == dataset].groupby("model", sort=False):
        group = group.sort_values("dimensions")
        small, full = group.iloc[0], group.iloc[-1]
        lines.append(
            f"{model} on {dataset}: {parse_metric(metric).label} {small[metric]:.2f}{_interval(small, metric)} at "
            f"{int(small['dimensions'])} dimensions against {full[metric]:.2f}{_interval(full, metric)} at "
            f"{int(full['dimensions'])} "
            f"({small[metric] - full[metric]:+.2f})."
        )
    return Finding(lines[0], tuple(lines[1:]))


def count_line(n: int, total: int, what: str) -> str:
    """ "n of total what" with the share, e.g. "3 of 26 queries (12%)"."""
    share = f" ({n / total:.0%})" if total else ""
    return f"{n} of {total} {what}{share}"


def flag_lead(cues: pd.DataFrame, subject: str = "Form cues") -> Finding:
    """Per data set, how many of the form-cue checks flag a shortcut and which (a frame with
    dataset, name, flagged: `lint.stack(reports, "cues")`); the headline names the worst set."""
    if cues.empty:
        return Finding(f"{subject}: nothing was checked.")
    lines = []
    counts = cues.assign(flagged=cues["flagged"].astype(bool)).groupby("dataset", sort=False)
    worst = max(counts, key=lambda item: item[1]["flagged"].sum())
    for dataset, group in [worst, *[c for c in counts if c[0] != worst[0]]]:
        names = group.loc[group["flagged"], "name"].tolist()
        which = f": {', '.join(map(str, names))}" if names else ""
        lines.append(f"{dataset}: {count_line(len(names), len(group), 'form-cue checks')} flag a shortcut{which}.")
    return Finding(f"{subject} — {lines[0]}", tuple(lines[1:]))
