"""Tokenizers behind one small interface, saved beside the data and beside every run.

Specs (``build_tokenizer``):

* ``bpe`` (default): byte-level BPE trained with HF ``tokenizers`` on the training split,
  ``<|endoftext|>`` as EOS, saved as ``tokenizer.json``;
* ``hf:<name or local path>``: ``transformers.AutoTokenizer.from_pretrained``; saved with
  ``save_pretrained`` so a run never needs the hub again;
* ``gpt2``: tiktoken's ``r50k_base`` (vocabulary 50,257, EOS 50,256). Offline it needs the
  BPE file in tiktoken's cache; :func:`setup_gpt2_bpe` puts it there from openai-whisper's asset file;
* ``oracle:<V>``: the identity tokenizer of the oracle corpus (:mod:`pathbench.data.oracle`),
  whose data are token ids already: id i is a fixed pseudo-word, EOS is id V.

Every tokenizer saves ``pathbench_tokenizer.json`` (spec, vocabulary size, EOS id) next to its
own files, and :func:`load_tokenizer` restores exactly what was saved.
"""

from __future__ import annotations

import hashlib
import importlib.util
import json
import os
import shutil
import tempfile
from abc import ABC, abstractmethod
from collections.abc import Iterable, Sequence
from pathlib import Path

from pathbench.core.cache import cache_root
from pathbench.core.errors import ConfigError

EOS = "<|endoftext|>"
SPEC_FILE = "pathbench_tokenizer.json"
SPECS = "bpe, hf:<name or path>, gpt2, oracle (with an oracle: corpus)"
GPT2_CACHE_NAME = "0ea1e91bbb3a60f729a8dc8f777fd2fc07cd8df4"  # sha1 of the r50k_base URL
GPT2_SHA256 = "306cd27f03c1a714eca7108e03d66b7dc042abe8c258b44c199a7ed9838dd930"  # tiktoken's check


class Tokenizer(ABC):
    """Text <-> token ids in ``[0, vocab_size)``, with an end-of-text id separating documents."""

    spec: str        # what build_tokenizer was given: "bpe", "hf:<name>", "gpt2"
    vocab_size: int  # every id is < vocab_size (added/special tokens included)
    eos_id: int

    @property
    def name(self) -> str:
        return self.spec

    @abstractmethod
    def encode(self, text: str) -> list[int]:
        """One document -> ids, no BOS/EOS added."""

    @abstractmethod
    def decode(self, ids: Sequence[int]) -> str:
        """Ids -> text; special tokens (EOS) are kept as their text."""

    def encode_batch(self, texts: list[str]) -> list[list[int]]:
        """Many documents at once (the libraries parallelise this)."""
        return [self.encode(text) for text in texts]

    def save(self, folder: Path) -> None:
        """Write everything :func:`load_tokenizer` needs into ``folder``."""
        folder = Path(folder)
        folder.mkdir(parents=True, exist_ok=True)
        info = {"spec": self.spec, "vocab_size": self.vocab_size, "eos_id": self.eos_id}
        (folder / SPEC_FILE).write_text(json.dumps(info, indent=1))

    def __repr__(self) -> str:
        return f"{type(self).__name__}(spec={self.spec!r}, vocab_size={self.vocab_size}, eos_id={self.eos_id})"


class BPETokenizer(Tokenizer):
    """Byte-level BPE (GPT-2 style pre-tokenisation) from HF ``tokenizers``."""

    def __init__(self, tokenizer) -> None:  # a tokenizers.Tokenizer
        self._tok, self.spec = tokenizer, "bpe"
        self.vocab_size = tokenizer.get_vocab_size(with_added_tokens=True)
        eos = tokenizer.token_to_id(EOS)
        if eos is None:
            raise ConfigError(f"BPE tokenizer has no {EOS} token; it was not trained by pathbench")
        self.eos_id = eos

    @classmethod
    def train(cls, texts: Iterable[str], vocab_size: int) -> BPETokenizer:
        from tokenizers import Tokenizer as HFTokenizer
        from tokenizers import decoders, models, pre_tokenizers, trainers

        tok = HFTokenizer(models.BPE())
        tok.pre_tokenizer = pre_tokenizers.ByteLevel(add_prefix_space=False)
        tok.decoder = decoders.ByteLevel()
        trainer = trainers.BpeTrainer(vocab_size=vocab_size, special_tokens=[EOS], show_progress=False,
                                      initial_alphabet=pre_tokenizers.ByteLevel.alphabet())
        tok.train_from_iterator(texts, trainer)
        return cls(tok)

    def encode(self, text: str) -> list[int]:
        return self._tok.encode(text).ids

    def encode_batch(self, texts: list[str]) -> list[list[int]]:
        return [e.ids for e in self._tok.encode_batch(texts)]

    def decode(self, ids: Sequence[int]) -> str:
        return self._tok.decode([int(i) for i in ids], skip_special_tokens=False)

    def save(self, folder: Path) -> None:
        super().save(folder)
        self._tok.save(str(Path(folder) / "tokenizer.json"))


