"""What both explorers share: ipywidgets, loaded lazily, and the filters' catch-all values."""

from __future__ import annotations

ALL = "all"
NO_COMPARISON = "(none)"


def _widgets():
    try:
        import ipywidgets
    except ImportError as exc:  # pragma: no cover - the notebooks extra brings it
        raise ImportError("embedlab.explore needs ipywidgets: pip install 'embedlab[notebooks]'") from exc
    return ipywidgets
