"""The one data pipeline: corpus -> tokenizer -> packed fixed-length sequences -> batches
(:mod:`pathbench.data.sources`: the corpus specs, streamed; :mod:`pathbench.data.stream`: the
parallel tokenisation; :mod:`pathbench.data.batches`: the loader and the ``data.given``
policies; the names used elsewhere are re-exported here).

Documents go to train or validation by a hash of their text (stable across runs, orderings
and duplicates), are tokenised (the ``bpe`` tokenizer is trained on the train split only, its
first ``BPE_TRAIN_CHARS`` characters), joined with EOS after each document and cut into
sequences of ``seq_len`` tokens (the tail is dropped). ``max_tokens`` (``data.max_tokens``) is
a token budget: the corpus is read only until the training split holds that many tokens (the
validation split keeps the documents read before that point). The result is cached as raw
``uint16``/``uint32`` files read back with ``np.memmap``, in ``<cache_dir>/data-<hash>/``
where the hash covers the corpus, the tokenizer, ``seq_len``, the split and the budget.

Built once per cluster: the first process takes the cache entry's file lock and builds it,
the others wait on the lock and then map what it wrote; a process that must not build (a DDP
rank other than its node's first: ``builder=False``) waits for the folder instead. The build
streams the corpus in shards through a pool of worker processes (pathbench.data.stream) into a
``.building-data-<hash>`` folder, recording after every shard how far it got, so a killed build
resumes where it stopped; it is renamed into place when complete, so a reader never sees half
a cache. A build that fails with an error (or Ctrl-C) removes its folder.
"""

from __future__ import annotations

import contextlib
import hashlib
import itertools
import json
import logging
import os
import shutil
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import IO, Any

import numpy as np
from tqdm import tqdm

from pathbench.core.errors import ConfigError
from pathbench.core.io import exclusive, is_locked
from pathbench.data.batches import Batch, BatchLoader, line_infill_given  # noqa: F401 (re-exported)
from pathbench.data.oracle import is_oracle
from pathbench.data.oracle_data import build_oracle, check_data_spec, oracle_spec  # noqa: F401
from pathbench.data.sources import CORPUS_FORMS, corpus_identity, iter_documents, load_corpus  # noqa: F401
from pathbench.data.stream import SHARD_CHARS, BuildProgress, ShardTokens, data_workers, is_validation, tokenised_shards
from pathbench.data.tokenizer import Tokenizer, build_tokenizer, load_tokenizer, tokenizer_identity

CACHE_VERSION = 3  # 3: the bpe tokenizer is trained on at most BPE_TRAIN_CHARS; the budget in the key
BPE_TRAIN_CHARS = 2**30  # a bounded sample: a tokenizer's statistics settle long before 1 G characters
WAIT_POLL_S = 2.0
WAIT_GRACE_S = 600.0  # for the builder to take the lock: the ranks of a job start together
log = logging.getLogger("pathbench.data")


def split_documents(docs: list[str], val_fraction: float) -> tuple[list[str], list[str]]:
    """(train, validation) documents, each in corpus order."""
    flags = [is_validation(d, val_fraction) for d in docs]
    return [d for d, v in zip(docs, flags) if not v], [d for d, v in zip(docs, flags) if v]


def pack(token_lists: list[list[int]], eos_id: int, seq_len: int, dtype=np.int64) -> np.ndarray:
    """Documents joined with EOS after each, cut into (N, seq_len); the tail is dropped."""
    flat = _flatten(token_lists, eos_id, dtype)
    n = len(flat) // seq_len
    return flat[: n * seq_len].reshape(n, seq_len)


def _flatten(token_lists: list[list[int]], eos_id: int, dtype) -> np.ndarray:
    """(sum(len(doc) + 1),): every document followed by ``eos_id``."""
    lengths = np.fromiter((len(t) + 1 for t in token_lists), dtype=np.int64, count=len(token_lists))
    flat = np.full(int(lengths.sum()), eos_id, dtype=dtype)
    ends = np.cumsum(lengths) - 1
    for ids, end in zip(token_lists, ends):
        flat[end - len(ids):end] = ids
    return flat


