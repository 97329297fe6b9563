"""Streamed, sharded, parallel tokenisation: documents in, per-shard token arrays out, in order.

A stream of documents is cut into *shards* of about ``shard_chars`` characters; a pool of
worker processes (one core each: the job's CPU allocation by default) tokenises them, each
document also split to train or validation by a hash of its text (:func:`is_validation`), and
the shards come back in stream order with at most ``2 × workers`` of them in flight. So the
memory a build holds is a few shards' text and tokens, whatever the corpus size, and the tokens
do not depend on the number of workers or the shard size: every document is tokenised alone
and the results are joined in corpus order.

Workers are spawned, not forked (the parent may hold torch's or the tokenizer library's
threads), and load the tokenizer the build saved; this module imports neither torch nor the
corpus sources, so a worker starts in a fraction of a second. A corpus of one shard is
tokenised in the calling process: no pool for a small corpus.
"""

from __future__ import annotations

import hashlib
import itertools
import json
import multiprocessing
import os
from collections import deque
from collections.abc import Iterable, Iterator
from concurrent.futures import Future, ProcessPoolExecutor
from dataclasses import asdict, dataclass
from pathlib import Path

import numpy as np

from pathbench.core.errors import ConfigError
from pathbench.core.io import atomic_write_json
from pathbench.data.tokenizer import Tokenizer, load_tokenizer

SHARD_CHARS = 8 * 2**20  # characters of text per shard: ≈ 2 M tokens, a few tens of MB while tokenised
WORKERS_ENV = "PATHBENCH_DATA_WORKERS"


def allocated_cpus() -> int:
    """The CPUs this process may run on (a SLURM job's allocation, a taskset), not the node's."""
    return len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count() or 1


def data_workers(workers: int | None = None) -> int:
    """Tokenising processes: ``workers`` if given, else ``$PATHBENCH_DATA_WORKERS``, else the allocation."""
    if workers is None:
        text = os.environ.get(WORKERS_ENV, "").strip()
        if text and not text.isdigit():
            raise ConfigError(f"{WORKERS_ENV} = '{text}' is not a whole number of worker processes")
        workers = int(text) if text else allocated_cpus()
    if workers < 1:
        raise ConfigError(f"data workers = {workers} must be >= 1")
    return workers


def is_validation(doc: str, val_fraction: float) -> bool:
    """Stable document-level split: a hash of the text, not its position (duplicates agree)."""
    digest = int.from_bytes(hashlib.sha1(doc.encode("utf-8")).digest()[:8], "big")
    return digest / 2**64 < val_fraction


@dataclass
class ShardTokens:
    """One shard tokenised: per document its split and length (EOS included), and each split's
    documents joined, every one followed by EOS, in corpus order."""

    is_val: np.ndarray   # (D,) bool
    lengths: np.ndarray  # (D,) int64, tokens of each document + 1 (its EOS)
    train: np.ndarray    # (sum of the train lengths,) in the cache's dtype
    val: np.ndarray      # (sum of the validation lengths,)

    @property
    def documents(self) -> int:
        return len(self.lengths)


def encode_shard(tokenizer: Tokenizer, docs: list[str], val_fraction: float, dtype: np.dtype) -> ShardTokens:
    """Tokenise one shard: each document alone (one core: no library thread pool), joined per split."""
    is_val = np.fromiter((is_validation(d, val_fraction) for d in docs), dtype=bool, count=len(docs))
    ids = [np.asarray(tokenizer.encode(d), dtype=dtype) for d in docs]
    eos = np.array([tokenizer.eos_id], dtype=dtype)
    lengths = np.fromiter((len(x) + 1 for x in ids), dtype=np.int64, count=len(ids))

    def joined(pick: bool) -> np.ndarray:
        parts = [p for x, v in zip(ids, is_val) if v == pick for p in (x, eos)]
        return np.concatenate(parts) if parts else np.zeros(0, dtype=dtype)

    return ShardTokens(is_val, lengths, joined(False), joined(True))


