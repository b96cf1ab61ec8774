"""The data dictionary: what every column of a results folder's CSV files means and its unit
(summary.csv, per_query.csv, by_category.csv, comparisons.csv, runs.csv). `Report.to_dir`
writes it as columns.csv beside them; docs/columns.md is generated from it
(`python -m embedlab.evaluation.columns`). Metric columns (`top1`, `recall_at_10`,
`ndcg_at_10`, their `_low` / `_high` interval ends) are described from their specs
(`evaluation.metrics`), the other columns are listed here one by one."""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass

import pandas as pd

SHARE = "share of queries, 0-1"
SCORE_UNIT = (
    "In the model's own score unit: cosine similarity for dense models, BM25 score for BM25, "
    "characters for the length cues"
)


@dataclass(frozen=True)
class Column:
    name: str
    meaning: str
    unit: str
    integer: bool = False  # written as whole numbers (empty where missing), never 512.0


# per metric kind (evaluation.metrics.MetricSpec.kind): meaning with its cut-off k, and unit
_METRIC_KINDS = {
    "hit": (
        "1 when the answer is among the first {k} documents (per query); the share of queries that do (aggregated)",
        SHARE,
    ),
    "recall": (
        "share of the query's relevant documents found in the first {k} (per query); its mean (aggregated)",
        SHARE,
    ),
    "ndcg": ("normalised discounted cumulative gain of the first {k} documents (graded relevance)", "0-1"),
    "mrr": ("reciprocal rank of the first relevant document, 1/rank (per query); its mean (aggregated)", "0-1"),
}

