"""Diagnostics of a path that need no model.

``kl_to_target``: KL(x1 ‖ x_t) along a path, averaged over the prior — the KL-flow paper's
Figure 2 argument. A path that keeps this large for longer leaves the denoiser more to
infer at each t, which the paper links to better sample quality at large V.
"""

from __future__ import annotations

import torch
from torch import Tensor

from pathbench.core.errors import ConfigError
from pathbench.paths.base import SimplexPath


def kl_to_target(path: SimplexPath, vocab_size: int, times: Tensor, samples: int, *,
                 generator: torch.Generator | None = None,
                 dtype: torch.dtype = torch.float64) -> Tensor:
    """KL(x1 ‖ x_t) per prior sample and time, in nats. Returns (len(times), samples).

    x0 ~ p0, a token i ~ U{0..V-1} per sample, x1 = (1-β)e_i + β/V; KL = Σ_k x1_k log(x1_k/x_t,k)
    with 0·log 0 = 0 (β = 0 is allowed for paths that permit it).
    """
    if not path.on_simplex:
        raise ConfigError(f"path {type(path).__name__} does not live on the simplex: KL(x1‖x_t) is undefined")
    if vocab_size < 2:
        raise ConfigError(f"vocab = {vocab_size} must be >= 2")
    ids = torch.randint(vocab_size, (samples,), generator=generator)
    z0 = path.sample_prior((samples, vocab_size), generator=generator, dtype=dtype)
    z1 = path.target(ids, vocab_size, dtype)
    x1 = path.to_probs(z1)
    log_x1 = torch.where(x1 > 0, torch.log(x1), torch.zeros_like(x1))
    rows = []
    for t in times.tolist():
        log_xt = path.log_probs(path.interpolate(z0, z1, t))
        terms = torch.where(x1 > 0, x1 * (log_x1 - log_xt), torch.zeros_like(x1))
        rows.append(terms.sum(-1))
    return torch.stack(rows)


def kl_times(points: int) -> Tensor:
    """``points`` evenly spaced times strictly inside (0, 1)."""
    if points < 2:
        raise ConfigError(f"points = {points} must be >= 2")
    return torch.linspace(0.0, 1.0, points + 2, dtype=torch.float64)[1:-1]


__all__ = ["kl_to_target", "kl_times"]
