"""The oracle corpus's packed cache: the hidden Markov model's sequences, a fixed share held
out, written with the model itself beside them (pathbench.data.oracle is the model; the text
corpora's cache is pathbench.data.corpus, which calls :func:`build_oracle` under its lock)."""

from __future__ import annotations

import contextlib
import json
import os
import shutil
import tempfile
import time
from pathlib import Path
from typing import Any

import numpy as np

from pathbench.core.errors import ConfigError
from pathbench.data.oracle import HMM, OracleSpec, is_oracle
from pathbench.data.tokenizer import build_tokenizer


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


def build_oracle(folder: Path, corpus: str, tokenizer_spec: str, seq_len: int, vocab_size: int,
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
