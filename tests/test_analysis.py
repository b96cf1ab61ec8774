"""What the notebooks compute, on hand-checkable cases: distractor beat rates, similarity
frames, samples of public sets, lexical overlap, the article's table labelled as reported,
and the plumbing of the dimension sweep and the prompt variants (on a fake encoder whose
numbers mean nothing; only how runs are put together is tested)."""

from __future__ import annotations

from dataclasses import replace

import numpy as np
import pandas as pd
import pytest

import embedlab as el
from embedlab.report import analysis
from embedlab.data.datasets import Dataset, DatasetMeta
from embedlab.models import get_model
from embedlab.evaluation.results import Report

from tests.fake_encoders import FakeEncoder, fake_spec

LIGHT = el.RunSettings(repeats=1, timing_texts=4, warmup_texts=2, isolate=False, progress=False)


def toy() -> Dataset:
    corpus = {"a1": "答案一", "d1": "干扰一", "d2": "干扰二", "a2": "答案二", "d3": "干扰三"}
    queries = {"q1": "问题一", "q2": "问题二"}
    qrels = {"q1": {"a1": 1, "d1": 0, "d2": 0}, "q2": {"a2": 1, "d3": 0}}
    kinds = {"a1": "answer", "a2": "answer", "d1": "antonym", "d2": "topical", "d3": "antonym"}
    return Dataset(DatasetMeta(name="toy"), queries, corpus, qrels, {"q1": "antonym", "q2": "antonym"}, kinds)


def toy_report(scores: np.ndarray) -> Report:
    from embedlab.evaluation.scoring import per_query_table

    ds = toy()
    per_query = per_query_table(ds, "m", scores=scores)
    runs = pd.DataFrame([{"model": "m", "dataset": "toy", "status": "ok"}])
    return Report(per_query, runs, config={"models": [{"name": "m", "lexical": False}]}, datasets={"toy": ds.fingerprint()}, scores={("m", "toy"): scores})


SCORES = np.array(
    [
        #  a1   d1   d2   a2   d3
        [0.9, 0.95, 0.2, 0.1, 0.1],  # q1: the antonym beats the answer, the topical one does not
        [0.1, 0.1, 0.1, 0.8, 0.8],  # q2: a tie with the antonym counts against the model
    ],
    dtype=np.float32,
)


def test_kind_beat_rates_count_ties_against_the_model() -> None:
    rates = analysis.kind_beat_rates(toy_report(SCORES), "antonym", [toy()]).set_index("kind")
    assert rates.loc["antonym", "n_pairs"] == 2 and rates.loc["antonym", "n_beat"] == 2
    assert rates.loc["topical", "n_pairs"] == 1 and rates.loc["topical", "n_beat"] == 0


def test_seed_distractors_are_every_other_document() -> None:
    seed = el.load_dataset("seed")
    run = el.evaluate(["bm25"], [seed], LIGHT)
    rates = analysis.kind_beat_rates(run, "homonym", [seed])
    assert rates["n_pairs"].sum() == len(seed.corpus) - 1
    assert "other-answer" in set(rates["kind"])  # the other queries' answers


def test_similarity_frame_small_corpus_shows_everything_large_shows_judged() -> None:
    report = toy_report(SCORES)
    whole = analysis.similarity_frame(report, [toy()], category="antonym")
    assert len(whole) == 2 * 5 and whole["relevant"].sum() == 2
    cut = analysis.similarity_frame(report, [toy()], category="antonym", max_docs=3)
    assert set(cut["doc_id"]) == {"a1", "d1", "d2", "a2", "d3"}  # judged documents
    # an unjudged document that both queries rank first is shown once, dotted once per row
    ds = replace(toy(), corpus={**toy().corpus, "x": "别的"})
    scores = np.hstack([SCORES, np.full((2, 1), 2.0, dtype=np.float32)])
    run = Report(toy_report(SCORES).per_query, toy_report(SCORES).runs, config={"models": [{"name": "m"}]}, scores={("m", "toy"): scores})
    shared = analysis.similarity_frame(run, [ds], category="antonym", max_docs=3)
    assert shared.groupby("query_id")["doc_id"].nunique().eq(shared.groupby("query_id").size()).all(), "a document shown twice"
    assert list(shared.loc[shared["is_top1"], "doc_id"]) == ["x", "x"]
    first = whole[(whole["query_id"] == "q1") & whole["is_top1"]]
    assert list(first["doc_id"]) == ["d1"]
    assert set(whole.loc[(whole["query_id"] == "q1") & (whole["doc_id"] == "a2"), "kind"]) == {"other-answer"}


