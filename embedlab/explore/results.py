"""The results explorer: a run's queries filtered by data set, model, comparison, category
and outcome (`report.views.query_table`), and one query's heatmap row and ranked documents."""

from __future__ import annotations

import base64
import html
import io
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import pandas as pd

from embedlab.data.datasets import Dataset
from embedlab.evaluation.results import Report
from embedlab.explore.runs import with_scores
from embedlab.explore.widgets import ALL, NO_COMPARISON, TEXTS, VALUE_COLUMNS, _widgets, options, say, shown_value
from embedlab.report.lang import check_lang
from embedlab.report.views import OUTCOMES, heatmap_frame, query_table, ranked_documents


def _png(fig) -> str:
    import matplotlib.pyplot as plt

    buf = io.BytesIO()
    fig.savefig(buf, format="png", dpi=90, bbox_inches="tight")
    plt.close(fig)
    return base64.b64encode(buf.getvalue()).decode("ascii")


def _frame_html(frame: pd.DataFrame, columns: Sequence[str], lang: str = "en") -> str:
    """The table's first MAX_ROWS rows, the whole table folded in a <details> below when longer."""
    from embedlab.report.formats import MAX_ROWS

    shown = frame[[c for c in columns if c in frame.columns]].copy()
    for column in VALUE_COLUMNS & set(shown.columns):
        shown[column] = [shown_value(column, v, lang) for v in shown[column]]
    shown = shown.rename(columns={c: say(c, lang) for c in shown.columns if c in TEXTS})

    def html_of(rows: pd.DataFrame) -> str:
        return rows.to_html(
            index=False, escape=True, float_format=lambda v: f"{v:.3f}", classes="embedlab-table", border=0
        )

    if len(shown) <= MAX_ROWS:
        return html_of(shown)
    return (
        html_of(shown.head(MAX_ROWS))
        + f"<details><summary>{say('all rows', lang)}: {len(shown)}</summary>{html_of(shown)}</details>"
    )


