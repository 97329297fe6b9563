"""The autoregressive baseline: KV-cache decoding is exact, prefixes only."""

import pytest
import torch

from pathbench.baselines.ar import Autoregressive, prefix_length
from pathbench.core.errors import ConfigError
from pathbench.engine.model import Transformer, model_config
from pathbench.engine.sampling import SamplerConfig


def test_kv_cache_sampling_equals_cache_free_sampling():
    torch.manual_seed(0)
    model = Transformer(model_config("tiny", 50, 24, causal=True, time_cond=False)).eval()
    given_ids = torch.randint(50, (3, 24), generator=torch.Generator().manual_seed(1))
    given_mask = torch.zeros(3, 24, dtype=torch.bool)
    given_mask[:, :5] = True
    cfg = SamplerConfig("ancestral", top_k=20, temperature=0.9)
    outs = [Autoregressive(kv_cache=cache).sample(model, 3, 24, cfg, given_ids=given_ids, given_mask=given_mask,
                                                   generator=torch.Generator().manual_seed(3))
            for cache in (True, False)]
    assert torch.equal(outs[0], outs[1])
    assert torch.equal(outs[0][:, :5], given_ids[:, :5])


def test_loss_is_next_token_cross_entropy():
    torch.manual_seed(0)
    model = Transformer(model_config("tiny", 20, 8, causal=True, time_cond=False))
    ids = torch.randint(20, (2, 8))
    given = torch.zeros(2, 8, dtype=torch.bool)
    logits = model(ids[:, :-1])
    expected = torch.nn.functional.cross_entropy(logits.reshape(-1, 20), ids[:, 1:].reshape(-1))
    torch.testing.assert_close(Autoregressive().loss(model, ids, given), expected)


def test_only_prefixes_can_be_continued():
    mask = torch.tensor([[True, True, False, True]])
    with pytest.raises(ConfigError, match="can only continue a prefix"):
        prefix_length(mask)
    with pytest.raises(ConfigError, match="needs a given prefix"):
        prefix_length(torch.zeros(1, 4, dtype=torch.bool))
    assert prefix_length(torch.tensor([[True, True, False, False]])) == 2
