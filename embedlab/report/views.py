"""Views of a trap run for the notebooks: the models beside the cue baselines, and per
trap category its cases, similarity matrices, margins, which distractor kinds beat the
answer, BM25 on the same cases and top-1 per category. Long-format DataFrames or Markdown."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import replace

import numpy as np
import pandas as pd

from embedlab.data.categories import CATEGORIES, DOCUMENT_KINDS, get_category, kind_for_query
from embedlab.data.datasets import Dataset
from embedlab.evaluation.results import CUE_ALPHA, CUE_MIN_DIFF, Report
from embedlab.evaluation.stats import paired_comparison
from embedlab.models import ModelSpec
from embedlab.report.findings import MIN_QUERIES
from embedlab.report.runs import CUE_LABEL, resolve_datasets


def cue_models(report: Report) -> list[str]:
    """Models of a run that are cue baselines (backend "length" or "shortcut")."""
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


CUE_RULE = (
    f"top-1 less than {CUE_MIN_DIFF:.2f} above the best cue (a difference of {CUE_MIN_DIFF:.2f} in the share of "
    "queries "
    f"answered first), or a paired p-value of {CUE_ALPHA} or more"
)


def with_enough_queries(frame: pd.DataFrame, column: str = "n", min_queries: int = MIN_QUERIES) -> pd.DataFrame:
    """The rows of `frame` resting on at least `min_queries` queries (`column`): fewer is
    too few to read a difference from."""
    return frame[pd.to_numeric(frame[column], errors="coerce") >= min_queries].reset_index(drop=True)


def cue_note(flags: pd.DataFrame | None, cues: Sequence[str] = ()) -> str:
    """Markdown reading `cue_flags`: which models do not clearly beat a form cue, per data set."""
    if not cues:
        return (
            "No cue baseline in this run (records `length`, `length-judged`, `overlap-inverse`, `query-blind`), "
            "so nothing here says whether form alone (length, avoiding the query's words, a genre prior) would do as "
            "well."
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
        f"({CUE_RULE}): on those, form alone does about as well."
        if not flagged.empty
        else "Every model is clearly ahead of the best cue baseline on every data set."
    )
    return head + "\n\n" + "\n".join(lines)


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
            for d, grade in ds.judged_docs(q):
                rows.append(
                    {
                        "dataset": ds.name,
                        "query_id": q,
                        "query": ds.queries[q],
                        "doc_id": d,
                        "kind": ds.kinds.get(d, "answer" if grade > 0 else ""),
                        "relevance": grade,
                        "document": ds.corpus[d],
                    }
                )
    return pd.DataFrame(rows, columns=["dataset", "query_id", "query", "doc_id", "kind", "relevance", "document"])


def shorten(text: str, n: int) -> str:
    """`text` on one line, cut to `n` characters with an ellipsis."""
    text = " ".join(text.split())
    return text if len(text) <= n else text[: n - 1] + "…"


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
    max_queries: int | None = None,
) -> pd.DataFrame:
    """Long frame of query x document scores per model and data set, for heatmaps.

    Documents shown: the whole corpus when it has at most `max_docs` documents (the seed's
    22, as in the article), else every document judged for the shown queries plus any
    document a model ranked first for them. Columns: model, dataset, query_id, query_label,
    doc_id, doc_label, kind (for this query: answer, a distractor kind, other-answer),
    column_kind (the document's own kind), score, relevant, is_top1 (the document the model
    ranks first, as `top_ranked`: ties count against the model), row, col; `judged` (the
    document is judged for this query) and `candidate_label` ("[kind for this query] text":
    another query's answer reads `[other-answer]`, never `[answer]`).

    `max_queries`: keep at most this many queries per data set, those that the most models
    get wrong first (the interesting ones), then in data-set order."""
    sets = datasets if datasets is not None else resolve_datasets(report.datasets.keys())
    score_names = {
        m["name"]: ModelSpec(**m).score_name for m in report.config.get("models", []) if m.get("scores_corpus")
    }
    rows = []
    for ds in sets:
        models = [m for (m, name) in report.scores if name == ds.name]
        query_ids = category_query_ids(ds, category) if category else ds.query_ids
        if not query_ids or not models:
            continue
        if max_queries is not None and len(query_ids) > max_queries:
            query_ids = hardest_queries(report, ds.name, query_ids, max_queries)
        all_q = ds.query_ids
        q_index = [all_q.index(q) for q in query_ids]
        doc_ids = ds.doc_ids
        if len(doc_ids) <= max_docs:
            shown = list(doc_ids)
        else:
            shown = list(dict.fromkeys(d for q in query_ids for d, _ in ds.judged_docs(q)))
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
                            "model": m,
                            "dataset": ds.name,
                            "query_id": q,
                            "query_label": f"{q} {shorten(ds.queries[q], label_chars)}",
                            "doc_id": d,
                            "doc_label": f"[{ds.kinds.get(d, '') or '-'}] {shorten(ds.corpus[d], label_chars)}",
                            "candidate_label": f"[{ds.kind_for(q, d)}] {shorten(ds.corpus[d], label_chars)}",
                            "judged": d in ds.qrels.get(q, {}),
                            "kind": ds.kind_for(q, d),
                            "column_kind": ds.kinds.get(d, ""),
                            "score": float(scores[r, c]),
                            "score_name": score_names.get(m, "cosine similarity"),
                            "relevant": ds.qrels.get(q, {}).get(d, 0) > 0,
                            "is_top1": doc_ids[top1[r]] == d,
                            "row": r,
                            "col": c,
                        }
                    )
    return pd.DataFrame(rows)


def hardest_queries(report: Report, dataset: str, query_ids: Sequence[str], n: int) -> list[str]:
    """`n` of `query_ids`: those the most models miss at top-1 first, then the lowest mean
    margin; returned in data-set order."""
    rows = report.per_query[
        (report.per_query["dataset"] == dataset) & report.per_query["query_id"].isin(list(query_ids))
    ]
    stats = rows.groupby("query_id").agg(missed=("top1", lambda s: int((s < 1).sum())), margin=("margin", "mean"))
    chosen = set(stats.sort_values(["missed", "margin"], ascending=[False, True], kind="stable").index[:n])
    return [q for q in query_ids if q in chosen]


def margins(
    report: Report, category: str | None = None, datasets: Sequence[Dataset] | None = None, label_chars: int = 16
) -> pd.DataFrame:
    """Per query and model: margin (best relevant minus best non-relevant score; negative
    means a distractor won), rank, and the kind of document that won when wrong."""
    frame = report.per_query
    if category:
        frame = frame[frame["category"] == category]
    sets = {d.name: d for d in (datasets if datasets is not None else resolve_datasets(frame["dataset"].unique()))}
    frame = frame[
        ["model", "dataset", "query_id", "category", "rank", "top1", "margin", "winner_kind", "best_wrong_kind"]
    ].copy()
    for col in ("winner_kind", "best_wrong_kind"):  # another query's answer, not this one's
        frame[col] = [kind_for_query(k, relevant=False) for k in frame[col].fillna("")]
    frame["query_label"] = [
        f"{q} {shorten(sets[d].queries[q], label_chars)}" for d, q in zip(frame["dataset"], frame["query_id"])
    ]
    return frame.reset_index(drop=True)


def kind_beat_rates(
    report: Report, category: str | None = None, datasets: Sequence[Dataset] | None = None
) -> pd.DataFrame:
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
                    kind = ds.kind_for(q, d)
                    pair = counts.setdefault(kind, [0, 0])
                    pair[0] += 1
                    pair[1] += int(row[d_pos[d]] >= best)
            for kind, (n, beat) in counts.items():
                rows.append(
                    {"model": m, "dataset": ds.name, "kind": kind, "n_pairs": n, "n_beat": beat, "beat_rate": beat / n}
                )
    return pd.DataFrame(rows, columns=["model", "dataset", "kind", "n_pairs", "n_beat", "beat_rate"])


def outcomes(report: Report, category: str | None = None, datasets: Sequence[Dataset] | None = None) -> pd.DataFrame:
    """Rank of the answer per query and model (1 = found first), for the outcome grid."""
    return margins(report, category, datasets)[
        ["model", "dataset", "query_id", "query_label", "rank", "top1", "margin", "winner_kind"]
    ]


def lexical_contrast(
    report: Report, category: str | None = None, lexical: str = "bm25", metric: str = "top1"
) -> pd.DataFrame:
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
                row = {
                    "metric": metric,
                    "model_a": model,
                    "model_b": lexical,
                    "n": len(pair),
                    "mean_a": a.mean(),
                    "mean_b": b.mean(),
                    "diff": d.mean(),
                    "diff_low": np.nan,
                    "diff_high": np.nan,
                    "p_value": np.nan,
                    "wins": int((d > 0).sum()),
                    "ties": int((d == 0).sum()),
                    "losses": int((d < 0).sum()),
                }
            else:
                row = paired_comparison(a, b, metric, model, lexical, report.confidence, seed=report.seed).to_dict()
            rows.append({"dataset": dataset, "category": category or "all", **row})
    return pd.DataFrame(rows)


CHOICE_COLUMNS = [
    "model",
    "dataset",
    "kind",
    "device",
    "n_queries",
    "top1",
    "top1_low",
    "top1_high",
    "speed_texts_per_s",
    "speed_measure",
    "memory_gib",
    "memory_measure",
]


def device_label(summary: pd.DataFrame) -> pd.Series:
    """Per row, the device that ran it, in words: "GPU (<name>)" where GPU memory was
    measured, else "CPU (this machine)"."""
    from embedlab.evaluation.results import gpu_rows

    names = (
        summary["gpu_device"].astype(object).fillna("").astype(str)
        if "gpu_device" in summary
        else pd.Series("", index=summary.index)
    )
    return pd.Series(
        np.where(
            gpu_rows(summary), "GPU (" + names.where(names != "", "device not recorded") + ")", "CPU (this machine)"
        ),
        index=summary.index,
    )


def choice_frame(report: Report, dataset: str | None = None, summary: pd.DataFrame | None = None) -> pd.DataFrame:
    """What choosing a model weighs, one row per model (and cue baseline) on one data set
    (default: the one with the most queries): top-1 with its interval, speed (texts/s of
    the throughput pass where it ran, else of the timed batches), memory (GPU peak on a GPU
    run, else host RSS peak) and the device that measured them."""
    summary = report.summary() if summary is None else summary
    ok = summary[summary["status"] == "ok"]
    if ok.empty:
        return pd.DataFrame(columns=CHOICE_COLUMNS)
    dataset = dataset or ok.groupby("dataset")["n_queries"].max().idxmax()
    rows = ok[ok["dataset"] == dataset].reset_index(drop=True)
    cues = set(cue_models(report))
    throughput = pd.to_numeric(rows["throughput_texts_per_s"], errors="coerce")
    timed = pd.to_numeric(rows["texts_per_s"], errors="coerce")
    device = device_label(rows)
    gpu = device.str.startswith("GPU")
    gpu_peak = pd.to_numeric(rows["gpu_mem_peak_gib"], errors="coerce")
    host_peak = pd.to_numeric(rows["host_rss_peak_gib"], errors="coerce")
    out = pd.DataFrame(
        {
            "model": rows["model"],
            "dataset": dataset,
            "kind": np.where(rows["model"].isin(cues), CUE_LABEL, "model"),
            "device": device,
            "n_queries": rows["n_queries"],
            "top1": rows["top1"],
            "top1_low": rows["top1_low"],
            "top1_high": rows["top1_high"],
            "speed_texts_per_s": throughput.fillna(timed),
            "speed_measure": np.where(throughput.notna(), "throughput pass", "median timed batch"),
            "memory_gib": np.where(gpu, gpu_peak, host_peak),
            "memory_measure": np.where(gpu, "GPU peak", "host RSS peak (CPU run)"),
        }
    )
    return out[CHOICE_COLUMNS]


def category_comparisons(report: Report, category: str, metric: str = "top1") -> pd.DataFrame:
    """`Report.comparisons` on one category's queries: every pair of models, paired."""
    return replace(report, per_query=report.per_query[report.per_query["category"] == category]).comparisons(metric)


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
    return frame.sort_values(
        ["dataset", "category"], key=lambda s: s.map(order) if s.name == "category" else s, kind="stable"
    ).reset_index(drop=True)


# ---- one query at a time: the tables behind the results explorer (`embedlab.explore`) ----------

OUTCOMES: tuple[str, ...] = ("won", "lost", "tied")  # a query's outcome in `query_outcomes`


def query_outcomes(report: Report, model: str, compare: str | None = None) -> pd.DataFrame:
    """Per query of `model`: rank of the answer, margin, the kind that won, and `outcome`:
    alone, "won" (answer first), "tied" (the answer tied with a distractor at the top: counts
    as lost in the tables) or "lost"; against `compare`, the paired top-1: "won" (`model`
    right, `compare` wrong), "lost" (the reverse), "tied" (the same), with `compare`'s rank,
    margin and winner kind beside (`*_b`) and `disagree`."""
    columns = ["dataset", "query_id", "category", "rank", "top1", "margin", "winner_kind"]
    frame = report.per_query
    a = frame[frame["model"] == model][columns].copy()
    if a.empty:
        raise ValueError(f"no model {model!r} in this report (models: {', '.join(dict.fromkeys(frame['model']))})")
    a["winner_kind"] = a["winner_kind"].fillna("").replace({"answer": "other-answer"})
    if compare is None:
        a["outcome"] = np.where(a["top1"] > 0, "won", np.where(a["margin"] == 0, "tied", "lost"))
        return a.reset_index(drop=True)
    b = frame[frame["model"] == compare][["dataset", "query_id", "rank", "top1", "margin", "winner_kind"]].copy()
    if b.empty:
        raise ValueError(f"no model {compare!r} in this report")
    b["winner_kind"] = b["winner_kind"].fillna("").replace({"answer": "other-answer"})
    both = a.merge(b, on=["dataset", "query_id"], suffixes=("", "_b"))
    diff = both["top1"] - both["top1_b"]
    both["outcome"] = np.where(diff > 0, "won", np.where(diff < 0, "lost", "tied"))
    both["disagree"] = diff != 0
    return both.reset_index(drop=True)


def _datasets(report: Report, datasets: Mapping[str, Dataset] | None) -> Mapping[str, Dataset]:
    """The run's data sets by name: as given, else loaded by name."""
    if datasets is not None:
        return datasets
    return {d.name: d for d in resolve_datasets(list(report.datasets))}


def query_table(
    report: Report,
    model: str,
    compare: str | None = None,
    dataset: str | None = None,
    category: str | None = None,
    outcome: str | None = None,
    datasets: Mapping[str, Dataset] | None = None,
) -> pd.DataFrame:
    """The queries of `model` (against `compare` when given) filtered by data set, category
    and outcome (`query_outcomes`), with their text. With a comparison, the queries where the
    two models disagree come first. `datasets`: the run's data sets by name (default: loaded
    by name)."""
    datasets = _datasets(report, datasets)
    if outcome is not None and outcome not in OUTCOMES:
        raise ValueError(f"outcome must be one of {OUTCOMES}, got {outcome!r}")
    frame = query_outcomes(report, model, compare)
    if dataset is not None:
        frame = frame[frame["dataset"] == dataset]
    if category is not None:
        frame = frame[frame["category"] == category]
    if outcome is not None:
        frame = frame[frame["outcome"] == outcome]
    frame = frame.assign(query=[datasets[d].queries[q] for d, q in zip(frame["dataset"], frame["query_id"])])
    if compare is not None:
        frame = frame.sort_values("disagree", ascending=False, kind="stable")
    return frame.reset_index(drop=True)


def ranked_documents(report: Report, dataset: Dataset, model: str, query_id: str, k: int = 5) -> pd.DataFrame:
    """The documents `model` ranks first for one query (ties against the model, as the
    tables rank), with their kinds for this query and scores; the answers below rank `k`
    are added, so the answer's place is always shown."""
    from embedlab.evaluation.metrics import pessimistic_order

    row = dataset.query_ids.index(query_id)
    scores = report.scores[(model, dataset.name)][row]
    gains = dataset.gains([query_id])
    options = next((m.get("options") or {} for m in report.config.get("models", []) if m.get("name") == model), {})
    eligible = (
        dataset.judged([query_id]) if (options.get("candidates") or dataset.meta.candidates) == "judged" else None
    )
    order = pessimistic_order(scores[None, :], gains, eligible)[0]
    keep = [i for rank, i in enumerate(order) if rank < k or gains[0, i] > 0]
    doc_ids = dataset.doc_ids
    rank_of = {i: r + 1 for r, i in enumerate(order)}
    return pd.DataFrame(
        {
            "model": model,
            "rank": [rank_of[i] for i in keep],
            "doc_id": [doc_ids[i] for i in keep],
            "kind": [dataset.kind_for(query_id, doc_ids[i]) for i in keep],
            "score": [float(scores[i]) for i in keep],
            "document": [dataset.corpus[doc_ids[i]] for i in keep],
        }
    )


def heatmap_frame(report: Report, dataset: Dataset, query_id: str, models: Sequence[str]) -> pd.DataFrame:
    """One query's row of `analysis.similarity_frame` for `models`: the documents judged for
    it and those a model ranked first (the whole corpus of a small set), re-numbered."""

    category = dataset.categories.get(query_id) or None
    frame = similarity_frame(report, [dataset], category=category)
    frame = frame[(frame["query_id"] == query_id) & frame["model"].isin(models)]
    if len(dataset.corpus) > 30:
        judged = set(dataset.qrels.get(query_id, {}))
        keep = set(frame.loc[frame["is_top1"], "doc_id"]) | judged
        frame = frame[frame["doc_id"].isin(keep)]
    cols = {d: i for i, d in enumerate(dict.fromkeys(frame.sort_values("col")["doc_id"]))}
    return frame.assign(row=0, col=frame["doc_id"].map(cols)).reset_index(drop=True)


def category_losses(report: Report, model: str, other: str, dataset: str | None = None) -> pd.DataFrame:
    """Per data set and category, `model` against `other` on top-1, paired: `losses`
    (queries `model` gets wrong and `other` right), `wins`, `ties`, both top-1 rates and the
    difference; the category where `model` loses most first."""
    frame = query_outcomes(report, model, other)
    if dataset is not None:
        frame = frame[frame["dataset"] == dataset]
    out = (
        frame.groupby(["dataset", "category"], sort=False)
        .agg(
            n=("query_id", "size"),
            losses=("outcome", lambda s: int((s == "lost").sum())),
            wins=("outcome", lambda s: int((s == "won").sum())),
            ties=("outcome", lambda s: int((s == "tied").sum())),
            top1=("top1", "mean"),
            top1_other=("top1_b", "mean"),
        )
        .reset_index()
    )
    out["diff"] = out["top1"] - out["top1_other"]
    out.insert(0, "model", model)
    out.insert(1, "other", other)
    return out.sort_values(["losses", "diff"], ascending=[False, True], kind="stable").reset_index(drop=True)


def loss_note(
    report: Report, model: str, other: str, dataset: str, query_id: str, datasets: Mapping[str, Dataset] | None = None
) -> str:
    """Markdown reading one query where `model` and `other` differ: the query, what each
    ranked first (kind and text) and each margin."""
    ds = _datasets(report, datasets)[dataset]
    lines = [f"**{query_id}** ({ds.categories.get(query_id, '')}): {ds.queries[query_id]}", ""]
    for name in (model, other):
        top = ranked_documents(report, ds, name, query_id, k=1).iloc[0]
        row = report.per_query[
            (report.per_query["model"] == name)
            & (report.per_query["dataset"] == dataset)
            & (report.per_query["query_id"] == query_id)
        ].iloc[0]
        lines.append(
            f"- {name} ranked first [{top['kind']}] {top['document']} (score {top['score']:.3f}); the answer is at "
            f"rank {int(row['rank'])}, margin {row['margin']:+.3f}."
        )
    return "\n".join(lines)
