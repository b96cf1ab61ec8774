"""`embedlab lint`: find shortcut cues in a data set, so that a score measures meaning, not form.

A trap set is only as good as its distractors: if answers are longer than distractors, or
share more of the query's words, or read differently (semicolons, advice openings,
question forms), a model can score without understanding the query. `lint(dataset)`
measures each such cue, per category and overall, and flags the ones beyond a threshold.

Candidates. Each query is compared with its *distractors*: the documents its qrels judge
non-relevant (grade 0). A set where no query has a judged non-relevant document but the
corpus holds documents that answer no query (a shared-corpus set such as `seed`) uses
those documents as every query's distractors, and the whole corpus as its candidates.

Cues (flagged ones make `embedlab lint` exit with status 1), default thresholds in
`Thresholds`:

- `length`: ROC AUC of document length (characters), answers against distractors over the
  whole set (the Mann-Whitney rank formula, ties counted 0.5); flagged outside
  [`auc_low`, `auc_high`] = [0.40, 0.60]. Also flagged when the answer is strictly the
  longest document of its candidate group for more than `longest_rate` = 40% of
  the queries. `auc_within_query` (shown, not flagged on) pairs each answer only with
  its own query's distractors.
- `length-judged`, `bm25-judged`: top-1 accuracy of "longer wins" and of BM25 (jieba +
  bm25s, embedlab's backend), each query ranked among its own answer and distractors
  (ties count against), against chance (the mean of n_relevant / n_candidates); flagged
  when above chance by more than `judged_margin` = 0.15.
- `overlap` and `query-blind`: two shortcut rules of `embedlab.data.shortcuts`, each
  ranking a query's own answer and distractors (exact ties shared: the expected top-1 under
  a random tie-break). `overlap` picks the candidate sharing the fewest character bigrams
  with the query (`direction` "inverse", when answers share fewer of the query's bigrams
  than their distractors on average) or the most ("forward"). `query-blind` never sees the
  query: a character uni+bigram naive Bayes trained on the other queries' answers against
  their distractors (each query's own group held out). Flagged when top-1 beats chance by
  more than `cue_margin` = 0.10 over the whole set, or by more than `cue_category_margin` =
  0.25 in a category, with a one-sided binomial p below `cue_p` = 0.01. The readable output
  names the queries where the rule finds the answer most clearly and, for `query-blind`,
  the n-grams that carry it.
- `semicolon`, `question`, `advice-opening`: the share of answers minus the share of
  distractors that contain a semicolon (；;), that are question-shaped (？?, a clause
  ending in 吗/呢, 怎么/为什么/为何/如何/难道/是不是), or that have a clause opening with
  可以/应; flagged when the absolute gap exceeds `style_gap` = 0.10.
- `clauses`: ROC AUC of the number of clauses (pieces between ，,；;。！？!?), answers
  against distractors over the whole set; flagged outside [`auc_low`, `auc_high`].

Warnings (never change the exit status): unknown category or document-kind names close to
a known one (a typo: `homonymm` -> `homonym`; names far from every known one are taken as
user-defined), categories with fewer than `min_category_queries` = 25 queries (per-category
intervals of about ±20 points or wider), near-duplicate documents (Jaccard similarity of
character `ngram` = 3-grams at least `near_duplicate` = 0.80), and answers that another
query's own answer does not beat for that query (cosine similarity with the bundled
multilingual-e5-small, within `cross_query_margin` = 0.0; skipped with `model=False`).
"""

from __future__ import annotations

import difflib
import math
import re
from collections import Counter
from collections.abc import Sequence
from dataclasses import asdict, dataclass, field, fields, replace
from typing import Any

import numpy as np
import pandas as pd

from embedlab.data import shortcuts
from embedlab.data.categories import CATEGORY_IDS, DOCUMENT_KINDS
from embedlab.data.datasets import Dataset
from embedlab.data.shortcuts import pair_auc
from embedlab.errors import ConfigError

SEMICOLON = re.compile(r"[；;]")
QUESTION = re.compile(r"[？?]|[吗呢](?=[，,。！!；;…]|$)|怎么|为什么|为何|如何|难道|是不是")
ADVICE_OPENING = re.compile(r"(?:^|[，,。！!？?；;：:])\s*(?:可以|应)")
CLAUSE_SPLIT = re.compile(r"[，,；;。！!？?]")
OVERALL = "(all)"
ROLE_COLORS = {"answer": "#c44e52", "distractor": "#4c72b0"}


@dataclass(frozen=True)
class Thresholds:
    """Where a cue is flagged; see the module docstring. Rates and AUCs are fractions."""

    auc_low: float = 0.40
    auc_high: float = 0.60
    longest_rate: float = 0.40
    judged_margin: float = 0.15
    cue_margin: float = 0.10
    cue_category_margin: float = 0.25
    cue_p: float = 0.01
    style_gap: float = 0.10
    near_duplicate: float = 0.80
    ngram: int = 3
    cross_query_margin: float = 0.0
    min_category_queries: int = 25

    def with_overrides(self, pairs: Sequence[str]) -> Thresholds:
        """A copy with `name=value` strings applied (the CLI's `--threshold`)."""
        known = {f.name: f.type for f in fields(self)}
        changes: dict[str, Any] = {}
        for pair in pairs:
            name, sep, value = pair.partition("=")
            name = name.strip().replace("-", "_")
            if not sep or name not in known:
                close = difflib.get_close_matches(name, list(known), n=1)
                hint = f"; did you mean {close[0]!r}?" if close else ""
                raise ConfigError(
                    f"--threshold {pair!r}: expected NAME=VALUE with NAME one of {', '.join(known)}{hint}"
                )
            cast = int if known[name] in (int, "int") else float
            try:
                changes[name] = cast(value)
            except ValueError:
                raise ConfigError(f"--threshold {pair!r}: expected a number ({cast.__name__}) after '='") from None
        return replace(self, **changes)


