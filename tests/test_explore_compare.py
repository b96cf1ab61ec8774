"""The explorer's additions: the language switch of both explorers, two models side by side
on one query, the PCA map of a category per model and the export of failures as a trap
file. Unit tests run two fake encoders (tests/fake_encoders.py: vectors seeded by the text,
so the two models disagree) and the `length` cue (a scorer: no embedding) on 12 traps-zh
queries and on the seed; the export is also checked on a real run (bm25 + e5-small) with
`embedlab lint` and `embedlab run` on the written file."""

from __future__ import annotations

import json
import os
import re
from dataclasses import replace
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import yaml

pytest.importorskip("ipywidgets")

from embedlab import explore
from embedlab.data.datasets import load_dataset
from embedlab.models import get_model
from embedlab.report.lang import LANGS
from tests.fake_encoders import FakeEncoder, fake_spec
from tests.test_explore import small_run  # noqa: F401 - the real run (bm25 + e5-small), a fixture

A, B, CUE = "fake-a", "fake-b", "length"


def _specs():
    other = replace(fake_spec(B), prompts={"query": "q: {text}", "document": "d: {text}"}, dim=48, mrl_min_dim=None)
    return [fake_spec(A), other, get_model(CUE)]


def _evaluate(dataset, cache):
    from embedlab.evaluation import evaluate
    from embedlab.types import RunSettings

    settings = RunSettings(repeats=1, timing_texts=2, warmup_texts=1, throughput_texts=0, isolate=False,
                           progress=False, cache_dir=str(cache))
    return evaluate(_specs(), [dataset], settings)


@pytest.fixture(scope="module")
def fake_run(tmp_path_factory):
    """fake-a, fake-b and the length cue on 12 traps-zh queries, in this process."""
    from embedlab.report import analysis

    sub = analysis.subsample(load_dataset("traps-zh"), analysis.Sample(12, 48), seed=0)
    return _evaluate(sub, tmp_path_factory.mktemp("cache")), sub


def _text(page: str) -> str:
    """What a page shows: its text without tags and attributes."""
    return re.sub(r"<[^>]*>", " ", page)


def _row(report, model, query_id):
    pq = report.per_query
    return pq[(pq["model"] == model) & (pq["query_id"] == query_id)].iloc[0]


def _disagreeing_query(report, sub) -> str:
    """A query on which fake-a and fake-b put different documents first."""
    for q in sub.query_ids:
        if _row(report, A, q)["top1_doc_id"] != _row(report, B, q)["top1_doc_id"]:
            return q
    raise AssertionError("the two fake models agree on every query: no disagreement to show")


# ---- language ----------------------------------------------------------------------------------


def test_every_label_has_both_languages_and_lang_picks_one() -> None:
    for key, (zh, en) in explore.TEXTS.items():
        assert zh.strip() and en.strip() and zh != en or key in {"+ document"}, key
    assert explore.say("margin", "zh") == "差距" and explore.say("margin", "en") == "margin"
    assert explore.say("margin", "both") == "差距 / margin"
    assert explore.say("only answer first", "en", model="bm25") == "only bm25 puts the answer first"
    with pytest.raises(ValueError, match="lang: expected one of zh, en, both"):
        explore.say("margin", "fr")


def test_the_trap_explorer_speaks_the_chosen_language(tmp_path: Path) -> None:
    seen = {}
    for lang in LANGS:
        ex = explore.trap([CUE], query="苹果手机", documents=[("iPhone 是苹果公司的手机", True), "苹果"], lang=lang,
                          cache_dir=tmp_path)
        seen[lang] = ex
        assert ex.query_box.description == explore.say("query", lang)
        assert ex.add_button.description == explore.say("+ document", lang)
        assert ex.rows[0].children[0].description == explore.say("answer", lang)
        page = ex.static_html()
        assert explore.say("static trap", lang) in page and f"{explore.say('margin', lang)} " in ex.bars.value
    shown = {lang: _text(ex.bars.value) for lang, ex in seen.items()}
    assert "差距" not in shown["en"] and "margin" not in shown["zh"] and "bars from" not in shown["zh"]
    assert "差距" in shown["both"] and "margin" in shown["both"]
    assert "[答案 ✓]" in shown["zh"] and "[answer ✓]" in shown["en"] and "[答案 / answer ✓]" in shown["both"]
    assert "答案" in seen["zh"].rows[0].children[2].value and "[答案 ✓]" in seen["zh"].static_html()  # the kind beside a box
    for ex in seen.values():  # the data keep the kind itself: colours, summary and exports read it
        assert [c.kind for c in ex.candidates] == ["answer", "candidate"]
        assert set(ex.scores()["kind"]) == {"answer", "candidate"} and set(ex.summary()["winner_kind"]) <= {"answer", "candidate"}
    outcome = seen["zh"].summary()["outcome"].iloc[0]  # the numbers stay English values; the page translates
    assert outcome in {"answer first", "distractor first", "tie"} and explore.say(outcome, "zh") in seen["zh"].bars.value
    with pytest.raises(ValueError, match="lang"):
        explore.trap([CUE], query="q", documents=["d"], lang="de", cache_dir=tmp_path)


