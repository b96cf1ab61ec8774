"""Loaders: BEIR round trip, trap file, pairs CSV, and one clear error per kind of bad input."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from embedlab.data.datasets import Dataset, bundled_datasets, load_dataset
from embedlab.errors import DataError, UnknownNameError

ROOT = Path(__file__).resolve().parents[1]


def _write_beir(folder: Path, corpus: list[str], queries: list[str], qrels: str) -> Path:
    (folder / "qrels").mkdir(parents=True)
    (folder / "corpus.jsonl").write_text("\n".join(corpus) + "\n", encoding="utf-8")
    (folder / "queries.jsonl").write_text("\n".join(queries) + "\n", encoding="utf-8")
    (folder / "qrels" / "test.tsv").write_text(qrels, encoding="utf-8")
    return folder


GOOD_CORPUS = [
    json.dumps({"_id": "d1", "text": "苹果公司发布新手机", "kind": "answer"}, ensure_ascii=False),
    json.dumps({"_id": "d2", "text": "超市里的苹果很新鲜", "title": "水果", "kind": "other-entity"}, ensure_ascii=False),
]
GOOD_QUERIES = [json.dumps({"_id": "q1", "text": "苹果的新款手机", "category": "context-name"}, ensure_ascii=False)]
GOOD_QRELS = "query-id\tcorpus-id\tscore\nq1\td1\t2\nq1\td2\t0\n"


def test_beir_round_trip_keeps_categories_kinds_titles(tmp_path: Path) -> None:
    ds = Dataset.from_beir(_write_beir(tmp_path / "mine", GOOD_CORPUS, GOOD_QUERIES, GOOD_QRELS))
    assert ds.name == "mine"
    assert ds.qrels == {"q1": {"d1": 2, "d2": 0}}
    assert ds.categories == {"q1": "context-name"}
    assert ds.kinds == {"d1": "answer", "d2": "other-entity"}
    assert ds.document_texts()[1] == "水果 超市里的苹果很新鲜"
    again = Dataset.from_beir(ds.to_beir(tmp_path / "copy"))
    assert again.fingerprint() == ds.fingerprint()


def test_unseen_beir_folder_loads_by_path(tmp_path: Path) -> None:
    folder = _write_beir(tmp_path / "unseen", GOOD_CORPUS, GOOD_QUERIES, GOOD_QRELS)
    ds = load_dataset(str(folder))
    assert ds.query_ids == ["q1"] and ds.meta.candidates == "all"


@pytest.mark.parametrize(
    ("corpus", "queries", "qrels", "file", "line", "field", "needle"),
    [
        (['{"_id": "d1", "text": "好"', GOOD_CORPUS[1]], GOOD_QUERIES, GOOD_QRELS, "corpus.jsonl", 1, None, "broken JSON"),
        ([GOOD_CORPUS[0], '{"_id": "d2"}'], GOOD_QUERIES, GOOD_QRELS, "corpus.jsonl", 2, "text", "missing"),
        ([GOOD_CORPUS[0], GOOD_CORPUS[0]], GOOD_QUERIES, GOOD_QRELS, "corpus.jsonl", 2, "_id", "duplicate"),
        (GOOD_CORPUS, ['{"_id": "q1", "text": "  "}'], GOOD_QRELS, "queries.jsonl", 1, "text", "empty text"),
        (GOOD_CORPUS, GOOD_QUERIES, "q1\td9\t1\n", "test.tsv", 1, "corpus-id", "unknown document id 'd9'"),
        (GOOD_CORPUS, GOOD_QUERIES, "query-id\tcorpus-id\tscore\nq7\td1\t1\n", "test.tsv", 2, "query-id", "unknown query id 'q7'"),
        (GOOD_CORPUS, GOOD_QUERIES, "q1\td1\thigh\n", "test.tsv", 1, "score", "integer"),
    ],
)
def test_bad_beir_files_name_file_line_field(tmp_path: Path, corpus, queries, qrels, file, line, field, needle) -> None:
    folder = _write_beir(tmp_path / "bad", corpus, queries, qrels)
    with pytest.raises(DataError) as info:
        Dataset.from_beir(folder)
    err = info.value
    assert Path(err.path).name == file
    assert err.line == line
    assert err.field == field
    assert needle in str(err)
    assert f"line {line}" in str(err)


def test_non_utf8_bytes_name_the_line(tmp_path: Path) -> None:
    folder = _write_beir(tmp_path / "latin", GOOD_CORPUS, GOOD_QUERIES, GOOD_QRELS)
    with open(folder / "queries.jsonl", "ab") as fh:
        fh.write('{"_id": "q2", "text": "caf'.encode() + b"\xe9" + b'"}\n')
    with pytest.raises(DataError) as info:
        Dataset.from_beir(folder)
    assert info.value.line == 2 and "UTF-8" in str(info.value)


TRAP_YAML = """\
name: mini
instruction: 检索能回答问题的段落
documents:
  - {id: shared, kind: off-topic, text: 今天天气很好}
