"""Every baseline on the shared backbone: learns, samples valid ids, keeps given positions."""

import pytest
import torch

import pathbench.baselines  # noqa: F401  (registers dfm, sedd, ar)
from pathbench.core.registry import METHODS
from pathbench.data.corpus import BatchLoader
from pathbench.engine.model import Transformer, model_config
from pathbench.engine.sampling import SamplerConfig
from pathbench.engine.trainer import TrainConfig, evaluate, train

BASELINE_NAMES = ["dfm", "sedd", "ar"]


def build(method, vocab, seq_len=32):
    torch.manual_seed(0)
    m = METHODS.build(method)
    cfg = model_config("tiny", vocab + m.extra_tokens, seq_len, causal=m.causal, time_cond=m.time_cond)
    return m, Transformer(cfg)


@pytest.mark.parametrize("method", BASELINE_NAMES)
def test_loss_is_finite_and_falls_on_the_embedded_corpus(method, bbc_small, tmp_path):
    m, model = build(method, bbc_small.tokenizer.vocab_size)
    val = lambda: list(BatchLoader(bbc_small.val, 16, shuffle=False).epoch())[:4]  # noqa: E731
    before = evaluate(m, model, val(), torch.device("cpu"))
    cfg = TrainConfig(steps=60, batch_size=16, lr=3e-3, warmup=5, eval_every=60, ckpt_every=60,
                      log_every=10, progress=False)
    result = train(m, model, BatchLoader(bbc_small.train, 16, seed=0), val, cfg, tmp_path)
    assert torch.isfinite(torch.tensor([before, result.val_loss])).all()
    assert result.val_loss < before - 0.5, (before, result.val_loss)


@pytest.mark.parametrize("method, sampler", [("dfm", "euler"), ("sedd", "tweedie"), ("sedd", "euler"),
                                             ("ar", "ancestral")])
def test_samples_are_valid_ids_and_keep_given_positions(method, sampler):
    vocab = 40
    m, model = build(method, vocab, seq_len=12)
    model.eval()
    given_ids = torch.randint(vocab, (3, 12), generator=torch.Generator().manual_seed(1))
    given_mask = torch.zeros(3, 12, dtype=torch.bool)
    given_mask[:, :4] = True  # a prompt prefix (the only kind an AR model can continue)
    if method != "ar":
        given_mask[:, 8] = True  # and an infilling context
    ids = m.sample(model, 3, 12, SamplerConfig(sampler, nfe=5), given_ids=given_ids,
                   given_mask=given_mask, generator=torch.Generator().manual_seed(0))
    assert ids.shape == (3, 12) and ids.dtype == torch.long
    assert ids.min() >= 0 and ids.max() < vocab  # never the mask/absorbing id
    assert torch.equal(ids[given_mask], given_ids[given_mask])


@pytest.mark.parametrize("method", BASELINE_NAMES)
def test_same_seed_same_samples(method):
    m, model = build(method, 30, seq_len=10)
    model.eval()
    given = {"given_ids": torch.zeros(2, 10, dtype=torch.long), "given_mask": torch.zeros(2, 10, dtype=torch.bool)}
    given["given_mask"][:, 0] = True
    cfg = SamplerConfig(m.samplers[0], nfe=4, final="sample")
    a, b = (m.sample(model, 2, 10, cfg, generator=torch.Generator().manual_seed(7), **given) for _ in range(2))
    assert torch.equal(a, b)


def test_unknown_sampler_names_the_method():
    from pathbench.core.errors import ConfigError

    m, model = build("dfm", 20, seq_len=8)
    with pytest.raises(ConfigError, match="method 'dfm' has no sampler 'hybrid'; known: euler"):
        m.sample(model, 1, 8, SamplerConfig("hybrid"))
