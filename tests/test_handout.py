"""`embedlab handout`: the rule that chooses a category's cases, the page's texts in zh / en /
both (unit tier: hand-made frames and cases, no model, no browser), and the pages computed
from the classroom models' trap run (through the embedding cache, as the notebooks make it)
and printed by Debian's Chromium through Playwright: each PDF has one or two A4 pages and
holds the chosen queries and the glossary in the requested language only (e2e tier)."""

from __future__ import annotations

import os
import re
from pathlib import Path

import pandas as pd
import pytest
from typer.testing import CliRunner

from embedlab.cli import app
from embedlab.data.categories import KIND_LABELS, get_category
from embedlab.teach import handout as ho
from tests.tiers import tier

CJK = re.compile(r"[\u4e00-\u9fff]")
ENGLISH_RUN = re.compile(r"\b[A-Za-z]{2,}(?:[ ,;:]+[A-Za-z]{2,}){3,}")  # four English words in a row
CATEGORIES = ("idiom", "antonym")
A4_POINTS = (595.28, 841.89)


def _row(model, query_id, top1, margin, kind="literal", dataset="traps-zh", category="idiom"):
    return {
        "model": model,
        "dataset": dataset,
        "query_id": query_id,
        "category": category,
        "top1": top1,
        "margin": margin,
        "best_wrong_kind": kind,
        "best_wrong_doc_id": f"{query_id}-{kind}",
    }


def _per_query(rows) -> pd.DataFrame:
    return pd.DataFrame([_row(*r) for r in rows])


# ---- the choice rule ----------------------------------------------------------------------


def test_most_models_fooled_first_then_largest_scaled_margin() -> None:
    """q1 fools both models; q2 and q3 one each. Raw margins would put q2 (BM25, -3.0) before
    q3 (cosine, -0.1); on each model's own scale q3 (-0.1 / 0.05) is far worse than q2
    (-3.0 / 10)."""
    frame = _per_query(
        [
            ("bm25", "q1", 0, -1.0),
            ("e5", "q1", 0, -0.01),
            ("bm25", "q2", 0, -3.0),
            ("e5", "q2", 1, 0.05),
            ("bm25", "q3", 1, 10.0),
            ("e5", "q3", 0, -0.1),
            ("bm25", "q4", 1, 10.0),
            ("e5", "q4", 1, 0.05),
            ("bm25", "x1", 0, -50.0, "literal", "traps-zh", "antonym"),  # another category: sets the scale only
            ("e5", "x1", 1, 0.05, "literal", "traps-zh", "antonym"),
        ]
    )
    ranked = ho.rank_queries(frame, "idiom")
    assert list(ranked["query_id"]) == ["q1", "q3", "q2", "q4"]
    assert list(ranked["missed"]) == [2, 1, 1, 0]
    q3 = ranked.iloc[1]
    assert (q3["model"], q3["margin"]) == ("e5", -0.1)
    assert q3["scaled"] == pytest.approx(-0.1 / 0.05)
    assert ranked.iloc[2]["scaled"] == pytest.approx(-3.0 / 10.0)  # median |margin| of bm25: 10


def test_cue_baselines_are_left_out() -> None:
    frame = _per_query([("e5", "q1", 1, 0.2), ("e5", "q2", 1, 0.1), ("length", "q1", 0, -30.0)])
    ranked = ho.rank_queries(frame, "idiom", exclude=["length"])
    assert list(ranked["query_id"]) == ["q2", "q1"]
    assert set(ranked["model"]) == {"e5"} and set(ranked["n_models"]) == {1}


def test_choice_covers_distractor_kinds_among_fooling_queries() -> None:
    frame = _per_query(
        [
            ("e5", "q1", 0, -0.3, "literal"),
            ("e5", "q2", 0, -0.2, "literal"),
            ("e5", "q3", 0, -0.1, "topical"),
            ("e5", "q4", 1, 0.01, "antonym"),  # a new kind, but no model fooled: not preferred
            ("e5", "q5", 1, 0.2, "literal"),
        ]
    )
    ranked = ho.rank_queries(frame, "idiom")
    assert list(ho.choose_queries(ranked, 2)["query_id"]) == ["q1", "q3"]
    assert list(ho.choose_queries(ranked, 3)["query_id"]) == ["q1", "q2", "q3"]
    assert list(ho.choose_queries(ranked, 4)["query_id"]) == ["q1", "q2", "q3", "q4"]


