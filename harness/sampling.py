"""One sampler driver for every simplex path.

The path supplies the geometry (prior, target, interpolate, velocities, step); the driver
supplies the schedule. With a grid 0 = t_0 < ... < t_N = t_max (N = NFE) the denoiser is
called once at each t_n, n < N — so NFE counts denoiser calls exactly — and gives
w = p_θ(x1 | x_t) (temperature and top-k applied). Then, with h = t_{n+1} - t_n:

* ``basic``    Euler on the marginal velocity:        z ← step(z, E_w[u_t(z|x1)], h)
* ``semi``     Euler on a one-sample estimate:         i ~ w, z ← step(z, u_t(z|x1^(i)), h)
* ``sampling`` denoise and re-noise:                   i ~ w, z ← ψ_{t+h}(x0', x1^(i)), x0' ~ p0
* ``hybrid``   ``basic`` while t < t*, ``sampling`` from t* on (KL-flow paper: t* = 0.28)

The last call returns argmax w (``final="argmax"``, the KL-flow reference) or a draw from w
(``final="sample"``). Positions in ``given`` are clamped to the target of their token after
every update, so prompts and infilling contexts stay fixed. Every categorical draw is made
in float64 by the Gumbel-max trick (float32 draws lower entropy, Zheng et al. 2024).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import asdict, dataclass

import torch
from torch import Tensor

from harness.errors import ConfigError

SAMPLERS = ("basic", "semi", "sampling", "hybrid")
FINALS = ("argmax", "sample")
#: where the decoding call sits: ``last_step`` = at t_{N-1} of an N-point grid (the paper's text),
#: ``t_max`` = N-1 updates up to t_max, then the decoding call at t_max (the KL-flow reference code)
FINAL_AT = ("last_step", "t_max")

#: (model input (B,S,V), t (B,)) -> logits (B,S,V)
Denoiser = Callable[[Tensor, Tensor], Tensor]


@dataclass(frozen=True)
class SamplerConfig:
    """How to sample. ``grid=None`` uses the path's own grid (uniform or log)."""

    name: str = "basic"
    nfe: int = 64
    t_star: float = 0.28
    top_k: int | None = None
    top_p: float | None = None
    temperature: float = 1.0
    grid: str | None = None
    final: str = "argmax"
    final_at: str = "last_step"

    def __post_init__(self) -> None:
        if not isinstance(self.nfe, int) or self.nfe < 1:
            raise ConfigError(f"NFE = {self.nfe!r} must be an integer >= 1")
        if not 0.0 <= self.t_star <= 1.0:
            raise ConfigError(f"t* = {self.t_star!r} is outside [0, 1]")
        if self.top_k is not None and self.top_k < 1:
            raise ConfigError(f"top-k = {self.top_k!r} must be >= 1 (or unset for the full vocabulary)")
        if self.top_p is not None and not 0 < self.top_p <= 1:
            raise ConfigError(f"top-p = {self.top_p!r} is outside (0, 1]")
        if not self.temperature > 0:
            raise ConfigError(f"temperature = {self.temperature!r} must be > 0")
        if self.final not in FINALS:
            raise ConfigError(f"unknown final step '{self.final}'; known: {', '.join(FINALS)}")
        if self.final_at not in FINAL_AT:
            raise ConfigError(f"unknown final_at '{self.final_at}'; known: {', '.join(FINAL_AT)}")

    def to_dict(self) -> dict:
        return asdict(self)


def gumbel_categorical(log_probs: Tensor, generator: torch.Generator | None = None) -> Tensor:
    """One draw per row of ``log_probs`` (..., V) by Gumbel-max, in float64. -> (...) int64."""
    if log_probs.dtype != torch.float64:
        raise TypeError(f"categorical draws must be made in float64, got {log_probs.dtype}")
    u = torch.rand(log_probs.shape, generator=generator, dtype=torch.float64, device=log_probs.device)
    tiny = torch.finfo(torch.float64).tiny
    gumbel = -torch.log((-torch.log(u.clamp_min(tiny))).clamp_min(tiny))
    return (log_probs + gumbel).argmax(-1)