def test_the_results_explorer_speaks_the_chosen_language(fake_run) -> None:
    report, sub = fake_run
    for lang in LANGS:
        ex = explore.results(report, [sub], lang=lang, model=A, compare=B)
        labels = [b.description for b in (ex.dataset_box, ex.model_box, ex.compare_box, ex.category_box,
                                          ex.outcome_box, ex.query_box, ex.export_button)]
        keys = ["data set", "model", "compare with", "category", "outcome", "query", "export"]
        assert labels == [explore.say(k, lang) for k in keys]
        detail = ex.detail.value
        assert explore.say("answer at rank", lang) in detail and explore.say("disagree note", lang) in detail
        assert explore.say("static results", lang) in ex.static_html()
    assert "名次" not in explore.results(report, [sub], lang="en", model=A, compare=B).detail.value
    shown = _text(explore.results(report, [sub], lang="zh", model=A, compare=B).detail.value)
    assert "margin" not in shown and "rank" not in shown and "名次" in shown
    zh = explore.results(report, [sub], lang="zh", model=A, outcome="lost")
    assert [label for label, _ in zh.outcome_box.options] == ["全部", "答对", "答错", "并列"]
    assert zh.outcome_box.label == "答错" and set(zh.table()["outcome"]) <= {"lost"}  # labels shown, values compared
    assert "查询编号" in zh.table_html.value and "query_id" not in zh.table_html.value
    # values shown in the language too: outcomes in the query list, kinds in the tables and side by side
    assert all(" · 答错 · " in label for label, _ in zh.query_box.options) and zh.query_box.options
    kinds = set(zh.table()["winner_kind"].dropna()) - {""}
    assert kinds and not any(f"<td>{k}</td>" in zh.table_html.value for k in kinds)
    side = _text(explore.results(report, [sub], lang="zh", model=A, compare=B).detail.value)
    assert "答案" in side and not re.search(r"\b(answer|topical|other-sense|literal)\b", side)


# ---- side by side ------------------------------------------------------------------------------


def test_side_by_side_shows_both_rankings_their_disagreements_and_margins(fake_run) -> None:
    report, sub = fake_run
    q = _disagreeing_query(report, sub)
    view = explore.side_by_side(report, A, B, q, datasets={sub.name: sub}, k=3, lang="en")
    frame = view.frame()
    assert list(frame["model"].unique()) == [A, B]
    for model, other in ((A, B), (B, A)):
        mine = frame[frame["model"] == model]
        ranked = explore.ranked_documents(report, sub, model, q, 3)
        assert list(mine["doc_id"]) == list(ranked["doc_id"]) and list(mine["rank"]) == list(ranked["rank"])
        everywhere = explore.ranked_documents(report, sub, other, q, len(sub.doc_ids)).set_index("doc_id")["rank"]
        assert list(mine["other_rank"]) == [everywhere[d] for d in mine["doc_id"]]
        assert mine["answer"].tolist() == (mine["kind"] == "answer").tolist() and mine["answer"].any()
    answer_first_once = frame["answer"] & ((frame["rank"] == 1) != (frame["other_rank"] == 1))
    assert (frame["disagrees"] == ((frame["other_rank"] > 3) | answer_first_once)).all()
    page = view.html()
    assert page.count(f'class="{explore.DISAGREE_CLASS}') == int(frame["disagrees"].sum()) > 0
    assert "embedlab-first-differs" in page  # their first documents differ: both first rows marked
    margins = view.margins()
    for model in (A, B):
        assert margins[model] == pytest.approx(_row(report, model, q)["margin"])
        assert f"margin {margins[model]:+.3f}" in page
    first = {m: bool(_row(report, m, q)["top1"]) for m in (A, B)}
    expected = ("both rank the answer first" if all(first.values()) else "neither ranks the answer first"
                if not any(first.values()) else f"only {A if first[A] else B} puts the answer first")
    assert view.verdict() == expected and expected in page
    assert view._repr_html_() == page


def test_the_results_explorer_shows_the_two_models_side_by_side_when_compare_is_chosen(fake_run) -> None:
    report, sub = fake_run
    ex = explore.results(report, [sub], model=A)
    assert "embedlab-side-by-side" not in ex.detail.value
    ex.compare_box.value = B
    _, q = ex.query_box.value
    assert f'class="embedlab-side-by-side" data-query="{q}"' in ex.detail.value
    assert 'class="embedlab-heatmap"' in ex.detail.value
    with pytest.raises(ValueError, match="in 0 data sets"):
        explore.side_by_side(report, A, B, "no-such-query", datasets={sub.name: sub})


