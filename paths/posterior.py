"""The exact posterior p(x1 | x_t) of one token on the KL path, and its geodesic-only approximation.

Setting (one position, V tokens): noise x0 ~ Dirichlet(1), a token i ~ π with smoothed one-hot
x1^(i) = (1-β)e_i + β/V, and the KL path x_t = softmax((1-t)·log x0 + t·log x1^(i)), i.e.
x_t = normalize(x0^(1-t) ⊙ (x1^(i))^t).

**Exact posterior.** (The KL-flow paper states it as Prop. E.1 of its Appendix E; the appendix
was not available offline, so this is re-derived from first principles and checked against a
finite-difference change of variables in the tests.) Given i, x0 is recovered from x_t as
x0(x_t, i) = normalize((x_t / (x1^(i))^t)^(1/(1-t))). In additive log-ratio coordinates
u_k = log(x_k / x_V) the map x0 -> x_t is affine, u ↦ (1-t)·u + c_i, with Jacobian (1-t)^(V-1)
for every i, and Lebesgue measure on the simplex is Π_k x_k · du. With the constant Dirichlet(1)
density this leaves p(x_t | i) ∝ Π_k x0_k(x_t, i), the factors in x_t and t alone being common
to every i. Since Σ_k log x1^(i)_k is the same for every i, with

    a_k = log x_t,k / (1-t),   s = softmax(a),   d = tΔ/(1-t),   Δ = log(1-β+β/V) - log(β/V),

    log p(i | x_t) = log π_i - V · log(1 - (1 - e^(-d)) · s_i) + const(x_t).

The exponent V makes it sharp: at V = 50 000 the posterior jumps from near the prior to near a
point mass over a short stretch of t.

**Geodesic-only approximation.** Read the target off the geodesic alone — knowing neither
where the noise put x0 nor the data distribution π: take x0 at the prior's centre (the uniform
point), so x_t lies on the geodesic from uniform to x1, and extrapolate that geodesic to t = 1:

    log q(i | x_t) = log x_t,i / t + const(x_t)        (x̂1 ∝ x_t^(1/t))

It is what committing to a token "because x_t points at it" assumes; it is wrong early (the
noise dominates x_t^(1/t)) and right late. KL(p ‖ q) against t says from when on the state
alone identifies the token: with a point-mass π it is -log q(token), with a uniform π it is the
gap between the exact likelihood and the geodesic reading.
"""

from __future__ import annotations

import math

import torch
from torch import Tensor

from pathbench.core.errors import ConfigError


def _log_prior(log_prior: Tensor | None, like: Tensor) -> Tensor:
    if log_prior is None:
        return torch.zeros(like.shape[-1], dtype=like.dtype, device=like.device)
    return log_prior.to(like.dtype)


def check_time(t: float) -> float:
    if not 0.0 < t < 1.0:
        raise ConfigError(f"t = {t!r} is outside (0, 1)")
    return float(t)


def exact_posterior_log(log_xt: Tensor, t: float, beta: float, log_prior: Tensor | None = None) -> Tensor:
    """log p(x1 = i | x_t) on the KL path with Dirichlet(1) noise. log_xt (N, V) -> (N, V).

    log(S − c·e^{a_i}) = log(Σ_{k≠i} e^{a_k} + e^{a_i − d}) is formed without cancellation: the
    sum over k ≠ i is S − e^{a_i} except at the row's largest a, where it is summed directly.
    """
    t = check_time(t)
    vocab = log_xt.shape[-1]
    delta = math.log1p(-beta + beta / vocab) - math.log(beta / vocab)
    d = t * delta / (1.0 - t)
    a = log_xt / (1.0 - t)  # (N, V)
    e = torch.exp(a - a.max(-1, keepdim=True).values)  # (N, V), the largest is 1
    top = e.argmax(-1, keepdim=True)  # (N, 1)
    rest = e.sum(-1, keepdim=True) - e  # Σ_{k≠i} e^{a_k}, up to the common factor e^{max a}
    rest = rest.scatter(-1, top, e.scatter(-1, top, 0.0).sum(-1, keepdim=True))
    log_p = _log_prior(log_prior, log_xt) - vocab * torch.log(rest + e * math.exp(-d))
    return torch.log_softmax(log_p, dim=-1)


def geodesic_posterior_log(log_xt: Tensor, t: float) -> Tensor:
    """log q(x1 = i | x_t) ∝ log x_t,i / t: the geodesic from uniform extrapolated to t = 1. (N, V)."""
    t = check_time(t)
    return torch.log_softmax(log_xt / t, dim=-1)


def kl_categorical(log_p: Tensor, log_q: Tensor) -> Tensor:
    """KL(p ‖ q) per row, with 0·log 0 = 0 (rows of p may be point masses). (N, V) -> (N,)."""
    p = log_p.exp()
    terms = torch.where(p > 0, p * (log_p - log_q), torch.zeros_like(p))
    return terms.sum(-1)


def entropy_categorical(log_p: Tensor) -> Tensor:
    p = log_p.exp()
    return -torch.where(p > 0, p * log_p, torch.zeros_like(p)).sum(-1)
