"""Numbers formatted by kind, once for every table and sentence of the report: p-values as
"p < 0.001" or three decimals, GiB to 2 decimals, rates (texts/s, tokens/s) to 1 decimal with
thousands separators, seconds to 3 significant digits, counts as integers, scores to 3
decimals. Chosen from the column's name (`formatter`)."""

from __future__ import annotations

import math
from collections.abc import Callable

P_FLOOR = 0.001
MAX_ROWS = 20  # rows of a table shown inline on a page; the rest are folded in a <details>
COUNT_COLUMNS = {
    "n",
    "n_queries",
    "n_timed",
    "wins",
    "ties",
    "losses",
    "dim",
    "max_length",
    "n_docs",
    "n_distractors",
    "top_k",
    "n_reranked",
    "rank",
    "n_wins",
}


def _missing(value) -> bool:
    return value is None or (isinstance(value, float) and math.isnan(value))


def p_value(value) -> str:
    """0.0004 -> "< 0.001", 0.0123 -> "0.012"; missing -> "–"."""
    if _missing(value):
        return "–"
    return f"< {P_FLOOR}" if value < P_FLOOR else f"{value:.3f}"


def p_text(value) -> str:
    """A p-value in a sentence: "p < 0.001", "p = 0.012"."""
    text = p_value(value)
    return f"p {text}" if text.startswith("<") else f"p = {text}"


def gib(value) -> str:
    return "–" if _missing(value) else f"{value:.2f}"


def rate(value) -> str:
    return "–" if _missing(value) else f"{value:,.1f}"


def seconds(value) -> str:
    return "–" if _missing(value) else f"{value:.3g}"


def count(value) -> str:
    if _missing(value):
        return "–"
    return f"{int(value):d}" if float(value).is_integer() else f"{value:g}"


def score(value, digits: int = 3) -> str:
    return "–" if _missing(value) else f"{value:.{digits}f}"


def formatter(column: str, digits: int = 3) -> Callable[[object], str]:
    """The format of a numeric column, by its name: p-values, GiB, rates, seconds, counts,
    else a score to `digits` decimals."""
    if column.startswith("p_") or column == "p":
        return p_value
    if column.endswith("_gib"):
        return gib
    if column.endswith("_per_s"):
        return rate
    if column.endswith("_s"):
        return seconds
    if column in COUNT_COLUMNS or column.startswith("n_"):
        return count
    return lambda value: score(value, digits)
