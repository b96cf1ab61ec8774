"""Interactive explorers for JupyterLab (ipywidgets, the `notebooks` extra): `trap()` lets a
teacher type a query and candidate documents and watch each model score them live;
`results()` lets an analyst filter a run's queries and open one query's heatmap row and
ranked documents.

Both return an object that displays as a live widget in a kernel and, where no live kernel
renders it (nbconvert HTML, a GitHub preview), as static HTML of its initial state: the
display bundle carries both, and a viewer without the widget manager shows the HTML.

Models are loaded once per kernel process, in the kernel (no worker process), and
embeddings are kept per (model, kind, instruction, text): an edit re-encodes only the text
that changed. An entry point: it may import every stage."""

from __future__ import annotations

import base64
import functools
import html
import io
import json
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from embedlab.data.categories import kind_for_query
from embedlab.data.datasets import Dataset, load_dataset
from embedlab.evaluation.results import Report
from embedlab.models import ModelSpec

TRAP_SETS: tuple[str, ...] = ("traps-zh", "seed")
OUTCOMES: tuple[str, ...] = ("won", "lost", "tied")
ALL = "all"
NO_COMPARISON = "(none)"
BAR_CLASS = "embedlab-bar"  # one bar per (model, candidate) in the trap explorer's HTML
SEED_DISTRACTORS = 3  # candidates added to a query that judges no distractor (the seed)


def _widgets():
    try:
        import ipywidgets
    except ImportError as exc:  # pragma: no cover - the notebooks extra brings it
        raise ImportError("embedlab.explore needs ipywidgets: pip install 'embedlab[notebooks]'") from exc
    return ipywidgets


# ---- models, loaded once; embeddings kept per text ------------------------------------------


def _spec_key(spec: ModelSpec) -> str:
    return json.dumps(spec.to_dict(), sort_keys=True, default=str)


@functools.cache
def _backend(key: str):
    """The backend of a record, loaded once per process (the record's JSON is the key)."""
    from embedlab.models.backends import load_backend

    return load_backend(ModelSpec(**json.loads(key)))


def load_model(spec: ModelSpec):
    """The Encoder or Scorer of `spec`, loaded in this process once and reused."""
    return _backend(_spec_key(spec))


@dataclass
class EmbeddingMemo:
    """Embeddings kept per (model, kind, instruction, text); `encoded[model]` counts the
    texts each model actually encoded (a cached text costs nothing)."""

    vectors: dict[tuple[str, str, str, str], np.ndarray] = field(default_factory=dict)
    encoded: dict[str, int] = field(default_factory=dict)

    def embed(self, spec: ModelSpec, encoder, texts: Sequence[str], kind: str, instruction: str) -> np.ndarray:
        """Unit-length embeddings of `texts`, shape (len(texts), dim), float64; only the
        texts not seen before (for this model, kind and instruction) go to the encoder."""
        key = _spec_key(spec)
        missing = list(dict.fromkeys(t for t in texts if (key, kind, instruction, t) not in self.vectors))
        if missing:
            out = np.asarray(encoder.encode(missing, kind, instruction=instruction), dtype=np.float64)
            if out.shape[0] != len(missing):
                raise RuntimeError(f"model {spec.name!r} returned {out.shape[0]} embeddings for {len(missing)} texts")
            norms = np.linalg.norm(out, axis=1, keepdims=True)
            out = np.divide(out, norms, out=np.zeros_like(out), where=norms > 0)
            for text, vector in zip(missing, out):
                self.vectors[(key, kind, instruction, text)] = vector
            self.encoded[spec.name] = self.encoded.get(spec.name, 0) + len(missing)
        return np.stack([self.vectors[(key, kind, instruction, t)] for t in texts]) if texts else np.zeros((0, 0))


