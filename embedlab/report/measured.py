"""The run's measurements beside the reference article's reported numbers: accuracy,
speed against model size, memory (GPU or host RSS, never mixed) and the machine. The
article's numbers are read from data/seed/reported.csv (`embedlab.report.reported`)."""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
import pandas as pd

from embedlab.evaluation.results import CUE_BACKENDS, Report, gpu_rows
from embedlab.models import MODELS
from embedlab.report.reported import ARTICLE_REPORTED

REPORTED_LABEL = "reported in the article (GPU, not measured here)"
MEASURED_LABEL = "measured here"

# What the run measures of GPU memory (runs.csv columns -> label) and, on a CPU run, of host
# memory (docs/measurement.md has the table of what each includes). The article's figure is
# `torch.cuda.memory_allocated()` after load minus before, in its notebook process (GiB,
# printed as "GB"). The same call in the worker is `torch_allocated_load_gib`: like with like
# (with vLLM it also holds the KV cache, which a sentence-transformers process has none of).
# `gpu_mem_load_gib` is NVML's and includes the CUDA context (and with vLLM the KV cache and
# CUDA graphs): larger by construction, not the article's measure.
ARTICLE_MEASURE = "torch_allocated_load_gib"
GPU_MEMORY_MEASURES: dict[str, str] = {
    "weights_gib": "weights",
    ARTICLE_MEASURE: "torch allocated, after load − before (the article's measure)",
    "gpu_mem_load_gib": "load delta, NVML (CUDA context included)",
    "gpu_mem_peak_gib": "peak",
    "kv_cache_gib": "KV cache",
}
HOST_RSS_LABEL = "host RSS, CPU run"
HOST_MEMORY_MEASURES: dict[str, str] = {
    "weights_gib": "weights (parameter bytes, CPU run)",
    "host_rss_after_load_gib": f"after load ({HOST_RSS_LABEL})",
    "host_rss_peak_gib": f"peak ({HOST_RSS_LABEL})",
}
REPORTED_MEMORY_MEASURE = "GPU memory, reported (memory_allocated after load − before)"


MEMORY_SIDE_BY_SIDE = ("weights_gib", ARTICLE_MEASURE, "gpu_mem_load_gib", "gpu_mem_peak_gib", "host_rss_peak_gib")


def _values(frame: pd.DataFrame, column: str) -> pd.Series:
    """A column as floats, NaN where the frame does not have it (an older results folder)."""
    if column not in frame.columns:
        return pd.Series(np.nan, index=frame.index, dtype=float)
    return pd.to_numeric(frame[column], errors="coerce")


def _text(frame: pd.DataFrame, column: str) -> pd.Series:
    if column not in frame.columns:
        return pd.Series("", index=frame.index, dtype=object)
    return frame[column].fillna("").astype(str)


def on_gpu(runs: pd.DataFrame) -> pd.Series:
    """Per run row: whether GPU memory was measured (`results.gpu_rows`)."""
    return gpu_rows(runs)


def reported_beside_measured(report: Report | pd.DataFrame, dataset: str = "seed") -> pd.DataFrame:
    """The article's reported table and our measurements (a Report or its summary) on the
    same data set, one row per (model, source); `source` says which is which.

    Memory stays in separately named columns, so a CPU run's host RSS never sits in the
    article's GPU column: measured rows fill `weights_gib`, `torch_allocated_load_gib` (the
    article's own measure, taken in the worker), `gpu_mem_load_gib`, `gpu_mem_peak_gib` (NaN
    on a CPU run) and `host_rss_peak_gib`; reported rows fill `reported_gpu_memory_gib` only."""
    summary = report.summary() if isinstance(report, Report) else report
    ours = summary[summary["dataset"] == dataset]
    measured = pd.DataFrame(
        {
            "model": ours["model"],
            "source": MEASURED_LABEL,
            "dataset": dataset,
            "n_queries": ours["n_queries"],
            "top1": ours["top1"],
            "top1_low": ours["top1_low"],
            "top1_high": ours["top1_high"],
            "top3": ours["top3"],
            "top3_low": ours["top3_low"],
            "top3_high": ours["top3_high"],
            "texts_per_s": _values(ours, "texts_per_s"),
            **{c: _values(ours, c) for c in MEMORY_SIDE_BY_SIDE},
            "reported_gpu_memory_gib": np.nan,
            "dim": _values(ours, "dim"),
        }
    )
    reported = pd.DataFrame(
        {
            "model": ARTICLE_REPORTED["article_name"],
            "source": REPORTED_LABEL,
            "dataset": "seed",
            "n_queries": 8,
            "top1": ARTICLE_REPORTED["top1"],
            "top1_low": np.nan,
            "top1_high": np.nan,
            "top3": ARTICLE_REPORTED["top3"],
            "top3_low": np.nan,
            "top3_high": np.nan,
            "texts_per_s": ARTICLE_REPORTED["texts_per_s"],
            **{c: np.nan for c in MEMORY_SIDE_BY_SIDE},
            "reported_gpu_memory_gib": ARTICLE_REPORTED["gpu_memory_gb"],
            "dim": ARTICLE_REPORTED["dim"],
        }
    )
    return pd.concat([measured, reported], ignore_index=True)


