"""Which GPU a row's memory comes from, on nodes this machine does not have (a fake NVML):
a MIG instance named in CUDA_VISIBLE_DEVICES is found and read as itself, and on a node of
different GPUs with CUDA_DEVICE_ORDER unset the label and the numbers of a row always name
the same device (the one the process computes on), or the row has neither."""

from __future__ import annotations

import os
import sys

import numpy as np
import pytest

import embedlab as el
from embedlab.run import probe
from embedlab.types import EncodeTask
from tests.fake_encoders import fake_spec
from tests.fake_nvml import GIB, device, fake_nvml

A100_MIG = device(
    "GPU-a100-0000", "NVIDIA A100-SXM4-40GB", "00000000:01:00.0", 40.0, used_gib=12.0,
    migs=[
        device("MIG-1111-aaaa", "NVIDIA A100-SXM4-40GB MIG 3g.20gb", "", 19.5, used_gib=0.5),
        None,  # an empty slot
        device("MIG-2222-bbbb", "NVIDIA A100-SXM4-40GB MIG 2g.10gb", "", 9.75, used_gib=0.25),
    ],
)


@pytest.fixture
def node(monkeypatch: pytest.MonkeyPatch):
    """Install a fake NVML over the given devices as `pynvml`, with a clean CUDA environment."""
    for var in ("CUDA_VISIBLE_DEVICES", "CUDA_DEVICE_ORDER", "EMBEDLAB_GPU"):
        monkeypatch.delenv(var, raising=False)
    monkeypatch.setattr(probe, "_torch_device_uuid", lambda: None)

    def install(*devices):
        nvml = fake_nvml([dict(d, procs=dict(d["procs"])) for d in devices])
        monkeypatch.setitem(sys.modules, "pynvml", nvml)
        return nvml

    return install


def test_a_mig_instance_in_cuda_visible_devices_is_found_and_read_as_itself(node, monkeypatch: pytest.MonkeyPatch) -> None:
    nvml = node(A100_MIG, device("GPU-h100-1111", "NVIDIA H100 80GB HBM3", "00000000:41:00.0", 79.6))
    # CUDA sees the MIG instances of a GPU in MIG mode, not the GPU itself
    assert [(d.uuid, d.mig) for d in probe.cuda_devices(nvml)] == [("MIG-1111-aaaa", 0), ("MIG-2222-bbbb", 2), ("GPU-h100-1111", None)]
    monkeypatch.setenv("CUDA_VISIBLE_DEVICES", "MIG-2222-bbbb")
    found = probe.current_gpu()
    assert found is not None and found.uuid == "MIG-2222-bbbb" and found.index == 0 and found.mig == 2
    assert found.total_gib == pytest.approx(9.75) and found.label() == "NVIDIA A100-SXM4-40GB MIG 2g.10gb (nvml 0 MIG 2, MIG-2222-bbbb)"
    assert probe.gpu_info()["gpu_device"] == found.label()
    with probe.MemorySampler(interval_s=60) as sampler:
        nvml.nvmlDeviceGetHandleByIndex(0)["migs"][2]["used"] = int(3.25 * GIB)  # the model loads on the instance
        assert sampler.mark("after_load") == (None, pytest.approx(3.25))  # MIG: no per-process accounting
    # the instance's own memory, not the parent GPU's 12 GiB nor the other instance's
    assert sampler.device.uuid == "MIG-2222-bbbb" and sampler.device_peak_gib == pytest.approx(3.25)
    assert sampler.process_peak_gib is None
    # torch reports a MIG instance's UUID without its prefix
    assert probe.resolve_visible_device([{"uuid": "MIG-1111-aaaa", "pci_bus_id": ""}], None, None, "1111-aaaa") == (0, "torch device 0 UUID")


def test_the_legacy_mig_form_is_a_clear_error(node, monkeypatch: pytest.MonkeyPatch) -> None:
    node(A100_MIG)
    monkeypatch.setenv("CUDA_VISIBLE_DEVICES", "MIG-GPU-a100-0000/1/0")
    with pytest.raises(ValueError, match="MIG-GPU-<uuid>/<gi>/<ci> form is not supported"):
        probe.current_gpu()


MIXED = (
    device("GPU-a100-0000", "NVIDIA A100 80GB PCIe", "00000000:01:00.0", 80.0, used_gib=30.0),  # another user's job
    device("GPU-h100-1111", "NVIDIA H100 80GB HBM3", "00000000:41:00.0", 79.6, used_gib=0.5),
)


