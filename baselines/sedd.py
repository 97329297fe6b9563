"""SEDD (Lou et al. 2024): absorbing-state score-entropy discrete diffusion.

Forward process (diffusion time τ: 0 = data, 1 = noise), log-linear noise:

    σ̄(τ) = -log(1 - (1-ε)τ),   P(x_τ^i = [MASK]) = 1 - e^{-σ̄(τ)} = (1-ε)τ

The network gives log-scores s_θ(x_τ)_y ≈ log p_τ(y)/p_τ([MASK]) at masked positions. The
denoising score entropy (paper Eq. 9, absorbing case) at a masked position with clean token x:

    Σ_{y≠MASK} e^{s_y} - r·s_x + r(log r - 1),   r = 1/(e^{σ̄} - 1)   (the true ratio at y = x)

weighted by dσ̄/dτ. It is ≥ 0, and 0 exactly at the true ratios. As in the reference code the
score is parametrised as log softmax(logits) + log r, which makes Σ_y e^{s_y} = r.

Sampling runs τ from 1 to ε: ``tweedie`` (the exact τ-leaping/Tweedie step of the absorbing
process: a masked token is revealed as y with probability p_θ(y)·(e^{-σ̄'} - e^{-σ̄})/(1 - e^{-σ̄})
and stays masked otherwise) or ``euler`` (reverse rates Δσ̄·e^{s_y}, clipped to a distribution),
and ends with one denoising call that fills every position still masked. A step draws the
token (float64, inverse CDF) only at the positions it reveals (:mod:`pathbench.baselines.unmask`).
"""

from __future__ import annotations

import math

import torch
from torch import Tensor

from pathbench.baselines.unmask import reveal_
from pathbench.core.errors import ConfigError
from pathbench.core.registry import METHODS
from pathbench.engine.methods import TokenMethod
from pathbench.engine.sampling import check_sampler


def total_noise(tau: Tensor, eps: float) -> Tensor:
    """σ̄(τ) = -log(1 - (1-ε)τ)."""
    return -torch.log1p(-(1 - eps) * tau)


def noise_rate(tau: Tensor, eps: float) -> Tensor:
    """dσ̄/dτ = (1-ε) / (1 - (1-ε)τ)."""
    return (1 - eps) / (1 - (1 - eps) * tau)


def esigm1(sigma: Tensor) -> Tensor:
    """e^σ̄ - 1, accurate near 0; r = 1/(e^σ̄ - 1) is the true ratio p_τ(x)/p_τ(MASK)."""
    return torch.where(sigma < 0.5, torch.expm1(sigma), torch.exp(sigma) - 1)


def score_entropy(log_score: Tensor, x0: Tensor, masked: Tensor, sigma: Tensor) -> Tensor:
    """Per-position denoising score entropy of the absorbing process.

    log_score: (B,S,V) log-scores for the V data tokens; x0: (B,S) clean ids; masked: (B,S)
    positions in the mask state; sigma: (B,) total noise σ̄. Returns (B,S), zero where unmasked.
    """
    ratio = (1.0 / esigm1(sigma))[:, None].expand_as(x0)  # (B, S)
    pos = log_score.exp().sum(-1)
    neg = ratio * log_score.gather(-1, x0.unsqueeze(-1)).squeeze(-1)
    const = ratio * (ratio.log() - 1)
    return torch.where(masked, pos - neg + const, torch.zeros_like(pos))


