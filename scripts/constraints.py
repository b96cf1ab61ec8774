"""Write the pins of what `make report` installs (embedlab's core and `notebooks` extra,
with everything they pull in) as they are in this environment: `make constraints`.

    python scripts/constraints.py > constraints.txt

The versions come from the installed packages' metadata, walked from embedlab's own
requirements (markers evaluated here), so the file pins the versions the README's table
was measured with when run in the venv that measured it."""

from __future__ import annotations

import importlib.metadata as md
import sys

from packaging.requirements import Requirement
from packaging.utils import canonicalize_name

EXTRAS = ("notebooks",)  # what `make report` installs besides the core


def closure(root: str = "embedlab", extras: tuple[str, ...] = EXTRAS) -> dict[str, str]:
    """Canonical name -> installed version of every distribution `root[extras]` needs."""
    pins: dict[str, str] = {}
    todo = [(root, frozenset(extras))]
    seen: set[tuple[str, frozenset[str]]] = set()
    while todo:
        name, wanted = todo.pop()
        if (name, wanted) in seen:
            continue
        seen.add((name, wanted))
        dist = md.distribution(name)
        for text in dist.requires or []:
            req = Requirement(text)
            if req.marker and not any(req.marker.evaluate({"extra": e}) for e in (wanted or {""})):
                continue
            key = canonicalize_name(req.name)
            try:
                pins[key] = md.version(req.name)
            except md.PackageNotFoundError:
                sys.exit(f"constraints: {req.name} (needed by {name}) is not installed here; run `make install` first")
            todo.append((req.name, frozenset(req.extras)))
    return pins


def main() -> int:
    pins = closure()
    print("# Pins of `make report`'s packages (core + notebooks extra), written by `make constraints`")
    print(f"# (scripts/constraints.py) with Python {sys.version.split()[0]}; the README's results table came from these.")
    for name, version in sorted(pins.items()):
        print(f"{name}=={version}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
