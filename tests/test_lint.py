"""`embedlab lint`: cues measured on sets built here (with and without a planted length
cue), through the pure function and the real command in a subprocess."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
import yaml

from embedlab.data.datasets import load_dataset
from embedlab.errors import ConfigError
from embedlab.report.lint import Thresholds, clause_count, lint, near_duplicates, pair_auc

ROOT = Path(__file__).resolve().parents[1]
# characters for filler documents; queries use other characters, so word overlap is zero
DOC_CHARS = "天地山水风云花草木石日月星辰春夏秋冬东西南北江河湖海城乡田园桥路门窗书画琴棋茶酒米面"
QUERY_CHARS = "甲乙丙丁戊己庚辛壬癸子丑寅卯辰巳午未申酉戌亥"


def filler(rng: np.random.Generator, n: int) -> str:
    return "".join(rng.choice(list(DOC_CHARS), size=n)) + "。"


def trap_file(path: Path, planted: bool, n_queries: int = 12, categories=None, kinds=None) -> Path:
    """A trap file of `n_queries` queries, each with an answer and 3 distractors of filler
    text. Lengths come from {20, 24, 28, 32}; the answer takes each of them in turn (longest
    in a quarter of the groups) unless `planted`, where the answer is always longest (40)."""
    rng = np.random.default_rng(7)
    sizes = [20, 24, 28, 32]
    queries = []
    for i in range(n_queries):
        answer_size = 40 if planted else sizes[i % 4]
        rest = [s for s in sizes if s != answer_size][:3]
        queries.append(
            {
                "id": f"q{i:02d}",
                "category": (categories or ["homonym", "idiom"])[i % len(categories or ["homonym", "idiom"])],
                "text": "".join(rng.choice(list(QUERY_CHARS), size=6)),
                "answer": filler(rng, answer_size - 1),
                "distractors": [{"kind": (kinds or ["topical", "literal", "other-sense"])[j % len(kinds or ["topical", "literal", "other-sense"])], "text": filler(rng, s - 1)} for j, s in enumerate(rest)],
            }
        )
    path.write_text(yaml.safe_dump({"name": path.stem, "queries": queries}, allow_unicode=True, sort_keys=False), encoding="utf-8")
    return path


def shortcut_file(path: Path, plant: str, n_queries: int = 30) -> Path:
    """A trap file with one shortcut planted in every group: `phrase` (answers open with
    据专家介绍), `inverse` (distractors repeat the query), `forward` (answers repeat it).
    Filler lengths are drawn alike for answers and distractors."""
    rng = np.random.default_rng(11)
    queries = []
    for i in range(n_queries):
        query = "".join(rng.choice(list(QUERY_CHARS), size=6))
        texts = [filler(rng, int(rng.integers(20, 30))) for _ in range(4)]
        if plant == "phrase":
            texts[0] = "据专家介绍，" + texts[0]
        elif plant == "forward":
            texts[0] = query + texts[0]
        elif plant == "inverse":
            texts[1:] = [query + t for t in texts[1:]]
        queries.append({"id": f"q{i:02d}", "category": ["homonym", "idiom"][i % 2], "text": query, "answer": texts[0],
                        "distractors": [{"kind": "topical", "text": t} for t in texts[1:]]})
    path.write_text(yaml.safe_dump({"name": path.stem, "queries": queries}, allow_unicode=True, sort_keys=False), encoding="utf-8")
    return path


def cue(report: dict, name: str) -> dict:
    return next(c for c in report["cues"] if c["name"] == name)


# ---- pure measures ----------------------------------------------------------------------


def test_pair_auc_rank_formula_with_ties():
    assert pair_auc([np.array([3.0])], [np.array([1.0, 2.0])]) == 1.0
    assert pair_auc([np.array([1.0])], [np.array([2.0, 3.0])]) == 0.0
    # 2 beats 1, ties 2, loses to 3: (1 + 0.5 + 0) / 3
    assert pair_auc([np.array([2.0])], [np.array([1.0, 2.0, 3.0])]) == pytest.approx(0.5)
    # pooled over groups: pairs only within a group
    assert pair_auc([np.array([5.0]), np.array([1.0])], [np.array([4.0]), np.array([9.0, 9.0, 9.0])]) == pytest.approx(1 / 4)
    assert np.isnan(pair_auc([np.array([1.0])], [np.array([])]))


def test_pair_auc_matches_counting_every_pair():
    rng = np.random.default_rng(0)
    pos, neg = rng.integers(0, 6, 30).astype(float), rng.integers(0, 6, 40).astype(float)
    expected = np.mean([(p > n) + 0.5 * (p == n) for p in pos for n in neg])
    assert pair_auc([pos], [neg]) == pytest.approx(expected)


def test_clause_count():
    assert clause_count("一句话。") == 1
    assert clause_count("第一，第二；第三。第四？") == 4
    assert clause_count("") == 0


def test_near_duplicates_finds_the_copy_only():
    rng = np.random.default_rng(1)
    texts = [filler(rng, 40) for _ in range(5)]
    copy = texts[2][:20] + ("天" if texts[2][20] != "天" else "地") + texts[2][21:]
    pairs = near_duplicates([*texts, copy], [f"d{i}" for i in range(6)], threshold=0.8, n=3)
    assert pairs[["doc_a", "doc_b"]].values.tolist() == [["d2", "d5"]]
    assert 0.8 <= pairs.loc[0, "jaccard"] < 1.0


# ---- lint on sets built here --------------------------------------------------------------


def test_planted_length_cue_is_flagged(tmp_path):
    report = lint(load_dataset(trap_file(tmp_path / "planted.yaml", planted=True)), model=False)
    length = next(c for c in report.cues if c.name == "length")
    assert length.flagged
    assert length.values["auc"] == 1.0
    assert length.values["answer_longest_rate"] == 1.0
    judged = next(c for c in report.cues if c.name == "length-judged")
    assert judged.flagged and judged.values["top1"] == 1.0 and judged.values["chance"] == pytest.approx(0.25)
    assert "length" in report.flagged and "length-judged" in report.flagged
    frame = report.to_frame()
    assert set(frame["category"]) == {"homonym", "idiom", "(all)"}
    assert frame.set_index("category").loc["(all)", "n_queries"] == 12


def test_balanced_set_has_no_flagged_cue(tmp_path):
    report = lint(load_dataset(trap_file(tmp_path / "balanced.yaml", planted=False)), model=False)
    assert report.flagged == [], report.to_text()
    length = next(c for c in report.cues if c.name == "length")
    assert 0.4 <= length.values["auc"] <= 0.6
    assert length.values["answer_longest_rate"] == pytest.approx(0.25)
    assert report.candidates == "judged"


def test_cli_exit_status_and_json_shape(embedlab_cli, tmp_path):
    planted = embedlab_cli("lint", str(trap_file(tmp_path / "planted.yaml", planted=True)), "--format", "json", "--no-model")
    balanced = embedlab_cli("lint", str(trap_file(tmp_path / "balanced.yaml", planted=False)), "--format", "json", "--no-model")
    assert planted.returncode == 1, planted.stderr
    assert balanced.returncode == 0, balanced.stdout + balanced.stderr
    for result, name in ((planted, "planted"), (balanced, "balanced")):
        data = json.loads(result.stdout)
        assert data["dataset"] == name
        assert data["n_queries"] == 12
        assert isinstance(data["warnings"], list)
        length = cue(data, "length")
        assert set(length) >= {"name", "auc", "answer_longest_rate", "flagged"}
        assert {c["name"] for c in data["cues"]} >= {"length", "length-judged", "bm25-judged", "overlap", "query-blind", "semicolon", "question", "advice-opening", "clauses"}
        for name in ("overlap", "query-blind"):
            assert {"top1", "chance", "p_value", "flagged", "by_category", "items"} <= set(cue(data, name))
        assert cue(data, "overlap")["direction"] in ("forward", "inverse") and "ngrams" in cue(data, "query-blind")
    assert cue(json.loads(planted.stdout), "length")["flagged"] is True
    assert not any(c["flagged"] for c in json.loads(balanced.stdout)["cues"])


def test_cli_table_and_threshold_override(embedlab_cli, tmp_path):
    path = str(trap_file(tmp_path / "planted.yaml", planted=True))
    table = embedlab_cli("lint", path, "--no-model")
    assert table.returncode == 1
    assert "FLAGGED length" in table.stdout and "per category" in table.stdout
    # widen every threshold: nothing is flagged any more
    relaxed = embedlab_cli("lint", path, "--no-model", "-t", "auc_high=1.0", "-t", "longest_rate=1.0", "-t", "judged_margin=1.0")
    assert relaxed.returncode == 0, relaxed.stdout
    bad = embedlab_cli("lint", path, "--no-model", "-t", "auc_hihg=0.7")
    assert bad.returncode == 2 and "auc_high" in bad.stderr


def test_threshold_overrides():
    th = Thresholds().with_overrides(["auc_low=0.3", "ngram=2"])
    assert th.auc_low == 0.3 and th.ngram == 2 and isinstance(th.ngram, int)
    with pytest.raises(ConfigError, match="expected a number"):
        Thresholds().with_overrides(["auc_low=low"])


def test_typo_in_category_and_kind_is_a_warning(tmp_path):
    path = trap_file(tmp_path / "typos.yaml", planted=False, categories=["homonymm", "my-own-trap"], kinds=["topcal", "literal", "other-sense"])
    report = lint(load_dataset(path), model=False)
    text = "\n".join(report.warnings)
    assert "'homonymm'" in text and "did you mean 'homonym'" in text
    assert "'topcal'" in text and "did you mean 'topical'" in text
    assert "category 'my-own-trap'" not in text  # user-defined: allowed, no typo warning


def test_near_duplicate_documents_are_warned(tmp_path):
    path = trap_file(tmp_path / "dupes.yaml", planted=False)
    data = yaml.safe_load(path.read_text(encoding="utf-8"))
    data["queries"][3]["distractors"][0]["text"] = data["queries"][0]["answer"]
    path.write_text(yaml.safe_dump(data, allow_unicode=True, sort_keys=False), encoding="utf-8")
    report = lint(load_dataset(path), model=False)
    assert report.near_duplicates[["doc_a", "doc_b"]].values.tolist() == [["q00-a", "q03-d1"]]
    assert any("near-duplicate documents 'q00-a' and 'q03-d1'" in w for w in report.warnings)


def test_answer_that_fits_another_query_is_warned(tmp_path):
    """The one test that runs the bundled multilingual-e5-small."""
    path = tmp_path / "cross.yaml"
    queries = [
        {"id": "phone", "category": "context-name", "text": "苹果公司今年发布了哪款新手机",
         "answer": "苹果公司在今年秋季的发布会上推出了新款 iPhone 手机，主打更长的续航和更强的影像能力。",
         "distractors": [{"kind": "other-entity", "text": "这种苹果口感脆甜，适合秋天采摘后直接食用。"}]},
        {"id": "phone-again", "category": "context-name", "text": "苹果公司最新推出的手机是哪一款",
         "answer": "周末的天气晴朗，很多家庭带着孩子去郊外的公园野餐和放风筝。",
         "distractors": [{"kind": "off-topic", "text": "红烧肉要先焯水，再加冰糖慢火炖一个小时。"}]},
    ]
    path.write_text(yaml.safe_dump({"name": "cross", "queries": queries}, allow_unicode=True, sort_keys=False), encoding="utf-8")
    report = lint(load_dataset(path))
    row = report.cross_query.set_index("answer_id").loc["phone-a"]
    assert row["other_query_id"] == "phone-again"
    assert bool(row["plausible"]) and row["similarity_other"] > row["other_own_similarity"]
    assert not bool(report.cross_query.set_index("answer_id").loc["phone-again-a", "plausible"])
    assert any("answer 'phone-a' of 'phone' also fits query 'phone-again'" in w for w in report.warnings)


def test_bm25_in_judged_mode_solves_the_seed(embedlab_cli):
    """The article's 8 cases: word overlap alone finds every answer."""
    result = embedlab_cli("lint", "seed", "--format", "json", "--no-model")
    assert result.returncode == 1
    data = json.loads(result.stdout)
    assert data["dataset"] == "seed" and data["n_queries"] == 8
    bm25 = cue(data, "bm25-judged")
    assert bm25["top1"] == 1.0 and bm25["flagged"] is True
    assert bm25["chance"] < 0.1


