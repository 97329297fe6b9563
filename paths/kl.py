"""KL-geodesic path: a straight line in logit space (Sevriugov & Oseledets, ICLR 2026).

    l_t = (1-t)·l0 + t·l1,   x_t = softmax(l_t),   l = log x
    u_t(l | l1) = dl/dt = (l1 - l) / (1-t)
    E_w[l1] = w·log(1-β+β/V) + (1-w)·log(β/V)          (β > 0 keeps l1 finite)

x_t is the e-geodesic (exponential family mixture) between x0 and x1, i.e. the curve along
which KL divergences combine linearly; it keeps x_t far from x1 for much longer than the
linear or Fisher-Rao paths when V is large (paper, Figure 2).

Because u is affine in l1 and the conditional line is straight in l, an Euler step in l with
the exact target lands on l1 exactly. The reference implementation instead updates on a grid
uniform in τ = -log(1-t), where the ODE reads dl/dτ = E_w[l1] - l and its Euler step is
l ← (1-Δτ)·l + Δτ·E_w[l1]; ``update="tau_euler"`` reproduces that scheme.
"""

from __future__ import annotations

import math

import torch
from torch import Tensor

from pathbench.core.errors import ConfigError
from pathbench.core.registry import PATHS
from pathbench.paths.base import TokenAffinePath, expand_time, exponential_, sample_log_dirichlet1, softmax_into
from pathbench.paths.posterior import exact_posterior_log

UPDATES = ("euler", "tau_euler")


@PATHS.register("kl", "kl_geodesic")
class KLPath(TokenAffinePath):
    """Straight line in logit coordinates: z = l (any additive shift; x = softmax(l))."""

    beta_open_low = True
    shift_invariant = True

    def __init__(self, beta: float | None = None, t_max: float = 1.0, grid: str = "uniform",
                 update: str = "euler") -> None:
        super().__init__(beta, t_max, grid)
        if update not in UPDATES:
            raise ConfigError(f"unknown kl update '{update}'; known: {', '.join(UPDATES)}")
        if update == "tau_euler" and self.t_max >= 1.0:
            raise ConfigError("kl update 'tau_euler' needs t_max < 1 (Δτ is infinite at t = 1)")
        self.update = update

    def options(self) -> dict[str, float | str]:
        return {**super().options(), "update": self.update}

    def sample_prior(self, shape, *, generator=None, dtype=torch.float64, device=None) -> Tensor:
        return sample_log_dirichlet1(shape, generator=generator, dtype=dtype, device=device)

    def target_levels(self, vocab_size: int) -> tuple[float, float]:
        return math.log(self.beta / vocab_size), math.log1p(-self.beta + self.beta / vocab_size)

    def prior_(self, out: Tensor, generator=None) -> Tensor:
        # log E, E ~ Exp(1): log x0 up to its per-position logsumexp, which softmax never sees
        return exponential_(out, generator).clamp_min_(torch.finfo(out.dtype).tiny).log_()

    def interpolate(self, z0: Tensor, z1: Tensor, t) -> Tensor:
        t = expand_time(t, z0)
        return (1.0 - t) * z0 + t * z1

    def step_fraction(self, t, h):
        if self.update == "euler":
            return super().step_fraction(t, h)
        # τ-Euler: l ← l + Δτ·(E - l), Δτ = log((1-t)/(1-t-h))
        if isinstance(t, Tensor) or isinstance(h, Tensor):
            return torch.log((1.0 - t) / (1.0 - t - h))
        return math.log((1.0 - t) / (1.0 - t - h))

    def to_probs(self, z: Tensor) -> Tensor:
        return torch.softmax(z, dim=-1)

    def model_input_(self, z: Tensor, out: Tensor) -> Tensor:
        return softmax_into(z, out)

    def log_probs(self, z: Tensor) -> Tensor:
        return torch.log_softmax(z, dim=-1)

    def token_log_likelihood(self, z_t: Tensor, t: float) -> Tensor:
        """Dirichlet(1) noise pulled back through x0 = normalize((x_t / x1^t)^(1/(1-t))): see
        :func:`pathbench.paths.posterior.exact_posterior_log` (a uniform prior leaves the likelihood)."""
        return exact_posterior_log(self.log_probs(z_t.double()), t, self.beta)

    def prob_velocity(self, z: Tensor, v: Tensor) -> Tensor:
        x = self.to_probs(z)
        return x * (v - (x * v).sum(-1, keepdim=True))
