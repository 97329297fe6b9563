"""Training recipes: the reference's grouping exactly, its update against an independent one,
the protocol's choice and its record, and refusals in one line."""

import pytest
import torch

from pathbench.core.config import apply_overrides
from pathbench.core.errors import ConfigError
from pathbench.core.registry import RECIPES
from pathbench.engine.model import Transformer, model_config
from pathbench.engine.plugins import load_all
from pathbench.engine.protocol import resolve_method_options, resolve_train_options
from pathbench.engine.recipes import REFERENCE_ADAM_RATIO, build_optimizers
from pathbench.engine.trainer import TrainConfig

load_all()


def tiny_simplex_model() -> Transformer:
    torch.manual_seed(0)
    return Transformer(model_config("tiny", 64, 16, causal=False, time_cond=True))


def test_registered_and_listed():
    assert {"adamw", "muon", "kl-flow-muon"} <= set(RECIPES.names())
    assert RECIPES.canonical("reference") == "kl-flow-muon"


def test_reference_grouping_puts_every_matrix_under_muon():
    model = tiny_simplex_model()
    muon, adam = build_optimizers(model, "kl-flow-muon", 0.02, 0.1)
    assert isinstance(muon, torch.optim.Muon) and type(adam) is torch.optim.Adam
    matrices = {id(p) for p in model.parameters() if p.ndim >= 2}
    vectors = {id(p) for p in model.parameters() if p.ndim < 2}
    in_muon = {id(p) for g in muon.param_groups for p in g["params"]}
    in_adam = {id(p) for g in adam.param_groups for p in g["params"]}
    assert in_muon == matrices and in_adam == vectors
    names = {n for n, p in model.named_parameters() if id(p) in in_muon}
    # the dense input embedding, the head and the time MLP are matrices under Muon
    assert any("emb" in n or "input" in n for n in names), names
    assert any("time" in n for n in names), names
    group = muon.param_groups[0]
    assert (group["lr"], group["momentum"], group["nesterov"], group["ns_steps"], group["weight_decay"],
            group["adjust_lr_fn"]) == (0.02, 0.95, True, 5, 0.0, "original")
    group = adam.param_groups[0]
    assert group["lr"] == pytest.approx(0.02 * REFERENCE_ADAM_RATIO) and group["betas"] == (0.9, 0.95)
    assert group["eps"] == 1e-10 and group["weight_decay"] == 0.0
    assert all(g["base_lr"] == g["lr"] for opt in (muon, adam) for g in opt.param_groups)


def _reference_muon_step(w, g, lr, buf):
    """An independent Muon step (momentum 0.95, Nesterov, quintic Newton-Schulz x5, shape scale)."""
    buf = 0.95 * buf + 0.05 * g
    u = 0.05 * g + 0.95 * buf  # g.lerp(buf, 0.95)
    x = u / (u.norm() + 1e-7)
    transpose = x.shape[0] > x.shape[1]
    x = x.T if transpose else x
    for _ in range(5):
        a = x @ x.T
        x = 3.4445 * x + (-4.7750 * a + 2.0315 * a @ a) @ x
    x = x.T if transpose else x
    return w - lr * max(1.0, w.shape[0] / w.shape[1]) ** 0.5 * x, buf


def test_muon_update_matches_an_independent_one():
    torch.manual_seed(1)
    w = torch.nn.Parameter(torch.randn(48, 16))
    (opt,) = build_optimizers(torch.nn.ParameterDict({"w": w}), "kl-flow-muon", 0.01, 0.1)
    expect, buf = w.detach().clone(), torch.zeros(48, 16)
    for _ in range(3):
        g = torch.randn(48, 16)
        w.grad = g.clone()
        opt.step()
        expect, buf = _reference_muon_step(expect, g, 0.01, buf)
    # torch orthogonalises in bfloat16, the reference too: agreement to bf16 precision
    assert torch.allclose(w.detach(), expect, atol=2e-3), (w.detach() - expect).abs().max()


def test_recipe_key_alias_and_refusals():
    assert apply_overrides(TrainConfig(), {"recipe": "reference"}, "train").optimizer == "kl-flow-muon"
    with pytest.raises(ConfigError, match="unknown training recipe 'sgd'; known: adamw, kl-flow-muon, muon"):
        TrainConfig(optimizer="sgd")
    with pytest.raises(ConfigError, match="name the same setting"):
        apply_overrides(TrainConfig(), {"recipe": "adamw", "optimizer": "muon"}, "train")
    with pytest.raises(ConfigError, match="recipe 'kl-flow-muon' does not work with parallel 'fsdp'"):
        TrainConfig(optimizer="kl-flow-muon", parallel="fsdp")


@pytest.mark.parametrize("protocol", ["kl-flow", "plain"])
def test_protocol_trains_paths_with_the_reference_recipe_and_baselines_with_their_own(protocol):
    _, record = resolve_method_options("kl", protocol, {})
    options, record = resolve_train_options(record, {})
    assert options == {"optimizer": "kl-flow-muon"} and record.train == {"optimizer": "kl-flow-muon"}
    options, record = resolve_train_options(record, {"optimizer": "adamw", "lr": 1e-3})
    assert options["optimizer"] == "adamw" and record.overridden["train.optimizer"] == "adamw"
    _, record = resolve_method_options("dfm", protocol, {})
    options, record = resolve_train_options(record, {"lr": 1e-3})
    assert options == {"lr": 1e-3} and record.train == {}
    assert "training recipe" in record.not_applied["method"]
