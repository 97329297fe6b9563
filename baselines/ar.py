"""Autoregressive GPT-2-style baseline: the shared backbone in causal mode, no time input.

Trained with next-token cross-entropy (a target that is a given/prompt position is not
scored); sampled left to right with a KV cache (NFE = number of generated tokens), with
temperature, top-k and top-p, every draw in float64. Generation continues a given prefix,
which must be a prefix: an autoregressive model cannot fill holes.
"""

from __future__ import annotations

import torch

from pathbench.core.errors import ConfigError
from pathbench.core.registry import METHODS
from pathbench.engine.methods import Method, masked_cross_entropy
from pathbench.engine.sampling import check_sampler, denoiser_log_probs, gumbel_categorical


def prefix_length(given_mask: torch.Tensor | None) -> int:
    """Length of the given prefix shared by the batch; refuses given positions after a gap."""
    if given_mask is None or not given_mask.any():
        raise ConfigError("the autoregressive baseline needs a given prefix (at least a start token)")
    lengths = given_mask.long().cumprod(-1).sum(-1)  # (B,) leading run of given positions
    if (lengths != given_mask.sum(-1)).any():
        raise ConfigError("the autoregressive baseline can only continue a prefix; given positions "
                          "after a generated one (infilling) need a non-autoregressive method")
    if (lengths != lengths[0]).any():
        raise ConfigError("prefixes of different lengths in one batch; sample them in separate batches")
    return int(lengths[0])


@METHODS.register("ar", "gpt2", "autoregressive")
class Autoregressive(Method):
    """Causal GPT-2-style transformer on the shared backbone, next-token cross-entropy."""

    input_kind = "tokens"
    causal = True
    time_cond = False
    samplers = ("ancestral",)
    requires_prefix = True

    def __init__(self, kv_cache: bool = True) -> None:
        super().__init__(kv_cache=kv_cache)
        self.kv_cache = bool(kv_cache)

    def sampling_bytes_per_row(self, config, seq_len: int) -> float:
        """Keys and values of every layer (float32), and one position's logits and draw (every
        position's logits without the cache)."""
        if not self.kv_cache:
            return 4.0 * 2 * seq_len * config.vocab_size
        return 4.0 * 2 * config.n_layer * seq_len * config.d_model + 8.0 * 3 * config.vocab_size

    def loss(self, model, ids, given, generator=None):
        logits = model(ids[:, :-1])  # (B, S-1, V): position i predicts token i+1
        return masked_cross_entropy(logits, ids[:, 1:], given[:, 1:])

    @torch.no_grad()
    def sample(self, model, batch_size, seq_len, cfg, *, given_ids=None, given_mask=None,
               generator=None):
        check_sampler("ar", cfg, self.samplers)
        start = prefix_length(given_mask)
        out = given_ids[:, :seq_len].clone()
        cache = model.make_kv_cache(batch_size) if self.kv_cache else None
        logits = model(out[:, :start], kv_cache=cache)[:, -1]  # prefill: (B, V)
        for pos in range(start, seq_len):
            log_p = denoiser_log_probs(logits, cfg.top_k, cfg.temperature, cfg.top_p)
            out[:, pos] = gumbel_categorical(log_p, generator)
            if pos + 1 == seq_len:
                break
            if cache is not None:
                logits = model(out[:, pos:pos + 1], kv_cache=cache)[:, -1]
            else:
                logits = model(out[:, :pos + 1])[:, -1]
        return out
