"""Shortcut rules: ways to pick a trap's answer among its own candidates without reading for sense.

Each rule scores the candidates of one query group (its answers and its judged distractors);
the highest score is the rule's pick. A group's top-1 is the chance that the pick is an
answer when exact ties at the top are broken uniformly at random (answers among the tied /
tied), so a rule that cannot tell the candidates apart scores exactly chance: the measure a
shortcut must beat. `ties="against"` counts a tie as a miss instead (the pessimistic rule of
embedlab's ranking paths: an answer must score strictly above every distractor). Chance is
the mean over groups of n_answers / n_candidates (1 / group size for one answer).

Rules (`RULES`, names as in `embedlab lint`, the trap checker and the cue baselines):

- `overlap-inverse` / `overlap-forward`: fewest / most distinct character bigrams shared with
  the query (bigrams within runs of letters and digits, never across punctuation).
- `chars-inverse` / `chars-forward`: fewest / most distinct characters shared with the query.
- `words-inverse`: fewest distinct jieba words shared with the query.
- `bm25-bigram-inverse`, `bm25-word-inverse`: lowest BM25 of the query against the group's own
  candidates as the corpus (bigram tokens; jieba-word tokens).
- `sentences-more` / `sentences-fewer`, `length-longer` / `length-shorter`: sentence count
  (pieces between 。！？!?) and length (characters without spaces).
- `query-blind`: a multinomial naive Bayes over character unigrams and bigrams of the
  candidate alone, trained on every other group's answers against distractors (each
  group's own candidates held out); the score is the log-odds answer vs distractor.
"""

from __future__ import annotations

import math
import re
from collections import Counter
from collections.abc import Callable, Sequence
from dataclasses import dataclass

import numpy as np
import pandas as pd

OVERALL = "(all)"
SENTENCE_SPLIT = re.compile(r"[。！？!?]+")
NON_WORD = re.compile(r"[^0-9A-Za-z\u3400-\u9fff\uf900-\ufaff]+")
BM25_K1 = 1.5
BM25_B = 0.75
NB_ALPHA = 1.0


@dataclass(frozen=True)
class Group:
    """One query and its candidates: `relevant[i]` says whether `texts[i]` answers it."""

    query_id: str
    category: str
    query: str
    doc_ids: tuple[str, ...]
    texts: tuple[str, ...]
    relevant: tuple[bool, ...]

    @property
    def chance(self) -> float:
        """Top-1 expected from a uniform random pick."""
        return sum(self.relevant) / len(self.relevant)


def groups_from_relevance(queries: Sequence[str], corpus: Sequence[str], relevance) -> tuple[list[Group], list[int]]:
    """`groups_from_dataset` from a run's view of a data set (query and document texts in row and
    column order, an `embedlab.types.Relevance`): the groups and each group's query row."""
    judged: dict[int, list[tuple[int, int]]] = {}
    for row, col, gain in zip(relevance.query_row.tolist(), relevance.doc_col.tolist(), relevance.gain.tolist()):
        judged.setdefault(row, []).append((col, gain))
    groups, rows = [], []
    for row, pairs in judged.items():
        if any(g > 0 for _, g in pairs) and any(g <= 0 for _, g in pairs):
            groups.append(
                Group(
                    str(row),
                    "",
                    queries[row],
                    tuple(str(c) for c, _ in pairs),
                    tuple(corpus[c] for c, _ in pairs),
                    tuple(g > 0 for _, g in pairs),
                )
            )
            rows.append(row)
    return groups, rows


def query_blind_matrix(queries: Sequence[str], corpus: Sequence[str], relevance) -> np.ndarray:
    """The query-blind rule as a score matrix (n_queries, n_docs): row q scores every document by
    the classifier trained without q's group (the classifier trained on every group for a
    query with no group), so among q's own candidates it ranks as `RULES["query-blind"]`."""
    groups, rows = groups_from_relevance(queries, corpus, relevance)
    out = np.zeros((len(queries), len(corpus)))
    if not groups:
        return out
    nb = NaiveBayes.from_groups(groups)
    counts = nb.count(corpus)
    out[:] = np.asarray(counts @ nb.weights()).ravel()
    for gi, row in enumerate(rows):
        out[row] = np.asarray(counts @ nb.weights(gi)).ravel()
    return out