def _memory_dataset(runs: pd.DataFrame, dataset: str | None) -> str:
    if dataset is not None:
        return dataset
    return "traps-zh" if "traps-zh" in set(runs["dataset"]) else str(runs["dataset"].iloc[0])


def speed_table(report: Report, dataset: str | None = None) -> pd.DataFrame:
    """Load time, texts/s, tokens/s and memory per model against its size (parameters from
    the model record), from the run's records, plus the article's reported rows.

    `texts_per_s` is the median timed encode of the data set's first texts (latency
    protocol); `throughput_*` come from the separate throughput pass when it ran. Memory:
    GPU columns as the run wrote them (NaN on a CPU run), host RSS in its own columns, the
    article's GPU figure in `reported_gpu_memory_gib` (see `memory_frame` for plotting)."""
    runs = report.runs
    dataset = _memory_dataset(runs, dataset)
    runs = runs[(runs["dataset"] == dataset) & (runs["status"] == "ok") & (~_text(runs, "backend").isin(CUE_BACKENDS))]
    params = {m["name"]: m.get("params_m") for m in report.config.get("models", [])}
    numeric = [
        "load_s",
        "texts_per_s",
        "throughput_texts_per_s",
        "throughput_tokens_per_s",
        *dict.fromkeys([*GPU_MEMORY_MEASURES, *HOST_MEMORY_MEASURES]),
        "dim",
        "n_timed",
        "latency_median_s",
    ]
    measured = pd.DataFrame({"model": runs["model"].to_numpy(), "source": MEASURED_LABEL, "dataset": dataset})
    for col in numeric:
        measured[col] = _values(runs, col).to_numpy()
    for col in ("gpu_device", "gpu_mem_source", "kv_cache_note", "dtype", "max_length", "cached", "measured_at"):
        measured[col] = runs[col].to_numpy() if col in runs.columns else None
    measured["params_m"] = [params.get(m) for m in measured["model"]]
    reported = pd.DataFrame(
        {
            "model": ARTICLE_REPORTED["article_name"],
            "source": REPORTED_LABEL,
            "dataset": "seed (30 texts)",
            "texts_per_s": ARTICLE_REPORTED["texts_per_s"],
            "latency_median_s": ARTICLE_REPORTED["time_30_texts_s"],
            "reported_gpu_memory_gib": ARTICLE_REPORTED["gpu_memory_gb"],
            "dim": ARTICLE_REPORTED["dim"],
            "params_m": [MODELS[m].params_m for m in ARTICLE_REPORTED["model"]],
            "n_timed": 30,
        }
    )
    return pd.concat([measured, reported], ignore_index=True)


# the long-format memory frame (`memory_frame`): one row per model and measure
MEMORY_FRAME_COLUMNS = [
    "model",
    "source",
    "device",
    "measure",
    "value_gib",
    "params_m",
    "gpu_device",
    "gpu_mem_source",
    "note",
]


