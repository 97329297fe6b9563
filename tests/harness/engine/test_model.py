"""The shared backbone: shapes, input kinds, time conditioning, causality, KV cache, presets."""

import pytest
import torch

from pathbench.core.errors import ConfigError
from pathbench.engine.model import PRESETS, KVCache, Transformer, model_config

V, S = 50, 12


def tiny(**overrides):
    torch.manual_seed(0)
    model = Transformer(model_config("tiny", V, 16, **overrides)).eval()
    return model


def randomise_adaln(model):
    """adaLN-zero starts every block as the identity (t has no effect at init, by design);
    give the modulation weights values as a trained model would have."""
    g = torch.Generator().manual_seed(1)
    with torch.no_grad():
        for name, p in model.named_parameters():
            if "ada" in name:
                p.copy_(0.1 * torch.randn(p.shape, generator=g))
    return model


def test_shapes_for_both_input_kinds():
    model = tiny()
    ids = torch.randint(V, (3, S))
    probs = torch.softmax(torch.randn(3, S, V, dtype=torch.float64), -1)
    t = torch.rand(3)
    assert model(ids, t).shape == (3, S, V)
    assert model(probs, t).shape == (3, S, V)
    assert model(probs, 0.5).shape == (3, S, V)
    assert model(probs, torch.tensor(0.5)).shape == (3, S, V)  # 0-dim t is broadcast to B
    noised = torch.nn.functional.one_hot(ids, V).double() + 0.3 * torch.randn(3, S, V, dtype=torch.float64)
    assert model(noised, t).dtype == torch.float32  # any real vectors; logits in the weights' dtype


def test_ids_equal_their_one_hot_vectors():
    model = randomise_adaln(tiny())
    ids = torch.randint(V, (2, S))
    t = torch.tensor([0.2, 0.7])
    one_hot = torch.nn.functional.one_hot(ids, V).double()
    torch.testing.assert_close(model(ids, t), model(one_hot, t), atol=1e-5, rtol=1e-5)


def test_time_changes_the_output_once_adaln_is_not_zero():
    model = tiny()
    ids = torch.randint(V, (2, S))
    torch.testing.assert_close(model(ids, 0.1), model(ids, 0.9))  # adaLN-zero at init
    randomise_adaln(model)
    assert (model(ids, 0.1) - model(ids, 0.9)).abs().max() > 1e-3


@pytest.mark.parametrize("causal", [True, False])
def test_causal_mask(causal):
    model = randomise_adaln(tiny(causal=causal, time_cond=not causal))
    ids = torch.randint(V, (1, S))
    changed = ids.clone()
    changed[0, -1] = (ids[0, -1] + 1) % V
    t = None if causal else 0.5
    diff = (model(ids, t) - model(changed, t))[0, :-1].abs().max()
    assert (diff == 0) if causal else (diff > 1e-6)


def test_kv_cache_decoding_equals_full_forward():
    model = tiny(causal=True, time_cond=False)
    ids = torch.randint(V, (2, S))
    full = model(ids)
    cache = KVCache(model.config, batch=2)
    steps = [model(ids[:, :5], kv_cache=cache)] + [model(ids[:, i:i + 1], kv_cache=cache) for i in range(5, S)]
    torch.testing.assert_close(torch.cat(steps, 1), full, atol=1e-5, rtol=1e-5)
    assert cache.pos == S


def test_kv_cache_chunks_after_a_prefix_keep_the_causal_mask():
    model = tiny(causal=True, time_cond=False)
    ids = torch.randint(V, (2, S))
    cache = model.make_kv_cache(2)
    chunks = [model(ids[:, a:b], kv_cache=cache) for a, b in [(0, 3), (3, 4), (4, 9), (9, S)]]
    torch.testing.assert_close(torch.cat(chunks, 1), model(ids), atol=1e-5, rtol=1e-5)
    cache.reset()  # reuse for a new prompt
    torch.testing.assert_close(model(ids[:, :4], kv_cache=cache), model(ids[:, :4]), atol=1e-5, rtol=1e-5)


@pytest.mark.parametrize("preset, low, high", [
    ("tiny", 0.8e6, 2e6), ("small", 10e6, 20e6), ("paper-150m", 85e6, 160e6), ("paper-1.5b", 1.3e9, 1.7e9)])
def test_preset_sizes(preset, low, high):
    with torch.device("meta"):
        model = Transformer(model_config(preset, 8192, 1024))
    assert low <= model.num_params() <= high
    assert model.flops_per_token(1024) > 6 * model.num_params()


def test_bad_input():
    with pytest.raises(ConfigError, match="unknown preset 'tinyy'; known: paper-1.5b, paper-150m, small, tiny"):
        model_config("tinyy", V, 16)
    with pytest.raises(ConfigError, match="unknown model option 'layers'; known: .*n_layer"):
        model_config("tiny", V, 16, layers=2)
    model = tiny()
    with pytest.raises(ConfigError, match="sequence length 17 exceeds the preset's maximum 16"):
        model(torch.randint(V, (1, 17)), 0.5)
    with pytest.raises(ConfigError, match="input has 49 classes, the model's vocabulary is 50"):
        model(torch.rand(1, 4, V - 1), 0.5)
    with pytest.raises(ConfigError, match="this model is time-conditioned: pass t"):
        model(torch.randint(V, (1, 4)))
    with pytest.raises(ConfigError, match="t has 3 values for a batch of 2"):
        model(torch.randint(V, (2, 4)), torch.rand(3))
    with pytest.raises(ConfigError, match="a KV cache needs a causal model"):
        model(torch.randint(V, (1, 4)), 0.5, kv_cache=KVCache(model.config, 1))
    causal = tiny(causal=True, time_cond=False)
    cache = causal.make_kv_cache(1)
    causal(torch.randint(V, (1, 10)), kv_cache=cache)
    with pytest.raises(ConfigError, match="sequence length 17 exceeds the preset's maximum 16"):
        causal(torch.randint(V, (1, 7)), kv_cache=cache)
    with pytest.raises(ConfigError, match="batch 2 does not match the KV cache's batch 1"):
        causal(torch.randint(V, (2, 1)), kv_cache=cache)
    assert set(PRESETS) == {"tiny", "small", "paper-150m", "paper-1.5b"}
