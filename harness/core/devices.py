"""The ``--device`` value every command takes: cpu, cuda or cuda:N, checked against the machine."""

from __future__ import annotations

from harness.core.errors import ConfigError


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