def test_margins_name_the_winning_kind() -> None:
    frame = analysis.margins(toy_report(SCORES), "antonym", [toy()]).set_index("query_id")
    assert frame.loc["q1", "winner_kind"] == "antonym" and frame.loc["q1", "margin"] == pytest.approx(-0.05, abs=1e-6)
    assert frame.loc["q2", "rank"] == 2  # tie against the model


def test_subsample_keeps_judged_documents_and_is_seeded() -> None:
    csl = el.load_dataset("csl")
    cut = analysis.subsample(csl, analysis.Sample(20, 60), seed=3)
    assert len(cut.query_ids) == 20 and len(cut.corpus) == 60
    assert all(d in cut.corpus for q in cut.query_ids for d, g in cut.qrels[q].items() if g > 0)
    assert cut.name == "csl[20q/60d]"
    again = analysis.subsample(csl, analysis.Sample(20, 60), seed=3)
    assert again.query_ids == cut.query_ids and list(again.corpus) == list(cut.corpus)
    assert analysis.subsample(csl, analysis.Sample(), seed=3).name == "csl"


def test_subsample_of_a_judged_set_keeps_only_candidates() -> None:
    paws = el.load_dataset("pawsx-zh")
    cut = analysis.subsample(paws, analysis.Sample(10, None))
    judged = {d for q in cut.query_ids for d in cut.qrels[q]}
    assert set(cut.corpus) == judged


def test_sampling_table_says_what_was_kept() -> None:
    table = analysis.sampling_table(analysis.real_datasets({"csl": (20, 60), "pawsx-zh": None})).set_index("dataset")
    assert table.loc["csl[20q/60d]", "documents_total"] == 1000 and table.loc["csl[20q/60d]", "documents"] == 60
    assert table.loc["pawsx-zh", "queries"] == table.loc["pawsx-zh", "queries_total"]


def test_lexical_overlap_by_hand() -> None:
    corpus = {"a": "北京 天气 晴朗", "b": "上海 天气"}
    ds = Dataset(DatasetMeta(name="o"), {"q": "北京 天气"}, corpus, {"q": {"a": 1}})
    row = analysis.lexical_overlap([ds]).iloc[0]
    assert row["overlap_answer"] == 1.0 and row["overlap_best_other"] == 0.5 and row["overlap_gap"] == 0.5


def test_reported_rows_are_labelled_and_copied_verbatim() -> None:
    run = el.evaluate(["bm25"], ["seed"], LIGHT)
    side = analysis.reported_beside_measured(run)
    reported = side[side["source"] == analysis.REPORTED_LABEL]
    assert "not measured here" in analysis.REPORTED_LABEL
    assert list(reported["top1"]) == [1.0, 0.875, 0.875, 1.0] and list(reported["texts_per_s"]) == [1496.5, 1611.4, 412.0, 246.0]
    measured = side[side["source"] == analysis.MEASURED_LABEL]
    assert list(measured["model"]) == ["bm25"] and measured["top1_low"].notna().all()
    speed = analysis.speed_table(run, "seed")
    assert set(speed["source"]) == {analysis.MEASURED_LABEL, analysis.REPORTED_LABEL}
    assert "params_m" in analysis.missing_measurements(speed, ["params_m"])  # bm25 has no size


def test_dimension_report_sweeps_mrl_models_only(tmp_path) -> None:
    FakeEncoder.calls.clear()
    spec = fake_spec()
    assert analysis.sweep_dimensions(spec) == [8, 16, 32, 64]
    assert analysis.sweep_dimensions(get_model("use-multilingual-v3")) == []
    sweep = analysis.dimension_report([spec, "bm25"], [toy()], None, tmp_path, settings=LIGHT, truncated_settings=LIGHT)
    assert list(sweep["dimensions"]) == [8, 16, 32, 64] and (sweep["status"] == "ok").all()
    support = analysis.mrl_support([spec, "use-multilingual-v3"])
    assert list(support["supports_mrl"]) == [True, False]
    note = analysis.support_note(support, "supports_mrl", "MRL truncation", "mrl_min_dim")
    assert "fake-mrl" in note and "use-multilingual-v3" in note
    none = analysis.support_note(analysis.mrl_support(["bm25", "use-multilingual-v3"]), "supports_mrl", "MRL truncation", "mrl_min_dim")
    assert none.startswith("**None of the chosen models supports MRL truncation**") and "qwen3-embedding-0.6b" in none


