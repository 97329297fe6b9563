"""The shared trainer on the embedded corpus: learning, exact resume, guards, checkpoints."""

import json
import math

import pytest
import torch

import pathbench.paths  # noqa: F401,E402  (registers the paths)
from pathbench.baselines.ar import Autoregressive
from pathbench.core.errors import ConfigError
from pathbench.core.registry import METHODS
from pathbench.data.corpus import BatchLoader
from pathbench.engine.checkpoint import latest_checkpoint, load_checkpoint
from pathbench.engine.methods import register_path_methods
from pathbench.engine.model import Transformer, model_config
from pathbench.engine.trainer import TrainConfig, TrainingDiverged, build_optimizers, evaluate, lr_factor, train

register_path_methods()


def run(data, out, steps, resume=False, method="kl", **cfg):
    torch.manual_seed(0)
    model = Transformer(model_config("tiny", data.tokenizer.vocab_size, 32))
    options = dict(steps=steps, batch_size=16, lr=3e-3, warmup=10, eval_every=50, eval_batches=4,
                   ckpt_every=5, log_every=1, progress=False)
    options.update(cfg)
    result = train(METHODS.build(method), model, BatchLoader(data.train, 16, seed=0),
                   lambda: BatchLoader(data.val, 16, shuffle=False).epoch(), TrainConfig(**options),
                   out, resume=resume)
    return result, model


def losses(out):
    return [json.loads(line)["loss"] for line in (out / "metrics.jsonl").read_text().splitlines()]


def test_kl_validation_loss_falls_within_200_tiny_steps(bbc_small, tmp_path):
    torch.manual_seed(0)
    fresh = Transformer(model_config("tiny", bbc_small.tokenizer.vocab_size, 32))
    val = BatchLoader(bbc_small.val, 16, shuffle=False).epoch
    before = evaluate(METHODS.build("kl"), fresh, list(val())[:4], torch.device("cpu"))
    result, _ = run(bbc_small, tmp_path, 200, eval_every=100, ckpt_every=200, log_every=10)
    records = [json.loads(line) for line in (tmp_path / "metrics.jsonl").read_text().splitlines()]
    assert result.val_loss < before - 2.0, (before, result.val_loss)
    assert records[-1]["val_loss"] == result.val_loss


def test_resume_gives_identical_losses(bbc_small, tmp_path):
    run(bbc_small, tmp_path / "straight", 10)
    run(bbc_small, tmp_path / "split", 5)
    assert latest_checkpoint(tmp_path / "split")[0] == 5
    run(bbc_small, tmp_path / "split", 10, resume=True)
    assert losses(tmp_path / "split") == losses(tmp_path / "straight")
    assert len(losses(tmp_path / "split")) == 10  # no step recorded twice


def test_existing_checkpoint_is_not_overwritten_without_resume(bbc_small, tmp_path):
    run(bbc_small, tmp_path, 5)
    before = (tmp_path / "checkpoints" / "step-00000005" / "model.safetensors").read_bytes()
    with pytest.raises(ConfigError, match="already holds a checkpoint; pass --resume"):
        run(bbc_small, tmp_path, 5)
    assert (tmp_path / "checkpoints" / "step-00000005" / "model.safetensors").read_bytes() == before


def test_non_finite_loss_stops_with_the_step_number(bbc_small, tmp_path):
    kl = METHODS.get("kl")

    class Exploding(kl):
        def loss(self, model, ids, given, generator=None):
            self.calls = getattr(self, "calls", 0) + 1
            value = super().loss(model, ids, given, generator)
            return value * float("nan") if self.calls == 7 else value

    METHODS.add("exploding_kl_for_test", Exploding)
    with pytest.raises(TrainingDiverged, match="loss became nan at step 7; last checkpoint: step 5"):
        run(bbc_small, tmp_path, 10, method="exploding_kl_for_test")


def test_truncated_checkpoint_is_one_clear_error(bbc_small, tmp_path):
    _, model = run(bbc_small, tmp_path, 5)
    weights = tmp_path / "checkpoints" / "step-00000005" / "model.safetensors"
    weights.write_bytes(weights.read_bytes()[:1000])
    with pytest.raises(ConfigError, match="is corrupt or truncated"):
        load_checkpoint(tmp_path, model)