@dataclass(frozen=True)
class Cue:
    """One shortcut cue measured over the whole data set. `values` hold its numbers
    (fractions; NaN where not computable), `rule` says when it is flagged; `details` hold
    the rest (a shortcut rule's `direction`, `by_category`, `items`, `ngrams`)."""

    name: str
    values: dict[str, float]
    flagged: bool
    rule: str
    details: dict[str, Any] = field(default_factory=dict)

    def to_dict(self) -> dict[str, Any]:
        return {
            "name": self.name,
            **_json_ready({**self.values, **self.details}),
            "flagged": self.flagged,
            "rule": self.rule,
        }


@dataclass(frozen=True)
class LintReport:
    """What `lint` found. `groups`: one row per category and one for the whole set
    (category "(all)"); `documents`: one row per (query, candidate answer or distractor)
    with its form features; `queries`: per query overlaps and judged-mode outcomes;
    `near_duplicates` and `cross_query`: document pairs and query pairs behind warnings."""

    dataset: str
    n_queries: int
    n_documents: int
    candidates: str
    cues: list[Cue]
    groups: pd.DataFrame
    documents: pd.DataFrame
    queries: pd.DataFrame
    near_duplicates: pd.DataFrame
    cross_query: pd.DataFrame
    warnings: list[str]
    thresholds: Thresholds = field(default_factory=Thresholds)

    @property
    def flagged(self) -> list[str]:
        """Names of the flagged cues."""
        return [c.name for c in self.cues if c.flagged]

    def cue_frame(self) -> pd.DataFrame:
        """The cues as a DataFrame: one row per cue, its values, flagged and rule."""
        return pd.DataFrame(
            [
                {
                    "dataset": self.dataset,
                    "name": c.name,
                    **c.values,
                    **{k: v for k, v in c.details.items() if isinstance(v, str)},
                    "flagged": c.flagged,
                    "rule": c.rule,
                }
                for c in self.cues
            ]
        )

    @property
    def shortcuts(self) -> pd.DataFrame:
        """The shortcut-rule cues (`overlap`, `query-blind`) per category and overall: cue, direction,
        category, n, top1, chance, p_value, flagged."""
        rows = []
        for c in self.cues:
            if "by_category" not in c.details:
                continue
            head = {"dataset": self.dataset, "cue": c.name, "direction": c.details.get("direction") or ""}
            rows.append(
                {
                    **head,
                    "category": OVERALL,
                    "n": sum(v["n"] for v in c.details["by_category"].values()),
                    **{k: c.values[k] for k in ("top1", "chance", "p_value")},
                    "flagged": c.flagged,
                }
            )
            rows += [{**head, "category": cat, **v} for cat, v in c.details["by_category"].items()]
        frame = pd.DataFrame(
            rows, columns=["dataset", "cue", "direction", "category", "n", "top1", "chance", "p_value", "flagged"]
        )
        return frame[frame["n"] > 0].reset_index(drop=True)  # a set without judged distractors has none

    @property
    def ngrams(self) -> pd.DataFrame:
        """The n-grams that carry the query-blind classifier (`shortcuts.NaiveBayes.carriers`)."""
        found = next((c.details.get("ngrams", []) for c in self.cues if c.name == "query-blind"), [])
        return pd.DataFrame(found, columns=["ngram", "weight", "carry", "answers", "distractors"]).assign(
            dataset=self.dataset
        )

    def to_frame(self) -> pd.DataFrame:
        """Per category and overall (`category == "(all)"`): counts, kinds and every cue."""
        return self.groups.copy()

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready: dataset, n_queries, cues, warnings, categories, thresholds."""
        return {
            "dataset": self.dataset,
            "n_queries": self.n_queries,
            "n_documents": self.n_documents,
            "candidates": self.candidates,
            "flagged": bool(self.flagged),
            "cues": [c.to_dict() for c in self.cues],
            "warnings": list(self.warnings),
            "categories": [{k: _json_number(v) for k, v in row.items()} for row in self.groups.to_dict("records")],
            "near_duplicates": self.near_duplicates.to_dict("records"),
            "cross_query": [
                {k: _json_number(v) for k, v in row.items()} for row in self.cross_query.to_dict("records")
            ],
            "thresholds": asdict(self.thresholds),
        }

    def to_text(self) -> str:
        """A readable report: cues, the per-category table, warnings."""
        lines = [
            f"{self.dataset}: {self.n_queries} queries, {self.n_documents} documents, candidates: {self.candidates}",
            "",
            "cues",
        ]
        for c in self.cues:
            values = "  ".join(
                [
                    *(
                        f"{k}={v:.2g}" if k == "p_value" and np.isfinite(v) else f"{k}={_fmt(v)}"
                        for k, v in c.values.items()
                    ),
                    *(f"{k}={v}" for k, v in c.details.items() if isinstance(v, str)),
                ]
            )
            lines.append(f"  {'FLAGGED' if c.flagged else 'ok     '} {c.name:15s} {values}")
            if c.flagged:
                lines.append(f"          flagged when {c.rule}")
                lines += _cue_evidence(c)
        lines += ["", "per category"]
        columns = [
            "category",
            "n_queries",
            "n_distractors",
            "length_auc",
            "answer_longest_rate",
            "length_judged_top1",
            "bm25_judged_top1",
            "chance_top1",
            "overlap_top1",
            "query_blind_top1",
            "semicolon_gap",
            "question_gap",
            "advice_gap",
            "clauses_auc",
        ]
        table = self.groups[[c for c in columns if c in self.groups.columns]]
        lines += [
            "  " + line
            for line in table.to_string(index=False, float_format=lambda x: f"{x:.2f}", na_rep="-").splitlines()
        ]
        kinds = self.groups.set_index("category")["kinds"].get(OVERALL, "")
        lines += ["", f"distractor kinds: {kinds or '-'}"]
        lines += ["", f"warnings ({len(self.warnings)})"] + [f"  - {w}" for w in self.warnings]
        verdict = f"flagged cues: {', '.join(self.flagged)}" if self.flagged else "no flagged cue"
        return "\n".join([*lines, "", verdict])

    def _repr_html_(self) -> str:
        return (
            f"<p><b>{self.dataset}</b>: "
            f"{'flagged: ' + ', '.join(self.flagged) if self.flagged else 'no flagged cue'}</p>"
            + self.cue_frame().to_html(index=False)
        )


# ---- pure measures --------------------------------------------------------------------


def clause_count(text: str) -> int:
    """Number of clauses: non-empty pieces between ，,；;。！!？? ."""
    return sum(1 for piece in CLAUSE_SPLIT.split(text) if piece.strip())


def char_ngrams(text: str, n: int) -> set[str]:
    """Character n-grams of `text` without spaces (the whole text when shorter than n)."""
    text = re.sub(r"\s+", "", text)
    return {text[i : i + n] for i in range(max(1, len(text) - n + 1))}


def near_duplicates(
    texts: Sequence[str], ids: Sequence[str], threshold: float = 0.8, n: int = 3, block: int = 512
) -> pd.DataFrame:
    """Pairs of documents whose character n-gram sets have Jaccard similarity >= threshold:
    columns doc_a, doc_b, jaccard (highest first)."""
    from scipy import sparse

    vocab: dict[str, int] = {}
    rows, cols = [], []
    for i, text in enumerate(texts):
        for gram in char_ngrams(text, n):
            rows.append(i)
            cols.append(vocab.setdefault(gram, len(vocab)))
    matrix = sparse.csr_matrix(
        (np.ones(len(rows), dtype=np.float32), (rows, cols)), shape=(len(texts), max(1, len(vocab)))
    )
    sizes = np.asarray(matrix.sum(axis=1)).ravel()
    found = []
    for start in range(0, len(texts), block):
        inter = (matrix[start : start + block] @ matrix.T).toarray()
        union = sizes[start : start + block, None] + sizes[None, :] - inter
        jaccard = np.divide(inter, union, out=np.zeros_like(inter), where=union > 0)
        for a, b in zip(*np.nonzero(jaccard >= threshold)):
            a = int(a) + start
            if a < b:
                found.append({"doc_a": ids[a], "doc_b": ids[int(b)], "jaccard": float(jaccard[a - start, b])})
    frame = pd.DataFrame(found, columns=["doc_a", "doc_b", "jaccard"])
    return frame.sort_values("jaccard", ascending=False, kind="stable").reset_index(drop=True)


# ---- the lint -------------------------------------------------------------------------


@dataclass(frozen=True)
class _Groups:
    """Per evaluated query: candidate document indices split into answers and distractors."""

    query_ids: list[str]
    answers: list[np.ndarray]
    distractors: list[np.ndarray]
    candidates: str  # "judged" or "corpus"


def _groups(dataset: Dataset) -> _Groups:
    index = {d: i for i, d in enumerate(dataset.doc_ids)}
    query_ids = dataset.query_ids
    answers = [np.array([index[d] for d, g in dataset.qrels[q].items() if g > 0], dtype=np.int64) for q in query_ids]
    judged_negative = [
        np.array([index[d] for d, g in dataset.qrels[q].items() if g <= 0], dtype=np.int64) for q in query_ids
    ]
    if any(len(n) for n in judged_negative):
        return _Groups(query_ids, answers, judged_negative, "judged")
    relevant_anywhere = {d for docs in dataset.qrels.values() for d, g in docs.items() if g > 0}
    shared = np.array([i for d, i in index.items() if d not in relevant_anywhere], dtype=np.int64)
    return _Groups(query_ids, answers, [shared] * len(query_ids), "corpus")


def _judged_top1(dataset: Dataset, scores: np.ndarray, groups: _Groups) -> np.ndarray:
    """Top-1 per query (ties against) among the query's own answer and distractors, via
    embedlab's scoring: its "judged" candidate rule, which gives a shared-corpus set's query
    its answer plus every document that answers no query (the groups above), the same
    definition as the run's `length-judged` row, so lint and a report never disagree."""
    from embedlab.evaluation.scoring import per_query_table

    table = per_query_table(dataset, "cue", scores=scores, candidates="judged")
    return table["top1"].to_numpy(dtype=np.float64)


