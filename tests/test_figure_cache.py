"""The figure cache behind the notebooks' `draw`: a hit copies the saved files without
calling the plotting function; any change to the data, the arguments or the style misses;
a corrupted entry is detected and drawn again; arguments it cannot fingerprint are drawn
uncached."""

from __future__ import annotations

from pathlib import Path

import matplotlib

matplotlib.use("Agg")

import matplotlib as mpl  # noqa: E402
import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402
import pandas as pd  # noqa: E402
import pytest  # noqa: E402

from embedlab.report import figure_cache
from embedlab.report import plots  # noqa: E402
from embedlab.report import render as rep  # noqa: E402

CALLS: list[str] = []


def bars(frame: pd.DataFrame, metric: str = "top1"):
    """A real plotting function that counts its calls."""
    CALLS.append(metric)
    return plots.metric_bars(frame, metric)


def per_dataset(frame: pd.DataFrame):
    CALLS.append("many")
    return {str(ds): plots.metric_bars(sub, "top1").figure for ds, sub in frame.groupby("dataset")}


def summary(top1: float = 0.5) -> pd.DataFrame:
    return pd.DataFrame({"model": ["bge-m3", "qwen3-0.6b"], "dataset": ["traps-zh", "seed"], "status": ["ok", "ok"],
                         "top1": [top1, 0.7], "top1_low": [0.3, 0.5], "top1_high": [0.6, 0.9], "mrr": [0.6, 0.8], "mrr_low": [0.5, 0.7], "mrr_high": [0.7, 0.9]})


@pytest.fixture(autouse=True)
def style(monkeypatch):
    monkeypatch.delenv(figure_cache.ENV_VAR, raising=False)
    CALLS.clear()
    with mpl.rc_context():
        plots.use_style()
        yield
    plt.close("all")


def test_hit_copies_the_files_without_drawing(tmp_path: Path) -> None:
    draw = rep.Drawer(tmp_path / "a", tmp_path / "cache")
    first = draw("top1 / 模型", bars, summary(), "top1")
    assert CALLS == ["top1"] and draw.cache.stored == 1
    again = rep.Drawer(tmp_path / "b", tmp_path / "cache")("top1 / 模型", bars, summary(), "top1")
    assert CALLS == ["top1"], "a hit must not call the plotting function"
    assert [p.name for p in again.paths] == [p.name for p in first.paths] == ["top1---模型.png", "top1---模型.svg"]
    for a, b in zip(first.paths, again.paths):
        assert a.parent != b.parent and a.read_bytes() == b.read_bytes()
    assert again.dpi == first.dpi and "image/png" in again._repr_mimebundle_()[0]


@pytest.mark.parametrize(
    "change",
    [
        lambda: ((summary(0.51), "top1"), {}),  # one number of the data
        lambda: ((summary(), "mrr"), {}),  # another argument
        lambda: ((summary().rename(columns={"status": "state"}), "top1"), {}),  # a column name
        lambda: ((summary().astype({"top1": "float32"}), "top1"), {}),  # a dtype
    ],
)
def test_any_change_of_the_inputs_draws_again(tmp_path: Path, change) -> None:
    draw = rep.Drawer(tmp_path / "f", tmp_path / "cache")
    draw("x", bars, summary(), "top1")
    args, kwargs = change()
    draw("x", bars, *args, **kwargs)
    assert len(CALLS) == 2 and draw.cache.hits == 0


def test_a_style_change_draws_again(tmp_path: Path) -> None:
    draw = rep.Drawer(tmp_path / "f", tmp_path / "cache")
    draw("x", bars, summary(), "top1")
    mpl.rcParams["axes.grid"] = not mpl.rcParams["axes.grid"]
    draw("x", bars, summary(), "top1")
    assert len(CALLS) == 2


def test_a_mapping_of_figures_round_trips(tmp_path: Path) -> None:
    frame = summary()
    made = rep.Drawer(tmp_path / "a", tmp_path / "cache")("heat", per_dataset, frame)
    copied = rep.Drawer(tmp_path / "b", tmp_path / "cache")("heat", per_dataset, frame)
    assert CALLS == ["many"]
    assert isinstance(copied, rep.SavedFigures) and [f.name for f in copied] == [f.name for f in made] == ["heat-seed", "heat-traps-zh"]


def test_a_corrupted_entry_is_drawn_again_and_replaced(tmp_path: Path) -> None:
    draw = rep.Drawer(tmp_path / "f", tmp_path / "cache")
    draw("x", bars, summary(), "top1")
    key = figure_cache.figure_key(bars, (summary(), "top1"), {}, rep.FIGURE_FORMATS)
    png = draw.cache.entry(key) / "0.png"
    png.write_bytes(png.read_bytes()[:100])  # truncated, as by a crash or a full disk
    again = rep.Drawer(tmp_path / "g", tmp_path / "cache")
    saved = again("x", bars, summary(), "top1")
    assert len(CALLS) == 2 and again.cache.corrupted == 1 and again.cache.stored == 1
    assert saved.png.read_bytes()[:4] == b"\x89PNG" and len(saved.png.read_bytes()) > 1000
    third = rep.Drawer(tmp_path / "h", tmp_path / "cache")
    third("x", bars, summary(), "top1")
    assert len(CALLS) == 2 and third.cache.hits == 1


def test_unfingerprintable_arguments_are_drawn_uncached(tmp_path: Path) -> None:
    def on_axes(ax):
        CALLS.append("axes")
        ax.plot([0, 1], [1, 0])
        return ax

    draw = rep.Drawer(tmp_path / "f", tmp_path / "cache")
    for _ in range(2):
        _, ax = plt.subplots()
        draw("axes", on_axes, ax)
    assert CALLS == ["axes", "axes"] and draw.cache.stored == 0
    with pytest.raises(figure_cache.Unfingerprintable):
        figure_cache.fingerprint(pd.DataFrame({"a": [[1, 2]]}))


def test_switched_off_by_the_environment(tmp_path: Path, monkeypatch) -> None:
    monkeypatch.setenv(figure_cache.ENV_VAR, "0")
    draw = rep.Drawer(tmp_path / "f", tmp_path / "cache")
    draw("x", bars, summary(), "top1")
    draw("x", bars, summary(), "top1")
    assert CALLS == ["top1", "top1"] and draw.cache is None and not (tmp_path / "cache").exists()


def test_fingerprint_tells_values_and_types_apart() -> None:
    fp = figure_cache.fingerprint
    assert fp([1, "a"]) == fp([1, "a"]) and fp(np.arange(3)) == fp(np.arange(3))
    assert len({fp(1), fp("1"), fp(1.0), fp([1]), fp((1,)), fp(np.array([1])), fp({"1": 1})}) == 7
    assert fp(pd.DataFrame({"a": [1, 2]})) != fp(pd.DataFrame({"a": [2, 1]}))
    assert fp(pd.DataFrame({"a": [1, 2]})) != fp(pd.DataFrame({"a": [1, 2]}, index=[1, 0]))
