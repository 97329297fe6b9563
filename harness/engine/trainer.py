"""The one trainer every method goes through.

A named training recipe (:mod:`pathbench.engine.recipes`: AdamW, Muon on the blocks' matrices, or
the KL-flow reference's Muon on every matrix), linear warm-up then cosine decay,
gradient clipping, bf16 autocast and optional torch.compile on CUDA, DDP or FSDP2 under
torchrun (``parallel``, :mod:`pathbench.engine.parallel`), a held-out loss, JSONL metrics (and
optionally TensorBoard, W&B or MLflow curves of the same records: :mod:`pathbench.engine.loggers`),
a progress bar, and a guard that stops on a non-finite loss with the step number. Checkpoints
hold weights, optimizer, every RNG and the data position, so ``resume=True`` continues exactly
where the run stopped (bit-identical losses on CPU).
"""

from __future__ import annotations

import json
import logging
import math
import os
import signal
import sys
import threading
import time
from collections.abc import Callable, Iterable, Iterator
from contextlib import ExitStack, contextmanager
from dataclasses import asdict, dataclass
from itertools import islice
from pathlib import Path
from typing import ClassVar

import torch
import torch.distributed as dist
from tqdm import tqdm

from pathbench.core.devices import bf16_peak_flops
from pathbench.core.errors import ConfigError
from pathbench.engine.checkpoint import latest_checkpoint
from pathbench.engine.contract import check_loss
from pathbench.engine.dist_checkpoint import resume_training_checkpoint, save_training_checkpoint
from pathbench.engine.loggers import check_logger, open_sinks
from pathbench.engine.methods import Method
from pathbench.engine.parallel import check_parallel, parallelize
from pathbench.engine.recipes import DEFAULT_RECIPE, get_recipe
from pathbench.engine.recipes import build_optimizers as build_recipe_optimizers

log = logging.getLogger("pathbench.train")
PRECISIONS = ("auto", "fp32", "bf16")


class TrainingDiverged(RuntimeError):
    """The loss became NaN or infinite."""


class TrainingStopped(RuntimeError):
    """Ctrl-C or SIGTERM: the step under way finished, a checkpoint was written, training stopped."""

    def __init__(self, step: int, steps: int, signum: int, run_dir: Path) -> None:
        self.step, self.steps, self.run_dir = step, steps, run_dir
        self.exit_code = 128 + signum  # what the shell reports for a process ended by that signal
        super().__init__(f"stopped by {signal.Signals(signum).name} at step {step} of {steps}; "
                         f"checkpoint written to {run_dir}")


@contextmanager
def _stop_requests(enabled: bool) -> Iterator[list[int]]:
    """Ctrl-C and SIGTERM ask the loop to stop after its current step (a list that receives the
    signal's number) instead of killing it mid-step with nothing saved. The first signal only
    asks; the handlers are then the old ones again, so a second one stops at once. Left alone:
    other threads (no handlers there), several ranks (one rank stopping alone would hang the
    others), and a SIGTERM someone else handles (submitit's preemption handler)."""
    asked: list[int] = []
    if not enabled or threading.current_thread() is not threading.main_thread():
        yield asked
        return
    wanted = [signal.SIGINT] + ([signal.SIGTERM] if signal.getsignal(signal.SIGTERM) == signal.SIG_DFL else [])
    previous = {signum: signal.getsignal(signum) for signum in wanted}

    def ask(signum, _frame) -> None:
        asked.append(signum)
        for number, handler in previous.items():
            signal.signal(number, handler)
        print(f"\n{signal.Signals(signum).name}: finishing this step and writing a checkpoint "
              "(send it again to stop at once)", file=sys.stderr, flush=True)

    for signum in wanted:
        signal.signal(signum, ask)
    try:
        yield asked
    finally:
        for signum, handler in previous.items():
            if signal.getsignal(signum) is ask:
                signal.signal(signum, handler)