def _word_overlap(dataset: Dataset, groups: _Groups) -> tuple[np.ndarray, np.ndarray]:
    """Per query: mean share of its words (jieba) found in its answers, and in its
    distractors (NaN when it has none)."""
    from scipy import sparse

    from embedlab.data.words import segment

    doc_words = segment(dataset.document_texts())
    query_words = segment(dataset.query_texts())
    vocab: dict[str, int] = {}

    def coordinates(word_lists: list[list[str]]) -> tuple[list[int], list[int]]:
        rows, cols = [], []
        for i, words in enumerate(word_lists):
            for w in set(words):
                rows.append(i)
                cols.append(vocab.setdefault(w, len(vocab)))
        return rows, cols

    d_rows, d_cols = coordinates(doc_words)
    q_rows, q_cols = coordinates(query_words)
    width = max(1, len(vocab))
    docs = sparse.csr_matrix((np.ones(len(d_rows), dtype=np.float32), (d_rows, d_cols)), shape=(len(doc_words), width))
    queries = sparse.csr_matrix(
        (np.ones(len(q_rows), dtype=np.float32), (q_rows, q_cols)), shape=(len(query_words), width)
    )
    n_words = np.asarray(queries.sum(axis=1)).ravel()
    answer = np.full(len(groups.query_ids), np.nan)
    distractor = np.full(len(groups.query_ids), np.nan)
    for row, (ans, dis) in enumerate(zip(groups.answers, groups.distractors)):
        if n_words[row] == 0:
            continue
        shared = queries[row] @ docs.T
        share = np.asarray(shared.todense()).ravel() / n_words[row]
        answer[row] = share[ans].mean() if len(ans) else np.nan
        distractor[row] = share[dis].mean() if len(dis) else np.nan
    return answer, distractor