class HFTokenizer(Tokenizer):
    """Any ``transformers`` tokenizer; ``source`` overrides where it is loaded from."""

    def __init__(self, name: str, source: str | None = None) -> None:
        from transformers import AutoTokenizer

        try:
            self._tok = AutoTokenizer.from_pretrained(source or name)
        except (OSError, ValueError) as err:
            raise ConfigError(f"tokenizer 'hf:{name}' cannot be loaded ({type(err).__name__}); give a local "
                              "folder saved with save_pretrained, or run where the hub is reachable") from err
        if self._tok.eos_token_id is None:
            raise ConfigError(f"tokenizer 'hf:{name}' has no EOS token; pathbench separates documents with it")
        self.spec, self.vocab_size, self.eos_id = f"hf:{name}", len(self._tok), self._tok.eos_token_id

    def encode(self, text: str) -> list[int]:
        return self.encode_batch([text])[0]

    def encode_batch(self, texts: list[str]) -> list[list[int]]:
        # verbose=False: whole documents are longer than model_max_length, which is expected here
        return self._tok(texts, add_special_tokens=False, verbose=False)["input_ids"]

    def decode(self, ids: Sequence[int]) -> str:
        return self._tok.decode([int(i) for i in ids])

    def save(self, folder: Path) -> None:
        super().save(folder)
        self._tok.save_pretrained(str(Path(folder) / "hf"))


class GPT2Tokenizer(Tokenizer):
    """GPT-2's byte-level BPE through tiktoken (``r50k_base``)."""

    def __init__(self) -> None:
        setup_gpt2_bpe()
        import tiktoken

        self._enc = tiktoken.get_encoding("r50k_base")
        self.spec, self.vocab_size, self.eos_id = "gpt2", self._enc.n_vocab, self._enc.eot_token

    def encode(self, text: str) -> list[int]:
        return self._enc.encode(text, allowed_special={EOS})

    def encode_batch(self, texts: list[str]) -> list[list[int]]:
        return self._enc.encode_batch(texts, allowed_special={EOS})

    def decode(self, ids: Sequence[int]) -> str:
        return self._enc.decode([int(i) for i in ids])


class WordTokenizer(Tokenizer):
    """Ids as pronounceable pseudo-words, one per id: an identity tokenizer whose sample files
    stay readable text. Id i is written in base 80 with the syllables of :data:`SYLLABLES`
    (consonant + vowel), every word the same number of syllables; words are separated by one
    space and EOS (id V) is ``<|endoftext|>``. ``encode(decode(ids)) == ids`` for every id."""

    def __init__(self, vocab: int) -> None:
        if vocab < 2:
            raise ConfigError(f"oracle tokenizer: V = {vocab} must be >= 2")
        self.spec, self.vocab_size, self.eos_id = f"oracle:{vocab}", vocab + 1, vocab
        width = 1
        while len(SYLLABLES) ** width < vocab:
            width += 1
        self.words = [_word(i, width) for i in range(vocab)]
        self._ids = {w: i for i, w in enumerate(self.words)}
        self._ids[EOS] = vocab

    def encode(self, text: str) -> list[int]:
        ids = []
        for word in text.replace(EOS, f" {EOS} ").split():
            if word not in self._ids:
                raise ConfigError(f"'{word[:40]}' is not a word of the oracle tokenizer with V = {self.eos_id} "
                                  f"(its words: {self.words[0]}, {self.words[1]}, ..., {self.words[-1]}, {EOS}); "
                                  "was this text generated from another corpus?")
            ids.append(self._ids[word])
        return ids

    def decode(self, ids: Sequence[int]) -> str:
        return " ".join(EOS if int(i) == self.eos_id else self.words[int(i)] for i in ids)


SYLLABLES = [c + v for c in "bdfghjklmnprstvz" for v in "aeiou"]  # 80


def _word(i: int, width: int) -> str:
    digits = []
    for _ in range(width):
        i, r = divmod(i, len(SYLLABLES))
        digits.append(SYLLABLES[r])
    return "".join(reversed(digits))


def tiktoken_cache_dir() -> Path:
    """The folder tiktoken reads its BPE files from (same rules as ``tiktoken.load``)."""
    for var in ("TIKTOKEN_CACHE_DIR", "DATA_GYM_CACHE_DIR"):
        if os.environ.get(var):
            return Path(os.environ[var])
    return Path(tempfile.gettempdir()) / "data-gym-cache"