def memory_frame(report: Report, dataset: str | None = None) -> pd.DataFrame:
    """Memory per model, long format (one row per model and measure, GiB), for plotting.

    A model whose run measured GPU memory gets its weights, load delta (after load −
    before), peak and KV cache (`device` "GPU"; a KV cache the engine did not allocate is
    left out and its `kv_cache_note` kept in `note`). A model run on CPU gets its host RSS
    after load and peak, labelled "host RSS, CPU run" (`device` "CPU"). The article's
    reported GPU figures are added (source REPORTED_LABEL, keyed by record name) only when
    some model here has GPU measurements: host RSS is never set beside them. Cue baselines
    (backends of CUE_BACKENDS) are left out."""
    runs = report.runs
    if runs.empty:
        return pd.DataFrame(columns=MEMORY_FRAME_COLUMNS)
    dataset = _memory_dataset(runs, dataset)
    runs = runs[
        (runs["dataset"] == dataset) & (runs["status"] == "ok") & (~_text(runs, "backend").isin(CUE_BACKENDS))
    ]  # cue baselines hold no model
    params = {m["name"]: m.get("params_m") for m in report.config.get("models", [])}
    gpu = on_gpu(runs)
    rows = []
    for i, (_, run) in enumerate(runs.iterrows()):
        one = runs.iloc[[i]]
        measures = GPU_MEMORY_MEASURES if gpu.iloc[i] else HOST_MEMORY_MEASURES
        for col, label in measures.items():
            value = _values(one, col).iloc[0]
            note = _text(one, "kv_cache_note").iloc[0] if col == "kv_cache_gib" else ""
            if np.isnan(value) and not note:
                continue
            rows.append(
                {
                    "model": run["model"],
                    "source": MEASURED_LABEL,
                    "device": "GPU" if gpu.iloc[i] else "CPU",
                    "measure": label,
                    "value_gib": value,
                    "params_m": params.get(run["model"]),
                    "gpu_device": _text(one, "gpu_device").iloc[0],
                    "gpu_mem_source": _text(one, "gpu_mem_source").iloc[0],
                    "note": note,
                }
            )
    if gpu.any():
        for rec in ARTICLE_REPORTED.itertuples():
            rows.append(
                {
                    "model": rec.model,
                    "source": REPORTED_LABEL,
                    "device": "GPU",
                    "measure": REPORTED_MEMORY_MEASURE,
                    "value_gib": rec.gpu_memory_gb,
                    "params_m": MODELS[rec.model].params_m,
                    "gpu_device": "not stated",
                    "gpu_mem_source": "torch.cuda.memory_allocated",
                    "note": f"{rec.article_name}, the article's table",
                }
            )
    return pd.DataFrame(rows, columns=MEMORY_FRAME_COLUMNS)


def memory_note(frame: pd.DataFrame) -> str:
    """Markdown saying what the memory figures are: GPU memory of which device (and how it
    was read), or host RSS of a CPU run, and where the article's numbers are."""
    measured = frame[frame["source"] == MEASURED_LABEL]
    if measured.empty:
        return "No memory measurements in this run's records."
    lines = []
    gpu = measured[measured["device"] == "GPU"]
    cpu = measured[measured["device"] == "CPU"]
    if not gpu.empty:
        devices = ", ".join(sorted({d for d in gpu["gpu_device"] if d})) or "device not recorded"
        sources = ", ".join(sorted({s for s in gpu["gpu_mem_source"] if s})) or "not recorded"
        lines.append(
            f"**GPU run** ({', '.join(dict.fromkeys(gpu['model']))}): GPU memory on {devices}, read per "
            f"`{sources}` (`process` = this worker's own usage, `device` = the whole device's used memory). "
            "`weights` is the engine's parameter bytes, `torch allocated` what torch's allocator holds after load "
            "minus before, `load delta` what loading added on the device by NVML (the CUDA context included), `peak` "
            "the highest NVML reading (vLLM's profiling batch included), `KV cache` what the engine allocated for it."
        )
        notes = {f"{m}: {n}" for m, n in zip(gpu["model"], gpu["note"]) if n}
        if notes:
            lines.append("KV cache: " + "; ".join(sorted(notes)) + ".")
        lines.append(
            "The article's figures (hatched, *reported*) are `torch.cuda.memory_allocated()` after load minus "
            "before in its own process: compare them with `torch allocated` (the same call, in the worker; with vLLM "
            "it also holds the KV cache) and `weights`. `load delta` and `peak` include the CUDA context, so they are "
            "larger by construction (docs/measurement.md)."
        )
    if not cpu.empty:
        lines.append(
            f"**{HOST_RSS_LABEL}** ({', '.join(dict.fromkeys(cpu['model']))}): no GPU was used, so no GPU memory "
            "was measured; the figures are the resident memory of the worker process that held the model. "
            "Host RSS is not GPU memory, so the article's GPU figures are not drawn beside it (they are in the "
            "table of reported numbers)."
        )
    return "\n\n".join(lines)


def machine_table(report: Report) -> pd.DataFrame:
    """The machine and package versions behind a run, one row per fact."""
    hw = report.environment.get("hardware", {})
    pkgs = report.environment.get("packages", {})
    rows = [(k, str(v)) for k, v in hw.items()] + [(f"package {k}", v) for k, v in sorted(pkgs.items())]
    rows.append(("finished", str(report.environment.get("finished", ""))))
    return pd.DataFrame(rows, columns=["fact", "value"])


def missing_measurements(frame: pd.DataFrame, columns: Sequence[str]) -> str:
    """Markdown naming the measurements no measured model has (e.g. tokens/s from a backend
    without a tokenizer), so a blank plot is explained by the data, not by prose."""
    measured = frame[frame["source"] == MEASURED_LABEL]
    notes = []
    for col in columns:
        missing = measured.loc[measured[col].isna() if col in measured else measured.index, "model"].tolist()
        if missing:
            notes.append(f"- `{col}`: not measured for {', '.join(missing)}")
    return "All measurements present." if not notes else "Not in this run's records:\n\n" + "\n".join(notes)
