"""Test tiers, set from the fixtures a test uses.

A fixture that starts something heavy declares its tier with `@tier(...)` under
`@pytest.fixture`; every test that uses it (directly or through another fixture) gets that
tier's marker at collection (tests/conftest.py). Plain `pytest` runs the unit tier alone;
`pytest -m ""` (what `make test` and CI run) runs every tier.

- `integration`: real bundled models, worker processes, local servers, CLI runs.
- `engine`: torch / transformers models, vLLM engines, `vllm serve`, Ray clusters.
- `e2e`: executed notebooks, JupyterLab, a real browser, the whole main job.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import TypeVar

TIERS: tuple[str, ...] = ("integration", "engine", "e2e")
ATTRIBUTE = "__embedlab_tier__"
UNIT_ONLY = " and ".join(f"not {name}" for name in TIERS)

F = TypeVar("F", bound=Callable)


def tier(name: str) -> Callable[[F], F]:
    """Tag a fixture function with its tier (put it below `@pytest.fixture`)."""
    if name not in TIERS:
        raise ValueError(f"unknown test tier {name!r}; expected one of {', '.join(TIERS)}")

    def tag(func: F) -> F:
        setattr(func, ATTRIBUTE, name)
        return func

    return tag


def fixture_tiers(fixturedefs: dict[str, list]) -> set[str]:
    """The tiers of the fixtures a test uses: `name2fixturedefs` of its closure."""
    found: set[str] = set()
    for defs in fixturedefs.values():
        for fixturedef in defs:
            name = getattr(getattr(fixturedef, "func", None), ATTRIBUTE, None)
            if name:
                found.add(name)
    return found
