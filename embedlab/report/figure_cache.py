"""Figure cache: a re-render does not redraw a figure whose inputs have not changed.

A figure is keyed by what determines its pixels: the plotting function (its module's source
and embedlab's plotting code and style), the content of its arguments (DataFrames by
`pandas.util.hash_pandas_object` with their columns and dtypes, arrays by their bytes,
plain values by their repr), matplotlib's rcParams at draw time, the CJK font file, the
output formats and the versions of matplotlib, seaborn, pandas, numpy and Pillow. An entry
holds the saved PNG/SVG files and a `manifest.json` with a SHA-256 of each; a file that
does not match its checksum makes the entry *corrupted*: it is deleted and the figure is
drawn again. Arguments that cannot be fingerprinted (an open Axes, a model) make the call
uncached, never wrong. Nothing is pickled.

The embedding cache (`embedlab.run.cache`) is what makes a warm report cheap to compute; this one
makes it cheap to draw. `EMBEDLAB_FIGURE_CACHE=0` turns it off (every figure is drawn).
"""

from __future__ import annotations

import functools
import hashlib
import inspect
import json
import logging
import os
import shutil
from collections.abc import Mapping
from dataclasses import dataclass
from importlib import metadata
from pathlib import Path
from typing import Any

from embedlab.files import write_folder

FORMAT = "embedlab-figures/1"
ENV_VAR = "EMBEDLAB_FIGURE_CACHE"
PACKAGES = ("matplotlib", "seaborn", "pandas", "numpy", "pillow")
# rcParams that do not change a saved file (the interactive backend, window behaviour).
IGNORED_RC = ("backend", "backend_fallback", "interactive", "figure.raise_window", "toolbar", "webagg.")

log = logging.getLogger("embedlab.report.figure_cache")


class Unfingerprintable(TypeError):
    """An argument whose content cannot be hashed deterministically."""


def enabled() -> bool:
    return os.environ.get(ENV_VAR, "1").strip().lower() not in ("0", "false", "no", "off")


def _feed(h: Any, value: Any) -> None:
    """Hash `value`'s content into `h`, with type tags so that e.g. 1 and "1" differ."""
    import numpy as np
    import pandas as pd

    if value is None or isinstance(value, (bool, int, float, str, bytes)):
        h.update(f"<{type(value).__name__}:{value!r}>".encode())
    elif isinstance(value, (pd.DataFrame, pd.Series)):
        frame = value.to_frame() if isinstance(value, pd.Series) else value
        shape = {
            "kind": type(value).__name__,
            "columns": [repr(c) for c in frame.columns],
            "dtypes": [str(t) for t in frame.dtypes],
            "index": [repr(n) for n in frame.index.names],
            "shape": list(frame.shape),
        }
        h.update(json.dumps(shape).encode())
        try:
            rows = pd.util.hash_pandas_object(frame, index=True, categorize=False)
        except (TypeError, ValueError) as exc:  # a column of lists or other unhashable objects
            raise Unfingerprintable(f"DataFrame with unhashable values: {exc}") from exc
        h.update(rows.to_numpy().tobytes())
    elif isinstance(value, np.ndarray):
        if value.dtype == object:
            _feed(h, value.tolist())
        else:
            h.update(f"<ndarray {value.dtype.str} {value.shape}>".encode())
            h.update(np.ascontiguousarray(value).tobytes())
    elif isinstance(value, np.generic):
        _feed(h, value.item())
    elif isinstance(value, (list, tuple)):
        h.update(f"<{type(value).__name__} {len(value)}>".encode())
        for item in value:
            _feed(h, item)
    elif isinstance(value, Mapping):
        items = sorted(value.items(), key=lambda kv: repr(kv[0]))
        h.update(f"<mapping {len(items)}>".encode())
        for k, v in items:
            _feed(h, k)
            _feed(h, v)
    else:
        raise Unfingerprintable(f"cannot fingerprint a {type(value).__name__}")


def fingerprint(value: Any) -> str:
    """SHA-256 of a value's content (raises Unfingerprintable)."""
    h = hashlib.sha256()
    _feed(h, value)
    return h.hexdigest()


def _sha256(raw: bytes) -> str:
    return hashlib.sha256(raw).hexdigest()


@functools.cache
def _code_digest(module_file: str | None) -> str:
    """embedlab's plotting code and style, plus the plotting function's own module."""
    here = Path(__file__).resolve().parent
    files = [
        here / "plots.py",
        here / "render.py",
        here / "figure_cache.py",
        *sorted((here / "style").glob("*.mplstyle")),
    ]
    if module_file and Path(module_file).resolve() not in files:
        files.append(Path(module_file).resolve())
    h = hashlib.sha256()
    for f in files:
        h.update(str(f.name).encode())
        h.update(_sha256(f.read_bytes()).encode() if f.exists() else b"missing")
    return h.hexdigest()