def test_instruction_variants_and_their_paired_tests(tmp_path) -> None:
    spec = fake_spec()
    variants = analysis.instruction_variants(spec)
    assert list(variants) == list(analysis.VARIANTS)
    assert variants["no instruction"][0].prompts["query"] == "{text}" and variants["article prompt"][1] == "article"
    assert variants["English instruction"] == (spec, "as is") and variants["Chinese instruction"] == (spec, "zh")
    e5 = get_model("multilingual-e5-small")
    e5_variants = analysis.instruction_variants(e5)
    assert e5_variants["no instruction"][0] == e5 and "Chinese instruction" not in e5_variants  # no instruction slot
    ds = replace(toy(), meta=DatasetMeta(name="toy", instruction="Find the passage that answers the question", instruction_zh="找出回答问题的段落"))
    prompts = analysis.variant_prompts([spec], [ds]).set_index("variant")["model_input"]
    assert prompts["no instruction"] == "问题一"
    assert prompts["article prompt"] == "指令: 根据给定的搜索查询,检索最相关的段落来回答问题\n查询: 问题一"
    assert prompts["English instruction"] == "Instruct: Find the passage that answers the question\nQuery:问题一"
    assert prompts["Chinese instruction"] == "Instruct: 找出回答问题的段落\nQuery:问题一"
    assert analysis.instruction_table([ds]).iloc[0].to_dict() == {"dataset": "toy", "instruction_en": "Find the passage that answers the question", "instruction_zh": "找出回答问题的段落"}
    run = analysis.instruction_report([spec, "bm25"], [ds], tmp_path, settings=LIGHT, variant_settings=LIGHT)
    summary = analysis.variant_summary(run)
    assert sorted(summary["variant"]) == sorted(analysis.VARIANTS) and set(summary["base_model"]) == {"fake-mrl"}
    comparisons = analysis.variant_comparisons(run)
    # each other variant against the documented format (English instruction), paired over both queries
    assert list(comparisons["variant"]) == ["no instruction", "article prompt", "Chinese instruction"]
    assert set(comparisons["model_b"]) == {"fake-mrl [English instruction]"} and set(comparisons["n"]) == {2}
    english = run.per_query[run.per_query["variant"] == "English instruction"].set_index("query_id")["top1"]
    chinese = run.per_query[run.per_query["variant"] == "Chinese instruction"].set_index("query_id")["top1"]
    row = comparisons.set_index("variant").loc["Chinese instruction"]
    assert row["diff"] == pytest.approx((chinese - english).mean()) and row["wins"] == int(((chinese - english) > 0).sum())


def test_the_chinese_variant_is_skipped_without_a_chinese_instruction(tmp_path) -> None:
    spec = fake_spec()
    ds = replace(toy(), meta=DatasetMeta(name="toy", instruction="Find the passage"))
    assert "Chinese instruction" not in set(analysis.variant_prompts([spec], [ds])["variant"])
    run = analysis.instruction_report([spec], [ds], tmp_path, settings=LIGHT, variant_settings=LIGHT)
    assert set(run.per_query["variant"]) == {"no instruction", "article prompt", "English instruction"}
    assert len(analysis.variant_comparisons(run)) == 2


def test_trap_report_goes_through_the_cache(tmp_path) -> None:
    FakeEncoder.calls.clear()
    first = analysis.trap_report([fake_spec()], [toy()], tmp_path, settings=LIGHT)
    loads = FakeEncoder.calls["load"]
    second = analysis.trap_report([fake_spec()], [toy()], tmp_path, settings=LIGHT)
    assert FakeEncoder.calls["load"] == loads == 1
    assert second.runs["cached"].all() and first.per_query.equals(second.per_query)


