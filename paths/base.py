"""The contract every interpolation path between a noise prior and a data token obeys.

Notation (per token, V = vocabulary size): a path lives in its own coordinates ``z``
(probabilities for ``linear``, square roots on the unit sphere for ``fisher_rao``, logits
for ``kl``, real vectors for ``euclidean``); :meth:`SimplexPath.to_probs` maps them to the
simplex. All tensors are ``(..., V)``; time ``t`` is a float, a 0-dim tensor or ``(B,)``
(broadcast over the leading batch dimension).

* prior       z0 ~ p0                          :meth:`sample_prior`
* target      z1 = z((1-β) e_i + β/V · 1)      :meth:`target`
* path        z_t = ψ_t(z0, z1)                :meth:`interpolate`
* velocity    u_t(z_t | z1) = d/dt ψ_t         :meth:`cond_velocity`
* marginal    E_{i~w}[u_t(z_t | z1^(i))]       :meth:`expected_velocity`, w = p_θ(x1 | x_t)
* ODE step    z_{t+h} from z_t and a velocity  :meth:`step`

Every conditional velocity here points from z_t to z1 with "remaining distance over
remaining time", so stepping with the exact target lands on z1 exactly; the paths differ in
*which geometry* the straight line is drawn in.
"""

from __future__ import annotations

import math
from abc import ABC, abstractmethod
from typing import ClassVar

import torch
from torch import Tensor

from harness.errors import ConfigError

TimeLike = float | Tensor
GRIDS = ("uniform", "log")


def expand_time(t: TimeLike, like: Tensor) -> Tensor:
    """Broadcast ``t`` (float, 0-dim or (B,)) against ``like`` (B, ..., V)."""
    t = torch.as_tensor(t, dtype=like.dtype, device=like.device)
    if t.ndim == 0:
        return t
    if t.ndim != 1 or t.shape[0] != like.shape[0]:
        raise ValueError(f"t must be a scalar or shape ({like.shape[0]},), got {tuple(t.shape)}")
    return t.reshape(-1, *([1] * (like.ndim - 1)))


def check_unit_interval(name: str, value: float, *, open_low: bool = False,
                        open_high: bool = False) -> float:
    """Validate ``value`` in [0,1] (ends optionally open); a one-line ConfigError otherwise."""
    lo, hi = ("(" if open_low else "["), (")" if open_high else "]")
    bad = (
        not isinstance(value, (int, float))
        or math.isnan(value)
        or value < 0 or value > 1
        or (open_low and value == 0) or (open_high and value == 1)
    )
    if bad:
        raise ConfigError(f"{name} = {value!r} is outside {lo}0, 1{hi}")
    return float(value)


def smooth(p: Tensor, beta: float) -> Tensor:
    """(1-β)·p + β/V: label smoothing toward the uniform distribution. (..., V) -> (..., V)."""
    return (1.0 - beta) * p + beta / p.shape[-1]


def one_hot(ids: Tensor, vocab_size: int, dtype: torch.dtype = torch.float64) -> Tensor:
    """(...,) int -> (..., V) in ``dtype``."""
    return torch.nn.functional.one_hot(ids.long(), vocab_size).to(dtype)


def sample_log_dirichlet1(shape: tuple[int, ...], *, generator: torch.Generator | None = None,
                          dtype: torch.dtype = torch.float64,
                          device: torch.device | str | None = None) -> Tensor:
    """log x0 for x0 ~ Dirichlet(1, ..., 1) over the last axis, sampled in log space.

    x0 = E / ΣE with E_i ~ Exp(1); log E = log(-log U) for U ~ U(0, 1), so
    log x0 = log E - logsumexp(log E) never underflows even when V is large.
    """
    u = torch.rand(shape, generator=generator, dtype=dtype, device=device)
    tiny = torch.finfo(dtype).tiny
    log_e = torch.log((-torch.log(u.clamp_min(tiny))).clamp_min(tiny))
    return log_e - torch.logsumexp(log_e, dim=-1, keepdim=True)


def time_grid(nfe: int, t_max: float = 1.0, kind: str = "uniform",
              dtype: torch.dtype = torch.float64) -> Tensor:
    """(nfe+1,) times 0 = t_0 < ... < t_nfe = t_max.

    ``uniform`` spaces t evenly; ``log`` spaces τ = -log(1-t) evenly (the KL-flow
    reference grid), which crowds steps toward t_max and needs t_max < 1.
    """
    if not isinstance(nfe, int) or nfe < 1:
        raise ConfigError(f"NFE = {nfe!r} must be an integer >= 1")
    check_unit_interval("t_max", t_max, open_low=True)
    if kind == "uniform":
        return torch.linspace(0.0, t_max, nfe + 1, dtype=dtype)
    if kind == "log":
        if t_max >= 1.0:
            raise ConfigError("time grid 'log' needs t_max < 1 (τ = -log(1-t) is infinite at t = 1)")
        tau = torch.linspace(0.0, -math.log1p(-t_max), nfe + 1, dtype=dtype)
        return -torch.expm1(-tau)
    raise ConfigError(f"unknown time grid '{kind}'; known: {', '.join(GRIDS)}")