def _cross_query(dataset: Dataset, margin: float) -> pd.DataFrame:
    """For each answer: the other query it fits best (cosine with multilingual-e5-small),
    that query's similarity with its own best answer, and whether the foreign answer comes
    within `margin` of it (`plausible`)."""
    from embedlab.models import get_model, load_backend

    query_ids = dataset.query_ids
    index = {d: i for i, d in enumerate(dataset.doc_ids)}
    answer_ids = list(dict.fromkeys(d for q in query_ids for d, g in dataset.qrels[q].items() if g > 0))
    columns = [
        "query_id",
        "answer_id",
        "other_query_id",
        "similarity_other",
        "other_own_similarity",
        "gap",
        "plausible",
    ]
    if len(query_ids) < 2:
        return pd.DataFrame(columns=columns)
    encoder = load_backend(get_model("multilingual-e5-small"))
    texts = dataset.document_texts()
    q_emb = encoder.encode(dataset.query_texts(), "query", instruction=dataset.instruction)
    a_emb = encoder.encode([texts[index[d]] for d in answer_ids], "document")
    sims = q_emb @ a_emb.T  # rows: queries, columns: answers (unit vectors)
    relevant = np.array([[dataset.qrels[q].get(d, 0) > 0 for d in answer_ids] for q in query_ids])
    own = np.where(relevant, sims, -np.inf).max(axis=1)
    foreign = np.where(relevant, -np.inf, sims)
    rows = []
    for col, answer_id in enumerate(answer_ids):
        owners = [query_ids[r] for r in np.nonzero(relevant[:, col])[0]]
        best = int(np.argmax(foreign[:, col]))
        if not np.isfinite(foreign[best, col]):
            continue
        gap = float(foreign[best, col] - own[best])
        rows.append(
            {
                "query_id": owners[0],
                "answer_id": answer_id,
                "other_query_id": query_ids[best],
                "similarity_other": float(foreign[best, col]),
                "other_own_similarity": float(own[best]),
                "gap": gap,
                "plausible": gap >= -margin,
            }
        )
    frame = pd.DataFrame(rows, columns=columns)
    return frame.sort_values("gap", ascending=False, kind="stable").reset_index(drop=True)


def _name_warnings(names: Counter, known: Sequence[str], what: str) -> list[str]:
    out = []
    for name, count in sorted(names.items()):
        if name in known:
            continue
        close = difflib.get_close_matches(name, known, n=1, cutoff=0.75)
        if close:
            out.append(
                f"{what} {name!r} ({count}x) is not a known {what}; did you mean {close[0]!r}? (known: "
                f"{', '.join(known)})"
            )
    return out


def _rate_gap(answer: np.ndarray, distractor: np.ndarray) -> tuple[float, float, float]:
    a = float(answer.mean()) if len(answer) else math.nan
    d = float(distractor.mean()) if len(distractor) else math.nan
    return a, d, a - d