def score_candidates(spec: ModelSpec, model, memo: EmbeddingMemo, query: str, documents: Sequence[str], instruction: str) -> tuple[np.ndarray, str]:
    """Scores of `documents` for `query` under one model, and the score's name: cosine
    similarity for an encoder (embeddings from `memo`), the scorer's own score for a scorer
    (BM25 indexes just these documents, so its IDF is theirs)."""
    from embedlab.models.backends import Encoder, Scorer

    if isinstance(model, Scorer) and not isinstance(model, Encoder):
        model.index(list(documents))
        scores = np.asarray(model.score([query]), dtype=np.float64)[0]
        return scores, spec.score_name
    q = memo.embed(spec, model, [query], "query", instruction)
    d = memo.embed(spec, model, list(documents), "document", instruction)
    return d @ q[0], "cosine similarity"


# ---- the trap explorer -------------------------------------------------------------------


@dataclass(frozen=True)
class Candidate:
    """A candidate document: its text, its kind (answer, a distractor kind, or "candidate"
    for one typed in) and whether it counts as the answer when margins are computed."""

    text: str
    kind: str = "candidate"
    answer: bool = False


def trap_candidates(dataset: Dataset, query_id: str, n_distractors: int = SEED_DISTRACTORS) -> tuple[str, list[Candidate]]:
    """A trap of a data set: its query and the documents judged for it (answers first). A
    query that judges no distractor (the seed) gets the `n_distractors` other documents
    sharing most words with it (jieba)."""
    if query_id not in dataset.queries:
        raise KeyError(f"{dataset.name}: no query {query_id!r} (first ids: {', '.join(dataset.query_ids[:5])})")
    judged = sorted(dataset.qrels.get(query_id, {}).items(), key=lambda item: -item[1])
    out = [Candidate(dataset.corpus[d], kind_for_query(dataset.kinds.get(d, ""), g > 0) or "unjudged", g > 0) for d, g in judged]
    if all(c.answer for c in out):
        from embedlab.models.backends.lexical import segment

        others = [d for d in dataset.doc_ids if d not in dict(judged)]
        words = set(segment([dataset.queries[query_id]])[0])
        overlap = [len(words & set(w)) for w in segment([dataset.corpus[d] for d in others])]
        order = sorted(range(len(others)), key=lambda i: (-overlap[i], i))[:n_distractors]
        out += [Candidate(dataset.corpus[others[i]], kind_for_query(dataset.kinds.get(others[i], ""), False) or "unjudged") for i in order]
    return dataset.queries[query_id], out


def candidate_scores(specs: Sequence[ModelSpec], memo: EmbeddingMemo, query: str, candidates: Sequence[Candidate], instruction: str) -> pd.DataFrame:
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
        scores, score_name = score_candidates(spec, load_model(spec), memo, query, [c.text for _, c in shown], instruction)
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
            rows.append({
                "model": spec.name, "score_name": score_name, "doc": i, "text": c.text, "kind": c.kind, "answer": c.answer,
                "score": float(s), "winner": bool(w), "margin": float(margin), "margin_kind": margin_kind, "outcome": outcome,
            })
    return pd.DataFrame(rows, columns=["model", "score_name", "doc", "text", "kind", "answer", "score", "winner", "margin", "margin_kind", "outcome"])


def _kind_color(kind: str) -> str:
    from embedlab.report.plots import KIND_COLORS

    return KIND_COLORS.get(kind, "#4C72B0")


