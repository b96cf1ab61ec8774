"""Chinese word segmentation (jieba), shared by the lexical baseline (BM25) and the shortcut rules."""

from __future__ import annotations

import logging
from collections.abc import Sequence


def segment(texts: Sequence[str]) -> list[list[str]]:
    """jieba search-mode words, lower-cased, punctuation and spaces dropped."""
    import jieba

    jieba.setLogLevel(logging.WARNING)
    out = []
    for text in texts:
        words = [w.strip().lower() for w in jieba.cut_for_search(text)]
        out.append([w for w in words if w and any(ch.isalnum() for ch in w)])
    return out
