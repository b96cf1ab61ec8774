"""embedlab.explore without a browser: the trap explorer re-encodes only what changed and
its bars are the models' real cosines (and BM25 scores), the results explorer's filters
select the right queries, and both render as static HTML where no live kernel runs."""

from __future__ import annotations

import re
from pathlib import Path

import numpy as np
import pytest

pytest.importorskip("ipywidgets")

from embedlab import explore
from embedlab.data.datasets import load_dataset
from embedlab.models import get_model
from tests.tiers import tier

E5 = "multilingual-e5-small"


@pytest.fixture(scope="module")
@tier("integration")
def trap_explorer() -> explore.TrapExplorer:
    return explore.trap(["bm25", E5], "traps-zh", "homonym-01", memo=explore.EmbeddingMemo())


def test_an_edit_reencodes_only_the_edited_text(trap_explorer: explore.TrapExplorer) -> None:
    ex = trap_explorer
    n_docs = len(ex.candidates)
    assert ex.memo.encoded == {E5: 1 + n_docs}  # the query and each candidate once; BM25 encodes nothing
    original = ex.rows[1].children[1].value
    ex.rows[1].children[1].value = "这份简历的水分要靠背景调查来挤干"  # what typing in the box does
    assert ex.memo.encoded[E5] == 2 + n_docs
    ex.query_box.value = "如何判断简历是否夸大"
    assert ex.memo.encoded[E5] == 3 + n_docs
    ex.rows[1].children[1].value = original  # seen before: no encode
    ex.set_answer(2, True)  # ticking an answer changes margins, not embeddings
    ex.add_document("")
    ex.remove_document(len(ex.rows) - 1)
    ex.load_trap("traps-zh", "homonym-01")
    assert ex.memo.encoded[E5] == 3 + n_docs
    assert set(ex.scores()["model"]) == {"bm25", E5}


def test_bars_and_margins_are_the_models_scores(trap_explorer: explore.TrapExplorer) -> None:
    ex = trap_explorer
    ex.load_trap("traps-zh", "idiom-03")
    query, candidates = ex.query, ex.candidates
    texts = [c.text for c in candidates]
    answer = np.array([c.answer for c in candidates])
    spec = get_model(E5)
    model = explore.load_model(spec)
    ds = load_dataset("traps-zh")
    q = model.encode([query], "query", instruction=ds.instruction)[0]
    d = model.encode(texts, "document", instruction=ds.instruction)
    cosine = d @ q / (np.linalg.norm(d, axis=1) * np.linalg.norm(q))
    bm25 = explore.load_model(get_model("bm25"))
    bm25.index(texts)
    lexical = bm25.score([query])[0]
    frame = ex.scores()
    for name, expected in ((E5, cosine), ("bm25", lexical)):
        sub = frame[frame["model"] == name].sort_values("doc")
        np.testing.assert_allclose(sub["score"].to_numpy(), expected, atol=1e-5)
        assert sub["winner"].to_numpy().tolist() == (expected == expected.max()).tolist()
        np.testing.assert_allclose(sub["margin"].iloc[0], expected[answer].max() - expected[~answer].max(), atol=1e-5)
        shown = re.findall(rf'data-model="{re.escape(name)}" data-doc="(\d+)" data-score="([-\d.]+)"', ex.bars.value)
        assert [int(i) for i, _ in shown] == list(range(len(texts)))
        np.testing.assert_allclose([float(s) for _, s in shown], expected, atol=1e-5)
    summary = ex.summary().set_index("model")
    assert summary.loc[E5, "outcome"] == ("answer first" if cosine[answer].max() > cosine[~answer].max() else "distractor first")
    assert "cosine similarity" in ex.bars.value and "BM25 score" in ex.bars.value


def test_own_trap_from_texts() -> None:
    ex = explore.trap(["bm25"], query="苹果手机", documents=[("iPhone 是苹果公司的手机", True), "苹果是一种水果"])
    assert [c.answer for c in ex.candidates] == [True, False]
    assert ex.summary()["outcome"].iloc[0] in {"answer first", "distractor first", "tie"}
    ex.remove_document(1)
    assert ex.summary()["outcome"].iloc[0] == "no other candidate"


@pytest.fixture(scope="module")
@tier("integration")
def small_run(tmp_path_factory):
    """bm25 and e5-small on 12 traps-zh queries (48 documents), in this process."""
    from embedlab.evaluation import evaluate
    from embedlab.report import analysis
    from embedlab.types import RunSettings

    sub = analysis.subsample(load_dataset("traps-zh"), analysis.Sample(12, 48), seed=0)
    cache = tmp_path_factory.mktemp("cache")
    settings = RunSettings(repeats=1, timing_texts=4, warmup_texts=1, throughput_texts=0, isolate=False, progress=False, cache_dir=str(cache))
    return evaluate([get_model("bm25"), get_model(E5)], [sub], settings), sub, cache


