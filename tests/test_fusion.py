"""Fusion of the rankings of models of a run: reciprocal rank fusion and min-max weighted sum
cross-checked against `ranx.fuse` on a bundled set, the pessimistic tie rule, fused rows in
evaluate (and their failures), the `fusions:` config key and `embedlab run --fuse` end to end
through the real CLI, checked against an RRF computed outside embedlab."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

import embedlab as el
from embedlab.errors import ConfigError
from embedlab.evaluation.fusion import fuse_scores, min_max, pessimistic_ranks, rrf, weighted_sum
from embedlab.evaluation.scoring import cosine_scores, per_query_table
from embedlab.evaluation.config import Fusion, load_config

ROOT = Path(__file__).resolve().parents[1]


def _ranx_run(dataset: el.Dataset, scores: np.ndarray, eligible: np.ndarray | None = None):
    from ranx import Run

    return Run(
        {
            q: {d: float(scores[i, j]) for j, d in enumerate(dataset.doc_ids) if eligible is None or eligible[i, j]}
            for i, q in enumerate(dataset.query_ids)
        }
    )


def _as_matrix(dataset: el.Dataset, run) -> np.ndarray:
    out = np.full((len(dataset.query_ids), len(dataset.doc_ids)), np.nan)
    col = {d: j for j, d in enumerate(dataset.doc_ids)}
    for i, q in enumerate(dataset.query_ids):
        for d, s in run.run[q].items():
            out[i, col[d]] = s
    return out


@pytest.fixture(scope="module")
def seed_scores() -> tuple[el.Dataset, list[np.ndarray]]:
    """Three tie-free score matrices over the bundled seed set, of different scales."""
    dataset = el.load_dataset("seed")
    rng = np.random.default_rng(7)
    shape = (len(dataset.query_ids), len(dataset.doc_ids))
    return dataset, [rng.normal(size=shape), 20 * rng.random(shape), rng.normal(3, 0.01, size=shape)]


def test_rrf_matches_ranx(seed_scores) -> None:
    from ranx import fuse

    dataset, matrices = seed_scores
    for k in (60, 1):
        ours = rrf(matrices, k=k)
        theirs = _as_matrix(dataset, fuse([_ranx_run(dataset, m) for m in matrices], method="rrf", params={"k": k}))
        np.testing.assert_allclose(ours, theirs, rtol=1e-12)
    assert not np.allclose(rrf(matrices, 60), rrf(matrices, 1))


def test_min_max_weighted_sum_matches_ranx(seed_scores) -> None:
    from ranx import fuse

    dataset, matrices = seed_scores
    weights = [0.2, 0.5, 0.3]
    theirs = fuse([_ranx_run(dataset, m) for m in matrices], norm="min-max", method="wsum", params={"weights": weights})
    np.testing.assert_allclose(weighted_sum(matrices, weights), _as_matrix(dataset, theirs), rtol=1e-12)
    equal = fuse([_ranx_run(dataset, m) for m in matrices], norm="min-max", method="wsum", params={"weights": [1 / 3] * 3})
    np.testing.assert_allclose(weighted_sum(matrices), _as_matrix(dataset, equal), rtol=1e-12)


def test_fusion_among_judged_candidates_matches_ranx_on_the_same_lists(seed_scores) -> None:
    """A judged set ranks each query among its candidates: ranx given only those documents."""
    from ranx import fuse

    dataset, matrices = seed_scores
    eligible = np.random.default_rng(1).random(matrices[0].shape) < 0.5
    eligible[:, 0] = eligible[:, 1] = True
    runs = [_ranx_run(dataset, m, eligible) for m in matrices[:2]]
    theirs = _as_matrix(dataset, fuse(runs, method="rrf"))
    ours = rrf(matrices[:2], eligible=eligible)
    np.testing.assert_allclose(ours[eligible], theirs[eligible], rtol=1e-12)
    assert (ours[~eligible] == 0).all()
    theirs = _as_matrix(dataset, fuse(runs, norm="min-max", method="wsum", params={"weights": [0.5, 0.5]}))
    np.testing.assert_allclose(weighted_sum(matrices[:2], eligible=eligible)[eligible], theirs[eligible], rtol=1e-12)


def test_fused_metrics_match_ranx_evaluate(seed_scores) -> None:
    from ranx import Qrels, evaluate, fuse

    dataset, matrices = seed_scores
    fused = fuse([_ranx_run(dataset, m) for m in matrices], method="rrf")
    qrels = Qrels({q: {d: int(g) for d, g in docs.items() if g > 0} for q, docs in dataset.qrels.items()})
    table = per_query_table(dataset, "fused", scores=rrf(matrices))
    assert table["mrr"].mean() == pytest.approx(evaluate(qrels, fused, "mrr"), rel=1e-9)
    assert table["ndcg_at_10"].mean() == pytest.approx(evaluate(qrels, fused, "ndcg@10"), rel=1e-9)


def test_ties_get_the_worst_rank_of_their_group() -> None:
    scores = np.array([[3.0, 1.0, 3.0, 2.0, 1.0]])
    np.testing.assert_array_equal(pessimistic_ranks(scores), [[2, 5, 2, 3, 5]])
    eligible = np.array([[True, True, False, True, True]])
    np.testing.assert_array_equal(pessimistic_ranks(scores, eligible), [[1, 4, np.inf, 2, 4]])
    # a model that ties everything gives every document the last rank: no document gains
    flat = rrf([np.zeros((1, 4)), np.array([[4.0, 3.0, 2.0, 1.0]])], k=60)
    np.testing.assert_allclose(flat, 1 / 64 + 1 / (60 + np.array([[1, 2, 3, 4]])))
    assert (min_max(np.full((1, 3), 2.0)) == 0).all()  # ranx: span floored at 1e-9


def test_fuse_scores_refuses_non_finite_members(seed_scores) -> None:
    _, matrices = seed_scores
    bad = matrices[0].copy()
    bad[2, 3] = np.nan
    with pytest.raises(ValueError, match="non-finite"):
        fuse_scores([bad, matrices[1]], Fusion("f", ("a", "b")))


def test_fusion_validation_names_the_problem() -> None:
    with pytest.raises(ConfigError, match="method"):
        Fusion("f", ("a", "b"), method="borda")
    with pytest.raises(ConfigError, match="two or more"):
        Fusion("f", ("a",))
    with pytest.raises(ConfigError, match="weights"):
        Fusion("f", ("a", "b"), method="wsum", weights=(1.0,))
    fusion = Fusion.from_arg("bm25+multilingual-e5-small")
    assert fusion.name == "bm25+multilingual-e5-small" and fusion.models == ("bm25", "multilingual-e5-small") and fusion.k == 60
    assert Fusion.from_arg("hybrid=bm25+e5", "wsum").name == "hybrid"


def test_config_fusions_and_their_errors(tmp_path: Path) -> None:
    good = tmp_path / "run.yaml"
    good.write_text(
        "models: [bm25, multilingual-e5-small]\ndatasets: [seed]\n"
        "fusions:\n  - {name: bm25+e5, models: [bm25, multilingual-e5-small], method: rrf, k: 60}\n"
        "  - {models: [bm25, multilingual-e5-small], method: wsum, weights: [0.3, 0.7]}\n",
        encoding="utf-8",
    )
    cfg = load_config(good)
    assert cfg.fusions == (
        Fusion("bm25+e5", ("bm25", "multilingual-e5-small"), "rrf", 60.0),
        Fusion("bm25+multilingual-e5-small", ("bm25", "multilingual-e5-small"), "wsum", 60.0, (0.3, 0.7)),
    )
    cases = {
        "fusions:\n  - {models: [bm25, use-multilingual-v3]}\n": r"fusion 'bm25\+use-multilingual-v3' needs \['use-multilingual-v3'\]",
        "fusions:\n  - {models: [bm25, multilingual-e5-small], method: max}\n": r"fusions\[0\].*'method' must be one of",
        "fusions:\n  - {models: [bm25, multilingual-e5-small], kk: 3}\n": r"fusions\[0\]: unknown keys \['kk'\]",
        "fusions:\n  - {models: bm25}\n": r"fusions\[0\]\.models: expected a list",
        "fusions:\n  - {models: [bm25, multilingual-e5-small], k: fast}\n": r"fusions\[0\]\.k: expected a number",
        "fusions:\n  - {name: bm25, models: [bm25, multilingual-e5-small]}\n": "already a model",
    }
    for text, message in cases.items():
        bad = tmp_path / "bad.yaml"
        bad.write_text("models: [bm25, multilingual-e5-small]\ndatasets: [seed]\n" + text, encoding="utf-8")
        with pytest.raises(ConfigError, match=message) as info:
            load_config(bad)
        assert str(bad) in str(info.value)


@pytest.mark.integration
def test_fused_rows_in_evaluate(tmp_path: Path) -> None:
    settings = el.RunSettings(progress=False, isolate=False, repeats=1, throughput_texts=0, timing_texts=8)
    fusion = Fusion("bm25+length", ("bm25", "length"))
    report = el.evaluate(["bm25", "length"], ["seed", "traps-zh"], settings, fusions=[fusion])
    for name in ("seed", "traps-zh"):
        dataset = el.load_dataset(name)
        expected = rrf([report.scores[("bm25", name)], report.scores[("length", name)]])
        np.testing.assert_allclose(report.scores[(fusion.name, name)], expected)
        ours = report.per_query[(report.per_query["model"] == fusion.name) & (report.per_query["dataset"] == name)]
        pd.testing.assert_frame_equal(ours.reset_index(drop=True), per_query_table(dataset, fusion.name, scores=expected))
    summary = report.summary().set_index(["model", "dataset"])
    row = summary.loc[(fusion.name, "traps-zh")]
    assert row["status"] == "ok" and row["backend"] == "fusion" and row["stage"] == "fusion rrf k=60 of bm25, length"
    assert np.isnan(row["latency_median_s"]) and np.isnan(row["texts_per_s"])  # no encoding
    assert row["top1_low"] <= row["top1"] <= row["top1_high"] and row["n_queries"] == 208
    cmp = report.comparisons()
    assert ((cmp["model_a"] == "bm25") & (cmp["model_b"] == fusion.name)).any()
    assert set(report.by_category()["model"]) >= {fusion.name}
    out = report.to_dir(tmp_path / "out")
    assert (el.Report.from_dir(out).summary()["model"] == fusion.name).sum() == 2


def test_fusion_needs_the_kept_matrices_and_its_members() -> None:
    settings = el.RunSettings(progress=False, isolate=False, repeats=1, throughput_texts=0, timing_texts=8)
    with pytest.raises(ConfigError, match="keep_scores=100"):
        el.evaluate(["bm25", "length"], ["seed"], settings, keep_scores=100, fusions=[Fusion("f", ("bm25", "length"))])
    with pytest.raises(ConfigError, match=r"needs \['bm25-x'\]"):
        el.evaluate(["bm25", "length"], ["seed"], settings, fusions=[Fusion("f", ("bm25-x", "length"))])


def test_a_failed_member_fails_the_fused_row() -> None:
    from embedlab.models import get_model

    settings = el.RunSettings(progress=False, isolate=False, repeats=1, throughput_texts=0, timing_texts=8)
    broken = get_model("multilingual-e5-small").with_options(name="broken", backend="embedlab.nowhere:Missing")
    report = el.evaluate(["bm25", broken], ["seed"], settings, fusions=[Fusion("f", ("bm25", "broken"))])
    runs = report.runs.set_index("model")
    assert runs.loc["broken", "status"] == "failed"
    assert runs.loc["f", "status"] == "failed" and "member 'broken'" in runs.loc["f", "error"]
    assert "f" not in set(report.per_query["model"])


# ---- end to end: the real CLI in a subprocess, the bundled CPU models ------------------


def _outside_rrf_top1(dataset: el.Dataset, matrices: list[np.ndarray], k: float = 60.0) -> list[set[str]]:
    """Per query, the documents with the highest RRF score, computed with scipy's ranks
    (ties share the worst rank of their group), not embedlab's."""
    from scipy.stats import rankdata

    fused = sum(1.0 / (k + rankdata(-m, method="max", axis=1)) for m in matrices)
    best = fused.max(axis=1, keepdims=True)
    return [{dataset.doc_ids[j] for j in np.flatnonzero(row)} for row in np.isclose(fused, best, rtol=0, atol=1e-12)]