class SimplexPath(ABC):
    """An interpolation path from a noise prior to a (smoothed) one-hot token.

    Args:
        beta: target smoothing β, x1 = (1-β)e_i + β/V.
        t_max: where training time and sampling integration end (≤ 1).
        grid: the sampler's time grid, ``uniform`` or ``log``.
    """

    #: x_t is a distribution (KL(x1‖x_t) and log-probabilities exist).
    on_simplex: ClassVar[bool] = True
    #: β = 0 is allowed unless the geometry needs log(x1) finite.
    beta_open_low: ClassVar[bool] = False
    default_beta: ClassVar[float] = 0.01

    def __init__(self, beta: float | None = None, t_max: float = 1.0,
                 grid: str = "uniform") -> None:
        beta = self.default_beta if beta is None else beta
        self.beta = check_unit_interval("beta", beta, open_low=self.beta_open_low, open_high=True)
        self.t_max = check_unit_interval("t_max", t_max, open_low=True)
        if grid not in GRIDS:
            raise ConfigError(f"unknown time grid '{grid}'; known: {', '.join(GRIDS)}")
        if grid == "log" and self.t_max >= 1.0:
            raise ConfigError("time grid 'log' needs t_max < 1 (τ = -log(1-t) is infinite at t = 1)")
        self.grid = grid

    def options(self) -> dict[str, float | str]:
        """The settings that define this path (recorded in every run's config)."""
        return {"beta": self.beta, "t_max": self.t_max, "grid": self.grid}

    def time_grid(self, nfe: int, kind: str | None = None,
                  dtype: torch.dtype = torch.float64) -> Tensor:
        """(nfe+1,) times up to ``t_max`` on this path's grid, or on ``kind`` if given."""
        return time_grid(nfe, self.t_max, kind or self.grid, dtype)

    # --- endpoints --------------------------------------------------------------------
    @abstractmethod
    def sample_prior(self, shape: tuple[int, ...], *, generator: torch.Generator | None = None,
                     dtype: torch.dtype = torch.float64,
                     device: torch.device | str | None = None) -> Tensor:
        """z0 ~ p0 of shape ``shape`` = (..., V)."""

    @abstractmethod
    def target(self, ids: Tensor, vocab_size: int, dtype: torch.dtype = torch.float64) -> Tensor:
        """z1 for tokens ``ids`` (...,) -> (..., V)."""

    # --- the path ---------------------------------------------------------------------
    @abstractmethod
    def interpolate(self, z0: Tensor, z1: Tensor, t: TimeLike) -> Tensor:
        """z_t on the path from z0 (t=0) to z1 (t=1). (..., V)."""

    @abstractmethod
    def cond_velocity(self, z_t: Tensor, z1: Tensor, t: TimeLike) -> Tensor:
        """d z_t / dt given the endpoint z1, expressed at z_t. (..., V)."""

    @abstractmethod
    def expected_velocity(self, z_t: Tensor, w: Tensor, t: TimeLike) -> Tensor:
        """Σ_i w_i · u_t(z_t | z1^(i)) for a denoiser distribution w (..., V) over tokens."""

    def step(self, z: Tensor, v: Tensor, t: TimeLike, h: TimeLike) -> Tensor:
        """One ODE step of size h from z at time t with velocity v (Euler in z)."""
        return z + expand_time(h, z) * v

    # --- views ------------------------------------------------------------------------
    @abstractmethod
    def to_probs(self, z: Tensor) -> Tensor:
        """x = the point on the simplex that z stands for. (..., V)."""

    @abstractmethod
    def log_probs(self, z: Tensor) -> Tensor:
        """log x, computed without forming x where that loses precision. (..., V)."""

    @abstractmethod
    def prob_velocity(self, z: Tensor, v: Tensor) -> Tensor:
        """dx/dt: the velocity v in path coordinates pushed forward to the simplex."""

    def model_input(self, z: Tensor) -> Tensor:
        """What the denoiser sees: (..., V) vectors multiplied into its embedding matrix."""
        return self.to_probs(z)


class AffineTargetPath(SimplexPath):
    """A path whose conditional velocity is affine in z1, so the marginal velocity is the
    conditional velocity toward the *expected* target: E_w[u(z|z1)] = u(z | E_w[z1])."""

    @abstractmethod
    def expected_target(self, w: Tensor) -> Tensor:
        """E_{i~w}[z1^(i)] for w (..., V) a distribution over tokens."""

    def target(self, ids: Tensor, vocab_size: int, dtype: torch.dtype = torch.float64) -> Tensor:
        return self.expected_target(one_hot(ids, vocab_size, dtype))

    def cond_velocity(self, z_t: Tensor, z1: Tensor, t: TimeLike) -> Tensor:
        return (z1 - z_t) / (1.0 - expand_time(t, z_t))

    def expected_velocity(self, z_t: Tensor, w: Tensor, t: TimeLike) -> Tensor:
        return self.cond_velocity(z_t, self.expected_target(w.to(z_t.dtype)), t)
