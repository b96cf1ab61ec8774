"""The notebook files: listing them, their titles, and what their parameters cell declares
(papermill's cell tagged `parameters`), read with `ast`, never executed."""

from __future__ import annotations

import ast
import json
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from embedlab.errors import ConfigError
from embedlab.report.paths import default_notebooks_dir

NEEDS_NAME = "needs"  # the parameters cell's declaration of the runs a notebook computes


def list_notebooks(folder: str | Path | None = None, only: Sequence[str] | None = None) -> list[Path]:
    """The notebooks of `folder` in name order; `only` keeps those whose name starts with one
    of the given prefixes (e.g. "00", "03_idiom")."""
    folder = Path(folder) if folder else default_notebooks_dir()
    paths = sorted(p for p in folder.glob("*.ipynb") if not p.name.startswith("."))
    if only:
        paths = [p for p in paths if any(p.stem.startswith(o) for o in only)]
    return paths


def notebook_title(path: str | Path) -> str:
    """The first `# ` heading of a notebook's markdown cells (else its file name)."""
    nb = json.loads(Path(path).read_text(encoding="utf-8"))
    for cell in nb.get("cells", []):
        if cell.get("cell_type") == "markdown":
            for line in "".join(cell.get("source", "")).splitlines():
                if line.startswith("# "):
                    return line[2:].strip()
    return Path(path).stem


def parameters_cell(path: str | Path) -> list[ast.Assign]:
    """The assignments of the notebook's cell tagged `parameters` ([] without one)."""
    nb = json.loads(Path(path).read_text(encoding="utf-8"))
    for cell in nb.get("cells", []):
        if "parameters" in cell.get("metadata", {}).get("tags", []):
            tree = ast.parse("".join(cell.get("source", "")), filename=str(path))
            return [node for node in tree.body if isinstance(node, ast.Assign)]
    return []


def declared_parameters(path: str | Path) -> list[str]:
    """Names assigned in the notebook's parameters cell, `needs` included."""
    return [t.id for node in parameters_cell(path) for t in node.targets if isinstance(t, ast.Name)]


def parameter_values(path: str | Path) -> dict[str, Any]:
    """The parameters cell's assignments as values (`ast.literal_eval`). Raises ConfigError
    naming the notebook, line and name of a value that is not a literal."""
    values = {}
    for node in parameters_cell(path):
        for target in node.targets:
            if isinstance(target, ast.Name):
                try:
                    values[target.id] = ast.literal_eval(node.value)
                except ValueError:
                    raise ConfigError(
                        f"{Path(path).name}: parameters cell line {node.lineno}: {target.id} = "
                        f"{ast.unparse(node.value)} "
                        "is not a literal (expected None, a number, a string, a list or a dict of those)"
                    ) from None
    return values


def declared_needs(path: str | Path) -> dict[str, dict[str, Any]] | None:
    """The notebook's `needs = {need: {option: value}}` (see scripts/make_notebooks.py), or
    None when its parameters cell declares none (a notebook of the user's: nothing is primed
    for it, it computes what it uses). Raises ConfigError naming the notebook when `needs`
    is not of that shape."""
    values = parameter_values(path)
    if NEEDS_NAME not in values:
        return None
    needs = values[NEEDS_NAME]
    if not isinstance(needs, dict) or not all(isinstance(k, str) and isinstance(v, dict) for k, v in needs.items()):
        raise ConfigError(
            f"{Path(path).name}: `{NEEDS_NAME}` is {needs!r}; expected a dict of need name -> dict of options, e.g. "
            f'{{"trap_report": {{"cues": True}}}}'
        )
    return needs
