"""A masked-diffusion baseline as a third party writes it (MDLM-like, absorbing state), on the
token-baseline base: used by the tests of the plugin contract. ``leave_masks=true`` is the bug
the harness must catch: sample() returning the mask id."""

import torch

from pathbench.core.registry import METHODS
from pathbench.engine.methods import TokenMethod, masked_cross_entropy
from pathbench.engine.sampling import check_sampler, denoiser_log_probs, gumbel_categorical


@METHODS.register("masked")
class Masked(TokenMethod):
    """Absorbing-state masked diffusion: mask each token with probability t, predict it back."""

    samplers = ("reveal",)
    extra_tokens = 1  # the mask, id V

    def __init__(self, leave_masks: bool = False) -> None:
        super().__init__(leave_masks=leave_masks)
        self.leave_masks = bool(leave_masks)

    def loss(self, model, ids, given, generator=None):
        t = torch.rand(ids.shape[0], 1, generator=generator, device=ids.device)  # τ: 0 data, 1 noise
        masked = (torch.rand(ids.shape, generator=generator, device=ids.device) < t) & ~given
        x_t = torch.where(masked, torch.full_like(ids, self.mask_id(model)), ids)
        logits = model(x_t, t.squeeze(1))[..., :self.mask_id(model)]  # (B, S, V): never the mask
        return masked_cross_entropy(logits, ids, given | ~masked)  # mean over masked positions

    @torch.no_grad()
    def sample(self, model, batch_size, seq_len, cfg, *, given_ids=None, given_mask=None, generator=None):
        check_sampler("masked", cfg, self.samplers)
        device, mask = next(model.parameters()).device, self.mask_id(model)
        x = torch.full((batch_size, seq_len), mask, dtype=torch.long, device=device)
        if given_mask is not None:
            x = torch.where(given_mask, given_ids, x)
        steps = max(1, cfg.nfe)
        for k in range(steps):  # reveal an equal share of the still-masked positions per call
            tau = torch.full((batch_size,), 1 - k / steps, device=device)
            log_p = denoiser_log_probs(model(x, tau)[..., :mask], cfg.top_k, cfg.temperature, cfg.top_p)
            draw = gumbel_categorical(log_p, generator)
            reveal = (x == mask) & (torch.rand(x.shape, generator=generator, device=device) < 1 / (steps - k))
            if self.leave_masks and k == steps - 1:
                reveal[:, -1] = False  # the bug: the last position stays masked
            x = torch.where(reveal, draw, x)
        return x
