"""BM25 over Chinese word segmentation (jieba + bm25s): the lexical baseline that shows
what plain word overlap achieves on each trap."""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np

from embedlab.data.words import segment, words
from embedlab.models.backends import BaseScorer
from embedlab.models.spec import ModelSpec


class BM25Backend(BaseScorer):
    """Okapi BM25 (bm25s, k1=1.5, b=0.75 unless `options` say otherwise)."""

    def __init__(self, spec: ModelSpec) -> None:
        import bm25s

        self.spec = spec
        self._bm25s = bm25s
        self._retriever = None
        self._n_docs = 0

    def effective_settings(self) -> dict[str, object]:
        """BM25 over jieba search-mode tokens, on the CPU."""
        from importlib.metadata import version

        return {
            "k1": float(self.spec.options.get("k1", 1.5)),
            "b": float(self.spec.options.get("b", 0.75)),
            "device": "cpu",
            "engine": f"bm25s {version('bm25s')}, jieba {version('jieba')}",
        }

    def index(self, corpus: Sequence[str]) -> None:
        """Word ids of each document, made one document at a time: the corpus's words are
        never all held as strings at once (a third of BM25's peak memory at 100k documents)."""
        vocab: dict[str, int] = {}
        ids = [[vocab.setdefault(w, len(vocab)) for w in words(doc)] for doc in corpus]
        self._vocab = vocab
        self._retriever = self._bm25s.BM25(
            k1=float(self.spec.options.get("k1", 1.5)), b=float(self.spec.options.get("b", 0.75))
        )
        self._retriever.index(self._bm25s.tokenization.Tokenized(ids=ids, vocab=vocab), show_progress=False)
        self._n_docs = len(corpus)

    def score(self, queries: Sequence[str]) -> np.ndarray:
        """BM25 score of every document for every query, shape (n_queries, n_docs)."""
        if self._retriever is None:
            raise RuntimeError("call index(corpus) before score(queries)")
        out = np.zeros((len(queries), self._n_docs), dtype=np.float32)
        for row, query in enumerate(queries):
            known = [w for w in words(query) if w in self._vocab]
            if known:
                out[row] = self._retriever.get_scores(known)
        return out


class LengthBackend(BaseScorer):
    """Cue baseline: a document's score is its length in characters, the same for every
    query (longer scores higher). It reads no meaning at all, so a model that barely beats
    it on a trap set may be scoring on form (answers longer than distractors), not sense.
    Run it with `options: {candidates: judged}` to rank each query among its own answer
    and distractors, where such form cues act."""

    def __init__(self, spec: ModelSpec) -> None:
        self.spec = spec
        self._lengths: np.ndarray | None = None

    def effective_settings(self) -> dict[str, object]:
        return {"device": "cpu", "engine": "document length in characters"}

    def index(self, corpus: Sequence[str]) -> None:
        self._lengths = np.array([len(text) for text in corpus], dtype=np.float32)

    def score(self, queries: Sequence[str]) -> np.ndarray:
        """Document length (characters) for every query, shape (n_queries, n_docs)."""
        if self._lengths is None:
            raise RuntimeError("call index(corpus) before score(queries)")
        return np.broadcast_to(self._lengths, (len(queries), len(self._lengths))).copy()


__all__ = ["BM25Backend", "LengthBackend", "segment"]  # segment: re-exported for embedlab.models and explore
