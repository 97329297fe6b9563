"""Launched by test_parallel.py under torchrun (2 gloo ranks).

``kill``: an fsdp run whose rank 0 dies with ``os._exit`` half-way through step 3 (after the
step-2 checkpoint; no clean-up runs, as under SIGKILL), which ends the launch.
``main``: the same tiny kl training under ddp and under fsdp, then the killed run resumed to
step 4 past a torn save (shards on disk, never renamed) of step 4 left behind.

Usage: torchrun --nproc_per_node 2 fsdp_worker.py OUT DATA_CACHE kill|main
"""

import os
import sys
from pathlib import Path

import torch.distributed as dist

import pathbench.paths  # noqa: F401  (registers the paths)
from pathbench.core.config import parse_overrides
from pathbench.data.batches import BatchLoader
from pathbench.engine.methods import register_path_methods
from pathbench.engine.run import resolve_training, train_run, training_protocol_name

register_path_methods()
out, cache, mode = Path(sys.argv[1]), sys.argv[2], sys.argv[3]
base = [f"data.cache_dir={cache}", "data.vocab_size=512", "data.seq_len=32", "batch_size=4", "grad_accum=2",
        "lr=3e-3", "warmup=10",  # warm-up past the last step: the schedule does not depend on ``steps``
        "eval_every=4", "eval_batches=2", "log_every=1", "ckpt_every=2", "progress=false"]
# AdamW: fsdp shards matrices, so the Muon recipes kl-flow trains paths with are refused under it
FSDP = ("parallel=fsdp", "model.activation_checkpointing=true", "optimizer=adamw")


def run(name: str, steps: int, *extra: str, resume: bool = False) -> None:
    overrides = parse_overrides([*base, f"steps={steps}", *extra])
    overrides, record = resolve_training("kl", training_protocol_name(None, out / name, resume), overrides)
    train_run("kl", "tiny", out / name, overrides, protocol=record, resume=resume)


if mode == "kill":
    drawn = 0
    next_batch = BatchLoader.__next__

    def dying_next(self):
        global drawn
        drawn += 1
        if drawn == 6 and int(os.environ["RANK"]) == 0:  # steps 1-2 drew 4 micro-batches; mid-step 3
            os._exit(9)
        return next_batch(self)

    BatchLoader.__next__ = dying_next
    run("killed", 4, *FSDP)
else:
    run("ddp", 4, "parallel=ddp", "optimizer=adamw")  # the same recipe as the fsdp run it is compared with
    run("fsdp", 4, *FSDP)
    if dist.get_rank() == 0:
        torn = out / "killed" / "checkpoints" / ".step-00000004.partial" / "dcp"
        torn.mkdir(parents=True)
        (torn / "__0_0.distcp").write_bytes(b"torn")
    dist.barrier()
    run("killed", 4, *FSDP, resume=True)
    dist.destroy_process_group()