def _cached_arrays(cache: Path, model: str, dataset: str) -> dict[str, np.ndarray]:
    """The arrays a run stored in the embedding cache for one model and data set, read with
    numpy (query/document embeddings, or a lexical model's scores)."""
    metas = []
    for path in cache.rglob("meta.json"):
        meta = json.loads(path.read_text(encoding="utf-8"))
        metas += [path] if (meta["model_name"], meta["dataset"]) == (model, dataset) else []
    assert len(metas) == 1, f"{model} on {dataset}: {len(metas)} cache entries"
    return {f.stem: np.load(f, allow_pickle=False) for f in metas[0].parent.glob("*.npy")}


def test_cli_fuse_writes_a_third_row_whose_top1_is_the_rrf(embedlab_cli, tmp_path: Path) -> None:
    cache, out = tmp_path / "cache", tmp_path / "x"
    args = ["-m", "bm25", "-m", "multilingual-e5-small", "-d", "traps-zh", "--repeats", "1", "--throughput-texts", "0", "--cache-dir", str(cache)]
    proc = embedlab_cli("run", *args, "--fuse", "bm25+multilingual-e5-small", "--out", str(out))
    assert proc.returncode == 0, proc.stderr[-3000:]
    summary = pd.read_csv(out / "summary.csv")
    assert list(summary["model"]) == ["bm25", "multilingual-e5-small", "bm25+multilingual-e5-small"]
    assert (summary["status"] == "ok").all() and summary["backend"].iloc[2] == "fusion"
    # the members' scores as the CLI's workers wrote them to the embedding cache, fused outside embedlab
    dataset = el.load_dataset("traps-zh")
    bm25 = _cached_arrays(cache, "bm25", "traps-zh")["scores"]
    e5 = _cached_arrays(cache, "multilingual-e5-small", "traps-zh")
    tops = _outside_rrf_top1(dataset, [bm25, cosine_scores(e5["query"], e5["document"])])
    per_query = pd.read_csv(out / "per_query.csv", dtype={"query_id": str, "top1_doc_id": str}, keep_default_na=False)
    fused = per_query[per_query["model"] == "bm25+multilingual-e5-small"].set_index("query_id").loc[dataset.query_ids]
    unique = [len(t) == 1 for t in tops]
    assert sum(unique) >= 150, "too many tied RRF maxima for the check to mean anything"
    for top1, top, one in zip(fused["top1_doc_id"], tops, unique):
        assert top1 in top if not one else top1 == next(iter(top))
    # and it differs from both members somewhere: a real third ranking
    for member in ("bm25", "multilingual-e5-small"):
        other = per_query[per_query["model"] == member].set_index("query_id").loc[dataset.query_ids]
        assert (other["top1_doc_id"].to_numpy() != fused["top1_doc_id"].to_numpy()).any()


