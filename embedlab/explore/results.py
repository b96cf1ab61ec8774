"""The results explorer: a run's queries filtered by data set, model, comparison, category
and outcome (`report.views.query_table`), and one query's heatmap row and ranked documents."""

from __future__ import annotations

import base64
import html
import io
from collections.abc import Mapping, Sequence
from dataclasses import replace
from pathlib import Path
from typing import Any

import pandas as pd

from embedlab.data.datasets import Dataset
from embedlab.evaluation.results import Report
from embedlab.explore.widgets import ALL, NO_COMPARISON, _widgets
from embedlab.report.views import OUTCOMES, heatmap_frame, query_table, ranked_documents


def with_scores(
    report: Report | str | Path, datasets: Sequence[Dataset] | None = None, cache_dir: str | Path | None = None
) -> tuple[Report, dict[str, Dataset]]:
    """A Report with its score matrices, and its data sets by name. A results folder keeps no
    score matrices: they are recomputed from the run's own model records and settings
    through the embedding cache (`cache_dir`, default the shared one), after checking that
    each data set is the one the run measured (its fingerprint)."""
    from embedlab.evaluation import evaluate
    from embedlab.report.analysis import resolve_datasets, resolve_models
    from embedlab.run.cache import default_cache_dir
    from embedlab.types import RunSettings

    folder = None
    if not isinstance(report, Report):
        folder = Path(report)
        if not (folder / "run.json").is_file():
            raise FileNotFoundError(
                f"{folder}: not a results folder (no run.json); expected the --out folder of `embedlab run`"
            )
        report = Report.from_dir(folder)
    sets = (
        list(datasets)
        if datasets is not None
        else resolve_datasets(list(report.config.get("datasets") or report.datasets))
    )
    by_name = {d.name: d for d in sets}
    for name, fingerprint in report.datasets.items():
        if name not in by_name:
            raise ValueError(f"{folder or 'report'}: data set {name!r} of the run not given (datasets=...)")
        if fingerprint and by_name[name].fingerprint() != fingerprint:
            raise ValueError(
                f"{folder or 'report'}: data set {name!r} changed since the run (fingerprint differs); re-run it"
            )
    if not report.scores:
        known = set(RunSettings.__dataclass_fields__)
        settings = RunSettings(**{k: v for k, v in (report.config.get("settings") or {}).items() if k in known})
        settings = replace(settings, progress=False, cache_dir=str(cache_dir or default_cache_dir()))
        models = [m for m in report.config.get("models", []) if m.get("name") in set(report.per_query["model"])]
        rescored = evaluate(resolve_models(models), [by_name[n] for n in report.datasets], settings)
        report = replace(report, scores=rescored.scores)
    return report, by_name


def _png(fig) -> str:
    import matplotlib.pyplot as plt

    buf = io.BytesIO()
    fig.savefig(buf, format="png", dpi=90, bbox_inches="tight")
    plt.close(fig)
    return base64.b64encode(buf.getvalue()).decode("ascii")


def _frame_html(frame: pd.DataFrame, columns: Sequence[str]) -> str:
    """The table's first MAX_ROWS rows, the whole table folded in a <details> below when longer."""
    from embedlab.report.formats import MAX_ROWS

    shown = frame[[c for c in columns if c in frame.columns]]

    def html_of(rows: pd.DataFrame) -> str:
        return rows.to_html(
            index=False, escape=True, float_format=lambda v: f"{v:.3f}", classes="embedlab-table", border=0
        )

    if len(shown) <= MAX_ROWS:
        return html_of(shown)
    return (
        html_of(shown.head(MAX_ROWS)) + f"<details><summary>all {len(shown)} rows</summary>{html_of(shown)}</details>"
    )