def test_choice_without_any_fooled_query_still_covers_kinds() -> None:
    frame = _per_query(
        [("e5", "q1", 1, 0.1, "literal"), ("e5", "q2", 1, 0.2, "literal"), ("e5", "q3", 1, 0.3, "topical")]
    )
    assert list(ho.choose_queries(ho.rank_queries(frame, "idiom"), 2)["query_id"]) == ["q1", "q3"]


def test_an_empty_category_gives_no_cases() -> None:
    frame = _per_query([("e5", "q1", 0, -0.1)])
    assert ho.choose_queries(ho.rank_queries(frame, "antonym"), 3).empty


def test_a_category_without_queries_is_an_error_naming_the_data_sets() -> None:
    from embedlab.data.datasets import load_dataset
    from embedlab.evaluation.results import Report

    report = Report(per_query=_per_query([("e5", "q1", 0, -0.1)]), runs=pd.DataFrame())
    with pytest.raises(ValueError, match="no query of trap category 'antonym' in the run \\(data sets: seed\\)"):
        ho.category_cases(report, [load_dataset("seed")], "antonym", 3)


# ---- the texts ----------------------------------------------------------------------------


def _pairs() -> list[ho.Pair]:
    return [
        *(p for entry in ho.GLOSSARY for p in entry),
        *ho.QUESTIONS,
        *ho.LABELS.values(),
        *ho.PARAGRAPHS.values(),
        *KIND_LABELS.values(),
        *ho.SCORE_UNITS.values(),
    ]


def test_every_text_is_a_chinese_english_pair() -> None:
    for zh, en in _pairs():
        assert CJK.search(zh), zh
        assert not CJK.search(en), en


def _case() -> ho.Case:
    models = ("bm25", "multilingual-e5-small")
    candidates = (
        ho.Candidate("a", "answer", "比喻做了多余的事，反而不恰当。", dict(zip(models, (1.0, 0.81)))),
        ho.Candidate(
            "b", "literal", "蛇本来没有脚，画上脚就不是蛇了。", dict(zip(models, (6.5, 0.86))), frozenset(models)
        ),
    )
    return ho.Case(
        dataset="traps-zh",
        query_id="idiom-99",
        query="画蛇添足是什么意思",
        answer=candidates[0].text,
        distractor=candidates[1].text,
        distractor_kind="literal",
        model="multilingual-e5-small",
        margin=-0.05,
        score_name="cosine similarity",
        fooled=models,
        n_models=2,
        candidates=candidates,
    )


def _visible_text(page: str) -> str:
    body = re.sub(r"<style>.*?</style>|<title>.*?</title>", "", page, flags=re.DOTALL)
    return " ".join(re.sub(r"<[^>]+>", " ", body).split())


def _texts(lang: str) -> list[str]:
    """The sentences every handout page shows, in one language (not the data, not the short
    term names that the Chinese glossary gives in English beside the Chinese)."""
    index = 0 if lang == "zh" else 1
    cat = get_category("idiom")
    pairs = [
        (cat.description_zh, cat.description_en),
        *(p for entry in ho.GLOSSARY for p in entry),
        *ho.QUESTIONS,
        *ho.PARAGRAPHS.values(),
    ]
    return [p[index] for p in pairs if len(p[index]) > 20]


