"""Export the queries a model gets wrong (selected as in the results explorer) as a trap file
in the one-file YAML format (docs/trap-format.md), for the next lesson: `embedlab lint` and
`embedlab run` read it like any trap set, and its header names the data set and model it
came from."""

from __future__ import annotations

import re
from collections.abc import Mapping
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

import pandas as pd

from embedlab.data.datasets import Dataset
from embedlab.evaluation.results import Report
from embedlab.report.views import query_table, ranked_documents

UNJUDGED_DISTRACTORS = 3  # documents ranked above the answer kept for a query that judges no distractor


def failures(
    report: Report, model: str, datasets: Mapping[str, Dataset] | None = None, **filters: str | None
) -> pd.DataFrame:
    """The rows of `query_table` under the results explorer's `filters` (compare, dataset,
    category, outcome) on which `model` does not rank the answer first (top-1 missed; a tie
    at the top counts as missed, as in the tables)."""
    table = query_table(report, model, datasets=datasets, **filters)
    return table[table["top1"] < 1].reset_index(drop=True)


def _distractors(report: Report, ds: Dataset, model: str, query_id: str) -> list[dict[str, str]]:
    """The query's judged non-relevant documents with their kinds; for a query that judges
    none (the seed), the documents `model` ranked above the answer (at most
    UNJUDGED_DISTRACTORS), each with its kind for this query (another query's answer:
    `other-answer`)."""
    judged = [d for d, g in ds.qrels.get(query_id, {}).items() if g == 0]
    if judged:
        return [{"kind": ds.kind_for(query_id, d), "text": ds.corpus[d]} for d in judged]
    ranked = ranked_documents(report, ds, model, query_id, k=UNJUDGED_DISTRACTORS)
    above = ranked[ranked["rank"] < ranked.loc[ranked["kind"] == "answer", "rank"].min()]
    return [{"kind": ds.kind_for(query_id, d), "text": text} for d, text in zip(above["doc_id"], above["document"])]


def _record(report: Report, ds: Dataset, model: str, query_id: str, new_id: str) -> dict[str, Any]:
    answer = ds.answer_of(query_id)
    if answer is None:
        raise ValueError(f"{ds.name}: query {query_id!r} judges no document relevant; a trap needs an answer")
    record: dict[str, Any] = {"id": new_id}
    if ds.categories.get(query_id):
        record["category"] = ds.categories[query_id]
    record.update(text=ds.queries[query_id], answer=ds.corpus[answer])
    distractors = _distractors(report, ds, model, query_id)
    if distractors:
        record["distractors"] = distractors
    return record


def _slug(text: str) -> str:
    return re.sub(r"[^a-z0-9]+", "-", text.lower()).strip("-")


def failures_trap(
    report: Report, model: str, rows: pd.DataFrame, datasets: Mapping[str, Dataset], filters: str = ""
) -> dict[str, Any]:
    """The trap file (a mapping in the YAML form) of `rows` (`failures`): one record per query
    with its best-graded answer and its distractors (`_distractors`); ids kept, prefixed with
    the data set where two data sets share one. The header names the source data sets (with
    version and fingerprint), the model, `filters` and the export time; language, licence
    and instructions come from the source (a single one)."""
    if rows.empty:
        raise ValueError(f"no failure of {model!r} to export with these filters ({filters or 'none'})")
    sources = list(dict.fromkeys(rows["dataset"]))
    shared = rows["query_id"].duplicated(keep=False)
    records = [
        _record(report, datasets[d], model, q, f"{_slug(d)}-{q}" if dup else q)
        for d, q, dup in zip(rows["dataset"], rows["query_id"], shared)
    ]
    first = datasets[sources[0]].meta
    named = "; ".join(
        f"{s} (version {datasets[s].meta.version or 'unversioned'}, fingerprint {datasets[s].fingerprint()[:12]})"
        for s in sources
    )
    when = datetime.now(timezone.utc).strftime("%Y-%m-%d %H:%M UTC")
    header: dict[str, Any] = {
        "name": _slug(f"{'-'.join(sources)}-{model}-failures"),
        "description": (
            f"{len(records)} queries that {model} does not rank first (top-1 missed) in a run of embedlab on {named}; "
            f"filters: {filters or 'none'}. Exported by embedlab.explore on {when}."
        ),
        "language": first.language,
        "license": first.license if len(sources) == 1 else "; ".join(datasets[s].meta.license for s in sources),
        "source": f"data set {named}, model {model} (embedlab.explore.export_failures)",
    }
    if len(sources) == 1:
        header.update(
            {k: getattr(first, k) for k in ("instruction", "instruction_zh") if getattr(first, k)},
            **({"candidates": first.candidates} if first.candidates != "all" else {}),
        )
    return {**header, "queries": records}


def export_failures(
    report: Report,
    path: str | Path,
    model: str,
    datasets: Mapping[str, Dataset] | None = None,
    **filters: str | None,
) -> Path:
    """Write the failures of `model` under the results explorer's `filters` (compare,
    dataset, category, outcome: `failures`) to `path` as a YAML trap file (`failures_trap`);
    returns the path. ValueError when nothing matches."""
    import yaml

    from embedlab.report.runs import resolve_datasets

    datasets = datasets if datasets is not None else {d.name: d for d in resolve_datasets(list(report.datasets))}
    rows = failures(report, model, datasets, **filters)
    named = ", ".join(f"{name}={value}" for name, value in filters.items() if value is not None)
    content = failures_trap(report, model, rows, datasets, named)
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(yaml.safe_dump(content, allow_unicode=True, sort_keys=False, width=1000), encoding="utf-8")
    return path