@pytest.mark.parametrize("visible", [None, "0"])
def test_a_mixed_node_without_device_order_settles_on_the_device_holding_the_process(node, visible) -> None:
    """CUDA's default order is fastest first: device 0 is the H100 although the A100 comes
    first on the PCI bus. The old sampler read the A100 (assumed PCI order) and the row then
    took torch's device name: an H100 label on A100 numbers."""
    nvml = node(*MIXED)
    if visible is not None:
        os.environ["CUDA_VISIBLE_DEVICES"] = visible
    with probe.MemorySampler(interval_s=60) as sampler:
        assert sampler.device is None and "CUDA_DEVICE_ORDER is not PCI_BUS_ID" in sampler.unsettled
        assert sampler.mark("before") is None
        h100 = nvml.nvmlDeviceGetHandleByIndex(1)
        h100["procs"][os.getpid()] = int(1.5 * GIB)  # the model loads on the H100
        h100["used"] = int(2.0 * GIB)
        assert sampler.mark("after_load") == (pytest.approx(1.5), pytest.approx(2.0))
    assert sampler.device.uuid == "GPU-h100-1111" and sampler.device.how.startswith("the only device holding this process's memory")
    assert sampler.marked("before") == (None, pytest.approx(0.5))  # the H100's reading before load, kept while unsettled
    assert sampler.process_peak_gib == pytest.approx(1.5) and sampler.device_peak_gib == pytest.approx(2.0)


def test_a_homogeneous_node_keeps_one_device_from_the_start(node, monkeypatch: pytest.MonkeyPatch) -> None:
    node(device("GPU-h100-0000", "NVIDIA H100 80GB HBM3", "00000000:01:00.0", 79.6), device("GPU-h100-1111", "NVIDIA H100 80GB HBM3", "00000000:41:00.0", 79.6))
    monkeypatch.setenv("CUDA_VISIBLE_DEVICES", "1")
    with probe.MemorySampler(interval_s=60) as sampler:
        assert sampler.device is not None and sampler.device.uuid == "GPU-h100-1111"
    assert "every device is NVIDIA H100 80GB HBM3" in sampler.device.how


def _run_fake_model():
    from embedlab.run.runner import outcome_row, run_model

    task = EncodeTask("t", queries=["问题一", "问题二"], documents=[f"文档{i}" for i in range(6)], instruction="find it")
    settings = el.RunSettings(progress=False, isolate=False, repeats=1, timing_texts=4, throughput_texts=0)
    spec = fake_spec("fake")
    outcome = run_model(spec, [task], settings)
    assert outcome.status == "ok", outcome.error
    return outcome_row(spec, "t", outcome, outcome.extra.get("effective") or {})


def test_a_row_names_the_device_its_numbers_come_from(node, monkeypatch: pytest.MonkeyPatch) -> None:
    """torch computes on the H100 (its UUID, reported bare); the row's label, name, total and
    memory are all the H100's, on a node whose PCI order puts the busy A100 first."""
    node(*MIXED)
    monkeypatch.setattr(probe, "_torch_device_uuid", lambda: "h100-1111")
    row = _run_fake_model()
    assert row["gpu_device"] == "NVIDIA H100 80GB HBM3 (nvml 1, GPU-h100-1111)"
    assert row["gpu_name"] == "NVIDIA H100 80GB HBM3" and row["gpu_total_gib"] == pytest.approx(79.6)
    assert row["gpu_mem_source"] == "device" and row["gpu_mem_peak_gib"] == pytest.approx(0.5)  # not the A100's 30 GiB
    assert row["gpu_found_by"].startswith("torch device 0 UUID")


def test_a_row_whose_device_never_showed_has_no_gpu_label_or_numbers(node) -> None:
    """A model that never touches the GPU (the fake encoder) on the mixed node: nothing says
    which device CUDA would have used, so the row names none and measures none."""
    node(*MIXED)
    row = _run_fake_model()
    assert row["gpu_device"] == "" and "gpu_name" not in row
    assert np.isnan(row["gpu_mem_peak_gib"]) and np.isnan(row["gpu_mem_load_gib"])
    assert row["gpu_mem_source"].startswith("not measured: CUDA_DEVICE_ORDER is not PCI_BUS_ID")
