"""The samplers of dfm, sedd and flowmap as they were first written, kept for tests only.

Plain and float64: dfm through the flow-matching package's MixtureDiscreteEulerSolver (draws
x1 at every position, every step), sedd by Gumbel-max over the whole vocabulary plus the
"stay masked" outcome, flowmap on a float64 state with functional jumps. The fast samplers in
baselines/ must give the same samples in law (two-sample chi-square) and, where nothing is
drawn, the same trajectories.
"""

import math

import torch
from flow_matching.solver import MixtureDiscreteEulerSolver
from flow_matching.utils import ModelWrapper

from pathbench.baselines.dfm import seeded
from pathbench.baselines.sedd import total_noise
from pathbench.engine.methods import backbone_config
from pathbench.engine.sampling import denoiser_log_probs, draw_tokens, gumbel_categorical


class _Posterior(ModelWrapper):
    """The backbone as the solver wants it: probabilities over data tokens, float64."""

    def __init__(self, model, mask_id, cfg, given_ids=None, given_mask=None) -> None:
        super().__init__(model)
        self.mask_id, self.cfg, self.given_ids, self.given_mask = mask_id, cfg, given_ids, given_mask

    def forward(self, x, t, **extras):
        logits = self.model(x, t.float()).clone()  # (B, S, V+1)
        logits[..., self.mask_id] = float("-inf")  # the denoiser never predicts the mask
        probs = denoiser_log_probs(logits, self.cfg.top_k, self.cfg.temperature, self.cfg.top_p).exp()
        if self.given_mask is not None:  # a given token is certain: no jump ever leaves it
            onehot = torch.nn.functional.one_hot(self.given_ids, probs.shape[-1]).to(probs.dtype)
            probs = torch.where(self.given_mask.unsqueeze(-1), onehot, probs)
        return probs


def reference_dfm(method, model, batch_size, seq_len, cfg, *, given_ids=None, given_mask=None, generator=None):
    vocab = backbone_config(model).vocab_size
    x_init = torch.full((batch_size, seq_len), vocab - 1)
    if given_mask is not None:
        x_init = torch.where(given_mask, given_ids, x_init)
    solver = MixtureDiscreteEulerSolver(_Posterior(model, vocab - 1, cfg, given_ids, given_mask),
                                        method.path, vocabulary_size=vocab)
    grid = torch.linspace(0.0, 1.0, cfg.nfe + 1, dtype=torch.float64)
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(seeded(generator))
        return solver.sample(x_init=x_init, step_size=None, time_grid=grid, dtype_categorical=torch.float64)


def reference_sedd(method, model, batch_size, seq_len, cfg, *, given_ids=None, given_mask=None, generator=None):
    mask_id = method.mask_id(model)
    x = torch.full((batch_size, seq_len), mask_id)
    if given_mask is not None:
        x = torch.where(given_mask, given_ids, x)
    taus = torch.linspace(1.0, method.eps, cfg.nfe + 1, dtype=torch.float64)
    for n in range(cfg.nfe):
        logits = model(x, taus[n].expand(batch_size).float())[..., :mask_id]
        log_p = denoiser_log_probs(logits, cfg.top_k, cfg.temperature, cfg.top_p)  # (B,S,V) float64
        masked = x == mask_id
        if n == cfg.nfe - 1:
            fill = log_p.argmax(-1) if cfg.final == "argmax" else gumbel_categorical(log_p, generator)
            return torch.where(masked, fill, x)
        sigma, sigma_next = total_noise(taus[n], method.eps).item(), total_noise(taus[n + 1], method.eps).item()
        if cfg.name == "tweedie":
            reveal = (math.exp(-sigma_next) - math.exp(-sigma)) / -math.expm1(-sigma)
        else:
            reveal = min(1.0, (sigma - sigma_next) / math.expm1(sigma))
        stay = torch.full_like(log_p[..., :1], math.log1p(-reveal) if reveal < 1 else float("-inf"))
        choice = gumbel_categorical(torch.cat([log_p + math.log(reveal), stay], -1), generator)
        x = torch.where(masked, choice, x)
    raise AssertionError("unreachable")


def reference_flowmap(method, model, batch_size, seq_len, cfg, *, prior=None, given_ids=None, given_mask=None,
                      generator=None):
    """``prior``: the float64 start z0 (B,S,V), to compare trajectories from the same draw."""
    vocab = model.config.vocab_size
    times = method.time_grid(method.path, cfg.nfe, cfg.grid)
    z = prior.clone() if prior is not None else method.path.sample_prior((batch_size, seq_len, vocab),
                                                                         generator=generator)
    clamp = given_mask is not None and bool(given_mask.any())
    if clamp:
        mask, z_given = given_mask.unsqueeze(-1), method.path.target(given_ids, vocab)
        z = torch.where(mask, z_given, z)
    for n in range(cfg.nfe):
        s, t = times[n].expand(batch_size), times[n + 1].expand(batch_size)
        logits = model(method.path.model_input(z).to(next(model.parameters()).dtype), s.float(), t_end=t.float())
        if n == cfg.nfe - 1:
            ids = logits.argmax(-1) if cfg.final == "argmax" else draw_tokens(logits, cfg, generator)
            return torch.where(given_mask, given_ids, ids) if clamp else ids
        z = method.jump(z, logits.to(z.dtype).softmax(-1), s, t)
        if clamp:
            z = torch.where(mask, z_given, z)
    raise AssertionError("unreachable")
