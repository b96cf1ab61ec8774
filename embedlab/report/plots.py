"""Figures. Each function takes a long-format DataFrame (from `embedlab.report.analysis` or a
Report) and `ax=None`, draws, and returns the Axes; functions named `*_figure(s)` draw
several panels and return the Figure(s). None of them shows or saves anything: notebooks
decide that (`embedlab.report.render.save_figure`).

Chinese labels need a CJK font: `use_style()` (or any plot function) registers one with
matplotlib (the `paperang-p2-fonts-cjk` package's WenQuanYi Micro Hei, else a system CJK
font, or `$EMBEDLAB_CJK_FONT`) and puts it first in `font.sans-serif`."""

from __future__ import annotations

import functools
import importlib.resources
import os
from collections.abc import Sequence
from pathlib import Path

import numpy as np
import pandas as pd

from embedlab.evaluation.metrics import parse_metric
from embedlab.report.findings import MIN_QUERIES

STYLE_PATH = Path(__file__).parent / "style" / "embedlab.mplstyle"
FONT_ENV = "EMBEDLAB_CJK_FONT"
FONT_PACKAGES = ("paperang_p2_fonts_cjk",)
SYSTEM_FONT_HINTS = (
    "wqy",
    "wenquanyi",
    "notosanscjk",
    "noto sans cjk",
    "sourcehansans",
    "droidsansfallback",
    "simhei",
    "msyh",
    "pingfang",
)
CJK_PROBE = "中文语义陷阱检索模型"
KIND_COLORS = {
    "answer": "#1a7f37",
    "other-sense": "#C44E52",
    "other-entity": "#DD8452",
    "literal": "#8172B3",
    "antonym": "#b8860b",
    "near-miss": "#4C72B0",
    "topical": "#937860",
    "off-topic": "#8C8C8C",
    "other-answer": "#64B5CD",
    "unjudged": "#8C8C8C",
    "": "#444444",
}
REPORTED_SOURCE = "reported in the article (GPU, not measured here)"  # analysis.REPORTED_LABEL
SOURCE_STYLE = {
    "measured here": {"marker": "o", "hatch": None, "alpha": 0.95},
    REPORTED_SOURCE: {"marker": "^", "hatch": "//", "alpha": 0.45},
    "cue baseline": {"marker": "s", "hatch": "xx", "alpha": 0.5},
}


# ---- fonts and style --------------------------------------------------------------------


def covers(font_path: str | Path, text: str = CJK_PROBE) -> bool:
    """Whether the font file has a glyph for every character of `text`."""
    from matplotlib.ft2font import FT2Font

    try:
        font = FT2Font(str(font_path))
    except (OSError, RuntimeError, ValueError):
        return False
    return all(font.get_char_index(ord(ch)) != 0 for ch in text)


def find_cjk_font() -> Path | None:
    """A font file with Chinese glyphs: `$EMBEDLAB_CJK_FONT`, then the fonts shipped by a
    pip package (paperang-p2-fonts-cjk), then a system font (fonts-wqy-microhei,
    fonts-noto-cjk, ...). None when there is none."""
    env = os.environ.get(FONT_ENV)
    if env and Path(env).is_file() and covers(env):
        return Path(env)
    for package in FONT_PACKAGES:
        try:
            root = importlib.resources.files(package)
        except ModuleNotFoundError:
            continue
        for path in sorted(Path(str(root)).rglob("*")):
            if path.suffix.lower() in (".ttc", ".ttf", ".otf") and covers(path):
                return path
    from matplotlib import font_manager

    for name in sorted(font_manager.findSystemFonts()):
        flat = Path(name).name.lower().replace("-", "").replace("_", "")
        if any(hint.replace(" ", "") in flat for hint in SYSTEM_FONT_HINTS) and covers(name):
            return Path(name)
    return None


@functools.cache
def cjk_font_file() -> Path:
    """The CJK font file this process draws with (`find_cjk_font`, looked up once). Raises
    RuntimeError, saying what to install, when no CJK font exists on this machine."""
    path = find_cjk_font()
    if path is None:
        raise RuntimeError(
            "no font with Chinese glyphs found: install embedlab's notebooks extra "
            "(pip install 'embedlab[notebooks]', which brings paperang-p2-fonts-cjk), or "
            "apt-get install fonts-wqy-microhei, or set EMBEDLAB_CJK_FONT to a .ttf/.ttc/.otf"
        )
    return path


@functools.cache
def register_cjk_font() -> str:
    """Register the CJK font with matplotlib once; returns its family name."""
    from matplotlib import font_manager
    from matplotlib.ft2font import FT2Font

    path = cjk_font_file()
    font_manager.fontManager.addfont(str(path))
    return FT2Font(str(path)).family_name


def ensure_cjk_font() -> str:
    """Register the CJK font and make it the first sans-serif family (a change to
    matplotlib's rcParams, so every later text finds Chinese glyphs). Idempotent."""
    import matplotlib as mpl

    name = register_cjk_font()
    families = list(mpl.rcParams["font.sans-serif"])
    if not families or families[0] != name:
        mpl.rcParams["font.sans-serif"] = [name, *[f for f in families if f != name]]
    if list(mpl.rcParams["font.family"]) != ["sans-serif"]:
        mpl.rcParams["font.family"] = ["sans-serif"]
    mpl.rcParams["axes.unicode_minus"] = False
    return name


def use_style() -> str:
    """Apply embedlab's style sheet and the CJK font; returns the font's family name."""
    import matplotlib.pyplot as plt

    plt.style.use(STYLE_PATH)
    return ensure_cjk_font()


