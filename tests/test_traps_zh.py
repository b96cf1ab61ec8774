"""traps-zh v3 as shipped: big enough to rank models per category, and only meaning
separates each answer from its distractors (issue 9's criteria and issue 18's shortcut
bounds, computed here directly from the file and through `embedlab lint`)."""

from __future__ import annotations

import re
from collections import Counter
from pathlib import Path

import numpy as np
import pytest
import yaml

from embedlab.data.categories import CATEGORY_IDS, DOCUMENT_KINDS
from embedlab.data.datasets import load_dataset

TRAPS = Path(__file__).resolve().parents[1] / "data" / "traps-zh" / "traps-zh.yaml"
V1_RETIRED = {"cross-domain-09", "cross-domain-05"}  # v2 retired -09; v3 -05 (核 is a homonym, not a cross-field term)
# issue 18: categories whose answer must use the trap word, name or idiom (the `trap:` field) in its intended sense
TRAP_WORD_CATEGORIES = ("homonym", "context-name", "idiom", "cross-domain", "metaphor")


@pytest.fixture(scope="module")
def raw() -> dict:
    return yaml.safe_load(TRAPS.read_text(encoding="utf-8"))


@pytest.fixture(scope="module")
def groups(raw) -> list[tuple[str, list[str]]]:
    """(answer, distractors) per query."""
    return [(q["answer"], [d["text"] for d in q["distractors"]]) for q in raw["queries"]]


def _auc(positives: list[float], negatives: list[float]) -> float:
    pos, neg = np.asarray(positives)[:, None], np.asarray(negatives)[None, :]
    return float(((pos > neg) + 0.5 * (pos == neg)).mean())


def test_size_version_and_ids(raw) -> None:
    assert str(raw["version"]) == "3"
    counts = Counter(q["category"] for q in raw["queries"])
    assert set(counts) == set(CATEGORY_IDS) and min(counts.values()) >= 26 and sum(counts.values()) >= 208
    ids = [q["id"] for q in raw["queries"]]
    assert len(ids) == len(set(ids))
    # v1's ids (1-14 per category) are kept where the item survives; a retired id is not reused
    for category in CATEGORY_IDS:
        kept = {i for i in ids if i.startswith(category + "-") and int(i.rsplit("-", 1)[1]) <= 14}
        expected = {f"{category}-{n:02d}" for n in range(1, 15)} - V1_RETIRED
        assert kept == expected, category
    for q in raw["queries"]:
        assert 2 <= len(q["distractors"]) <= 3, q["id"]
        assert all(d["kind"] in DOCUMENT_KINDS and d["kind"] not in ("answer", "off-topic") for d in q["distractors"]), q["id"]
        assert 8 <= len(q["text"]) <= 30, q["id"]


def test_length_carries_no_signal(groups) -> None:
    answers = [len(a) for a, _ in groups]
    distractors = [len(d) for _, ds in groups for d in ds]
    assert 0.40 <= _auc(answers, distractors) <= 0.60
    longest = sum(len(a) > max(len(d) for d in ds) for a, ds in groups) / len(groups)
    assert longest <= 0.40


@pytest.mark.parametrize(
    ("name", "pattern"),
    [
        ("semicolon", r"[；;]"),
        ("question form", r"[？?]|吗[，。]|怎么|为什么|如何"),
        ("advice opening", r"^(可以|应|应该|应当|建议|最好)"),
        ("unnamed entity", r"这家|这座|这位|这款|该公司"),
        ("enumeration comma", r"、"),
        ("digits", r"[0-9]"),
    ],
)
def test_punctuation_and_style_are_balanced(groups, name: str, pattern: str) -> None:
    rx = re.compile(pattern)
    answers = np.mean([bool(rx.search(a)) for a, _ in groups])
    distractors = np.mean([bool(rx.search(d)) for _, ds in groups for d in ds])
    assert abs(answers - distractors) <= 0.05, f"{name}: answers {answers:.2f} vs distractors {distractors:.2f}"


def test_clause_structure_is_balanced(groups) -> None:
    def clauses(text: str) -> int:
        return len([c for c in re.split(r"[，。；！？,;]", text) if c.strip()])

    answers = [clauses(a) for a, _ in groups]
    distractors = [clauses(d) for _, ds in groups for d in ds]
    assert 0.40 <= _auc(answers, distractors) <= 0.60
    assert abs(np.mean(answers) - np.mean(distractors)) <= 0.4


def test_lint_flags_no_cue_on_traps_zh() -> None:
    from embedlab.report.lint import lint

    report = lint(load_dataset("traps-zh"), model=False)
    flagged = [c.name for c in report.cues if c.flagged]
    assert flagged == [], flagged


# ---- issue 18: no rule that never reads for sense finds the answer ---------------------------


@pytest.fixture(scope="module")
def shortcut_groups():
    from embedlab.data import shortcuts

    return shortcuts.groups_from_dataset(load_dataset(TRAPS))


def test_every_shortcut_rule_stays_near_chance(shortcut_groups) -> None:
    """Each rule of embedlab.data.shortcuts (overlap, characters, jieba words, inverse BM25,
    sentences, length, the query-blind classifier) within 10 points of chance over the set and
    25 points in every category (exact ties shared)."""
    from embedlab.data import shortcuts

    table = shortcuts.rule_table(shortcut_groups)
    assert set(table["rule"]) == set(shortcuts.RULES)
    overall = table[table["category"] == shortcuts.OVERALL]
    categories = table[table["category"] != shortcuts.OVERALL]
    assert set(categories["category"]) == set(CATEGORY_IDS)
    too_good = overall[overall["gain"] > 0.10]
    assert too_good.empty, too_good[["rule", "top1", "chance"]].to_string()
    too_good = categories[categories["gain"] > 0.25]
    assert too_good.empty, too_good[["rule", "category", "top1", "chance"]].to_string()


def test_length_conditions_still_hold(shortcut_groups) -> None:
    from embedlab.data import shortcuts

    conditions = shortcuts.length_conditions(shortcut_groups)
    assert 0.40 <= conditions["length_auc"] <= 0.60
    assert conditions["answer_longest_rate"] <= 0.40


def test_answers_use_the_trap_word(raw) -> None:
    """homonym, context-name, idiom, cross-domain, metaphor: the answer uses the trap term (the
    `trap:` field) in at least 60% of the groups, so a model must tell senses apart rather
    than pick the passage without the word."""
    for category in TRAP_WORD_CATEGORIES:
        records = [q for q in raw["queries"] if q["category"] == category]
        assert all(q.get("trap") for q in records), f"{category}: every query names its trap term"
        inside = [any(t in q["answer"] for t in ([q["trap"]] if isinstance(q["trap"], str) else q["trap"])) for q in records]
        assert np.mean(inside) >= 0.60, f"{category}: the trap term is in {sum(inside)} of {len(records)} answers"