@dataclass
class TrainConfig:
    steps: int = 1000
    batch_size: int = 32
    lr: float = 1e-3
    min_lr_ratio: float = 0.1
    warmup: int = 50
    weight_decay: float = 0.1
    grad_clip: float = 1.0
    #: the training recipe (pathbench.engine.recipes; ``recipe=`` is the same key): adamw, muon,
    #: kl-flow-muon; ``lr`` is its primary learning rate
    optimizer: str = DEFAULT_RECIPE
    eval_every: int = 100
    eval_batches: int = 4
    ckpt_every: int = 100
    log_every: int = 10
    seed: int = 0
    precision: str = "auto"
    compile: bool = False
    progress: bool = True
    #: micro-batches per optimizer step (each of ``batch_size``): the step's batch is
    #: grad_accum × batch_size per rank, its loss their mean
    grad_accum: int = 1
    #: a live-curve logger beside metrics.jsonl (tensorboard, wandb, mlflow; pathbench.engine.loggers)
    #: fed the same records; it only observes, so a sweep leaves it out of a unit's id
    logger: str | None = None
    #: ddp: a full replica per rank; fsdp: weights, gradients and AdamW state sharded over the
    #: ranks (FSDP2) with distributed checkpoints, for paper-1.5b (AdamW only)
    parallel: str = "ddp"

    ALIASES: ClassVar[dict[str, str]] = {"recipe": "optimizer"}

    def __post_init__(self) -> None:
        self.optimizer = get_recipe(self.optimizer).name  # unknown: lists the known recipes
        if self.precision not in PRECISIONS:
            raise ConfigError(f"unknown precision '{self.precision}'; known: {', '.join(PRECISIONS)}")
        for name in ("steps", "batch_size", "grad_accum"):
            if getattr(self, name) < 1:
                raise ConfigError(f"{name} = {getattr(self, name)} must be >= 1")
        if self.logger is not None:
            check_logger(str(self.logger))
        check_parallel(self.parallel, get_recipe(self.optimizer))


@dataclass
class TrainResult:
    step: int
    train_loss: float
    val_loss: float | None
    tokens_per_s: float


def lr_factor(step: int, cfg: TrainConfig) -> float:
    """Linear warm-up to 1, then cosine decay to ``min_lr_ratio`` at ``cfg.steps``."""
    if step < cfg.warmup:
        return (step + 1) / cfg.warmup
    progress = min(1.0, (step - cfg.warmup) / max(1, cfg.steps - cfg.warmup))
    return cfg.min_lr_ratio + (1 - cfg.min_lr_ratio) * 0.5 * (1 + math.cos(math.pi * progress))


def build_optimizers(model: torch.nn.Module, cfg: TrainConfig) -> list[torch.optim.Optimizer]:
    """The optimizers of ``cfg.optimizer``'s recipe over ``model`` (pathbench.engine.recipes)."""
    return build_recipe_optimizers(model, cfg.optimizer, cfg.lr, cfg.weight_decay)


def _rng_state(generator: torch.Generator) -> dict:
    state = {"torch": torch.get_rng_state(), "method": generator.get_state()}
    if torch.cuda.is_available():
        state["cuda"] = torch.cuda.get_rng_state_all()
    return state


def _set_rng_state(generator: torch.Generator, state: dict) -> None:
    torch.set_rng_state(state["torch"])
    generator.set_state(state["method"])
    if "cuda" in state and torch.cuda.is_available():
        torch.cuda.set_rng_state_all(state["cuda"])


def _restore_rank_rng(generator: torch.Generator, state: dict, rank: int, seed: int,
                      step: int) -> None:
    """This rank's generator as it was at the checkpoint. A checkpoint written by fewer ranks
    (or before every rank's state was kept) has none for a higher rank: that rank is re-seeded
    from (seed, rank, step) — deterministic, not a copy of rank 0's draws."""
    ranks = state.get("rng_ranks") or [state["rng"]]
    if rank < len(ranks):
        _set_rng_state(generator, ranks[rank])
        return
    log.warning("checkpoint has no generator state for rank %d (written by %d rank(s)); re-seeding it",
                rank, len(ranks))
    _set_rng_state(generator, ranks[0])  # torch's global state as rank 0 had it ...
    generator.manual_seed((seed * 1_000_003 + rank) * 1_000_033 + step)  # ... and a fresh generator of its own