@functools.cache
def _versions() -> dict[str, str]:
    out = {}
    for name in PACKAGES:
        try:
            out[name] = metadata.version(name)
        except metadata.PackageNotFoundError:
            out[name] = "absent"
    return out


def _rc_state() -> list[tuple[str, str]]:
    import matplotlib as mpl

    return sorted((k, repr(v)) for k, v in dict.items(mpl.rcParams) if not k.startswith(IGNORED_RC))


def _font_state() -> dict[str, Any]:
    """The CJK font file embedlab's figures use (registered first, as the plots do)."""
    from embedlab.report.plots import cjk_font_file, ensure_cjk_font

    family = ensure_cjk_font()
    path = cjk_font_file()
    return {"family": family, "file": path.name, "size": path.stat().st_size}


def figure_key(plot: Any, args: tuple, kwargs: Mapping[str, Any], formats: tuple[str, ...]) -> str:
    """The cache key of `plot(*args, **kwargs)` saved as `formats` (raises Unfingerprintable)."""
    try:
        module_file = inspect.getsourcefile(plot)
    except TypeError:
        raise Unfingerprintable(f"no source for {plot!r}") from None
    material = {
        "format": FORMAT,
        "function": f"{getattr(plot, '__module__', '?')}.{getattr(plot, '__qualname__', repr(plot))}",
        "code": _code_digest(module_file),
        "arguments": fingerprint([list(args), dict(kwargs)]),
        "font": _font_state(),
        "rc": hashlib.sha256(json.dumps(_rc_state()).encode()).hexdigest(),
        "formats": list(formats),
        "versions": _versions(),
    }
    return hashlib.sha256(json.dumps(material, sort_keys=True).encode()).hexdigest()


@dataclass(frozen=True)
class CachedFigure:
    """One figure of an entry: its name suffix (None for the one figure of a plot that
    returns a single Figure; the mapping key otherwise), the resolution it was saved at and
    the content of its files by format (each read or written once)."""

    suffix: str | None
    dpi: float
    files: dict[str, bytes]


class FigureCache:
    """Entries under `<root>/figures/<key[:2]>/<key>/`."""

    def __init__(self, root: str | Path) -> None:
        self.root = Path(root) / "figures"
        self.hits = self.misses = self.corrupted = self.stored = 0

    def entry(self, key: str) -> Path:
        return self.root / key[:2] / key

    def load(self, key: str) -> tuple[bool, list[CachedFigure]] | None:
        """Whether the plot returned a mapping of figures, and the entry's figures with
        verified files; or None (missing, or corrupted: then the
        entry is deleted so that the caller's redraw replaces it)."""
        folder = self.entry(key)
        manifest_path = folder / "manifest.json"
        if not manifest_path.exists():
            self.misses += 1
            return None
        try:
            manifest = json.loads(manifest_path.read_text(encoding="utf-8"))
            if manifest.get("format") != FORMAT or manifest.get("key") != key:
                raise ValueError("manifest of another format or key")
            out = []
            for fig in manifest["figures"]:
                files = {}
                for fmt, meta in fig["files"].items():
                    raw = (folder / meta["file"]).read_bytes()
                    if _sha256(raw) != meta["sha256"]:
                        raise ValueError(f"{meta['file']}: checksum mismatch")
                    files[fmt] = raw
                out.append(CachedFigure(fig["suffix"], float(fig["dpi"]), files))
        except (OSError, ValueError, KeyError, TypeError) as exc:
            log.warning("figure cache entry %s is corrupted (%s); drawing it again", folder, exc)
            shutil.rmtree(folder, ignore_errors=True)
            self.corrupted += 1
            return None
        self.hits += 1
        return bool(manifest.get("many")), out

    def store(self, key: str, figures: list[CachedFigure], many: bool) -> None:
        """Write figures into an entry, built in a temporary folder and renamed into
        place (a reader never sees half an entry; a concurrent writer's entry is kept)."""
        written: dict[str, bytes] = {}
        listed = []
        for i, fig in enumerate(figures):
            files = {}
            for fmt, raw in fig.files.items():
                name = f"{i}.{fmt}"
                written[name] = raw
                files[fmt] = {"file": name, "sha256": _sha256(raw)}
            listed.append({"suffix": fig.suffix, "dpi": fig.dpi, "files": files})
        manifest = {"format": FORMAT, "key": key, "many": many, "figures": listed}
        write_folder(self.entry(key), {**written, "manifest.json": json.dumps(manifest, indent=1).encode("utf-8")})
        self.stored += 1