# ---- notebook 14's views (embedlab.report.pipelines) ------------------------------------


def test_pipeline_plan_fuses_lexical_with_dense_and_skips_missing_weights(tmp_path: Path) -> None:
    from embedlab.models import MODELS
    from embedlab.report import pipelines

    plan = pipelines.pipeline_plan(["bm25", "use-multilingual-v3", "multilingual-e5-small"], reranker=f"qwen3-reranker-0.6b={tmp_path}")
    assert [f.name for f in plan.fusions][:3] == ["bm25+use-multilingual-v3", "bm25+multilingual-e5-small", "use-multilingual-v3+multilingual-e5-small"]
    assert all(f.method == "rrf" and f.k == 60 for f in plan.fusions)
    assert [r.name for r in plan.reranks][-1] == "bm25+use-multilingual-v3+qwen3-reranker-0.6b"  # a folder that exists: configured
    missing = pipelines.pipeline_plan(["bm25", "multilingual-e5-small"], reranker=f"qwen3-reranker-0.6b={tmp_path / 'none'}")
    assert missing.reranks == () and ("qwen3-reranker-0.6b" in {name for name, _ in missing.skipped})
    note = pipelines.skipped_note(missing)
    assert "does not exist" in note and "huggingface-cli download Qwen/Qwen3-Reranker-0.6B" in note and "Error" not in note
    if pipelines.weights_missing(MODELS["bge-m3"]):  # no BGE-M3 weights here: its four rows are skipped, with the reason
        assert {"bge-m3", "bge-m3-sparse", "bge-m3-colbert", "bge-m3-hybrid"} <= {name for name, _ in missing.skipped}
        assert "bge-m3" not in [s.name for s in missing.models]