def lint(dataset: Dataset, thresholds: Thresholds | None = None, *, model: bool = True) -> LintReport:
    """Measure every cue of `dataset` (per category and overall) and collect warnings.
    `model=False` skips the cross-query check (the only part that runs an embedding model)."""
    from embedlab.models import get_model, load_backend

    th = thresholds or Thresholds()
    groups = _groups(dataset)
    doc_ids = dataset.doc_ids
    texts = dataset.document_texts()
    lengths = np.array([len(t) for t in texts], dtype=np.float64)
    semicolon = np.array([bool(SEMICOLON.search(t)) for t in texts], dtype=np.float64)
    question = np.array([bool(QUESTION.search(t)) for t in texts], dtype=np.float64)
    advice = np.array([bool(ADVICE_OPENING.search(t)) for t in texts], dtype=np.float64)
    clauses = np.array([clause_count(t) for t in texts], dtype=np.float64)
    categories = [dataset.categories.get(q, "") for q in groups.query_ids]
    has_distractor = np.array([len(d) > 0 for d in groups.distractors])

    lexical_scores = {}
    for name in ("length", "bm25"):
        backend = load_backend(get_model(name))
        backend.index(texts)
        lexical_scores[name] = backend.score(dataset.query_texts())
    length_top1 = _judged_top1(dataset, lexical_scores["length"], groups)
    bm25_top1 = _judged_top1(dataset, lexical_scores["bm25"], groups)
    # the candidates `_judged_top1` ranks: the query's answers and its distractors, in both modes
    n_candidates = np.array([len(a) + len(d) for a, d in zip(groups.answers, groups.distractors)], dtype=np.float64)
    chance = np.array([len(a) for a in groups.answers]) / np.maximum(n_candidates, 1)
    overlap_answer, overlap_distractor = _word_overlap(dataset, groups)
    longest = np.array(
        [lengths[a].max() > lengths[d].max() if len(d) else np.nan for a, d in zip(groups.answers, groups.distractors)],
        dtype=np.float64,
    )
    rules = _shortcut_rules(dataset)
    rule_top1 = {name: rules[name].top1_by_query(groups.query_ids) for name in rules}

    queries = pd.DataFrame(
        {
            "dataset": dataset.name,
            "query_id": groups.query_ids,
            "category": categories,
            "n_distractors": [len(d) for d in groups.distractors],
            "answer_is_longest": longest,
            "length_judged_top1": length_top1,
            "bm25_judged_top1": bm25_top1,
            "chance_top1": chance,
            "overlap_answer": overlap_answer,
            "overlap_distractor": overlap_distractor,
            "overlap_top1": rule_top1["overlap"],
            "query_blind_top1": rule_top1["query-blind"],
        }
    )
    # one row per document in a role: the answers of each query, and its distractors (a
    # shared distractor of a corpus-mode set once, not once per query)
    doc_rows = []
    seen_shared: set[int] = set()
    for q, cat, ans, dis in zip(groups.query_ids, categories, groups.answers, groups.distractors):
        for role, idx in (("answer", ans), ("distractor", dis)):
            for i in idx:
                if groups.candidates == "corpus" and role == "distractor":
                    if i in seen_shared:
                        continue
                    seen_shared.add(i)
                doc_rows.append(
                    {
                        "query_id": q if role == "answer" or groups.candidates == "judged" else "",
                        "category": cat if role == "answer" or groups.candidates == "judged" else "",
                        "doc_id": doc_ids[i],
                        "role": role,
                        "kind": dataset.kinds.get(doc_ids[i], ""),
                        "length": lengths[i],
                        "semicolon": semicolon[i],
                        "question": question[i],
                        "advice_opening": advice[i],
                        "clauses": clauses[i],
                    }
                )
    documents = pd.DataFrame(
        doc_rows,
        columns=[
            "query_id",
            "category",
            "doc_id",
            "role",
            "kind",
            "length",
            "semicolon",
            "question",
            "advice_opening",
            "clauses",
        ],
    )
    documents.insert(0, "dataset", dataset.name)

    def measure(mask: np.ndarray, label: str) -> dict[str, Any]:
        picked = [i for i in range(len(mask)) if mask[i]]
        ans = [groups.answers[i] for i in picked]
        dis = [groups.distractors[i] for i in picked]
        judged_rows = mask & has_distractor
        # distinct documents in each role, for the style rates
        ans_docs = np.unique(np.concatenate(ans)) if ans else np.array([], dtype=np.int64)
        dis_docs = np.unique(np.concatenate(dis)) if dis and any(len(d) for d in dis) else np.array([], dtype=np.int64)
        kinds = Counter(dataset.kinds.get(doc_ids[i], "(none)") for i in dis_docs)
        row: dict[str, Any] = {
            "dataset": dataset.name,
            "category": label,
            "n_queries": int(mask.sum()),
            "n_answers": len(ans_docs),
            "n_distractors": len(dis_docs),
            "kinds": ", ".join(f"{k}: {n}" for k, n in sorted(kinds.items(), key=lambda kv: (-kv[1], kv[0]))),
            "answer_length_mean": float(lengths[ans_docs].mean()) if len(ans_docs) else math.nan,
            "distractor_length_mean": float(lengths[dis_docs].mean()) if len(dis_docs) else math.nan,
            "length_auc": pair_auc([lengths[ans_docs]], [lengths[dis_docs]]),
            "length_auc_within": pair_auc([lengths[a] for a in ans], [lengths[d] for d in dis]),
            "answer_longest_rate": float(np.nanmean(longest[judged_rows])) if judged_rows.any() else math.nan,
            "length_judged_top1": float(length_top1[judged_rows].mean()) if judged_rows.any() else math.nan,
            "bm25_judged_top1": float(bm25_top1[judged_rows].mean()) if judged_rows.any() else math.nan,
            "chance_top1": float(chance[judged_rows].mean()) if judged_rows.any() else math.nan,
            "overlap_answer": float(np.nanmean(overlap_answer[judged_rows]))
            if np.isfinite(overlap_answer[judged_rows]).any()
            else math.nan,
            "overlap_distractor": float(np.nanmean(overlap_distractor[judged_rows]))
            if np.isfinite(overlap_distractor[judged_rows]).any()
            else math.nan,
            "clauses_auc": pair_auc([clauses[ans_docs]], [clauses[dis_docs]]),
            **{f"{name.replace('-', '_')}_top1": _finite_mean(top1[mask]) for name, top1 in rule_top1.items()},
        }
        for name, feature in (("semicolon", semicolon), ("question", question), ("advice", advice)):
            a, d, gap = (
                _rate_gap(feature[ans_docs], feature[dis_docs]) if len(dis_docs) else (math.nan, math.nan, math.nan)
            )
            row.update({f"{name}_answer": a, f"{name}_distractor": d, f"{name}_gap": gap})
        both = np.isfinite(overlap_answer) & np.isfinite(overlap_distractor) & judged_rows
        row["overlap_gap"] = float((overlap_answer[both] - overlap_distractor[both]).mean()) if both.any() else math.nan
        return row

    cats = list(dict.fromkeys(categories))
    rows = [measure(np.array([c == cat for c in categories]), cat or "(none)") for cat in cats if len(cats) > 1 or cat]
    overall = measure(np.ones(len(categories), dtype=bool), OVERALL)
    group_frame = pd.DataFrame([*rows, overall])

    cues = _cues(overall, th, rules)
    warnings = _warnings(dataset, groups, th)
    dupes = near_duplicates(texts, doc_ids, th.near_duplicate, th.ngram)
    for _, pair in dupes.head(20).iterrows():
        warnings.append(
            f"near-duplicate documents {pair['doc_a']!r} and {pair['doc_b']!r} (character {th.ngram}-gram Jaccard "
            f"{pair['jaccard']:.2f})"
        )
    if len(dupes) > 20:
        warnings.append(f"... and {len(dupes) - 20} more near-duplicate pairs (see near_duplicates)")
    cross = _cross_query(dataset, th.cross_query_margin) if model else pd.DataFrame()
    if model:
        plausible = cross[cross["plausible"]]
        for _, pair in plausible.head(20).iterrows():
            warnings.append(
                f"answer {pair['answer_id']!r} of {pair['query_id']!r} also fits query {pair['other_query_id']!r} "
                f"(similarity {pair['similarity_other']:.3f} against {pair['other_own_similarity']:.3f} for its own "
                "answer)"
            )
        if len(plausible) > 20:
            warnings.append(f"... and {len(plausible) - 20} more answers that fit another query (see cross_query)")
    return LintReport(
        dataset.name,
        len(groups.query_ids),
        len(doc_ids),
        groups.candidates,
        cues,
        group_frame,
        documents,
        queries,
        dupes,
        cross,
        warnings,
        th,
    )