def groups_from_dataset(dataset) -> list[Group]:
    """One group per query that has both an answer (grade > 0) and a judged distractor (grade 0)."""
    out = []
    for q in dataset.query_ids:
        judged = dataset.qrels[q]
        if not any(g > 0 for g in judged.values()) or not any(g <= 0 for g in judged.values()):
            continue
        ids = tuple(judged)
        out.append(
            Group(
                q,
                dataset.categories.get(q, ""),
                dataset.queries[q],
                ids,
                tuple(dataset.corpus[d] for d in ids),
                tuple(judged[d] > 0 for d in ids),
            )
        )
    return out


# ---- tokens ---------------------------------------------------------------------------


def char_bigrams(text: str) -> list[str]:
    """Character bigrams within runs of letters, digits and CJK characters (none across punctuation)."""
    return [run[i : i + 2] for run in NON_WORD.split(text) for i in range(len(run) - 1)]


def chars(text: str) -> list[str]:
    """Letters, digits and CJK characters of `text`."""
    return [ch for run in NON_WORD.split(text) for ch in run]


def uni_bigrams(text: str) -> list[str]:
    """Character unigrams and bigrams: the query-blind classifier's features."""
    return chars(text) + char_bigrams(text)


def sentence_count(text: str) -> int:
    """Non-empty pieces between sentence ends (。！？!?)."""
    return sum(1 for piece in SENTENCE_SPLIT.split(text) if piece.strip())


def text_length(text: str) -> int:
    """Length in characters (as `embedlab lint` and the `length` cue baseline count it)."""
    return len(text)


def _words(texts: Sequence[str]) -> list[list[str]]:
    from embedlab.data.words import segment

    return segment(list(texts))


# ---- rules ----------------------------------------------------------------------------

Scores = list[np.ndarray]  # one array per group, one score per candidate; highest is picked


def shared_counts(query: str, texts: Sequence[str], tokens: Callable[[str], list[str]] = char_bigrams) -> np.ndarray:
    """Per text: how many distinct tokens (default: character bigrams) it shares with `query`."""
    wanted = set(tokens(query))
    return np.array([len(wanted & set(tokens(t))) for t in texts], dtype=np.float64)


def _shared(groups: Sequence[Group], tokens: Callable[[str], list[str]], sign: float) -> Scores:
    return [sign * shared_counts(g.query, g.texts, tokens) for g in groups]


def _shared_words(groups: Sequence[Group], sign: float) -> Scores:
    out = []
    for g in groups:
        query, *docs = _words([g.query, *g.texts])
        out.append(sign * np.array([len(set(query) & set(d)) for d in docs], dtype=np.float64))
    return out


def bm25_scores(query: Sequence[str], documents: Sequence[Sequence[str]]) -> np.ndarray:
    """BM25 (bm25s, Lucene's variant, k1 = 1.5, b = 0.75) of each distinct token of `query` against
    each token list of `documents`, with `documents` as the whole corpus (0 where none is shared)."""
    import bm25s

    vocab: dict[str, int] = {}
    ids = [[vocab.setdefault(t, len(vocab)) for t in d] for d in documents]
    known = [t for t in dict.fromkeys(query) if t in vocab]
    if not known or not any(ids):
        return np.zeros(len(documents))
    retriever = bm25s.BM25(k1=BM25_K1, b=BM25_B)
    retriever.index(bm25s.tokenization.Tokenized(ids=ids, vocab=vocab), show_progress=False)
    return np.asarray(retriever.get_scores(known), dtype=np.float64)


def _bm25_inverse(groups: Sequence[Group], words: bool) -> Scores:
    out = []
    for g in groups:
        query, *docs = _words([g.query, *g.texts]) if words else [char_bigrams(t) for t in (g.query, *g.texts)]
        out.append(-bm25_scores(query, docs))
    return out


def _feature(groups: Sequence[Group], measure: Callable[[str], float], sign: float) -> Scores:
    return [sign * np.array([measure(t) for t in g.texts], dtype=np.float64) for g in groups]


