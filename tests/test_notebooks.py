"""The notebooks: committed without outputs and in step with scripts/make_notebooks.py, thin
(parameterised, no logic), and every one executes headless on the bundled models without an
error, with its figures saved as PNG and SVG and no missing Chinese glyph.

The execution shares the embedding cache (`$EMBEDLAB_CACHE_DIR`, else .cache/embedlab), so
it costs minutes once and seconds after `make report`."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from embedlab import report as rep
from embedlab.categories import CATEGORIES

ROOT = Path(__file__).resolve().parents[1]
NOTEBOOKS = rep.list_notebooks(ROOT / "notebooks")
NAMES = [p.stem for p in NOTEBOOKS]
CATEGORY_NOTEBOOKS = {f"{i:02d}_{c.id.replace('-', '_')}": c.id for i, c in enumerate(CATEGORIES, start=1)}
EXPECTED = ["00_overview", *CATEGORY_NOTEBOOKS, "09_speed_memory", "10_dimensions", "11_instructions", "12_real_data"]
# figures each notebook saves (stems; heatmaps are per data set)
FIGURES = {
    "00_overview": {"top1-by-model", "mrr-by-model", "top1-by-category", "top1-measured-vs-reported"},
    "09_speed_memory": {"texts-per-s-vs-size", "tokens-per-s-vs-size", "memory-vs-size", "load-time-vs-size"},
    "10_dimensions": {"top1-vs-dimensions", "mrr-vs-dimensions"},
    "11_instructions": {"top1-by-variant", "mrr-by-variant"},
    "12_real_data": {"mrr-by-model", "top1-by-model", "top1-by-overlap"},
    **{name: {"margins", "distractor-kinds", "ranks", "heatmap-seed"} for name in CATEGORY_NOTEBOOKS},
}


def test_every_notebook_is_there() -> None:
    assert NAMES == EXPECTED


@pytest.mark.parametrize("path", NOTEBOOKS, ids=NAMES)
def test_committed_without_outputs(path: Path) -> None:
    nb = json.loads(path.read_text(encoding="utf-8"))
    for cell in nb["cells"]:
        if cell["cell_type"] == "code":
            assert cell["outputs"] == [] and cell["execution_count"] is None, f"{path.name} has outputs: clear them"


def test_notebooks_match_their_generator() -> None:
    proc = subprocess.run([sys.executable, str(ROOT / "scripts" / "make_notebooks.py"), "--check"], capture_output=True, text=True)
    assert proc.returncode == 0, proc.stderr


@pytest.mark.parametrize("path", NOTEBOOKS, ids=NAMES)
def test_notebooks_are_thin_and_parameterised(path: Path) -> None:
    """Logic lives in embedlab: cells hold no def, class, loop or import beyond the set-up."""
    nb = json.loads(path.read_text(encoding="utf-8"))
    declared = rep.declared_parameters(path)
    assert {"models", "cache_dir", "figures_dir"} <= set(declared)
    assert set(declared) <= {*rep.COMMON_PARAMETERS, "category"}
    for cell in nb["cells"]:
        source = "".join(cell["source"])
        if cell["cell_type"] != "code":
            continue
        for word in ("def ", "class ", "for ", "while ", "lambda"):
            assert word not in source, f"{path.name}: {word.strip()!r} in a cell belongs in embedlab"
        assert "plt.show" not in source and "savefig" not in source


@pytest.fixture(scope="module")
def executed(tmp_path_factory) -> dict[str, rep.NotebookResult]:
    out = tmp_path_factory.mktemp("notebooks")
    results = rep.build(NOTEBOOKS, out / "reports", out / "figures", {"cache_dir": os.environ.get("EMBEDLAB_CACHE_DIR")}, jobs=2)
    return {r.name: r for r in results}


@pytest.mark.slow
@pytest.mark.parametrize("name", EXPECTED)
def test_notebook_executes_headless(executed: dict[str, rep.NotebookResult], name: str) -> None:
    result = executed[name]
    assert result.error is None, result.error
    nb = json.loads(result.executed.read_text(encoding="utf-8"))
    for cell in nb["cells"]:
        for output in cell.get("outputs", []):
            assert output.get("output_type") != "error", output
            text = "".join(output.get("text", ""))
            assert "missing from font" not in text, f"{name}: a figure drew Chinese without a CJK font: {text[:300]}"
            assert "Traceback" not in text, text[:2000]
    saved = {p.stem for p in result.figures}
    assert FIGURES[name] <= saved, f"{name}: missing figures {FIGURES[name] - saved}"
    for png in result.figures:
        assert png.with_suffix(".svg").exists()
    assert result.html is not None and result.html.stat().st_size > 50_000


@pytest.mark.slow
def test_index_page_links_every_report(executed: dict[str, rep.NotebookResult]) -> None:
    index = next(iter(executed.values())).html.parent / "index.html"
    text = index.read_text(encoding="utf-8")
    for name in EXPECTED:
        assert f"href='{name}.html'" in text
    assert text.count("<img ") >= sum(len(FIGURES[n]) for n in EXPECTED)
