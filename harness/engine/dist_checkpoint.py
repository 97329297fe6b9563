"""A training run's checkpoint on one or many ranks, in the format its ``train.parallel`` asks for.

ddp (and one process): rank 0 writes the layout of :mod:`pathbench.engine.checkpoint` with the
optimizers' state dicts in ``state.pt`` — every rank holds all of it anyway.

fsdp: no rank holds the whole optimizer, so every rank writes its shards of the weights and
AdamW moments as one distributed checkpoint (``torch.distributed.checkpoint``, DCP) in
``dcp/``; rank 0 adds ``model.safetensors``, the whole float32 weights gathered shard by shard
on its CPU, and ``state.pt`` (every rank's generator, the data position, no optimizer). So
every checkpoint folder loads with :func:`~pathbench.engine.checkpoint.load_checkpoint` and
sampling, evaluation and sweeps read an fsdp run exactly as any other. The folder is written
as ``checkpoints/.step-N.partial`` and renamed to ``step-N`` once complete; only then does the
pointer (``checkpoint.json``, the marker of a finished checkpoint) move to it, so a rank killed
mid-save leaves a partial folder that nothing reads and the next save removes. DCP reshards on
load, so an fsdp run may resume on another number of ranks.
"""

from __future__ import annotations

import shutil
from pathlib import Path
from typing import Any

import torch
import torch.distributed as dist
import torch.distributed.checkpoint as dcp
from safetensors.torch import save_file
from torch import nn
from torch.distributed.checkpoint.state_dict import (
    StateDictOptions,
    get_model_state_dict,
    get_state_dict,
    set_state_dict,
)

from pathbench.core.errors import ConfigError
from pathbench.core.io import atomic_open
from pathbench.engine.checkpoint import Checkpoint, latest_checkpoint, load_checkpoint, publish, save_checkpoint

DCP_DIR = "dcp"


def _barrier() -> None:
    if dist.is_initialized():
        dist.barrier()


def save_training_checkpoint(run_dir: Path, step: int, model: nn.Module, optimizers: list[torch.optim.Optimizer],
                             state: dict[str, Any], *, sharded: bool, rank: int) -> None:
    """Every rank calls this; ``state`` is the trainer's (generators, data position)."""
    if not sharded:
        if rank == 0:
            save_checkpoint(run_dir, step, model, {**state, "optimizers": [opt.state_dict() for opt in optimizers]})
        return
    checkpoints = run_dir / "checkpoints"
    partial = checkpoints / f".step-{step:08d}.partial"
    if rank == 0:  # what a killed save left behind is never read: remove it
        for stale in checkpoints.glob(".step-*.partial"):
            shutil.rmtree(stale)
        partial.mkdir(parents=True)
    _barrier()
    model_state, optim_state = get_state_dict(model, optimizers)
    dcp.save({"model": model_state, "optim": optim_state}, checkpoint_id=partial / DCP_DIR)
    full = get_model_state_dict(model, options=StateDictOptions(full_state_dict=True, cpu_offload=True))
    if rank == 0:
        save_file({name: tensor.contiguous() for name, tensor in full.items() if name not in _aliases(model)},
                  str(partial / "model.safetensors"))
        with atomic_open(partial / "state.pt", "wb") as handle:
            torch.save({**state, "step": step, "parallel": "fsdp"}, handle)
        final = checkpoints / f"step-{step:08d}"
        if final.exists():  # a folder the pointer never named (it names only finished saves of earlier steps)
            shutil.rmtree(final)
        partial.rename(final)
        publish(run_dir, step, final)
    _barrier()  # no rank starts the next step's save before this one is published


def _aliases(model: nn.Module) -> set[str]:
    """Names of a parameter already named before (the head tied to the embedding): safetensors
    stores one tensor once, and its loader re-ties the alias."""
    seen: set[int] = set()
    aliases = set()
    for name, param in model.named_parameters(remove_duplicate=False):
        if id(param) in seen:
            aliases.add(name)
        seen.add(id(param))
    return aliases


def resume_training_checkpoint(run_dir: Path, model: nn.Module, optimizers: list[torch.optim.Optimizer], *,
                               sharded: bool) -> Checkpoint:
    """Load the latest checkpoint into ``model`` and ``optimizers`` (every rank calls this);
    a checkpoint written under the other ``parallel`` is one clear error."""
    found = latest_checkpoint(run_dir)
    if found is None:
        raise ConfigError(f"no checkpoint in {run_dir}; train first")
    folder = found[1]
    has_dcp = (folder / DCP_DIR / ".metadata").exists()
    if has_dcp != sharded:
        wrote, asked = ("fsdp", "ddp") if has_dcp else ("ddp", "fsdp")
        raise ConfigError(f"cannot resume {run_dir} with parallel={asked}: its checkpoint {folder.name} was "
                          f"written with parallel={wrote}; resume with parallel={wrote}")
    if not sharded:
        ckpt = load_checkpoint(run_dir, model)
        for opt, opt_state in zip(optimizers, ckpt.state["optimizers"]):
            opt.load_state_dict(opt_state)
        return ckpt
    model_state, optim_state = get_state_dict(model, optimizers)
    dcp.load({"model": model_state, "optim": optim_state}, checkpoint_id=folder / DCP_DIR)  # in place, resharded
    set_state_dict(model, optimizers, model_state_dict=model_state, optim_state_dict=optim_state)
    try:
        state = torch.load(folder / "state.pt", map_location="cpu", weights_only=False)
    except Exception as err:  # noqa: BLE001 - pickle/zip errors have many types
        raise ConfigError(f"checkpoint {folder / 'state.pt'} is corrupt or truncated: {err}") from err
    return Checkpoint(found[0], folder, state)
