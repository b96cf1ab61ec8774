"""End to end on the bundled models: `embedlab run` writes every file, with a BM25 row and
confidence intervals; a failing model is reported and the others finish."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

import embedlab as el
from embedlab.models import ModelSpec
from embedlab.evaluation.results import SUMMARY_COLUMNS, Report
from tests.tiers import tier

ROOT = Path(__file__).resolve().parents[1]




@pytest.fixture(scope="module")
@tier("e2e")
def seed_run(embedlab_cli, tmp_path_factory) -> Path:
    out = tmp_path_factory.mktemp("run") / "out"
    proc = embedlab_cli("run", "-m", "bm25", "-m", "use-multilingual-v3", "-m", "multilingual-e5-small", "-d", "seed", "-d", "traps-zh", "--out", str(out), "--repeats", "5", "--throughput-texts", "300")
    assert proc.returncode == 0, proc.stderr[-3000:]
    return out


def test_run_writes_every_file(seed_run: Path) -> None:
    for name in ("summary.csv", "per_query.csv", "by_category.csv", "run.json", "runs.csv", "comparisons.csv"):
        assert (seed_run / name).exists(), name
    summary = pd.read_csv(seed_run / "summary.csv")
    assert set(SUMMARY_COLUMNS) <= set(summary.columns)
    assert len(summary) == 6 and (summary["status"] == "ok").all()
    assert {"bm25", "use-multilingual-v3", "multilingual-e5-small"} == set(summary["model"])
    assert set(summary["dataset"]) == {"seed", "traps-zh"}
    assert (summary["top1_low"] <= summary["top1"]).all() and (summary["top1"] <= summary["top1_high"]).all()
    traps = summary[summary["dataset"] == "traps-zh"]
    assert (traps["n_queries"] >= 96).all()
    assert (traps["top1_high"] - traps["top1_low"] > 0).any()  # real intervals, not points
    dense = summary[summary["model"] != "bm25"]
    assert set(dense["dim"]) == {512, 384}
    assert (summary["texts_per_s"] > 0).all() and (summary["host_rss_peak_gib"] > 0).all()


def test_per_query_and_categories(seed_run: Path) -> None:
    per_query = pd.read_csv(seed_run / "per_query.csv", keep_default_na=False)
    for column in ("model", "dataset", "query_id", "category", "rank", "top1_doc_id", "margin", "winner_kind"):
        assert column in per_query.columns
    wrong = per_query[per_query["rank"] > 1]
    assert (wrong["winner_kind"] != "").all() and (wrong["winner_kind"] != "answer").all()
    right = per_query[per_query["rank"] == 1]
    assert (right["winner_kind"] == "").all()
    assert (np.sign(per_query["margin"]) > 0).equals(per_query["rank"] == 1)
    by_cat = pd.read_csv(seed_run / "by_category.csv")
    assert by_cat.groupby(["model", "dataset"]).size().min() == 8


def test_run_json_records_provenance(seed_run: Path) -> None:
    meta = json.loads((seed_run / "run.json").read_text(encoding="utf-8"))
    assert meta["datasets"]["seed"] == el.load_dataset("seed").fingerprint()
    assert "numpy" in meta["environment"]["packages"]
    assert meta["environment"]["hardware"]["cores"] >= 1
    assert meta["config"]["settings"]["repeats"] == 5


def test_report_reads_back(seed_run: Path) -> None:
    report = Report.from_dir(seed_run)
    again = report.summary()
    written = pd.read_csv(seed_run / "summary.csv")
    np.testing.assert_allclose(again["top1_low"].to_numpy(float), written["top1_low"].to_numpy(float))
    assert "<table" in report._repr_html_()


def test_unseen_beir_folder_runs_with_no_code_change(embedlab_cli, tmp_path: Path) -> None:
    folder = tmp_path / "my-set"
    el.load_dataset("seed").to_beir(folder)
    (folder / "meta.json").unlink()  # a plain BEIR folder, as mteb/BEIR would write it
    out = tmp_path / "out"
    proc = embedlab_cli("run", "-m", "bm25", "-d", str(folder), "--out", str(out), "--repeats", "5")
    assert proc.returncode == 0, proc.stderr[-2000:]
    per_query = pd.read_csv(out / "per_query.csv", keep_default_na=False)
    assert set(per_query["dataset"]) == {"my-set"}
    assert per_query["category"].nunique() == 8


@pytest.mark.integration
def test_failing_model_is_reported_and_others_finish() -> None:
    broken = ModelSpec(name="broken", backend="embedlab.models.backends.bundled:NoSuchBackend")
    report = el.evaluate([broken, "bm25"], ["seed"], el.RunSettings(progress=False, repeats=5))
    runs = report.runs.set_index("model")
    assert runs.loc["broken", "status"] == "failed"
    assert "NoSuchBackend" in runs.loc["broken", "error"]
    assert runs.loc["bm25", "status"] == "ok"
    assert set(report.per_query["model"]) == {"bm25"}


@pytest.mark.integration
def test_crashing_worker_is_reported(tmp_path: Path) -> None:
    crash = ModelSpec(name="crash", backend="tests.crashing_backend:CrashBackend")
    report = el.evaluate([crash, "bm25"], ["seed"], el.RunSettings(progress=False))
    runs = report.runs.set_index("model")
    assert runs.loc["crash", "status"] == "failed" and "crashed" in runs.loc["crash", "error"]
    assert runs.loc["bm25", "status"] == "ok"


def test_cli_lists_models_and_datasets(embedlab_cli) -> None:
    models = embedlab_cli("models")
    assert models.returncode == 0 and "qwen3-embedding-0.6b" in models.stdout and "bm25" in models.stdout
    datasets = embedlab_cli("datasets")
    assert datasets.returncode == 0 and "traps-zh" in datasets.stdout


def test_cli_config_and_bad_input_exit_codes(embedlab_cli, tmp_path: Path) -> None:
    config = tmp_path / "c.yaml"
    config.write_text("models: [bm25]\ndatasets: [seed]\nsettings: {repeats: 5}\nout: ${EMBEDLAB_TEST_OUT:-" + str(tmp_path / "cfg-out") + "}\n", encoding="utf-8")
    proc = embedlab_cli("run", "--config", str(config))
    assert proc.returncode == 0, proc.stderr
    assert (tmp_path / "cfg-out" / "summary.csv").exists()
    bad = tmp_path / "bad.jsonl"
    bad.write_text('{"id": "x", "text": "t", "answer": "a"}\n{"id": "x", "text": "t", "answer": "b"}\n', encoding="utf-8")
    proc = embedlab_cli("run", "-m", "bm25", "-d", str(bad), "--out", str(tmp_path / "never"))
    assert proc.returncode == 2
    assert "bad.jsonl, line 2" in proc.stderr and "duplicate query id" in proc.stderr
    assert not (tmp_path / "never").exists()