queries:
  - id: h1
    category: homonym
    text: 打酱油是什么意思
    answer: 网络用语，表示与己无关、只是路过
    distractors:
      - {kind: other-sense, text: 去小卖部买一瓶酱油}
      - {kind: topical, text: 酱油的酿造工艺}
  - id: h2
    category: homonym
    text: 东西在方位上的含义
    answer: 东边和西边
    relevant: {shared: 0}
"""


def test_trap_yaml_builds_corpus_qrels_and_kinds(tmp_path: Path) -> None:
    path = tmp_path / "mini.yaml"
    path.write_text(TRAP_YAML, encoding="utf-8")
    ds = Dataset.from_trap_file(path)
    assert ds.instruction == "检索能回答问题的段落"
    assert list(ds.corpus) == ["shared", "h1-a", "h1-d1", "h1-d2", "h2-a"]
    assert ds.kinds["h1-d1"] == "other-sense" and ds.kinds["h1-a"] == "answer"
    assert ds.qrels["h1"] == {"h1-a": 1, "h1-d1": 0, "h1-d2": 0}
    assert ds.qrels["h2"] == {"h2-a": 1, "shared": 0}
    assert ds.categories == {"h1": "homonym", "h2": "homonym"}


@pytest.mark.parametrize(
    ("old", "new", "line", "field", "needle"),
    [
        ("  - id: h2\n", "  - id: h1\n", 13, "id", "duplicate query id 'h1'"),
        ("      - {kind: topical, text: 酱油的酿造工艺}", "      - {kind: topical, text: ''}", 12, "text", "empty text"),
        ("      - {kind: topical, text: 酱油的酿造工艺}", "      - {text: 酱油的酿造工艺}", 12, "kind", "distractor kind"),
        ("    relevant: {shared: 0}", "    relevant: [nowhere]", 13, "relevant", "unknown document id 'nowhere'"),
        ("    text: 东西在方位上的含义\n", "", 13, "text", "missing"),
    ],
)
def test_bad_trap_yaml(tmp_path: Path, old: str, new: str, line: int, field: str, needle: str) -> None:
    assert old in TRAP_YAML
    path = tmp_path / "bad.yaml"
    path.write_text(TRAP_YAML.replace(old, new), encoding="utf-8")
    with pytest.raises(DataError) as info:
        Dataset.from_trap_file(path)
    assert info.value.line == line, str(info.value)
    assert info.value.field == field
    assert needle in str(info.value) and "bad.yaml" in str(info.value)


def test_invalid_yaml_syntax_names_the_line(tmp_path: Path) -> None:
    path = tmp_path / "broken.yaml"
    path.write_text("queries:\n  - id: a\n    text: [unclosed\n", encoding="utf-8")
    with pytest.raises(DataError) as info:
        Dataset.from_trap_file(path)
    assert info.value.line is not None and "invalid YAML" in str(info.value)


def test_trap_jsonl(tmp_path: Path) -> None:
    path = tmp_path / "mini.jsonl"
    lines = [
        {"name": "mini-jsonl", "instruction": "找答案"},
        {"id": "a1", "category": "antonym", "text": "如何降低血压", "answer": "减少盐的摄入", "distractors": [{"kind": "antonym", "text": "如何升高血压"}]},
        {"id": "a2", "category": "antonym", "text": "牛市特征", "answer": "成交量放大"},
    ]
    path.write_text("\n".join(json.dumps(x, ensure_ascii=False) for x in lines) + "\n", encoding="utf-8")
    ds = load_dataset(str(path))
    assert ds.name == "mini-jsonl" and ds.instruction == "找答案"
    assert ds.kinds["a1-d1"] == "antonym" and len(ds.query_ids) == 2
    path.write_text(path.read_text(encoding="utf-8") + '{"id": "a3", "text": "x", "answer": "y"\n', encoding="utf-8")
    with pytest.raises(DataError) as info:
        load_dataset(str(path))
    assert info.value.line == 4 and "broken JSON" in str(info.value)


def test_pairs_csv(tmp_path: Path) -> None:
    path = tmp_path / "mine.csv"
    path.write_text("query,positive,category\n怎么退货,七天内可无理由退货,售后\n怎么退货,退货需保留发票,售后\n发票抬头,抬头可在订单页修改,\n", encoding="utf-8")
    ds = load_dataset(str(path))
    assert len(ds.query_ids) == 2 and len(ds.corpus) == 3
    assert ds.qrels["q1"] == {"d1": 1, "d2": 1}
    assert ds.categories == {"q1": "售后"}
    path.write_text("query,positive\n怎么退货,\n", encoding="utf-8")
    with pytest.raises(DataError) as info:
        load_dataset(str(path))
    assert info.value.line == 2 and info.value.field == "positive"
    path.write_text("question,answer\na,b\n", encoding="utf-8")
    with pytest.raises(DataError, match="missing column 'query'"):
        load_dataset(str(path))


def test_unknown_name_lists_bundled_sets() -> None:
    with pytest.raises(UnknownNameError, match="seed"):
        load_dataset("no-such-set")


def test_to_beir_failure_leaves_existing_folder_intact(tmp_path: Path, monkeypatch) -> None:
    ds = load_dataset("seed")
    target = ds.to_beir(tmp_path / "seed")
    before = (target / "corpus.jsonl").read_bytes()
    import embedlab.data.datasets as mod

    def boom(*args, **kwargs):
        raise OSError("disk full")

    monkeypatch.setattr(mod.json, "dump", boom)  # fails while writing meta.json, the last file
    with pytest.raises(OSError):
        ds.to_beir(target)
    assert (target / "corpus.jsonl").read_bytes() == before
    assert sorted(p.name for p in tmp_path.iterdir()) == ["seed"]


def test_seed_is_the_article_set() -> None:
    ds = load_dataset("seed")
    assert len(ds.query_ids) == 8 and len(ds.corpus) == 22
    assert len(set(ds.categories.values())) == 8
    assert sum(k == "answer" for k in ds.kinds.values()) == 8


def test_every_bundled_set_loads_and_has_a_data_card() -> None:
    names = bundled_datasets()
    assert {"seed", "traps-zh", "cmrc2018", "idioms", "csl", "pawsx-zh"} <= set(names)
    for name in names:
        ds = load_dataset(name)
        assert ds.query_ids, name
        assert (ROOT / "data" / name / "README.md").exists(), f"data card missing for {name}"


def test_traps_zh_meets_the_brief() -> None:
    ds = load_dataset("traps-zh")
    frame = ds.queries_frame()
    counts = frame.groupby("category").size()
    from embedlab.data.categories import CATEGORY_IDS, DOCUMENT_KINDS

    assert set(counts.index) == set(CATEGORY_IDS)
    assert (counts >= 12).all(), counts.to_dict()
    for q in ds.query_ids:
        distractors = [d for d, g in ds.qrels[q].items() if g == 0]
        assert len(distractors) >= 2, q
        assert all(ds.kinds[d] in DOCUMENT_KINDS for d in ds.qrels[q]), q


def test_sample_is_seeded_and_keeps_corpus() -> None:
    ds = load_dataset("seed")
    a, b = ds.sample(4, seed=1), ds.sample(4, seed=1)
    assert a.query_ids == b.query_ids and len(a.query_ids) == 4
    assert a.corpus == ds.corpus


# ---- task instructions: English `instruction`, Chinese `instruction_zh`, `version` ----

EN_INSTRUCTION = "Given a Chinese search query, retrieve passages that answer the query"
ZH_INSTRUCTION = "给定一个中文搜索查询，检索能回答该查询的段落"


def test_trap_yaml_carries_both_instructions_and_version(tmp_path: Path) -> None:
    path = tmp_path / "mini.yaml"
    header = f"version: 2\ninstruction: {EN_INSTRUCTION}\ninstruction_zh: {ZH_INSTRUCTION}\n"
    path.write_text(TRAP_YAML.replace("instruction: 检索能回答问题的段落\n", header), encoding="utf-8")
    ds = Dataset.from_trap_file(path)
    assert ds.instruction == EN_INSTRUCTION and ds.instruction_zh == ZH_INSTRUCTION
    assert ds.meta.version == "2"  # an integer in YAML, a string in the record
    assert ds.meta.to_dict()["instruction_zh"] == ZH_INSTRUCTION and ds.meta.to_dict()["version"] == "2"
    back = Dataset.from_beir(ds.to_beir(tmp_path / "beir"))
    assert back.meta == ds.meta
    assert back.fingerprint() == ds.fingerprint()
    stored = json.loads((tmp_path / "beir" / "meta.json").read_text(encoding="utf-8"))
    assert stored["instruction"] == EN_INSTRUCTION and stored["instruction_zh"] == ZH_INSTRUCTION


def test_fingerprint_covers_the_chinese_instruction(tmp_path: Path) -> None:
    path = tmp_path / "mini.yaml"
    path.write_text(TRAP_YAML.replace("instruction: 检索能回答问题的段落\n", f"instruction: {EN_INSTRUCTION}\n"), encoding="utf-8")
    plain = Dataset.from_trap_file(path)
    path.write_text(path.read_text(encoding="utf-8").replace("documents:", f"instruction_zh: {ZH_INSTRUCTION}\ndocuments:"), encoding="utf-8")
    with_zh = Dataset.from_trap_file(path)
    assert plain.instruction_zh == "" and with_zh.instruction_zh == ZH_INSTRUCTION
    assert plain.fingerprint() != with_zh.fingerprint()


def test_trap_jsonl_header_takes_instruction_zh_and_version(tmp_path: Path) -> None:
    path = tmp_path / "mini.jsonl"
    lines = [
        {"name": "mini", "instruction": EN_INSTRUCTION, "instruction_zh": ZH_INSTRUCTION, "version": 3},
        {"id": "a1", "category": "antonym", "text": "如何降低血压", "answer": "减少盐的摄入"},
    ]
    path.write_text("\n".join(json.dumps(x, ensure_ascii=False) for x in lines) + "\n", encoding="utf-8")
    ds = load_dataset(str(path))
    assert (ds.instruction, ds.instruction_zh, ds.meta.version) == (EN_INSTRUCTION, ZH_INSTRUCTION, "3")
    assert len(ds.query_ids) == 1  # the header line is not read as a query


def test_beir_meta_json_with_both_instructions(tmp_path: Path) -> None:
    folder = _write_beir(tmp_path / "set", GOOD_CORPUS, GOOD_QUERIES, GOOD_QRELS)
    meta = {"instruction": EN_INSTRUCTION, "instruction_zh": ZH_INSTRUCTION, "version": "2026-11"}
    (folder / "meta.json").write_text(json.dumps(meta, ensure_ascii=False), encoding="utf-8")
    ds = Dataset.from_beir(folder)
    assert (ds.instruction, ds.instruction_zh, ds.meta.version) == (EN_INSTRUCTION, ZH_INSTRUCTION, "2026-11")
    (folder / "meta.json").write_text(json.dumps({"instruction_zh": 7}), encoding="utf-8")
    with pytest.raises(DataError) as info:
        Dataset.from_beir(folder)
    assert info.value.field == "instruction_zh" and "meta.json" in str(info.value)


def test_pairs_csv_takes_both_instructions(tmp_path: Path) -> None:
    path = tmp_path / "mine.csv"
    path.write_text("query,positive\n怎么退货,七天内可无理由退货\n", encoding="utf-8")
    ds = Dataset.from_pairs_csv(path, instruction=EN_INSTRUCTION, instruction_zh=ZH_INSTRUCTION)
    assert (ds.instruction, ds.instruction_zh) == (EN_INSTRUCTION, ZH_INSTRUCTION)
    back = Dataset.from_beir(ds.to_beir(tmp_path / "beir"))
    assert (back.instruction, back.instruction_zh) == (EN_INSTRUCTION, ZH_INSTRUCTION)
    assert back.fingerprint() == ds.fingerprint()
    assert Dataset.from_pairs_csv(path, instruction=EN_INSTRUCTION).fingerprint() != ds.fingerprint()


@pytest.mark.parametrize("name", ["seed", "traps-zh", "cmrc2018", "idioms", "csl", "pawsx-zh"])
def test_bundled_sets_have_an_english_instruction_and_keep_the_chinese_one(name: str) -> None:
    ds = load_dataset(name)
    assert ds.instruction.isascii() and ds.instruction.startswith("Given "), ds.instruction
    assert ds.instruction_zh and not ds.instruction_zh.isascii()
