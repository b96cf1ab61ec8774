"""The package reads as its pipeline: data -> models -> run -> evaluation -> report, with the
types they share below them all. Every import inside embedlab, at module level or inside a
function, is walked: no stage imports a later one and no module imports itself back."""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

PACKAGE = Path(__file__).resolve().parents[1] / "embedlab"

# The order of the pipeline; a module may import its own stage and earlier ones only.
STAGES = {"errors": 0, "types": 0, "files": 0, "data": 1, "models": 2, "run": 3, "evaluation": 4, "report": 5}


def module_name(path: Path) -> str:
    parts = list(path.relative_to(PACKAGE.parent).with_suffix("").parts)
    if parts[-1] == "__init__":
        parts.pop()
    return ".".join(parts)


ENTRY_PACKAGES = ("embedlab.explore", "embedlab.teach")  # interactive and classroom entry points


def modules() -> dict[str, Path]:
    return {module_name(p): p for p in sorted(PACKAGE.rglob("*.py"))}


ENTRY_POINTS = {"embedlab", "embedlab.cli"} | {
    m for m in modules() if any(m == p or m.startswith(p + ".") for p in ENTRY_PACKAGES)
}  # may import every stage


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


ENTRY_LAYER = {"embedlab", "embedlab.cli"}  # the modules that may build commands (typer)


def module_imports(path: Path) -> list[ast.Import | ast.ImportFrom]:
    return [n for n in ast.walk(ast.parse(path.read_text(encoding="utf-8"))) if isinstance(n, (ast.Import, ast.ImportFrom))]


def imported_roots(node: ast.Import | ast.ImportFrom) -> list[str]:
    if isinstance(node, ast.Import):
        return [a.name.split(".")[0] for a in node.names]
    return [node.module.split(".")[0]] if node.module and not node.level else []


def test_typer_only_in_the_entry_layer():
    """Stages are plain functions; the commands that parse options live in the entry layer."""
    bad = [
        name for name, path in modules().items()
        if name not in ENTRY_LAYER and not name.startswith("embedlab.cli.")
        and any("typer" in imported_roots(n) for n in module_imports(path))
    ]
    assert bad == [], f"typer imported below the entry layer: {bad}"


def test_report_reaches_models_through_their_public_face():
    """report/ imports `embedlab.models` (its __init__), never a backend module."""
    bad = [
        f"{src} imports {dst}" for src, targets in graph().items() if src.startswith("embedlab.report")
        for dst in targets if dst.startswith("embedlab.models.backends")
    ]
    assert bad == []


def stage_package(name: str) -> str:
    parts = name.split(".")
    return parts[1] if len(parts) > 1 else ""


def private_imports(name: str, path: Path, known: set[str]) -> list[str]:
    """`module:_name` for every `from embedlab.X import _name` in `path` where X is in another
    stage package than `name`."""
    package = name if path.name == "__init__.py" else name.rpartition(".")[0]
    found = []
    for node in module_imports(path):
        if not isinstance(node, ast.ImportFrom):
            continue
        base = node.module or ""
        if node.level:
            base = ".".join(package.split(".")[: len(package.split(".")) - node.level + 1] + ([base] if base else []))
        if base not in known or stage_package(base) == stage_package(name):
            continue
        found += [f"{base}:{a.name}" for a in node.names if a.name.startswith("_") and not a.name.startswith("__")]
    return found


def test_no_stage_imports_another_stages_private_names():
    mods = modules()
    bad = [f"{name} imports {hit}" for name, path in mods.items() for hit in private_imports(name, path, set(mods))]
    assert bad == []


def test_the_private_name_walk_sees_a_cross_stage_import(tmp_path):
    src = tmp_path / "mod.py"
    src.write_text("def f():\n    from embedlab.run.cache import _digest, public\n    from embedlab.report.plots import _axes\n")
    found = private_imports("embedlab.report.mod", src, {"embedlab.run.cache", "embedlab.report.plots"})
    assert found == ["embedlab.run.cache:_digest"]
