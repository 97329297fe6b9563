"""One sampler driver for every simplex path.

The path supplies the geometry (prior, target, interpolate, velocities, step, and their
in-place twins); the driver supplies the schedule. With a grid 0 = t_0 < ... < t_N = t_max the
denoiser is called once per grid time it visits — NFE counts denoiser calls exactly — and
gives w = p_θ(x1 | x_t). Then, with h = t_{n+1} - t_n:

* ``basic``    Euler on the marginal velocity:        z ← step(z, E_w[u_t(z|x1)], h)
* ``semi``     Euler on a one-sample estimate:         i ~ w', z ← step(z, u_t(z|x1^(i)), h)
* ``sampling`` denoise and re-noise:                   i ~ w', z ← ψ_{t+h}(x0', x1^(i)), x0' ~ p0
* ``hybrid``   ``basic`` while t < t*, ``sampling`` from t* on (KL-flow paper: t* = 0.28)

Temperature, top-k and top-p shape only w', the distribution tokens are drawn from (``semi``,
``sampling``, ``hybrid`` from t* on, ``final="sample"``); the ODE steps (``basic``, ``hybrid``
before t*) use the full denoiser distribution w, as the KL-flow reference code does.

Where the decoding call sits (``final_at``): ``last_step`` — N = NFE grid steps, calls at
t_0 … t_{N-1}, the last one decoded (the paper's text); ``t_max`` — N = NFE - 1 grid steps up to
t_max, then one more call at t_max that is decoded (the reference code: its N updates + 1).
Decoding is argmax w (``final="argmax"``) or a draw from w' (``final="sample"``). Positions
in ``given`` are clamped to the target of their token after every update, so prompts and
infilling contexts stay fixed. Every categorical draw is made in float64 by the Gumbel-max
trick (float32 draws lower entropy, Zheng et al. 2024); the state is float32 (or the model's
dtype) and updated in place.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import asdict, dataclass

import torch
from torch import Tensor

from pathbench.core.errors import ConfigError
from pathbench.core.rng import Generator, RowGenerators, rand

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


def gumbel_categorical(log_probs: Tensor, generator: Generator = None) -> Tensor:
    """One draw per row of ``log_probs`` (..., V) by Gumbel-max, in float64. -> (...) int64.
    With a :class:`~pathbench.core.rng.RowGenerators` the first axis is the samples'."""
    if log_probs.dtype != torch.float64:
        raise TypeError(f"categorical draws must be made in float64, got {log_probs.dtype}")
    u = rand(log_probs.shape, generator, dtype=torch.float64, device=log_probs.device)
    tiny = torch.finfo(torch.float64).tiny
    gumbel = -torch.log((-torch.log(u.clamp_min(tiny))).clamp_min(tiny))
    return (log_probs + gumbel).argmax(-1)


def inverse_cdf_categorical(log_weights: Tensor, generator: torch.Generator | None = None,
                            u: Tensor | None = None) -> Tensor:
    """One draw per row of ``log_weights`` (R, V) (unnormalised) by inverting the float64 CDF.

    i = min{i : C_i > u·C_V} with C the cumulative sum of exp(log w - max) and u ~ U[0, 1): the
    law of w exactly (to float64 rounding of C), and one random number per row instead of V —
    the cheapest exact draw over a whole vocabulary. Tokens of weight 0 are never drawn.
    ``u`` (R, 1) float64: the uniforms, drawn by the caller (per sample row), instead of
    from ``generator``.
    """
    if log_weights.dtype != torch.float64:
        raise TypeError(f"categorical draws must be made in float64, got {log_weights.dtype}")
    cdf = (log_weights - log_weights.amax(-1, keepdim=True)).exp_().cumsum_(-1)  # (R, V)
    if u is None:
        u = torch.rand((cdf.shape[0], 1), generator=generator, dtype=torch.float64, device=cdf.device)
    ids = torch.searchsorted(cdf, u * cdf[:, -1:], right=True)[:, 0]
    return ids.clamp_max_(cdf.shape[-1] - 1)


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


def grid_intervals(cfg: SamplerConfig) -> int:
    """Steps of the time grid for ``cfg``: NFE of them when the decoding call is the last step's
    (``last_step``), NFE - 1 when it is an extra call at t_max (``t_max``, the reference code)."""
    return cfg.nfe - 1 if cfg.final_at == "t_max" else cfg.nfe


#: elements of the float64 block a full-vocabulary draw works on (4 MiB each of its temporaries)
DRAW_BLOCK = 1 << 19


def scheme_at(cfg: SamplerConfig, t: float) -> str:
    """The update a step from time t makes: ``hybrid`` is ``basic`` before t*, ``sampling`` from it."""
    if cfg.name == "hybrid":
        return "basic" if t < cfg.t_star else "sampling"
    return cfg.name


