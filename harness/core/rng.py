"""Random streams for sampling: one generator for a whole batch, or one per sample row.

A sampler receives ``generator``: a ``torch.Generator`` (or None, torch's global stream) whose
draws cover the whole batch — the samples then depend on which rows share a batch — or a
:class:`RowGenerators`, one independent stream per row of the batch, so that sample ``i``
depends on its own seed only: not on the batch size, not on the chunks a memory budget splits
a batch into, not on the other requests of an lm-eval call. Every draw of the paths, the
sampler driver and the token baselines goes through :func:`uniform_`, :func:`normal_` and
:func:`rand` below, which take either kind, so a sampler supports both without branching.

Row streams cost one kernel launch per row and draw (the same number of random numbers as a
batch stream): negligible beside a denoiser call at the sizes that need chunking.
"""

from __future__ import annotations

import hashlib
from collections.abc import Iterable
from typing import Union

import torch
from torch import Tensor

from pathbench.core.errors import ConfigError

#: the two ways of seeding an evaluation's draws (``seeding`` in a task of an experiment file)
SEEDINGS = ("batch", "row")


class RowGenerators:
    """One ``torch.Generator`` per sample row; tensors drawn with it have the rows first (R, ...)."""

    def __init__(self, generators: list[torch.Generator]) -> None:
        if not generators:
            raise ValueError("RowGenerators needs at least one generator")
        self.generators = list(generators)

    @classmethod
    def seeded(cls, seeds: Iterable[int], device: torch.device | str = "cpu") -> "RowGenerators":
        return cls([torch.Generator(device).manual_seed(int(seed)) for seed in seeds])

    def __len__(self) -> int:
        return len(self.generators)

    def __getitem__(self, rows: slice) -> "RowGenerators":
        return RowGenerators(self.generators[rows])

    @property
    def device(self) -> torch.device:
        return self.generators[0].device

    def _check(self, out: Tensor) -> None:
        if out.dim() == 0 or out.shape[0] != len(self):
            raise ValueError(f"a draw of shape {tuple(out.shape)} needs its first axis to be the "
                             f"{len(self)} rows of these generators")


Generator = Union[torch.Generator, RowGenerators, None]


def uniform_(out: Tensor, generator: Generator = None) -> Tensor:
    """out ← U[0, 1) elementwise, from ``generator`` (row r of ``out`` from stream r of a
    :class:`RowGenerators`)."""
    if isinstance(generator, RowGenerators):
        generator._check(out)
        for row, g in zip(out, generator.generators):
            row.uniform_(generator=g)
        return out
    return out.uniform_(generator=generator)


def normal_(out: Tensor, mean: float = 0.0, std: float = 1.0, generator: Generator = None) -> Tensor:
    """out ← N(mean, std²) elementwise, from ``generator`` (per row for a :class:`RowGenerators`)."""
    if isinstance(generator, RowGenerators):
        generator._check(out)
        for row, g in zip(out, generator.generators):
            row.normal_(mean, std, generator=g)
        return out
    return out.normal_(mean, std, generator=generator)


def rand(shape: tuple[int, ...], generator: Generator = None, *, dtype: torch.dtype = torch.float32,
         device: torch.device | str | None = None) -> Tensor:
    """A fresh tensor of U[0, 1) draws; with a batch generator exactly ``torch.rand``."""
    if isinstance(generator, RowGenerators):
        return uniform_(torch.empty(shape, dtype=dtype, device=device), generator)
    return torch.rand(shape, generator=generator, dtype=dtype, device=device)


def check_seeding(seeding: str) -> str:
    if seeding not in SEEDINGS:
        raise ConfigError(f"unknown seeding '{seeding}'; known: {', '.join(SEEDINGS)} "
                          "(batch: one stream per batch; row: one per sample, independent of the batch)")
    return seeding


def row_seed(seed: int, index: int, stream: int = 0) -> int:
    """The seed of sample ``index`` of an evaluation seeded with ``seed`` (``stream`` separates
    e.g. the candidates of one request): a 63-bit hash of the three, so distinct samples never
    share a stream and a sample's seed depends on nothing else."""
    digest = hashlib.blake2b(f"pathbench-row/{seed}/{stream}/{index}".encode(), digest_size=8).digest()
    return int.from_bytes(digest, "little") >> 1


def batch_seed(seed: int, first: int, stream: int = 0) -> int:
    """The seed of a batch stream: (seed, stream, the batch's first index) — what every committed
    result was drawn with."""
    return seed * 1_000_003 + stream * 10_007 + first


def generator_for(seeding: str, seed: int, rows: list[int], stream: int = 0,
                  device: torch.device | str = "cpu") -> Generator:
    """The draws of samples ``rows`` (one batch): one batch stream, or their row streams."""
    if seeding == "row":
        return row_generators(seed, rows, stream, device)
    return torch.Generator(device).manual_seed(batch_seed(seed, rows[0], stream))


def row_generators(seed: int, indices: Iterable[int], stream: int = 0,
                   device: torch.device | str = "cpu") -> RowGenerators:
    """The streams of samples ``indices`` (see :func:`row_seed`)."""
    return RowGenerators.seeded([row_seed(seed, i, stream) for i in indices], device)
