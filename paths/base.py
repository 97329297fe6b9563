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

The hot loops (sampler and trainer) use in-place twins of these on preallocated (B,S,V)
buffers — :meth:`prior_`, :meth:`interpolate_token_`, :meth:`noise_`, :meth:`ode_step_`,
:meth:`token_step_`, :meth:`model_input_`. Their defaults go through the functional API, so a
path a plugin adds is correct without writing them; the built-in paths override them with
fused passes and never form a dense one-hot target.

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

from pathbench.core.errors import ConfigError
from pathbench.core.rng import Generator, rand, uniform_

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


def softmax_into(z: Tensor, out: Tensor) -> Tensor:
    """softmax(z) over the last axis written into ``out`` (may be ``z`` itself): one fused
    kernel and no fresh (B,S,V) allocation (``torch.softmax`` has no ``out=``)."""
    return torch.ops.aten._softmax.out(z, -1, False, out=out)


def exponential_(out: Tensor, generator: Generator = None) -> Tensor:
    """out ← E ~ Exp(1) elementwise, as -log U with U ~ U(0, 1) clamped away from 0 (exact in law;
    on the CPU ``Tensor.exponential_`` is several times slower than ``uniform_`` and a log)."""
    uniform_(out, generator).clamp_min_(torch.finfo(out.dtype).tiny)
    return out.log_().neg_()


