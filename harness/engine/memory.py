"""How many samples a sampler may draw at once within a memory budget.

A sampler's peak memory grows linearly in the batch: per sample row it holds its (S, V) state
tensors and the model's logits — counted by each method as ``Method.sampling_bsv``, float32
(S, V) units measured with ``pathbench study bench sample`` (a simplex path: z, the model input and
the logits, ≈ 3.4; dfm and sedd ≈ 1.2, the logits and the float64 blocks of their draws) — plus the
backbone's activations for one forward pass:

    bytes per row ≈ 4·S·V·sampling_bsv + b·S·(d·(6 + 2·mlp_ratio) + n_head·S)

with b the weights' element size (the n_head·S term is the attention matrix of the math
kernel; fused kernels need less). The sampler's batch is the requested one, cut to
⌊budget / bytes per row⌋ where that is smaller. The budget is the option ``memory_gb`` or,
by default, 90 % of the free memory of the CUDA device when sampling starts; on the CPU the
default is no cap (a batch is what was asked). The estimate is a formula of the sizes alone,
so the same budget always gives the same batch (draws that follow the batch size stay
reproducible); ``pathbench study bench sample --memory-gb`` prints the measured peak beside it.
"""

from __future__ import annotations

import logging

import torch

from pathbench.core.errors import ConfigError

log = logging.getLogger(__name__)

#: the part of a CUDA device's free memory the default budget takes (the rest: allocator slack)
FREE_FRACTION = 0.9


def check_memory_gb(memory_gb: float | str | None) -> float | str | None:
    """``memory_gb`` when it is a budget: a number of GB > 0, "auto", "none" or None (auto)."""
    if memory_gb is None or memory_gb in ("auto", "none"):
        return memory_gb
    if isinstance(memory_gb, bool) or not isinstance(memory_gb, (int, float)) or not memory_gb > 0:
        raise ConfigError(f"memory_gb = {memory_gb!r} must be a number of GB > 0, 'auto' or 'none'")
    return memory_gb


def memory_budget(memory_gb: float | str | None, device: torch.device | str) -> int | None:
    """Bytes a sampler may use: ``memory_gb`` GB, or None / "auto" = 90 % of the free memory of
    a CUDA device and no cap elsewhere; "none" = no cap."""
    check_memory_gb(memory_gb)
    if memory_gb is None or memory_gb == "auto":
        device = torch.device(device)
        if device.type != "cuda":
            return None
        free, _ = torch.cuda.mem_get_info(device)
        return int(FREE_FRACTION * free)
    if memory_gb == "none":
        return None
    return int(memory_gb * 1e9)


def bytes_per_row(method, model: torch.nn.Module, seq_len: int) -> int:
    """The estimated peak memory of one sample row of ``method``'s sampler on ``model``."""
    cfg = model.config
    return int(method.sampling_bytes_per_row(cfg, seq_len)
               + next(model.parameters()).element_size() * seq_len
               * (cfg.d_model * (6 + 2 * cfg.mlp_ratio) + cfg.n_head * seq_len))


def fit_batch(method, model: torch.nn.Module, seq_len: int, requested: int, budget: int | None,
              seeding: str = "batch") -> int:
    """The batch to sample with: ``requested``, or fewer rows where they would not fit ``budget``
    (with batch streams the draws then follow the smaller batch: said as a warning)."""
    if budget is None:
        return requested
    per_row = bytes_per_row(method, model, seq_len)
    fits = budget // per_row
    if fits < 1:
        raise ConfigError(f"one sample of S = {seq_len} needs about {per_row / 1e9:.2f} GB, more than the "
                          f"memory budget of {budget / 1e9:.2f} GB; raise memory_gb or shorten the samples")
    if fits < requested:
        log.log(logging.INFO if seeding == "row" else logging.WARNING,
                "memory budget %.2f GB: sampling %d rows at a time (of %d asked; about %.2f GB a row)%s",
                budget / 1e9, fits, requested, per_row / 1e9,
                "" if seeding == "row" else "; with seeding=batch the draws follow this batch size "
                "(seeding=row: they would not)")
    return int(min(requested, fits))