def whisper_gpt2_asset() -> Path | None:
    """The r50k_base file ``scripts/install.sh`` takes from openai-whisper's source archive
    (``<pathbench cache>/gpt2.tiktoken``), else ``whisper/assets/gpt2.tiktoken`` of an installed
    ``openai-whisper`` (found, not imported)."""
    extracted = cache_root() / "gpt2.tiktoken"
    if extracted.is_file():
        return extracted
    spec = importlib.util.find_spec("whisper")
    if spec is None or spec.origin is None:
        return None
    asset = Path(spec.origin).parent / "assets" / "gpt2.tiktoken"
    return asset if asset.is_file() else None


def setup_gpt2_bpe() -> Path:
    """Make ``tiktoken.get_encoding("r50k_base")`` work offline; return the cached file.

    Uses the file already in tiktoken's cache, or copies (atomically) the identical file that
    ``openai-whisper`` ships; otherwise raises a one-line :class:`ConfigError` saying how.
    """
    cache = tiktoken_cache_dir()
    target = cache / GPT2_CACHE_NAME
    if not target.is_file():
        asset = whisper_gpt2_asset()
        if asset is None:
            raise ConfigError(
                f"tokenizer 'gpt2' needs tiktoken's r50k_base file at {target}; run scripts/install.sh "
                "(it takes whisper/assets/gpt2.tiktoken from openai-whisper==20250625's source archive into "
                f"{cache_root() / 'gpt2.tiktoken'}) or copy that file to {target} yourself")
        if hashlib.sha256(asset.read_bytes()).hexdigest() != GPT2_SHA256:
            raise ConfigError(f"tokenizer 'gpt2': {asset} is not the r50k_base file (sha256 mismatch)")
        cache.mkdir(parents=True, exist_ok=True)
        tmp = cache / f".{GPT2_CACHE_NAME}.{os.getpid()}.tmp"
        shutil.copyfile(asset, tmp)
        os.replace(tmp, target)
    os.environ.setdefault("TIKTOKEN_CACHE_DIR", str(cache))
    return target


ensure_gpt2_bpe_file = setup_gpt2_bpe  # the name used before


def build_tokenizer(spec: str, texts: Iterable[str] = (), vocab_size: int = 8192,
                    save_dir: Path | None = None) -> Tokenizer:
    """The tokenizer named by ``spec``; ``bpe`` is trained on ``texts`` (the training split).

    ``vocab_size`` only applies to ``bpe``. With ``save_dir`` it is also saved there.
    """
    if spec == "bpe":
        if vocab_size < 257:
            raise ConfigError(f"vocab_size = {vocab_size} must be >= 257 for byte-level BPE (256 bytes + EOS)")
        tok: Tokenizer = BPETokenizer.train(texts, vocab_size)
    elif spec.startswith("hf:") and len(spec) > 3:
        tok = HFTokenizer(spec[3:])
    elif spec == "gpt2":
        tok = GPT2Tokenizer()
    elif spec.startswith("oracle:") and spec[7:].isdigit():
        tok = WordTokenizer(int(spec[7:]))
    else:
        raise ConfigError(f"unknown tokenizer '{spec}'; known: {SPECS}")
    if save_dir is not None:
        tok.save(Path(save_dir))
    return tok


def tokenizer_identity(spec: str, vocab_size: int) -> str:
    """What decides the ids a spec gives, for cache keys: a local ``hf:`` folder by its content."""
    if spec == "bpe":
        return f"bpe:{vocab_size}"  # trained on the corpus, which is part of the key already
    if spec.startswith("hf:") and Path(spec[3:]).is_dir():
        digest = hashlib.sha1()
        for path in sorted(p for p in Path(spec[3:]).rglob("*") if p.is_file()):
            digest.update(path.name.encode() + path.read_bytes())
        return f"hf-local:{digest.hexdigest()}"
    return spec


def load_tokenizer(folder: Path) -> Tokenizer:
    """The tokenizer saved in ``folder`` by :meth:`Tokenizer.save`; never trains or downloads."""
    folder = Path(folder)
    if not (folder / SPEC_FILE).is_file():
        raise ConfigError(f"no tokenizer saved in {folder} (missing {SPEC_FILE})")
    info = json.loads((folder / SPEC_FILE).read_text())
    spec = info["spec"]
    if spec == "bpe":
        from tokenizers import Tokenizer as HFTok

        tok: Tokenizer = BPETokenizer(HFTok.from_file(str(folder / "tokenizer.json")))
    elif spec.startswith("hf:"):
        tok = HFTokenizer(spec[3:], source=str(folder / "hf"))
    else:
        tok = build_tokenizer(spec)
    if tok.vocab_size != info.get("vocab_size", tok.vocab_size) or tok.eos_id != info.get("eos_id", tok.eos_id):
        raise ConfigError(f"tokenizer in {folder} has vocab_size {tok.vocab_size} / EOS {tok.eos_id}, but "
                          f"{SPEC_FILE} says {info.get('vocab_size')} / {info.get('eos_id')}")
    return tok
