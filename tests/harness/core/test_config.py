"""key=value overrides on typed defaults."""

import pytest

from pathbench.core.config import DataConfig, apply_overrides, parse_overrides, parse_value
from pathbench.core.errors import ConfigError
from pathbench.engine.trainer import TrainConfig


def test_values_are_typed():
    assert parse_value("3") == 3 and parse_value("1e-3") == 0.001 and parse_value("0.5") == 0.5
    assert parse_value("true") is True and parse_value("None") is None
    assert parse_value("hf:gpt2") == "hf:gpt2"


def test_sections_and_bare_keys():
    got = parse_overrides(["lr=3e-4", "model.n_layer=2", "data.seq_len=64", "method.beta=0.05"])
    assert got == {"train": {"lr": 3e-4}, "model": {"n_layer": 2}, "data": {"seq_len": 64},
                   "method": {"beta": 0.05}}


def test_apply_converts_to_the_field_type_and_validates():
    cfg = apply_overrides(TrainConfig(), {"lr": 1, "steps": 20.0, "compile": True}, "train")
    assert cfg.lr == 1.0 and isinstance(cfg.lr, float) and cfg.steps == 20 and cfg.compile is True
    data = apply_overrides(DataConfig(), {"corpus": "files:*.txt", "seq_len": 32}, "data")
    assert data.corpus == "files:*.txt" and data.seq_len == 32


@pytest.mark.parametrize(
    "section, values, message",
    [
        ("train", {"lrr": 1}, "unknown train option 'lrr'; known: batch_size, .*lr,"),
        ("train", {"steps": 2.5}, "train.steps = 2.5 must be an integer"),
        ("train", {"lr": "fast"}, "train.lr = 'fast' must be a number"),
        ("train", {"optimizer": "sgd"}, "unknown training recipe 'sgd'; known: adamw, kl-flow-muon, muon"),
        ("train", {"steps": 0}, "steps = 0 must be >= 1"),
    ],
)
def test_bad_overrides(section, values, message):
    with pytest.raises(ConfigError, match=message):
        apply_overrides(TrainConfig(), values, section)


@pytest.mark.parametrize("item, message", [
    ("lr", "override 'lr' is not key=value"),
    ("optim.lr=1", "unknown section 'optim'; known: train, model, data, method"),
])
def test_bad_override_syntax(item, message):
    with pytest.raises(ConfigError, match=message):
        parse_overrides([item])