_OTHER: tuple[Column, ...] = (
    Column("model", "model (or pipeline / cue baseline) name, as in the config", "text"),
    Column("dataset", "data set name", "text"),
    Column("status", "ok, or failed (see error)", "text"),
    Column("error", "why the model failed on this data set; empty when ok", "text"),
    Column("n_queries", "queries behind the row", "count", True),
    Column("query_id", "query id in the data set", "text"),
    Column("query", "the query text", "text"),
    Column("category", "trap category of the query (empty for data sets without categories)", "text"),
    Column("rank", "rank of the first relevant document (1 = first; ties count against the model)", "rank", True),
    Column(
        "margin",
        f"best relevant score minus best non-relevant score for the query; below 0 a distractor won. {SCORE_UNIT}",
        "model's score unit",
    ),
    Column("mean_margin", f"mean of `margin` over the queries. {SCORE_UNIT}", "model's score unit"),
    Column(
        "n_near_ties",
        "queries whose margin is within the numeric resolution of the row's scores (decided by rounding, not meaning)",
        "count",
        True,
    ),
    Column(
        "near_ties", "queries of the pair decided within the numeric resolution of either model's scores", "count", True
    ),
    Column("top1_doc_id", "id of the document the model ranked first", "text"),
    Column("top1_document", "text of the document the model ranked first", "text"),
    Column("top1_kind", "kind of the document ranked first (answer, or a distractor kind)", "text"),
    Column(
        "winner_kind",
        "when the model was wrong: the kind of the document that beat the answer; empty when right",
        "text",
    ),
    Column("best_wrong_doc_id", "id of the highest-scored non-relevant document", "text"),
    Column("best_wrong_kind", "kind of the highest-scored non-relevant document, as this query sees it", "text"),
    Column("load_s", "seconds to load the model in its worker", "seconds"),
    Column("warmup_s", "seconds of the untimed warm-up encode", "seconds"),
    Column("latency_median_s", "median seconds of one timed encode of the first texts (latency protocol)", "seconds"),
    Column("latency_iqr_s", "interquartile range of the timed encodes", "seconds"),
    Column("latency_times_s", "every timed encode, in order", "seconds (list)"),
    Column("n_timed", "texts in each timed encode", "count", True),
    Column(
        "texts_per_s",
        "texts per second of the timed encodes (n_timed / latency_median_s): includes per-call overhead",
        "texts/s",
    ),
    Column(
        "throughput_texts_per_s",
        "texts per second of the separate throughput pass (many texts in batches): the steady rate",
        "texts/s",
    ),
    Column(
        "throughput_tokens_per_s",
        "tokens per second of the throughput pass, for backends that count tokens",
        "tokens/s",
    ),
    Column("encode_s", "seconds spent encoding the data set's queries and documents", "seconds"),
    Column("host_rss_before_gib", "resident memory of the worker process before loading", "GiB"),
    Column("host_rss_after_load_gib", "resident memory of the worker process after loading", "GiB"),
    Column("host_rss_peak_gib", "peak resident memory of the worker process (host RSS; not GPU memory)", "GiB"),
    Column("gpu_mem_before_gib", "GPU memory used before loading (see gpu_mem_source)", "GiB"),
    Column("gpu_mem_after_load_gib", "GPU memory used after loading", "GiB"),
    Column("gpu_mem_load_gib", "GPU memory loading added (after load minus before)", "GiB"),
    Column("gpu_mem_peak_gib", "highest GPU memory reading while encoding", "GiB"),
    Column(
        "gpu_mem_source", "how GPU memory was read: process (the worker's own) or device (the whole device)", "text"
    ),
    Column("gpu_device", "the GPU the worker used; empty on a CPU run", "text"),
    Column("weights_gib", "bytes of the model's parameters as loaded", "GiB"),
    Column(
        "torch_allocated_load_gib",
        "torch.cuda.memory_allocated() after load minus before, in the worker: the article's own measure",
        "GiB",
    ),
    Column("kv_cache_gib", "KV cache the engine allocated (vLLM); empty where none", "GiB"),
    Column("kv_cache_note", "why there is no KV cache figure, for engines that have none", "text"),
    Column(
        "max_length",
        "longest input in tokens the model was run with (truncation); empty for models without a token limit",
        "tokens",
        True,
    ),
    Column("dtype", "numeric type of the weights as run", "text"),
    Column("dim", "embedding dimensions", "count", True),
    Column("backend", "the backend that ran the model (vllm, transformers, st, bm25, length, ...)", "text"),
    Column("stage", "how a fused or reranked row was built (its members / first stage)", "text"),
    Column("rerank_s", "seconds the reranker took over the whole data set", "seconds"),
    Column("rerank_latency_s", "median seconds to rerank one query's top k", "seconds"),
    Column("search_index", "the approximate search index used (settings.search); empty for exact search", "text"),
    Column("search_recall_at_10", "share of the exact top 10 the index found", SHARE),
    Column("search_build_s", "seconds to build the search index", "seconds"),
    Column("search_s", "seconds to search every query", "seconds"),
    Column(
        "cached",
        "True when the embeddings were read from the cache (timings are then the run that computed them)",
        "boolean",
    ),
    Column("measured_at", "when the measurement was made (UTC)", "timestamp"),
    Column("run_id", "id of the run that measured the row", "text"),
    Column("device", "device the backend was asked to use", "text"),
    Column("pooling", "pooling of token vectors into one (cls, mean, last)", "text"),
    Column("normalize", "whether embeddings were normalised to unit length", "boolean"),
    Column("metric", "the metric compared (a column name above)", "text"),
    Column("model_a", "first model of the pair", "text"),
    Column("model_b", "second model of the pair", "text"),
    Column("n", "queries both models answered (the pair's sample)", "count", True),
    Column("mean_a", "model_a's mean of the metric on those queries", "metric's unit"),
    Column("mean_b", "model_b's mean of the metric on those queries", "metric's unit"),
    Column("diff", "mean_a minus mean_b", "metric's unit"),
    Column("diff_low", "lower end of the 95% paired bootstrap interval of diff", "metric's unit"),
    Column("diff_high", "upper end of the 95% paired bootstrap interval of diff", "metric's unit"),
    Column("p_value", "two-sided paired permutation (sign-flip) test of diff = 0", "probability"),
    Column("p_holm", "p_value Holm-adjusted over the pairs of one data set", "probability"),
    Column("wins", "queries where model_a scored higher than model_b", "count", True),
    Column("ties", "queries where they scored the same", "count", True),
    Column("losses", "queries where model_a scored lower", "count", True),
)
# runs.csv columns that appear only where their source does: a package imported by the worker,
# a GPU, a vLLM engine, a served model, Ray (the runner writes every key a backend reports)
_WHERE_PRESENT = (
    *(
        Column(f"{package}_version", f"version of {name} the worker imported (empty when it did not)", "text")
        for package, name in (
            ("torch", "torch"),
            ("vllm", "vLLM"),
            ("transformers", "transformers"),
            ("sentence_transformers", "sentence-transformers"),
        )
    ),
    Column("cuda_version", "CUDA version torch was built with (empty on a CPU build)", "text"),
    Column("cuda_driver_version", "CUDA version the NVIDIA driver supports", "text"),
    Column("cuda_visible_devices", "CUDA_VISIBLE_DEVICES as the worker saw it", "text"),
    Column("gpu_name", "name of the GPU the row's memory was read from", "text"),
    Column("gpu_driver", "NVIDIA driver version of that GPU", "text"),
    Column("gpu_total_gib", "total memory of that GPU", "GiB"),
    Column("gpu_pci_bus_id", "PCI bus id of that GPU", "text"),
    Column("gpu_found_by", "how the worker's GPU was identified (UUID, PCI order, memory use, ...)", "text"),
    Column("import_s", "seconds to import the backend's packages in the worker", "seconds"),
    Column("model_init_s", "seconds to build the model object (after import, before encoding)", "seconds"),
    Column("engine_init_s", "seconds vLLM spent starting its engine (profiling, KV cache, warm-up)", "seconds"),
    Column("load_weights_s", "seconds spent reading the weights, as the engine logged it", "seconds"),
    Column("vllm_weights_gib", "weight memory vLLM logged after loading", "GiB"),
    Column("vllm_in_process", "whether the vLLM engine ran in the measured worker process", "boolean"),
    Column(
        "vllm_untested", "the installed vLLM is outside the tested range (run with EMBEDLAB_UNTESTED_VLLM=warn)", "text"
    ),
    Column("prefix_caching", "whether the vLLM engine had prefix caching on (off for every timed engine)", "boolean"),
    Column("prefix_cache_hit_tokens", "tokens vLLM read from its prefix cache during the run", "tokens", True),
    Column("gpu_memory_utilization", "vLLM's GPU memory share, when it sized the KV cache", "share of GPU memory, 0-1"),
    Column("kv_cache_sizing", "which setting sized vLLM's KV cache (a fixed budget or gpu_memory_utilization)", "text"),
    Column("kv_cache_reserved_gib", "KV-cache budget asked of vLLM", "GiB"),
    Column("kv_cache_blocks", "KV-cache blocks vLLM allocated", "count", True),
    Column("kv_cache_block_tokens", "tokens per KV-cache block", "tokens", True),
    Column("kv_cache_tokens", "tokens the allocated KV cache holds (blocks x block tokens)", "tokens", True),
    Column("torch_max_allocated_gib", "torch.cuda.max_memory_allocated while encoding (peak reset after start)", "GiB"),
    Column("torch_max_allocated_start_gib", "torch.cuda.max_memory_allocated during engine start (profiling)", "GiB"),
    Column("torch_max_reserved_gib", "torch.cuda.max_memory_reserved while encoding", "GiB"),
    Column("served_model", "model name the run asked the server for", "text"),
    Column("server_model", "model name the server reported serving", "text"),
    Column("server_prompt_tokens", "prompt tokens the server counted", "tokens", True),
    Column("request_s", "median seconds per request to the server", "seconds"),
    Column("requests", "requests sent to the server", "count", True),
    Column("retries", "requests retried (429, 5xx, dropped connections)", "count", True),
    Column(
        "documents_reused", "corpus vectors taken from the cache's documents store (only queries encoded)", "boolean"
    ),
    Column("ray_shards_cached", "corpus shards a Ray run read from the cache instead of encoding", "count", True),
)
COLUMNS: Mapping[str, Column] = {c.name: c for c in (*_OTHER, *_WHERE_PRESENT)}