def _axes(ax, figsize: tuple[float, float] | None = None):
    import matplotlib.pyplot as plt

    ensure_cjk_font()
    if ax is None:
        _, ax = plt.subplots(figsize=figsize)
    return ax


class NothingToDraw(ValueError):
    """Raised by a figure function whose data holds nothing to plot; its message is the
    sentence a page shows instead of an empty figure (`render.Drawer`)."""


def note(ax, text: str):
    """Write `text` in the middle of an empty Axes (used when there is nothing to plot)."""
    ax.text(0.5, 0.5, text, ha="center", va="center", wrap=True, transform=ax.transAxes, fontsize=10, color="#555555")
    ax.embedlab_note = text  # an Axes with nothing drawn: `render.Drawer` shows the sentence instead of the figure
    ax.set_xticks([])
    ax.set_yticks([])
    ax.grid(False)
    return ax


def _order(values: Sequence) -> list:
    return list(dict.fromkeys(values))


# ---- bars -----------------------------------------------------------------------------


def grouped_bars(
    frame: pd.DataFrame,
    x: str,
    value: str,
    hue: str | None = None,
    low: str | None = None,
    high: str | None = None,
    ax=None,
    hatch_by: str | None = None,
    annotate: bool = True,
    ylim: tuple[float, float] | None = None,
):
    """Bars of `value` per `x`, side by side per `hue`, with error bars from the `low` /
    `high` columns (an interval, e.g. a 95% CI) where they are not NaN."""
    ax = _axes(ax, (max(6.0, 1.2 * frame[x].nunique() + 2), 4.2))
    if frame.empty:
        return note(ax, "no data")
    xs = _order(frame[x])
    hues = _order(frame[hue]) if hue else [None]
    width = 0.8 / len(hues)
    colors = [c["color"] for c in __import__("matplotlib").rcParams["axes.prop_cycle"]]
    for j, h in enumerate(hues):
        sub = frame if h is None else frame[frame[hue] == h]
        for i, xv in enumerate(xs):
            row = sub[sub[x] == xv]
            if row.empty or pd.isna(row[value].iloc[0]):
                continue
            v = float(row[value].iloc[0])
            pos = i - 0.4 + width * (j + 0.5)
            style = SOURCE_STYLE.get(row[hatch_by].iloc[0], {}) if hatch_by else {}
            ax.bar(
                pos,
                v,
                width * 0.92,
                color=colors[j % len(colors)],
                hatch=style.get("hatch"),
                alpha=style.get("alpha", 0.9),
                edgecolor="#333333" if style.get("hatch") else None,
                label=str(h) if i == xs.index(xv) and h is not None else None,
            )
            top = v
            if low and high and not pd.isna(row[low].iloc[0]):
                lo, hi = float(row[low].iloc[0]), float(row[high].iloc[0])
                ax.errorbar(pos, v, yerr=[[max(v - lo, 0)], [max(hi - v, 0)]], color="#222222", capsize=3, lw=1)
                top = max(v, hi)
            if annotate:  # above the error bar's cap, never through it
                ax.annotate(
                    f"{v:.2f}",
                    (pos, top),
                    xytext=(0, 2),
                    textcoords="offset points",
                    ha="center",
                    va="bottom",
                    fontsize=7,
                    color="#333333",
                )
    handles, labels = ax.get_legend_handles_labels()
    unique = dict(zip(labels, handles))
    if hue and unique:
        ax.legend(unique.values(), unique.keys(), title=hue, loc="upper left", bbox_to_anchor=(1.0, 1.0))
    long_labels = max(len(str(v)) for v in xs) > 12
    ax.set_xticks(
        range(len(xs)), [str(v) for v in xs], rotation=20 if long_labels else 0, ha="right" if long_labels else "center"
    )
    ax.set_ylabel(AXIS_LABELS.get(value, value))
    if ylim:
        ax.set_ylim(*ylim)
    ax.grid(axis="x", visible=False)
    return ax


# Axis labels in words, with units, for the columns the figures plot.
AXIS_LABELS = {
    "top1": "top-1 (share of queries, answer ranked first)",
    "top3": "top-3 (share of queries, answer in the first 3)",
    "mrr": "MRR (mean of 1 / rank of the answer)",
    "ndcg_at_10": "nDCG@10",
    "texts_per_s": "texts per second (median timed batch)",
    "throughput_texts_per_s": "texts per second (throughput pass)",
    "throughput_tokens_per_s": "tokens per second (throughput pass)",
    "load_s": "load time (seconds)",
    "latency_median_s": "latency of one timed batch (seconds, median)",
    "params_m": "parameters (millions)",
    "value_gib": "memory (GiB)",
}


def cue_lines(ax, frame: pd.DataFrame, value: str, cues: Sequence[str], hue: str | None = "dataset"):
    """Dashed horizontal reference lines at each cue baseline's `value`, one per (cue, hue)
    in the colour of that hue's bars, named in the legend (beside the bars' hues)."""
    import matplotlib as mpl

    colors = [c["color"] for c in mpl.rcParams["axes.prop_cycle"]]
    hues = _order(frame[hue]) if hue and hue in frame else [None]
    rows = frame[frame["model"].isin(list(cues))] if "model" in frame else frame.iloc[0:0]
    for rec in rows.itertuples(index=False):
        v = getattr(rec, value)
        if pd.isna(v):
            continue
        h = getattr(rec, hue) if hue and hue in frame else None
        color = colors[hues.index(h) % len(colors)] if h in hues else "#555555"
        label = f"{rec.model}" + (f" · {h}" if h is not None else "") + f": {v:.2f}"
        ax.axhline(v, color=color, ls="--", lw=1.1, alpha=0.9, label=label)
    if not rows.empty:
        ax.legend(
            loc="upper left",
            bbox_to_anchor=(1.0, 1.0),
            title=f"bars: {hue}; dashed: cue baselines" if hue else "dashed: cue baselines",
            fontsize=8,
        )
    return ax