def test_lexical_verdicts_read_the_interval() -> None:
    per_query = pd.DataFrame(
        {"model": ["bm25"] * 20 + ["dense"] * 20, "dataset": "d", "query_id": [f"q{i}" for i in range(20)] * 2, "category": "",
         "top1": [1.0] * 20 + [0.0] * 20, "top3": 1.0, "top5": 1.0, "mrr": [1.0] * 20 + [0.1] * 20, "ndcg_at_10": 1.0, "margin": 0.1}
    )
    runs = pd.DataFrame({"model": ["bm25", "dense"], "dataset": ["d", "d"], "status": ["ok", "ok"]})
    verdicts = analysis.lexical_verdicts(Report(per_query, runs))
    assert verdicts.iloc[0]["verdict"] == "lexical ahead" and verdicts.iloc[0]["metric"] == "mrr"
    assert "lexical ahead" in analysis.verdict_note(verdicts)


def test_category_card_reads_the_declaration() -> None:
    card = analysis.category_card("idiom")
    assert "成语典故" in card and "Idioms and allusions" in card and "literal" in card
    cases = analysis.category_cases([el.load_dataset("seed")], "idiom")
    assert list(cases["kind"]) == ["answer"] and cases["query"].iloc[0].startswith("画龙点睛")


def test_lexical_contrast_on_one_query_gives_no_interval() -> None:
    """The seed has one query per category: a difference, but no test."""
    scores = SCORES.copy()
    report = toy_report(scores)
    per_query = report.per_query
    lexical = per_query.assign(model="bm25", top1=1.0)
    one = Report(pd.concat([per_query, lexical]).query("query_id == 'q1'"), report.runs)
    row = analysis.lexical_contrast(one, "antonym").iloc[0]
    assert row["n"] == 1 and row["diff"] == -1.0 and np.isnan(row["p_value"]) and row["losses"] == 1


def test_first_ranked_document_counts_ties_against_the_model() -> None:
    """q2's answer a2 ties with the antonym d3 at 0.8: argmax would pick the answer (lower
    index); the tables rank the distractor first, and so does the heatmap's dot."""
    report = toy_report(SCORES)
    frame = analysis.similarity_frame(report, [toy()], category="antonym")
    first = frame[frame["is_top1"]].set_index("query_id")["doc_id"]
    assert first.to_dict() == {"q1": "d1", "q2": "d3"}
    assert SCORES[1].argmax() == 3  # the answer: what argmax would have dotted
    tables = report.per_query.set_index("query_id")
    assert tables.loc["q2", "rank"] == 2 and tables.loc["q2", "top1_doc_id"] == first["q2"]
    # a tie between two distractors above the answer: one dot per row, on a distractor
    tied = SCORES.copy()
    tied[0] = [0.5, 0.9, 0.9, 0.1, 0.1]
    dots = analysis.similarity_frame(toy_report(tied), [toy()], category="antonym")
    q1 = dots[(dots["query_id"] == "q1") & dots["is_top1"]]
    assert len(q1) == 1 and q1["doc_id"].iloc[0] in {"d1", "d2"}


def test_first_ranked_document_in_judged_mode_ignores_unjudged_documents() -> None:
    """A model run with `candidates: judged` ranks only each query's judged documents."""
    scores = SCORES.copy()
    scores[1] = [0.99, 0.1, 0.1, 0.8, 0.5]  # a1 is not judged for q2
    report = toy_report(scores)
    assert analysis.similarity_frame(report, [toy()]).query("query_id == 'q2' and is_top1")["doc_id"].tolist() == ["a1"]
    judged = replace(report, config={"models": [{"name": "m", "options": {"candidates": "judged"}}]})
    assert analysis.similarity_frame(judged, [toy()]).query("query_id == 'q2' and is_top1")["doc_id"].tolist() == ["a2"]


