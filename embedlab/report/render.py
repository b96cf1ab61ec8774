"""What notebooks call to show and save (`from embedlab.report import render as rep`):
each notebook's figure folder, `Drawer` (draw through the figure cache, save PNG + SVG,
show the saved PNG), `save_figure` and `table`.

The rest of rendering lives in modules of their own, re-exported here for callers of
`rep.build` and friends: `notebook_files` (listing notebooks, their parameters cell and
`needs`), `prime` (computing the declared runs into the cache), `lanes` (executing and
rendering the notebooks, `build`), `index` (reports/index.html), `command` (the notebooks'
parameters from `embedlab report`'s options), `paths` (default folders)."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from embedlab.report.command import (  # noqa: F401 - re-exported
    absolute_path,
    report_parameters,
    resolve_dataset_arg,
    resolve_model_arg,
)
from embedlab.report.formats import MAX_ROWS
from embedlab.report.index import write_index  # noqa: F401 - re-exported
from embedlab.report.lanes import (  # noqa: F401 - re-exported
    CELL_TIMEOUT_S,
    COMMON_PARAMETERS,
    KERNEL,
    NotebookResult,
    build,
    execute_all,
    execute_notebook,
    render_html,
)
from embedlab.report.notebook_files import declared_needs, declared_parameters, list_notebooks, notebook_title  # noqa: F401 - re-exported
from embedlab.report.paths import default_figures_dir, default_notebooks_dir, default_reports_dir, project_root  # noqa: F401 - re-exported
from embedlab.report.prime import NEEDS, prime  # noqa: F401 - re-exported

FIGURE_FORMATS = ("png", "svg")


def figure_folder(figures_dir: str | Path | None, notebook: str) -> Path:
    """Where a notebook's figures go: `<figures_dir or figures/>/<notebook>`."""
    return Path(figures_dir) / notebook if figures_dir else default_figures_dir() / notebook


@dataclass(frozen=True)
class SavedFigure:
    """A figure written to disk (PNG and SVG). In Jupyter it shows as its saved PNG, so the
    figure is rendered once per format and never again for display."""

    name: str
    paths: tuple[Path, ...]
    dpi: float = 100.0

    @property
    def png(self) -> Path:
        return next(p for p in self.paths if p.suffix == ".png")

    def _repr_mimebundle_(self, include=None, exclude=None):
        import base64
        import struct

        raw = self.png.read_bytes()
        width = struct.unpack(">I", raw[16:20])[0]  # PNG header: IHDR width, pixels
        return {"image/png": base64.b64encode(raw).decode("ascii")}, {
            "image/png": {"width": round(width * 100 / self.dpi)}
        }


@dataclass(frozen=True)
class Sentence:
    """What a page shows where a figure had nothing to draw."""

    text: str

    def _repr_markdown_(self) -> str:
        return f"*{self.text}*"


def empty_figure(fig) -> str | None:
    """The note of a figure whose every visible Axes only says why it is empty
    (`plots.note`), else None."""
    fig = getattr(fig, "figure", fig)
    axes = [ax for ax in fig.get_axes() if ax.get_visible() and ax.get_label() != "<colorbar>"]
    notes = [getattr(ax, "embedlab_note", None) for ax in axes]
    return " ".join(n[0].upper() + n[1:] + "." for n in dict.fromkeys(notes)) if axes and all(notes) else None


class SavedFigures(list):
    """Several SavedFigure; Jupyter shows each of them."""

    def _ipython_display_(self) -> None:
        from IPython.display import display

        for figure in self:
            display(figure)


def safe_name(name: str) -> str:
    """A figure name as a file stem: letters, digits, `-`, `_` and `.`; the rest become `-`."""
    return "".join(c if c.isalnum() or c in "-_." else "-" for c in name).strip("-")


def save_figure(fig, name: str, folder: str | Path, formats: Sequence[str] = FIGURE_FORMATS) -> SavedFigure:
    """Save a Figure (or an Axes' figure) as `<folder>/<name>.png` and `.svg`, close it, and
    return what was saved (shown as the PNG in a notebook). SVG text is drawn as paths, so
    the Chinese renders without the font installed."""
    import matplotlib as mpl
    import matplotlib.pyplot as plt

    fig = getattr(fig, "figure", fig)
    folder = Path(folder)
    folder.mkdir(parents=True, exist_ok=True)
    safe = safe_name(name)
    if fig.get_layout_engine() is not None:  # lay out once, not once per format
        fig.draw_without_rendering()
        fig.set_layout_engine("none")
    paths = []
    for fmt in formats:
        path = folder / f"{safe}.{fmt}"
        fig.savefig(path, format=fmt, **({"pil_kwargs": {"compress_level": 3}} if fmt == "png" else {}))
        paths.append(path)
    dpi = fig.get_dpi() if mpl.rcParams["savefig.dpi"] == "figure" else float(mpl.rcParams["savefig.dpi"])
    plt.close(fig)
    return SavedFigure(safe, tuple(paths), dpi)


