"""The sampler's semantics written plainly, in float64, through the paths' functional API.

Kept for tests only: the fast driver (pathbench.engine.sampling.sample_path: float32 state, in-place
buffers, draws among the top-k) must produce the same samples in law as this one.
"""

import torch

from pathbench.engine.sampling import SamplerConfig, denoiser_log_probs, grid_intervals, gumbel_categorical


def reference_sample_path(path, denoise, shape, cfg: SamplerConfig, *, given_ids=None, given_mask=None,
                          generator=None):
    batch, _, vocab = shape
    steps = grid_intervals(cfg)
    times = path.time_grid(steps, cfg.grid)
    z = path.sample_prior(shape, generator=generator)  # (B, S, V) float64
    clamp = given_mask is not None and bool(given_mask.any())
    if clamp:
        mask = given_mask.unsqueeze(-1)
        z_given = path.target(given_ids, vocab)
        z = torch.where(mask, z_given, z)
    for n in range(cfg.nfe):
        t = times[n].item()
        logits = denoise(path.model_input(z), torch.full((batch,), t, dtype=torch.float64)).double()
        drawn = denoiser_log_probs(logits, cfg.top_k, cfg.temperature, cfg.top_p)  # truncated w'
        if n == cfg.nfe - 1:
            ids = logits.argmax(-1) if cfg.final == "argmax" else gumbel_categorical(drawn, generator)
            return torch.where(given_mask, given_ids, ids) if clamp else ids
        h = times[n + 1].item() - t
        scheme = cfg.name if cfg.name != "hybrid" else ("basic" if t < cfg.t_star else "sampling")
        if scheme == "basic":  # the full denoiser distribution
            z = path.step(z, path.expected_velocity(z, logits.softmax(-1), t), t, h)
        else:
            ids = gumbel_categorical(drawn, generator)
            if scheme == "semi":
                z = path.step(z, path.cond_velocity(z, path.target(ids, vocab), t), t, h)
            else:
                x0 = path.sample_prior(z.shape, generator=generator)
                z = path.interpolate(x0, path.target(ids, vocab), t + h)
        if clamp:
            z = torch.where(mask, z_given, z)
    raise AssertionError("unreachable")
