"""Notebooks declare their needs, prime follows: `needs` in a notebook's parameters cell is
read with ast (never executed), and `prime` computes exactly those runs into the embedding
cache, with the notebook's parameters. The notebooks' own calls match their declarations,
so priming and notebooks cannot drift. Cheap real models (bm25, the length cues) on the
seed keep this fast."""

from __future__ import annotations

import ast
import importlib.util
import json
import re
from pathlib import Path

import pytest

from embedlab.errors import ConfigError
from embedlab.report import analysis, prime
from embedlab.report import render as rep

ROOT = Path(__file__).resolve().parents[1]
NOTEBOOKS = rep.list_notebooks(ROOT / "notebooks")


def _generator():
    spec = importlib.util.spec_from_file_location("make_notebooks", ROOT / "scripts" / "make_notebooks.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def _with_needs(tmp_path: Path, stem: str, needs: str) -> Path:
    """A temp copy of a notebook whose percent source declares `needs = <needs>`, generated
    the way scripts/make_notebooks.py generates the committed ones."""

    source = _generator().source_texts(ROOT / "notebooks" / "src")[stem]
    changed, n = re.subn(r"^needs = .*$", f"needs = {needs}", source, count=1, flags=re.M)
    assert n == 1, f"{stem}.py declares no needs line"
    src = tmp_path / "src" / f"{stem}.py"
    src.parent.mkdir(parents=True, exist_ok=True)
    src.write_text(changed, encoding="utf-8")
    out = tmp_path / f"{stem}.ipynb"
    out.write_text(_generator().render(_generator().notebook(src)), encoding="utf-8")
    return out


def _cached(models, cache: Path, cues: bool = False) -> dict[str, bool]:
    """Per model of a seed trap run: whether it came from the cache (runs it in-process)."""
    runs = analysis.trap_report(models, ["seed"], cache, cues=cues).runs
    return dict(zip(runs["model"], runs["cached"].astype(bool)))


def _entries(cache: Path) -> int:
    return sum(1 for _ in cache.glob("v*/*/*/meta.json"))


@pytest.mark.integration
def test_prime_computes_exactly_what_the_notebook_declares(tmp_path: Path) -> None:
    params = {"models": ["bm25"], "datasets": ["seed"]}
    plain, cues, nothing = (tmp_path / n for n in ("plain", "cues", "nothing"))
    seconds = prime.prime({**params, "cache_dir": str(plain)}, [_with_needs(tmp_path / "a", "01_homonym", '{"trap_report": {}}')], progress=False)
    assert set(seconds) == {"trap_report"}
    assert _entries(plain) == 1  # bm25 on the seed, nothing else
    assert _cached(["bm25"], plain, cues=True) == {"bm25": True, "length": False, "length-judged": False, "overlap-inverse": False, "query-blind": False}

    prime.prime({**params, "cache_dir": str(cues)}, [_with_needs(tmp_path / "b", "01_homonym", '{"trap_report": {"cues": True}}')], progress=False)
    assert _entries(cues) == 5
    assert _cached(["bm25"], cues, cues=True) == {"bm25": True, "length": True, "length-judged": True, "overlap-inverse": True, "query-blind": True}

    assert prime.prime({**params, "cache_dir": str(nothing)}, [_with_needs(tmp_path / "c", "01_homonym", "{}")], progress=False) == {}
    assert _entries(nothing) == 0


def test_the_notebooks_parameters_reach_the_need(tmp_path: Path) -> None:
    """A notebook's own defaults count, overridden by what `embedlab report` passes."""
    path = _with_needs(tmp_path, "01_homonym", '{"trap_report": {"cues": True}}')
    steps = prime.notebook_steps(path, {"models": ["bm25"], "datasets": ["seed"], "cache_dir": str(tmp_path / "c")})
    assert [(s.need, s.model, s.size, s.timed) for s in steps] == [
        ("trap_report", "bm25", 1, True), ("trap_report", "length", 1, True), ("trap_report", "length-judged", 1, True),
        ("trap_report", "overlap-inverse", 1, True), ("trap_report", "query-blind", 1, True),
    ]
    default = prime.notebook_steps(path, {"cache_dir": str(tmp_path / "c")})  # the cell's models = None: the bundled ones
    assert [s.model for s in default] == [s.name for s in analysis.with_cue_baselines(None)]
    assert all(s.size == 2 for s in default)  # seed + traps-zh, the cell's default data sets


def test_identical_work_of_several_notebooks_is_planned_once(tmp_path: Path) -> None:
    params = {"models": ["bm25", "length"], "datasets": ["seed"], "cache_dir": str(tmp_path / "c")}
    overview = _with_needs(tmp_path / "a", "00_overview", '{"trap_report": {"cues": True}}')
    category = _with_needs(tmp_path / "b", "01_homonym", '{"trap_report": {}}')
    dims = _with_needs(tmp_path / "d", "10_dimensions", '{"dimension_report": {}}')
    steps = prime.plan(params, [category, dims, overview])
    assert [(s.need, s.model) for s in steps] == [
        ("trap_report", "bm25"), ("trap_report", "length"), ("trap_report", "length-judged"),  # timed ones first
        ("trap_report", "overlap-inverse"), ("trap_report", "query-blind"),
        ("dimension_report", "bm25"), ("dimension_report", "length"),
    ]


@pytest.mark.parametrize(
    ("needs", "message"),
    [
        ('{"trap_reprot": {}}', r"01_homonym\.ipynb: needs 'trap_reprot': no such need"),
        ('{"trap_report": {"colour": 1}}', r"01_homonym\.ipynb: needs 'trap_report': unknown option\(s\) \['colour'\]"),
        ('{"real_data_report": {}}', r"01_homonym\.ipynb: needs 'real_data_report', which reads \['samples', 'sample_seed'\]"),
        ('["trap_report"]', r"01_homonym\.ipynb: `needs` is \['trap_report'\]; expected a dict"),
        ('{"trap_report": dict()}', r"01_homonym\.ipynb: parameters cell line \d+: needs = \{'trap_report': dict\(\)\} is not a literal"),
    ],
)
def test_a_bad_declaration_names_the_notebook_and_the_need(tmp_path: Path, needs: str, message: str) -> None:
    path = _with_needs(tmp_path, "01_homonym", needs)
    with pytest.raises(ConfigError, match=message):
        prime.prime({"models": ["bm25"], "datasets": ["seed"], "cache_dir": str(tmp_path / "c")}, [path], progress=False)
    assert not (tmp_path / "c").exists(), "nothing is computed before every declaration is read"


def _need_calls(path: Path) -> dict[str, dict]:
    """`analysis.<need>(...)` calls in a notebook's code cells: need -> literal keywords."""
    calls: dict[str, dict] = {}
    nb = json.loads(path.read_text(encoding="utf-8"))
    for cell in nb["cells"]:
        if cell["cell_type"] != "code" or "parameters" in cell["metadata"].get("tags", []):
            continue
        for node in ast.walk(ast.parse("".join(cell["source"]))):
            if (isinstance(node, ast.Call) and isinstance(node.func, ast.Attribute) and isinstance(node.func.value, ast.Name)
                    and node.func.value.id == "analysis" and node.func.attr in prime.NEEDS):
                calls[node.func.attr] = {k.arg: ast.literal_eval(k.value) for k in node.keywords}
    return calls


@pytest.mark.parametrize("path", NOTEBOOKS, ids=[p.stem for p in NOTEBOOKS])
def test_each_notebook_declares_what_it_calls(path: Path) -> None:
    """The declaration and the notebook's code agree: every run the notebook makes is
    declared with the same options, and nothing is declared that it does not make."""
    declared = rep.declared_needs(path)
    assert declared is not None, f"{path.name}: no `needs` in its parameters cell"
    assert _need_calls(path) == declared, f"{path.name}: its calls differ from its `needs` declaration"


@pytest.mark.e2e
def test_build_primes_light_needs_beside_the_notebooks_and_each_waits_for_its_own(tmp_path: Path, capsys) -> None:
    """A need whose timings are not shown is primed in a thread while the lanes run; the
    notebook that declares it starts only once it is in the cache (it reads it back cached),
    and one that declares nothing does not wait for it."""
    import nbformat
    from nbformat.v4 import new_code_cell, new_markdown_cell, new_notebook

    def notebook(path: Path, needs: str, *cells: str) -> Path:
        param = new_code_cell(f"models = None\nsamples = None\nsample_seed = 0\ncache_dir = None\nneeds = {needs}")
        param.metadata["tags"] = ["parameters"]
        nb = new_notebook(cells=[new_markdown_cell(f"# {path.stem}"), param, *[new_code_cell(c) for c in cells]])
        nb.metadata["kernelspec"] = {"name": "python3", "display_name": "Python 3", "language": "python"}
        nbformat.write(nb, str(path))
        return path

    public = notebook(
        tmp_path / "a_public.ipynb", '{"real_data_report": {}}',
        "from embedlab.report import analysis\nsets = analysis.real_datasets(samples, sample_seed)\n"
        "run = analysis.real_data_report(models, sets, cache_dir)\nprint('cached', run.runs['cached'].tolist())",
    )
    free = notebook(tmp_path / "b_free.ipynb", "{}", "print('free')")
    params = {"models": ["bm25"], "samples": {"pawsx-zh": [4, 8]}, "cache_dir": str(tmp_path / "cache")}
    results = rep.build([public, free], tmp_path / "reports", tmp_path / "figures", params, jobs=2, progress=False)
    assert [r.error for r in results] == [None, None]
    text = "".join("".join(o.get("text", "")) for c in json.loads(results[0].executed.read_text(encoding="utf-8"))["cells"] for o in c.get("outputs", []))
    assert "cached [True]" in text, text
    assert "real_data_report" in capsys.readouterr().err  # the priming seconds, on the terminal
    index = (tmp_path / "reports" / "index.html").read_text(encoding="utf-8")
    assert "priming" not in index and "real_data_report" not in index  # not on the pages


def test_the_main_job_and_the_notebooks_measure_alike() -> None:
    """`make report` runs `embedlab run --config configs/default.yaml` and then the notebooks:
    the trap run is shared through the cache only if both measure with the same settings."""
    from embedlab.report.runs import REPORT_SETTINGS
    from embedlab.run.cache import MEASURED_WITH
    from embedlab.evaluation.config import load_config

    settings = load_config(ROOT / "configs" / "default.yaml").settings
    assert {k: getattr(settings, k) for k in MEASURED_WITH} == {k: getattr(REPORT_SETTINGS, k) for k in MEASURED_WITH}
    assert (settings.dimensions, settings.batch_size) == (REPORT_SETTINGS.dimensions, REPORT_SETTINGS.batch_size)
