"""Figures: Chinese renders with a real CJK font (a missing-glyph warning fails the test),
every plot function returns its Axes / Figure without showing or saving, draws what it
promises (answers outlined, intervals as error bars), and explains an empty input."""

from __future__ import annotations

import warnings
from pathlib import Path

import matplotlib

matplotlib.use("Agg")

import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402
import pandas as pd  # noqa: E402
import pytest  # noqa: E402
from matplotlib.axes import Axes  # noqa: E402
from matplotlib.figure import Figure  # noqa: E402
from matplotlib.patches import Rectangle  # noqa: E402

import embedlab as el  # noqa: E402
from embedlab.report import analysis
from embedlab.report import plots  # noqa: E402
from embedlab.report import render as rep  # noqa: E402
from tests.tiers import tier

ZH = "银行的利率政策对经济发展的影响 画龙点睛 苹果公司"


def draw_and_collect(fig) -> list[str]:
    """Render a figure to pixels and return matplotlib's missing-glyph warnings."""
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        fig.canvas.draw()
    return [str(w.message) for w in caught if "missing from font" in str(w.message)]


@pytest.fixture(autouse=True)
def _no_show_no_files(monkeypatch, tmp_path):
    """Plot functions never show a window nor write a file."""
    monkeypatch.setattr(plt, "show", lambda *a, **k: pytest.fail("a plot function called plt.show()"))
    monkeypatch.chdir(tmp_path)
    yield
    assert list(tmp_path.iterdir()) == [], "a plot function wrote a file"
    plt.close("all")


@pytest.fixture(scope="module")
@tier("integration")
def seed_run() -> el.Report:
    """BM25 on the seed in this process (about a second): a real Report with score matrices."""
    return el.evaluate(["bm25"], ["seed"], el.RunSettings(repeats=1, timing_texts=8, isolate=False, progress=False))


# ---- the CJK font -------------------------------------------------------------------------


def test_a_cjk_font_is_found_and_registered() -> None:
    path = plots.find_cjk_font()
    assert path is not None and path.is_file()
    assert plots.covers(path, ZH.replace(" ", ""))
    pytest.importorskip("paperang_p2_fonts_cjk")
    assert "paperang_p2_fonts_cjk" in str(path), "the pip-installed font comes first (no system font needed)"
    name = plots.use_style()
    assert plt.rcParams["font.sans-serif"][0] == name


def test_missing_glyphs_are_detected_without_the_font() -> None:
    """The check itself: with only DejaVu Sans, Chinese draws boxes and warns."""
    with plt.rc_context({"font.family": ["sans-serif"], "font.sans-serif": ["DejaVu Sans"]}):
        fig, ax = plt.subplots()
        ax.set_title(ZH)
        assert draw_and_collect(fig), "expected missing-glyph warnings with a Latin-only font"


def test_chinese_text_has_every_glyph() -> None:
    plots.use_style()
    fig, ax = plt.subplots()
    ax.set_title(ZH)
    ax.set_xticks([0, 1], ["同形异义", "上下文依赖的名称"])
    ax.set_ylabel("余弦相似度 −0.5")
    assert draw_and_collect(fig) == []


def test_every_figure_of_a_real_run_renders_chinese(seed_run: el.Report) -> None:
    plots.use_style()
    sets = [el.load_dataset("seed")]
    summary = seed_run.summary()
    figures = [
        plots.metric_bars(summary, "top1").figure,
        plots.category_heat(analysis.category_table(seed_run)).figure,
        plots.kind_beat_heat(analysis.kind_beat_rates(seed_run, None, sets)).figure,
        plots.outcome_grid(analysis.outcomes(seed_run, None, sets)).figure,
        plots.margin_figure(analysis.margins(seed_run, None, sets)),
        plots.reported_bars(analysis.reported_beside_measured(seed_run)).figure,
        plots.size_figure(analysis.speed_table(seed_run, "seed"), "texts_per_s"),
        plots.choice_figure(analysis.choice_frame(seed_run)),
        plots.memory_bars(analysis.memory_frame(seed_run, "seed")).figure,
        plots.memory_scatter(analysis.memory_frame(seed_run, "seed")).figure,
        plots.cue_bars(analysis.cue_table(seed_run)).figure,
        *plots.similarity_figures(analysis.similarity_frame(seed_run, sets)).values(),
    ]
    for fig in figures:
        assert isinstance(fig, Figure)
        assert draw_and_collect(fig) == [], fig.axes[0].get_title()