@pytest.mark.parametrize("lang", ["zh", "en", "both"])
def test_page_speaks_the_requested_language_only(lang: str) -> None:
    import html as html_lib

    page = html_lib.unescape(
        _visible_text(ho.handout_html("idiom", [_case()], lang, ["bm25", "multilingual-e5-small"]))
    )
    case = _case()
    assert case.query in page and "★" in page
    for text in ho.GLOSSARY:
        assert ho.pick(*text[1], lang, separator=" ") in page
    for other in ("zh", "en"):
        for sentence in _texts(other):
            assert (sentence in page) == (lang in (other, "both")), (other, sentence)
    data = [case.query, case.answer, case.distractor, "画蛇添足", *(c.text for c in case.candidates)]
    without_data = page
    for text in data:
        without_data = without_data.replace(text, "")
    if lang == "en":
        assert not CJK.search(without_data), CJK.findall(without_data)[:10]
    if lang == "zh":
        assert not ENGLISH_RUN.search(without_data), ENGLISH_RUN.findall(without_data)[:5]


def test_verdict_names_the_fooled_models_and_the_margin_in_its_units() -> None:
    case = _case()
    assert ho.verdict(case, "en") == (
        "2 of 2 models rank another document above the answer (bm25, multilingual-e5-small); this distractor fooled "
        "multilingual-e5-small the most, margin -0.050 (cosine similarity)."
    )
    assert "余弦相似度" in ho.verdict(case, "zh") and "-0.050" in ho.verdict(case, "zh")
    calm = ho.Case(**{**case.__dict__, "fooled": (), "margin": 0.02})
    assert ho.verdict(calm, "en").startswith("All 2 models rank the answer first")


def test_score_table_marks_first_ranked_and_shades_each_column_on_its_own() -> None:
    table = ho.score_table(_case(), "en")
    assert table.count("★") == 2
    # within each column the higher score gets the darker cell
    assert ho._shade(6.5, 1.0, 6.5) == ho._shade(0.86, 0.81, 0.86)
    dark = float(re.search(r"hsl\(215, 40%, (\d+)%\)", ho._shade(1.0, 0.0, 1.0)).group(1))
    light = float(re.search(r"hsl\(215, 40%, (\d+)%\)", ho._shade(0.0, 0.0, 1.0)).group(1))
    assert dark < light


def test_index_links_each_page_and_its_pdf() -> None:
    page = ho.index_html(["idiom", "antonym"], "en", with_pdf=True)
    assert re.findall(r"href='([^']+)'", page) == ["idiom-en.html", "idiom-en.pdf", "antonym-en.html", "antonym-en.pdf"]
    assert "Idioms and allusions" in page and "成语" not in page


def test_without_a_pdf_engine_only_html_is_written(tmp_path: Path) -> None:
    pages = {ho.page_name("idiom", "zh"): ho.handout_html("idiom", [_case()], "zh", ["bm25"])}
    written = ho.write_handouts(pages, tmp_path, "zh", index=True, chromium=None)
    assert sorted(p.name for p in written) == ["idiom-zh.html", "index-zh.html"]
    assert "PDF" not in (tmp_path / "index-zh.html").read_text(encoding="utf-8")


