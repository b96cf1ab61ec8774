"""Where the report stage reads and writes by default: the checkout's notebooks/, reports/
and figures/ folders."""

from __future__ import annotations

from pathlib import Path


def project_root() -> Path:
    """The checkout embedlab runs from (where pyproject.toml is), else the current folder."""
    root = Path(__file__).resolve().parents[2]
    return root if (root / "pyproject.toml").exists() else Path.cwd()


def default_figures_dir() -> Path:
    return project_root() / "figures"


def default_reports_dir() -> Path:
    return project_root() / "reports"


def default_notebooks_dir() -> Path:
    return project_root() / "notebooks"