def ensure_can_start(run_dir: Path, resume: bool) -> None:
    """Refuse to train over an existing checkpoint unless resuming."""
    if not resume and latest_checkpoint(run_dir) is not None:
        raise ConfigError(f"{run_dir} already holds a checkpoint; pass --resume to continue it "
                          "or choose another --out (nothing was overwritten)")


def distributed_context() -> tuple[int, int]:
    """(rank, world size); initialises the process group when launched by torchrun."""
    world = int(os.environ.get("WORLD_SIZE", "1"))
    if world > 1 and not dist.is_initialized():
        backend = "nccl" if torch.cuda.is_available() else "gloo"
        dist.init_process_group(backend)
        if torch.cuda.is_available():
            torch.cuda.set_device(int(os.environ.get("LOCAL_RANK", "0")))
    return (dist.get_rank() if world > 1 else 0), world


@torch.no_grad()
def evaluate(method: Method, model: torch.nn.Module, batches: Iterable, device: torch.device,
             seed: int = 1234) -> float:
    """Mean loss over ``batches`` with a fixed noise seed, so evaluations are comparable."""
    model.eval()
    generator = torch.Generator(device).manual_seed(seed)
    losses = [check_loss(type(method).__name__, method.loss(model, b.ids.to(device), b.given.to(device), generator)).item()
              for b in batches]
    model.train()
    if not losses:
        raise ConfigError("the validation split gave no batch; use a larger corpus or a smaller seq_len")
    return sum(losses) / len(losses)


