"""The README and the configs say the same thing: every environment variable the README
names for a config is spelled as the configs spell it, and the trap-query counts written
beside the configs are the data sets' own."""

from __future__ import annotations

import re
from pathlib import Path

import embedlab as el

ROOT = Path(__file__).resolve().parents[1]
CONFIG_VAR = re.compile(r"\$\{([A-Z][A-Z0-9_]*)")  # ${NAME:-default}
README_VAR = re.compile(r"\$\{([A-Z][A-Z0-9_]*)|\b([A-Z][A-Z0-9]*_[A-Z0-9_]*PATH)=")  # ${NAME..} or NAME_PATH=


def _config_vars() -> set[str]:
    return {m for path in (ROOT / "configs").glob("*.yaml") for m in CONFIG_VAR.findall(path.read_text(encoding="utf-8"))}


def test_readme_variables_are_the_configs_variables() -> None:
    readme = (ROOT / "README.md").read_text(encoding="utf-8")
    named = {a or b for a, b in README_VAR.findall(readme)}
    configs = _config_vars()
    assert named, "the README names no model-path variable"
    assert named <= configs, f"spelled differently in the README than in configs/*.yaml: {sorted(named - configs)} (configs: {sorted(configs)})"


def test_trap_query_counts_beside_the_configs_are_the_data_sets() -> None:
    counts = {"traps-zh": len(el.load_dataset("traps-zh").query_ids), "seed": len(el.load_dataset("seed").query_ids)}
    for path in (ROOT / "configs").glob("*.yaml"):
        for name, n in re.findall(r"- (traps-zh|seed)\s+# (\d+) ", path.read_text(encoding="utf-8")):
            assert int(n) == counts[name], f"{path.name}: says {n} queries for {name}, the data set has {counts[name]}"
    readme = (ROOT / "README.md").read_text(encoding="utf-8")
    assert f"the {counts['traps-zh']} trap queries" in readme