@METHODS.register("sedd", "score_entropy")
class SEDD(TokenMethod):
    """Score-entropy discrete diffusion, absorbing state, log-linear noise (Lou et al. 2024)."""

    samplers = ("tweedie", "euler")
    extra_tokens = 1  # the absorbing state, the last id of the backbone's vocabulary
    sampling_bsv = 1.5  # the logits and float64 blocks of the draw (bench sample at V = 50,257: 1.0)

    def __init__(self, eps: float = 1e-3) -> None:
        super().__init__(eps=eps)
        if not 0 < eps < 1:
            raise ConfigError(f"eps = {eps!r} is outside (0, 1)")
        self.eps = float(eps)

    def log_score(self, model, x_t: Tensor, tau: Tensor) -> Tensor:
        """(B,S,V) log-scores over data tokens: log softmax(logits) + log r(σ̄)."""
        mask_id = self.mask_id(model)
        sigma = total_noise(tau, self.eps)
        logits = model(x_t, tau)[..., :mask_id].float()  # (B, S, V)
        log_r = -torch.log(esigm1(sigma))
        return torch.log_softmax(logits, -1) + log_r[:, None, None]

    def loss(self, model, ids, given, generator=None):
        mask_id = self.mask_id(model)
        batch = ids.shape[0]
        tau = (1 - self.eps) * torch.rand(batch, generator=generator, device=ids.device) + self.eps
        sigma = total_noise(tau, self.eps)
        move = torch.rand(ids.shape, generator=generator, device=ids.device) < -torch.expm1(-sigma)[:, None]
        masked = move & ~given
        x_t = torch.where(masked, torch.full_like(ids, mask_id), ids)
        entropy = score_entropy(self.log_score(model, x_t, tau), ids, masked, sigma)  # (B, S)
        # per sequence Σ_i dσ̄·entropy_i, averaged over the batch, per non-given token
        weighted = noise_rate(tau, self.eps)[:, None] * entropy
        return weighted.sum() / (~given).sum().clamp_min(1)

    def reveal_probability(self, sampler: str, tau: Tensor, tau_next: Tensor) -> float:
        """P(a masked token is revealed) in a step from τ to τ_next (< τ)."""
        sigma, sigma_next = total_noise(tau, self.eps).item(), total_noise(tau_next, self.eps).item()
        if sampler == "tweedie":
            return (math.exp(-sigma_next) - math.exp(-sigma)) / -math.expm1(-sigma)
        # Euler on the reverse rates Δσ̄·e^{s_y} = Δσ̄·r·p_y, clipped to a probability
        return min(1.0, (sigma - sigma_next) / math.expm1(sigma))

    def draw_shares(self, cfg) -> list[float]:
        """The expected share of positions each call's step draws a token at (an unconditional
        run): the reveals of the masked share, then the final fill (its argmax or draw)."""
        taus = torch.linspace(1.0, self.eps, cfg.nfe + 1, dtype=torch.float64)
        masked, shares = 1.0, []
        for n in range(cfg.nfe - 1):
            shares.append(masked * self.reveal_probability(cfg.name, taus[n], taus[n + 1]))
            masked -= shares[-1]
        return shares + [masked]

    @torch.no_grad()
    def sample(self, model, batch_size, seq_len, cfg, *, given_ids=None, given_mask=None,
               generator=None):
        check_sampler("sedd", cfg, self.samplers)
        device = next(model.parameters()).device
        mask_id = self.mask_id(model)
        x = torch.full((batch_size, seq_len), mask_id, device=device)
        if given_mask is not None:
            x = torch.where(given_mask, given_ids, x)
        taus = torch.linspace(1.0, self.eps, cfg.nfe + 1, dtype=torch.float64, device=device)
        for n in range(cfg.nfe):
            logits = model(x, taus[n].expand(batch_size).float())  # (B, S, V+1)
            masked = x == mask_id
            if n == cfg.nfe - 1:  # final denoise: fill what is still masked
                if cfg.final == "argmax":  # temperature, top-k and top-p keep the argmax
                    return torch.where(masked, logits[..., :mask_id].argmax(-1), x)
                return reveal_(x, logits, masked, 1.0, cfg, mask_id, generator)
            # a masked token is revealed with probability `reveal`, as y ~ p_θ (float64 draw)
            reveal_(x, logits, masked, self.reveal_probability(cfg.name, taus[n], taus[n + 1]), cfg, mask_id,
                    generator)
            del logits  # before the next call allocates its own
        raise AssertionError("unreachable: the loop returns on its last call")