# ---- what each function draws -------------------------------------------------------------


def test_similarity_heatmap_marks_answers_and_first_ranked(seed_run: el.Report) -> None:
    frame = analysis.similarity_frame(seed_run, [el.load_dataset("seed")])
    one = frame[frame["model"] == "bm25"]
    ax = plots.similarity_heatmap(one)
    assert isinstance(ax, Axes)
    boxes = [p for p in ax.patches if isinstance(p, Rectangle) and p.get_edgecolor()[:3] == (0.0, 0.0, 0.0)]
    assert len(boxes) == int(one["relevant"].sum()) == 8
    (dots,) = ax.collections
    assert len(dots.get_offsets()) == 8  # one first-ranked document per query
    labels = [t.get_text() for t in ax.get_xticklabels()]
    assert len(labels) == 22 and all(label.startswith("[") for label in labels)
    assert any("[other-entity]" in label for label in labels)


def test_similarity_figures_one_per_dataset() -> None:
    frame = pd.DataFrame(
        [
            {"model": m, "dataset": d, "query_id": f"q{r}", "doc_id": f"d{c}", "row": r, "col": c, "score": 0.1 * (r + c), "relevant": r == c,
             "is_top1": c == 0, "judged": True, "kind": "answer" if r == c else "topical", "query_label": f"q{r} 查询",
             "doc_label": f"[topical] 文档{c}", "candidate_label": f"[{'answer' if r == c else 'topical'}] 文档{c}", "column_kind": "topical",
             "score_name": "cosine similarity"}
            for d in ("a", "b") for m in ("m1", "m2") for r in range(2) for c in range(3)
        ]
    )
    figures = plots.similarity_figures(frame)
    assert list(figures) == ["a", "b"]
    assert all(len([a for a in f.axes if a.get_title(loc="left")]) == 2 for f in figures.values())  # a panel per query
    assert plots.similarity_figures(frame.iloc[0:0]) == {}


def test_metric_bars_draw_intervals() -> None:
    summary = pd.DataFrame(
        {"model": ["a", "b"], "dataset": ["s", "s"], "status": ["ok", "ok"], "top1": [0.5, 0.75], "top1_low": [0.25, 0.5], "top1_high": [0.75, 1.0]}
    )
    ax = plots.metric_bars(summary, "top1")
    assert [round(p.get_height(), 2) for p in ax.patches] == [0.5, 0.75]
    caps = [c for c in ax.containers if c.__class__.__name__ == "ErrorbarContainer"]
    assert len(caps) == 2
    segment = caps[0].lines[2][0].get_segments()[0]
    assert np.allclose(segment[:, 1], [0.25, 0.75])


def test_reported_numbers_are_labelled_as_reported(seed_run: el.Report) -> None:
    ax = plots.reported_bars(analysis.reported_beside_measured(seed_run))
    legend = [t.get_text() for t in ax.get_legend().get_texts()]
    assert "measured here" in legend and any("reported in the article" in t and "not measured here" in t for t in legend)
    hatched = [p for p in ax.patches if p.get_hatch()]
    assert len(hatched) == 4  # the article's four models


@pytest.mark.parametrize(
    "draw",
    [
        lambda: plots.dimension_curve(pd.DataFrame(columns=["model", "dataset", "dimensions", "status", "top1"])),
        lambda: plots.size_scatter(pd.DataFrame({"model": ["a"], "source": ["measured here"], "params_m": [np.nan], "texts_per_s": [3.0]})),
        lambda: plots.kind_beat_heat(pd.DataFrame(columns=["model", "dataset", "kind", "n_pairs", "n_beat", "beat_rate"])),
        lambda: plots.grouped_bars(pd.DataFrame(columns=["x", "v"]), "x", "v"),
    ],
)
def test_empty_inputs_are_explained_on_the_axes(draw) -> None:
    ax = draw()
    assert isinstance(ax, Axes)
    assert any(t.get_text() for t in ax.texts), "an empty plot must say why it is empty"