# ---- the map -----------------------------------------------------------------------------------


def test_pca_2d_matches_the_covariance_eigenvectors() -> None:
    rng = np.random.default_rng(0)
    points = rng.standard_normal((40, 6)) @ np.diag([5.0, 2.0, 1.0, 0.5, 0.2, 0.1])
    coords, explained = explore.pca_2d(points)
    values, vectors = np.linalg.eigh(np.cov(points, rowvar=False))
    order = np.argsort(values)[::-1]
    np.testing.assert_allclose(coords.var(axis=0, ddof=1), values[order][:2], rtol=1e-9)
    np.testing.assert_allclose(explained, values[order][:2] / values.sum(), rtol=1e-9)
    centred = points - points.mean(axis=0)
    for i in range(2):  # the same axis up to its sign
        np.testing.assert_allclose(np.abs(coords[:, i]), np.abs(centred @ vectors[:, order[i]]), atol=1e-9)
    line = np.outer(np.arange(5.0), [1.0, 2.0, 3.0])
    assert explore.pca_2d(line)[1][0] == pytest.approx(1.0)
    with pytest.raises(ValueError, match="at least 2 rows"):
        explore.pca_2d(np.ones((1, 3)))


def test_the_map_reads_the_runs_embeddings_from_the_cache_and_says_a_scorer_has_none(fake_run) -> None:
    report, sub = fake_run
    encodes = FakeEncoder.calls["encode"]
    q_emb, d_emb = explore.run_embeddings(report, sub, A)
    assert FakeEncoder.calls["encode"] == encodes  # read back from the run's cache: no model ran
    model = explore.load_model(fake_spec(A))
    np.testing.assert_allclose(q_emb, model.encode(sub.query_texts(), "query", instruction=sub.instruction), atol=1e-6)
    np.testing.assert_allclose(d_emb, model.encode(sub.document_texts(), "document"), atol=1e-6)
    assert explore.run_embeddings(report, sub, CUE) is None
    scores = report.scores[(A, sub.name)]
    np.testing.assert_allclose(q_emb @ d_emb.T, scores, atol=1e-5)  # the vectors behind the run's scores


def test_the_map_has_one_panel_per_model_and_a_line_per_answer_and_per_winning_distractor(fake_run) -> None:
    import matplotlib.pyplot as plt

    report, sub = fake_run
    category = max(set(sub.categories.values()), key=lambda c: list(sub.categories.values()).count(c))
    queries = [q for q in sub.query_ids if sub.categories[q] == category]
    points, links, explained = explore.map_frames(report, sub, category, A, explore.run_embeddings(report, sub, A))
    assert list(points.loc[points["point"] == "query", "id"]) == queries
    judged = {d for q in queries for d in sub.qrels[q]}
    assert judged <= set(points.loc[points["point"] == "document", "id"])
    wrong = {q for q in queries if _row(report, A, q)["top1"] == 0}
    assert set(links.loc[links["winner"].notna(), "query_id"]) == wrong
    assert all(_row(report, A, q)["top1_doc_id"] == w for q, w in zip(links["query_id"], links["winner"]) if isinstance(w, str))
    assert 0 < explained[1] <= explained[0] <= 1
    fig = explore.semantic_map(report, category, datasets=[sub], lang="en")
    panels = [ax for ax in fig.axes if ax.get_visible()]
    assert [ax.get_title() for ax in panels] == [A, B, CUE]
    solid = [ln for ln in panels[0].get_lines() if ln.get_linestyle() == "-"]
    dashed = [ln for ln in panels[0].get_lines() if ln.get_linestyle() == "--"]
    assert len(solid) == len(queries) and len(dashed) == len(wrong)
    assert getattr(panels[2], "embedlab_note", "") == f"{CUE}:\nhas no embedding (it scores words): no map"
    assert "map (PCA, 2-D)" in fig._suptitle.get_text() and "语义地图" not in fig._suptitle.get_text()
    plt.close(fig)


# ---- export ------------------------------------------------------------------------------------