class Drawer:
    """`draw(name, plot, *args, **kwargs)`: call a plotting function (one of embedlab.report.plots,
    or any function returning a Figure / Axes, or a mapping of them), save what it drew into
    `folder` as `<name>.png/.svg` (`<name>-<key>` for a mapping) and return it for display.

    Through the figure cache (`embedlab.report.figure_cache`, under `cache_dir`; None: the
    embedding cache's folder): when the same
    function was called on the same data with the same style before, its saved files are
    copied instead of drawn again, so a warm re-render draws only what changed. To get the
    Figure itself (to change it), call the plotting function directly and `save_figure`."""

    def __init__(
        self, folder: str | Path, cache_dir: str | Path | None = None, formats: Sequence[str] = FIGURE_FORMATS
    ) -> None:
        from embedlab.report import figure_cache
        from embedlab.run.cache import default_cache_dir

        self.folder = Path(folder)
        self.formats = tuple(formats)
        self.cache = (
            figure_cache.FigureCache(Path(cache_dir) if cache_dir else default_cache_dir())
            if figure_cache.enabled()
            else None
        )

    def __call__(self, name: str, plot: Any, *args: Any, **kwargs: Any) -> SavedFigure | SavedFigures | Sentence:
        """Draw and save; when the plot function raises `plots.NothingToDraw`, nothing is
        saved and its sentence is returned (shown instead of an empty figure)."""
        from embedlab.report import figure_cache
        from embedlab.report.plots import NothingToDraw

        key = None
        if self.cache is not None:
            try:
                key = figure_cache.figure_key(plot, args, kwargs, self.formats)
            except figure_cache.Unfingerprintable as exc:
                figure_cache.log.info("drawing %s without the figure cache: %s", name, exc)
            if key is not None and (hit := self.cache.load(key)) is not None:
                return self._restore(name, *hit)
        try:
            drawn = plot(*args, **kwargs)
        except NothingToDraw as exc:
            return Sentence(str(exc))
        many = isinstance(drawn, Mapping)
        figures = drawn if many else {None: drawn}
        empty = [text for fig in figures.values() if (text := empty_figure(fig))]
        if empty and len(empty) == len(figures):  # nothing drawn anywhere: a sentence, not an empty frame
            import matplotlib.pyplot as plt

            for fig in figures.values():
                plt.close(getattr(fig, "figure", fig))
            return Sentence(" ".join(dict.fromkeys(empty)))
        saved = [
            save_figure(fig, name if k is None else f"{name}-{k}", self.folder, self.formats)
            for k, fig in figures.items()
        ]
        if key is not None:
            entries = [
                figure_cache.CachedFigure(
                    None if k is None else str(k), s.dpi, {p.suffix[1:]: p.read_bytes() for p in s.paths}
                )
                for k, s in zip(figures, saved)
            ]
            self.cache.store(key, entries, many)
        return SavedFigures(saved) if many else saved[0]

    def _restore(self, name: str, many: bool, cached: list) -> SavedFigure | SavedFigures:
        self.folder.mkdir(parents=True, exist_ok=True)
        saved = []
        for fig in cached:
            safe = safe_name(name if fig.suffix is None else f"{name}-{fig.suffix}")
            paths = []
            for fmt in self.formats:
                path = self.folder / f"{safe}.{fmt}"
                path.write_bytes(fig.files[fmt])
                paths.append(path)
            saved.append(SavedFigure(safe, tuple(paths), fig.dpi))
        return SavedFigures(saved) if many else saved[0]


@dataclass(frozen=True)
class Table:
    """A table for a report page: its first `MAX_ROWS` rows inline, all of them in a
    collapsed `<details>` below when there are more; numbers formatted by kind
    (`embedlab.report.formats`). `empty` is the sentence shown instead of an empty table."""

    frame: Any
    digits: int = 3
    empty: str = ""

    def styler(self, frame=None):
        import html

        from pandas.api.types import is_bool_dtype, is_numeric_dtype

        from embedlab.report.formats import formatter

        def escaped(column: str):
            shown = formatter(column, self.digits)
            return lambda value: html.escape(shown(value))

        frame = self.frame if frame is None else frame
        numeric = [c for c in frame.columns if is_numeric_dtype(frame[c]) and not is_bool_dtype(frame[c])]
        styler = (
            frame.style.format(na_rep="–", escape="html")
            .format({c: escaped(str(c)) for c in numeric}, na_rep="–")
            .hide(axis="index")
        )
        text = [c for c in frame.columns if c not in numeric]
        return styler.set_properties(subset=text, **{"text-align": "left"}) if text else styler

    def _repr_html_(self) -> str:
        if self.frame.empty:
            return f"<p>{self.empty}</p>" if self.empty else ""
        if len(self.frame) <= MAX_ROWS:
            return self.styler().to_html()
        head = self.styler(self.frame.head(MAX_ROWS)).to_html()
        return head + (f"<details><summary>all {len(self.frame)} rows</summary>{self.styler().to_html()}</details>")

    def _repr_markdown_(self) -> str | None:
        return self.empty if self.frame.empty and self.empty else None

    def __repr__(self) -> str:
        return self.frame.to_string(index=False, max_rows=MAX_ROWS)

    def _ipython_display_(self) -> None:
        from IPython.display import HTML, display

        if self.frame.empty and not self.empty:
            return  # an empty table is not shown
        display(HTML(self._repr_html_()))


def table(frame, columns: Sequence[str] | None = None, digits: int = 3, empty: str = "") -> Table:
    """A DataFrame for display: chosen columns, numbers formatted by kind, no index, at most
    MAX_ROWS rows inline (the rest collapsed); nothing (or the sentence `empty`) when it has
    no rows."""
    if columns is not None:
        frame = frame[[c for c in columns if c in frame.columns]]
    return Table(frame.reset_index(drop=True), digits, empty)
