"""The public data sets: seeded samples of them (queries and a cut corpus), their run, and
where lexical overlap alone already finds the answer."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, replace

import numpy as np
import pandas as pd

from embedlab.data.datasets import Dataset, load_dataset
from embedlab.evaluation import evaluate
from embedlab.evaluation.results import Report
from embedlab.report.runs import REAL_DATA_SETTINGS, cached_settings, resolve_models
from embedlab.types import RunSettings


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


def subsample(dataset: Dataset, sample: Sample, seed: int = 0) -> Dataset:
    """`sample.n_queries` queries (Dataset.sample) and a corpus cut to `sample.n_docs`: the
    documents judged for the kept queries, then a seeded random draw of the others. The
    name records the cut, e.g. `cmrc2018[80q/160d]`. With fewer distractors the task is
    easier than on the whole corpus; the notebook's table says how much was kept."""
    kept = dataset.sample(sample.n_queries, seed=seed) if sample.n_queries else dataset
    n_docs = sample.n_docs
    if n_docs is None or n_docs >= len(dataset.corpus) or dataset.meta.candidates == "judged":
        docs = (
            list(dataset.corpus)
            if dataset.meta.candidates != "judged" or sample.n_queries is None
            else list(dict.fromkeys(d for q in kept.queries for d in kept.qrels.get(q, {})))
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


def real_datasets(
    samples: Mapping[str, Sample | Sequence[int | None] | None] | None = None, seed: int = 0
) -> list[Dataset]:
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
                "dataset": ds.name,
                "queries": len(ds.query_ids),
                "queries_total": len(full.query_ids),
                "documents": len(ds.corpus),
                "documents_total": len(full.corpus),
                "candidates": ds.meta.candidates,
                "main_score": ds.meta.main_score,
                "license": ds.meta.license,
            }
        )
    return pd.DataFrame(rows)


def real_data_report(
    models=None, datasets: Sequence[Dataset] | None = None, cache_dir=None, settings: RunSettings = REAL_DATA_SETTINGS
) -> Report:
    """The models on the public sets (default: `real_datasets()`), cached."""
    return evaluate(
        resolve_models(models),
        list(datasets) if datasets is not None else real_datasets(),
        cached_settings(settings, cache_dir),
    )


def lexical_overlap(datasets: Sequence[Dataset]) -> pd.DataFrame:
    """Per query: the share of its words (jieba) found in its relevant document, and the
    highest such share among the other candidate documents (judged ones, or the whole
    corpus). `overlap_gap` > 0 means word overlap alone points to the answer."""
    from embedlab.data.words import segment

    rows = []
    for ds in datasets:
        doc_words = dict(zip(ds.doc_ids, (set(w) for w in segment(ds.document_texts()))))
        for q, words in zip(ds.query_ids, segment(ds.query_texts())):
            words = set(words)
            judged = ds.qrels.get(q, {})
            share = {
                d: (len(words & doc_words[d]) / len(words) if words else 0.0)
                for d in (judged if ds.meta.candidates == "judged" else ds.doc_ids)
            }
            rel = [share[d] for d, g in judged.items() if g > 0 and d in share]
            other = [s for d, s in share.items() if judged.get(d, 0) <= 0]
            best_rel = max(rel) if rel else 0.0
            best_other = max(other) if other else 0.0
            rows.append(
                {
                    "dataset": ds.name,
                    "query_id": q,
                    "overlap_answer": best_rel,
                    "overlap_best_other": best_other,
                    "overlap_gap": best_rel - best_other,
                }
            )
    return pd.DataFrame(rows)


def overlap_accuracy(report: Report, overlap: pd.DataFrame, metric: str = "top1") -> pd.DataFrame:
    """Mean `metric` per model, data set and overlap group: queries whose answer shares more
    of the query's words than any other candidate (lexical overlap points to the answer) or
    not."""
    merged = report.per_query.merge(overlap, on=["dataset", "query_id"], how="inner")
    merged["overlap_group"] = np.where(merged["overlap_gap"] > 0, "overlap points to the answer", "overlap does not")
    out = (
        merged.groupby(["dataset", "overlap_group", "model"], sort=False)
        .agg(n_queries=(metric, "size"), value=(metric, "mean"))
        .reset_index()
    )
    out["metric"] = metric
    return out


def lexical_verdicts(
    report: Report, datasets: Sequence[Dataset] = (), lexical: str = "bm25", summary: pd.DataFrame | None = None
) -> pd.DataFrame:
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
        verdict = (
            "lexical ahead" if cmp.diff_low > 0 else "lexical behind" if cmp.diff_high < 0 else "no clear difference"
        )
        rows.append(
            {
                "dataset": dataset,
                "metric": score,
                "lexical": lexical,
                "best_other": best,
                **{k: v for k, v in cmp.to_dict().items() if k not in ("model_a", "model_b", "metric")},
                "verdict": verdict,
            }
        )
    return pd.DataFrame(rows)


def verdict_note(verdicts: pd.DataFrame) -> str:
    """Markdown, one line per data set, reading `lexical_verdicts`."""
    if verdicts.empty:
        return "No lexical baseline in this run, so no verdict."
    lines = []
    for r in verdicts.itertuples():
        lines.append(
            f"- **{r.dataset}** ({r.metric}): {r.lexical} {r.mean_a:.3f} vs {r.best_other} {r.mean_b:.3f}, "
            f"difference {r.diff:+.3f} (95% CI {r.diff_low:+.3f} to {r.diff_high:+.3f}, p = {r.p_value:.3g}, n = "
            f"{r.n}): {r.verdict}."
        )
    return "\n".join(lines)
