"""Devices: the bf16 peak MFU is measured against, only for accelerators it is known for."""

import torch

from pathbench.core.devices import bf16_peak_flops


def test_known_gpus_by_name_and_nothing_for_the_cpu(monkeypatch):
    assert bf16_peak_flops("cpu") is None
    monkeypatch.setattr(torch.cuda, "is_available", lambda: True)
    for name, peak in (("NVIDIA H100 80GB HBM3", 989e12), ("NVIDIA H100 PCIe", 756e12), ("NVIDIA H100 NVL", 835e12),
                       ("NVIDIA H200", 989e12), ("NVIDIA A100-SXM4-80GB", 312e12), ("Some Future GPU", None)):
        monkeypatch.setattr(torch.cuda, "get_device_name", lambda device=None, name=name: name)
        assert bf16_peak_flops("cuda") == peak, name
