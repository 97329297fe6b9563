"""The measured cost of generation: what an evaluation's sampler took, scoring excluded.

Every call of a method's sampler made by :func:`pathbench.engine.generate.generate` and
:func:`pathbench.engine.run.draw_samples` runs inside :func:`timed_sample`, which times it (the
device synchronised before and after, so queued GPU work is counted where it is done), counts
the model's forward calls (NFE, measured: the AR baseline's decode steps, a path's denoiser
calls) and the tokens it produced, and adds them to every :class:`GenerationCost` opened by
:func:`measure_generation` — the evaluation opens one around its task, so tasks need not pass
anything along. Decoding to text, writing files and scoring happen outside and are not counted.
"""

from __future__ import annotations

import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field

import torch

from pathbench.core.devices import inference_precision

_open: list[GenerationCost] = []  # the meters being filled (nested evaluations: each gets all)


@dataclass
class GenerationCost:
    """Sums over the sampler calls of one evaluation."""

    seconds: float = 0.0
    samples: int = 0
    tokens: int = 0           # positions the sampler filled (given positions excluded)
    calls: int = 0            # model forward calls
    batches: int = 0
    batch_sizes: set[int] = field(default_factory=set)
    reused: bool = False      # the samples came from an earlier evaluation's draw (its cost)

    def add(self, other: GenerationCost) -> None:
        self.seconds += other.seconds
        self.samples += other.samples
        self.tokens += other.tokens
        self.calls += other.calls
        self.batches += other.batches
        self.batch_sizes |= other.batch_sizes
        self.reused |= other.reused

    def record(self, model: torch.nn.Module, device) -> dict:
        """The figures written into metrics.json (``generation``)."""
        device = torch.device(device)
        name = torch.cuda.get_device_name(device) if device.type == "cuda" else "cpu"
        weights = next(model.parameters()).dtype
        return {"seconds": self.seconds, "samples": self.samples, "tokens": self.tokens,
                "samples_per_s": self.samples / self.seconds if self.seconds else None,
                "tokens_per_s": self.tokens / self.seconds if self.seconds else None,
                "nfe": self.calls / self.batches if self.batches else None, "model_calls": self.calls,
                "batches": self.batches, "batch_size": max(self.batch_sizes, default=None),
                "device": str(device), "device_name": name,
                "precision": inference_precision(device) or str(weights).removeprefix("torch."),
                "threads": torch.get_num_threads(),
                **({"reused_draw": True} if self.reused else {}),
                "note": "the sampler's own wall time (device synchronised), model calls and filled "
                        "positions; decoding, files and scoring excluded"}


@contextmanager
def measure_generation() -> Iterator[GenerationCost]:
    """A meter that every sampler call inside the block adds to."""
    meter = GenerationCost()
    _open.append(meter)
    try:
        yield meter
    finally:
        _open.remove(meter)


def add_cost(cost: GenerationCost) -> None:
    """Count ``cost`` (e.g. of a cached draw an evaluation reuses) in every open meter."""
    for meter in _open:
        meter.add(cost)


def _sync(device: torch.device) -> None:
    if device.type == "cuda":
        torch.cuda.synchronize(device)


@contextmanager
def timed_sample(model: torch.nn.Module, batch_size: int, seq_len: int, given_mask: torch.Tensor | None = None
                 ) -> Iterator[None]:
    """Time the sampler call inside the block and add it to the open meters."""
    if not _open:
        yield
        return
    device = next(model.parameters()).device
    calls = [0]
    hook = model.register_forward_hook(lambda *_: calls.__setitem__(0, calls[0] + 1))
    _sync(device)
    start = time.perf_counter()
    try:
        yield
        _sync(device)
        filled = batch_size * seq_len - (int(given_mask.sum()) if given_mask is not None else 0)
        add_cost(GenerationCost(time.perf_counter() - start, batch_size, filled, calls[0], 1, {batch_size}))
    finally:
        hook.remove()