def shards(docs: Iterable[str], shard_chars: int = SHARD_CHARS) -> Iterator[list[str]]:
    """Consecutive groups of documents of at least ``shard_chars`` characters (the last: fewer)."""
    shard: list[str] = []
    size = 0
    for doc in docs:
        shard.append(doc)
        size += len(doc)
        if size >= shard_chars:
            yield shard
            shard, size = [], 0
    if shard:
        yield shard


_WORKER: dict = {}  # a pool worker's tokenizer and options, set once by _start_worker


def _start_worker(tokenizer_dir: str, val_fraction: float, dtype: str) -> None:
    os.environ["TOKENIZERS_PARALLELISM"] = "false"  # this process is one core of the pool
    _WORKER.update(tokenizer=load_tokenizer(Path(tokenizer_dir)), val_fraction=val_fraction, dtype=np.dtype(dtype))


def _encode_in_worker(docs: list[str]) -> ShardTokens:
    return encode_shard(_WORKER["tokenizer"], docs, _WORKER["val_fraction"], _WORKER["dtype"])


def tokenised_shards(docs: Iterable[str], tokenizer: Tokenizer, tokenizer_dir: Path, val_fraction: float,
                     dtype: np.dtype, workers: int, shard_chars: int = SHARD_CHARS) -> Iterator[ShardTokens]:
    """The shards of ``docs`` tokenised, in order, by ``workers`` processes (the tokenizer saved
    in ``tokenizer_dir``, the same as ``tokenizer``); stop iterating to stop reading the corpus."""
    stream = shards(docs, shard_chars)
    head = list(itertools.islice(stream, 2))
    if workers == 1 or len(head) < 2:  # one core, or one shard: no pool to start
        for shard in itertools.chain(head, stream):
            yield encode_shard(tokenizer, shard, val_fraction, dtype)
        return
    context = multiprocessing.get_context("spawn")
    with ProcessPoolExecutor(workers, mp_context=context, initializer=_start_worker,
                             initargs=(str(tokenizer_dir), val_fraction, np.dtype(dtype).name)) as pool:
        pending: deque[Future] = deque()
        try:
            for shard in itertools.chain(head, stream):
                pending.append(pool.submit(_encode_in_worker, shard))
                if len(pending) >= 2 * workers:  # bounded: the reader waits for the oldest shard
                    yield pending.popleft().result()
            while pending:
                yield pending.popleft().result()
        finally:  # stopped early (the token budget) or failed: drop what is still queued
            for future in pending:
                future.cancel()


PROGRESS_FILE = "progress.json"


@dataclass
class BuildProgress:
    """How far a build folder got, rewritten after every shard that reached the disk: a killed
    build resumes from it (the token files cut back to these lengths, the first ``documents``
    documents of the stream skipped), and one of another cache key is never resumed."""

    key: str
    documents: int = 0        # documents of the stream consumed (both splits)
    shards: int = 0
    train_documents: int = 0  # a document cut by the token budget counts
    train_tokens: int = 0
    val_documents: int = 0
    val_tokens: int = 0
    finished: bool = False    # the stream ended or the budget was reached

    def save(self, folder: Path) -> None:
        atomic_write_json(folder / PROGRESS_FILE, asdict(self))

    @classmethod
    def read(cls, folder: Path, key: str, itemsize: int) -> BuildProgress | None:
        """The progress of ``folder`` if it belongs to ``key`` and its token files hold at least
        what it records, else None (start again)."""
        try:
            progress = cls(**json.loads((folder / PROGRESS_FILE).read_text()))
        except (OSError, ValueError, TypeError):
            return None
        for split, tokens in (("train", progress.train_tokens), ("val", progress.val_tokens)):
            path = folder / f"{split}.bin"
            if tokens and (not path.is_file() or path.stat().st_size < tokens * itemsize):
                return None
        return progress if progress.key == key else None
