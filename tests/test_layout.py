"""The package reads as its pipeline: data -> models -> run -> evaluation -> report, with the
types they share below them all. Every import inside embedlab, at module level or inside a
function, is walked: no stage imports a later one and no module imports itself back."""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

PACKAGE = Path(__file__).resolve().parents[1] / "embedlab"

# The order of the pipeline; a module may import its own stage and earlier ones only.
STAGES = {"errors": 0, "types": 0, "data": 1, "models": 2, "run": 3, "evaluation": 4, "report": 5}
ENTRY_POINTS = {"embedlab", "embedlab.cli", "embedlab.explore"}  # may import every stage


def module_name(path: Path) -> str:
    parts = list(path.relative_to(PACKAGE.parent).with_suffix("").parts)
    if parts[-1] == "__init__":
        parts.pop()
    return ".".join(parts)


def modules() -> dict[str, Path]:
    return {module_name(p): p for p in sorted(PACKAGE.rglob("*.py"))}


def imports_of(name: str, path: Path, known: set[str]) -> set[str]:
    """The embedlab modules `path` imports anywhere in its body (`from a import b` counts
    as a.b when that is a module)."""
    package = name if path.name == "__init__.py" else name.rpartition(".")[0]
    found: set[str] = set()
    for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
        if isinstance(node, ast.Import):
            targets = [a.name for a in node.names]
        elif isinstance(node, ast.ImportFrom):
            base = node.module or ""
            if node.level:
                base = ".".join(package.split(".")[: len(package.split(".")) - node.level + 1] + ([base] if base else []))
            targets = [f"{base}.{a.name}" if f"{base}.{a.name}" in known else base for a in node.names]
        else:
            continue
        found.update(t for t in targets if t in known and t != name)
    return found


def stage(name: str) -> int | None:
    parts = name.split(".")
    return STAGES.get(parts[1]) if len(parts) > 1 else None


def graph() -> dict[str, set[str]]:
    mods = modules()
    return {name: imports_of(name, path, set(mods)) for name, path in mods.items()}


def test_every_module_belongs_to_a_stage_or_is_an_entry_point():
    loose = [m for m in modules() if m not in ENTRY_POINTS and stage(m) is None]
    assert loose == [], f"modules outside the pipeline's stages: {loose}"


def test_no_stage_imports_a_later_stage():
    bad = [
        f"{src} ({stage(src)}) imports {dst} ({stage(dst)})"
        for src, targets in graph().items() if src not in ENTRY_POINTS
        for dst in targets if dst not in ENTRY_POINTS and stage(dst) > stage(src)
    ]
    bad += [f"{src} imports the entry point {dst}" for src, targets in graph().items() if src not in ENTRY_POINTS for dst in targets if dst in ENTRY_POINTS - {"embedlab"}]
    assert bad == []


def test_no_import_cycle():
    edges = graph()
    state: dict[str, int] = {}
    cycles: list[list[str]] = []

    def visit(node: str, path: list[str]) -> None:
        state[node] = 1
        for nxt in sorted(edges[node]):
            if nxt == "embedlab":  # `import embedlab` for __version__: the package, not a stage
                continue
            if state.get(nxt) == 1:
                cycles.append(path[path.index(nxt):] + [nxt] if nxt in path else [node, nxt])
            elif nxt not in state:
                visit(nxt, [*path, nxt])
        state[node] = 2

    for node in sorted(edges):
        if node not in state:
            visit(node, [node])
    assert cycles == []


def test_the_walk_sees_imports_inside_functions(tmp_path):
    """The walker is not blind: a lazy import inside a function is an edge."""
    src = tmp_path / "mod.py"
    src.write_text("def f():\n    from embedlab.report import plots\n    import embedlab.run.probe\n")
    assert imports_of("embedlab.data.mod", src, {"embedlab.report.plots", "embedlab.report", "embedlab.run.probe"}) == {"embedlab.report.plots", "embedlab.run.probe"}


@pytest.mark.parametrize("package", ["data", "models", "run", "evaluation"])
def test_each_stage_names_its_public_face(package):
    import importlib

    mod = importlib.import_module(f"embedlab.{package}")
    assert mod.__doc__ and mod.__all__
    for name in mod.__all__:
        assert hasattr(mod, name), f"embedlab.{package}.__all__ names {name!r}, which it does not define"
