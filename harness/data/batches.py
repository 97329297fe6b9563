"""Batches of a packed split, and what a row gives and generates: the ``data.given`` policies.

:class:`BatchLoader` (resumable, DDP-split batches of :class:`Batch`) reads the (N, S) arrays
pathbench.data.corpus prepares (and re-exports these names).

A row's ``given`` (B,S) positions are context (clamped while sampling, no loss); the rest are
generated (pathbench.engine.methods.masked_cross_entropy). Policies (``pathbench.core.config.GIVEN_POLICIES``):

* ``none``: packed rows, nothing given (unconditional).
* ``lines`` (:func:`line_infill_given`): packed rows, one block of whole lines hidden per row
  and the rest given — the code-infilling objective.
* ``headline`` (:class:`DocumentRows`): rows aligned to documents, the headline given, the body
  generated — the conditional (headline -> lead) objective. The packed stream (every document
  followed by EOS, cut into (N, S); pathbench.data.corpus.pack) is read back flat as x. Document d
  starts at a_d (0, then one past each EOS) and its row is x[a_d : a_d + S]; a document shorter
  than S runs on into the next, as packed rows do. Its headline is the text up to the first
  line break plus the line breaks after it ("h\\n\\nBody" -> the tokens of h, "\\n", "\\n"): with
  p_d the first position >= a_d whose token contains a line break and q_d the first position
  > p_d whose token does not, g_d = q_d - a_d positions are given, [0, g_d) of the row. That is
  ``pathbench.tasks.adapters.seq2seq.split_headline``'s headline and the separator, tokenised as
  ``HeadlineLead`` lays out its prompts (``pathbench.tasks.adapters.seq2seq.document_parts``), so training and
  evaluation give the same tokens. Kept: documents with a line break before their EOS,
  g_d < S (one generated position at least) and a_d + S inside the stream (the last, cut
  document may drop). One row per document: training sees each document's first S tokens.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch
from torch import Tensor

from pathbench.core.config import HeadlineGiven
from pathbench.core.errors import ConfigError


def line_infill_given(ids: np.ndarray, is_newline: np.ndarray, rng: np.random.Generator,
                      low: float, high: float) -> np.ndarray:
    """(B,S) given masks hiding one contiguous block of whole lines per row.

    A line ends after a token containing a line break. For each row a fraction f ~ U[low, high]
    of its lines (at least one, at most all but one when there are two or more) is masked —
    the code-infilling training objective of the KL-flow paper (10–90 % of lines)."""
    given = np.ones(ids.shape, dtype=bool)
    for row in range(ids.shape[0]):
        ends = is_newline[ids[row]]
        line = np.concatenate([[0], np.cumsum(ends)[:-1]])  # (S,) line index of each token
        n_lines = int(line[-1]) + 1
        count = int(round(rng.uniform(low, high) * n_lines))
        count = min(max(1, count), max(1, n_lines - 1))
        start = int(rng.integers(0, n_lines - count + 1))
        given[row] = (line < start) | (line >= start + count)
    return given


def packed_eos(sequences: np.ndarray) -> int | None:
    """The EOS id of a packed split read from its cache folder's meta.json (a memmap of
    pathbench.data.corpus.prepare_data knows its file), else None."""
    name = getattr(sequences, "filename", None)
    meta = Path(name).parent / "meta.json" if name else None
    if meta is None or not meta.is_file():
        return None
    return int(json.loads(meta.read_text())["eos_id"])


@dataclass
class DocumentRows:
    """Document-aligned rows of a packed (N, S) split with their headline lengths."""

    flat: np.ndarray       # (N*S,) the packed stream (a view, not a copy)
    starts: np.ndarray     # (D,) a_d of the kept documents
    given_len: np.ndarray  # (D,) g_d
    doc_index: np.ndarray  # (D,) index of each kept document in its split (corpus order)
    seq_len: int

    @classmethod
    def build(cls, sequences: np.ndarray, eos_id: int, is_newline: np.ndarray) -> DocumentRows:
        if sequences.ndim != 2:
            raise ConfigError(f"document rows need a packed (N, S) array, got shape {sequences.shape}")
        seq_len = sequences.shape[1]
        flat = np.asarray(sequences).reshape(-1)
        eos = np.flatnonzero(flat == eos_id)
        starts = np.concatenate([[0], eos + 1]).astype(np.int64)
        ends = np.concatenate([eos, [len(flat)]])                  # (D,) EOS (or stream end) of each
        breaks = is_newline[flat]                                   # (N*S,) token has a line break
        line_at = np.flatnonzero(breaks)
        other_at = np.flatnonzero(~breaks)
        first = np.searchsorted(line_at, starts)                    # p_d as an index into line_at
        has = first < len(line_at)
        p = np.where(has, line_at[np.minimum(first, len(line_at) - 1)], len(flat))
        after = np.searchsorted(other_at, p, side="right")           # first non-break position > p_d
        q = np.where(after < len(other_at), other_at[np.minimum(after, len(other_at) - 1)], len(flat))
        given_len = q - starts
        keep = (p < ends) & (given_len < seq_len) & (starts + seq_len <= len(flat))
        return cls(flat, starts[keep], given_len[keep], np.flatnonzero(keep), seq_len)

    def __len__(self) -> int:
        return len(self.starts)

    def batch(self, rows: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """(ids, given), both (B, S), of document rows ``rows``."""
        offsets = self.starts[rows][:, None] + np.arange(self.seq_len)
        ids = np.asarray(self.flat[offsets], dtype=np.int64)
        return ids, np.arange(self.seq_len)[None, :] < self.given_len[rows][:, None]


@dataclass
class Batch:
    """Token ids and which positions are given (prompt/context); all False when unconditional."""

    ids: Tensor    # (B, S) int64
    given: Tensor  # (B, S) bool

    def __post_init__(self) -> None:
        if self.ids.shape != self.given.shape:
            raise ValueError(f"Batch ids {tuple(self.ids.shape)} and given {tuple(self.given.shape)} differ")

    def to(self, device: torch.device | str) -> Batch:
        return Batch(self.ids.to(device, non_blocking=True), self.given.to(device, non_blocking=True))


class BatchLoader:
    """Batches of rows of a (N, S) token array.

    Iterating it never ends: each epoch is a permutation seeded by ``(seed, epoch)``, split
    evenly over DDP ranks, its last incomplete batch dropped. :meth:`state_dict` holds the
    position (epoch, rows consumed), so a resumed run sees exactly the same next batches.
    :meth:`epoch` is one ordered, complete pass (the last batch may be short) for validation.

    ``line_infill`` is the ``data.given`` policy (pathbench.core.config.line_infill_option): None,
    (low, high) line-mask fractions, or :class:`HeadlineGiven`, under which the rows are the
    split's documents (:class:`DocumentRows`; ``eos_id`` defaults to the packed cache's).
    """

    def __init__(self, sequences: np.ndarray, batch_size: int, *, seed: int = 0, shuffle: bool = True,
                 rank: int = 0, world: int = 1, line_infill: tuple[float, float] | HeadlineGiven | None = None,
                 is_newline: np.ndarray | None = None, eos_id: int | None = None) -> None:
        if batch_size < 1:
            raise ConfigError(f"batch_size = {batch_size} must be >= 1")
        self.sequences, self.batch_size, self.seed, self.shuffle = sequences, batch_size, seed, shuffle
        self.rank, self.world = rank, world
        self.epoch_index, self.position = 0, 0
        self.documents: DocumentRows | None = None
        if line_infill is not None and is_newline is None:
            raise ConfigError(f"data.given = {getattr(line_infill, 'name', 'lines')} needs the tokenizer's "
                              "newline table (PackedData.newline_table())")
        if isinstance(line_infill, HeadlineGiven):
            eos_id = packed_eos(sequences) if eos_id is None else eos_id
            if eos_id is None:
                raise ConfigError("data.given = headline needs the EOS id of the packed rows: pass eos_id=")
            self.documents = DocumentRows.build(sequences, eos_id, is_newline)
        elif line_infill is not None:
            low, high = line_infill
            if not 0 <= low <= high <= 1:
                raise ConfigError(f"line mask fractions ({low}, {high}) must satisfy 0 <= low <= high <= 1")
        self.line_infill, self.is_newline = line_infill, is_newline
        self._cached: tuple[int, np.ndarray] | None = None
        if shuffle and self.rows // world < batch_size:
            what = "document rows (data.given = headline)" if self.documents is not None else "sequences"
            raise ConfigError(f"{self.rows} training {what} over {world} rank(s) are fewer than "
                              f"batch_size = {batch_size}; lower batch_size or seq_len, or use more text")

    @property
    def rows(self) -> int:
        """Rows an epoch permutes: packed sequences, or documents under the headline policy."""
        return len(self.documents) if self.documents is not None else len(self.sequences)

    def _order(self, epoch: int) -> np.ndarray:
        """(N // world,) row indices this rank reads in ``epoch``."""
        if self._cached is None or self._cached[0] != epoch:
            n = self.rows
            order = np.random.default_rng([self.seed, epoch]).permutation(n) if self.shuffle else np.arange(n)
            self._cached = (epoch, order[: n // self.world * self.world][self.rank::self.world])
        return self._cached[1]

    def _batch(self, rows: np.ndarray, key: tuple[int, ...] = ()) -> Batch:
        if self.documents is not None:
            ids, given = self.documents.batch(np.sort(rows))
            return Batch(torch.from_numpy(ids), torch.from_numpy(given))
        ids = np.asarray(self.sequences[np.sort(rows)], dtype=np.int64)  # sorted: sequential reads
        if self.line_infill is None:
            given = np.zeros(ids.shape, dtype=bool)
        else:  # the masks depend only on (seed, position): a resumed run draws the same ones
            rng = np.random.default_rng([self.seed, *key])
            given = line_infill_given(ids, self.is_newline, rng, *self.line_infill)
        return Batch(torch.from_numpy(ids), torch.from_numpy(given))

    def __iter__(self) -> BatchLoader:
        return self

    def __next__(self) -> Batch:
        if self.position + self.batch_size > len(self._order(self.epoch_index)):
            self.epoch_index, self.position = self.epoch_index + 1, 0
        rows = self._order(self.epoch_index)[self.position:self.position + self.batch_size]
        key = (self.epoch_index, self.position, self.rank)
        self.position += self.batch_size
        return self._batch(rows, key)

    @property
    def batches_per_epoch(self) -> int:
        return self.rows // self.world // self.batch_size

    def epoch(self):
        """One ordered pass over every row (the last batch may be short); position untouched."""
        for start in range(0, self.rows, self.batch_size):
            yield self._batch(np.arange(start, min(start + self.batch_size, self.rows)), (start,))

    def state_dict(self) -> dict[str, int]:
        return {"epoch": self.epoch_index, "position": self.position, "seed": self.seed,
                "sequences": self.rows, "world": self.world}

    def load_state_dict(self, state: dict[str, int]) -> None:
        """Restore a position saved by :meth:`state_dict` (on the same data, seed and world size)."""
        for name, now in (("seed", self.seed), ("sequences", self.rows), ("world", self.world)):
            if state.get(name, now) != now:
                raise ConfigError(f"data position was saved with {name} = {state[name]}, this run has {now}; "
                                  "resuming would not see the same batches")
        self.epoch_index, self.position = int(state["epoch"]), int(state["position"])
