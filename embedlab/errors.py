"""Exceptions for user mistakes, raised at the boundary (loading a file, parsing a config)."""

from __future__ import annotations

from pathlib import Path


class EmbedlabError(Exception):
    """Base class of embedlab's user-facing errors."""


class DataError(EmbedlabError, ValueError):
    """A data file is malformed: names the file, the line (1-based, when known), the field
    and what was expected, so the user can fix it without reading embedlab's code."""

    def __init__(
        self,
        path: str | Path,
        message: str,
        *,
        line: int | None = None,
        field: str | None = None,
    ) -> None:
        self.path = str(path)
        self.line = line
        self.field = field
        self.message = message
        where = self.path + (f", line {line}" if line is not None else "")
        what = f"field {field!r}: " if field else ""
        super().__init__(f"{where}: {what}{message}")


class ConfigError(EmbedlabError, ValueError):
    """A run configuration (CLI arguments or YAML config) is invalid."""


class UnknownNameError(EmbedlabError, KeyError):
    """A model or data set name is neither registered nor an existing path."""

    def __str__(self) -> str:  # KeyError quotes its message; show it plainly
        return str(self.args[0]) if self.args else ""


class BackendUnavailableError(EmbedlabError, ImportError):
    """A backend needs an optional dependency that is not installed."""


class PromptWarning(UserWarning):
    """A model known to take a query prompt or task instruction runs without one."""


class RecordMismatchWarning(UserWarning):
    """A folder given for a registered record does not look like that record's weights."""