class ResultsExplorer:
    """Filters (data set, model, comparison model, category, outcome), the table of matching
    queries, and for the selected query its heatmap row, ranked documents and margins.
    `table()` is the current filtered table; `detail_html()` the selected query's view."""

    def __init__(
        self,
        report: Report,
        datasets: Mapping[str, Dataset],
        dataset: str | None = None,
        model: str | None = None,
        compare: str | None = None,
        category: str | None = None,
        outcome: str | None = None,
        k: int = 5,
    ) -> None:
        w = _widgets()
        self.report, self.datasets, self.k = report, dict(datasets), k
        models = list(dict.fromkeys(report.per_query["model"]))
        categories = sorted({c for c in report.per_query["category"] if isinstance(c, str) and c})
        self._quiet = True
        self.dataset_box = w.Dropdown(options=[ALL, *report.datasets], value=dataset or ALL, description="data set")
        self.model_box = w.Dropdown(options=models, value=model or models[-1], description="model")
        self.compare_box = w.Dropdown(
            options=[NO_COMPARISON, *models], value=compare or NO_COMPARISON, description="compare with"
        )
        self.category_box = w.Dropdown(options=[ALL, *categories], value=category or ALL, description="category")
        self.outcome_box = w.Dropdown(options=[ALL, *OUTCOMES], value=outcome or ALL, description="outcome")
        self.query_box = w.Select(options=[], rows=8, description="query", layout=w.Layout(width="95%"))
        self.table_html = w.HTML()
        self.detail = w.HTML()
        self.detail.add_class("embedlab-detail")
        for box in (self.dataset_box, self.model_box, self.compare_box, self.category_box, self.outcome_box):
            box.observe(lambda _: self._filter(), names="value")
        self.query_box.observe(lambda _: self._show(), names="value")
        filters = w.HBox(
            [
                w.VBox([self.dataset_box, self.category_box, self.outcome_box]),
                w.VBox([self.model_box, self.compare_box]),
            ]
        )
        self.widget = w.VBox(
            [filters, self.query_box, w.Accordion([self.table_html], titles=("table of the queries",)), self.detail]
        )
        self.widget.add_class("embedlab-results")
        self._quiet = False
        self._filter()

    def _choice(self, box, empty: str = ALL) -> str | None:
        return None if box.value == empty else box.value

    def table(self) -> pd.DataFrame:
        """The queries the filters select (`query_table`)."""
        return query_table(
            self.report,
            self.model_box.value,
            self._choice(self.compare_box, NO_COMPARISON),
            self._choice(self.dataset_box),
            self._choice(self.category_box),
            self._choice(self.outcome_box),
            self.datasets,
        )

    def _filter(self) -> None:
        if self._quiet:
            return
        frame = self.table()
        self._table = frame
        compare = self._choice(self.compare_box, NO_COMPARISON)
        columns = [
            "dataset",
            "query_id",
            "category",
            "outcome",
            "rank",
            "margin",
            "winner_kind",
            *(["rank_b", "margin_b", "winner_kind_b"] if compare else []),
            "query",
        ]
        self.table_html.value = f"<p>{len(frame)} queries</p>" + _frame_html(frame, columns)
        options = [
            (f"{r.dataset} · {r.query_id} · {r.outcome} · {r.query[:30]}", (r.dataset, r.query_id))
            for r in frame.itertuples()
        ]
        self._quiet = True
        try:
            self.query_box.options = options
            self.query_box.value = options[0][1] if options else None
        finally:
            self._quiet = False
        self._show()

    def detail_html(self) -> str:
        """The selected query: its text, per model the rank of the answer and the margin, the
        heatmap row (PNG) and the ranked documents with their kinds."""
        from embedlab.report import plots

        if not self.query_box.value:
            return "<p><i>No query matches these filters.</i></p>"
        dataset, query_id = self.query_box.value
        ds = self.datasets[dataset]
        models = [m for m in (self.model_box.value, self._choice(self.compare_box, NO_COMPARISON)) if m]
        models = list(dict.fromkeys(models))
        per_query = self.report.per_query
        parts = [
            (
                f"<h4>{html.escape(dataset)} · {html.escape(query_id)} · "
                f"{html.escape(ds.categories.get(query_id, ''))}</h4>"
            ),
            f"<p><b>query</b>: {html.escape(ds.queries[query_id])}</p><ul>",
        ]
        for m in models:
            row = per_query[
                (per_query["model"] == m) & (per_query["dataset"] == dataset) & (per_query["query_id"] == query_id)
            ].iloc[0]
            parts.append(
                f"<li><b>{html.escape(m)}</b>: answer at rank {int(row['rank'])}, margin {row['margin']:+.3f} (best "
                "answer − best other)</li>"
            )
        parts.append("</ul>")
        frame = heatmap_frame(self.report, ds, query_id, models)
        figures = plots.similarity_figures(frame)
        for fig in figures.values():
            parts.append(
                f'<img class="embedlab-heatmap" alt="heatmap row of {html.escape(query_id)}" '
                f'src="data:image/png;base64,{_png(fig)}"/>'
            )
        for m in models:
            ranked = ranked_documents(self.report, ds, m, query_id, self.k)
            parts.append(
                f"<p><b>{html.escape(m)}</b>: ranked documents</p>"
                + _frame_html(ranked, ["rank", "kind", "score", "doc_id", "document"])
            )
        return "".join(parts)

    def _show(self) -> None:
        if not self._quiet:
            self.detail.value = self.detail_html()

    def static_html(self) -> str:
        """The initial state as plain HTML: the filters as text, the table, the selected query."""
        filters = ", ".join(
            f"{b.description}: {b.value}"
            for b in (self.dataset_box, self.model_box, self.compare_box, self.category_box, self.outcome_box)
        )
        return (
            f'<div class="embedlab-static"><p><i>{html.escape(filters)}</i></p>'
            f"{self.table_html.value}{self.detail.value}"
            "<p style='color:#777'>Static view of the explorer's initial state "
            "(run the notebook in JupyterLab to filter).</p></div>"
        )

    def _repr_mimebundle_(self, **kwargs) -> dict[str, Any]:
        bundle = self.widget._repr_mimebundle_(**kwargs) or {}
        bundle["text/html"] = self.static_html()
        return bundle


def results(
    report_or_folder: Report | str | Path,
    datasets: Sequence[Dataset] | None = None,
    cache_dir: str | Path | None = None,
    *,
    dataset: str | None = None,
    model: str | None = None,
    compare: str | None = None,
    category: str | None = None,
    outcome: str | None = None,
) -> ResultsExplorer:
    """The results explorer of a Report (as `analysis.trap_report` returns) or a results
    folder (`embedlab run --out`; its scores are recomputed through the embedding cache,
    `with_scores`). The keyword arguments set the filters' initial values (model: default
    the last model of the run)."""
    report, by_name = with_scores(report_or_folder, datasets, cache_dir)
    return ResultsExplorer(report, by_name, dataset, model, compare, category, outcome)