def _memory_runs(gpu: bool) -> Report:
    """A run record as runner.py writes it: GPU columns filled on a GPU run, NaN on CPU."""
    nan = float("nan")
    rows = [
        {"model": "qwen3-embedding-0.6b", "backend": "vllm", "params_m": 596},
        {"model": "bge-m3", "backend": "vllm", "params_m": 568},
    ]
    for row, (weights, kv, note) in zip(rows, [(1.11, 3.2, ""), (1.06, nan, "encoder-only: no KV cache")]):
        row.update(
            dataset="traps-zh", status="ok", host_rss_before_gib=0.3, host_rss_after_load_gib=1.5, host_rss_peak_gib=1.9,
            gpu_mem_before_gib=nan, gpu_mem_after_load_gib=nan, gpu_mem_load_gib=nan, gpu_mem_peak_gib=nan, gpu_mem_source="",
            gpu_device="", weights_gib=nan, kv_cache_gib=nan, kv_cache_note="",
        )
        if gpu:
            row.update(gpu_mem_before_gib=0.0, gpu_mem_after_load_gib=weights + 0.5 + (kv if kv == kv else 0), gpu_mem_load_gib=weights + 0.5 + (kv if kv == kv else 0),
                       gpu_mem_peak_gib=weights + 0.9 + (kv if kv == kv else 0), gpu_mem_source="process", gpu_device="NVIDIA H100 (index 2)",
                       weights_gib=weights, kv_cache_gib=kv, kv_cache_note=note)
    runs = pd.DataFrame(rows)
    config = {"models": [{"name": r["model"], "params_m": r["params_m"]} for r in rows]}
    return Report(pd.DataFrame(columns=["model", "dataset", "query_id", "top1"]), runs.drop(columns="params_m"), config=config)


def test_memory_of_a_cpu_run_is_host_rss_and_never_beside_the_article() -> None:
    frame = analysis.memory_frame(_memory_runs(gpu=False))
    assert set(frame["source"]) == {analysis.MEASURED_LABEL}, "the article's GPU figures must not sit beside host RSS"
    assert set(frame["device"]) == {"CPU"} and all(analysis.HOST_RSS_LABEL in m for m in frame["measure"])
    cpu = _memory_runs(gpu=False)
    cpu.runs.loc[0, "weights_gib"] = 2.2  # parameter bytes of a model loaded on the CPU: still a CPU run
    weights = analysis.memory_frame(cpu)
    assert set(weights["device"]) == {"CPU"} and set(weights["source"]) == {analysis.MEASURED_LABEL}
    assert weights.loc[weights["measure"].str.startswith("weights"), "measure"].tolist() == ["weights (parameter bytes, CPU run)"]
    cue = replace(cpu, runs=pd.concat([cpu.runs, cpu.runs.iloc[[0]].assign(model="length", backend="length")], ignore_index=True))
    assert "length" not in set(analysis.memory_frame(cue)["model"]) and "length" not in set(analysis.speed_table(cue)["model"])
    peak = frame[frame["measure"].str.startswith("peak")].set_index("model")["value_gib"]
    assert peak.to_dict() == {"qwen3-embedding-0.6b": 1.9, "bge-m3": 1.9}
    assert "host RSS, CPU run" in analysis.memory_note(frame) and "GPU run" not in analysis.memory_note(frame)
    side = analysis.reported_beside_measured(pd.DataFrame(
        {"model": ["m"], "dataset": ["seed"], "status": ["ok"], "n_queries": [8], "top1": [1.0], "top1_low": [0.6], "top1_high": [1.0],
         "top3": [1.0], "top3_low": [0.6], "top3_high": [1.0], "host_rss_peak_gib": [1.9], "gpu_mem_peak_gib": [np.nan]}))
    measured = side[side["source"] == analysis.MEASURED_LABEL].iloc[0]
    assert measured["host_rss_peak_gib"] == 1.9 and np.isnan(measured["gpu_mem_peak_gib"]) and np.isnan(measured["reported_gpu_memory_gib"])
    assert side.loc[side["source"] == analysis.REPORTED_LABEL, "host_rss_peak_gib"].isna().all()


def test_memory_of_a_gpu_run_is_gpu_memory_beside_the_reported_figures() -> None:
    frame = analysis.memory_frame(_memory_runs(gpu=True))
    measured = frame[frame["source"] == analysis.MEASURED_LABEL]
    assert set(measured["device"]) == {"GPU"}
    qwen = measured[measured["model"] == "qwen3-embedding-0.6b"].set_index("measure")["value_gib"]
    assert qwen.to_dict() == pytest.approx({"weights": 1.11, "load delta, NVML (CUDA context included)": 4.81, "peak": 5.21, "KV cache": 3.2})
    bge_kv = measured[(measured["model"] == "bge-m3") & (measured["measure"] == "KV cache")]
    assert len(bge_kv) == 1 and np.isnan(bge_kv["value_gib"].iloc[0]) and bge_kv["note"].iloc[0] == "encoder-only: no KV cache"
    reported = frame[frame["source"] == analysis.REPORTED_LABEL].set_index("model")["value_gib"]
    assert reported.to_dict() == {"bge-m3": 1.06, "qwen3-embedding-0.6b": 1.12, "qwen3-embedding-4b": 7.55, "qwen3-embedding-8b": 14.10}
    note = analysis.memory_note(frame)
    assert "NVIDIA H100 (index 2)" in note and "`process`" in note and "encoder-only" in note and "host RSS" not in note
    speed = analysis.speed_table(_memory_runs(gpu=True))
    assert "memory_gib" not in speed.columns and "peak_mem_gib" not in speed.columns
    assert speed.loc[speed["source"] == analysis.MEASURED_LABEL, "weights_gib"].tolist() == [1.11, 1.06]