def metric_bars(
    summary: pd.DataFrame,
    metric: str = "top1",
    hue: str = "dataset",
    x: str = "model",
    ax=None,
    cues: Sequence[str] = (),
):
    """Per-model bars of a metric with its confidence interval (`<metric>_low/_high`), one
    bar per data set (or another `hue`), from `Report.summary()`. Rows of `cues` (cue
    baselines) are drawn as dashed reference lines, not bars."""
    frame = summary[summary["status"] == "ok"] if "status" in summary else summary
    spec = parse_metric(metric)
    low, high = spec.bounds
    bars = frame[~frame[x].isin(list(cues))] if cues else frame
    ax = grouped_bars(
        bars, x, spec.column, hue, f"{spec.column}_low", f"{spec.column}_high", ax=ax, ylim=(low, high * 1.12)
    )
    if cues:
        cue_lines(ax, frame, spec.column, cues, hue)
    method = "Wilson" if spec.interval == "wilson" else "Wilson-type, bounded mean"
    ax.set_title(f"{spec.label} per model, 95% CI ({method})")
    return ax


def cue_bars(frame: pd.DataFrame, metric: str = "top1", ax=None):
    """Per-model bars of a metric with its interval, one bar per data set, the cue
    baselines (form alone, e.g. document length) as dashed reference lines across them.
    From `analysis.cue_table` (its `kind` column names the cue rows)."""
    cues = _order(frame.loc[frame["kind"] == "cue baseline", "model"]) if "kind" in frame else []
    ax = metric_bars(frame, metric, ax=ax, cues=cues)
    ax.set_title(f"{parse_metric(metric).label} of each model against the cue baselines (dashed)")
    return ax


def reported_bars(frame: pd.DataFrame, metric: str = "top1", ax=None):
    """Our measurements (solid, with CIs) beside the article's reported numbers (hatched,
    labelled as reported) for one metric; rows from `analysis.reported_beside_measured`."""
    ax = grouped_bars(
        frame, "model", metric, "source", f"{metric}_low", f"{metric}_high", ax=ax, hatch_by="source", ylim=(0, 1.1)
    )
    ax.set_title(f"{metric} on the seed: measured here vs reported in the article")
    return ax


# ---- heat tables ------------------------------------------------------------------------


def _heat(
    ax,
    matrix: np.ndarray,
    rows: list[str],
    cols: list[str],
    labels: np.ndarray,
    cmap: str,
    vmin: float,
    vmax: float,
    colorbar: str,
):
    import matplotlib.pyplot as plt

    image = ax.imshow(np.ma.masked_invalid(matrix), cmap=cmap, vmin=vmin, vmax=vmax, aspect="auto")
    for (r, c), text in np.ndenumerate(labels):
        if text:
            red, green, blue, _ = image.cmap(image.norm(matrix[r, c])) if not np.isnan(matrix[r, c]) else (1, 1, 1, 1)
            dark = 0.299 * red + 0.587 * green + 0.114 * blue < 0.5
            ax.text(c, r, text, ha="center", va="center", fontsize=8, color="white" if dark else "black")
    ax.set_xticks(range(len(cols)), cols, rotation=20, ha="right")
    ax.set_yticks(range(len(rows)), rows)
    ax.grid(False)
    ax.spines[:].set_visible(False)
    plt.colorbar(image, ax=ax, label=colorbar, shrink=0.8)
    return ax


def category_heat(frame: pd.DataFrame, value: str = "top1", ax=None):
    """Heat table of `value` per category (rows, Chinese and English titles) and model
    (columns), one block of rows per data set; cells show the value and n queries. From
    `analysis.category_table`."""
    rows = _order(zip(frame["dataset"], frame["category"]))
    models = _order(frame["model"])
    ax = _axes(ax, (1.5 * len(models) + 4.5, 0.5 * len(rows) + 1.2))
    if frame.empty:
        return note(ax, "no categories in this run")
    matrix = np.full((len(rows), len(models)), np.nan)
    labels = np.full(matrix.shape, "", dtype=object)
    few = 0
    for rec in frame.itertuples():
        r, c = rows.index((rec.dataset, rec.category)), models.index(rec.model)
        if rec.n_queries < MIN_QUERIES:  # greyed: too few queries to read
            labels[r, c] = f"n={rec.n_queries}"
            few += 1
            continue
        matrix[r, c] = getattr(rec, value)
        low, high = getattr(rec, f"{value}_low", np.nan), getattr(rec, f"{value}_high", np.nan)
        interval = f"\n[{low:.2f}, {high:.2f}]" if not (np.isnan(low) or low == high) else ""
        labels[r, c] = f"{getattr(rec, value):.2f} (n={rec.n_queries}){interval}"
    title = {
        (d, c): f"{d} · {zh} {en}"
        for d, c, zh, en in zip(
            frame["dataset"], frame["category"], frame.get("title_zh", frame["category"]), frame.get("title_en", "")
        )
    }
    _heat(ax, matrix, [title[r] for r in rows], models, labels, "RdYlGn", 0.0, 1.0, value)
    ax.set_facecolor("#e6e6e6")
    grey = f"; grey: fewer than {MIN_QUERIES} queries, not scored" if few else ""
    ax.set_title(f"{parse_metric(value).label} per trap category (95% CI in brackets){grey}")
    return ax


