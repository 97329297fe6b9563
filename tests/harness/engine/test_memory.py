"""Sampling within a memory budget: the batch it allows (a formula of the sizes), and per-sample
streams that make a sample independent of the batch it is drawn in, for every method."""

import pytest
import torch

from pathbench.core.errors import ConfigError
from pathbench.core.registry import METHODS
from pathbench.core.rng import row_generators
from pathbench.engine.memory import bytes_per_row, fit_batch, memory_budget
from pathbench.engine.model import Transformer, model_config
from pathbench.engine.plugins import load_all
from pathbench.engine.protocol import resolve_method_options
from pathbench.engine.sampling import SamplerConfig

V, S = 11, 6
load_all()  # the built-in methods, the simplex paths among them


def tiny(name):
    options, _ = resolve_method_options(name, "kl-flow", {})
    method = METHODS.build(name, **options)
    torch.manual_seed(0)
    model = Transformer(model_config("tiny", V + method.extra_tokens, S, causal=method.causal,
                                     time_cond=method.time_cond)).double().eval()
    return method, model


def test_the_bytes_of_a_row_follow_the_formula():
    method, model = tiny("kl")
    cfg = model.config  # float64 weights: 8 bytes an activation
    expected = 4 * S * V * 3.5 + 8 * S * (cfg.d_model * (6 + 2 * cfg.mlp_ratio) + cfg.n_head * S)
    assert bytes_per_row(method, model, S) == int(expected)


def test_the_batch_is_cut_to_what_fits_and_a_row_that_cannot_fit_is_one_clear_error():
    method, model = tiny("sedd")
    row = bytes_per_row(method, model, S)
    assert fit_batch(method, model, S, 16, None) == 16
    assert fit_batch(method, model, S, 16, int(3.5 * row)) == 3
    assert fit_batch(method, model, S, 2, 100 * row) == 2
    with pytest.raises(ConfigError, match="more than the memory budget"):
        fit_batch(method, model, S, 16, row - 1)


def test_budgets():
    assert memory_budget(None, "cpu") is None and memory_budget("auto", "cpu") is None
    assert memory_budget("none", "cpu") is None
    assert memory_budget(2.5, "cpu") == 2_500_000_000
    for bad in (0, -1, "lots", True):
        with pytest.raises(ConfigError, match="memory_gb"):
            memory_budget(bad, "cpu")


CASES = [("kl", SamplerConfig("basic", nfe=4)), ("kl", SamplerConfig("sampling", nfe=4, top_k=None)),
         ("linear", SamplerConfig("semi", nfe=4, top_k=3)), ("fisher_rao", SamplerConfig("hybrid", nfe=5, t_star=0.1)),
         ("euclidean", SamplerConfig("sampling", nfe=3, top_k=4, final="sample")),
         ("sedd", SamplerConfig("tweedie", nfe=4)), ("sedd", SamplerConfig("euler", nfe=4, final="sample")),
         ("dfm", SamplerConfig("euler", nfe=4)), ("ar", SamplerConfig("ancestral", nfe=S - 1))]


@pytest.mark.parametrize("name,cfg", CASES, ids=[f"{n}-{c.name}" for n, c in CASES])
def test_with_row_streams_a_sample_does_not_depend_on_its_batch(name, cfg):
    method, model = tiny(name)
    if name != "ar":
        cfg = method.sampler_config(name, cfg.to_dict())

    def draw(rows):
        given = method.unconditional_given(len(rows), S, 0, "cpu")
        return method.sample(model, len(rows), S, cfg, generator=row_generators(5, rows), **given)

    whole = draw(range(5))
    split = torch.cat([draw(range(0, 2)), draw(range(2, 5))])
    assert torch.equal(whole, split)
    assert not torch.equal(whole[0], whole[1])  # the rows have streams of their own