def test_dimension_curve_draws_a_line_per_model() -> None:
    frame = pd.DataFrame(
        {"model": ["m"] * 3 + ["n"], "dataset": ["s"] * 4, "status": ["ok"] * 4, "dimensions": [8, 16, 64, 384],
         "top1": [0.2, 0.4, 0.5, 0.6], "top1_low": [0.1, 0.2, 0.3, 0.4], "top1_high": [0.3, 0.6, 0.7, 0.8]}
    )
    ax = plots.dimension_curve(frame)
    assert len(ax.lines) == 2 and ax.get_xscale() == "log"


def test_save_figure_writes_png_and_svg_and_shows_the_png() -> None:
    fig, ax = plt.subplots()
    ax.set_title(ZH)
    folder = Path.cwd() / "out"
    saved = rep.save_figure(ax, "标题 / test", folder)
    assert [p.suffix for p in saved.paths] == [".png", ".svg"]
    assert saved.png.read_bytes()[:4] == b"\x89PNG" and b"<svg" in saved.paths[1].read_bytes()[:2000]
    assert not plt.fignum_exists(fig.number), "a saved figure is closed, so it is not rendered again for display"
    data, meta = saved._repr_mimebundle_()
    assert "image/png" in data and meta["image/png"]["width"] > 0
    for path in saved.paths:
        path.unlink()
    folder.rmdir()


def test_heatmap_dot_follows_the_pessimistic_rank() -> None:
    """A tie between the answer and a distractor: the dot sits on the distractor, as the
    tables rank it, not on the answer argmax would pick."""
    from tests.test_analysis import SCORES, toy, toy_report

    frame = analysis.similarity_frame(toy_report(SCORES), [toy()], category="antonym")
    ax = plots.similarity_heatmap(frame)
    (dots,) = ax.collections
    assert sorted(map(tuple, dots.get_offsets().tolist())) == [(1.0, 0.0), (4.0, 1.0)]  # (column, row): d1 for q1, d3 for q2


def _memory_frame(gpu: bool) -> pd.DataFrame:
    from tests.test_analysis import _memory_runs

    return analysis.memory_frame(_memory_runs(gpu))


def test_memory_bars_of_a_cpu_run_say_host_rss_and_draw_no_reported_bar() -> None:
    ax = plots.memory_bars(_memory_frame(gpu=False))
    assert "host RSS, CPU run" in ax.get_title() and "not GPU memory" in ax.get_title()
    assert not [p for p in ax.patches if p.get_hatch()], "no reported (hatched) GPU bar beside host RSS"
    assert sorted(round(p.get_height(), 2) for p in ax.patches) == [1.5, 1.5, 1.9, 1.9]
    scatter = plots.memory_scatter(_memory_frame(gpu=False))
    assert "host RSS, CPU run" in scatter.get_title()
    assert all("reported" not in t.get_text() for t in scatter.get_legend().get_texts())


def test_memory_bars_of_a_gpu_run_set_gpu_memory_beside_the_reported_figures() -> None:
    ax = plots.memory_bars(_memory_frame(gpu=True))
    assert ax.get_title().startswith("GPU memory") and ax.get_ylabel() == "GiB"
    hatched = [p for p in ax.patches if p.get_hatch()]
    assert sorted(round(p.get_height(), 2) for p in hatched) == [1.06, 1.12, 7.55, 14.1]
    legend = [t.get_text() for t in ax.get_legend().get_texts()]
    assert {"weights", "peak", "KV cache"} <= set(legend) and any("reported" in t for t in legend)
    assert not any("host RSS" in t for t in legend)
    scatter = plots.memory_scatter(_memory_frame(gpu=True))
    assert scatter.get_title() == "GPU memory against model size"
    assert any("reported" in t.get_text() for t in scatter.get_legend().get_texts())


def test_cue_baselines_are_reference_lines_not_bars() -> None:
    frame = pd.DataFrame(
        {"model": ["dense", "length"], "dataset": ["d", "d"], "status": ["ok", "ok"], "kind": ["model", analysis.CUE_LABEL],
         "top1": [0.8, 0.6], "top1_low": [0.6, 0.4], "top1_high": [0.9, 0.8]}
    )
    ax = plots.cue_bars(frame)
    assert [round(p.get_height(), 2) for p in ax.patches] == [0.8]  # one bar: the model
    dashed = [line for line in ax.get_lines() if line.get_linestyle() == "--"]
    assert [line.get_ydata()[0] for line in dashed] == [0.6]
    assert "length · d: 0.60" in [t.get_text() for t in ax.get_legend().get_texts()]


