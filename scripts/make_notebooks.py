"""Write notebooks/NN_name.ipynb from the Python sources notebooks/src/NN_name.py, without outputs.

    python scripts/make_notebooks.py           # (re)write every notebook from its source
    python scripts/make_notebooks.py --check   # exit 1 if a committed notebook differs from its source
                                               # (the student versions included)
    ruff check notebooks/src                   # the sources are linted like the package

The sources are jupytext "percent" scripts, one per notebook (same stem), except the eight
trap-category notebooks 01-08, which come from one template, `notebooks/src/category.py`
(its `{number}`, `{title_zh}`, `{title_en}`, `{category}` and `{notebook}` filled from
`embedlab.data.categories.CATEGORIES`; the comment lines above its first cell are not copied):
- `# %%` starts a code cell, `# %% [markdown]` a markdown cell (each of its lines starts `# `);
- the one cell opened by `# %% tags=["parameters"]` is papermill's parameters cell: plain
  literal assignments only (`models`, `datasets`, `cache_dir`, `figures_dir`, `dims`,
  `samples`, `sample_seed`, ...), which `embedlab report` overrides;
- that cell also declares `needs = {need: {option: literal}}`: the runs the notebook computes
  (keys of `embedlab.report.prime.NEEDS`, e.g. `{"trap_report": {"cues": True}}`; `{}` for
  none). `embedlab report` reads it with `ast` (never executing the notebook) and computes
  exactly those runs into the embedding cache before the notebooks execute.
- a cell opened by `# %% tags=["answer"]` (code) or `# %% [markdown] tags=["answer"]` (text)
  is an answer key: the teacher version, notebooks/NN_name.ipynb (the one `embedlab report`
  renders), has every cell; a notebook with answer cells also gets a student version,
  notebooks/student/NN_name.ipynb, the same notebook without them.
The notebooks stay thin: each cell calls embedlab (analysis computes, plots draws, render
saves). To let notebooks declare a new kind of run, add it to `NEEDS` in
embedlab/report/prime.py; tests/test_prime.py checks that each notebook calls what it declares."""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

import jupytext
import nbformat

from embedlab.data.categories import CATEGORIES

ROOT = Path(__file__).resolve().parents[1]
SOURCES = ROOT / "notebooks" / "src"
KERNELSPEC = {"name": "python3", "display_name": "Python 3", "language": "python"}
CATEGORY_TEMPLATE = "category.py"
ANSWER_TAG = "answer"  # the tag of an answer-key cell: in the teacher version only
STUDENT_DIR = "student"  # the student versions, under the notebooks' folder


def category_sources(template: str) -> dict[str, str]:
    """The percent script of each trap-category notebook (`01_homonym` ...) from the template."""
    body = template[template.index("# %%"):]
    out = {}
    for i, category in enumerate(CATEGORIES, start=1):
        stem = f"{i:02d}_{category.id.replace('-', '_')}"
        fields = {"number": f"{i:02d}", "title_zh": category.title_zh, "title_en": category.title_en, "category": category.id, "notebook": stem}
        text = body
        for key, value in fields.items():
            text = text.replace("{" + key + "}", value)
        out[stem] = text
    return out


def source_texts(sources: Path = SOURCES) -> dict[str, str]:
    """Every notebook's percent script by stem, in name order: the NN_name.py files and the
    category notebooks stamped from the template (an NN_name.py of the same stem wins)."""
    texts = {}
    template = sources / CATEGORY_TEMPLATE
    if template.exists():
        texts.update(category_sources(template.read_text(encoding="utf-8")))
    texts.update({p.stem: p.read_text(encoding="utf-8") for p in sources.glob("[0-9][0-9]_*.py")})
    if not texts:
        raise SystemExit(f"no notebook source (NN_name.py or {CATEGORY_TEMPLATE}) in {sources}")
    return dict(sorted(texts.items()))


def notebook(source: Path | str) -> nbformat.NotebookNode:
    """The notebook of one percent script (a path, or its text): its cells (only a `tags`
    metadata kept), a Python 3 kernelspec, no outputs, cell ids made stable (their position)
    so regeneration is diff-free."""
    text = source.read_text(encoding="utf-8") if isinstance(source, Path) else source
    nb = jupytext.reads(text, fmt="py:percent")
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
    """Every notebook by stem, in name order."""
    return {stem: notebook(text) for stem, text in source_texts(sources).items()}


def is_answer(cell: nbformat.NotebookNode) -> bool:
    """Whether a cell is an answer key (tagged `answer`)."""
    return ANSWER_TAG in cell.metadata.get("tags", [])


def student_version(nb: nbformat.NotebookNode) -> nbformat.NotebookNode | None:
    """The notebook without its answer-key cells (ids kept), or None when it has none."""
    if not any(is_answer(c) for c in nb.cells):
        return None
    out = nbformat.from_dict(nb)
    out.cells = [c for c in out.cells if not is_answer(c)]
    nbformat.validate(out)
    return out


def versions(sources: Path = SOURCES) -> dict[Path, nbformat.NotebookNode]:
    """Every file to write, by path relative to the notebooks' folder: NN_name.ipynb (the
    teacher version: all cells) and, for a notebook with answer keys,
    student/NN_name.ipynb."""
    out = {}
    for stem, nb in all_notebooks(sources).items():
        out[Path(f"{stem}.ipynb")] = nb
        student = student_version(nb)
        if student is not None:
            out[Path(STUDENT_DIR) / f"{stem}.ipynb"] = student
    return out


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
    wanted = versions(args.src)
    for relative, nb in wanted.items():
        path = args.out / relative
        text = render(nb)
        if args.check:
            if not path.exists() or path.read_text(encoding="utf-8") != text:
                stale.append(relative.as_posix())
        else:
            path.parent.mkdir(parents=True, exist_ok=True)
            path.write_text(text, encoding="utf-8")
    present = [*args.out.glob("[0-9][0-9]_*.ipynb"), *(args.out / STUDENT_DIR).glob("[0-9][0-9]_*.ipynb")]
    orphans = sorted(p.relative_to(args.out).as_posix() for p in present if p.relative_to(args.out) not in wanted)
    if orphans:
        print(
            f"notebooks without a source in {args.src} (a student version: without answer-key cells there): "
            + ", ".join(orphans),
            file=sys.stderr,
        )
    if stale:
        print(f"notebooks differ from their sources in {args.src} (run scripts/make_notebooks.py): " + ", ".join(stale), file=sys.stderr)
    return 1 if stale or orphans else 0


if __name__ == "__main__":
    sys.exit(main())