def test_export_writes_the_selected_failures_as_a_trap_file_the_loader_reads(fake_run, tmp_path: Path) -> None:
    report, sub = fake_run
    path = explore.export_failures(report, tmp_path / "a.yaml", A, datasets={sub.name: sub})
    wrong = [q for q in sub.query_ids if _row(report, A, q)["top1"] == 0]
    assert wrong, "fake-a gets every query right: nothing to export"
    loaded = load_dataset(path)
    assert loaded.query_ids == wrong
    for q in wrong:
        assert loaded.queries[q] == sub.queries[q] and loaded.categories[q] == sub.categories[q]
        original = sorted(sub.corpus[d] for d in sub.qrels[q])
        assert sorted(loaded.corpus[d] for d in loaded.qrels[q]) == original
        answer = next(d for d, g in sub.qrels[q].items() if g > 0)
        assert loaded.corpus[f"{q}-a"] == sub.corpus[answer]
    header = yaml.safe_load(path.read_text(encoding="utf-8"))
    assert A in header["description"] and sub.name in header["description"] and A in header["source"]
    assert header["license"] == sub.meta.license and loaded.instruction == sub.instruction
    # filtered as in the explorer: the lost queries of one category against fake-b
    category = sub.categories[wrong[0]]
    rows = explore.failures(report, A, {sub.name: sub}, compare=B, category=category, outcome="lost")
    assert set(rows["query_id"]) == {q for q in wrong if sub.categories[q] == category and _row(report, B, q)["top1"]}
    with pytest.raises(ValueError, match="no failure"):
        explore.export_failures(report, tmp_path / "none.yaml", A, outcome="won", datasets={sub.name: sub})


def test_the_export_button_writes_what_the_filters_select(fake_run, tmp_path: Path) -> None:
    report, sub = fake_run
    ex = explore.results(report, [sub], model=A, export_path=tmp_path / "button.yaml", lang="en")
    ex.outcome_box.value = "lost"
    ex.export_button.click()
    loaded = load_dataset(tmp_path / "button.yaml")
    assert loaded.query_ids == list(ex.table()["query_id"])
    assert f"exported: {len(loaded.query_ids)} failures to" in ex.export_status.value
    ex.outcome_box.value = "won"
    ex.export_button.click()
    assert "no failure" in ex.export_status.value  # said beside the button, nothing silently written


def test_export_of_the_seed_keeps_the_documents_ranked_above_the_answer(tmp_path: Path) -> None:
    seed = load_dataset("seed")
    report = _evaluate(seed, tmp_path / "cache")
    path = explore.export_failures(report, tmp_path / "seed.yaml", B, datasets={"seed": seed})
    content = yaml.safe_load(path.read_text(encoding="utf-8"))
    wrong = [q for q in seed.query_ids if _row(report, B, q)["top1"] == 0]
    assert [r["id"] for r in content["queries"]] == wrong
    for record in content["queries"]:
        ranked = explore.ranked_documents(report, seed, B, record["id"], 3)
        answer_rank = ranked.loc[ranked["kind"] == "answer", "rank"].min()
        above = ranked[ranked["rank"] < answer_rank]
        assert [d["text"] for d in record["distractors"]] == list(above["document"])
        assert [d["kind"] for d in record["distractors"]] == [k or "unjudged" for k in above["kind"]]
    assert load_dataset(path).query_ids == wrong


def test_failures_of_a_real_run_pass_embedlab_lint_and_embedlab_run(small_run, embedlab_cli, tmp_path: Path) -> None:  # noqa: F811
    report, sub, cache = small_run
    path = explore.export_failures(report, tmp_path / "bm25-lost.yaml", "bm25", datasets={sub.name: sub})
    n = len(explore.failures(report, "bm25", datasets={sub.name: sub}))
    assert n > 0
    lint = embedlab_cli("lint", str(path), "--format", "json")
    assert lint.returncode in (0, 1), lint.stderr  # 1: a cue flagged, which is a finding, not a refusal
    found = json.loads(lint.stdout)
    name = "traps-zh-12q-48d-bm25-failures"  # the subsample traps-zh[12q/48d] as a slug, then the model
    assert found["n_queries"] == n and found["dataset"] == name
    out = tmp_path / "run"
    run = embedlab_cli("run", "-m", "bm25", "-d", str(path), "--out", str(out), "--repeats", "1",
                       env={**os.environ, "EMBEDLAB_CACHE_DIR": str(cache)})
    assert run.returncode == 0, run.stderr
    summary = pd.read_csv(out / "summary.csv")
    row = summary[summary["model"] == "bm25"].iloc[0]
    assert row["status"] == "ok" and row["n_queries"] == n and row["dataset"] == name


def test_a_results_explorer_without_an_export_path_has_no_file_box_or_button(fake_run) -> None:
    """As served to a class (`embedlab teach`): no widget that writes a file on the server."""
    report, sub = fake_run

    def widgets(node) -> list:
        return [node, *(w for child in getattr(node, "children", ()) for w in widgets(child))]

    served = widgets(explore.results(report, [sub], model=A, export_path=None).widget)
    ex = explore.results(report, [sub], model=A)
    full = widgets(ex.widget)
    assert any(w is ex.export_button for w in full) and any(w is ex.export_path for w in full)
    assert not any(type(w).__name__ in ("Button", "Text") for w in served)

