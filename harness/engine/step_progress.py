"""A progress bar over denoiser calls, for ``pathbench sample`` and ``eval``.

A batch of samples is one long call to a method's sampler: a bar over batches sits at 0 %
until the first batch ends (72 s on a CPU for 32 samples at NFE 64) and then jumps. This bar
counts the backbone's forward calls instead — NFE for a flow or diffusion sampler, one per
token for the autoregressive baseline — through a forward hook, so every method's sampler is
covered without being told. The total is ``batches × nfe`` until the first batch ends and
``batches × the calls that batch made`` after (a protocol's extra final call, an AR prefill).
The hook only counts: the samples are the same with or without it.
"""

from __future__ import annotations

import sys
from collections.abc import Iterator
from contextlib import contextmanager

import torch
from tqdm import tqdm


class StepProgress:
    """The bar of one sampling loop; call :meth:`batch_done` after each batch."""

    def __init__(self, bar: tqdm, batches: int) -> None:
        self.bar, self.batches, self.done, self.first_batch_calls = bar, batches, 0, None

    def count(self, *_unused) -> None:
        self.bar.update(1)

    def batch_done(self) -> None:
        self.done += 1
        if self.first_batch_calls is None:  # now the calls a batch makes are known, not guessed
            self.first_batch_calls = self.bar.n
            self.bar.total = self.bar.n * self.batches
        self.bar.set_postfix_str(f"batch {self.done}/{self.batches}", refresh=True)


@contextmanager
def denoiser_progress(model: torch.nn.Module, desc: str, batches: int, nfe: int,
                      disable: bool = False) -> Iterator[StepProgress]:
    """A bar counting ``model``'s forward calls while the block samples ``batches`` batches."""
    # in a terminal the bar redraws in place; in a log a line every 10 s at most, not one per call
    interactive = bool(getattr(sys.stderr, "isatty", lambda: False)())
    bar = tqdm(total=max(1, batches * max(1, nfe)), desc=desc, unit="call", disable=disable,
               mininterval=0.1 if interactive else 10.0)
    progress = StepProgress(bar, batches)
    handle = model.register_forward_hook(progress.count)
    try:
        yield progress
    finally:
        handle.remove()
        bar.close()