def denoiser_log_probs(logits: Tensor, top_k: int | None, temperature: float,
                       top_p: float | None = None) -> Tensor:
    """log w in float64 after temperature, top-k and top-p (mass outside is exactly 0)."""
    logits = logits.to(torch.float64) / temperature
    if top_k is not None and top_k < logits.shape[-1]:
        kth = logits.topk(top_k, dim=-1).values[..., -1:]
        logits = logits.masked_fill(logits < kth, float("-inf"))
    if top_p is not None and top_p < 1:
        sorted_logits, order = logits.sort(dim=-1, descending=True)
        cumulative = sorted_logits.softmax(-1).cumsum(-1)
        drop = cumulative - sorted_logits.softmax(-1) >= top_p  # keep the smallest set reaching p
        logits = logits.masked_fill(drop.scatter(-1, order, drop), float("-inf"))
    return torch.log_softmax(logits, dim=-1)


def check_sampler(method_name: str, cfg: SamplerConfig, known: tuple[str, ...]) -> None:
    if cfg.name not in known:
        raise ConfigError(f"method '{method_name}' has no sampler '{cfg.name}'; known: {', '.join(known)}")


@torch.no_grad()
def sample_path(path, denoise: Denoiser, shape: tuple[int, int, int], cfg: SamplerConfig, *,
                given_ids: Tensor | None = None, given_mask: Tensor | None = None,
                generator: torch.Generator | None = None,
                device: torch.device | str | None = None, times: Tensor | None = None) -> Tensor:
    """Generate token ids (B, S) along ``path`` with ``cfg.nfe`` calls of ``denoise``.

    Args:
        path: a :class:`paths.base.SimplexPath`.
        denoise: the model, (B,S,V) input in the model's dtype and t (B,) -> logits (B,S,V).
        shape: (B, S, V).
        given_ids, given_mask: (B, S) tokens and the positions that are given (clamped).
        generator: the source of every random draw (prior, categorical), for reproducibility.
        times: (nfe+1,) grid to use instead of the path's (e.g. a fitted time warp).
    """
    check_sampler("simplex path", cfg, SAMPLERS)
    batch, _, vocab = shape
    if times is None:
        times = path.time_grid(cfg.nfe, cfg.grid)
    elif times.shape != (cfg.nfe + 1,):
        raise ConfigError(f"a time grid for NFE {cfg.nfe} needs {cfg.nfe + 1} points, got {tuple(times.shape)}")
    z = path.sample_prior(shape, generator=generator, device=device)  # (B, S, V) float64
    clamp = given_mask is not None and bool(given_mask.any())
    if clamp:
        mask = given_mask.to(device).unsqueeze(-1)  # (B, S, 1)
        z_given = path.target(given_ids.to(device), vocab)
        z = torch.where(mask, z_given, z)
    for n in range(cfg.nfe):
        t, t_next = times[n].item(), times[n + 1].item()
        t_vec = torch.full((batch,), t, dtype=torch.float64, device=z.device)
        log_w = denoiser_log_probs(denoise(path.model_input(z), t_vec), cfg.top_k, cfg.temperature,
                                   cfg.top_p)
        if n == cfg.nfe - 1:
            ids = log_w.argmax(-1) if cfg.final == "argmax" else gumbel_categorical(log_w, generator)
            return torch.where(given_mask.to(ids.device), given_ids.to(ids.device), ids) if clamp else ids
        z = _update(path, z, log_w, t, t_next - t, cfg, vocab, generator)
        if clamp:
            z = torch.where(mask, z_given, z)
    raise AssertionError("unreachable: the loop returns on its last call")


def _update(path, z: Tensor, log_w: Tensor, t: float, h: float, cfg: SamplerConfig, vocab: int,
            generator: torch.Generator | None) -> Tensor:
    scheme = cfg.name
    if scheme == "hybrid":
        scheme = "basic" if t < cfg.t_star else "sampling"
    if scheme == "basic":
        return path.step(z, path.expected_velocity(z, log_w.exp(), t), t, h)
    ids = gumbel_categorical(log_w, generator)  # (B, S)
    if scheme == "semi":
        return path.step(z, path.cond_velocity(z, path.target(ids, vocab), t), t, h)
    x0 = path.sample_prior(z.shape, generator=generator, device=z.device)
    return path.interpolate(x0, path.target(ids, vocab), t + h)
