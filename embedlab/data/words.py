"""Chinese word segmentation (jieba), shared by the lexical baseline (BM25) and the shortcut rules."""

from __future__ import annotations

import logging
from collections.abc import Iterator, Sequence


def segment(texts: Sequence[str]) -> list[list[str]]:
    """jieba search-mode words, lower-cased, punctuation and spaces dropped."""
    return [list(words(text)) for text in texts]


def words(text: str) -> Iterator[str]:
    """The words of one text, as `segment` gives them (one text at a time: BM25's index
    turns them into ids as they come, never holding a corpus of word strings)."""
    import jieba

    jieba.setLogLevel(logging.WARNING)
    for word in jieba.cut_for_search(text):
        word = word.strip().lower()
        if word and any(ch.isalnum() for ch in word):
            yield word
