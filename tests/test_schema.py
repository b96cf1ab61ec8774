"""The result schema is declared once (`evaluation.metrics`): a run config's `metrics:` adds
a column to per_query.csv, summary.csv and by_category.csv, ranked deep enough on every path
(in-process scores and a scorer's worker ranking in blocks), equal to ranx."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd
import pytest

import embedlab as el
from embedlab.errors import ConfigError
from embedlab.evaluation.metrics import parse_metric
from embedlab.evaluation.results import summary_columns
from embedlab.run.config import load_config

DATASET = "cmrc2018"  # 848 documents: recall@100 differs from recall@10


def _config(tmp_path: Path, metrics: str) -> Path:
    path = tmp_path / "run.yaml"
    path.write_text(
        f"models: [bm25]\ndatasets: [{DATASET}]\nmetrics: {metrics}\n"
        "settings: {repeats: 1, throughput_texts: 0, isolate: false, progress: false}\n",
        encoding="utf-8",
    )
    return path


def _ranx_recall(dataset: el.Dataset, scores: np.ndarray, k: int = 100) -> np.ndarray:
    """ranx's recall@k with exact ties broken against the relevant documents (embedlab's
    documented rule; BM25 gives many documents the same score): each relevant document is
    lowered by a quarter of the smallest gap between distinct scores, which moves it below
    its ties and above nothing else."""
    ranx = pytest.importorskip("ranx")
    scores = np.asarray(scores, dtype=np.float64)
    gap = np.diff(np.unique(scores)).min()
    scores = scores - (dataset.gains() > 0) * gap / 4
    qrels = ranx.Qrels({q: {d: g for d, g in docs.items() if g > 0} for q, docs in dataset.qrels.items()})
    run = ranx.Run({q: {d: float(s) for d, s in zip(dataset.doc_ids, row)} for q, row in zip(dataset.query_ids, scores)})
    ranx.evaluate(qrels, run, f"recall@{k}", make_comparable=True)
    return np.array([run.scores[f"recall@{k}"][q] for q in dataset.query_ids])  # by query id: ranx sorts its own


def test_config_metrics_add_recall_at_100_equal_to_ranx(tmp_path: Path) -> None:
    cfg = load_config(_config(tmp_path, "[top1, recall@100]"))
    assert cfg.settings.metrics == ("top1", "recall@100")
    dataset = el.load_dataset(DATASET).sample(400, seed=0)
    report = el.evaluate(cfg.models, [dataset], cfg.settings, keep_scores=100_000)
    out = report.to_dir(tmp_path / "out")

    per_query = pd.read_csv(out / "per_query.csv", dtype={"query_id": str})
    summary = pd.read_csv(out / "summary.csv")
    by_category = pd.read_csv(out / "by_category.csv")
    assert list(summary.columns) == summary_columns(report.metrics)
    for frame in (per_query, summary, by_category):
        assert "recall_at_100" in frame.columns
    assert "recall_at_100" in (out / "report.md").read_text(encoding="utf-8")

    # 400 queries x 848 documents is over keep_scores: BM25's worker ranked in blocks itself
    assert not report.scores
    ours = per_query.set_index("query_id").loc[dataset.query_ids, "recall_at_100"].to_numpy()

    # the whole score matrix returned and ranked by the evaluation stage: the same numbers, and ranx's
    whole = el.evaluate(cfg.models, [dataset], cfg.settings)
    expected = _ranx_recall(dataset, whole.scores[("bm25", dataset.name)])
    assert (expected > _ranx_recall(dataset, whole.scores[("bm25", dataset.name)], 10)).any()  # depth matters here
    np.testing.assert_allclose(whole.per_query["recall_at_100"].to_numpy(), expected, rtol=0, atol=1e-9)
    np.testing.assert_allclose(ours, expected, rtol=0, atol=1e-9)
    assert summary.loc[0, "recall_at_100"] == pytest.approx(expected.mean())


def test_unknown_metric_in_a_config_is_a_config_error(tmp_path: Path) -> None:
    cfg = load_config(_config(tmp_path, "[top1, map@10]"))
    with pytest.raises(ConfigError, match="map@10"):
        el.evaluate(cfg.models, [el.load_dataset("seed")], cfg.settings)


def test_metric_specs_name_their_columns_once() -> None:
    spec = parse_metric("recall@100")
    assert summary_columns((spec,))[4:7] == ["recall_at_100", "recall_at_100_low", "recall_at_100_high"]
