"""`reports/index.html`: one page linking every rendered notebook, with its status,
execution time and figure thumbnails."""

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


def write_index(reports_dir: str | Path, results: Sequence[NotebookResult], figures_dir: str | Path, extra: Mapping[str, Any] | None = None) -> Path:
    """`reports/index.html`: one section per notebook with its link, status, execution time
    and figure thumbnails (linked to the PNG and SVG files)."""
    from embedlab import __version__

    reports_dir = Path(reports_dir)
    parts = [
        "<!DOCTYPE html><html lang='en'><head><meta charset='utf-8'><title>embedlab reports</title>",
        "<style>body{font-family:system-ui,sans-serif;max-width:1100px;margin:2em auto;padding:0 1em;color:#222}"
        "h2{border-bottom:1px solid #ddd;padding-bottom:.2em}.fig{display:inline-block;margin:.3em;text-align:center;font-size:.8em}"
        ".fig img{max-width:240px;max-height:180px;border:1px solid #ccc;display:block}.err{color:#b00}"
        "table{border-collapse:collapse}td,th{padding:.2em .6em;border-bottom:1px solid #eee;text-align:left}</style></head><body>",
        "<h1>embedlab reports</h1>",
        f"<p>Rendered {html.escape(time.strftime('%Y-%m-%d %H:%M:%S %z'))} by embedlab {html.escape(__version__)}. "
        "Every number comes from the run that rendered it, except the article's table, which is labelled as reported.</p>",
    ]
    if extra:
        parts.append("<table>" + "".join(f"<tr><th>{html.escape(str(k))}</th><td>{html.escape(str(v))}</td></tr>" for k, v in extra.items()) + "</table>")
    parts.append("<table><tr><th>notebook</th><th>status</th><th>seconds</th></tr>")
    for r in results:
        link = f"<a href='{html.escape(r.html.name)}'>{html.escape(r.title)}</a>" if r.html else html.escape(r.title)
        status = "ok" if r.error is None else "<span class='err'>failed</span>"
        parts.append(f"<tr><td>{link}</td><td>{status}</td><td>{r.seconds:.1f}</td></tr>")
    parts.append("</table>")
    for r in results:
        parts.append(f"<h2 id='{html.escape(r.name)}'>{html.escape(r.title)}</h2>")
        if r.html:
            parts.append(f"<p><a href='{html.escape(r.html.name)}'>open the report</a></p>")
        if r.error:
            parts.append(f"<pre class='err'>{html.escape(r.error[:2000])}</pre>")
        for fig in r.figures:
            rel = Path(os.path.relpath(fig, reports_dir)).as_posix()
            svg = Path(os.path.relpath(fig.with_suffix(".svg"), reports_dir)).as_posix()
            parts.append(
                f"<div class='fig'><a href='{html.escape(rel)}'><img src='{html.escape(rel)}' alt='{html.escape(fig.stem)}'></a>"
                f"{html.escape(fig.stem)} (<a href='{html.escape(svg)}'>svg</a>)</div>"
            )
    parts.append("</body></html>")
    out = reports_dir / "index.html"
    out.write_text("\n".join(parts), encoding="utf-8")
    return out