def test_muon_option_trains(bbc_small, tmp_path):
    result, _ = run(bbc_small, tmp_path, 5, optimizer="muon")
    assert torch.isfinite(torch.tensor(result.train_loss))


def test_schedule_warms_up_then_decays_to_the_floor():
    cfg = TrainConfig(steps=100, warmup=10, min_lr_ratio=0.1)
    assert lr_factor(0, cfg) == pytest.approx(0.1) and lr_factor(9, cfg) == pytest.approx(1.0)
    assert lr_factor(10, cfg) == pytest.approx(1.0) and lr_factor(100, cfg) == pytest.approx(0.1)
    assert all(lr_factor(s, cfg) >= lr_factor(s + 1, cfg) for s in range(10, 100))


def test_muon_takes_the_attention_and_mlp_matrices_only():
    model = Transformer(model_config("tiny", 100, 16, causal=False, time_cond=True))
    adamw, muon = build_optimizers(model, TrainConfig(optimizer="muon"))
    names = {id(p): n for n, p in model.named_parameters()}
    on_muon = sorted(names[id(p)] for group in muon.param_groups for p in group["params"])
    assert on_muon == sorted(n for n, p in model.named_parameters()
                             if p.ndim == 2 and (".attn." in n or ".mlp." in n) and n.startswith("blocks."))
    assert len(on_muon) == 4 * 4
    on_adamw = {names[id(p)] for group in adamw.param_groups for p in group["params"]}
    assert {"embed.weight", "time.mlp.0.weight", "blocks.0.ada.weight", "final_ada.weight"} <= on_adamw
    assert not on_adamw & set(on_muon)


def test_the_log_has_model_flops_and_no_mfu_without_a_known_peak(bbc_small, tmp_path):
    _, model = run(bbc_small, tmp_path, 3)
    records = [json.loads(line) for line in (tmp_path / "metrics.jsonl").read_text().splitlines()]
    for r in records:
        expected = r["tokens_per_s"] * model.flops_per_token(32) / 1e12
        assert abs(r["model_tflops"] - expected) <= 1e-9 * expected and "mfu" not in r  # CPU: no bf16 peak


def test_gradient_accumulation_matches_the_big_batch_gradient(bbc_small):
    """Two micro-batches of 8 accumulate the gradient of their batch of 16 (same noise draws)."""
    torch.manual_seed(0)
    model = Transformer(model_config("tiny", bbc_small.tokenizer.vocab_size, 32, causal=True, time_cond=False))
    method = Autoregressive()  # no noise: the loss is a function of the batch alone
    ids = torch.as_tensor(bbc_small.train[:16].astype("int64"))
    given = torch.zeros_like(ids, dtype=torch.bool)
    method.loss(model, ids, given).backward()
    whole = [p.grad.clone() for p in model.parameters()]
    model.zero_grad()
    for half in (ids[:8], ids[8:]):
        (method.loss(model, half, given[:8]) / 2).backward()
    for a, b in zip(whole, (p.grad for p in model.parameters())):
        torch.testing.assert_close(a, b, rtol=1e-5, atol=1e-7)


def test_grad_accum_trains_and_counts_its_tokens(bbc_small, tmp_path):
    result, _ = run(bbc_small, tmp_path, 4, grad_accum=2)
    records = [json.loads(line) for line in (tmp_path / "metrics.jsonl").read_text().splitlines()]
    assert len(records) == 4 and all(math.isfinite(r["loss"]) for r in records)
    with pytest.raises(ConfigError, match="grad_accum = 0 must be >= 1"):
        TrainConfig(grad_accum=0)


def test_activation_checkpointing_gives_the_same_loss_and_gradients(bbc_small):
    ids = torch.as_tensor(bbc_small.train[:4].astype("int64"))
    grads = []
    for recompute in (False, True):
        torch.manual_seed(0)
        model = Transformer(model_config("tiny", bbc_small.tokenizer.vocab_size, 32, activation_checkpointing=recompute))
        model.train()
        t = torch.full((4,), 0.5)
        loss = model(ids, t).float().logsumexp(-1).mean()
        loss.backward()
        grads.append((loss.item(), [p.grad.clone() for p in model.parameters()]))
    assert grads[0][0] == grads[1][0]
    for a, b in zip(grads[0][1], grads[1][1]):
        torch.testing.assert_close(a, b)