class ResultsExplorer:
    """Filters (data set, model, comparison model, category, outcome), the table of matching
    queries, and for the selected query its heatmap row, ranked documents and margins.
    `table()` is the current filtered table; `detail_html()` the selected query's view (with
    a comparison model, the two side by side: `compare.SideBySide`). The export button writes
    the selected queries the model gets wrong to the file box's path as a trap file
    (`export.export_failures`). Every label in `lang` (zh / en / both)."""

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
        lang: str = "both",
        export_path: str | Path | None = "failures.yaml",
    ) -> None:
        w = _widgets()
        self.lang = check_lang(lang)
        self.report, self.datasets, self.k = report, dict(datasets), k
        models = list(dict.fromkeys(report.per_query["model"]))
        categories = sorted({c for c in report.per_query["category"] if isinstance(c, str) and c})
        self._quiet = True
        self.dataset_box = w.Dropdown(
            options=options([ALL], report.datasets, lang), value=dataset or ALL, description=say("data set", lang)
        )
        self.model_box = w.Dropdown(options=models, value=model or models[-1], description=say("model", lang))
        self.compare_box = w.Dropdown(
            options=options([NO_COMPARISON], models, lang),
            value=compare or NO_COMPARISON,
            description=say("compare with", lang),
        )
        self.category_box = w.Dropdown(
            options=options([ALL], categories, lang), value=category or ALL, description=say("category", lang)
        )
        self.outcome_box = w.Dropdown(
            options=options([ALL, *OUTCOMES], [], lang), value=outcome or ALL, description=say("outcome", lang)
        )
        self.query_box = w.Select(options=[], rows=8, description=say("query", lang), layout=w.Layout(width="95%"))
        self.table_html = w.HTML()
        self.detail = w.HTML()
        self.detail.add_class("embedlab-detail")
        for box in (self.dataset_box, self.model_box, self.compare_box, self.category_box, self.outcome_box):
            box.observe(lambda _: self._filter(), names="value")
        self.query_box.observe(lambda _: self._show(), names="value")
        self.export_path = w.Text(value=str(export_path or ""), description=say("file", lang))
        self.export_button = w.Button(description=say("export", lang), tooltip=say("export tooltip", lang))
        self.export_button.on_click(lambda _: self.export())
        self.export_status = w.HTML()
        export_row = [w.HBox([self.export_path, self.export_button]), self.export_status] if export_path else []
        filters = w.HBox(
            [
                w.VBox([self.dataset_box, self.category_box, self.outcome_box]),
                w.VBox([self.model_box, self.compare_box]),
            ]
        )
        self.widget = w.VBox(
            [
                filters,
                self.query_box,
                w.Accordion([self.table_html], titles=(say("table of the queries", lang),)),
                self.detail,
                *export_row,
            ]
        )
        self.widget.add_class("embedlab-results")
        self._quiet = False
        self._filter()

    def _choice(self, box, empty: str = ALL) -> str | None:
        return None if box.value == empty else box.value

    def filters(self) -> dict[str, str | None]:
        """The filters' values as `query_table` takes them (None: no filter)."""
        return {
            "compare": self._choice(self.compare_box, NO_COMPARISON),
            "dataset": self._choice(self.dataset_box),
            "category": self._choice(self.category_box),
            "outcome": self._choice(self.outcome_box),
        }

    def table(self) -> pd.DataFrame:
        """The queries the filters select (`query_table`)."""
        return query_table(self.report, self.model_box.value, datasets=self.datasets, **self.filters())

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
        self.table_html.value = f"<p>{len(frame)} {say('queries', self.lang)}</p>" + _frame_html(
            frame, columns, self.lang
        )
        options = [
            (f"{r.dataset} · {r.query_id} · {say(r.outcome, self.lang)} · {r.query[:30]}", (r.dataset, r.query_id))
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
        heatmap row (PNG), and the ranked documents with their kinds: one model's alone, or
        with a comparison model both side by side, their disagreements highlighted."""
        from embedlab.explore.compare import SideBySide
        from embedlab.report import plots

        lang = self.lang
        if not self.query_box.value:
            return f"<p><i>{say('no query', lang)}</i></p>"
        dataset, query_id = self.query_box.value
        ds = self.datasets[dataset]
        compare = self._choice(self.compare_box, NO_COMPARISON)
        models = list(dict.fromkeys(m for m in (self.model_box.value, compare) if m))
        per_query = self.report.per_query
        parts = [
            (
                f"<h4>{html.escape(dataset)} · {html.escape(query_id)} · "
                f"{html.escape(ds.categories.get(query_id, ''))}</h4>"
            ),
            f"<p><b>{say('query', lang)}</b>: {html.escape(ds.queries[query_id])}</p><ul>",
        ]
        for m in models:
            row = per_query[
                (per_query["model"] == m) & (per_query["dataset"] == dataset) & (per_query["query_id"] == query_id)
            ].iloc[0]
            parts.append(
                f"<li><b>{html.escape(m)}</b>: {say('answer at rank', lang)} {int(row['rank'])}, "
                f"{say('margin', lang)} {row['margin']:+.3f} ({say('best answer − best other', lang)})</li>"
            )
        parts.append("</ul>")
        frame = heatmap_frame(self.report, ds, query_id, models)
        for fig in plots.similarity_figures(frame).values():
            parts.append(
                f'<img class="embedlab-heatmap" alt="{say("heatmap row of", lang)} {html.escape(query_id)}" '
                f'src="data:image/png;base64,{_png(fig)}"/>'
            )
        if len(models) == 2:
            parts.append(SideBySide(self.report, ds, query_id, models[0], models[1], self.k, lang).html())
        else:
            ranked = ranked_documents(self.report, ds, models[0], query_id, self.k)
            parts.append(
                f"<p><b>{html.escape(models[0])}</b>: {say('ranked documents', lang)}</p>"
                + _frame_html(ranked, ["rank", "kind", "score", "doc_id", "document"], lang)
            )
        return "".join(parts)

    def _show(self) -> None:
        if not self._quiet:
            self.detail.value = self.detail_html()

    def export(self, path: str | Path | None = None) -> Path | None:
        """Write the queries the filters select that the model gets wrong to `path` (default:
        the file box) as a trap file (`export.export_failures`); the line below the button
        says where and how many, or why nothing was written. Returns the path, or None."""
        from embedlab.explore.export import export_failures

        target = Path(path or self.export_path.value)
        try:
            written = export_failures(self.report, target, self.model_box.value, self.datasets, **self.filters())
        except (ValueError, OSError) as exc:
            self.export_status.value = f'<span style="color:#b00">{html.escape(str(exc))}</span>'
            return None
        import yaml

        n = len(yaml.safe_load(written.read_text(encoding="utf-8"))["queries"])
        done = f"{say('exported', self.lang)}: {n} {say('failures to', self.lang)}"
        self.export_status.value = f"{done} <code>{html.escape(str(written))}</code>"
        return written

    def static_html(self) -> str:
        """The initial state as plain HTML: the filters as text, the table, the selected query."""
        filters = ", ".join(
            f"{b.description}: {b.label}"
            for b in (self.dataset_box, self.model_box, self.compare_box, self.category_box, self.outcome_box)
        )
        return (
            f'<div class="embedlab-static"><p><i>{html.escape(filters)}</i></p>'
            f"{self.table_html.value}{self.detail.value}"
            f"<p style='color:#777'>{say('static results', self.lang)}</p></div>"
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
    lang: str = "both",
    export_path: str | Path | None = "failures.yaml",
) -> ResultsExplorer:
    """The results explorer of a Report (as `analysis.trap_report` returns) or a results
    folder (`embedlab run --out`; its scores are recomputed through the embedding cache,
    `with_scores`). The keyword arguments set the filters' initial values (model: default
    the last model of the run), the language of every label (`lang`: zh / en / both) and
    where the export button writes its trap file (`export_path`; None: no file box and no
    button, as on a served class page, where a visitor must not write files on the server)."""
    check_lang(lang)
    report, by_name = with_scores(report_or_folder, datasets, cache_dir)
    return ResultsExplorer(
        report, by_name, dataset, model, compare, category, outcome, lang=lang, export_path=export_path
    )