@dataclass(frozen=True)
class NaiveBayes:
    """The query-blind classifier's pieces: candidate-by-n-gram counts, each row's group and
    role, so that every group can be scored by a model trained without it."""

    vocabulary: list[str]
    counts: object  # scipy.sparse.csr_matrix, candidates x n-grams
    group_of_row: np.ndarray
    is_answer: np.ndarray

    def count(self, texts: Sequence[str]) -> object:
        """Candidate-by-n-gram counts of other `texts` over this vocabulary (unknown n-grams dropped)."""
        from scipy import sparse

        index = {gram: i for i, gram in enumerate(self.vocabulary)}
        rows, cols, vals = [], [], []
        for row, text in enumerate(texts):
            for gram, n in Counter(uni_bigrams(text)).items():
                if gram in index:
                    rows.append(row)
                    cols.append(index[gram])
                    vals.append(n)
        return sparse.csr_matrix(
            (np.array(vals, dtype=np.float64), (rows, cols)), shape=(len(texts), self.counts.shape[1])
        )

    @classmethod
    def from_groups(cls, groups: Sequence[Group]) -> NaiveBayes:
        from scipy import sparse

        vocab: dict[str, int] = {}
        rows, cols, vals, group_of_row, is_answer = [], [], [], [], []
        for gi, g in enumerate(groups):
            for text, rel in zip(g.texts, g.relevant):
                for gram, n in Counter(uni_bigrams(text)).items():
                    rows.append(len(group_of_row))
                    cols.append(vocab.setdefault(gram, len(vocab)))
                    vals.append(n)
                group_of_row.append(gi)
                is_answer.append(rel)
        matrix = sparse.csr_matrix(
            (np.array(vals, dtype=np.float64), (rows, cols)), shape=(len(group_of_row), max(1, len(vocab)))
        )
        return cls(list(vocab), matrix, np.array(group_of_row), np.array(is_answer, dtype=bool))

    def weights(self, held_out: int | None = None) -> np.ndarray:
        """Per n-gram log P(gram | answer) - log P(gram | distractor), Laplace-smoothed, trained
        without the rows of group `held_out`; 0 for n-grams the training rows never use."""
        train = self.group_of_row != held_out if held_out is not None else np.ones(len(self.group_of_row), dtype=bool)
        answer = np.asarray(self.counts[train & self.is_answer].sum(axis=0)).ravel()
        distractor = np.asarray(self.counts[train & ~self.is_answer].sum(axis=0)).ravel()
        seen = (answer + distractor) > 0
        v = float(seen.sum())
        w = np.log((answer + NB_ALPHA) / (answer[seen].sum() + NB_ALPHA * v)) - np.log(
            (distractor + NB_ALPHA) / (distractor[seen].sum() + NB_ALPHA * v)
        )
        return np.where(seen, w, 0.0)

    def held_out_scores(self) -> Scores:
        """Each group's candidates scored by the model trained on all other groups."""
        out = []
        for gi in range(int(self.group_of_row.max()) + 1 if len(self.group_of_row) else 0):
            rows = np.flatnonzero(self.group_of_row == gi)
            out.append(np.asarray(self.counts[rows] @ self.weights(gi)).ravel())
        return out

    def carriers(self, top: int = 15) -> pd.DataFrame:
        """The n-grams that carry the classifier most: weight (trained on all groups) times how much
        more often the n-gram occurs in a group's answer than in its distractors (mean count),
        summed over groups. Positive: the n-gram helps pick answers (more frequent in answers with a
        positive weight, or in distractors with a negative one). Columns ngram, weight, carry,
        answers, distractors (how many candidates of each role contain the n-gram)."""
        w = self.weights()
        n_groups = int(self.group_of_row.max()) + 1 if len(self.group_of_row) else 0
        carry = np.zeros(len(w))
        for gi in range(n_groups):
            rows = self.group_of_row == gi
            ans, dis = rows & self.is_answer, rows & ~self.is_answer
            if ans.any() and dis.any():
                diff = (
                    np.asarray(self.counts[ans].mean(axis=0)).ravel()
                    - np.asarray(self.counts[dis].mean(axis=0)).ravel()
                )
                carry += diff * w
        present = self.counts > 0
        answers = np.asarray(present[self.is_answer].sum(axis=0)).ravel()
        distractors = np.asarray(present[~self.is_answer].sum(axis=0)).ravel()
        order = np.argsort(-np.abs(carry), kind="stable")[:top]
        return pd.DataFrame(
            {
                "ngram": [self.vocabulary[i] for i in order],
                "weight": w[order],
                "carry": carry[order],
                "answers": answers[order].astype(int),
                "distractors": distractors[order].astype(int),
            }
        )