def _open(path: Path, dtype: str, n: int, seq_len: int) -> np.memmap:
    return np.memmap(path, dtype=dtype, mode="r", shape=(n, seq_len))


@dataclass
class PackedData:
    """A prepared corpus: its tokenizer and read-only (N, S) token memmaps per split."""

    tokenizer: Tokenizer
    train: np.ndarray  # (N_train, S) uint16/uint32 memmap
    val: np.ndarray    # (N_val, S)
    folder: Path       # the cache folder (meta.json, train.bin, val.bin, tokenizer/)
    info: dict[str, Any] = field(default_factory=dict)  # meta.json: counts, dtype, key, build time

    def newline_table(self) -> np.ndarray:
        """(V,) bool: tokens whose text contains a line break (for line-masked infilling)."""
        tok = self.tokenizer
        return np.array(["\n" in tok.decode([i]) for i in range(tok.vocab_size)], dtype=bool)


def prepare_data(corpus: str, tokenizer_spec: str, seq_len: int, cache_dir: Path,
                 vocab_size: int = 8192, val_fraction: float = 0.05, *, max_tokens: int | None = None,
                 workers: int | None = None, builder: bool = True, shard_chars: int = SHARD_CHARS) -> PackedData:
    """Build (or reuse from ``cache_dir``) packed train/validation sequences of ``seq_len`` tokens.

    ``max_tokens``: training tokens to keep (None: the whole corpus). ``workers``: tokenising
    processes (None: ``$PATHBENCH_DATA_WORKERS``, else this process's CPU allocation); the
    tokens do not depend on it, nor on ``shard_chars``. ``builder=False``: never build, wait
    for the process that does."""
    if seq_len < 2:
        raise ConfigError(f"seq_len = {seq_len} must be >= 2")
    if not 0 < val_fraction < 1:
        raise ConfigError(f"val_fraction = {val_fraction} is outside (0, 1)")
    if max_tokens is not None and max_tokens < seq_len:
        raise ConfigError(f"data.max_tokens = {max_tokens} is less than one sequence of seq_len = {seq_len} tokens")
    if is_oracle(corpus):
        if max_tokens is not None:
            raise ConfigError(f"data.max_tokens does not apply to the oracle corpus '{corpus}': set its n")
        oracle = oracle_spec(corpus, tokenizer_spec, seq_len)
        key = json.dumps([CACHE_VERSION, oracle.canonical(), seq_len, val_fraction])
    else:
        key = json.dumps([CACHE_VERSION, corpus_identity(corpus), tokenizer_identity(tokenizer_spec, vocab_size),
                          seq_len, val_fraction, max_tokens])
    folder = Path(cache_dir) / f"data-{hashlib.sha1(key.encode()).hexdigest()[:16]}"
    lock = folder.parent / f".{folder.name}.lock"
    if not (folder / "meta.json").is_file():
        if not builder:
            _wait_for(folder, lock)
        else:
            with exclusive(lock, remove=True):
                if not (folder / "meta.json").is_file():  # not built while this process waited
                    if is_oracle(corpus):
                        build_oracle(folder, corpus, tokenizer_spec, seq_len, vocab_size, val_fraction, key)
                    else:
                        _build(folder, corpus, tokenizer_spec, seq_len, vocab_size, val_fraction, key,
                               max_tokens, data_workers(workers), shard_chars)
    info = json.loads((folder / "meta.json").read_text())
    return PackedData(load_tokenizer(folder / "tokenizer"),
                      _open(folder / "train.bin", info["dtype"], info["train"]["sequences"], seq_len),
                      _open(folder / "val.bin", info["dtype"], info["val"]["sequences"], seq_len), folder, info)


def _wait_for(folder: Path, lock: Path) -> None:
    """Until another process (the node's first DDP rank) has built ``folder``; a one-line error
    when none holds the build's lock any more (it died), or none took it within WAIT_GRACE_S."""
    waited, seen = 0.0, False
    while not (folder / "meta.json").is_file():
        held = is_locked(lock)
        seen = seen or held
        if not held and (seen or waited >= WAIT_GRACE_S) and not (folder / "meta.json").is_file():
            raise ConfigError(f"no process is building the data cache {folder} (waited {waited:.0f} s): the "
                              "node's first rank (LOCAL_RANK 0) builds it; see its log for why it stopped")
        if waited % 60 == 0:
            log.info("waiting for the process that builds %s", folder)
        time.sleep(WAIT_POLL_S)
        waited += WAIT_POLL_S


