"""The reranker stage of a run: `rerank:` on a model or fusion entry of a config and
`--rerank` on `embedlab run` add a row "<first stage>+<reranker>" beside the first-stage row,
with the latency the stage adds; through `evaluate` and through the real CLI, with the tiny
random Qwen3 reranker (transformers backend, CPU)."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

import embedlab as el
from embedlab.cli import second_stages, select
from embedlab.errors import ConfigError
from embedlab.evaluation.rerank import rerank_scores
from embedlab.evaluation.scoring import per_query_table
from embedlab.run.config import Fusion, Rerank, load_config

pytest_plugins = ["tests.conftest_models"]

ROOT = Path(__file__).resolve().parents[1]
SETTINGS = el.RunSettings(progress=False, isolate=False, repeats=3, throughput_texts=0, timing_texts=8)


@pytest.fixture(scope="module")
def tiny_reranker(reranker_spec):
    return reranker_spec.with_options(backend="transformers", batch_size=8)


def test_rerank_config_and_its_errors(tmp_path: Path) -> None:
    good = tmp_path / "run.yaml"
    good.write_text(
        "models:\n  - name: bm25\n    rerank: {model: qwen3-reranker-0.6b, top_k: 20}\n  - multilingual-e5-small\n"
        "datasets: [seed]\nfusions:\n  - {models: [bm25, multilingual-e5-small], rerank: qwen3-reranker-4b}\n",
        encoding="utf-8",
    )
    cfg = load_config(good)
    assert [m.name for m in cfg.models] == ["bm25", "multilingual-e5-small"]
    assert [(r.name, r.top_k, r.reranker.path) for r in cfg.reranks] == [
        ("bm25+qwen3-reranker-0.6b", 20, "Qwen/Qwen3-Reranker-0.6B"),
        ("bm25+multilingual-e5-small+qwen3-reranker-4b", 20, "Qwen/Qwen3-Reranker-4B"),
    ]
    cases = {
        "rerank: {top_k: 5}": r"models\[0\]\.rerank: expected a reranker name or a mapping with 'model'",
        "rerank: {model: qwen3-reranker-0.6b, top_k: 0}": r"models\[0\]\.rerank\.top_k: expected a positive integer",
        "rerank: {model: bge-reranker}": r"models\[0\]\.rerank\.model: reranker 'bge-reranker' is not registered",
    }
    for text, message in cases.items():
        bad = tmp_path / "bad.yaml"
        bad.write_text(f"models:\n  - name: bm25\n    {text}\ndatasets: [seed]\n", encoding="utf-8")
        with pytest.raises(ConfigError, match=message) as info:
            load_config(bad)
        assert str(bad) in str(info.value)


def test_rerank_option_applies_to_every_model_and_fusion_but_cues() -> None:
    cfg = select(None, ["bm25", "length", "multilingual-e5-small"], ["seed"], None)
    cfg = second_stages(cfg, ["bm25+multilingual-e5-small"], "rrf", 60.0, "qwen3-reranker-0.6b=/models/r", 7)
    assert [f.name for f in cfg.fusions] == ["bm25+multilingual-e5-small"]
    assert [r.name for r in cfg.reranks] == [
        "bm25+qwen3-reranker-0.6b", "multilingual-e5-small+qwen3-reranker-0.6b", "bm25+multilingual-e5-small+qwen3-reranker-0.6b",
    ]
    assert {(r.top_k, r.reranker.path) for r in cfg.reranks} == {(7, "/models/r")}
    with pytest.raises(ConfigError, match=r"--fuse/--rerank: fusion 'bm25\+e5' needs \['e5'\]"):
        second_stages(cfg, ["bm25+e5"], "rrf", 60.0, None, 20)


def test_reranked_row_in_evaluate(tiny_reranker) -> None:
    from embedlab.models.rerank import load_reranker

    fusion = Fusion("bm25+length", ("bm25", "length"))
    stages = [Rerank("bm25", tiny_reranker, 5), Rerank("bm25+length", tiny_reranker, 3)]
    report = el.evaluate(["bm25", "length"], ["seed"], SETTINGS, fusions=[fusion], reranks=stages)
    dataset = el.load_dataset("seed")
    reference = load_reranker(tiny_reranker)
    for stage in stages:
        first = report.scores[(stage.first_stage, "seed")]
        expected = rerank_scores(dataset, first, reference, top_k=stage.top_k)
        np.testing.assert_allclose(report.scores[(stage.name, "seed")], expected, rtol=1e-9)
        ours = report.per_query[report.per_query["model"] == stage.name].reset_index(drop=True)
        pd.testing.assert_frame_equal(ours, per_query_table(dataset, stage.name, scores=expected))
        # outside the top k, the first stage's rank stays
        before = report.per_query[report.per_query["model"] == stage.first_stage].reset_index(drop=True)
        deep = before["rank"] > stage.top_k
        assert (ours.loc[deep, "rank"] == before.loc[deep, "rank"]).all()
    # the top-1 is the reranker's best of the first stage's top 5, scored pair by pair here
    bm25 = report.scores[("bm25", "seed")]
    queries, docs = dataset.query_texts(), dataset.document_texts()
    top1 = report.per_query[report.per_query["model"] == "bm25+qwen3-reranker-0.6b"]["top1_doc_id"].tolist()
    for row in range(len(queries)):
        top = np.argsort(-bm25[row], kind="stable")[:5]
        one = reference.score([(queries[row], docs[c]) for c in top], dataset.instruction or None)
        assert top1[row] == dataset.doc_ids[top[int(np.argmax(one))]]
    runs = report.runs.set_index("model")
    row = runs.loc["bm25+qwen3-reranker-0.6b"]
    assert row["status"] == "ok" and row["backend"] == "rerank" and row["stage"].startswith("rerank top-5 of bm25 by qwen3-reranker-0.6b")
    assert row["rerank_s"] > 0 and row["rerank_latency_s"] > 0 and row["load_s"] > 0 and row["n_reranked"] == 5 * len(queries)
    assert len(json.loads(row["rerank_latency_times_s"])) == SETTINGS.repeats
    summary = report.summary().set_index("model")
    assert summary.loc["bm25+length+qwen3-reranker-0.6b", "rerank_s"] > 0
    assert np.isnan(summary.loc["bm25", "rerank_s"])


def test_a_failed_first_stage_or_reranker_fails_its_row(tiny_reranker) -> None:
    from embedlab.models import get_model

    broken = get_model("multilingual-e5-small").with_options(name="broken", backend="embedlab.nowhere:Missing")
    missing = tiny_reranker.with_options(path="/nonexistent/reranker")
    report = el.evaluate(["bm25", broken], ["seed"], SETTINGS, reranks=[Rerank("broken", tiny_reranker, 3), Rerank("bm25", missing, 3)])
    runs = report.runs.set_index("model")
    assert runs.loc["broken+qwen3-reranker-0.6b", "status"] == "failed"
    assert "first stage 'broken' has no result" in runs.loc["broken+qwen3-reranker-0.6b", "error"]
    assert runs.loc["bm25+qwen3-reranker-0.6b", "status"] == "failed"
    assert "did not load" in runs.loc["bm25+qwen3-reranker-0.6b", "error"]
    assert runs.loc["bm25", "status"] == "ok"


def test_cli_rerank_from_a_config(embedlab_cli, tiny_reranker_dir: Path, tmp_path: Path) -> None:
    config = tmp_path / "run.yaml"
    config.write_text(
        "models:\n  - name: bm25\n"
        f"    rerank: {{model: qwen3-reranker-0.6b, top_k: 4, path: '{tiny_reranker_dir}', backend: transformers, max_tokens: 512, dtype: float32}}\n"
        "datasets: [seed]\nsettings: {repeats: 2, throughput_texts: 0}\n",
        encoding="utf-8",
    )
    out = tmp_path / "out"
    proc = embedlab_cli("run", "--config", str(config), "--out", str(out))
    assert proc.returncode == 0, proc.stderr[-3000:]
    summary = pd.read_csv(out / "summary.csv").set_index("model")
    assert list(summary.index) == ["bm25", "bm25+qwen3-reranker-0.6b"]
    row = summary.loc["bm25+qwen3-reranker-0.6b"]
    assert row["status"] == "ok" and row["backend"] == "rerank" and row["rerank_s"] > 0 and row["rerank_latency_s"] > 0
    assert row["dtype"] == "float32" and row["max_length"] == 512
    comparisons = pd.read_csv(out / "comparisons.csv")
    assert set(comparisons["model_b"]) == {"bm25+qwen3-reranker-0.6b"}
    per_query = pd.read_csv(out / "per_query.csv", keep_default_na=False)
    first, reranked = (per_query[per_query["model"] == m].reset_index(drop=True) for m in ("bm25", "bm25+qwen3-reranker-0.6b"))
    assert (reranked.loc[first["rank"] > 4, "rank"] == first.loc[first["rank"] > 4, "rank"]).all()


class _CharOverlapReranker:
    """A reranker by the protocol (no engine): characters shared by query and document."""

    spec = el.get_model("bm25")

    def score(self, pairs, instruction=None) -> np.ndarray:
        return np.array([len(set(q) & set(d)) for q, d in pairs], dtype=np.float64)


def test_rerank_on_a_judged_set_whose_query_lists_only_answers() -> None:
    """q1 judges only its answer: like the metrics and fusion, its candidates add every
    document that answers no query (d3, d4, d5), which the stage scores instead of leaving at -inf."""
    from embedlab.data.datasets import Dataset, DatasetMeta

    dataset = Dataset(
        meta=DatasetMeta(name="judged-lonely", candidates="judged"),
        queries={"q1": "苹果很甜", "q2": "香蕉很长"},
        corpus={"d1": "苹果甜", "d2": "香蕉长", "d3": "苹果很甜很甜", "d4": "天气", "d5": "香蕉"},
        qrels={"q1": {"d1": 1}, "q2": {"d2": 1, "d5": 0}},
    )
    first = np.array([[0.9, 0.1, 0.5, 0.2, 0.3], [0.1, 0.4, 0.2, 0.3, 0.8]])
    scores = rerank_scores(dataset, first, _CharOverlapReranker(), top_k=2)
    assert np.isfinite(scores[0, [0, 2, 3, 4]]).all() and np.isinf(scores[0, 1])  # q1: d1, d3, d4, d5
    assert np.isfinite(scores[1, [1, 4]]).all() and np.isinf(scores[1, [0, 2, 3]]).all()  # q2: its judged pair
    table = per_query_table(dataset, "first+overlap", scores=scores)  # crashed on q1's -inf distractors before
    # q1: the distractor d3 shares 4 characters, the answer d1 3; q2: d2 shares 3, d5 2
    assert list(table["rank"]) == [2, 1] and list(table["top1_doc_id"]) == ["d3", "d2"]
