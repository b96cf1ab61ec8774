"""A 2-D map of one category's queries and documents per model: the run's embeddings (read
back from the embedding cache under the run's own settings) projected on their first two
principal components (numpy SVD), a line from each query to its answer and to the document
ranked above it where one was. A scorer (BM25, the cue baselines) has no embedding: its
panel says so."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from pathlib import Path

import numpy as np
import pandas as pd

from embedlab.data.datasets import Dataset
from embedlab.evaluation.results import Report
from embedlab.explore.widgets import say
from embedlab.models import ModelSpec
from embedlab.report.lang import check_lang
from embedlab.report.views import category_query_ids, top_ranked

MAP_COLUMNS = ["model", "point", "id", "query_id", "kind", "x", "y"]
LINK_COLUMNS = ["model", "query_id", "answer", "winner"]


def pca_2d(points: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """The rows of `points` on their first two principal components (centred, SVD), and
    the share of the variance each component explains."""
    points = np.asarray(points, dtype=np.float64)
    if points.ndim != 2 or len(points) < 2:
        raise ValueError(f"pca_2d: expected at least 2 rows of vectors, got shape {points.shape}")
    centred = points - points.mean(axis=0)
    _, singular, vt = np.linalg.svd(centred, full_matrices=False)
    total = float((singular**2).sum())
    coords = centred @ vt[:2].T
    if coords.shape[1] < 2:  # one dimension: nothing to spread on the second axis
        coords = np.hstack([coords, np.zeros((len(coords), 2 - coords.shape[1]))])
    explained = (singular[:2] ** 2) / total if total > 0 else np.zeros(2)
    return coords, np.pad(explained, (0, 2 - len(explained)))


def _spec(report: Report, model: str) -> ModelSpec:
    for record in report.config.get("models", []):
        if record.get("name") == model:
            return ModelSpec(**record)
    names = ", ".join(str(r.get("name")) for r in report.config.get("models", []))
    raise ValueError(f"no model {model!r} in this run's config (models: {names})")


def run_embeddings(
    report: Report, dataset: Dataset, model: str, cache_dir: str | Path | None = None
) -> tuple[np.ndarray, np.ndarray] | None:
    """The query and document embeddings `model` made of `dataset` in the run of `report`:
    run under the run's own settings through its embedding cache (`runs.run_settings`),
    so a run whose entries are there reads them back and loads no model; otherwise the model
    runs once (and the cache keeps it). None for a scorer (BM25, a cue baseline): it makes
    no embedding. A failed run raises RuntimeError with its reason."""
    from embedlab.evaluation.metrics import ranking_depth
    from embedlab.evaluation.pipeline import run_metrics
    from embedlab.evaluation.ranking import rank_block
    from embedlab.explore.runs import run_settings
    from embedlab.run.runner import model_runner
    from embedlab.types import EncodeTask

    spec = _spec(report, model)
    if spec.scores_corpus:
        return None
    settings = run_settings(report, cache_dir)
    task = EncodeTask.from_dataset(dataset, depth=ranking_depth(run_metrics(settings)), rank_block=rank_block)
    outcome = model_runner(settings)(spec, [task], settings)
    result = outcome.datasets.get(dataset.name) if outcome.status == "ok" else None
    if result is None or result.query_embeddings is None:
        raise RuntimeError(f"{model} on {dataset.name}: {outcome.error or 'no embeddings came back'}")
    return np.asarray(result.query_embeddings), np.asarray(result.doc_embeddings)


def _unit(rows: np.ndarray) -> np.ndarray:
    norms = np.linalg.norm(rows, axis=1, keepdims=True)
    return rows / np.where(norms > 0, norms, 1.0)


def map_frames(
    report: Report, dataset: Dataset, category: str, model: str, embeddings: tuple[np.ndarray, np.ndarray]
) -> tuple[pd.DataFrame, pd.DataFrame, np.ndarray]:
    """One model's map of a category: `points` (one row per query and per document judged
    for those queries or ranked first by the model, x and y on the first two principal
    components of the L2-normalised embeddings), `links` (per query its answer and the
    document ranked first when that is not an answer, else None) and the explained variance."""
    query_ids = category_query_ids(dataset, category)
    if not query_ids:
        raise ValueError(f"{dataset.name}: no query of category {category!r}")
    doc_ids = dataset.doc_ids
    first = [doc_ids[i] for i in top_ranked(report, dataset, model, query_ids)]
    owner: dict[str, str] = {}
    for q, top in zip(query_ids, first):
        for d in sorted(dataset.qrels.get(q, {}), key=lambda d: -dataset.qrels[q][d]):
            owner.setdefault(d, q)
        owner.setdefault(top, q)
    docs = list(owner)
    q_emb, d_emb = embeddings
    q_pos = {q: i for i, q in enumerate(dataset.query_ids)}
    d_pos = {d: i for i, d in enumerate(doc_ids)}
    vectors = np.vstack([q_emb[[q_pos[q] for q in query_ids]], d_emb[[d_pos[d] for d in docs]]])
    coords, explained = pca_2d(_unit(vectors))
    points = pd.DataFrame(
        {
            "model": model,
            "point": ["query"] * len(query_ids) + ["document"] * len(docs),
            "id": [*query_ids, *docs],
            "query_id": [*query_ids, *(owner[d] for d in docs)],
            "kind": ["query"] * len(query_ids) + [dataset.kind_for(owner[d], d) for d in docs],
            "x": coords[:, 0],
            "y": coords[:, 1],
        }
    )[MAP_COLUMNS]
    links = pd.DataFrame(
        [
            {
                "model": model,
                "query_id": q,
                "answer": max(dataset.qrels[q], key=lambda d: dataset.qrels[q][d]),
                "winner": None if dataset.qrels.get(q, {}).get(top, 0) > 0 else top,
            }
            for q, top in zip(query_ids, first)
        ],
        columns=LINK_COLUMNS,
    )
    return points, links, explained


def _panel(ax, points: pd.DataFrame, links: pd.DataFrame, explained: np.ndarray, model: str, lang: str) -> None:
    from embedlab.report.plots import KIND_COLORS

    where = points.set_index("id")[["x", "y"]]
    for link in links.itertuples():
        q = where.loc[link.query_id]
        a = where.loc[link.answer]
        ax.plot([q.x, a.x], [q.y, a.y], color="#2ca02c", lw=1.0, zorder=1)
        if isinstance(link.winner, str):  # a document ranked above the answer (else None / NaN)
            w = where.loc[link.winner]
            ax.plot([q.x, w.x], [q.y, w.y], color="#d62728", lw=1.0, ls="--", zorder=1)
    docs = points[points["point"] == "document"]
    for kind, sub in docs.groupby("kind", sort=False):
        ax.scatter(sub["x"], sub["y"], s=28, color=KIND_COLORS.get(kind, "#4C72B0"), label=kind, zorder=2)
    queries = points[points["point"] == "query"]
    ax.scatter(queries["x"], queries["y"], s=46, marker="x", color="black", label=say("queries legend", lang), zorder=3)
    ax.set_title(model, fontsize=10)
    ax.set_xlabel(f"PC1 ({say('explained', lang)} {explained[0]:.0%})")
    ax.set_ylabel(f"PC2 ({explained[1]:.0%})")
    ax.legend(fontsize=7, loc="best")


def map_figure(
    report: Report,
    dataset: Dataset,
    category: str,
    embeddings: Mapping[str, tuple[np.ndarray, np.ndarray] | None],
    lang: str = "both",
):
    """One panel per model of `embeddings` (None: a scorer, whose panel says it has no
    embedding), as `map_frames`; the title names the category, data set and what the map shows."""
    import matplotlib.pyplot as plt

    from embedlab.report.plots import ensure_cjk_font, note

    check_lang(lang)
    ensure_cjk_font()
    models = list(embeddings)
    if not models:
        raise ValueError("map_figure: no model to draw")
    ncols = min(3, len(models))
    nrows = -(-len(models) // ncols)
    fig, axes = plt.subplots(nrows, ncols, figsize=(5.2 * ncols, 4.6 * nrows + 0.8), squeeze=False)
    for ax, model in zip(axes.flat, models):
        vectors = embeddings[model]
        if vectors is None:
            note(ax, f"{model}:\n{say('no embedding', lang, separator=chr(10))}")
            ax.set_title(model, fontsize=10)
            continue
        points, links, explained = map_frames(report, dataset, category, model, vectors)
        _panel(ax, points, links, explained, model, lang)
    for ax in list(axes.flat)[len(models) :]:
        ax.set_visible(False)
    fig.suptitle(
        f"{say('map title', lang)}: {dataset.name} · {category}\n{say('map note', lang, separator=chr(10))}",
        fontsize=9,
        wrap=True,
    )
    return fig


def semantic_map(
    report_or_folder,
    category: str,
    models: Sequence[str] | None = None,
    dataset: str | None = None,
    datasets: Sequence[Dataset] | None = None,
    *,
    cache_dir: str | Path | None = None,
    lang: str = "both",
):
    """The map of `category` (a matplotlib Figure, one panel per model; default every model
    of the run, scorers included with their note) on `dataset` (default: the run's data set
    with the most queries of that category). Embeddings come from the run's cache
    (`run_embeddings`)."""
    from embedlab.explore.runs import with_scores

    check_lang(lang)
    report, by_name = with_scores(report_or_folder, datasets, cache_dir)
    if dataset is None:
        counts = {n: len(category_query_ids(d, category)) for n, d in by_name.items()}
        dataset = max(counts, key=counts.get) if counts and max(counts.values()) > 0 else None
        if dataset is None:
            raise ValueError(f"no data set of the run has a query of category {category!r}")
    ds = by_name[dataset]
    names = list(models) if models is not None else list(dict.fromkeys(report.per_query["model"]))
    embeddings = {m: run_embeddings(report, ds, m, cache_dir) for m in names}
    return map_figure(report, ds, category, embeddings, lang)
