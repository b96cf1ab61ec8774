"""The reference article's reported numbers: the only numbers in the reports not measured
by a run, read from `data/seed/reported.csv` (its header comments say where each comes from)."""

from __future__ import annotations

import csv
from pathlib import Path

import pandas as pd

from embedlab.data.datasets import data_dir
from embedlab.errors import DataError
from embedlab.models import MODELS

# column -> type; top1/top3 are fractions of the 8 seed queries (the article prints percent)
COLUMNS: dict[str, type] = {
    "article_name": str,
    "model": str,
    "gpu_memory_gb": float,
    "time_30_texts_s": float,
    "texts_per_s": float,
    "top1": float,
    "top3": float,
    "dim": int,
}


def reported_path() -> Path:
    """`data/seed/reported.csv` in a checkout (`embedlab/_data/seed/` in a wheel)."""
    return data_dir() / "seed" / "reported.csv"


def read_reported(path: str | Path | None = None) -> pd.DataFrame:
    """The article's results table, one row per model (columns COLUMNS). `#` lines are
    comments. Raises DataError naming the file, line and field of a malformed value, a
    missing column or a model with no embedlab record."""
    path = Path(path) if path is not None else reported_path()
    if not path.is_file():
        raise DataError(
            path, "the article's reported numbers are missing (expected a CSV with columns " + ", ".join(COLUMNS) + ")"
        )
    lines = path.read_text(encoding="utf-8").splitlines()
    numbered = [
        (i, line) for i, line in enumerate(lines, start=1) if line.strip() and not line.lstrip().startswith("#")
    ]
    reader = csv.reader([line for _, line in numbered])
    header = next(reader, None)
    if header != list(COLUMNS):
        raise DataError(path, f"header {header}: expected {list(COLUMNS)}", line=numbered[0][0] if numbered else None)
    rows = []
    for (number, _), row in zip(numbered[1:], reader):
        if len(row) != len(COLUMNS):
            raise DataError(path, f"{len(row)} fields, expected {len(COLUMNS)}", line=number)
        record = {}
        for (name, kind), value in zip(COLUMNS.items(), row):
            try:
                record[name] = kind(value)
            except ValueError:
                raise DataError(path, f"{value!r} is not a {kind.__name__}", line=number, field=name) from None
        if record["model"] not in MODELS:
            raise DataError(path, f"no embedlab record named {record['model']!r}", line=number, field="model")
        rows.append(record)
    if not rows:
        raise DataError(path, "no rows; expected one per model of the article's table")
    return pd.DataFrame(rows, columns=list(COLUMNS))


ARTICLE_REPORTED = read_reported()