def _metric(name: str) -> Column | None:
    """A metric column described from its spec (`evaluation.metrics.parse_metric`): the
    metric columns are declared there, once."""
    from embedlab.evaluation.metrics import parse_metric

    try:
        spec = parse_metric(name)
    except ValueError:
        return None
    if spec.column != name:
        return None
    meaning, unit = _METRIC_KINDS[spec.kind]
    return Column(name, f"{spec.label}: " + meaning.format(k=spec.k), unit)


def describe(name: str) -> Column | None:
    """The dictionary's entry for a column (None when it has none): listed, a metric, or a
    metric's `_low` / `_high` interval end."""
    if name in COLUMNS:
        return COLUMNS[name]
    base, _, end = name.rpartition("_")
    if end in ("low", "high") and (metric := _metric(base)) is not None:
        which = "lower" if end == "low" else "upper"
        from embedlab.evaluation.metrics import parse_metric

        method = {"wilson": "Wilson score"}.get(parse_metric(base).interval, parse_metric(base).interval)
        return Column(name, f"{which} end of the 95% interval of {base} over queries ({method})", metric.unit)
    return _metric(name)


UNDESCRIBED = "not in the data dictionary (embedlab/evaluation/columns.py)"


def dictionary(files: Mapping[str, Iterable[str]], strict: bool = True) -> pd.DataFrame:
    """Rows (file, column, meaning, unit) for every column of every file. A column the
    dictionary does not describe raises KeyError naming it (`strict`), else its meaning
    reads UNDESCRIBED (a results folder is still written; tests/test_columns.py fails)."""
    rows = []
    for file, names in files.items():
        for name in names:
            column = describe(name)
            if column is None and not strict:
                column = Column(name, UNDESCRIBED, "")
            elif column is None:
                raise KeyError(f"{file}: column {name!r} is {UNDESCRIBED}")
            rows.append({"file": file, "column": name, "meaning": column.meaning, "unit": column.unit})
    return pd.DataFrame(rows, columns=["file", "column", "meaning", "unit"])