def test_stack_and_figures_for_several_sets(tmp_path):
    import matplotlib

    matplotlib.use("Agg")
    from matplotlib.axes import Axes

    from embedlab.report.lint import lint_sets, plot_lengths, plot_overlap, stack, warnings_markdown

    sets = [load_dataset(trap_file(tmp_path / f"{name}.yaml", planted=name == "planted")) for name in ("planted", "balanced")]
    reports = lint_sets(sets)
    cues = stack(reports, "cues")
    assert cues.groupby("dataset")["flagged"].any().to_dict() == {"balanced": False, "planted": True}
    documents = stack(reports, "documents")
    assert len(documents) == 2 * 12 * 4 and set(documents["role"]) == {"answer", "distractor"}
    ax = plot_lengths(documents)
    assert isinstance(ax, Axes)
    assert [t.get_text() for t in ax.get_yticklabels()] == ["planted · answer (n=12)", "planted · distractor (n=36)", "balanced · answer (n=12)", "balanced · distractor (n=36)"]
    ax = plot_overlap(stack(reports, "queries"))
    assert sum(len(c.get_offsets()) for c in ax.collections) == 24
    note = warnings_markdown(reports)
    assert "**planted** (12 queries): **flagged cues: length, length-judged**" in note
    assert "**balanced** (12 queries): no flagged cue" in note
    with pytest.raises(ValueError, match="part"):
        stack(reports, "cue")


