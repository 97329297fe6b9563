"""train.parallel = fsdp on 2 CPU ranks (gloo): the same losses as ddp, an exact resume from
the distributed checkpoint, and a consolidated checkpoint that the ordinary loader reads."""

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest
import torch
import torch.distributed.checkpoint as dcp

import pathbench.paths  # noqa: F401  (registers the paths)
from pathbench.cli import main
from pathbench.core.errors import ConfigError
from pathbench.core.registry import METHODS
from pathbench.data.corpus import BatchLoader
from pathbench.engine.dist_checkpoint import resume_training_checkpoint
from pathbench.engine.methods import register_path_methods
from pathbench.engine.model import Transformer, model_config
from pathbench.engine.run import load_run
from pathbench.engine.trainer import TrainConfig, build_optimizers, evaluate, train

register_path_methods()
WORKER = Path(__file__).with_name("fsdp_worker.py")


def records(run: Path) -> list[dict]:
    return [json.loads(line) for line in (run / "metrics.jsonl").read_text().splitlines()]


@pytest.fixture(scope="module")
def runs(tmp_path_factory, data_cache, bbc_small):
    out = tmp_path_factory.mktemp("parallel")
    root = Path(__file__).parents[3]

    def launch(mode: str) -> subprocess.CompletedProcess:
        cmd = [sys.executable, "-m", "torch.distributed.run", "--nproc_per_node", "2", str(WORKER), str(out),
               str(data_cache), mode]
        return subprocess.run(cmd, capture_output=True, text=True, timeout=300, cwd=root,
                              env={**os.environ, "OMP_NUM_THREADS": "1", "PYTHONPATH": str(root)})

    killed = launch("kill")
    assert killed.returncode != 0 and json.loads((out / "killed" / "checkpoint.json").read_text())["step"] == 2
    assert len(records(out / "killed")) == 2  # it died inside step 3
    done = launch("main")
    assert done.returncode == 0, done.stderr[-3000:]
    return out


def test_fsdp_follows_the_ddp_loss_trajectory(runs):
    """fp32 on gloo: sharding changes only the order of the gradient sums (reduce-scatter vs
    all-reduce), with grad_accum = 2 and activation checkpointing under fsdp."""
    ddp, fsdp = records(runs / "ddp"), records(runs / "fsdp")
    assert [r["step"] for r in fsdp] == [1, 2, 3, 4]
    assert [r["loss"] for r in fsdp] == pytest.approx([r["loss"] for r in ddp], rel=1e-5)
    assert fsdp[-1]["val_loss"] == pytest.approx(ddp[-1]["val_loss"], rel=1e-5)
    assert fsdp[0]["loss"] != fsdp[-1]["loss"]  # it trained


def test_fsdp_resume_after_a_kill_is_exact(runs):
    """Killed inside step 3 (and a torn save of step 4 left behind), resumed from the step-2
    distributed checkpoint: the same losses, bit for bit, as the run that was never stopped."""
    assert [r["loss"] for r in records(runs / "killed")] == [r["loss"] for r in records(runs / "fsdp")]
    checkpoints = runs / "killed" / "checkpoints"
    assert [p.name for p in checkpoints.iterdir()] == ["step-00000004"]  # the torn save was removed
    assert (checkpoints / "step-00000004" / "dcp" / ".metadata").exists()
    state = torch.load(checkpoints / "step-00000004" / "state.pt", weights_only=False)
    assert state["parallel"] == "fsdp" and len(state["rng_ranks"]) == 2


def test_the_consolidated_checkpoint_loads_in_one_process(runs, bbc_small):
    """model.safetensors holds the whole weights: the ordinary loader reads it, its validation
    loss is the one the 2 sharded ranks logged, and it equals the distributed checkpoint."""
    run = load_run(runs / "fsdp")
    assert run.step == 4
    val = BatchLoader(bbc_small.val, 4, shuffle=False).epoch()
    batches = [b for _, b in zip(range(2), val)]
    assert evaluate(run.method, run.model, batches, torch.device("cpu")) == pytest.approx(
        records(runs / "fsdp")[-1]["val_loss"], rel=1e-5)
    sharded = {k: torch.zeros_like(v) for k, v in run.model.state_dict().items()}
    dcp.load({"model": sharded}, checkpoint_id=runs / "fsdp" / "checkpoints" / "step-00000004" / "dcp")
    for name, tensor in run.model.state_dict().items():
        assert torch.equal(tensor, sharded[name]), name
    assert run.model.head.weight is run.model.embed.weight  # the tie survives the consolidation


def test_a_checkpoint_resumes_only_under_the_parallel_that_wrote_it(runs):
    model = Transformer(load_run(runs / "fsdp").model.config)
    optimizers = build_optimizers(model, TrainConfig())
    with pytest.raises(ConfigError, match="written with parallel=fsdp; resume with parallel=fsdp"):
        resume_training_checkpoint(runs / "fsdp", model, optimizers, sharded=False)
    with pytest.raises(ConfigError, match="written with parallel=ddp; resume with parallel=ddp"):
        resume_training_checkpoint(runs / "ddp", model, optimizers, sharded=True)
    ckpt = resume_training_checkpoint(runs / "fsdp", model, optimizers, sharded=True)  # one process reads 2 ranks' shards
    assert ckpt.step == 4 and optimizers[0].state


def test_fsdp_refuses_muon_and_unknown_strategies(capsys):
    assert main(["train", "--method", "kl", "--steps", "1", "--out", "unused", "optimizer=muon",
                 "parallel=fsdp"]) == 2
    assert "recipe 'muon' does not work with parallel 'fsdp'" in capsys.readouterr().err
    with pytest.raises(ConfigError, match="unknown parallel 'zero3'; known: ddp, fsdp"):
        TrainConfig(parallel="zero3")


def test_fsdp_on_one_process_keeps_its_checkpoint_format_and_resumes_exactly(bbc_small, tmp_path):
    """parallel=fsdp without torchrun trains unsharded but writes (and resumes from) the
    distributed checkpoint, so the format follows the option, not the number of ranks."""
    def run(out, steps, resume=False):
        torch.manual_seed(0)
        model = Transformer(model_config("tiny", bbc_small.tokenizer.vocab_size, 32))
        cfg = TrainConfig(steps=steps, batch_size=8, lr=3e-3, warmup=10, eval_every=50, ckpt_every=2, log_every=1,
                          progress=False, parallel="fsdp")
        train(METHODS.build("kl"), model, BatchLoader(bbc_small.train, 8, seed=0),
              lambda: BatchLoader(bbc_small.val, 8, shuffle=False).epoch(), cfg, out, resume=resume)

    run(tmp_path / "straight", 4)
    run(tmp_path / "split", 2)
    run(tmp_path / "split", 4, resume=True)
    assert [r["loss"] for r in records(tmp_path / "split")] == [r["loss"] for r in records(tmp_path / "straight")]
    assert (tmp_path / "split" / "checkpoints" / "step-00000004" / "dcp" / ".metadata").exists()