def train(method: Method, model: torch.nn.Module, train_batches: Iterator,
          val_batches: Callable[[], Iterable], cfg: TrainConfig, run_dir: Path, *,
          resume: bool = False, device: torch.device | str = "cpu") -> TrainResult:
    """Train ``model`` with ``method.loss`` for ``cfg.steps`` steps, checkpointing into ``run_dir``.

    ``train_batches`` is an endless iterator of batches (``.ids``, ``.given`` (B,S)) with
    ``state_dict()``/``load_state_dict()`` for its position; ``val_batches()`` gives a fresh
    finite pass over the held-out split.
    """
    device = torch.device(device)
    rank, world = distributed_context()
    run_dir.mkdir(parents=True, exist_ok=True)
    model.to(device).train()
    bf16 = device.type == "cuda" and cfg.precision in ("auto", "bf16")
    if cfg.precision == "bf16" and device.type != "cuda":
        raise ConfigError("precision 'bf16' needs a CUDA device; use fp32 on the CPU")
    parallel = parallelize(model, cfg.parallel, world, device, bf16)  # before the optimizers: fsdp shards in place
    optimizers = build_optimizers(model, cfg)
    generator = torch.Generator(device).manual_seed(cfg.seed * 1_000_003 + rank)
    start = 0
    if resume and latest_checkpoint(run_dir) is not None:
        ckpt = resume_training_checkpoint(run_dir, model, optimizers, sharded=parallel.sharded_checkpoints)
        start = ckpt.step
        _restore_rank_rng(generator, ckpt.state, rank, cfg.seed, start)
        train_batches.load_state_dict(ckpt.state["data"])
        log.info("resumed from %s at step %d", ckpt.folder, start)
    else:
        ensure_can_start(run_dir, resume)
    step_model = parallel.step_model
    if cfg.compile:  # after DDP, so that compiled graphs break at its buckets (DDPOptimizer)
        step_model = torch.compile(step_model)
    if rank == 0:
        (run_dir / "train_config.json").write_text(json.dumps(asdict(cfg), indent=2))
    # metrics.jsonl and the optional logger: one record stream, written by rank 0
    sinks = open_sinks(cfg.logger, run_dir, start) if rank == 0 else None
    signals = ExitStack()  # the stop-request handlers, removed in the finally below
    try:
        stopping = signals.enter_context(_stop_requests(world == 1))
        loss_value, val_loss, seen_tokens, t0 = float("nan"), None, 0, time.perf_counter()
        peak = bf16_peak_flops(device) if bf16 else None  # MFU only against a known bf16 peak
        flops_per_token = getattr(model, "flops_per_token", None)
        bar = tqdm(range(start, cfg.steps), initial=start, total=cfg.steps, desc="train",
                   disable=not cfg.progress or rank != 0)
        for step in bar:
            factor = lr_factor(step, cfg)
            for opt in optimizers:
                for group in opt.param_groups:
                    group["lr"] = group["base_lr"] * factor
            loss = torch.zeros((), device=device)
            for micro in range(cfg.grad_accum):
                batch = next(train_batches)
                ids, given = batch.ids.to(device), batch.given.to(device)
                # DDP and FSDP reduce gradients only on the last micro-batch of the step
                with parallel.gradient_sync(micro == cfg.grad_accum - 1):
                    with torch.autocast("cuda", dtype=torch.bfloat16, enabled=bf16):
                        part = check_loss(type(method).__name__, method.loss(step_model, ids, given, generator))
                    if not torch.isfinite(part):
                        found = latest_checkpoint(run_dir)
                        raise TrainingDiverged(f"loss became {part.item()} at step {step + 1}; last checkpoint: "
                                               f"{'step ' + str(found[0]) if found else 'none'}")
                    (part / cfg.grad_accum).backward()
                loss = loss + part.detach() / cfg.grad_accum
                seen_tokens += ids.numel() * world
            torch.nn.utils.clip_grad_norm_(model.parameters(), cfg.grad_clip)
            for opt in optimizers:
                opt.step()
                opt.zero_grad(set_to_none=True)
            if world > 1:  # log the mean over ranks, not rank 0's share
                reduced = loss.detach().clone()
                dist.all_reduce(reduced)
                loss_value = reduced.item() / world
            else:
                loss_value = loss.item()
            done = step + 1
            record = {"step": done, "loss": loss_value, "lr": cfg.lr * factor}
            if done % cfg.eval_every == 0 or done == cfg.steps:
                val_loss = evaluate(method, model, list(islice(val_batches(), cfg.eval_batches)), device)
                record["val_loss"] = val_loss
            if rank == 0 and (done % cfg.log_every == 0 or "val_loss" in record):
                record["tokens_per_s"] = seen_tokens / (time.perf_counter() - t0)
                if flops_per_token is not None:  # model FLOP/s per device (the PaLM estimate), and MFU
                    achieved = record["tokens_per_s"] / world * flops_per_token(ids.shape[1])
                    record["model_tflops"] = achieved / 1e12
                    if peak:
                        record["mfu"] = achieved / peak
                sinks.log(record)
                bar.set_postfix(loss=f"{loss_value:.3f}", **({"val": f"{val_loss:.3f}"} if val_loss else {}))
                log.info("step %d loss %.4f%s", done, loss_value,
                         f" val {val_loss:.4f}" if "val_loss" in record else "")
            if done % cfg.ckpt_every == 0 or done == cfg.steps or stopping:
                rng = _rng_state(generator)
                ranks = [rng]
                if world > 1:  # every rank's generator, so that a resumed rank draws its own t and noise
                    ranks = [None] * world
                    dist.all_gather_object(ranks, rng)
                save_training_checkpoint(run_dir, done, model, optimizers,
                                         {"rng": rng, "rng_ranks": ranks, "data": train_batches.state_dict()},
                                         sharded=parallel.sharded_checkpoints, rank=rank)
            if stopping and done < cfg.steps:
                raise TrainingStopped(done, cfg.steps, stopping[0], run_dir)
        elapsed = time.perf_counter() - t0
        return TrainResult(cfg.steps, loss_value, val_loss, seen_tokens / max(elapsed, 1e-9))
    finally:
        signals.close()
        if sinks is not None:
            sinks.close()