def kind_beat_heat(frame: pd.DataFrame, ax=None):
    """Which distractor kinds fool which model: share of (query, distractor) pairs where the
    distractor scored at least as high as the answer, pooled over data sets; cells show
    beaten / pairs. From `analysis.kind_beat_rates`."""
    from embedlab.data.categories import DOCUMENT_KINDS

    ax = _axes(ax, (1.4 * max(frame["model"].nunique(), 1) + 3.5, 0.45 * max(frame["kind"].nunique(), 1) + 1.4))
    if frame.empty:
        return note(ax, "no distractors in this selection")
    pooled = frame.groupby(["kind", "model"], sort=False)[["n_pairs", "n_beat"]].sum().reset_index()
    order = [
        k
        for k in dict.fromkeys([*DOCUMENT_KINDS, "other-answer", "unjudged", *pooled["kind"]])
        if k in set(pooled["kind"])
    ]
    models = _order(frame["model"])
    matrix = np.full((len(order), len(models)), np.nan)
    labels = np.full(matrix.shape, "", dtype=object)
    for rec in pooled.itertuples():
        r, c = order.index(rec.kind), models.index(rec.model)
        matrix[r, c] = rec.n_beat / rec.n_pairs
        labels[r, c] = f"{rec.n_beat}/{rec.n_pairs}"
    _heat(ax, matrix, order, models, labels, "Reds", 0.0, 1.0, "share scoring ≥ the answer")
    ax.set_title("distractor kinds that beat the answer")
    return ax


def outcome_grid(frame: pd.DataFrame, ax=None):
    """Rank of the answer per query (rows) and model (columns): 1 found first, higher is
    worse; the lexical baseline beside the dense models on the same cases. From
    `analysis.outcomes`."""
    rows = _order(zip(frame["dataset"], frame["query_id"]))
    models = _order(frame["model"])
    ax = _axes(ax, (1.3 * len(models) + 4.5, 0.32 * len(rows) + 1.3))
    if frame.empty:
        return note(ax, "no queries")
    matrix = np.full((len(rows), len(models)), np.nan)
    labels = np.full(matrix.shape, "", dtype=object)
    names = {}
    for rec in frame.itertuples():
        r, c = rows.index((rec.dataset, rec.query_id)), models.index(rec.model)
        matrix[r, c] = min(rec.rank, 10)
        labels[r, c] = str(int(rec.rank)) if rec.rank == 1 else f"{int(rec.rank)} ({rec.winner_kind})"
        names[(rec.dataset, rec.query_id)] = f"{rec.dataset} · {rec.query_label}"
    _heat(
        ax,
        matrix,
        [names[r] for r in rows],
        models,
        labels,
        "RdYlGn_r",
        1.0,
        10.0,
        "rank of the answer (10 = 10 or worse)",
    )
    ax.set_title("rank of the answer per query (winning distractor kind when wrong)")
    return ax


# ---- similarity heatmaps ---------------------------------------------------------------


def similarity_heatmap(frame: pd.DataFrame, ax=None, xlabels: bool = True, colorbar: bool = True):
    """Query x document scores of one model on one data set: answers outlined in black, the
    model's first-ranked document dotted, each document labelled with its kind (tick colour
    by kind). From `analysis.similarity_frame` filtered to one model and data set."""
    import matplotlib.pyplot as plt
    from matplotlib.patches import Rectangle

    n_rows, n_cols = int(frame["row"].max()) + 1, int(frame["col"].max()) + 1
    ax = _axes(ax, (0.3 * n_cols + 4, 0.35 * n_rows + 2.5))
    matrix = np.full((n_rows, n_cols), np.nan)
    matrix[frame["row"].to_numpy(), frame["col"].to_numpy()] = frame["score"].to_numpy()
    image = ax.imshow(matrix, cmap="viridis", aspect="auto")
    for rec in frame[frame["relevant"]].itertuples():
        ax.add_patch(Rectangle((rec.col - 0.5, rec.row - 0.5), 1, 1, fill=False, edgecolor="black", lw=2.2))
        ax.add_patch(Rectangle((rec.col - 0.45, rec.row - 0.45), 0.9, 0.9, fill=False, edgecolor="white", lw=0.8))
    top = frame[frame["is_top1"]]
    ax.scatter(top["col"], top["row"], marker="o", s=28, facecolor="white", edgecolor="black", lw=0.8, zorder=3)
    queries = frame.drop_duplicates("row").sort_values("row")
    docs = frame.drop_duplicates("col").sort_values("col")
    ax.set_yticks(range(n_rows), queries["query_label"])
    if xlabels:
        ax.set_xticks(range(n_cols), docs["doc_label"], rotation=90, fontsize=8)
        for tick, kind in zip(ax.get_xticklabels(), docs["column_kind"]):
            tick.set_color(KIND_COLORS.get(kind, "#444444"))
    else:
        ax.set_xticks(range(n_cols), [""] * n_cols)
    ax.grid(False)
    if colorbar:
        score_name = frame["score_name"].iloc[0] if "score_name" in frame else "score"
        plt.colorbar(image, ax=ax, label=score_name, shrink=0.9, pad=0.01)
    model, dataset = frame["model"].iloc[0], frame["dataset"].iloc[0]
    ax.set_title(f"{model} on {dataset}: black box = answer, dot = ranked first", loc="left", fontsize=10)
    return ax


