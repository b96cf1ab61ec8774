"""The results folder explains itself: every column of its CSV files is in the data dictionary
(columns.csv, docs/columns.md), whole-number columns are written as whole numbers,
per_query.csv carries the query and the first-ranked document's text, and report.md's
tables are Markdown tables. On a real run (BM25 and a length cue on the seed, in process)."""

from __future__ import annotations

from pathlib import Path

import pandas as pd
import pytest

import embedlab as el
from embedlab.evaluation import columns
from tests.tiers import tier

ROOT = Path(__file__).resolve().parents[1]
CSV_FILES = ("summary.csv", "per_query.csv", "by_category.csv", "comparisons.csv", "runs.csv")


@pytest.fixture(scope="module")
@tier("integration")
def results(tmp_path_factory) -> Path:
    run = el.evaluate(["bm25", "length-judged"], ["seed"], el.RunSettings(repeats=1, timing_texts=8, isolate=False, progress=False))
    return run.to_dir(tmp_path_factory.mktemp("results"))


def test_every_column_written_is_in_the_dictionary(results: Path) -> None:
    described = pd.read_csv(results / "columns.csv")
    assert list(described.columns) == ["file", "column", "meaning", "unit"]
    for name in CSV_FILES:
        written = list(pd.read_csv(results / name, nrows=0).columns)
        assert written == described.loc[described["file"] == name, "column"].tolist(), name
    assert not (described["meaning"] == columns.UNDESCRIBED).any(), described[described["meaning"] == columns.UNDESCRIBED]
    assert described["meaning"].str.len().min() > 10 and described["unit"].notna().all()
    margin = described.loc[described["column"] == "mean_margin", "meaning"].iloc[0]
    assert "cosine" in margin and "BM25" in margin and "characters" in margin


def test_an_unknown_column_is_named() -> None:
    with pytest.raises(KeyError, match="summary.csv: column 'mystery'"):
        columns.dictionary({"summary.csv": ["model", "mystery"]})
    assert columns.dictionary({"summary.csv": ["mystery"]}, strict=False)["meaning"].tolist() == [columns.UNDESCRIBED]
    assert columns.describe("recall_at_7").unit == columns.SHARE and "first 7" in columns.describe("recall_at_7").meaning
    assert columns.describe("ndcg_at_10_high").meaning.startswith("upper end of the 95% interval of ndcg_at_10")


def test_one_type_per_column_and_texts_in_per_query(results: Path) -> None:
    frame = pd.read_csv(results / "summary.csv")
    lengths = frame["max_length"].dropna()
    assert lengths.empty or pd.api.types.is_integer_dtype(frame["max_length"])
    assert pd.api.types.is_integer_dtype(frame["n_queries"]) and pd.api.types.is_integer_dtype(pd.read_csv(results / "comparisons.csv")["wins"])
    assert frame["kv_cache_note"].isna().all()  # BM25 and the length cue hold no model: no KV-cache note
    per_query = pd.read_csv(results / "per_query.csv")
    seed = el.load_dataset("seed")
    first = per_query.iloc[0]
    assert first["query"] == seed.queries[str(first["query_id"])] and first["top1_document"] == seed.corpus[str(first["top1_doc_id"])]


def test_report_md_has_markdown_tables(results: Path) -> None:
    text = (results / "report.md").read_text(encoding="utf-8")
    assert "```" not in text
    lines = text.splitlines()
    header = lines.index(next(line for line in lines if line.startswith("| model | dataset | status |")))
    assert set(lines[header + 1].replace("|", "")) == {"-"} and lines[header + 2].startswith("| bm25 | seed | ok |")


def test_docs_columns_md_is_generated_from_the_dictionary() -> None:
    assert (ROOT / "docs" / "columns.md").read_text(encoding="utf-8") == columns.markdown(), "run: python -m embedlab.evaluation.columns > docs/columns.md"