def draw_tokens(logits: Tensor, cfg: SamplerConfig, generator: Generator = None) -> Tensor:
    """i ~ w after temperature, top-k and top-p, in float64. logits (B,S,V) -> ids (B,S).

    With top-k the draw is made among the k largest logits only: Gumbel-max over those k
    values in float64 has exactly the law of a Gumbel draw over the truncated vocabulary
    (logits tied with the k-th are cut to exactly k, a measure-zero difference); top-k 1 is
    the argmax and needs no random number. Without top-k the draw inverts the float64 CDF
    (one random number per position, not per token), a block of rows at a time so the float64
    copy never stands at (B,S,V).
    """
    vocab = logits.shape[-1]
    if cfg.top_k is not None and cfg.top_k < vocab:
        values, index = logits.topk(cfg.top_k, dim=-1)  # (B, S, k), sorted
        if cfg.top_k == 1:
            return index[..., 0]
        choice = gumbel_categorical(_draw_log_probs(values, cfg), generator)
        return index.gather(-1, choice.unsqueeze(-1))[..., 0]
    flat = logits.reshape(-1, vocab)
    ids = torch.empty(flat.shape[0], dtype=torch.long, device=logits.device)
    # per-sample streams: one uniform per position, drawn sample by sample before the blocks
    # (which cross sample boundaries); a batch stream draws them block by block
    u = rand(logits.shape[:-1], generator, dtype=torch.float64, device=logits.device).reshape(-1, 1) \
        if isinstance(generator, RowGenerators) else None
    rows = max(1, DRAW_BLOCK // vocab)
    for first in range(0, flat.shape[0], rows):
        block = slice(first, first + rows)
        ids[block] = inverse_cdf_categorical(_draw_log_probs(flat[block], cfg), generator,
                                             None if u is None else u[block])
    return ids.reshape(logits.shape[:-1])


def _draw_log_probs(logits: Tensor, cfg: SamplerConfig) -> Tensor:
    """float64 log-weights to draw from: logits / T (Gumbel-max needs no normalisation), or
    normalised and cut to the top-p set when top-p is set."""
    if cfg.top_p is not None and cfg.top_p < 1:
        return denoiser_log_probs(logits, None, cfg.temperature, cfg.top_p)
    return logits.to(torch.float64) / cfg.temperature


def _decode(logits: Tensor, cfg: SamplerConfig, generator: torch.Generator | None) -> Tensor:
    return logits.argmax(-1) if cfg.final == "argmax" else draw_tokens(logits, cfg, generator)


@torch.no_grad()
def sample_path(path, denoise: Denoiser, shape: tuple[int, int, int], cfg: SamplerConfig, *,
                given_ids: Tensor | None = None, given_mask: Tensor | None = None,
                generator: Generator = None,
                device: torch.device | str | None = None, times: Tensor | None = None,
                dtype: torch.dtype = torch.float32) -> Tensor:
    """Generate token ids (B, S) along ``path`` with ``cfg.nfe`` calls of ``denoise``.

    The state lives in two preallocated (B,S,V) buffers of ``dtype`` — z and the model input
    (which later steps reuse as scratch) — and is updated in place; the denoiser's logits are
    turned into w in place. Beyond the model's own logits a step holds at most these two
    buffers plus float64 blocks of one draw.

    Args:
        path: a :class:`pathbench.paths.base.SimplexPath`.
        denoise: the model, (B,S,V) input in ``dtype`` and t (B,) -> logits (B,S,V).
        shape: (B, S, V).
        given_ids, given_mask: (B, S) tokens and the positions that are given (clamped).
        generator: the source of every random draw (prior, categorical), for reproducibility:
            one stream for the batch, or a :class:`~pathbench.core.rng.RowGenerators` (one per
            sample: the samples then do not depend on the batch they are drawn in).
        times: (grid_intervals(cfg) + 1,) grid to use instead of the path's (e.g. a time warp).
        dtype: the working dtype of the state (float32, or the model's; categorical draws are
            float64 whatever it is).
    """
    check_sampler("simplex path", cfg, SAMPLERS)
    batch, _, vocab = shape
    steps = grid_intervals(cfg)
    if times is None:
        times = path.time_grid(steps, cfg.grid)
    elif times.shape != (steps + 1,):
        raise ConfigError(f"a time grid for NFE {cfg.nfe} (final_at {cfg.final_at}) needs {steps + 1} "
                          f"points, got {tuple(times.shape)}")
    grid = times.tolist()
    z = path.prior_(torch.empty(shape, dtype=dtype, device=device), generator)  # (B, S, V)
    buffer = torch.empty_like(z)  # the model input, then scratch once the model has read it
    clamp = given_mask is not None and bool(given_mask.any())
    if clamp:
        mask = given_mask.to(z.device)  # (B, S)
        given_ids = given_ids.to(z.device)
        z_given = path.target(given_ids[mask], vocab, dtype)  # (n_given, V)
        z[mask] = z_given
    for n in range(cfg.nfe):
        t = grid[n]
        logits = denoise(path.model_input_(z, buffer), torch.full((batch,), t, dtype=torch.float64,
                                                                  device=z.device))  # (B, S, V)
        if not logits.is_contiguous():  # e.g. an expanded oracle's: the update writes into it
            logits = logits.contiguous()
        if n == cfg.nfe - 1:
            ids = _decode(logits, cfg, generator)
            return torch.where(mask, given_ids, ids) if clamp else ids
        _update_(path, z, logits, buffer, t, grid[n + 1] - t, cfg, generator)
        del logits  # before the next call allocates its own: never two sets of logits alive
        if clamp:
            z[mask] = z_given
    raise AssertionError("unreachable: the loop returns on its last call")


def _update_(path, z: Tensor, logits: Tensor, scratch: Tensor, t: float, h: float, cfg: SamplerConfig,
             generator: torch.Generator | None) -> None:
    """One update of z in place. The ODE steps use the full denoiser distribution; temperature,
    top-k and top-p shape only the draws (``semi``, ``sampling``, ``hybrid`` from t* on)."""
    scheme = scheme_at(cfg, t)
    if scheme == "basic":
        # w overwrites the logits in place (torch.softmax has no out=)
        path.ode_step_(z, torch.ops.aten._softmax.out(logits, -1, False, out=logits), t, h, scratch)
        return
    ids = draw_tokens(logits, cfg, generator)  # (B, S)
    if scheme == "semi":
        path.token_step_(z, ids, t, h, scratch)
    else:
        path.noise_(z, ids, t + h, generator)  # fresh x0' ~ p0, then ψ_{t+h}(x0', x1(ids))
