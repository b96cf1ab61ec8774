"""The trap explorer: a query and candidate documents, typed or loaded from a trap, scored
live by each model; bars per model and candidate, and the margin of the answer."""

from __future__ import annotations

import html
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from embedlab.data.datasets import TRAP_SETS, Dataset, load_dataset
from embedlab.explore.models import EXPLORE_SETTINGS, ModelRuns, load_model
from embedlab.explore.widgets import _widgets, say
from embedlab.models import ModelSpec
from embedlab.report.lang import check_lang, kind_label

BAR_CLASS = "embedlab-bar"  # one bar per (model, candidate) in the trap explorer's HTML
SEED_DISTRACTORS = 3  # candidates added to a query that judges no distractor (the seed)


@dataclass(frozen=True)
class Candidate:
    """A candidate document: its text, its kind (answer, a distractor kind, or "candidate"
    for one typed in) and whether it counts as the answer when margins are computed."""

    text: str
    kind: str = "candidate"
    answer: bool = False


def trap_candidates(
    dataset: Dataset, query_id: str, n_distractors: int = SEED_DISTRACTORS
) -> tuple[str, list[Candidate]]:
    """A trap of a data set: its query and the documents judged for it (answers first). A
    query that judges no distractor (the seed) gets the `n_distractors` other documents
    sharing most words with it (jieba)."""
    if query_id not in dataset.queries:
        raise KeyError(f"{dataset.name}: no query {query_id!r} (first ids: {', '.join(dataset.query_ids[:5])})")
    judged = dataset.judged_docs(query_id)
    out = [Candidate(dataset.corpus[d], dataset.kind_for(query_id, d), g > 0) for d, g in judged]
    if all(c.answer for c in out):
        from embedlab.data.words import segment

        others = [d for d in dataset.doc_ids if d not in dict(judged)]
        words = set(segment([dataset.queries[query_id]])[0])
        overlap = [len(words & set(w)) for w in segment([dataset.corpus[d] for d in others])]
        order = sorted(range(len(others)), key=lambda i: (-overlap[i], i))[:n_distractors]
        out += [Candidate(dataset.corpus[others[i]], dataset.kind_for(query_id, others[i])) for i in order]
    return dataset.queries[query_id], out


def candidate_scores(
    specs: Sequence[ModelSpec], runs: ModelRuns, query: str, candidates: Sequence[Candidate], instruction: str
) -> pd.DataFrame:
    """One row per (model, candidate): score, score name, whether it is ranked first
    (`winner`; every candidate tied at the top is), and per model the `margin` with what it
    measures (`margin_kind`): best answer − best other candidate when answers are marked,
    else first − second. `outcome`: "answer first", "distractor first", "tie" (an answer tied
    with another at the top: counts against the model, as in the tables) or "no answer
    marked". Empty candidates are left out."""
    rows = []
    shown = [(i, c) for i, c in enumerate(candidates) if c.text.strip()]
    for spec in specs:
        if not query.strip() or not shown:
            continue
        scores, score_name = runs.score(spec, query, [c.text for _, c in shown], instruction)
        answer = np.array([c.answer for _, c in shown])
        top = scores.max()
        winners = scores == top
        if answer.any() and (~answer).any():
            margin = scores[answer].max() - scores[~answer].max()
            margin_kind = "best answer − best other"
            outcome = "answer first" if margin > 0 else "tie" if margin == 0 else "distractor first"
        else:
            ordered = np.sort(scores)[::-1]
            margin = ordered[0] - ordered[1] if len(ordered) > 1 else np.nan
            margin_kind = "first − second"
            outcome = "no answer marked" if not answer.any() else "no other candidate"
        for (i, c), s, w in zip(shown, scores, winners):
            rows.append(
                {
                    "model": spec.name,
                    "score_name": score_name,
                    "doc": i,
                    "text": c.text,
                    "kind": c.kind,
                    "answer": c.answer,
                    "score": float(s),
                    "winner": bool(w),
                    "margin": float(margin),
                    "margin_kind": margin_kind,
                    "outcome": outcome,
                }
            )
    return pd.DataFrame(
        rows,
        columns=[
            "model",
            "score_name",
            "doc",
            "text",
            "kind",
            "answer",
            "score",
            "winner",
            "margin",
            "margin_kind",
            "outcome",
        ],
    )


def _label(value: str, lang: str) -> str:
    """A value of `candidate_scores` (score name, margin kind, outcome) in `lang` where it has
    a translation (a scorer's own score name stays as its record names it)."""
    from embedlab.explore.widgets import TEXTS

    return say(value, lang) if value in TEXTS else value


def _kind_color(kind: str) -> str:
    from embedlab.report.plots import KIND_COLORS

    return KIND_COLORS.get(kind, "#4C72B0")


