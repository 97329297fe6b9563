"""A complete third-party baseline: position-aware unigram model on the shared backbone."""

import torch

from pathbench.core.registry import METHODS
from pathbench.engine.methods import Method, backbone_config, masked_cross_entropy
from pathbench.engine.sampling import check_sampler, denoiser_log_probs, gumbel_categorical


@METHODS.register("unigram")
class Unigram(Method):
    """Predicts every token from its position alone: a floor any real method must beat."""

    input_kind = "tokens"
    time_cond = False          # the backbone gets no time input
    samplers = ("independent",)

    def blank(self, model, ids):
        # every position sees the same token, so only the position (rotary) informs the output
        return torch.zeros_like(ids)

    def loss(self, model, ids, given, generator=None):
        logits = model(self.blank(model, ids))  # (B, S, V)
        return masked_cross_entropy(logits, ids, given)

    @torch.no_grad()
    def sample(self, model, batch_size, seq_len, cfg, *, given_ids=None, given_mask=None,
               generator=None):
        check_sampler("unigram", cfg, self.samplers)
        device = next(model.parameters()).device
        ids = torch.zeros(batch_size, seq_len, dtype=torch.long, device=device)
        log_p = denoiser_log_probs(model(ids), cfg.top_k, cfg.temperature, cfg.top_p)  # float64
        ids = gumbel_categorical(log_p, generator)
        if given_mask is not None:
            ids = torch.where(given_mask, given_ids, ids)
        assert ids.max() < backbone_config(model).vocab_size
        return ids