def bars_html(frame: pd.DataFrame, errors: Mapping[str, str] | None = None) -> str:
    """Per-model bars of `candidate_scores` as HTML: one block per model, one bar per
    candidate (coloured by kind, ★ on the winner), the margin in the block's title. Each
    bar is a `div.embedlab-bar` with `data-model`, `data-doc` and `data-score`. The bar
    axis runs from a little below the lowest score to the highest (printed), so small cosine
    gaps stay visible."""
    parts = ['<div class="embedlab-trap-bars" style="font-family: sans-serif; font-size: 13px;">']
    for model, sub in frame.groupby("model", sort=False):
        scores = sub["score"].to_numpy()
        hi, lo = float(scores.max()), float(scores.min())
        span = hi - lo
        lo = 0.0 if sub["score_name"].iloc[0] != "cosine similarity" and lo >= 0 else lo - max(0.5 * span, 0.02)
        first = sub.iloc[0]
        margin = "–" if np.isnan(first["margin"]) else f"{first['margin']:+.3f}"
        parts.append(
            f'<div class="embedlab-model" data-model="{html.escape(model)}" data-outcome="{html.escape(first["outcome"])}" style="margin: 6px 0 10px 0;">'
            f"<div><b>{html.escape(model)}</b> · {html.escape(first['score_name'])} · margin {margin} "
            f"({html.escape(first['margin_kind'])}) · <i>{html.escape(first['outcome'])}</i>"
            f' <span style="color:#777">(bars from {lo:.3f} to {hi:.3f})</span></div>'
        )
        for rec in sub.itertuples():
            width = 100.0 * (rec.score - lo) / (hi - lo) if hi > lo else 100.0
            star = "★ " if rec.winner else ""
            label = f"{star}[{rec.kind}{' ✓' if rec.answer else ''}] {rec.text}"
            parts.append(
                f'<div class="{BAR_CLASS}" data-model="{html.escape(model)}" data-doc="{rec.doc}" data-score="{rec.score:.6f}" '
                f'data-winner="{str(rec.winner).lower()}" style="display:flex; align-items:center; gap:6px; margin:2px 0;">'
                f'<div style="flex:0 0 45%; overflow:hidden; white-space:nowrap; text-overflow:ellipsis;{" font-weight:bold;" if rec.winner else ""}" title="{html.escape(rec.text)}">{html.escape(label)}</div>'
                f'<div style="flex:1 1 auto; background:#eee; height:14px;"><div style="width:{max(width, 1.0):.1f}%; height:14px; background:{_kind_color(rec.kind)};"></div></div>'
                f'<div style="flex:0 0 60px; text-align:right;">{rec.score:.3f}</div></div>'
            )
        parts.append("</div>")
    for model, message in (errors or {}).items():
        parts.append(f'<div class="embedlab-model-error" style="color:#b00">{html.escape(model)}: {html.escape(message)}</div>')
    if frame.empty and not errors:
        parts.append("<i>Type a query and at least one candidate document.</i>")
    parts.append("</div>")
    return "".join(parts)