def bars_html(frame: pd.DataFrame, errors: Mapping[str, str] | None = None, lang: str = "both") -> str:
    """Per-model bars of `candidate_scores` as HTML: one block per model, one bar per
    candidate (coloured by kind, ★ on the winner), the margin in the block's title. Each
    bar is a `div.embedlab-bar` with `data-model`, `data-doc` and `data-score`. The bar
    axis runs from a little below the lowest score to the highest (printed), so small cosine
    gaps stay visible. Labels in `lang` (zh / en / both); `data-outcome` stays the English value."""
    parts = ['<div class="embedlab-trap-bars" style="font-family: sans-serif; font-size: 13px;">']
    for model, sub in frame.groupby("model", sort=False):
        scores = sub["score"].to_numpy()
        hi, lo = float(scores.max()), float(scores.min())
        span = hi - lo
        lo = 0.0 if sub["score_name"].iloc[0] != "cosine similarity" and lo >= 0 else lo - max(0.5 * span, 0.02)
        first = sub.iloc[0]
        margin = "–" if np.isnan(first["margin"]) else f"{first['margin']:+.3f}"
        parts.append(
            f'<div class="embedlab-model" data-model="{html.escape(model)}" '
            f'data-outcome="{html.escape(first["outcome"])}" style="margin: 6px 0 10px 0;">'
            f"<div><b>{html.escape(model)}</b> · {html.escape(_label(first['score_name'], lang))} · "
            f"{say('margin', lang)} {margin} ({html.escape(_label(first['margin_kind'], lang))}) · "
            f"<i>{html.escape(_label(first['outcome'], lang))}</i>"
            f' <span style="color:#777">({say("bars from", lang)} {lo:.3f} {say("to", lang)} {hi:.3f})</span></div>'
        )
        for rec in sub.itertuples():
            width = 100.0 * (rec.score - lo) / (hi - lo) if hi > lo else 100.0
            star = "★ " if rec.winner else ""
            label = f"{star}[{kind_label(rec.kind, lang)}{' ✓' if rec.answer else ''}] {rec.text}"
            parts.append(
                f'<div class="{BAR_CLASS}" data-model="{html.escape(model)}" data-doc="{rec.doc}" '
                f'data-score="{rec.score:.6f}" data-winner="{str(rec.winner).lower()}" '
                'style="display:flex; align-items:center; gap:6px; margin:2px 0;">'
                '<div style="flex:0 0 45%; overflow:hidden; white-space:nowrap; text-overflow:ellipsis;'
                f'{" font-weight:bold;" if rec.winner else ""}" title="{html.escape(rec.text)}">'
                f"{html.escape(label)}</div>"
                '<div style="flex:1 1 auto; background:#eee; height:14px;">'
                f'<div style="width:{max(width, 1.0):.1f}%; height:14px; background:{_kind_color(rec.kind)};">'
                "</div></div>"
                f'<div style="flex:0 0 60px; text-align:right;">{rec.score:.3f}</div></div>'
            )
        parts.append("</div>")
    for model, message in (errors or {}).items():
        parts.append(
            f'<div class="embedlab-model-error" style="color:#b00">{html.escape(model)}: {html.escape(message)}</div>'
        )
    if frame.empty and not errors:
        parts.append(f"<i>{say('type a query', lang)}</i>")
    parts.append("</div>")
    return "".join(parts)


