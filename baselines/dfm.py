"""Discrete Flow Matching (Gat et al. 2024): mixture path from an all-mask source.

    x_t^i = x1^i with probability κ_t, else [MASK];      κ_t = t^n   or   κ_t = 2t - t²

The denoiser predicts p_θ(x1^i | x_t) with cross-entropy; sampling runs the CTMC Euler
solver of the ``flow-matching`` package (probability velocity κ'_t/(1-κ_t)·(δ_{x1} - δ_{x_t}))
with every categorical draw in float64. The quadratic κ = 2t - t² is the schedule of the
KL-flow reference code; κ = t^n is the package's polynomial scheduler.
"""

from __future__ import annotations

import torch
from flow_matching.path import MixtureDiscreteProbPath
from flow_matching.path.scheduler import ConvexScheduler, PolynomialConvexScheduler
from flow_matching.path.scheduler.scheduler import SchedulerOutput
from flow_matching.solver import MixtureDiscreteEulerSolver
from flow_matching.utils import ModelWrapper
from torch import Tensor

from harness.core.errors import ConfigError
from harness.core.registry import BASELINES
from harness.core.rng import RowGenerators
from harness.engine.methods import TokenMethod, backbone_config, masked_cross_entropy
from harness.engine.sampling import check_sampler, denoiser_log_probs

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


class _Posterior(ModelWrapper):
    """The backbone as the solver wants it: probabilities over data tokens, float64."""

    def __init__(self, model, mask_id, cfg, given_ids=None, given_mask=None) -> None:
        super().__init__(model)
        self.mask_id, self.cfg, self.given_ids, self.given_mask = mask_id, cfg, given_ids, given_mask

    def forward(self, x: Tensor, t: Tensor, **extras) -> Tensor:
        logits = self.model(x, t.float())  # (B, S, V+1)
        logits[..., self.mask_id] = float("-inf")  # the denoiser never predicts the mask
        probs = denoiser_log_probs(logits, self.cfg.top_k, self.cfg.temperature, self.cfg.top_p).exp()
        if self.given_mask is not None:  # a given token is certain: no jump ever leaves it
            onehot = torch.nn.functional.one_hot(self.given_ids, probs.shape[-1]).to(probs.dtype)
            probs = torch.where(self.given_mask.unsqueeze(-1), onehot, probs)
        return probs


@BASELINES.register("dfm", "discrete_flow_matching")
class DFM(TokenMethod):
    """Discrete Flow Matching, mask source (Gat et al. 2024), via the flow-matching package."""

    time_direction = "noise at 0, data at 1"  # flow_matching's mixture path: x_0 = mask, x_1 = data
    samplers = ("euler",)
    extra_tokens = 1  # the mask token, the last id of the backbone's vocabulary
    sampling_bsv = 13.0  # the package's float64 posteriors and draws (bench sample at V = 50,257)

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

    def sample(self, model, batch_size, seq_len, cfg, *, given_ids=None, given_mask=None,
               generator=None):
        check_sampler("dfm", cfg, self.samplers)
        if isinstance(generator, RowGenerators):
            # the package draws from torch's global stream for the whole batch: per-sample
            # streams are honoured by sampling row by row (B solver runs of one row each)
            return torch.cat([self.sample(model, 1, seq_len, cfg, generator=g,
                                          given_ids=None if given_ids is None else given_ids[r:r + 1],
                                          given_mask=None if given_mask is None else given_mask[r:r + 1])
                              for r, g in enumerate(generator.generators)])
        device = next(model.parameters()).device
        vocab = backbone_config(model).vocab_size
        x_init = torch.full((batch_size, seq_len), vocab - 1, device=device)
        if given_mask is not None:
            x_init = torch.where(given_mask, given_ids, x_init)
        solver = MixtureDiscreteEulerSolver(_Posterior(model, vocab - 1, cfg, given_ids, given_mask),
                                            self.path, vocabulary_size=vocab)
        grid = torch.linspace(0.0, 1.0, cfg.nfe + 1, dtype=torch.float64, device=device)
        with torch.random.fork_rng(devices=[device] if device.type == "cuda" else []):
            torch.manual_seed(seeded(generator))
            return solver.sample(x_init=x_init, step_size=None, time_grid=grid,
                                 dtype_categorical=torch.float64)
