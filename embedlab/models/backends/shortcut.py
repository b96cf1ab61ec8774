"""Shortcut cue baselines: the rules of `embedlab.data.shortcuts` (the ones `embedlab lint` flags)
as scorers, so every run shows how far a rule that never reads for sense gets.

- `rule: overlap-inverse`: minus the number of distinct character bigrams a document shares with
  the query (the document sharing least wins). Exact ties, frequent here (many documents share
  no bigram at all), are broken uniformly at random with `seed` (default 0): the run's ranking
  counts a tie against the model, which would drop this rule below chance, while lint reports
  its expected top-1 under a random tie-break; the run's row estimates that expectation.
- `rule: query-blind`: the character uni+bigram naive Bayes log-odds answer vs distractor, trained
  on the data set's judgements (`judge`) without the query's own group; it never sees the query.
Run them with `options: {candidates: judged}`, where each query is ranked among its own answer
and distractors, as lint does."""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np

from embedlab.data import shortcuts
from embedlab.models.backends import BaseScorer
from embedlab.models.spec import ModelSpec
from embedlab.types import Relevance

RULES = ("overlap-inverse", "query-blind")


class ShortcutBackend(BaseScorer):
    """One rule of `RULES` (`options: {rule: ...}`) as a scorer."""

    def __init__(self, spec: ModelSpec) -> None:
        rule = spec.options.get("rule")
        if rule not in RULES:
            raise ValueError(f"model {spec.name!r}: options.rule must be one of {', '.join(RULES)}, got {rule!r}")
        self.spec = spec
        self.rule = rule
        self._corpus: list[str] | None = None
        self._rows: dict[str, int] = {}
        self._matrix: np.ndarray | None = None

    def effective_settings(self) -> dict[str, object]:
        engine = {
            "overlap-inverse": "fewest character bigrams shared with the query, ties broken at random",
            "query-blind": "character uni+bigram naive Bayes on the judgements, the query's own group held out",
        }[self.rule]
        return {"device": "cpu", "engine": engine}

    def index(self, corpus: Sequence[str]) -> None:
        self._corpus = list(corpus)
        self._matrix = None

    def judge(self, queries: Sequence[str], relevance: Relevance) -> None:
        """Learn from the judgements of the indexed corpus (query-blind only): row q of the
        scores comes from the classifier trained without q's own group. Before this call the
        query-blind rule has learnt nothing and scores every document 0 (the runner's warm-up
        and timing passes, which index other texts)."""
        if self.rule != "query-blind":
            return
        if self._corpus is None or relevance.n_docs != len(self._corpus) or relevance.n_queries != len(queries):
            raise ValueError(
                f"judge: judgements for {relevance.n_queries} queries x {relevance.n_docs} documents, "
                f"but {len(queries)} queries and {len(self._corpus or [])} indexed documents"
            )
        self._matrix = shortcuts.query_blind_matrix(queries, self._corpus, relevance)
        self._rows = {}
        for row, text in enumerate(queries):
            self._rows.setdefault(text, row)  # a query text given twice is scored as its first occurrence

    def score(self, queries: Sequence[str]) -> np.ndarray:
        """Scores of every indexed document for every query, shape (n_queries, n_docs)."""
        if self._corpus is None:
            raise RuntimeError("call index(corpus) before score(queries)")
        if self.rule == "overlap-inverse":
            rng = np.random.default_rng(int(self.spec.options.get("seed", 0)))
            shared = (
                np.stack([shortcuts.shared_counts(q, self._corpus) for q in queries])
                if queries
                else np.zeros((0, len(self._corpus)))
            )
            return (-shared + rng.uniform(0.0, 0.5, shared.shape)).astype(
                np.float32
            )  # counts are whole numbers: only ties move
        if self._matrix is None:
            return np.zeros((len(queries), len(self._corpus)), dtype=np.float32)
        unknown = [q for q in queries if q not in self._rows]
        if unknown:
            raise ValueError(f"query-blind scores only the judged queries; not judged: {unknown[0]!r}")
        return self._matrix[[self._rows[q] for q in queries]].astype(np.float32)