class TrapExplorer:
    """A query box, editable candidate documents (pre-filled from a trap of a bundled set;
    add / remove; tick the answers) and live per-model bars. `widget` is the ipywidgets
    tree; `scores()` and `summary()` are the current numbers. The setters (`set_query`,
    `set_document`, ...) change the widgets, exactly as typing does."""

    def __init__(
        self,
        specs: Sequence[ModelSpec],
        runs: ModelRuns,
        datasets: Sequence[str] = TRAP_SETS,
        dataset: str | None = None,
        query_id: str | None = None,
        query: str | None = None,
        documents: Sequence[Candidate | str | tuple[str, bool]] | None = None,
        lang: str = "both",
    ) -> None:
        w = _widgets()
        self.lang = check_lang(lang)
        self.specs = list(specs)
        self.runs = runs
        self._sets = {name: load_dataset(name) for name in datasets}
        dataset = dataset or next(iter(self._sets))
        if dataset not in self._sets:
            self._sets[dataset] = load_dataset(dataset)
        self._quiet = False
        self.errors: dict[str, str] = {}
        self.dataset_box = w.Dropdown(options=list(self._sets), value=dataset, description=say("data set", lang))
        self.trap_box = w.Dropdown(
            options=self._trap_options(dataset), description=say("trap", lang), layout=w.Layout(width="60%")
        )
        self.query_box = w.Text(description=say("query", lang), continuous_update=False, layout=w.Layout(width="95%"))
        self.query_box.add_class("embedlab-query")
        self.rows_box = w.VBox()
        self.add_button = w.Button(description=say("+ document", lang), tooltip=say("add a candidate document", lang))
        self.add_button.on_click(lambda _: self.add_document(""))
        self.bars = w.HTML()
        self.bars.add_class("embedlab-bars")
        self.status = w.HTML()
        self.rows: list[Any] = []
        self._kinds: dict[Any, str] = {}  # row -> its kind (the row's label shows it in `lang`)
        self.dataset_box.observe(self._on_dataset, names="value")
        self.trap_box.observe(self._on_trap, names="value")
        self.query_box.observe(lambda _: self.refresh(), names="value")
        self.widget = w.VBox(
            [
                w.HBox([self.dataset_box, self.trap_box]),
                self.query_box,
                self.rows_box,
                self.add_button,
                self.bars,
                self.status,
            ]
        )
        self.widget.add_class("embedlab-trap")
        if query is not None or documents is not None:
            self._fill(query or "", [_candidate(d) for d in (documents or [])])
        else:
            self.load_trap(dataset, query_id or self._sets[dataset].query_ids[0])

    # ---- state ----
    @property
    def instruction(self) -> str:
        """The task instruction prompts receive: the selected data set's (English)."""
        return self._sets[self.dataset_box.value].instruction

    @property
    def query(self) -> str:
        return self.query_box.value

    @property
    def candidates(self) -> list[Candidate]:
        return [Candidate(r.children[1].value, self._kinds[r], r.children[0].value) for r in self.rows]

    def _trap_options(self, dataset: str) -> list[tuple[str, str]]:
        ds = self._sets[dataset]
        return [(f"{q} · {ds.categories.get(q, '')} · {ds.queries[q][:24]}", q) for q in ds.query_ids]

    def _row(self, candidate: Candidate):
        w = _widgets()
        answer = w.Checkbox(
            value=candidate.answer, description=say("answer", self.lang), indent=False, layout=w.Layout(width="80px")
        )
        text = w.Text(value=candidate.text, continuous_update=False, layout=w.Layout(width="70%"))
        text.add_class("embedlab-document")
        kind = w.Label(value=kind_label(candidate.kind, self.lang), layout=w.Layout(width="110px"))
        remove = w.Button(
            description="✕", tooltip=say("remove this document", self.lang), layout=w.Layout(width="40px")
        )
        row = w.HBox([answer, text, kind, remove])
        self._kinds[row] = candidate.kind
        answer.observe(lambda _: self.refresh(), names="value")
        text.observe(lambda _: self.refresh(), names="value")
        remove.on_click(lambda _: self.remove_document(self.rows.index(row)))
        return row

    def _fill(self, query: str, candidates: Sequence[Candidate]) -> None:
        self._quiet = True
        try:
            self.query_box.value = query
            self._kinds.clear()
            self.rows = [self._row(c) for c in candidates]
            self.rows_box.children = tuple(self.rows)
        finally:
            self._quiet = False
        self.refresh()

    def _on_dataset(self, change) -> None:
        self._quiet = True
        try:
            self.trap_box.options = self._trap_options(change["new"])
        finally:
            self._quiet = False
        self.load_trap(change["new"], self.trap_box.options[0][1])

    def _on_trap(self, change) -> None:
        if not self._quiet and change["new"] is not None:
            self.load_trap(self.dataset_box.value, change["new"])

    # ---- what a user does ----
    def load_trap(self, dataset: str, query_id: str) -> None:
        """Fill the query and the candidates from trap `query_id` of `dataset`."""
        query, candidates = trap_candidates(self._sets[dataset], query_id)
        self._quiet = True
        try:
            if self.dataset_box.value != dataset:
                self.dataset_box.value = dataset
                self.trap_box.options = self._trap_options(dataset)
            self.trap_box.value = query_id
        finally:
            self._quiet = False
        self._fill(query, candidates)

    def set_query(self, text: str) -> None:
        self.query_box.value = text

    def set_document(self, index: int, text: str) -> None:
        self.rows[index].children[1].value = text

    def set_answer(self, index: int, answer: bool = True) -> None:
        self.rows[index].children[0].value = answer

    def add_document(self, text: str, answer: bool = False, kind: str = "candidate") -> None:
        self.rows.append(self._row(Candidate(text, kind, answer)))
        self.rows_box.children = tuple(self.rows)
        self.refresh()

    def remove_document(self, index: int) -> None:
        self._kinds.pop(self.rows.pop(index), None)
        self.rows_box.children = tuple(self.rows)
        self.refresh()

    # ---- numbers and views ----
    def refresh(self) -> None:
        """Score the current query and candidates under every model and redraw the bars. A
        model that fails is named in red above the status line (the others still draw)."""
        if self._quiet:
            return
        frames, self.errors = [], {}
        for spec in self.specs:
            try:
                frames.append(candidate_scores([spec], self.runs, self.query, self.candidates, self.instruction))
            except Exception as exc:  # noqa: BLE001 - shown beside the bars, named, not swallowed
                self.errors[spec.name] = f"{type(exc).__name__}: {exc}"
        frames = [f for f in frames if not f.empty]
        self._scores = pd.concat(frames, ignore_index=True) if frames else candidate_scores([], self.runs, "", [], "")
        self.bars.value = bars_html(self._scores, self.errors, self.lang)
        lang = self.lang
        counts = ", ".join(
            f"{m}: {n} {say('run', lang)}, {self.runs.cached.get(m, 0)} {say('from the cache', lang)}"
            for m, n in self.runs.ran.items()
        ) or say("none yet", lang)
        self.status.value = f'<span style="color:#777">{say("model runs so far", lang)}: {html.escape(counts)}</span>'

    def scores(self) -> pd.DataFrame:
        """The current per-(model, candidate) scores (`candidate_scores`)."""
        return self._scores.copy()

    def summary(self) -> pd.DataFrame:
        """Per model: the winning candidate, the margin and the outcome."""
        frame = self._scores
        if frame.empty:
            return pd.DataFrame(
                columns=["model", "score_name", "winner", "winner_kind", "margin", "margin_kind", "outcome"]
            )
        top = (
            frame[frame["winner"]]
            .groupby("model", sort=False)
            .agg(
                score_name=("score_name", "first"),
                winner=("text", " | ".join),
                winner_kind=("kind", " | ".join),
                margin=("margin", "first"),
                margin_kind=("margin_kind", "first"),
                outcome=("outcome", "first"),
            )
        )
        return top.reset_index()

    def static_html(self) -> str:
        """The current state as plain HTML (query, candidates, bars): what a page without a
        live kernel shows."""
        docs = "".join(
            f"<li>[{html.escape(kind_label(c.kind, self.lang))}{' ✓' if c.answer else ''}] {html.escape(c.text)}</li>"
            for c in self.candidates
        )
        return (
            f'<div class="embedlab-static"><p><b>{say("query", self.lang)}</b>: {html.escape(self.query)}</p>'
            f'<ol start="0">{docs}</ol>{bars_html(self._scores, self.errors, self.lang)}'
            f"<p style='color:#777'>{say('static trap', self.lang)}</p></div>"
        )

    def _repr_mimebundle_(self, **kwargs) -> dict[str, Any]:
        bundle = self.widget._repr_mimebundle_(**kwargs) or {}
        bundle["text/html"] = self.static_html()
        return bundle


