"""The ``--device`` value every command takes: cpu, cuda or cuda:N, checked against the machine;
the precision evaluation runs its models in; and the dense bf16 peak of known accelerators, for
model FLOPs utilisation (MFU)."""

from __future__ import annotations

import contextlib

from pathbench.core.errors import ConfigError


def resolve_device(name: str | None) -> str:
    """``name``, or cuda when available and cpu otherwise; an unknown or absent device is one line."""
    import torch  # deferred: the CLI parses its arguments before paying for torch

    if name is None:
        return "cuda" if torch.cuda.is_available() else "cpu"
    if name.split(":")[0] not in ("cpu", "cuda"):
        raise ConfigError(f"unknown device '{name}'; known: cpu, cuda")
    if name.startswith("cuda") and not torch.cuda.is_available():
        raise ConfigError("device 'cuda' asked for but no CUDA device is available; use --device cpu")
    return name


#: what :func:`inference_autocast` does on a CUDA device, as results record it
CUDA_INFERENCE = "bf16-autocast+tf32"


def inference_precision(device) -> str | None:
    """The precision label of sampling and scoring on ``device`` (None: the model's own dtype)."""
    return CUDA_INFERENCE if str(device).startswith("cuda") else None


def inference_autocast(device) -> contextlib.AbstractContextManager:
    """Sampling and scoring on a CUDA device run under bf16 autocast with TF32 matmuls (the
    tensor cores' rate); the callers keep float64 for categorical draws and NLL sums, and the
    sampler's state in float32. Elsewhere nothing changes (CPU results stay float32)."""
    if inference_precision(device) is None:
        return contextlib.nullcontext()
    import torch

    torch.backends.cuda.matmul.allow_tf32 = True
    torch.backends.cudnn.allow_tf32 = True
    return torch.autocast("cuda", dtype=torch.bfloat16)


#: dense bf16 tensor-core peak in FLOP/s (vendor data sheets, no sparsity), by a substring of
#: torch.cuda.get_device_name(); the first match wins (H100 NVL and PCIe before SXM)
BF16_PEAK_FLOPS = (("H200", 989e12), ("H100 NVL", 835e12), ("H100 PCIe", 756e12), ("H100", 989e12),
                   ("A100", 312e12), ("L40S", 362e12), ("A10G", 125e12), ("RTX 4090", 165e12))


def bf16_peak_flops(device) -> float | None:
    """The bf16 peak of ``device`` when it is a known CUDA GPU, else None (no MFU is claimed)."""
    import torch

    device = torch.device(device)
    if device.type != "cuda" or not torch.cuda.is_available():
        return None
    name = torch.cuda.get_device_name(device)
    return next((peak for key, peak in BF16_PEAK_FLOPS if key in name), None)