def _build(folder: Path, corpus: str, tokenizer_spec: str, seq_len: int, vocab_size: int, val_fraction: float,
           key: str, max_tokens: int | None, workers: int, shard_chars: int) -> None:
    """Stream, tokenise and write the corpus into ``.building-<folder>``, resuming a killed build
    of the same key found there; rename it to ``folder`` when complete."""
    started = time.perf_counter()
    build = folder.parent / f".building-{folder.name}"
    try:
        tokenizer, progress = _resume(build, key)
        resumed = progress is not None
        if progress is None:
            shutil.rmtree(build, ignore_errors=True)
            build.mkdir(parents=True)
            texts = iter_documents(corpus) if tokenizer_spec == "bpe" else iter(())  # only bpe reads it twice
            train_texts = (d for d in texts if not is_validation(d, val_fraction))
            tokenizer = build_tokenizer(tokenizer_spec, _first_chars(train_texts, BPE_TRAIN_CHARS), vocab_size,
                                        save_dir=build / "tokenizer")
            progress = BuildProgress(key)
            progress.save(build)  # from here on the build can resume
        dtype = _dtype(tokenizer)
        if not progress.finished:
            _tokenise(build, corpus, tokenizer, progress, val_fraction, dtype, max_tokens, workers, shard_chars)
        info: dict[str, Any] = {"key": key, "corpus": corpus, "tokenizer": tokenizer_spec, "seq_len": seq_len,
                                "val_fraction": val_fraction, "vocab_size": tokenizer.vocab_size,
                                "eos_id": tokenizer.eos_id, "dtype": dtype.name, "max_tokens": max_tokens}
        counts = {"train": (progress.train_documents, progress.train_tokens),
                  "val": (progress.val_documents, progress.val_tokens)}
        for split, (documents, _) in counts.items():
            if not documents:
                raise ConfigError(f"corpus '{corpus}' has no {'train' if split == 'train' else 'validation'} document "
                                  f"({progress.documents} documents read, val_fraction = {val_fraction}); use more "
                                  "documents" + (" or a larger data.max_tokens" if max_tokens else ""))
        for split, (documents, tokens) in counts.items():
            if tokens < seq_len:
                raise ConfigError(f"corpus '{corpus}' is too small for one {split} sequence of {seq_len} tokens "
                                  f"({documents} documents, {tokens} tokens); lower seq_len or use more text")
            with open(build / f"{split}.bin", "r+b") as f:
                f.truncate(tokens // seq_len * seq_len * dtype.itemsize)
            info[split] = {"documents": documents, "tokens": tokens, "sequences": tokens // seq_len}
        info.update(budget_reached=max_tokens is not None and progress.train_tokens >= max_tokens,
                    shards=progress.shards, workers=workers, resumed=resumed,
                    build_seconds=round(time.perf_counter() - started, 2))
        (build / "progress.json").unlink()
        (build / "meta.json").write_text(json.dumps(info, indent=1))  # written last: marks completion
        os.replace(build, folder)
    except (Exception, KeyboardInterrupt):  # an error or Ctrl-C: nothing half-built stays; a kill resumes
        shutil.rmtree(build, ignore_errors=True)
        raise


def _dtype(tokenizer: Tokenizer) -> np.dtype:
    return np.dtype(np.uint16 if tokenizer.vocab_size <= 2**16 else np.uint32)


def _first_chars(texts: Iterator[str], limit: int) -> Iterator[str]:
    """The texts until ``limit`` characters have been given."""
    given = 0
    for text in texts:
        if given >= limit:
            return
        given += len(text)
        yield text


def _resume(build: Path, key: str) -> tuple[Tokenizer | None, BuildProgress | None]:
    """The tokenizer and progress of a killed build of ``key`` in ``build``, or (None, None)."""
    if not (build / "tokenizer").is_dir():
        return None, None
    try:
        tokenizer = load_tokenizer(build / "tokenizer")
    except (ConfigError, OSError, ValueError):
        return None, None
    progress = BuildProgress.read(build, key, _dtype(tokenizer).itemsize)
    if progress is not None:
        log.info("resuming the data build in %s after %d documents", build, progress.documents)
    return (tokenizer, progress) if progress is not None else (None, None)


@contextlib.contextmanager
def _write_split(path: Path, tokens: int, dtype: np.dtype) -> Iterator[IO[bytes]]:
    """A split's token file opened for appending after its first ``tokens`` tokens (what a
    killed build wrote past its last recorded shard is cut off)."""
    with open(path, "r+b" if path.exists() else "wb") as f:
        f.truncate(tokens * np.dtype(dtype).itemsize)
        f.seek(0, os.SEEK_END)
        yield f


def _tokenise(build: Path, corpus: str, tokenizer: Tokenizer, progress: BuildProgress, val_fraction: float,
              dtype: np.dtype, max_tokens: int | None, workers: int, shard_chars: int) -> None:
    """Append the corpus's shards after ``progress`` to the token files until the stream ends
    or the training split holds ``max_tokens``; record the progress after every shard."""
    docs = itertools.islice(iter_documents(corpus), progress.documents, None)
    with (_write_split(build / "train.bin", progress.train_tokens, dtype) as train,
          _write_split(build / "val.bin", progress.val_tokens, dtype) as val,
          tqdm(total=max_tokens, initial=progress.train_tokens, desc="tokenise", unit="tok", unit_scale=True,
               disable=None, leave=False) as bar):
        for shard in tokenised_shards(docs, tokenizer, build / "tokenizer", val_fraction, dtype, workers,
                                      shard_chars):
            used = _within_budget(shard, None if max_tokens is None else max_tokens - progress.train_tokens)
            train_docs = int((~shard.is_val[:used]).sum())
            train_tokens = min(len(shard.train), int(shard.lengths[:used][~shard.is_val[:used]].sum()))
            if max_tokens is not None:
                train_tokens = min(train_tokens, max_tokens - progress.train_tokens)
            val_tokens = int(shard.lengths[:used][shard.is_val[:used]].sum())
            for f, tokens in ((train, shard.train[:train_tokens]), (val, shard.val[:val_tokens])):
                f.write(tokens.tobytes())
                f.flush()
                os.fsync(f.fileno())  # on disk before the progress says so
            progress.documents += used
            progress.shards += 1
            progress.train_documents += train_docs
            progress.train_tokens += train_tokens
            progress.val_documents += used - train_docs
            progress.val_tokens += val_tokens
            progress.finished = used < shard.documents or progress.train_tokens == max_tokens
            progress.save(build)
            bar.update(train_tokens)
            if progress.finished:
                return
    progress.finished = True
    progress.save(build)


def _within_budget(shard: ShardTokens, room: int | None) -> int:
    """How many of the shard's documents are read: all, or up to the training document whose
    tokens fill the remaining ``room``."""
    if room is None:
        return shard.documents
    filled = np.cumsum(np.where(shard.is_val, 0, shard.lengths))
    if filled[-1] < room:
        return shard.documents
    return int(np.searchsorted(filled, room)) + 1


def prepare_stored(data_cfg: dict) -> PackedData:
    """The data of a trained run, from the ``data`` section its meta.json stores."""
    return prepare_data(data_cfg["corpus"], data_cfg["tokenizer"], data_cfg["seq_len"], Path(data_cfg["cache_dir"]),
                        vocab_size=data_cfg["vocab_size"], val_fraction=data_cfg["val_fraction"],
                        max_tokens=data_cfg.get("max_tokens"))


def held_out_batches(data_cfg: dict, batches: int, batch_size: int) -> list[Batch]:
    """The first ``batches`` validation batches of a trained run's data, in order."""
    return list(BatchLoader(prepare_stored(data_cfg).val, batch_size, shuffle=False).epoch())[:batches]