def _candidate(item: Candidate | str | tuple[str, bool]) -> Candidate:
    if isinstance(item, Candidate):
        return item
    if isinstance(item, str):
        return Candidate(item)
    text, answer = item
    return Candidate(text, "answer" if answer else "candidate", bool(answer))


def classroom_models(models=None) -> list | None:
    """`models` plus the bundled models (bm25, USE, multilingual-e5-small) not among them,
    which the classroom exercises name; None stays None (the bundled models)."""
    from embedlab.models import DEFAULT_MODELS
    from embedlab.report.analysis import resolve_models

    if models is None:
        return None
    specs = resolve_models(models)
    have = {s.name for s in specs}
    return specs + resolve_models([m for m in DEFAULT_MODELS if m not in have])


def trap(
    models=None,
    dataset: str | None = None,
    query_id: str | None = None,
    *,
    query: str | None = None,
    documents: Sequence[Candidate | str | tuple[str, bool]] | None = None,
    datasets: Sequence[str] = TRAP_SETS,
    cache_dir: str | Path | None = None,
    lang: str = "both",
) -> TrapExplorer:
    """The trap explorer. `models`: names, `NAME=PATH`, config mappings or records (None: the
    bundled bm25, USE and multilingual-e5-small; BM25 and other scorers show their own
    score, not a cosine). Starts from trap `query_id` of `dataset` (default: the first of
    traps-zh), or from your own `query` and `documents` (texts, `(text, is_answer)` pairs or
    Candidates). Runs go through the embedding cache `cache_dir` (default: the shared one).
    `lang`: the language of every label, button and note (zh / en / both)."""
    from embedlab.report.analysis import resolve_models
    from embedlab.run.cache import default_cache_dir

    check_lang(lang)
    specs = resolve_models(models)
    for spec in specs:
        load_model(spec)  # load now: a model that cannot load fails here, with its name
    settings = replace(EXPLORE_SETTINGS, cache_dir=str(cache_dir or default_cache_dir()))
    return TrapExplorer(specs, ModelRuns(settings), datasets, dataset, query_id, query, documents, lang)