def test_value_labels_sit_above_the_error_bars() -> None:
    frame = pd.DataFrame({"model": ["a"], "dataset": ["d"], "top1": [0.5], "top1_low": [0.3], "top1_high": [0.7]})
    ax = plots.metric_bars(frame, "top1")
    (label,) = [t for t in ax.texts if t.get_text() == "0.50"]
    assert label.xy[1] == 0.7 and label.get_va() == "bottom"


def _choice() -> pd.DataFrame:
    return pd.DataFrame(
        {
            "model": ["small", "big", "slow-bad", "length"], "dataset": "d", "kind": ["model", "model", "model", analysis.CUE_LABEL],
            "device": "CPU (this machine)", "n_queries": 40, "top1": [0.5, 0.8, 0.4, 0.3], "top1_low": [0.4, 0.7, 0.3, 0.2],
            "top1_high": [0.6, 0.9, 0.5, 0.4], "speed_texts_per_s": [300.0, 20.0, 10.0, 1e6], "speed_measure": "throughput pass",
            "memory_gib": [0.3, 1.2, 2.0, 0.1], "memory_measure": "host RSS peak (CPU run)",
        }
    )


def test_pareto_front_keeps_what_nothing_beats_on_both() -> None:
    frame = _choice().iloc[:3]
    assert plots.pareto_front(frame, "speed_texts_per_s").tolist() == [True, True, False]
    assert plots.pareto_front(frame, "memory_gib", lower_x_better=True).tolist() == [True, True, False]


def test_choice_figure_one_device_per_panel_cues_as_lines() -> None:
    frame = pd.concat([_choice(), _choice().assign(device="GPU (H100)")], ignore_index=True)
    fig = plots.choice_figure(frame)
    axes = fig.get_axes()
    assert len(axes) == 4 and [a.get_title().split(":")[0] for a in axes] == ["CPU (this machine)"] * 2 + ["GPU (H100)"] * 2
    dashed = [line.get_ydata()[0] for line in axes[0].get_lines() if line.get_linestyle() == "--"]
    assert dashed == [0.3]  # the cue is a reference line, not a point
    with pytest.raises(ValueError, match="one device per axis"):
        plots.choice_plot(frame)
    with pytest.raises(plots.NothingToDraw):
        plots.choice_figure(frame.assign(top1=float("nan")))


def test_size_figure_keeps_the_article_in_its_own_panel_and_explains_an_empty_figure() -> None:
    speed = pd.DataFrame(
        {"model": ["use", "bge-m3"], "source": ["measured here", plots.REPORTED_SOURCE], "params_m": [70.0, 568.0],
         "texts_per_s": [100.0, 50.0], "throughput_tokens_per_s": [None, None], "gpu_device": [None, None]}
    )
    fig = plots.size_figure(speed, "texts_per_s")
    assert [a.get_title() for a in fig.get_axes()] == ["CPU (this machine)", "GPU, the article's (not measured here)"]
    with pytest.raises(plots.NothingToDraw, match="not measured for use"):
        plots.size_figure(speed, "throughput_tokens_per_s")


def test_query_panels_label_candidates_for_their_query_and_state_the_scales(seed_run: el.Report) -> None:
    """Each panel is one query's own candidates; another query's answer is never labelled
    `[answer]`; the caption names the shared cosine scale and BM25's own scale."""
    frame = analysis.similarity_frame(seed_run, [el.load_dataset("seed")], max_queries=4)
    assert frame["query_id"].nunique() == 4
    (fig,) = plots.similarity_figures(frame).values()
    panels = [a for a in fig.axes if a.get_visible() and a.get_title(loc="left")]
    assert len(panels) == 4
    for ax in panels:
        labels = [t.get_text() for t in ax.get_yticklabels()]
        assert sum(label.startswith("[answer]") for label in labels) == 1 and len(labels) < 22
    caption = fig._suptitle.get_text()
    assert "bm25 on its own scale within each query" in caption
    assert ("one scale for every dense model" in caption) == (frame["score_name"] == plots.COSINE).any()
    assert draw_and_collect(fig) == []