def _query_blind(groups: Sequence[Group]) -> Scores:
    return NaiveBayes.from_groups(groups).held_out_scores() if groups else []


RULES: dict[str, tuple[str, Callable[[Sequence[Group]], Scores]]] = {
    "overlap-inverse": ("fewest character bigrams shared with the query", lambda gs: _shared(gs, char_bigrams, -1.0)),
    "overlap-forward": ("most character bigrams shared with the query", lambda gs: _shared(gs, char_bigrams, 1.0)),
    "chars-inverse": ("fewest characters shared with the query", lambda gs: _shared(gs, chars, -1.0)),
    "chars-forward": ("most characters shared with the query", lambda gs: _shared(gs, chars, 1.0)),
    "words-inverse": ("fewest jieba words shared with the query", lambda gs: _shared_words(gs, -1.0)),
    "bm25-bigram-inverse": ("lowest BM25 over the group, character bigrams", lambda gs: _bm25_inverse(gs, words=False)),
    "bm25-word-inverse": ("lowest BM25 over the group, jieba words", lambda gs: _bm25_inverse(gs, words=True)),
    "sentences-more": ("most sentences", lambda gs: _feature(gs, sentence_count, 1.0)),
    "sentences-fewer": ("fewest sentences", lambda gs: _feature(gs, sentence_count, -1.0)),
    "length-longer": ("longest", lambda gs: _feature(gs, text_length, 1.0)),
    "length-shorter": ("shortest", lambda gs: _feature(gs, text_length, -1.0)),
    "query-blind": ("query-blind classifier (character uni+bigram naive Bayes, own group held out)", _query_blind),
}


def overlap_direction(groups: Sequence[Group]) -> tuple[str, float]:
    """`("forward", gap)` when answers share more of the query's character bigrams than their
    distractors, `("inverse", gap)` otherwise; gap: mean over groups of (mean shared bigrams of
    the answers - mean shared bigrams of the distractors)."""
    gaps = []
    for g, s in zip(groups, _shared(groups, char_bigrams, 1.0)):
        rel = np.array(g.relevant, dtype=bool)
        gaps.append(float(s[rel].mean() - s[~rel].mean()))
    gap = float(np.mean(gaps)) if gaps else math.nan
    return ("forward" if gap > 0 else "inverse"), gap


# ---- outcomes -------------------------------------------------------------------------


TIES = ("shared", "against")


def hits(groups: Sequence[Group], scores: Scores, ties: str = "shared") -> np.ndarray:
    """Per group top-1 in [0, 1]. `ties="shared"`: the share of answers among the candidates tied
    at the top score (the expected top-1 under a random tie-break); `"against"`: 1.0 only when an
    answer scores strictly above every distractor."""
    if ties not in TIES:
        raise ValueError(f"ties: expected one of {TIES}, got {ties!r}")
    out = np.zeros(len(groups))
    for i, (g, s) in enumerate(zip(groups, scores)):
        rel = np.array(g.relevant, dtype=bool)
        if ties == "against":
            out[i] = float(s[rel].max() > s[~rel].max())
        else:
            out[i] = float(rel[s == s.max()].mean())
    return out


def margins(groups: Sequence[Group], scores: Scores) -> np.ndarray:
    """Per group: best answer score minus best distractor score (> 0: the rule finds the answer)."""
    return np.array(
        [float(s[np.array(g.relevant)].max() - s[~np.array(g.relevant)].max()) for g, s in zip(groups, scores)]
    )


def binomial_p(successes: float, trials: int, chance: float) -> float:
    """One-sided binomial p-value: P(X >= successes) for X ~ Binomial(trials, chance); a fractional
    count of successes (shared ties) is rounded to the nearest whole number."""
    from scipy.stats import binomtest

    if trials == 0:
        return math.nan
    return float(binomtest(round(successes), int(trials), min(max(chance, 0.0), 1.0), alternative="greater").pvalue)


