"""The package passes ruff with the project's configuration ([tool.ruff] in pyproject.toml), line length
(E501, 120) included."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]


def test_package_passes_ruff() -> None:
    ruff = Path(sys.executable).with_name("ruff")
    assert ruff.exists(), f"ruff is not installed next to {sys.executable} (extra `dev`)"
    proc = subprocess.run(
        [str(ruff), "check", "--no-cache", "--output-format", "concise", "embedlab"],
        check=False,
        cwd=ROOT,
        capture_output=True,
        text=True,
    )
    assert proc.returncode == 0, proc.stdout + proc.stderr
    assert "All checks passed" in proc.stdout, proc.stdout + proc.stderr