def test_category_tests_pair_each_pipeline_with_its_base() -> None:
    from embedlab.report import pipelines

    settings = el.RunSettings(progress=False, isolate=False, repeats=1, throughput_texts=0, timing_texts=8)
    report = el.evaluate(["bm25", "length"], ["traps-zh"], settings, fusions=[Fusion("bm25+length", ("bm25", "length"))])
    assert pipelines.baselines(report) == [("bm25+length", "bm25"), ("bm25+length", "length")]
    tests = pipelines.category_tests(report)
    overall = tests[tests["category"] == "all"].set_index("model_b")
    for base in ("bm25", "length"):
        expected = report.compare("bm25+length", base, "traps-zh")
        assert overall.loc[base, "diff"] == pytest.approx(expected.diff) and overall.loc[base, "p_value"] == pytest.approx(expected.p_value)
    assert set(tests["category"]) - {"all"} == set(el.load_dataset("traps-zh").categories.values())
    assert (tests["p_holm"] >= tests["p_value"] - 1e-12).all() and (tests.groupby("category")["n"].first().drop("all") == 26).all()
    note = pipelines.tests_note(tests)
    assert "`bm25+length` vs `bm25`" in note and f"{overall.loc['bm25', 'mean_a']:.3f}" in note
    kinds = pipelines.pipeline_kinds(report).set_index("model")["kind"]
    assert kinds["bm25+length"] == "fusion" and kinds["bm25"] == "lexical (BM25)"