def typed(frame: pd.DataFrame) -> pd.DataFrame:
    """`frame` with the whole-number columns as nullable integers (512, not 512.0 / None)."""
    out = frame.copy()
    for name in out.columns:
        column = describe(name)
        if column is not None and column.integer:
            values = pd.to_numeric(out[name], errors="coerce")
            if (values.dropna() % 1 == 0).all():
                out[name] = values.astype("Int64")
    return out


def markdown() -> str:
    """docs/columns.md: the listed columns and the metric name patterns."""
    intro = (
        "Generated by `python -m embedlab.evaluation.columns` from `embedlab/evaluation/columns.py`; every results "
        "folder also holds it as `columns.csv`, one row per file and column."
    )
    lines = [
        "# Columns of a results folder",
        "",
        intro,
        "",
        "## Metrics",
        "",
        "| column | meaning | unit |",
        "|---|---|---|",
    ]
    examples = {
        "hit": "top1, top3, top5, top10 (topK)",
        "recall": "recall_at_1 … recall_at_100 (recall_at_K)",
        "ndcg": "ndcg_at_10 (ndcg_at_K)",
        "mrr": "mrr",
    }
    for kind, (meaning, unit) in _METRIC_KINDS.items():
        lines.append(f"| {examples[kind]} | {meaning.format(k='K')} | {unit} |")
    lines.append(
        "| <metric>_low, <metric>_high | ends of the 95% interval of the metric over queries (its spec's interval "
        "method) | the metric's |"
    )
    lines += ["", "## Other columns", "", "| column | meaning | unit |", "|---|---|---|"]
    lines += [f"| {c.name} | {c.meaning} | {c.unit}{' (whole number)' if c.integer else ''} |" for c in _OTHER]
    return "\n".join(lines) + "\n"


if __name__ == "__main__":
    print(markdown(), end="")
