"""Linear (mixture) path on the simplex and its Euclidean sibling (FLM).

linear:     x_t = (1-t)·x0 + t·x1,   x0 ~ Dirichlet(1),  x1 = (1-β)e_i + β/V
            u_t(x | x1) = (x1 - x) / (1-t),   E_w[x1] = (1-β)·w + β/V
euclidean:  the same straight line in R^V from a Gaussian x0 ~ N(0, σ²I) to the one-hot
            (Lee, Boffi & Kim 2026, "FLM"); x_t leaves the simplex, so the denoiser reads
            x_t itself and KL(x1‖x_t) does not exist.
"""

from __future__ import annotations

import torch
from torch import Tensor

from pathbench.core.errors import ConfigError
from pathbench.core.registry import PATHS
from pathbench.core.rng import normal_
from pathbench.paths.base import TokenAffinePath, expand_time, exponential_, sample_log_dirichlet1


@PATHS.register("linear", "mixture")
class LinearPath(TokenAffinePath):
    """Straight line in probability coordinates: z = x."""

    def target_levels(self, vocab_size: int) -> tuple[float, float]:
        return self.beta / vocab_size, 1.0 - self.beta + self.beta / vocab_size

    def prior_(self, out: Tensor, generator=None) -> Tensor:
        exponential_(out, generator)  # E ~ Exp(1); x0 = E / ΣE ~ Dirichlet(1)
        return out.div_(out.sum(-1, keepdim=True))

    def sample_prior(self, shape, *, generator=None, dtype=torch.float64, device=None) -> Tensor:
        return sample_log_dirichlet1(shape, generator=generator, dtype=dtype, device=device).exp()

    def interpolate(self, z0: Tensor, z1: Tensor, t) -> Tensor:
        t = expand_time(t, z0)
        return (1.0 - t) * z0 + t * z1

    def to_probs(self, z: Tensor) -> Tensor:
        return z

    def log_probs(self, z: Tensor) -> Tensor:
        return torch.log(z)

    def prob_velocity(self, z: Tensor, v: Tensor) -> Tensor:
        return v

    def token_log_likelihood(self, z_t: Tensor, t: float) -> Tensor:
        """x0 = (x_t - t·x1(i)) / (1-t) has the constant Dirichlet(1) density wherever it is on the
        simplex, with the same Jacobian for every i, so p(x_t | i) is a constant where
        x_t,i >= t·hi (x0,i >= 0; the coordinates off i hold for every i) and 0 elsewhere."""
        lo, hi = self.target_levels(z_t.shape[-1])
        inside = z_t.double() >= t * hi * (1 - 1e-9)  # rounding of the noising, never a real margin
        return torch.where(inside, 0.0, -torch.inf).double()


@PATHS.register("euclidean", "flm")
class EuclideanPath(LinearPath):
    """FLM: straight line in R^V from N(0, σ²I) to the one-hot (β defaults to 0)."""

    on_simplex = False
    default_beta = 0.0

    def __init__(self, beta: float | None = None, t_max: float = 1.0, grid: str = "uniform",
                 sigma: float = 1.0) -> None:
        super().__init__(beta, t_max, grid)
        if not sigma > 0:
            raise ConfigError(f"sigma = {sigma!r} must be > 0")
        self.sigma = float(sigma)

    def options(self) -> dict[str, float | str]:
        return {**super().options(), "sigma": self.sigma}

    def sample_prior(self, shape, *, generator=None, dtype=torch.float64, device=None) -> Tensor:
        return normal_(torch.empty(shape, dtype=dtype, device=device), 0.0, 1.0, generator).mul_(self.sigma)

    def prior_(self, out: Tensor, generator=None) -> Tensor:
        return normal_(out, 0.0, self.sigma, generator)

    def to_probs(self, z: Tensor) -> Tensor:
        raise ConfigError("path 'euclidean' does not live on the simplex: x_t has no probabilities")

    def log_probs(self, z: Tensor) -> Tensor:
        raise ConfigError("path 'euclidean' does not live on the simplex: KL(x1‖x_t) is undefined")

    def model_input(self, z: Tensor) -> Tensor:
        return z

    def token_log_likelihood(self, z_t: Tensor, t: float) -> Tensor:
        """x0 = (x_t - t·x1(i)) / (1-t) ~ N(0, σ²I): -‖x_t - t·x1(i)‖² / (2σ²(1-t)²), whose part
        that depends on i is t·(hi - lo)·x_t,i / (σ²(1-t)²) (every x1(i) has the same norm)."""
        lo, hi = self.target_levels(z_t.shape[-1])
        return z_t.double() * (t * (hi - lo) / (self.sigma * (1.0 - t)) ** 2)
