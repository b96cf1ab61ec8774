"""Write notebooks/NN_name.ipynb from the Python sources notebooks/src/NN_name.py, without outputs.

    python scripts/make_notebooks.py           # (re)write every notebook from its source
    python scripts/make_notebooks.py --check   # exit 1 if a committed notebook differs from its source
    ruff check notebooks/src                   # the sources are linted like the package

The sources are jupytext "percent" scripts, one per notebook (same stem):
- `# %%` starts a code cell, `# %% [markdown]` a markdown cell (each of its lines starts `# `);
- the one cell opened by `# %% tags=["parameters"]` is papermill's parameters cell: plain
  literal assignments only (`models`, `datasets`, `cache_dir`, `figures_dir`, `dims`,
  `samples`, `sample_seed`, ...), which `embedlab report` overrides;
- that cell also declares `needs = {need: {option: literal}}`: the runs the notebook computes
  (keys of `embedlab.report.prime.NEEDS`, e.g. `{"trap_report": {"cues": True}}`; `{}` for
  none). `embedlab report` reads it with `ast` (never executing the notebook) and computes
  exactly those runs into the embedding cache before the notebooks execute.
The notebooks stay thin: each cell calls embedlab (analysis computes, plots draws, render
saves). To let notebooks declare a new kind of run, add it to `NEEDS` in
embedlab/report/prime.py; tests/test_prime.py checks that each notebook calls what it declares."""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

import jupytext
import nbformat

ROOT = Path(__file__).resolve().parents[1]
SOURCES = ROOT / "notebooks" / "src"
KERNELSPEC = {"name": "python3", "display_name": "Python 3", "language": "python"}


def notebook(source: Path) -> nbformat.NotebookNode:
    """The notebook of one percent script: its cells (only a `tags` metadata kept), a Python 3
    kernelspec, no outputs, cell ids made stable (their position) so regeneration is diff-free."""
    nb = jupytext.read(source, fmt="py:percent")
    nb.metadata = nbformat.NotebookNode({"kernelspec": dict(KERNELSPEC), "language_info": {"name": "python"}})
    for i, cell in enumerate(nb.cells):
        tags = cell.metadata.get("tags")
        cell.metadata = nbformat.NotebookNode({"tags": list(tags)} if tags else {})
        cell["id"] = f"cell-{i:02d}"
        if cell.cell_type == "code":
            cell.outputs, cell.execution_count = [], None
    nbformat.validate(nb)
    return nb


def all_notebooks(sources: Path = SOURCES) -> dict[str, nbformat.NotebookNode]:
    """Every notebook by stem, from `sources`/*.py in name order."""
    paths = sorted(sources.glob("[0-9][0-9]_*.py"))
    if not paths:
        raise SystemExit(f"no notebook source (NN_name.py) in {sources}")
    return {p.stem: notebook(p) for p in paths}


def render(nb: nbformat.NotebookNode) -> str:
    """The file text of a notebook."""
    return nbformat.writes(nb) + "\n"


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--check", action="store_true", help="only compare; exit 1 on a difference")
    parser.add_argument("--src", type=Path, default=SOURCES, help="folder of the percent scripts")
    parser.add_argument("--out", type=Path, default=ROOT / "notebooks")
    args = parser.parse_args(argv)
    stale = []
    args.out.mkdir(parents=True, exist_ok=True)
    for stem, nb in all_notebooks(args.src).items():
        path = args.out / f"{stem}.ipynb"
        text = render(nb)
        if args.check:
            if not path.exists() or path.read_text(encoding="utf-8") != text:
                stale.append(path.name)
        else:
            path.write_text(text, encoding="utf-8")
    orphans = sorted(p.name for p in args.out.glob("[0-9][0-9]_*.ipynb") if not (args.src / f"{p.stem}.py").exists())
    if orphans:
        print(f"notebooks without a source in {args.src}: " + ", ".join(orphans), file=sys.stderr)
    if stale:
        print(f"notebooks differ from their sources in {args.src} (run scripts/make_notebooks.py): " + ", ".join(stale), file=sys.stderr)
    return 1 if stale or orphans else 0


if __name__ == "__main__":
    sys.exit(main())
