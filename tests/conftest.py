"""Shared test set-up: nothing may download, bundled data found from the checkout, and each
test marked with its tier from the fixtures it uses (tests/tiers.py)."""

from __future__ import annotations

import os
import subprocess
import sys
from collections.abc import Callable, Mapping
from pathlib import Path

import pytest

from tests.tiers import TIERS, UNIT_ONLY, fixture_tiers, tier

ROOT = Path(__file__).resolve().parents[1]

os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("TRANSFORMERS_OFFLINE", "1")
os.environ.setdefault("HF_DATASETS_OFFLINE", "1")


@pytest.hookimpl(tryfirst=True)
def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    """Add the tier markers before `-m` deselects (this hook runs before the mark plugin's)."""
    for item in items:
        info = getattr(item, "_fixtureinfo", None)
        for name in fixture_tiers(info.name2fixturedefs if info else {}):
            item.add_marker(getattr(pytest.mark, name))


def pytest_terminal_summary(terminalreporter, exitstatus: int, config: pytest.Config) -> None:
    if config.option.markexpr == UNIT_ONLY:
        deselected = len(terminalreporter.stats.get("deselected", []))
        if deselected:
            terminalreporter.write_line(
                f"unit tier only: {deselected} tests of the {', '.join(TIERS)} tiers deselected; "
                "`make test` (or `pytest -m ''`) runs every tier"
            )


@pytest.fixture(scope="session")
@tier("integration")
def embedlab_cli() -> Callable[..., subprocess.CompletedProcess]:
    """`python -m embedlab.cli ARGS` in a subprocess, this checkout first on the path:
    `embedlab_cli(*args, cwd=ROOT, env=None (this environment), timeout=900)`."""

    def run(*args: str, cwd: Path = ROOT, env: Mapping[str, str] | None = None, timeout: float = 900) -> subprocess.CompletedProcess:
        env = dict(os.environ if env is None else env)
        env["PYTHONPATH"] = os.pathsep.join(p for p in (str(ROOT), env.get("PYTHONPATH", "")) if p)
        return subprocess.run([sys.executable, "-m", "embedlab.cli", *args], capture_output=True, text=True, cwd=cwd, env=env, timeout=timeout)

    return run
