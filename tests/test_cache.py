"""The embedding cache: a warm run loads no model and returns the same embeddings and the
timings of the run that computed them; entries are keyed by record, revision, prompt,
dimensions and text; corrupted and stale entries are detected and rebuilt; nothing is
pickled."""

from __future__ import annotations

import io
import json
import logging
from dataclasses import replace
from pathlib import Path

import numpy as np
import pytest

import embedlab as el
from embedlab.cache import EmbeddingCache, cached_runner, default_cache_dir
from embedlab.datasets import Dataset, DatasetMeta
from embedlab.runner import EncodeTask, RunSettings, run_model

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
    for column in ("latency_median_s", "latency_times_s", "load_s", "peak_mem_gib", "texts_per_s"):
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
    with caplog.at_level(logging.WARNING, logger="embedlab.cache"):
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
    with caplog.at_level(logging.WARNING, logger="embedlab.cache"):
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
    assert warm.runs["peak_mem_gib"].iloc[0] == cold.runs["peak_mem_gib"].iloc[0]


def test_default_cache_dir(monkeypatch, tmp_path: Path) -> None:
    monkeypatch.setenv("EMBEDLAB_CACHE_DIR", str(tmp_path / "c"))
    assert default_cache_dir() == tmp_path / "c"
    monkeypatch.delenv("EMBEDLAB_CACHE_DIR")
    assert default_cache_dir().parts[-2:] == (".cache", "embedlab")