def test_a_failed_print_writes_nothing(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    def fail(pages, chromium):
        raise RuntimeError("printing failed")

    monkeypatch.setattr(ho, "print_pdfs", fail)
    pages = {ho.page_name("idiom", "en"): ho.handout_html("idiom", [_case()], "en", ["bm25"])}
    with pytest.raises(RuntimeError, match="printing failed"):
        ho.write_handouts(pages, tmp_path / "out", "en", index=True, chromium="/usr/bin/chromium")
    assert not (tmp_path / "out").exists()


@pytest.mark.parametrize(
    ("args", "message"),
    [
        ([], "give --category NAME (repeatable) or --all"),
        (["--category", "idiom", "--all"], "give --category NAME (repeatable) or --all"),
        (["--category", "idioms"], "unknown trap category 'idioms'; known: homonym"),
        (["--category", "idiom", "--lang", "fr"], "lang: expected one of zh, en, both, got 'fr'"),
    ],
)
def test_cli_refuses_bad_choices_before_computing(args: list[str], message: str, tmp_path: Path) -> None:
    result = CliRunner().invoke(app, ["handout", *args, "--out", str(tmp_path / "h")])
    assert result.exit_code == 2, result.output
    assert message in result.output
    assert not (tmp_path / "h").exists()


# ---- computed from a real run, printed by Chromium (e2e) ----------------------------------


@pytest.fixture(scope="module")
@tier("e2e")
def run():
    """The classroom models on seed + traps-zh, computed once for the module (read from the
    embedding cache when an earlier run, a notebook or `make report`, computed it)."""
    from embedlab.explore import classroom_models
    from embedlab.report.runs import resolve_datasets, trap_report

    sets = resolve_datasets(None)
    return trap_report(classroom_models(None), sets, os.environ.get("EMBEDLAB_CACHE_DIR")), sets


@pytest.fixture(scope="module")
def printed(run, tmp_path_factory) -> tuple[Path, dict[str, list[ho.Case]]]:
    """The handouts of two categories in zh, en and both, printed to PDF by Chromium; the
    cases each shows."""
    chromium, why = ho.find_chromium()
    if chromium is None:
        if os.environ.get("EMBEDLAB_SKIP_BROWSER") == "1":
            pytest.skip(f"EMBEDLAB_SKIP_BROWSER=1 and {why}")
        pytest.fail(f"needs a PDF engine: {why}")
    report, sets = run
    out = tmp_path_factory.mktemp("handouts")
    cases = {}
    for lang in ("zh", "en", "both"):
        pages = ho.handout_pages(report, sets, CATEGORIES, lang)
        ho.write_handouts(pages, out, lang, index=False, chromium=chromium)
        for c in CATEGORIES:
            cases[ho.page_name(c, lang)] = ho.category_cases(report, sets, c, ho.N_CASES[lang])
    return out, cases


def _squeeze(text: str) -> str:
    return re.sub(r"\s+", "", text)


@pytest.mark.parametrize("lang", ["zh", "en", "both"])
@pytest.mark.parametrize("category", CATEGORIES)
def test_printed_handout_is_one_or_two_a4_pages_in_its_language(printed, category: str, lang: str) -> None:
    from pypdf import PdfReader

    out, cases = printed
    reader = PdfReader(out / ho.page_name(category, lang, "pdf"))
    assert 1 <= len(reader.pages) <= 2
    for page in reader.pages:
        assert (float(page.mediabox.width), float(page.mediabox.height)) == pytest.approx(A4_POINTS, abs=1.0)
    text = _squeeze("".join(page.extract_text() for page in reader.pages))
    chosen = cases[ho.page_name(category, lang)]
    assert len(chosen) == ho.N_CASES[lang]
    assert all(c.fooled for c in chosen)  # every bundled category has queries that fool a classroom model
    for case in chosen:
        assert _squeeze(case.query) in text
    for zh, en in (definition for _, definition in ho.GLOSSARY):
        assert (_squeeze(zh) in text) == (lang != "en"), zh
        assert (_squeeze(en) in text) == (lang != "zh"), en
    for zh, en in ho.QUESTIONS:
        assert (_squeeze(zh) in text) == (lang != "en"), zh
        assert (_squeeze(en) in text) == (lang != "zh"), en
    if lang == "zh":
        raw = " ".join(page.extract_text() for page in reader.pages)
        assert not ENGLISH_RUN.search(raw), ENGLISH_RUN.findall(raw)[:5]


def test_cli_all_writes_an_index_and_says_when_no_pdf_engine(run, tmp_path: Path, monkeypatch) -> None:
    """`embedlab handout --all` (the run comes back from the cache) with no PDF engine: every
    category's page and the index, and the console says that no PDF was written and why."""
    monkeypatch.setattr(ho, "find_chromium", lambda: (None, "no Chromium found (test)"))
    out = tmp_path / "handouts"
    result = CliRunner().invoke(app, ["handout", "--all", "--lang", "en", "--out", str(out)])
    assert result.exit_code == 0, result.output
    assert "no PDF written (no Chromium found (test)); HTML only" in result.output
    index = (out / "index-en.html").read_text(encoding="utf-8")
    links = re.findall(r"href='([^']+)'", index)
    assert len(links) == 8 and all((out / link).is_file() for link in links)
    assert not list(out.glob("*.pdf"))