def test_results_filters_select_the_right_queries(small_run) -> None:
    report, sub, _ = small_run
    ex = explore.results(report, [sub])
    pq = report.per_query.set_index(["model", "query_id"])
    ex.model_box.value = E5
    ex.outcome_box.value = "lost"
    lost = [q for q in sub.query_ids if pq.loc[(E5, q), "top1"] == 0 and pq.loc[(E5, q), "margin"] < 0]
    assert list(ex.table()["query_id"]) == lost
    ex.outcome_box.value = "won"
    assert list(ex.table()["query_id"]) == [q for q in sub.query_ids if pq.loc[(E5, q), "top1"] == 1]
    category = sub.categories[sub.query_ids[0]]
    ex.category_box.value = category
    assert set(ex.table()["category"]) == {category}
    ex.category_box.value = explore.ALL
    ex.outcome_box.value = explore.ALL
    ex.compare_box.value = "bm25"
    table = ex.table()
    disagree = [q for q in sub.query_ids if pq.loc[(E5, q), "top1"] != pq.loc[("bm25", q), "top1"]]
    assert len(disagree) > 0
    assert list(table["query_id"][: len(disagree)]) == disagree and not table["disagree"][len(disagree):].any()
    ex.outcome_box.value = "won"  # e5 right, bm25 wrong
    assert set(ex.table()["query_id"]) == {q for q in disagree if pq.loc[(E5, q), "top1"] == 1}
    # the selected query: heatmap row, ranked documents (first = the run's top-1), margins
    _, query_id = ex.query_box.value
    detail = ex.detail.value
    assert 'class="embedlab-heatmap"' in detail and "data:image/png;base64," in detail
    ranked = explore.ranked_documents(report, sub, E5, query_id)
    assert ranked["doc_id"].iloc[0] == pq.loc[(E5, query_id), "top1_doc_id"]
    assert f"{pq.loc[(E5, query_id), 'margin']:+.3f}" in detail


def test_category_losses_are_counted_pairwise(small_run) -> None:
    report, sub, _ = small_run
    losses = explore.category_losses(report, "bm25", E5)
    pq = report.per_query.pivot(index="query_id", columns="model", values="top1")
    total = int(((pq["bm25"] == 0) & (pq[E5] == 1)).sum())
    assert losses["losses"].sum() == total and losses["n"].sum() == len(sub.query_ids)
    assert list(losses["losses"]) == sorted(losses["losses"], reverse=True)


def test_results_from_a_folder_recompute_the_same_scores(small_run, tmp_path: Path) -> None:
    report, sub, cache = small_run
    report.to_dir(tmp_path / "run")
    again, _ = explore.with_scores(tmp_path / "run", [sub], cache)
    for key, scores in report.scores.items():
        np.testing.assert_allclose(again.scores[key], scores, atol=1e-6)
    with pytest.raises(FileNotFoundError, match="run.json"):
        explore.results(tmp_path / "nowhere")


@pytest.mark.e2e
def test_static_fallback_renders_without_a_live_kernel(tmp_path: Path) -> None:
    """Executed headless and rendered as `embedlab report` does (its lanes): the page shows
    the explorer's initial state as HTML, not an error and not an empty widget."""
    import nbformat

    from embedlab.report import lanes

    nb = nbformat.v4.new_notebook(cells=[nbformat.v4.new_code_cell(
        "from embedlab import explore\nexplore.trap(['bm25'], 'traps-zh', 'homonym-01')")])
    nb.metadata["kernelspec"] = {"name": "python3", "display_name": "Python 3", "language": "python"}
    path = tmp_path / "explore.ipynb"
    nbformat.write(nb, str(path))
    (result,) = lanes.execute_all([path], [{}], tmp_path / "reports", tmp_path / "figures", jobs=1)
    assert result.error is None, result.error
    executed = nbformat.read(str(result.executed), as_version=4)
    data = executed.cells[-1].outputs[-1]["data"]
    assert "application/vnd.jupyter.widget-view+json" in data  # live in JupyterLab ...
    page = result.html.read_text(encoding="utf-8")
    assert page.count(f'class="{explore.BAR_CLASS}"') == 4  # ... and its static bars in the page: one per candidate
    assert "Traceback" not in page
