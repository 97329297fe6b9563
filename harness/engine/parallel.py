"""How the trainer spreads one model over its ranks: ``train.parallel`` = ddp or fsdp.

ddp (the default) keeps a whole replica of the weights, gradients and AdamW moments on every
rank: ≈ 16 bytes per parameter, 25 GB for ``paper-1.5b`` before any activation, which with
its (B,S,V) logits does not fit an 80 GB H100 at the experiment's batch. fsdp shards all of it
over the ranks with FSDP2 (``torch.distributed.fsdp.fully_shard``, one unit per transformer
block, then the root for the embeddings, time MLP, final norm and head): a block's weights are
gathered just before it runs and freed after, so a rank holds 16·N/world bytes plus one
block's full weights. On CUDA the gathered weights are bf16 and gradients are reduced in
float32 (``MixedPrecisionPolicy``); the sharded master weights stay float32. On the CPU (gloo,
the tests) everything stays float32.

fsdp is never chosen automatically: an experiment file asks for it (``experiments/gpu/
tinystories_1p5b.yaml``), so that a run's checkpoint format is what its file says.
fsdp checkpoints are distributed checkpoints (:mod:`pathbench.engine.dist_checkpoint`).
"""

from __future__ import annotations

import contextlib
from dataclasses import dataclass

import torch
from torch import nn
from torch.distributed.device_mesh import init_device_mesh
from torch.distributed.fsdp import FSDPModule, MixedPrecisionPolicy, fully_shard

from pathbench.core.errors import ConfigError

PARALLEL = ("ddp", "fsdp")


def check_parallel(parallel: str, recipe) -> None:
    """An unknown strategy, or a recipe that needs whole matrices (Muon) under fsdp, is one clear line.

    Muon orthogonalises each whole matrix (Newton-Schulz on ``G Gᵀ``); under fsdp a rank holds
    only a row slice of every matrix as a DTensor, and orthogonalising slices is a different
    (wrong) update. Gathering every matrix for the step would undo the sharding's memory saving,
    so fsdp supports AdamW only."""
    if parallel not in PARALLEL:
        raise ConfigError(f"unknown parallel '{parallel}'; known: {', '.join(PARALLEL)}")
    if parallel == "fsdp" and not recipe.sharded_ok:
        raise ConfigError(f"recipe '{recipe.name}' does not work with parallel 'fsdp' (Newton-Schulz needs whole "
                          "matrices, fsdp shards them); use optimizer=adamw or parallel=ddp")


@dataclass
class Parallel:
    """The model as the training step sees it, and how its gradients are synchronised."""

    kind: str                # "single" (one process), "ddp" or "fsdp" (what ran, not what was asked)
    step_model: nn.Module    # what the loss calls: ``model``, its DDP wrapper, or ``model`` sharded in place
    sharded_checkpoints: bool  # parallel = fsdp, also on one process: the checkpoint format follows the option

    def gradient_sync(self, sync: bool) -> contextlib.AbstractContextManager:
        """Around one micro-batch's backward: reduce the gradients only when ``sync`` (the last
        micro-batch of a step), accumulate locally otherwise."""
        if self.kind == "ddp" and not sync:
            return self.step_model.no_sync()
        if isinstance(self.step_model, FSDPModule):  # FSDP2 has a flag instead of a context
            self.step_model.set_requires_gradient_sync(sync)
        return contextlib.nullcontext()


def parallelize(model: nn.Module, parallel: str, world: int, device: torch.device, bf16: bool) -> Parallel:
    """Wrap (ddp) or shard in place (fsdp) ``model``, already on ``device`` and with the same
    initial weights on every rank. Build the optimizers after this: under fsdp they must see the
    sharded parameters."""
    sharded = parallel == "fsdp"
    if world == 1:
        return Parallel("single", model, sharded)
    if parallel == "ddp":
        return Parallel("ddp", nn.parallel.DistributedDataParallel(model), False)
    mesh = init_device_mesh(device.type, (world,))
    policy = (MixedPrecisionPolicy(param_dtype=torch.bfloat16, reduce_dtype=torch.float32) if bf16
              else MixedPrecisionPolicy())
    for block in getattr(model, "blocks", ()):
        fully_shard(block, mesh=mesh, mp_policy=policy)
    fully_shard(model, mesh=mesh, mp_policy=policy)  # the rest (embeddings, tied head, time MLP) as the root unit
    return Parallel("fsdp", model, True)