def test_cue_baselines_stand_beside_the_models() -> None:
    assert [s.name for s in analysis.with_cue_baselines(["bm25"])] == ["bm25", "length", "length-judged", "overlap-inverse", "query-blind"]
    assert [s.name for s in analysis.with_cue_baselines(["length", "bm25"])] == ["length", "bm25", "length-judged", "overlap-inverse", "query-blind"]
    per_query = pd.DataFrame(
        {"model": ["dense"] * 4 + ["length"] * 4, "dataset": "d", "query_id": [f"q{i}" for i in range(4)] * 2, "category": "",
         "top1": [1.0, 1.0, 0.0, 1.0, 1.0, 0.0, 1.0, 1.0], "top3": 1.0, "top5": 1.0, "mrr": 1.0, "ndcg_at_10": 1.0, "margin": 0.1}
    )
    runs = pd.DataFrame({"model": ["dense", "length"], "dataset": ["d", "d"], "status": ["ok", "ok"], "backend": ["st", "length"]})
    report = Report(per_query, runs)
    assert analysis.cue_models(report) == ["length"]
    table = analysis.cue_table(report)
    assert table.set_index("model")["kind"].to_dict() == {"dense": "model", "length": analysis.CUE_LABEL}
    flags = pd.DataFrame({"dataset": ["d"], "model": ["dense"], "top1": [0.75], "best_cue": ["length"], "best_cue_top1": [0.75],
                          "diff": [0.0], "p_value": [1.0], "flagged": [True]})
    note = analysis.cue_note(flags, ["length"])
    assert "1 of 1" in note and "dense top-1 0.750 vs length 0.750" in note and "flagged" in note
    assert "No cue baseline" in analysis.cue_note(None, [])
    assert analysis.cue_flags(report).equals(report.cue_flags())


def test_the_articles_numbers_are_read_from_the_seed_data_file() -> None:
    """data/seed/reported.csv is the one source of the reported rows (its comments say where
    each number comes from)."""
    from embedlab.report import reported

    path = reported.reported_path()
    from embedlab.data.datasets import data_dir

    assert path.relative_to(data_dir()) == reported.Path("seed", "reported.csv")
    text = path.read_text(encoding="utf-8")
    assert "qwen3_embedding_vs_bge_m3_article_zh.txt" in text  # the source is named in the file
    table = reported.read_reported(path)
    assert table.equals(analysis.ARTICLE_REPORTED)
    assert table.loc[table["model"] == "bge-m3", "texts_per_s"].item() == 1496.5


@pytest.mark.parametrize(
    ("row", "match", "line", "field"),
    [
        ("BGE-M3,bge-m3,1.06,0.020,fast,1.000,1.000,1024", "'fast' is not a float", 3, "texts_per_s"),
        ("BGE-M3,no-such-model,1.06,0.020,1496.5,1.000,1.000,1024", "no embedlab record named 'no-such-model'", 3, "model"),
        ("BGE-M3,bge-m3,1.06", "3 fields, expected 8", 3, None),
    ],
)
def test_a_malformed_reported_file_names_its_line_and_field(tmp_path, row: str, match: str, line: int, field: str | None) -> None:
    from embedlab.errors import DataError
    from embedlab.report import reported

    path = tmp_path / "reported.csv"
    path.write_text("# a comment\n" + ",".join(reported.COLUMNS) + "\n" + row + "\n", encoding="utf-8")
    with pytest.raises(DataError, match=match) as caught:
        reported.read_reported(path)
    assert caught.value.line == line and caught.value.field == field and str(path) in str(caught.value)