class TrapExplorer:
    """A query box, editable candidate documents (pre-filled from a trap of a bundled set;
    add / remove; tick the answers) and live per-model bars. `widget` is the ipywidgets
    tree; `scores()` and `summary()` are the current numbers. The setters (`set_query`,
    `set_document`, ...) change the widgets, exactly as typing does."""

    def __init__(self, specs: Sequence[ModelSpec], memo: EmbeddingMemo, datasets: Sequence[str] = TRAP_SETS,
                 dataset: str | None = None, query_id: str | None = None, query: str | None = None,
                 documents: Sequence[Candidate | str | tuple[str, bool]] | None = None) -> None:
        w = _widgets()
        self.specs = list(specs)
        self.memo = memo
        self._sets = {name: load_dataset(name) for name in datasets}
        dataset = dataset or next(iter(self._sets))
        if dataset not in self._sets:
            self._sets[dataset] = load_dataset(dataset)
        self._quiet = False
        self.errors: dict[str, str] = {}
        self.dataset_box = w.Dropdown(options=list(self._sets), value=dataset, description="data set")
        self.trap_box = w.Dropdown(options=self._trap_options(dataset), description="trap", layout=w.Layout(width="60%"))
        self.query_box = w.Text(description="query", continuous_update=False, layout=w.Layout(width="95%"))
        self.query_box.add_class("embedlab-query")
        self.rows_box = w.VBox()
        self.add_button = w.Button(description="+ document", tooltip="add a candidate document")
        self.add_button.on_click(lambda _: self.add_document(""))
        self.bars = w.HTML()
        self.bars.add_class("embedlab-bars")
        self.status = w.HTML()
        self.rows: list[Any] = []
        self.dataset_box.observe(self._on_dataset, names="value")
        self.trap_box.observe(self._on_trap, names="value")
        self.query_box.observe(lambda _: self.refresh(), names="value")
        self.widget = w.VBox([w.HBox([self.dataset_box, self.trap_box]), self.query_box, self.rows_box, self.add_button, self.bars, self.status])
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
        return [Candidate(r.children[1].value, r.children[2].value, r.children[0].value) for r in self.rows]

    def _trap_options(self, dataset: str) -> list[tuple[str, str]]:
        ds = self._sets[dataset]
        return [(f"{q} · {ds.categories.get(q, '')} · {ds.queries[q][:24]}", q) for q in ds.query_ids]

    def _row(self, candidate: Candidate):
        w = _widgets()
        answer = w.Checkbox(value=candidate.answer, description="answer", indent=False, layout=w.Layout(width="80px"))
        text = w.Text(value=candidate.text, continuous_update=False, layout=w.Layout(width="70%"))
        text.add_class("embedlab-document")
        kind = w.Label(value=candidate.kind, layout=w.Layout(width="110px"))
        remove = w.Button(description="✕", tooltip="remove this document", layout=w.Layout(width="40px"))
        row = w.HBox([answer, text, kind, remove])
        answer.observe(lambda _: self.refresh(), names="value")
        text.observe(lambda _: self.refresh(), names="value")
        remove.on_click(lambda _: self.remove_document(self.rows.index(row)))
        return row

    def _fill(self, query: str, candidates: Sequence[Candidate]) -> None:
        self._quiet = True
        try:
            self.query_box.value = query
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
        del self.rows[index]
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
                frames.append(candidate_scores([spec], self.memo, self.query, self.candidates, self.instruction))
            except Exception as exc:  # noqa: BLE001 - shown beside the bars, named, not swallowed
                self.errors[spec.name] = f"{type(exc).__name__}: {exc}"
        frames = [f for f in frames if not f.empty]
        self._scores = pd.concat(frames, ignore_index=True) if frames else candidate_scores([], self.memo, "", [], "")
        self.bars.value = bars_html(self._scores, self.errors)
        counts = ", ".join(f"{m}: {n}" for m, n in self.memo.encoded.items()) or "none yet"
        self.status.value = f'<span style="color:#777">texts encoded so far (each text once per model): {html.escape(counts)}</span>'

    def scores(self) -> pd.DataFrame:
        """The current per-(model, candidate) scores (`candidate_scores`)."""
        return self._scores.copy()

    def summary(self) -> pd.DataFrame:
        """Per model: the winning candidate, the margin and the outcome."""
        frame = self._scores
        if frame.empty:
            return pd.DataFrame(columns=["model", "score_name", "winner", "winner_kind", "margin", "margin_kind", "outcome"])
        top = frame[frame["winner"]].groupby("model", sort=False).agg(
            score_name=("score_name", "first"), winner=("text", " | ".join), winner_kind=("kind", " | ".join),
            margin=("margin", "first"), margin_kind=("margin_kind", "first"), outcome=("outcome", "first"))
        return top.reset_index()

    def static_html(self) -> str:
        """The current state as plain HTML (query, candidates, bars): what a page without a
        live kernel shows."""
        docs = "".join(f"<li>[{html.escape(c.kind)}{' ✓' if c.answer else ''}] {html.escape(c.text)}</li>" for c in self.candidates)
        return (
            f'<div class="embedlab-static"><p><b>query</b>: {html.escape(self.query)}</p><ol start="0">{docs}</ol>'
            f"{bars_html(self._scores, self.errors)}<p style='color:#777'>Static view of the explorer's initial state "
            "(run the notebook in JupyterLab to edit the query and the documents).</p></div>"
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


@functools.cache
def _default_memo() -> EmbeddingMemo:
    return EmbeddingMemo()


def trap(models=None, dataset: str | None = None, query_id: str | None = None, *, query: str | None = None,
         documents: Sequence[Candidate | str | tuple[str, bool]] | None = None, datasets: Sequence[str] = TRAP_SETS,
         memo: EmbeddingMemo | None = None) -> TrapExplorer:
    """The trap explorer. `models`: names, `NAME=PATH`, config mappings or records (None: the
    bundled bm25, USE and multilingual-e5-small; BM25 and other scorers show their own
    score, not a cosine). Starts from trap `query_id` of `dataset` (default: the first of
    traps-zh), or from your own `query` and `documents` (texts, `(text, is_answer)` pairs or
    Candidates). Embeddings are kept in `memo` (default: one per kernel process)."""
    from embedlab.report.analysis import resolve_models

    specs = resolve_models(models)
    for spec in specs:
        load_model(spec)  # load now: a model that cannot load fails here, with its name
    return TrapExplorer(specs, memo if memo is not None else _default_memo(), datasets, dataset, query_id, query, documents)


# ---- the results explorer ------------------------------------------------------------------


def with_scores(report: Report | str | Path, datasets: Sequence[Dataset] | None = None, cache_dir: str | Path | None = None) -> tuple[Report, dict[str, Dataset]]:
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
            raise FileNotFoundError(f"{folder}: not a results folder (no run.json); expected the --out folder of `embedlab run`")
        report = Report.from_dir(folder)
    sets = list(datasets) if datasets is not None else resolve_datasets(list(report.config.get("datasets") or report.datasets))
    by_name = {d.name: d for d in sets}
    for name, fingerprint in report.datasets.items():
        if name not in by_name:
            raise ValueError(f"{folder or 'report'}: data set {name!r} of the run not given (datasets=...)")
        if fingerprint and by_name[name].fingerprint() != fingerprint:
            raise ValueError(f"{folder or 'report'}: data set {name!r} changed since the run (fingerprint differs); re-run it")
    if not report.scores:
        known = set(RunSettings.__dataclass_fields__)
        settings = RunSettings(**{k: v for k, v in (report.config.get("settings") or {}).items() if k in known})
        settings = replace(settings, progress=False, cache_dir=str(cache_dir or default_cache_dir()))
        models = [m for m in report.config.get("models", []) if m.get("name") in set(report.per_query["model"])]
        rescored = evaluate(resolve_models(models), [by_name[n] for n in report.datasets], settings)
        report = replace(report, scores=rescored.scores)
    return report, by_name


def query_outcomes(report: Report, model: str, compare: str | None = None) -> pd.DataFrame:
    """Per query of `model`: rank of the answer, margin, the kind that won, and `outcome`:
    alone, "won" (answer first), "tied" (the answer tied with a distractor at the top: counts
    as lost in the tables) or "lost"; against `compare`, the paired top-1: "won" (`model`
    right, `compare` wrong), "lost" (the reverse), "tied" (the same), with `compare`'s rank,
    margin and winner kind beside (`*_b`) and `disagree`."""
    columns = ["dataset", "query_id", "category", "rank", "top1", "margin", "winner_kind"]
    frame = report.per_query
    a = frame[frame["model"] == model][columns].copy()
    if a.empty:
        raise ValueError(f"no model {model!r} in this report (models: {', '.join(dict.fromkeys(frame['model']))})")
    a["winner_kind"] = a["winner_kind"].fillna("").replace({"answer": "other-answer"})
    if compare is None:
        a["outcome"] = np.where(a["top1"] > 0, "won", np.where(a["margin"] == 0, "tied", "lost"))
        return a.reset_index(drop=True)
    b = frame[frame["model"] == compare][["dataset", "query_id", "rank", "top1", "margin", "winner_kind"]].copy()
    if b.empty:
        raise ValueError(f"no model {compare!r} in this report")
    b["winner_kind"] = b["winner_kind"].fillna("").replace({"answer": "other-answer"})
    both = a.merge(b, on=["dataset", "query_id"], suffixes=("", "_b"))
    diff = both["top1"] - both["top1_b"]
    both["outcome"] = np.where(diff > 0, "won", np.where(diff < 0, "lost", "tied"))
    both["disagree"] = diff != 0
    return both.reset_index(drop=True)


def _datasets(report: Report, datasets: Mapping[str, Dataset] | None) -> Mapping[str, Dataset]:
    """The run's data sets by name: as given, else loaded by name."""
    if datasets is not None:
        return datasets
    from embedlab.report.analysis import resolve_datasets

    return {d.name: d for d in resolve_datasets(list(report.datasets))}


def query_table(report: Report, model: str, compare: str | None = None, dataset: str | None = None, category: str | None = None,
                outcome: str | None = None, datasets: Mapping[str, Dataset] | None = None) -> pd.DataFrame:
    """The queries of `model` (against `compare` when given) filtered by data set, category
    and outcome (`query_outcomes`), with their text. With a comparison, the queries where the
    two models disagree come first. `datasets`: the run's data sets by name (default: loaded
    by name)."""
    datasets = _datasets(report, datasets)
    if outcome is not None and outcome not in OUTCOMES:
        raise ValueError(f"outcome must be one of {OUTCOMES}, got {outcome!r}")
    frame = query_outcomes(report, model, compare)
    if dataset is not None:
        frame = frame[frame["dataset"] == dataset]
    if category is not None:
        frame = frame[frame["category"] == category]
    if outcome is not None:
        frame = frame[frame["outcome"] == outcome]
    frame = frame.assign(query=[datasets[d].queries[q] for d, q in zip(frame["dataset"], frame["query_id"])])
    if compare is not None:
        frame = frame.sort_values("disagree", ascending=False, kind="stable")
    return frame.reset_index(drop=True)


def ranked_documents(report: Report, dataset: Dataset, model: str, query_id: str, k: int = 5) -> pd.DataFrame:
    """The documents `model` ranks first for one query (ties against the model, as the
    tables rank), with their kinds for this query and scores; the answers below rank `k`
    are added, so the answer's place is always shown."""
    from embedlab.evaluation.metrics import pessimistic_order

    row = dataset.query_ids.index(query_id)
    scores = report.scores[(model, dataset.name)][row]
    gains = dataset.gains([query_id])
    options = next((m.get("options") or {} for m in report.config.get("models", []) if m.get("name") == model), {})
    eligible = dataset.judged([query_id]) if (options.get("candidates") or dataset.meta.candidates) == "judged" else None
    order = pessimistic_order(scores[None, :], gains, eligible)[0]
    keep = [i for rank, i in enumerate(order) if rank < k or gains[0, i] > 0]
    doc_ids = dataset.doc_ids
    rank_of = {i: r + 1 for r, i in enumerate(order)}
    return pd.DataFrame({
        "model": model, "rank": [rank_of[i] for i in keep], "doc_id": [doc_ids[i] for i in keep],
        "kind": [kind_for_query(dataset.kinds.get(doc_ids[i], ""), gains[0, i] > 0) or "unjudged" for i in keep],
        "score": [float(scores[i]) for i in keep], "document": [dataset.corpus[doc_ids[i]] for i in keep],
    })


def heatmap_frame(report: Report, dataset: Dataset, query_id: str, models: Sequence[str]) -> pd.DataFrame:
    """One query's row of `analysis.similarity_frame` for `models`: the documents judged for
    it and those a model ranked first (the whole corpus of a small set), re-numbered."""
    from embedlab.report.analysis import similarity_frame

    category = dataset.categories.get(query_id) or None
    frame = similarity_frame(report, [dataset], category=category)
    frame = frame[(frame["query_id"] == query_id) & frame["model"].isin(models)]
    if len(dataset.corpus) > 30:
        judged = set(dataset.qrels.get(query_id, {}))
        keep = set(frame.loc[frame["is_top1"], "doc_id"]) | judged
        frame = frame[frame["doc_id"].isin(keep)]
    cols = {d: i for i, d in enumerate(dict.fromkeys(frame.sort_values("col")["doc_id"]))}
    return frame.assign(row=0, col=frame["doc_id"].map(cols)).reset_index(drop=True)


def category_losses(report: Report, model: str, other: str, dataset: str | None = None) -> pd.DataFrame:
    """Per data set and category, `model` against `other` on top-1, paired: `losses`
    (queries `model` gets wrong and `other` right), `wins`, `ties`, both top-1 rates and the
    difference; the category where `model` loses most first."""
    frame = query_outcomes(report, model, other)
    if dataset is not None:
        frame = frame[frame["dataset"] == dataset]
    out = frame.groupby(["dataset", "category"], sort=False).agg(
        n=("query_id", "size"), losses=("outcome", lambda s: int((s == "lost").sum())), wins=("outcome", lambda s: int((s == "won").sum())),
        ties=("outcome", lambda s: int((s == "tied").sum())), top1=("top1", "mean"), top1_other=("top1_b", "mean")).reset_index()
    out["diff"] = out["top1"] - out["top1_other"]
    out.insert(0, "model", model)
    out.insert(1, "other", other)
    return out.sort_values(["losses", "diff"], ascending=[False, True], kind="stable").reset_index(drop=True)


def loss_note(report: Report, model: str, other: str, dataset: str, query_id: str, datasets: Mapping[str, Dataset] | None = None) -> str:
    """Markdown reading one query where `model` and `other` differ: the query, what each
    ranked first (kind and text) and each margin."""
    ds = _datasets(report, datasets)[dataset]
    lines = [f"**{query_id}** ({ds.categories.get(query_id, '')}): {ds.queries[query_id]}", ""]
    for name in (model, other):
        top = ranked_documents(report, ds, name, query_id, k=1).iloc[0]
        row = report.per_query[(report.per_query["model"] == name) & (report.per_query["dataset"] == dataset) & (report.per_query["query_id"] == query_id)].iloc[0]
        lines.append(f"- {name} ranked first [{top['kind']}] {top['document']} (score {top['score']:.3f}); the answer is at rank {int(row['rank'])}, margin {row['margin']:+.3f}.")
    return "\n".join(lines)


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
        return rows.to_html(index=False, escape=True, float_format=lambda v: f"{v:.3f}", classes="embedlab-table", border=0)

    if len(shown) <= MAX_ROWS:
        return html_of(shown)
    return html_of(shown.head(MAX_ROWS)) + f"<details><summary>all {len(shown)} rows</summary>{html_of(shown)}</details>"


class ResultsExplorer:
    """Filters (data set, model, comparison model, category, outcome), the table of matching
    queries, and for the selected query its heatmap row, ranked documents and margins.
    `table()` is the current filtered table; `detail_html()` the selected query's view."""

    def __init__(self, report: Report, datasets: Mapping[str, Dataset], dataset: str | None = None, model: str | None = None,
                 compare: str | None = None, category: str | None = None, outcome: str | None = None, k: int = 5) -> None:
        w = _widgets()
        self.report, self.datasets, self.k = report, dict(datasets), k
        models = list(dict.fromkeys(report.per_query["model"]))
        categories = sorted({c for c in report.per_query["category"] if isinstance(c, str) and c})
        self._quiet = True
        self.dataset_box = w.Dropdown(options=[ALL, *report.datasets], value=dataset or ALL, description="data set")
        self.model_box = w.Dropdown(options=models, value=model or models[-1], description="model")
        self.compare_box = w.Dropdown(options=[NO_COMPARISON, *models], value=compare or NO_COMPARISON, description="compare with")
        self.category_box = w.Dropdown(options=[ALL, *categories], value=category or ALL, description="category")
        self.outcome_box = w.Dropdown(options=[ALL, *OUTCOMES], value=outcome or ALL, description="outcome")
        self.query_box = w.Select(options=[], rows=8, description="query", layout=w.Layout(width="95%"))
        self.table_html = w.HTML()
        self.detail = w.HTML()
        self.detail.add_class("embedlab-detail")
        for box in (self.dataset_box, self.model_box, self.compare_box, self.category_box, self.outcome_box):
            box.observe(lambda _: self._filter(), names="value")
        self.query_box.observe(lambda _: self._show(), names="value")
        filters = w.HBox([w.VBox([self.dataset_box, self.category_box, self.outcome_box]), w.VBox([self.model_box, self.compare_box])])
        self.widget = w.VBox([filters, self.query_box, w.Accordion([self.table_html], titles=("table of the queries",)), self.detail])
        self.widget.add_class("embedlab-results")
        self._quiet = False
        self._filter()

    def _choice(self, box, empty: str = ALL) -> str | None:
        return None if box.value == empty else box.value

    def table(self) -> pd.DataFrame:
        """The queries the filters select (`query_table`)."""
        return query_table(self.report, self.model_box.value, self._choice(self.compare_box, NO_COMPARISON), self._choice(self.dataset_box),
                           self._choice(self.category_box), self._choice(self.outcome_box), self.datasets)

    def _filter(self) -> None:
        if self._quiet:
            return
        frame = self.table()
        self._table = frame
        compare = self._choice(self.compare_box, NO_COMPARISON)
        columns = ["dataset", "query_id", "category", "outcome", "rank", "margin", "winner_kind", *(["rank_b", "margin_b", "winner_kind_b"] if compare else []), "query"]
        self.table_html.value = f"<p>{len(frame)} queries</p>" + _frame_html(frame, columns)
        options = [(f"{r.dataset} · {r.query_id} · {r.outcome} · {r.query[:30]}", (r.dataset, r.query_id)) for r in frame.itertuples()]
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
        parts = [f"<h4>{html.escape(dataset)} · {html.escape(query_id)} · {html.escape(ds.categories.get(query_id, ''))}</h4>",
                 f"<p><b>query</b>: {html.escape(ds.queries[query_id])}</p><ul>"]
        for m in models:
            row = per_query[(per_query["model"] == m) & (per_query["dataset"] == dataset) & (per_query["query_id"] == query_id)].iloc[0]
            parts.append(f"<li><b>{html.escape(m)}</b>: answer at rank {int(row['rank'])}, margin {row['margin']:+.3f} (best answer − best other)</li>")
        parts.append("</ul>")
        frame = heatmap_frame(self.report, ds, query_id, models)
        figures = plots.similarity_figures(frame)
        for fig in figures.values():
            parts.append(f'<img class="embedlab-heatmap" alt="heatmap row of {html.escape(query_id)}" src="data:image/png;base64,{_png(fig)}"/>')
        for m in models:
            ranked = ranked_documents(self.report, ds, m, query_id, self.k)
            parts.append(f"<p><b>{html.escape(m)}</b>: ranked documents</p>" + _frame_html(ranked, ["rank", "kind", "score", "doc_id", "document"]))
        return "".join(parts)

    def _show(self) -> None:
        if not self._quiet:
            self.detail.value = self.detail_html()

    def static_html(self) -> str:
        """The initial state as plain HTML: the filters as text, the table, the selected query."""
        filters = ", ".join(f"{b.description}: {b.value}" for b in (self.dataset_box, self.model_box, self.compare_box, self.category_box, self.outcome_box))
        return (f'<div class="embedlab-static"><p><i>{html.escape(filters)}</i></p>{self.table_html.value}{self.detail.value}'
                "<p style='color:#777'>Static view of the explorer's initial state (run the notebook in JupyterLab to filter).</p></div>")

    def _repr_mimebundle_(self, **kwargs) -> dict[str, Any]:
        bundle = self.widget._repr_mimebundle_(**kwargs) or {}
        bundle["text/html"] = self.static_html()
        return bundle


def results(report_or_folder: Report | str | Path, datasets: Sequence[Dataset] | None = None, cache_dir: str | Path | None = None, *,
            dataset: str | None = None, model: str | None = None, compare: str | None = None, category: str | None = None,
            outcome: str | None = None) -> ResultsExplorer:
    """The results explorer of a Report (as `analysis.trap_report` returns) or a results
    folder (`embedlab run --out`; its scores are recomputed through the embedding cache,
    `with_scores`). The keyword arguments set the filters' initial values (model: default
    the last model of the run)."""
    report, by_name = with_scores(report_or_folder, datasets, cache_dir)
    return ResultsExplorer(report, by_name, dataset, model, compare, category, outcome)
