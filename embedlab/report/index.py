"""`reports/index.html`: one entry per rendered notebook: its title (linked), its one-line
finding, a readable thumbnail of its first figure and links to the others."""

from __future__ import annotations

import html
import os
import time
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any


@dataclass
class NotebookResult:
    """One notebook's execution and rendering: seconds of execution, error (None if fine)."""

    name: str
    title: str
    executed: Path
    html: Path | None
    seconds: float
    error: str | None = None
    figures: list[Path] = field(default_factory=list)
    finding: str | None = None  # the page's headline (embedlab.report.findings)


INDEX_CSS = (
    "<style>body{font-family:system-ui,sans-serif;max-width:1200px;margin:2em auto;padding:0 1em;color:#222}"
    ".page{display:grid;grid-template-columns:1fr 460px;gap:1.2em;border-top:1px solid #ddd;padding:1em 0}"
    ".page h2{margin:0 0 .4em 0;font-size:1.2em}.finding{font-size:1.05em;line-height:1.45}"
    ".thumb img{width:460px;border:1px solid #ccc}.more{font-size:.85em;color:#555}.err{color:#b00}</style>"
)


def _rel(path: Path, reports_dir: Path) -> str:
    return html.escape(Path(os.path.relpath(path, reports_dir)).as_posix())


def _entry(r: NotebookResult, reports_dir: Path) -> str:
    title = f"<a href='{html.escape(r.html.name)}'>{html.escape(r.title)}</a>" if r.html else html.escape(r.title)
    if r.error:
        last = [line for line in r.error.strip().splitlines() if line.strip()]
        reason = last[-1][:300] if last else "unknown error"
        text = f"<p class='err'>This page failed to execute: {html.escape(reason)}</p>"
    else:
        text = f"<p class='finding'>{html.escape(r.finding)}</p>" if r.finding else ""
    thumb = more = ""
    if r.figures:
        first, *others = r.figures
        target = html.escape(r.html.name) if r.html else _rel(first, reports_dir)
        thumb = f"<a href='{target}'><img src='{_rel(first, reports_dir)}' alt='{html.escape(first.stem)}'></a>"
        links = [f"<a href='{_rel(f, reports_dir)}'>{html.escape(f.stem)}</a>" for f in r.figures]
        more = f"<p class='more'>Figures (PNG): {', '.join(links)}</p>" if others else ""
    return (
        f"<section class='page' id='{html.escape(r.name)}'><div><h2>{title}</h2>{text}{more}</div>"
        f"<div class='thumb'>{thumb}</div></section>"
    )


def write_index(
    reports_dir: str | Path,
    results: Sequence[NotebookResult],
    figures_dir: str | Path,
    extra: Mapping[str, Any] | None = None,
) -> Path:
    """`reports/index.html`: per notebook its link, its finding (or why it failed), its
    first figure as a thumbnail and links to the others; `extra` (e.g. the run's models and
    data sets) in a collapsed list at the end."""
    from embedlab import __version__

    reports_dir = Path(reports_dir)
    parts = [
        (
            "<!DOCTYPE html><html lang='en'><head><meta charset='utf-8'><title>embedlab "
            f"reports</title>{INDEX_CSS}</head><body>"
        ),
        "<h1>embedlab reports</h1>",
        (
            "<p>Which Chinese embedding model to choose, page by page: each line below is that page's finding, "
            "computed from its own "
            "numbers. Every number comes from the run that rendered it, except the article's table, which is "
            "labelled as reported.</p>"
        ),
        *(_entry(r, reports_dir) for r in results),
        (
            "<details><summary>How these pages were made</summary><p>Rendered "
            f"{html.escape(time.strftime('%Y-%m-%d %H:%M %z'))} "
            f"by embedlab {html.escape(__version__)}.</p>"
        ),
    ]
    if extra:
        parts.append(
            "<ul>"
            + "".join(f"<li>{html.escape(str(k))}: {html.escape(str(v))}</li>" for k, v in extra.items())
            + "</ul>"
        )
    parts.append("</details></body></html>")
    out = reports_dir / "index.html"
    out.write_text("\n".join(parts), encoding="utf-8")
    return out