COSINE = "cosine similarity"
PANELS_PER_ROW = 3


def _candidates(frame: pd.DataFrame) -> pd.DataFrame:
    """One query's own candidates: the documents judged for it and any document a model
    ranked first (another query's answer then reads `[other-answer]`); answer first."""
    keep = (
        frame["judged"] | frame.groupby("doc_id")["is_top1"].transform("any")
        if "judged" in frame
        else pd.Series(True, index=frame.index)
    )
    sub = frame[keep]
    order = (
        sub.drop_duplicates("doc_id")
        .assign(first=lambda f: ~f["relevant"])
        .sort_values(["first", "kind"], kind="stable")["doc_id"]
        .tolist()
    )
    return sub.assign(position=sub["doc_id"].map({d: i for i, d in enumerate(order)}))


def query_panel(frame: pd.DataFrame, ax=None, norm=None):
    """One query: its candidates (rows, `[kind for this query] text`) x models (columns),
    each cell the score written in it. Dense models (cosine) share `norm` (one scale,
    viridis); a lexical model's column is scaled on its own within this query (greys), its
    scores having no fixed range. Answer rows outlined; a white dot marks each model's
    first-ranked document. From `analysis.similarity_frame` filtered to one query."""
    import matplotlib as mpl
    from matplotlib.patches import Rectangle

    sub = _candidates(frame)
    models = _order(sub["model"])
    docs = sub.drop_duplicates("doc_id").sort_values("position")
    ax = _axes(ax, (1.0 * len(models) + 3.0, 0.32 * len(docs) + 1.0))
    rgba = np.ones((len(docs), len(models), 4))
    cosine_norm = norm or mpl.colors.Normalize(
        float(sub.loc[sub["score_name"] == COSINE, "score"].min()),
        float(sub.loc[sub["score_name"] == COSINE, "score"].max()),
    )
    for c, model in enumerate(models):
        col = sub[sub["model"] == model]
        lexical = col["score_name"].iloc[0] != COSINE
        scale = mpl.colors.Normalize(col["score"].min(), col["score"].max()) if lexical else cosine_norm
        cmap = mpl.colormaps["Greys" if lexical else "viridis"]
        for rec in col.itertuples():
            colour = cmap(0.15 + 0.7 * scale(rec.score)) if lexical else cmap(scale(rec.score))
            rgba[rec.position, c] = colour
            dark = 0.299 * colour[0] + 0.587 * colour[1] + 0.114 * colour[2] < 0.5
            ax.text(
                c,
                rec.position,
                f"{rec.score:.1f}" if lexical else f"{rec.score:.2f}",
                ha="center",
                va="center",
                fontsize=7,
                color="white" if dark else "black",
            )
            if rec.is_top1:
                ax.scatter([c + 0.36], [rec.position], s=16, facecolor="white", edgecolor="black", lw=0.7, zorder=3)
    ax.imshow(rgba, aspect="auto")
    for rec in docs[docs["relevant"]].itertuples():
        ax.add_patch(Rectangle((-0.5, rec.position - 0.5), len(models), 1, fill=False, edgecolor="black", lw=1.8))
    ax.set_xticks(range(len(models)), models, rotation=20, ha="right", fontsize=7)
    ax.set_yticks(range(len(docs)), docs["candidate_label"], fontsize=7)
    for tick, kind in zip(ax.get_yticklabels(), docs["kind"]):
        tick.set_color(KIND_COLORS.get(kind, "#444444"))
    ax.grid(False)
    ax.spines[:].set_visible(False)
    ax.set_title(frame["query_label"].iloc[0], loc="left", fontsize=8)
    return ax