@dataclass(frozen=True)
class RuleOutcome:
    """One rule on a set of groups: per-group hits and margins, plus the rule's name."""

    rule: str
    groups: tuple[Group, ...]
    hits: np.ndarray
    margins: np.ndarray

    def summary(self) -> pd.DataFrame:
        """One row for the whole set (category "(all)") and one per category, in first-seen order:
        n, top1, chance, gain (top1 - chance), p_value (one-sided binomial vs chance)."""
        categories = np.array([g.category for g in self.groups], dtype=object)
        chance = np.array([g.chance for g in self.groups])
        rows = []
        for label in [OVERALL, *dict.fromkeys(categories)]:
            mask = np.ones(len(categories), dtype=bool) if label == OVERALL else categories == label
            n = int(mask.sum())
            top1 = float(self.hits[mask].mean()) if n else math.nan
            base = float(chance[mask].mean()) if n else math.nan
            rows.append(
                {
                    "rule": self.rule,
                    "category": label,
                    "n": n,
                    "top1": top1,
                    "chance": base,
                    "gain": top1 - base,
                    "p_value": binomial_p(float(self.hits[mask].sum()), n, base) if n else math.nan,
                }
            )
        return pd.DataFrame(rows)


def rule_scores(groups: Sequence[Group], rule: str) -> Scores:
    """One rule of `RULES` applied to the groups: per group, one score per candidate."""
    if rule not in RULES:
        raise ValueError(f"rule: expected one of {', '.join(RULES)}, got {rule!r}")
    return RULES[rule][1](groups)


def evaluate_rule(groups: Sequence[Group], rule: str, ties: str = "shared") -> RuleOutcome:
    """Apply one rule of `RULES` to the groups and score its picks."""
    scores = rule_scores(groups, rule)
    return RuleOutcome(rule, tuple(groups), hits(groups, scores, ties), margins(groups, scores))


def rule_table(groups: Sequence[Group], rules: Sequence[str] | None = None, ties: str = "shared") -> pd.DataFrame:
    """`RuleOutcome.summary` for each rule (all of `RULES` by default), stacked."""
    return pd.concat([evaluate_rule(groups, r, ties).summary() for r in (rules or list(RULES))], ignore_index=True)


def pair_auc(positives: Sequence[np.ndarray], negatives: Sequence[np.ndarray]) -> float:
    """ROC AUC pooled over groups: the share of (positive, negative) pairs within the same
    group where the positive is larger, ties counting 0.5 (the Mann-Whitney rank formula).
    NaN when there is no pair."""
    wins = 0.0
    pairs = 0
    for pos, neg in zip(positives, negatives):
        pos = np.asarray(pos, dtype=np.float64)
        neg = np.sort(np.asarray(neg, dtype=np.float64))
        if not len(pos) or not len(neg):
            continue
        below = np.searchsorted(neg, pos, side="left")
        not_above = np.searchsorted(neg, pos, side="right")
        wins += float(below.sum() + 0.5 * (not_above - below).sum())
        pairs += len(pos) * len(neg)
    return wins / pairs if pairs else math.nan


def length_conditions(groups: Sequence[Group]) -> dict[str, float]:
    """v2's length conditions: `length_auc` (answers against distractors, pooled over the set) and
    `answer_longest_rate` (share of groups whose answer is strictly the longest candidate)."""
    answers = [text_length(t) for g in groups for t, r in zip(g.texts, g.relevant) if r]
    distractors = [text_length(t) for g in groups for t, r in zip(g.texts, g.relevant) if not r]
    longest = hits(groups, _feature(groups, text_length, 1.0), ties="against")
    return {
        "length_auc": pair_auc([np.array(answers)], [np.array(distractors)]),
        "answer_longest_rate": float(longest.mean()) if len(groups) else math.nan,
    }


__all__ = [
    "OVERALL",
    "RULES",
    "Group",
    "NaiveBayes",
    "RuleOutcome",
    "binomial_p",
    "bm25_scores",
    "char_bigrams",
    "evaluate_rule",
    "groups_from_dataset",
    "groups_from_relevance",
    "hits",
    "length_conditions",
    "margins",
    "overlap_direction",
    "pair_auc",
    "query_blind_matrix",
    "rule_scores",
    "rule_table",
    "sentence_count",
    "shared_counts",
    "text_length",
]