@dataclass(frozen=True)
class _Rule:
    """A shortcut rule's outcome on a data set and what a cue shows beside it."""

    outcome: shortcuts.RuleOutcome
    details: dict[str, Any]

    def top1_by_query(self, query_ids: Sequence[str]) -> np.ndarray:
        """Per query (NaN where the query has no judged distractor)."""
        top1 = {g.query_id: h for g, h in zip(self.outcome.groups, self.outcome.hits)}
        return np.array([top1.get(q, math.nan) for q in query_ids], dtype=np.float64)


def _shortcut_rules(dataset: Dataset, n_items: int = 10) -> dict[str, _Rule]:
    """The `overlap` rule (its direction read from the set) and the `query-blind` rule over the
    groups of queries with a judged distractor."""
    groups = shortcuts.groups_from_dataset(dataset)
    direction, gap = shortcuts.overlap_direction(groups)
    found = {
        "overlap": _Rule(
            shortcuts.evaluate_rule(groups, f"overlap-{direction}"),
            {"direction": direction if groups else None, "bigram_gap": gap},
        ),
        "query-blind": _Rule(shortcuts.evaluate_rule(groups, "query-blind"), {}),
    }
    if groups:
        carriers = shortcuts.NaiveBayes.from_groups(groups).carriers(n_items)
        found["query-blind"].details["ngrams"] = carriers.to_dict("records")
    for rule in found.values():
        outcome = rule.outcome
        order = [i for i in np.argsort(-outcome.margins, kind="stable")[:n_items] if outcome.margins[i] > 0]
        rule.details["items"] = [
            {
                "query_id": outcome.groups[i].query_id,
                "category": outcome.groups[i].category,
                "margin": float(outcome.margins[i]),
            }
            for i in order
        ]
    return found


