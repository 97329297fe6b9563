"""Revealing tokens at some positions: the draws of the mask-source samplers (dfm, sedd).

A step of either sampler moves a position with one probability q, the same for every position
that may move (a scalar of the time grid), to a token y ~ p, the denoiser's distribution after
temperature, top-k and top-p. Drawing "fire with probability q, then y ~ p" has exactly that
law, so the draw over the vocabulary is made only where a position fires — not at every
position, as drawing y everywhere and then deciding would (what the flow-matching package's
solver and the first SEDD sampler did, on float64 copies of the whole (B,S,V)).

One float64 uniform u per position does both: the position fires when u < q, and then u / q
is again uniform on [0, 1) (independent of the decision), the number the inverse-CDF draw
inverts. The draw works a block of rows at a time on float64 copies of those rows only, so
nothing of size (B,S,V) is allocated beyond the model's logits.
"""

from __future__ import annotations

import torch
from torch import Tensor

from pathbench.core.rng import Generator, rand
from pathbench.engine.sampling import DRAW_BLOCK, SamplerConfig, denoiser_log_probs, inverse_cdf_categorical


def draw_rows(logits: Tensor, rows: Tensor, u: Tensor, cfg: SamplerConfig, vocab: int) -> Tensor:
    """y ~ p at the given rows of ``logits``, in float64, by inverting the CDF at ``u``.

    logits: (R_all, V') with V' ≥ vocab (columns from ``vocab`` on — the mask — are never
    drawn); rows: (R,) row indices; u: (R,) float64 uniforms. p is softmax(logits / T) cut to
    the top-k and top-p sets, as :func:`pathbench.engine.sampling.denoiser_log_probs`.
    Returns (R,) int64 ids.
    """
    out = torch.empty(rows.shape[0], dtype=torch.long, device=logits.device)
    per_block = max(1, DRAW_BLOCK // vocab)
    for first in range(0, rows.shape[0], per_block):
        block = logits[rows[first:first + per_block], :vocab]  # (r, V) copy of r rows only
        if cfg.top_k == 1:  # the argmax: no random number needed
            out[first:first + block.shape[0]] = block.argmax(-1)
            continue
        index = None
        if cfg.top_k is not None and cfg.top_k < vocab:
            block, index = block.topk(cfg.top_k, dim=-1)  # sorted: the CDF over the k kept tokens
        log_w = denoiser_log_probs(block, None, cfg.temperature, cfg.top_p)  # float64 (r, V or k)
        ids = inverse_cdf_categorical(log_w, u=u[first:first + per_block, None])
        out[first:first + ids.shape[0]] = ids if index is None else index.gather(-1, ids[:, None])[:, 0]
    return out


def reveal_(x: Tensor, logits: Tensor, movable: Tensor, q: float, cfg: SamplerConfig, vocab: int,
            generator: Generator = None) -> Tensor:
    """x ← y ~ p with probability ``q`` at each ``movable`` position, in place; the rest stay.

    x: (B, S) ids; logits: (B, S, V') the denoiser's (V' ≥ vocab); movable: (B, S) bool.
    One float64 uniform per position from ``generator`` (a batch stream or per-row streams).
    """
    u = rand(x.shape, generator, dtype=torch.float64, device=x.device)  # (B, S)
    fire = movable & (u < q)
    rows = fire.flatten().nonzero()[:, 0]
    if rows.numel():
        # u < q at a firing position: u / q is uniform on [0, 1) again, the draw's number
        ids = draw_rows(logits.reshape(-1, logits.shape[-1]), rows, u.flatten()[rows] / q, cfg, vocab)
        x.view(-1)[rows] = ids
    return x
