"""Discrete Flow Matching (Gat et al. 2024): mixture path from an all-mask source.

    x_t^i = x1^i with probability κ_t, else [MASK];      κ_t = t^n   or   κ_t = 2t - t²

The denoiser predicts p_θ(x1^i | x_t) with cross-entropy (the package's mixture path draws
x_t); sampling is the CTMC Euler step of the package's MixtureDiscreteEulerSolver (probability
velocity κ'_t/(1-κ_t)·(δ_{x1} - δ_{x_t})) in law, with every categorical draw in float64, made
only at the positions that jump (:mod:`pathbench.baselines.unmask`; the solver itself stays the reference
of the tests). The quadratic κ = 2t - t² is the schedule of the
KL-flow reference code; κ = t^n is the package's polynomial scheduler.
"""

from __future__ import annotations

import torch
from flow_matching.path import MixtureDiscreteProbPath
from flow_matching.path.scheduler import ConvexScheduler, PolynomialConvexScheduler
from flow_matching.path.scheduler.scheduler import SchedulerOutput
from torch import Tensor

from pathbench.baselines.unmask import reveal_
from pathbench.core.errors import ConfigError
from pathbench.core.registry import METHODS
from pathbench.engine.methods import TokenMethod, backbone_config, masked_cross_entropy
from pathbench.engine.sampling import check_sampler

SCHEDULERS = ("quadratic", "polynomial")


class QuadraticConvexScheduler(ConvexScheduler):
    """κ_t = 2t - t² (fast early unmasking), κ'_t = 2 - 2t, t = 1 - √(1-κ)."""

    def __call__(self, t: Tensor) -> SchedulerOutput:
        return SchedulerOutput(alpha_t=2 * t - t**2, sigma_t=(1 - t) ** 2, d_alpha_t=2 - 2 * t,
                               d_sigma_t=-2 * (1 - t))

    def kappa_inverse(self, kappa: Tensor) -> Tensor:
        return 1 - torch.sqrt(1 - kappa)


def seeded(generator: torch.Generator | None) -> int:
    """A seed drawn from ``generator``: the package draws from torch's global RNG, which we
    fork and seed so that a run stays reproducible from its own generator. The draw is made on
    the generator's own device: a CUDA generator cannot draw a CPU tensor (nor the reverse)."""
    if generator is None:
        return 0
    return int(torch.randint(2**62, (1,), generator=generator, device=generator.device).item())


@METHODS.register("dfm", "discrete_flow_matching")
class DFM(TokenMethod):
    """Discrete Flow Matching, mask source (Gat et al. 2024), via the flow-matching package."""

    time_direction = "noise at 0, data at 1"  # flow_matching's mixture path: x_0 = mask, x_1 = data
    samplers = ("euler",)
    extra_tokens = 1  # the mask token, the last id of the backbone's vocabulary
    sampling_bsv = 1.5  # the logits and float64 blocks of the draw (bench sample at V = 50,257: 1.2)

    def __init__(self, scheduler: str = "quadratic", n: float = 1.0) -> None:
        super().__init__(scheduler=scheduler, n=n)
        if scheduler not in SCHEDULERS:
            raise ConfigError(f"unknown dfm scheduler '{scheduler}'; known: {', '.join(SCHEDULERS)}")
        if not n > 0:
            raise ConfigError(f"polynomial exponent n = {n!r} must be > 0")
        sched = QuadraticConvexScheduler() if scheduler == "quadratic" else PolynomialConvexScheduler(n)
        self.path = MixtureDiscreteProbPath(sched)

    def loss(self, model, ids, given, generator=None):
        mask_id = self.mask_id(model)
        t = torch.rand(ids.shape[0], generator=generator, device=ids.device)
        with torch.random.fork_rng(devices=[ids.device] if ids.is_cuda else []):
            torch.manual_seed(seeded(generator))
            x_t = self.path.sample(torch.full_like(ids, mask_id), ids, t).x_t
        x_t = torch.where(given, ids, x_t)
        logits = model(x_t, t)  # (B, S, V+1)
        return masked_cross_entropy(logits[..., :mask_id], ids, given)

    def jump_probability(self, t: float, h: float) -> float:
        """P(a position jumps in a step of size h from t): 1 - exp(-h·κ'_t/(1-κ_t)), the
        package's CTMC Euler step (its rate toward x1 ≠ x_t)."""
        out = self.path.scheduler(torch.tensor(t, dtype=torch.float64))
        return float(-torch.expm1(-h * out.d_alpha_t / (1 - out.alpha_t)))

    def draw_shares(self, cfg) -> list[float]:
        """The expected share of positions each call's step draws a token at: those that jump,
        then all of them at the last step."""
        grid = torch.linspace(0.0, 1.0, cfg.nfe + 1, dtype=torch.float64).tolist()
        return [self.jump_probability(t, after - t) for t, after in zip(grid[:-2], grid[1:-1])] + [1.0]

    @torch.no_grad()
    def sample(self, model, batch_size, seq_len, cfg, *, given_ids=None, given_mask=None,
               generator=None):
        """The package's MixtureDiscreteEulerSolver in law (float64 draws), drawing x1 only where
        a position jumps. A step from t draws x1 ~ p_θ(· | x_t) and, where x1 ≠ x_t, jumps to it
        with probability q_t; "jump with probability q_t to y ~ p_θ" is the same law (a jump to
        x_t itself changes nothing). The last step sets every position to its draw (q = 1)."""
        check_sampler("dfm", cfg, self.samplers)
        device = next(model.parameters()).device
        mask_id = backbone_config(model).vocab_size - 1
        x = torch.full((batch_size, seq_len), mask_id, device=device)
        movable = torch.ones_like(x, dtype=torch.bool)
        if given_mask is not None:  # a given token is certain: it never jumps
            x = torch.where(given_mask, given_ids, x)
            movable = ~given_mask
        grid = torch.linspace(0.0, 1.0, cfg.nfe + 1, dtype=torch.float64).tolist()
        for n in range(cfg.nfe):
            t, h = grid[n], grid[n + 1] - grid[n]
            logits = model(x, torch.full((batch_size,), t, device=device))  # (B, S, V+1)
            q = 1.0 if n == cfg.nfe - 1 else self.jump_probability(t, h)
            reveal_(x, logits, movable, q, cfg, mask_id, generator)  # the mask is never drawn
            del logits  # before the next call allocates its own
        return x