def similarity_figures(frame: pd.DataFrame) -> dict[str, object]:
    """Per data set one Figure of small multiples, one panel per query with its own
    candidates (`query_panel`); the caption says the colour scales: one for every dense
    model (cosine), each lexical model on its own scale per query. Keys are data set names.
    Select the queries beforehand (`similarity_frame(max_queries=...)`)."""
    import matplotlib as mpl
    import matplotlib.pyplot as plt

    ensure_cjk_font()
    figures = {}
    for dataset, sub in frame.groupby("dataset", sort=False):
        queries = _order(sub["query_id"])
        ncols = min(PANELS_PER_ROW, len(queries))
        nrows = -(-len(queries) // ncols)
        tallest = max(len(_candidates(sub[sub["query_id"] == q]).drop_duplicates("doc_id")) for q in queries)
        cosine = sub.loc[sub["score_name"] == COSINE, "score"]
        norm = mpl.colors.Normalize(float(cosine.min()), float(cosine.max())) if not cosine.empty else None
        fig, axes = plt.subplots(
            nrows, ncols, figsize=(4.6 * ncols, (0.3 * tallest + 1.3) * nrows + 1.2), squeeze=False
        )
        for ax, query in zip(axes.flat, queries):
            query_panel(sub[sub["query_id"] == query], ax=ax, norm=norm)
        for ax in list(axes.flat)[len(queries) :]:
            ax.set_visible(False)
        lexical = _order(sub.loc[sub["score_name"] != COSINE, "model"])
        scales = (
            [f"cosine similarity on one scale for every dense model ({norm.vmin:.2f}–{norm.vmax:.2f}, viridis)"]
            if norm
            else []
        )
        if lexical:
            scales.append(
                f"{', '.join(lexical)} on its own scale within each query (grey: its score has no fixed range)"
            )
        scales = "colour: " + "; ".join(scales)
        fig.suptitle(
            f"{dataset}: each query against its own candidates (box: the answer, dot: ranked first)\n{scales}",
            fontsize=9,
        )
        if norm is not None:
            fig.colorbar(
                mpl.cm.ScalarMappable(norm=norm, cmap="viridis"),
                ax=axes.ravel().tolist(),
                label=COSINE,
                shrink=0.5,
                pad=0.01,
            )
        figures[str(dataset)] = fig
    return figures


def margin_figure(frame: pd.DataFrame):
    """Margin per query (rows) for each model (one panel each, own x scale since BM25 and
    cosine scores differ): filled dot = answer ranked first, cross = a distractor won.
    From `analysis.margins`."""
    import matplotlib.pyplot as plt

    ensure_cjk_font()
    models = _order(frame["model"])
    rows = _order(zip(frame["dataset"], frame["query_id"]))
    fig, axes = plt.subplots(
        1,
        max(len(models), 1),
        figsize=(3.2 * max(len(models), 1) + 3, 0.3 * len(rows) + 1.6),
        sharey=True,
        squeeze=False,
    )
    if frame.empty:
        note(axes[0, 0], "no queries")
        return fig
    labels = {}
    for ax, model in zip(axes[0], models):
        sub = frame[frame["model"] == model]
        y = [rows.index((d, q)) for d, q in zip(sub["dataset"], sub["query_id"])]
        won = sub["rank"].to_numpy() == 1
        colors = np.where(won, "#1a7f37", "#C44E52")
        ax.scatter(sub["margin"][won], np.array(y)[won], c=colors[won], marker="o", s=30, label="answer first")
        ax.scatter(sub["margin"][~won], np.array(y)[~won], c=colors[~won], marker="x", s=36, label="distractor first")
        ax.axvline(0, color="#333333", lw=0.8)
        ax.set_title(model, fontsize=10)
        ax.set_xlabel("margin (answer − best distractor)")
        labels.update(
            {
                rows.index((d, q)): f"{d} · {lab}"
                for d, q, lab in zip(sub["dataset"], sub["query_id"], sub["query_label"])
            }
        )
    axes[0, 0].set_yticks(range(len(rows)), [labels.get(i, "") for i in range(len(rows))])
    axes[0, 0].invert_yaxis()
    axes[0, -1].legend(loc="lower right", fontsize=8)
    fig.suptitle("margin per query and model (negative: a distractor won)", fontsize=11)
    return fig


# ---- speed, dimensions, overlap --------------------------------------------------------


def _plain_numbers(ax, *axes: str) -> None:
    """Tick labels of log axes as plain numbers (200, not 2×10²)."""
    from matplotlib.ticker import FuncFormatter

    plain = FuncFormatter(lambda v, _: f"{v:,.0f}" if v >= 10 else f"{v:g}")
    for name in axes:
        axis = ax.xaxis if name == "x" else ax.yaxis
        axis.set_major_formatter(plain)
        axis.set_minor_formatter(FuncFormatter(lambda v, _: ""))


def speed_devices(frame: pd.DataFrame) -> pd.Series:
    """Per row of `analysis.speed_table`, the device in words: the article's rows "GPU, the
    article's (not measured here)", ours "GPU (<name>)" or "CPU (this machine)"."""
    from embedlab.report.views import device_label

    return device_label(frame).where(frame["source"] != REPORTED_SOURCE, "GPU, the article's (not measured here)")


def size_scatter(frame: pd.DataFrame, y: str = "texts_per_s", x: str = "params_m", ax=None):
    """`y` against model size (parameters, millions), log-log, for the rows of one device
    (`speed_devices`); raises ValueError when given several. From `analysis.speed_table`."""
    devices = _order(speed_devices(frame)) if not frame.empty else []
    if len(devices) > 1:
        raise ValueError(f"size_scatter draws one device per axis; got {devices}")
    ax = _axes(ax, (6.0, 4.4))
    data = frame.dropna(subset=[x, y]) if x in frame and y in frame else frame.iloc[0:0]
    if data.empty:
        return note(ax, f"no model has both {AXIS_LABELS.get(x, x)} and {AXIS_LABELS.get(y, y)}")
    reported = devices[0].startswith("GPU, the article") if devices else False
    ax.scatter(data[x], data[y], s=60, marker="^" if reported else "o", color="#C44E52" if reported else "#4C72B0")
    for rec in data.itertuples():
        ax.annotate(
            rec.model, (getattr(rec, x), getattr(rec, y)), textcoords="offset points", xytext=(5, 4), fontsize=8
        )
    ax.set_xscale("log")
    if (data[y] > 0).all():
        ax.set_yscale("log")
    ax.margins(x=0.3, y=0.2)
    _plain_numbers(ax, "x", "y")
    ax.set_xlabel(AXIS_LABELS.get(x, x) + ", log scale")
    ax.set_ylabel(AXIS_LABELS.get(y, y))
    ax.set_title(devices[0] if devices else "")
    return ax


def size_figure(frame: pd.DataFrame, y: str = "texts_per_s", x: str = "params_m"):
    """`size_scatter` with one panel per device (this machine's measurements, the article's
    GPU figures apart), only devices with a value to draw. Raises NothingToDraw when no row
    has both `x` and `y`."""
    import matplotlib.pyplot as plt

    data = frame.dropna(subset=[x, y]) if x in frame and y in frame else frame.iloc[0:0]
    if data.empty:
        missing = (
            ", ".join(frame.loc[frame["source"] != REPORTED_SOURCE, "model"]) if not frame.empty else "every model"
        )
        raise NothingToDraw(
            f"No figure of {AXIS_LABELS.get(y, y)}: not measured for {missing} in this run (the backend does not "
            "report it)."
        )
    ensure_cjk_font()
    devices = speed_devices(data)
    order = _order(devices)
    fig, axes = plt.subplots(1, len(order), figsize=(6.0 * len(order), 4.4), squeeze=False)
    for ax, device in zip(axes[0], order):
        size_scatter(data[devices == device], y, x, ax=ax)
    if len(order) > 1:
        fig.suptitle("one device per panel: numbers of different devices are not comparable", fontsize=10)
    return fig


def pareto_front(frame: pd.DataFrame, x: str, y: str = "top1", lower_x_better: bool = False) -> pd.Series:
    """Per row, whether no other row is at least as good on both `x` and `y` and better on
    one (higher `y`; higher `x`, or lower with `lower_x_better`). Rows missing either: False."""
    data = frame.dropna(subset=[x, y])
    sign = -1.0 if lower_x_better else 1.0
    front = pd.Series(False, index=frame.index)
    for i, row in data.iterrows():
        others = data.drop(index=i)
        dominated = (
            (sign * others[x] >= sign * row[x])
            & (others[y] >= row[y])
            & ((sign * others[x] > sign * row[x]) | (others[y] > row[y]))
        ).any()
        front[i] = not dominated
    return front


CHOICE_AXES = {"speed_texts_per_s": ("texts per second (log scale)", False), "memory_gib": ("memory (GiB)", True)}


def choice_plot(frame: pd.DataFrame, x: str = "speed_texts_per_s", ax=None):
    """Top-1 (with its 95% interval) against speed or memory for the models of one device,
    the Pareto front joined by a line, the cue baselines as dashed reference lines. From
    `analysis.choice_frame`; raises ValueError when the rows come from several devices."""
    if frame["device"].nunique() > 1:
        raise ValueError(f"choice_plot draws one device per axis; got {sorted(frame['device'].unique())}")
    ax = _axes(ax, (6.0, 4.2))
    label, lower_better = CHOICE_AXES[x]
    models = frame[(frame["kind"] == "model")].dropna(subset=[x, "top1"])
    models = models[models[x] > 0]
    if models.empty:
        return note(ax, f"no model has {label.split(' (')[0]} here")
    front = pareto_front(models, x, lower_x_better=lower_better)
    ax.errorbar(
        models[x],
        models["top1"],
        yerr=[models["top1"] - models["top1_low"], models["top1_high"] - models["top1"]],
        fmt="none",
        ecolor="#888888",
        lw=1,
        capsize=3,
    )
    ax.scatter(models.loc[~front, x], models.loc[~front, "top1"], s=50, color="#8C8C8C", zorder=3, label="dominated")
    ax.scatter(
        models.loc[front, x],
        models.loc[front, "top1"],
        s=70,
        color="#C44E52",
        zorder=4,
        label="Pareto front (no model better on both)",
    )
    line = models[front].sort_values(x)
    ax.plot(line[x], line["top1"], color="#C44E52", lw=1.2, zorder=2)
    for rec in models.itertuples():
        ax.annotate(rec.model, (getattr(rec, x), rec.top1), textcoords="offset points", xytext=(6, 4), fontsize=8)
    for rec in frame[frame["kind"] != "model"].dropna(subset=["top1"]).itertuples():
        ax.axhline(rec.top1, color="#555555", ls="--", lw=1, label=f"cue baseline {rec.model}: {rec.top1:.2f}")
    if not lower_better:
        ax.set_xscale("log")
        _plain_numbers(ax, "x")
    ax.margins(x=0.25)
    ax.set_ylim(0, 1.05)
    ax.set_xlabel(label + (": further left is better" if lower_better else ": further right is better"))
    ax.set_ylabel("top-1 with 95% CI (share of queries)")
    ax.legend(loc="upper center", bbox_to_anchor=(0.5, -0.16), ncol=2, fontsize=7)
    return ax


def choice_figure(frame: pd.DataFrame):
    """The choose-a-model figure: per device (one row of panels each, never two devices on
    an axis), top-1 against speed and against memory (`choice_plot`). Raises NothingToDraw
    when no model has top-1."""
    import matplotlib.pyplot as plt

    data = frame.dropna(subset=["top1"])
    if data.empty or not (data["kind"] == "model").any():
        raise NothingToDraw("No model produced top-1 results, so there is nothing to choose between.")
    ensure_cjk_font()
    devices = _order(data["device"])
    fig, axes = plt.subplots(len(devices), 2, figsize=(12.5, 4.4 * len(devices)), squeeze=False)
    for row, device in zip(axes, devices):
        sub = data[data["device"] == device]
        for ax, x in zip(row, CHOICE_AXES):
            choice_plot(sub, x, ax=ax)
            measure = sub["speed_measure" if x == "speed_texts_per_s" else "memory_measure"].iloc[0]
            ax.set_title(
                f"{device}: top-1 against {'speed' if x == 'speed_texts_per_s' else 'memory'} ({measure})", fontsize=10
            )
    fig.suptitle(f"Choosing a model on {data['dataset'].iloc[0]} (n = {int(data['n_queries'].max())} queries)")
    return fig


def _memory_parts(frame: pd.DataFrame) -> tuple[pd.DataFrame, list[str]]:
    """What a memory figure draws: GPU rows and the article's reported rows when any model
    has GPU measurements (CPU-run models are then named, not drawn), else host RSS rows."""
    measured_gpu = (frame["source"] != REPORTED_SOURCE) & (frame["device"] == "GPU")
    if measured_gpu.any():
        left_out = _order(frame.loc[frame["device"] == "CPU", "model"])
        return frame[frame["device"] == "GPU"], left_out
    return frame[frame["device"] == "CPU"], []


def memory_bars(frame: pd.DataFrame, ax=None):
    """Memory per model (GiB), one bar per measure. A GPU run: weights, load delta, peak and
    KV cache beside the article's reported GPU figures (hatched). A CPU run: host RSS only,
    titled "host RSS, CPU run", never beside the article's GPU numbers. From
    `analysis.memory_frame`."""
    data, left_out = _memory_parts(frame) if not frame.empty else (frame, [])
    if ax is None:
        ax = _axes(None, (min(13.5, max(7.0, 1.7 * data["model"].nunique() + 4.5)), 4.8))  # room for the legend
    ax = grouped_bars(data, "model", "value_gib", "measure", ax=ax, hatch_by="source")
    if data.empty:
        return ax
    ax.set_ylabel("GiB")
    if (data["device"] == "GPU").any():
        title = "GPU memory per model (GiB)\nmeasured here, and reported in the article (hatched)"
        if left_out:
            title += f"\nrun on CPU, not drawn (host RSS is not GPU memory): {', '.join(left_out)}"
    else:
        title = "host RSS, CPU run (GiB)\nnot GPU memory: the article's GPU figures are not drawn beside it"
    ax.set_title(title, fontsize=10)
    return ax


def memory_scatter(frame: pd.DataFrame, ax=None):
    """Memory against model size (parameters, millions; log-log). A GPU run: measured
    weights and peak as filled markers, the article's reported GPU figures as hollow
    triangles. A CPU run: host RSS peak, titled "host RSS, CPU run". From
    `analysis.memory_frame`."""
    ax = _axes(ax, (7.5, 4.8))
    data, _ = _memory_parts(frame) if not frame.empty else (frame, [])
    data = data.dropna(subset=["params_m", "value_gib"])
    gpu = (data["device"] == "GPU").any()
    keep = ("weights", "peak") if gpu else ("peak (host RSS, CPU run)",)
    data = data[data["measure"].isin(keep) | (data["source"] == REPORTED_SOURCE)]
    if data.empty:
        return note(ax, "no model has both a size and a memory measurement in this run")
    markers = {"weights": "o", "peak": "s", "peak (host RSS, CPU run)": "o"}
    for (source, measure), sub in data.groupby(["source", "measure"], sort=False):
        reported = source == REPORTED_SOURCE
        ax.scatter(
            sub["params_m"],
            sub["value_gib"],
            marker="^" if reported else markers.get(measure, "D"),
            s=60,
            label=measure,
            facecolor="none" if reported else None,
            edgecolor="#C44E52" if reported else None,
            lw=1.5,
        )
        for rec in sub.itertuples():
            ax.annotate(rec.model, (rec.params_m, rec.value_gib), textcoords="offset points", xytext=(5, 4), fontsize=8)
    ax.set_xscale("log")
    if (data["value_gib"] > 0).all():
        ax.set_yscale("log")
    ax.set_xlabel("parameters (millions, from the model record)")
    ax.set_ylabel("GiB")
    ax.legend(loc="best", fontsize=7)
    ax.set_title(
        "GPU memory against model size" if gpu else "host RSS, CPU run, against model size (not GPU memory)",
        fontsize=10,
    )
    return ax


def dimension_curve(frame: pd.DataFrame, metric: str = "top1", ax=None):
    """`metric` against embedding dimension per model and data set, with its CI band; a
    model without MRL is a single point at its full dimension. From
    `analysis.dimension_report`."""
    ax = _axes(ax, (7.5, 4.5))
    data = frame[frame["status"] == "ok"] if "status" in frame else frame
    if data.empty:
        return note(ax, "no dense model in this run")
    for (model, dataset), sub in data.groupby(["model", "dataset"], sort=False):
        sub = sub.sort_values("dimensions")
        line = ax.plot(sub["dimensions"], sub[metric], marker="o", label=f"{model} · {dataset}")[0]
        if f"{metric}_low" in sub:
            ax.fill_between(
                sub["dimensions"].astype(float),
                sub[f"{metric}_low"],
                sub[f"{metric}_high"],
                color=line.get_color(),
                alpha=0.15,
            )
    ax.set_xscale("log", base=2)
    ax.set_xlabel("embedding dimensions (MRL truncation, renormalised)")
    ax.set_ylabel(metric)
    ax.set_ylim(0, 1.05)
    ax.legend(loc="upper left", bbox_to_anchor=(1.0, 1.0), fontsize=8)
    ax.set_title(f"{metric} against dimension (bands: 95% CI)")
    return ax


def overlap_bars(frame: pd.DataFrame, ax=None):
    """Mean metric per model for queries where word overlap points to the answer and where
    it does not, per data set. From `analysis.overlap_accuracy`."""
    data = frame.assign(
        group=frame["dataset"] + "\n" + frame["overlap_group"] + " (n=" + frame["n_queries"].astype(str) + ")"
    )
    ax = grouped_bars(data, "group", "value", "model", ax=ax, ylim=(0, 1.08))
    ax.set_ylabel(frame["metric"].iloc[0] if not frame.empty else "value")
    ax.tick_params(axis="x", labelsize=7)
    ax.set_title("does word overlap decide it? accuracy by overlap group")
    return ax
