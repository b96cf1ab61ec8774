"""A fake NVML (the `pynvml` module's functions that embedlab calls) for nodes this machine
does not have: a mixed-GPU node, a GPU in MIG mode. Each device is a dict with its UUID,
name, PCI bus id, total and used bytes, the pids it lists with their usage, and its MIG
instances (the same shape); tests change `used` / `procs` while a sampler runs."""

from __future__ import annotations

import types
from typing import Any

GIB = 1024**3
NVML_DEVICE_MIG_ENABLE = 1


class NVMLError(Exception):
    pass


def device(uuid: str, name: str, bus: str, total_gib: float, used_gib: float = 0.0, migs: list[dict[str, Any]] | None = None) -> dict[str, Any]:
    return {"uuid": uuid, "name": name, "bus": bus, "total": int(total_gib * GIB), "used": int(used_gib * GIB), "procs": {}, "migs": migs}


def fake_nvml(devices: list[dict[str, Any]], max_mig: int = 7) -> types.SimpleNamespace:
    """A pynvml stand-in over `devices` (handles are the dicts themselves)."""
    calls: list[str] = []

    def by_index(i: int) -> dict[str, Any]:
        return devices[i]

    def mig_mode(handle: dict[str, Any]) -> list[int]:
        if handle.get("migs") is None:
            raise NVMLError("Not Supported")
        return [NVML_DEVICE_MIG_ENABLE, NVML_DEVICE_MIG_ENABLE]

    def mig_by_index(handle: dict[str, Any], slot: int) -> dict[str, Any]:
        migs = handle.get("migs") or []
        if slot >= len(migs) or migs[slot] is None:
            raise NVMLError("Not Found")
        return migs[slot]

    def procs(handle: dict[str, Any]) -> list[types.SimpleNamespace]:
        return [types.SimpleNamespace(pid=pid, usedGpuMemory=used) for pid, used in handle["procs"].items()]

    return types.SimpleNamespace(
        NVMLError=NVMLError, NVML_DEVICE_MIG_ENABLE=NVML_DEVICE_MIG_ENABLE, calls=calls,
        nvmlInit=lambda: calls.append("init"), nvmlShutdown=lambda: calls.append("shutdown"),
        nvmlDeviceGetCount=lambda: len(devices), nvmlDeviceGetHandleByIndex=by_index,
        nvmlDeviceGetPciInfo=lambda h: types.SimpleNamespace(busId=h["bus"].encode()),
        nvmlDeviceGetUUID=lambda h: h["uuid"], nvmlDeviceGetName=lambda h: h["name"],
        nvmlDeviceGetMemoryInfo=lambda h: types.SimpleNamespace(total=h["total"], used=h["used"], free=h["total"] - h["used"]),
        nvmlDeviceGetComputeRunningProcesses=procs, nvmlDeviceGetGraphicsRunningProcesses=lambda h: [],
        nvmlDeviceGetMigMode=mig_mode, nvmlDeviceGetMaxMigDeviceCount=lambda h: max_mig,
        nvmlDeviceGetMigDeviceHandleByIndex=mig_by_index,
        nvmlSystemGetDriverVersion=lambda: "580.00.00", nvmlSystemGetCudaDriverVersion_v2=lambda: 13000,
    )
