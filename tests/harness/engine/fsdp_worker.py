"""Launched by test_parallel.py under torchrun (2 gloo ranks): the same tiny kl training under
ddp and under fsdp, and an fsdp run stopped at step 2 (a killed save left behind) and resumed.

Usage: torchrun --nproc_per_node 2 fsdp_worker.py OUT DATA_CACHE
One launch for all runs, so that the tests pay torch's start-up once.
"""

import sys
from pathlib import Path

import torch.distributed as dist

import paths  # noqa: F401  (registers the paths)
from harness.core.config import parse_overrides
from harness.engine.methods import register_path_methods
from harness.engine.run import train_run

register_path_methods()
out, cache = Path(sys.argv[1]), sys.argv[2]
base = [f"data.cache_dir={cache}", "data.vocab_size=512", "data.seq_len=32", "batch_size=4", "grad_accum=2",
        "lr=3e-3", "warmup=10",  # warm-up past the last step: the schedule does not depend on ``steps``
        "eval_every=4", "eval_batches=2", "log_every=1", "ckpt_every=2", "progress=false"]


def run(name: str, steps: int, *extra: str, resume: bool = False) -> None:
    overrides = parse_overrides([*base, f"steps={steps}", *extra])
    train_run("kl", "tiny", out / name, overrides, resume=resume)


run("ddp", 4, "parallel=ddp")
run("fsdp", 4, "parallel=fsdp", "model.activation_checkpointing=true")
run("split", 2, "parallel=fsdp", "model.activation_checkpointing=true")
if dist.get_rank() == 0:  # a save killed half-way: shards on disk, never renamed, no pointer to it
    torn = out / "split" / "checkpoints" / ".step-00000004.partial" / "dcp"
    torn.mkdir(parents=True)
    (torn / "__0_0.distcp").write_bytes(b"torn")
dist.barrier()
run("split", 4, "parallel=fsdp", "model.activation_checkpointing=true", resume=True)
dist.destroy_process_group()
