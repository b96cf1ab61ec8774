"""Two models side by side on one query of a run: both rankings next to each other (rank,
document, kind, score), the documents they disagree on highlighted (in one model's top k,
not the other's; the answer first for one only), whether each puts the answer first, and
both margins (answer score − best other score)."""

from __future__ import annotations

import html
from collections.abc import Mapping
from dataclasses import dataclass

import pandas as pd

from embedlab.data.datasets import Dataset
from embedlab.evaluation.results import Report
from embedlab.explore.widgets import say
from embedlab.report.lang import check_lang, kind_label
from embedlab.report.views import ranked_documents

DISAGREE_CLASS = "embedlab-disagree"  # a row of a document the two models place differently
FIRST_CLASS = "embedlab-first-differs"  # the first row of a model whose first document the other does not put first
SIDE_COLUMNS = ["model", "rank", "doc_id", "kind", "score", "document", "answer", "other_rank", "disagrees"]


def side_by_side_frame(
    report: Report, dataset: Dataset, query_id: str, model: str, other: str, k: int = 5
) -> pd.DataFrame:
    """Per model (`model`, then `other`) its first `k` documents for the query (answers below
    rank `k` added, as `ranked_documents`), with `answer`, `other_rank` (the same document's
    rank under the other model; ranks as the tables rank, ties against the model) and
    `disagrees`: the other model leaves this document out of its first `k`, or this is the
    answer and only one of the two ranks it first (a swap of neighbours within both top k is
    no disagreement: on a large corpus nearly every rank differs by a little)."""
    frames = []
    for name, rival in ((model, other), (other, model)):
        shown = ranked_documents(report, dataset, name, query_id, k)
        everywhere = ranked_documents(report, dataset, rival, query_id, len(dataset.doc_ids))
        rival_rank = dict(zip(everywhere["doc_id"], everywhere["rank"]))
        frames.append(
            shown.assign(
                answer=shown["kind"] == "answer",
                other_rank=[rival_rank.get(d, -1) for d in shown["doc_id"]],
            )
        )
    frame = pd.concat(frames, ignore_index=True)
    frame["disagrees"] = (frame["other_rank"] > k) | (
        frame["answer"] & ((frame["rank"] == 1) != (frame["other_rank"] == 1))
    )
    return frame[SIDE_COLUMNS]


def _query_row(report: Report, model: str, dataset: str, query_id: str) -> pd.Series:
    pq = report.per_query
    rows = pq[(pq["model"] == model) & (pq["dataset"] == dataset) & (pq["query_id"] == query_id)]
    if rows.empty:
        raise ValueError(f"no row of model {model!r} for query {query_id!r} of {dataset!r} in this report")
    return rows.iloc[0]


@dataclass
class SideBySide:
    """Two models' rankings of one query; displays as HTML (`html()`), in a kernel and in a
    static page alike. `frame()` is the table behind it, `margins()` each model's margin."""

    report: Report
    dataset: Dataset
    query_id: str
    model: str
    other: str
    k: int = 5
    lang: str = "both"

    def frame(self) -> pd.DataFrame:
        return side_by_side_frame(self.report, self.dataset, self.query_id, self.model, self.other, self.k)

    def margins(self) -> dict[str, float]:
        """Per model: answer score − best other score (each in its own units; below 0 a distractor won)."""
        return {
            m: float(_query_row(self.report, m, self.dataset.name, self.query_id)["margin"])
            for m in (self.model, self.other)
        }

    def verdict(self) -> str:
        """Which of the two puts the answer first, in words (`lang`)."""
        first = {
            m: bool(_query_row(self.report, m, self.dataset.name, self.query_id)["top1"] > 0)
            for m in (self.model, self.other)
        }
        if all(first.values()):
            return say("both answer first", self.lang)
        if not any(first.values()):
            return say("neither answer first", self.lang)
        return say("only answer first", self.lang, model=next(m for m, ok in first.items() if ok))

    def _column(self, sub: pd.DataFrame, model: str, margin: float, first_differs: bool) -> str:
        lang = self.lang
        head = (
            f"<p><b>{html.escape(model)}</b> · {say('margin', lang)} {margin:+.3f}</p>"
            f'<table class="embedlab-table embedlab-side" data-model="{html.escape(model)}" border="0"><tr>'
            + "".join(f"<th>{say(c, lang)}</th>" for c in ("rank", "kind", "score", "other's rank", "document"))
            + "</tr>"
        )
        rows = []
        for i, r in enumerate(sub.itertuples()):
            classes = [DISAGREE_CLASS] * bool(r.disagrees) + [FIRST_CLASS] * (i == 0 and first_differs)
            style = "background:#ffd6d6;" if FIRST_CLASS in classes else "background:#fff3bf;" if r.disagrees else ""
            style += "font-weight:bold;" if r.answer else ""
            rows.append(
                f'<tr class="{" ".join(classes)}" data-doc="{html.escape(r.doc_id)}" data-rank="{r.rank}" '
                f'data-other-rank="{r.other_rank}" style="{style}"><td>{r.rank}</td>'
                f"<td>{html.escape(kind_label(r.kind, lang))}</td>"
                f"<td>{r.score:.3f}</td><td>{r.other_rank}</td><td>{html.escape(r.document)}</td></tr>"
            )
        return head + "".join(rows) + "</table>"

    def html(self) -> str:
        frame, margins = self.frame(), self.margins()
        first = {m: frame[frame["model"] == m].iloc[0]["doc_id"] for m in (self.model, self.other)}
        differs = first[self.model] != first[self.other]
        columns = [self._column(frame[frame["model"] == m], m, margins[m], differs) for m in (self.model, self.other)]
        ds, q = self.dataset, self.query_id
        return (
            f'<div class="embedlab-side-by-side" data-query="{html.escape(q)}">'
            f"<h4>{say('side by side', self.lang)}: {html.escape(ds.name)} · {html.escape(q)} · "
            f"{html.escape(ds.categories.get(q, ''))}</h4>"
            f"<p><b>{say('query', self.lang)}</b>: {html.escape(ds.queries[q])}</p>"
            f"<p><i>{html.escape(self.verdict())}</i></p>"
            '<div style="display:flex; gap:16px; align-items:flex-start;">'
            + "".join(f'<div style="flex:1 1 0; min-width:0;">{c}</div>' for c in columns)
            + f"</div><p style='color:#777'>{say('disagree note', self.lang)}</p></div>"
        )

    def _repr_html_(self) -> str:
        return self.html()


def side_by_side(
    report_or_folder,
    model: str,
    other: str,
    query_id: str,
    dataset: str | None = None,
    datasets: Mapping[str, Dataset] | None = None,
    *,
    k: int = 5,
    cache_dir=None,
    lang: str = "both",
) -> SideBySide:
    """`model` and `other` side by side on query `query_id` of a Report or a results folder
    (`with_scores`); `dataset`: the data set holding the query (default: the only one of the
    run that has it). `lang`: zh / en / both."""
    from embedlab.explore.runs import with_scores

    check_lang(lang)
    report, by_name = with_scores(report_or_folder, list(datasets.values()) if datasets else None, cache_dir)
    if dataset is None:
        holding = [n for n, d in by_name.items() if query_id in d.queries]
        if len(holding) != 1:
            raise ValueError(
                f"query {query_id!r} is in {len(holding)} data sets of the run ({', '.join(holding) or 'none'}); "
                "name one with dataset="
            )
        dataset = holding[0]
    return SideBySide(report, by_name[dataset], query_id, model, other, k, lang)