def _rule_cue(name: str, rule: _Rule, th: Thresholds) -> Cue:
    """A cue from a shortcut rule: flagged when it beats chance by more than the margin with
    binomial p < `cue_p`, over the whole set or in a category."""
    table = rule.outcome.summary().set_index("category")

    def beats(row: pd.Series, margin: float) -> bool:
        return bool(np.isfinite(row["gain"]) and row["gain"] > margin and row["p_value"] < th.cue_p)

    by_category = {
        str(cat): {
            "n": int(row["n"]),
            "top1": row["top1"],
            "chance": row["chance"],
            "p_value": row["p_value"],
            "flagged": beats(row, th.cue_category_margin),
        }
        for cat, row in table.iterrows()
        if cat != shortcuts.OVERALL
    }
    overall = table.loc[shortcuts.OVERALL]
    flagged = beats(overall, th.cue_margin) or any(c["flagged"] for c in by_category.values())
    values = {"top1": overall["top1"], "chance": overall["chance"], "p_value": overall["p_value"]}
    text = (
        f"top1 - chance > {th.cue_margin:.2f} over all or > {th.cue_category_margin:.2f} in a category, "
        f"with binomial p < {th.cue_p:g}"
    )
    return Cue(name, values, flagged, text, {**rule.details, "by_category": by_category})


def _cue_evidence(cue: Cue) -> list[str]:
    """Readable lines naming what carries a flagged shortcut cue: the categories where it is
    flagged, the queries where it finds the answer most clearly, the n-grams it relies on."""
    lines = []
    if cue.details.get("direction"):
        lines.append(
            f"          direction: {cue.details['direction']} (answers share "
            f"{'more' if cue.details['direction'] == 'forward' else 'fewer'} of the query's bigrams than their "
            "distractors)"
        )
    flagged = [
        f"{cat} {row['top1']:.2f} vs {row['chance']:.2f}"
        for cat, row in cue.details.get("by_category", {}).items()
        if row["flagged"]
    ]
    if flagged:
        lines.append(f"          flagged categories: {', '.join(flagged)}")
    items = cue.details.get("items", [])
    if items:
        lines.append(
            "          rewrite first (answer found most clearly, margin over the best distractor): "
            + ", ".join(f"{it['query_id']} ({it['margin']:.2f})" for it in items)
        )
    ngrams = cue.details.get("ngrams", [])
    if ngrams:
        lines.append(
            "          n-grams carrying it (carry; candidates containing it: answers/distractors): "
            + ", ".join(f"{g['ngram']} ({g['carry']:.1f}; {g['answers']}/{g['distractors']})" for g in ngrams)
        )
    return lines


def _finite_mean(values: np.ndarray) -> float:
    finite = values[np.isfinite(values)]
    return float(finite.mean()) if len(finite) else math.nan


def _cues(overall: dict[str, Any], th: Thresholds, rules: dict[str, _Rule]) -> list[Cue]:
    def outside(value: float) -> bool:
        return bool(np.isfinite(value) and not th.auc_low <= value <= th.auc_high)

    def above(value: float, limit: float) -> bool:
        return bool(np.isfinite(value) and value > limit)

    chance = overall["chance_top1"]
    cues = [
        Cue(
            "length",
            {
                "auc": overall["length_auc"],
                "auc_within_query": overall["length_auc_within"],
                "answer_longest_rate": overall["answer_longest_rate"],
                "answer_length_mean": overall["answer_length_mean"],
                "distractor_length_mean": overall["distractor_length_mean"],
            },
            outside(overall["length_auc"]) or above(overall["answer_longest_rate"], th.longest_rate),
            f"auc outside [{th.auc_low:.2f}, {th.auc_high:.2f}] or answer_longest_rate > {th.longest_rate:.2f}",
        ),
    ]
    for name, column in (("length-judged", "length_judged_top1"), ("bm25-judged", "bm25_judged_top1")):
        cues.append(
            Cue(
                name,
                {"top1": overall[column], "chance": chance},
                above(overall[column] - chance, th.judged_margin),
                f"top1 - chance > {th.judged_margin:.2f}",
            )
        )
    cues += [_rule_cue(name, rule, th) for name, rule in rules.items()]
    for name, key in (("semicolon", "semicolon"), ("question", "question"), ("advice-opening", "advice")):
        gap = overall[f"{key}_gap"]
        cues.append(
            Cue(
                name,
                {"answer_rate": overall[f"{key}_answer"], "distractor_rate": overall[f"{key}_distractor"], "gap": gap},
                above(abs(gap), th.style_gap),
                f"|gap| > {th.style_gap:.2f}",
            )
        )
    cues.append(
        Cue(
            "clauses",
            {"auc": overall["clauses_auc"]},
            outside(overall["clauses_auc"]),
            f"auc outside [{th.auc_low:.2f}, {th.auc_high:.2f}]",
        )
    )
    return cues


def _warnings(dataset: Dataset, groups: _Groups, th: Thresholds) -> list[str]:
    out = []
    if not any(len(d) for d in groups.distractors):
        out.append(
            "no distractors: no query has a judged non-relevant document and every document answers some query, so "
            "form cues cannot be measured"
        )
    categories = Counter(dataset.categories.get(q) for q in groups.query_ids if dataset.categories.get(q))
    out += _name_warnings(categories, CATEGORY_IDS, "category")
    out += _name_warnings(Counter(dataset.kinds.values()), list(DOCUMENT_KINDS), "kind")
    small = [f"{c} ({n})" for c, n in categories.items() if n < th.min_category_queries]
    if small:
        out.append(
            f"categories with fewer than {th.min_category_queries} queries (per-category intervals wider than about "
            f"±20 points): {', '.join(small)}"
        )
    return out


