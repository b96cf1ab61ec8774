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

from embedlab.report import render as rep
from embedlab.data.categories import CATEGORIES

ROOT = Path(__file__).resolve().parents[1]
NOTEBOOKS = rep.list_notebooks(ROOT / "notebooks")
NAMES = [p.stem for p in NOTEBOOKS]
CATEGORY_NOTEBOOKS = {f"{i:02d}_{c.id.replace('-', '_')}": c.id for i, c in enumerate(CATEGORIES, start=1)}
EXPECTED = ["00_overview", *CATEGORY_NOTEBOOKS, "09_speed_memory", "10_dimensions", "11_instructions", "12_real_data", "13_data_quality"]
# notebooks about the data alone (no model parameter) and the parameters only they declare
DATA_ONLY = {"13_data_quality": {"cross_query"}}
# figures each notebook saves (stems; heatmaps are per data set)
FIGURES = {
    "00_overview": {"top1-by-model", "mrr-by-model", "top1-beside-cues", "top1-by-category", "memory-by-model", "top1-measured-vs-reported"},
    "09_speed_memory": {"texts-per-s-vs-size", "tokens-per-s-vs-size", "memory-by-model", "memory-vs-size", "load-time-vs-size"},
    "10_dimensions": {"top1-vs-dimensions", "mrr-vs-dimensions"},
    "11_instructions": {"top1-by-variant", "mrr-by-variant"},
    "12_real_data": {"mrr-by-model", "top1-by-model", "top1-by-overlap"},
    "13_data_quality": {"lengths", "overlap"},
    **{name: {"margins", "distractor-kinds", "ranks", "heatmap-seed", "heatmap-traps-zh", "top1-by-model"} for name in CATEGORY_NOTEBOOKS},
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
    assert {"cache_dir", "figures_dir"} | ({"models"} if path.stem not in DATA_ONLY else set()) <= set(declared)
    assert set(declared) <= {*rep.COMMON_PARAMETERS, "category", *DATA_ONLY.get(path.stem, ())}
    for cell in nb["cells"]:
        source = "".join(cell["source"])
        if cell["cell_type"] != "code":
            continue
        for word in ("def ", "class ", "for ", "while ", "lambda"):
            assert word not in source, f"{path.name}: {word.strip()!r} in a cell belongs in embedlab"
        assert "plt.show" not in source and "savefig" not in source


def _selected_notebooks(session) -> list[Path]:
    """The notebooks the selected tests need: those of the selected
    `test_notebook_executes_headless[...]` items (e.g. `-k "executes and 11_"`), or all of
    them when the index test is selected."""
    items = session.items
    if any(item.originalname == "test_index_page_links_every_report" for item in items):
        return NOTEBOOKS
    names = {item.callspec.params["name"] for item in items if item.originalname == "test_notebook_executes_headless"}
    return [p for p in NOTEBOOKS if p.stem in names]


@pytest.fixture(scope="module")
def executed(request, tmp_path_factory) -> dict[str, rep.NotebookResult]:
    """The selected notebooks executed (every one in a full run); embeddings from the shared
    cache, but every figure drawn (the figure cache off, in the kernels too), so a missing
    glyph cannot hide behind a cached PNG. The figure cache has its own tests
    (test_figure_cache.py)."""
    from embedlab.report import figure_cache

    out = tmp_path_factory.mktemp("notebooks")
    with pytest.MonkeyPatch.context() as mp:
        mp.setenv(figure_cache.ENV_VAR, "0")
        results = rep.build(_selected_notebooks(request.session), out / "reports", out / "figures", {"cache_dir": os.environ.get("EMBEDLAB_CACHE_DIR")}, jobs=2)
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


# ---- the rendering machinery, on tiny notebooks ----------------------------------------------


def _tiny_notebook(path: Path, *cells: str, parameters: str = "x = 1") -> Path:
    import nbformat
    from nbformat.v4 import new_code_cell, new_markdown_cell, new_notebook

    param = new_code_cell(parameters)
    param.metadata["tags"] = ["parameters"]
    nb = new_notebook(cells=[new_markdown_cell(f"# Title of {path.stem}"), param, *[new_code_cell(c) for c in cells]])
    nb.metadata["kernelspec"] = {"name": "python3", "display_name": "Python 3", "language": "python"}
    nbformat.write(nb, str(path))
    return path


def test_build_isolates_notebooks_and_reports_failures(tmp_path: Path) -> None:
    """One kernel serves several notebooks: each starts with a clean namespace, gets its
    parameters, and a failing notebook is reported while the others still render."""
    src = tmp_path / "nb"
    src.mkdir()
    first = _tiny_notebook(src / "a_first.ipynb", "leak = 42", "print('first', x)")
    second = _tiny_notebook(src / "b_second.ipynb", "print('leak' in globals(), x)")
    broken = _tiny_notebook(src / "c_broken.ipynb", "raise ValueError('on purpose')")
    results = rep.build([first, second, broken], tmp_path / "reports", tmp_path / "figures", {"models": ["ignored"]}, jobs=1, prime_cache=False)
    by_name = {r.name: r for r in results}
    assert by_name["a_first"].error is None and by_name["b_second"].error is None
    assert "on purpose" in by_name["c_broken"].error
    nb = json.loads(by_name["b_second"].executed.read_text(encoding="utf-8"))
    outputs = "".join("".join(o.get("text", "")) for c in nb["cells"] for o in c.get("outputs", []))
    assert "False 1" in outputs, "a variable leaked from the previous notebook"
    assert [c.get("execution_count") for c in nb["cells"] if c["cell_type"] == "code"][0] == 1
    for r in results:
        assert r.html is not None and r.html.exists()
    index = (tmp_path / "reports" / "index.html").read_text(encoding="utf-8")
    assert "Title of a_first" in index and "failed" in index


def test_parameters_go_only_to_notebooks_that_declare_them(tmp_path: Path) -> None:
    path = _tiny_notebook(tmp_path / "p.ipynb", "print(x, y)", parameters="x = 1\ny = 2")
    assert rep.declared_parameters(path) == ["x", "y"]
    assert rep.notebook_title(path) == "Title of p"
    assert rep.declared_parameters(ROOT / "notebooks" / "12_real_data.ipynb") == ["models", "samples", "sample_seed", "cache_dir", "figures_dir"]
    assert [p.stem for p in rep.list_notebooks(ROOT / "notebooks", ["0"])][:2] == ["00_overview", "01_homonym"]


def test_tables_round_numbers_and_left_align_text() -> None:
    import pandas as pd

    html = rep.table(pd.DataFrame({"query": ["银行的利率"], "top1": [0.123456], "extra": [1]}), ["query", "top1"])._repr_html_()
    assert "0.123<" in html and "extra" not in html
    assert "text-align: left" in html


# ---- `embedlab report`: paths and configs ------------------------------------------------------

TRAP_FILE = """\
name: mine
instruction: Find the passage that answers the question
queries:
  - id: homonym-01
    text: 银行的利率
    category: homonym
    answer: 央行调整利率影响贷款成本
    distractors:
      - {kind: other-sense, text: 河岸边的银行大楼}
"""


def _workspace(tmp_path: Path) -> Path:
    """A user's folder: a trap file and a model folder under relative paths."""
    (tmp_path / "data").mkdir()
    (tmp_path / "data" / "mine.yaml").write_text(TRAP_FILE, encoding="utf-8")
    (tmp_path / "weights" / "Qwen3-Embedding-0.6B").mkdir(parents=True)
    return tmp_path


def test_report_parameters_make_paths_absolute(tmp_path: Path) -> None:
    from embedlab.errors import ConfigError

    root = _workspace(tmp_path)
    params = rep.report_parameters(
        ["bm25", "weights/Qwen3-Embedding-0.6B", "qwen3-embedding-0.6b=weights/Qwen3-Embedding-0.6B", "Qwen/Qwen3-Embedding-0.6B"],
        ["seed", "data/mine.yaml"], cache_dir="cache", cwd=root,
    )
    folder = str((root / "weights" / "Qwen3-Embedding-0.6B").resolve())
    assert params["models"] == ["bm25", folder, f"qwen3-embedding-0.6b={folder}", "Qwen/Qwen3-Embedding-0.6B"]  # a hub id stays
    assert params["datasets"] == ["seed", str((root / "data" / "mine.yaml").resolve())]
    assert params["cache_dir"] == str((root / "cache").resolve())
    assert rep.report_parameters(None, None, cwd=root) == {"models": None, "datasets": None, "cache_dir": None}
    with pytest.raises(ConfigError, match="no-such-set"):
        rep.report_parameters(None, ["data/no-such-set.yaml"], cwd=root)


def test_report_parameters_from_a_config_and_overrides(tmp_path: Path) -> None:
    root = _workspace(tmp_path)
    (root / "run.yaml").write_text(
        "models:\n  - bm25\n  - {name: my-qwen, model: qwen3-embedding-0.6b, path: weights/Qwen3-Embedding-0.6B}\n"
        "datasets: [data/mine.yaml, seed]\nsettings: {cache_dir: .cache/mine}\n",
        encoding="utf-8",
    )
    params = rep.report_parameters(config="run.yaml", cwd=root)
    bm25, qwen = params["models"]
    assert bm25 == "bm25"  # the registered record unchanged: its name
    assert qwen["name"] == "my-qwen" and qwen["path"] == str((root / "weights" / "Qwen3-Embedding-0.6B").resolve())
    assert qwen["prompts"]["query"].startswith("Instruct: {instruction}")  # the record's facts travel with it
    from embedlab.report import analysis

    (spec,) = analysis.resolve_models([qwen])
    assert spec.name == "my-qwen" and spec.path == qwen["path"] and spec.backend == qwen["backend"]
    assert params["datasets"] == [str((root / "data" / "mine.yaml").resolve()), "seed"]
    assert params["cache_dir"] == str((root / ".cache" / "mine").resolve())
    override = rep.report_parameters(["bm25"], None, config=root / "run.yaml", cache_dir=root / "other", cwd=root)
    assert override["models"] == ["bm25"] and override["datasets"] == params["datasets"] and override["cache_dir"] == str(root / "other")
    assert rep.report_parameters(None, ["seed"], config="run.yaml", cwd=root)["datasets"] == ["seed"]


def test_report_command_passes_relative_paths_and_configs_to_the_notebooks(tmp_path: Path) -> None:
    """`embedlab report` typed in a user's folder with relative -m / -d / --config: the
    notebook (run from its own folder) loads the data set and finds the model folder."""
    root = _workspace(tmp_path)
    nb_dir = root / "nbs"
    nb_dir.mkdir()
    _tiny_notebook(
        nb_dir / "a_paths.ipynb",
        "import os\nfrom embedlab import load_dataset\nprint('cwd', os.getcwd())\n"
        "print('queries', [len(load_dataset(d).query_ids) for d in datasets])\n"
        "print('model folder', [os.path.isdir(m.split('=', 1)[1]) for m in models if isinstance(m, str) and '=' in m])\n"
        "print('config models', [m if isinstance(m, str) else m['name'] for m in models])",
        parameters="models = None\ndatasets = None\ncache_dir = None\nfigures_dir = None",
    )
    (root / "run.yaml").write_text("models: [bm25]\ndatasets: [data/mine.yaml]\n", encoding="utf-8")
    embedlab = str(Path(sys.executable).with_name("embedlab"))

    def report(*args: str) -> str:
        proc = subprocess.run([embedlab, "report", "--notebooks-dir", "nbs", "--out", "out", "--figures", "figs", "--jobs", "1", *args],
                              cwd=root, capture_output=True, text=True, timeout=600)
        assert proc.returncode == 0, proc.stdout + proc.stderr
        nb = json.loads((root / "out" / "executed" / "a_paths.ipynb").read_text(encoding="utf-8"))
        return "".join("".join(o.get("text", "")) for c in nb["cells"] for o in c.get("outputs", []))

    text = report("-m", "qwen3-embedding-0.6b=weights/Qwen3-Embedding-0.6B", "-d", "data/mine.yaml", "-d", "seed")
    assert f"cwd {nb_dir.resolve()}" in text  # the notebook ran from its own folder ...
    assert "queries [1, 8]" in text and "model folder [True]" in text  # ... and still found both
    text = report("--config", "run.yaml")
    assert "queries [1]" in text and "config models ['bm25']" in text
    bad = subprocess.run([embedlab, "report", "--notebooks-dir", "nbs", "-d", "data/missing.yaml"], cwd=root, capture_output=True, text=True, timeout=120)
    assert bad.returncode == 2 and "data/missing.yaml" in bad.stderr and "Traceback" not in bad.stderr