def sample_log_dirichlet1(shape: tuple[int, ...], *, generator: Generator = None,
                          dtype: torch.dtype = torch.float64,
                          device: torch.device | str | None = None) -> Tensor:
    """log x0 for x0 ~ Dirichlet(1, ..., 1) over the last axis, sampled in log space.

    x0 = E / ΣE with E_i ~ Exp(1); log E = log(-log U) for U ~ U(0, 1), so
    log x0 = log E - logsumexp(log E) never underflows even when V is large.
    """
    u = rand(shape, generator, dtype=dtype, device=device)
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
    #: z and z + c (c constant per position) are the same point (logits): the in-place
    #: operations may drop such constants, e.g. the logsumexp of a log-Dirichlet draw.
    shift_invariant: ClassVar[bool] = False
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
        """(nfe+1,) times up to ``t_max`` on this path's grid, or on ``kind`` if given; ``nfe = 0``
        (no step, only the decoding call at t_max of ``final_at=t_max``) is the single time t_max."""
        if nfe == 0:
            return torch.tensor([self.t_max], dtype=dtype)
        return time_grid(nfe, self.t_max, kind or self.grid, dtype)

    # --- endpoints --------------------------------------------------------------------
    @abstractmethod
    def sample_prior(self, shape: tuple[int, ...], *, generator: Generator = None,
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

    def token_log_likelihood(self, z_t: Tensor, t: float) -> Tensor:
        """log p(z_t | x1 = i) up to a constant per position, (N, V) -> (N, V) float64: what the
        state says about its token, the observation model of the Bayes-optimal denoiser
        (``pathbench study denoiser-gap``). Paths whose prior makes it tractable override this."""
        raise ConfigError(f"path {type(self).__name__} has no tractable single-token likelihood p(z_t | x1)")

    # --- in-place operations of the hot loops ------------------------------------------
    # All take (B, S, V) buffers in the working dtype (float32, or the model's dtype) and a
    # time ``t`` (float, or (B,) in training); ``ids`` are (B, S) token ids. Each returns the
    # tensor it wrote. ``scratch`` is a free (B, S, V) buffer a step may overwrite.
    def prior_(self, out: Tensor, generator: Generator = None) -> Tensor:
        """out ← z0 ~ p0 (up to what the coordinates do not see, see ``shift_invariant``)."""
        return out.copy_(self.sample_prior(out.shape, generator=generator, dtype=out.dtype,
                                           device=out.device))

    def interpolate_token_(self, z0: Tensor, ids: Tensor, t: TimeLike) -> Tensor:
        """z0 ← ψ_t(z0, z1(ids)) in place: the point at time t toward the tokens ``ids``."""
        return z0.copy_(self.interpolate(z0, self.target(ids, z0.shape[-1], z0.dtype), t))

    def noise_(self, out: Tensor, ids: Tensor, t: TimeLike,
               generator: Generator = None) -> Tensor:
        """out ← z_t = ψ_t(z0, z1(ids)) with a fresh z0 ~ p0: training's noising and the
        re-noising step of the ``sampling`` scheme."""
        return self.interpolate_token_(self.prior_(out, generator), ids, t)

    def ode_step_(self, z: Tensor, w: Tensor, t: float, h: float, scratch: Tensor | None = None) -> Tensor:
        """z ← step(z, E_w[u_t(z | x1)], t, h) for the denoiser distribution w (B,S,V), which
        the step may overwrite."""
        return z.copy_(self.step(z, self.expected_velocity(z, w, t), t, h))

    def token_step_(self, z: Tensor, ids: Tensor, t: float, h: float,
                    scratch: Tensor | None = None) -> Tensor:
        """z ← step(z, u_t(z | z1(ids)), t, h): one Euler step toward drawn tokens (``semi``)."""
        return z.copy_(self.step(z, self.cond_velocity(z, self.target(ids, z.shape[-1], z.dtype), t), t, h))

    def model_input_(self, z: Tensor, out: Tensor) -> Tensor:
        """model_input(z), written into ``out`` unless it is z itself; returns what to feed."""
        x = self.model_input(z)
        return x if x is z else out.copy_(x)


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


class TokenAffinePath(AffineTargetPath):
    """A straight line toward a target that is two levels per coordinate:

        z1(i) = lo + (hi - lo)·e_i,    E_w[z1] = lo + (hi - lo)·w,
        one step of size h:  z ← z + a·(E - z),  a = h/(1-t) (Euler; kl's τ-Euler: Δτ).

    Every in-place operation is then a few fused passes with per-position scalars and one
    scatter at the drawn token — the dense one-hot target is never formed.
    """

    @abstractmethod
    def target_levels(self, vocab_size: int) -> tuple[float, float]:
        """(lo, hi): the coordinates of z1 off and on its token."""

    def expected_target(self, w: Tensor) -> Tensor:
        lo, hi = self.target_levels(w.shape[-1])
        return lo + (hi - lo) * w

    def step_fraction(self, t: TimeLike, h: TimeLike) -> TimeLike:
        """a in z ← z + a·(z1 - z) for one step of size h from t (Euler: h / (1 - t))."""
        return h / (1.0 - t)

    def step(self, z: Tensor, v: Tensor, t: TimeLike, h: TimeLike) -> Tensor:
        t, h = expand_time(t, z), expand_time(h, z)
        # v = (z1 - z)/(1 - t), so a·(z1 - z) = a·(1 - t)·v
        return z + self.step_fraction(t, h) * (1.0 - t) * v

    def _toward_tokens_(self, z: Tensor, ids: Tensor, a: TimeLike) -> Tensor:
        """z ← (1 - a)·z + a·z1(ids) in place; a a float or (B,) (then per sequence)."""
        lo, hi = self.target_levels(z.shape[-1])
        a = expand_time(a, z)
        z.mul_(1.0 - a)
        if not self.shift_invariant:
            z.add_(a * lo)
        lift = (a * (hi - lo)).expand(*ids.shape, 1) if a.ndim else torch.full(
            (*ids.shape, 1), float(a) * (hi - lo), dtype=z.dtype, device=z.device)
        return z.scatter_add_(-1, ids.unsqueeze(-1), lift.to(z.dtype))

    def interpolate_token_(self, z0, ids, t):
        return self._toward_tokens_(z0, ids, t)

    def token_step_(self, z, ids, t, h, scratch=None):
        return self._toward_tokens_(z, ids, self.step_fraction(t, h))

    def ode_step_(self, z, w, t, h, scratch=None):
        lo, hi = self.target_levels(z.shape[-1])
        a = float(self.step_fraction(t, h))
        z.mul_(1.0 - a).add_(w, alpha=a * (hi - lo))
        return z if self.shift_invariant else z.add_(a * lo)