def lint_sets(
    datasets: Sequence[Dataset], thresholds: Thresholds | None = None, *, model: bool = False
) -> list[LintReport]:
    """`lint` on each data set (for notebooks: several trap sets side by side)."""
    return [lint(ds, thresholds, model=model) for ds in datasets]


PARTS = ("cues", "groups", "documents", "queries", "near_duplicates", "cross_query", "shortcuts", "ngrams")


def stack(reports: Sequence[LintReport], part: str) -> pd.DataFrame:
    """One of the reports' tables (`PARTS`) for all reports, with a `dataset` column."""
    if part not in PARTS:
        raise ValueError(f"part: expected one of {PARTS}, got {part!r}")
    frames = [(r.cue_frame() if part == "cues" else getattr(r, part)).assign(dataset=r.dataset) for r in reports]
    frames = [f for f in frames if not f.empty]
    if not frames:
        return pd.DataFrame(columns=["dataset"])
    out = pd.concat(frames, ignore_index=True)
    return out[["dataset", *[c for c in out.columns if c != "dataset"]]]


def warnings_markdown(reports: Sequence[LintReport]) -> str:
    """Each report's verdict and warnings as a Markdown list."""
    lines = []
    for r in reports:
        verdict = f"**flagged cues: {', '.join(r.flagged)}**" if r.flagged else "no flagged cue"
        lines.append(f"- **{r.dataset}** ({r.n_queries} queries): {verdict}; {len(r.warnings)} warnings")
        lines += [f"    - {w}" for w in r.warnings]
    return "\n".join(lines)


# ---- figures --------------------------------------------------------------------------


def plot_lengths(documents: pd.DataFrame, ax=None):
    """Length (characters) of answers and distractors per data set, as box plots with every
    document drawn as a dot. From `LintReport.documents` (several reports concatenated)."""
    from embedlab.report.plots import _axes, note

    ax = _axes(ax, figsize=(7, 0.6 + 0.55 * max(1, documents.groupby(["dataset", "role"]).ngroups)))
    if documents.empty:
        return note(ax, "no documents")
    labels, values, colors = [], [], []
    for (ds, role), group in documents.groupby(["dataset", "role"], sort=False):
        labels.append(f"{ds} · {role} (n={len(group)})")
        values.append(group["length"].to_numpy(dtype=float))
        colors.append(ROLE_COLORS.get(role, "#777777"))
    positions = np.arange(len(values))
    import matplotlib

    # `orientation` replaced `vert` in matplotlib 3.10
    horizontal = (
        {"orientation": "horizontal"}
        if tuple(int(p) for p in matplotlib.__version__.split(".")[:2]) >= (3, 10)
        else {"vert": False}
    )
    ax.boxplot(values, positions=positions, widths=0.6, showfliers=False, medianprops={"color": "black"}, **horizontal)
    rng = np.random.default_rng(0)
    for pos, vals, color in zip(positions, values, colors):
        ax.scatter(vals, pos + rng.uniform(-0.18, 0.18, len(vals)), s=8, alpha=0.5, color=color, zorder=3)
    ax.set_yticks(positions, labels)
    ax.invert_yaxis()
    ax.set_xlabel("length (characters)")
    ax.set_title("answers vs distractors: length")
    return ax


def plot_overlap(queries: pd.DataFrame, ax=None):
    """Per query: share of its words (jieba) in its answer (y) against in its distractors
    (x), one colour per data set; above the diagonal word overlap points to the answer.
    From `LintReport.queries` (several reports concatenated)."""
    from embedlab.report.plots import _axes, note

    ax = _axes(ax, figsize=(5.5, 5))
    data = queries.dropna(subset=["overlap_answer", "overlap_distractor"])
    if data.empty:
        return note(ax, "no query with both an answer and a distractor")
    for ds, group in data.groupby("dataset", sort=False):
        ax.scatter(
            group["overlap_distractor"], group["overlap_answer"], s=14, alpha=0.6, label=f"{ds} (n={len(group)})"
        )
    ax.plot([0, 1], [0, 1], color="#888888", linewidth=0.8, linestyle="--")
    ax.set_xlim(-0.02, 1.02)
    ax.set_ylim(-0.02, 1.02)
    ax.set_xlabel("query words found in the distractors (mean share)")
    ax.set_ylabel("query words found in the answer (share)")
    ax.set_title("word overlap: answer vs distractors")
    ax.legend(fontsize=8, loc="lower right")
    return ax


def _json_number(value: Any) -> Any:
    if isinstance(value, (np.floating, float)):
        return None if not math.isfinite(float(value)) else round(float(value), 6)
    if isinstance(value, np.integer):
        return int(value)
    if isinstance(value, np.bool_):
        return bool(value)
    return value


def _json_ready(value: Any) -> Any:
    """`value` with numbers made JSON-ready at any depth (NaN -> None)."""
    if isinstance(value, dict):
        return {k: _json_ready(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [_json_ready(v) for v in value]
    return _json_number(value)


def _fmt(value: float) -> str:
    return "-" if value is None or (isinstance(value, float) and not math.isfinite(value)) else f"{value:.2f}"


__all__ = [
    "Cue",
    "LintReport",
    "Thresholds",
    "clause_count",
    "lint",
    "lint_sets",
    "near_duplicates",
    "pair_auc",
    "plot_lengths",
    "plot_overlap",
    "stack",
    "warnings_markdown",
]