# ---- shortcut rules: overlap and query-blind ----------------------------------------------


def test_answers_opening_alike_flag_query_blind(tmp_path):
    report = lint(load_dataset(shortcut_file(tmp_path / "phrase.yaml", "phrase")), model=False)
    blind = next(c for c in report.cues if c.name == "query-blind")
    assert blind.flagged and blind.values["top1"] == 1.0 and blind.values["chance"] == pytest.approx(0.25)
    assert blind.values["p_value"] < 1e-10
    assert set(blind.details["by_category"]) == {"homonym", "idiom"} and all(c["flagged"] for c in blind.details["by_category"].values())
    carriers = [g["ngram"] for g in blind.details["ngrams"][:5]]
    assert set(carriers) <= set("据专家介绍") | {"据专", "专家", "家介", "介绍"}, carriers
    overlap = next(c for c in report.cues if c.name == "overlap")
    assert not overlap.flagged and overlap.values["top1"] == pytest.approx(0.25)  # no shared bigram anywhere: all tied
    text = report.to_text()
    assert "FLAGGED query-blind" in text and "n-grams carrying it" in text and "专家" in text


@pytest.mark.parametrize(("plant", "direction"), [("inverse", "inverse"), ("forward", "forward")])
def test_query_repeated_flags_overlap_with_its_direction(embedlab_cli, tmp_path, plant, direction):
    result = embedlab_cli("lint", str(shortcut_file(tmp_path / f"{plant}.yaml", plant)), "--format", "json", "--no-model")
    assert result.returncode == 1, result.stderr
    overlap = cue(json.loads(result.stdout), "overlap")
    assert overlap["direction"] == direction and overlap["flagged"] is True
    assert overlap["top1"] == 1.0 and overlap["chance"] == pytest.approx(0.25) and overlap["p_value"] < 1e-10
    assert set(overlap["by_category"]) == {"homonym", "idiom"}
    assert {"top1", "chance", "p_value", "flagged", "n"} <= set(overlap["by_category"]["idiom"])
    assert len(overlap["items"]) == 10 and overlap["items"][0]["margin"] > 0
    table = embedlab_cli("lint", str(tmp_path / f"{plant}.yaml"), "--no-model")
    assert "FLAGGED overlap" in table.stdout and f"direction: {direction}" in table.stdout and "rewrite first" in table.stdout


def test_shortcut_cue_thresholds(tmp_path):
    path = load_dataset(shortcut_file(tmp_path / "phrase.yaml", "phrase"))
    relaxed = lint(path, Thresholds(cue_margin=0.9, cue_category_margin=0.9), model=False)
    assert "query-blind" not in relaxed.flagged
    strict_p = lint(path, Thresholds(cue_p=1e-30), model=False)
    assert "query-blind" not in strict_p.flagged


def test_lint_and_the_run_define_length_judged_alike_on_a_shared_corpus() -> None:
    """One definition of the cue: on `seed` (each query judges only its answer) lint ranks
    each query among its answer and the documents that answer no query, as the run's
    `length-judged` row does, so 13_data_quality and 00_overview give the same number."""
    import embedlab as el
    from embedlab.report.lint import lint

    cue = next(c for c in lint(el.load_dataset("seed")).cues if c.name == "length-judged")
    run = el.evaluate(["length-judged"], ["seed"], el.RunSettings(progress=False, isolate=False, repeats=1, throughput_texts=0))
    assert cue.values["top1"] == run.summary().loc[0, "top1"] == 1.0
    assert cue.values["chance"] == 1 / 15  # its answer among 14 documents that answer no query
