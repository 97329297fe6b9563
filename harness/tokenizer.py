"""Tokenizers behind one small interface, saved beside the data and every run.

Specs: ``bpe`` (byte-level BPE trained with HF ``tokenizers`` on the training split),
``hf:<name or local path>`` (``transformers.AutoTokenizer``), ``gpt2`` (tiktoken's
``r50k_base``; offline it needs the BPE file in ``$TIKTOKEN_CACHE_DIR``).
"""

from __future__ import annotations

import importlib.util
import json
import os
import shutil
import tempfile
from collections.abc import Iterable
from pathlib import Path

from harness.errors import ConfigError

EOS = "<|endoftext|>"
SPEC_FILE = "pathbench_tokenizer.json"
SPECS = "bpe, hf:<name or path>, gpt2"
GPT2_CACHE_NAME = "0ea1e91bbb3a60f729a8dc8f777fd2fc07cd8df4"  # tiktoken's cache key for r50k_base


class Tokenizer:
    """text <-> ids with an end-of-text id; subclasses wrap one library each."""

    spec: str
    vocab_size: int
    eos_id: int

    def encode(self, text: str) -> list[int]:
        raise NotImplementedError

    def encode_batch(self, texts: list[str]) -> list[list[int]]:
        return [self.encode(text) for text in texts]

    def decode(self, ids: list[int]) -> str:
        raise NotImplementedError

    def save(self, folder: Path) -> None:
        folder.mkdir(parents=True, exist_ok=True)
        (folder / SPEC_FILE).write_text(json.dumps({"spec": self.spec, "vocab_size": self.vocab_size}))


class BPETokenizer(Tokenizer):
    def __init__(self, tokenizer) -> None:  # a tokenizers.Tokenizer
        self._tok, self.spec = tokenizer, "bpe"
        self.vocab_size = tokenizer.get_vocab_size()
        self.eos_id = tokenizer.token_to_id(EOS)

    @classmethod
    def train(cls, texts: Iterable[str], vocab_size: int) -> BPETokenizer:
        from tokenizers import Tokenizer as HFTok
        from tokenizers import decoders, models, pre_tokenizers, trainers

        tok = HFTok(models.BPE())
        tok.pre_tokenizer = pre_tokenizers.ByteLevel(add_prefix_space=False)
        tok.decoder = decoders.ByteLevel()
        trainer = trainers.BpeTrainer(vocab_size=vocab_size, special_tokens=[EOS], show_progress=False,
                                      initial_alphabet=pre_tokenizers.ByteLevel.alphabet())
        tok.train_from_iterator(texts, trainer)
        return cls(tok)

    def encode(self, text):
        return self._tok.encode(text).ids

    def encode_batch(self, texts):
        return [e.ids for e in self._tok.encode_batch(texts)]

    def decode(self, ids):
        return self._tok.decode(list(ids), skip_special_tokens=False)

    def save(self, folder):
        super().save(folder)
        self._tok.save(str(folder / "tokenizer.json"))


class HFTokenizer(Tokenizer):
    def __init__(self, name: str, source: str | None = None) -> None:
        from transformers import AutoTokenizer

        try:
            self._tok = AutoTokenizer.from_pretrained(source or name)
        except (OSError, ValueError) as err:
            raise ConfigError(f"tokenizer 'hf:{name}' cannot be loaded ({type(err).__name__}); give a "
                              "local folder saved with save_pretrained, or run where the hub is reachable") from err
        self.spec = f"hf:{name}"
        self.vocab_size = len(self._tok)
        if self._tok.eos_token_id is None:
            raise ConfigError(f"tokenizer 'hf:{name}' has no EOS token; pathbench separates documents with it")
        self.eos_id = self._tok.eos_token_id

    def encode(self, text):
        return self._tok.encode(text, add_special_tokens=False)

    def decode(self, ids):
        return self._tok.decode(list(ids))

    def save(self, folder):
        super().save(folder)
        self._tok.save_pretrained(str(folder / "hf"))


class GPT2Tokenizer(Tokenizer):
    def __init__(self) -> None:
        ensure_gpt2_bpe_file()
        import tiktoken

        self._enc = tiktoken.get_encoding("r50k_base")
        self.spec, self.vocab_size, self.eos_id = "gpt2", self._enc.n_vocab, self._enc.eot_token

    def encode(self, text):
        return self._enc.encode(text, allowed_special={EOS})

    def decode(self, ids):
        return self._enc.decode(list(ids))


def ensure_gpt2_bpe_file() -> None:
    """Make tiktoken's r50k_base work offline: find the file, or copy it from openai-whisper."""
    cache = Path(os.environ.get("TIKTOKEN_CACHE_DIR") or Path(tempfile.gettempdir()) / "data-gym-cache")
    target = cache / GPT2_CACHE_NAME
    if target.exists():
        os.environ["TIKTOKEN_CACHE_DIR"] = str(cache)
        return
    spec = importlib.util.find_spec("whisper")
    asset = Path(spec.origin).parent / "assets" / "gpt2.tiktoken" if spec and spec.origin else None
    if asset is None or not asset.exists():
        raise ConfigError(
            f"tokenizer 'gpt2' needs tiktoken's r50k_base file at {target}; offline, run "
            "`pip install --no-deps openai-whisper==20250625` (it ships whisper/assets/gpt2.tiktoken) "
            f"or copy that file to {target}")
    cache.mkdir(parents=True, exist_ok=True)
    shutil.copyfile(asset, target)
    os.environ["TIKTOKEN_CACHE_DIR"] = str(cache)


def build_tokenizer(spec: str, texts: Iterable[str] = (), vocab_size: int = 8192) -> Tokenizer:
    """A tokenizer from its spec; ``bpe`` is trained on ``texts``."""
    if spec == "bpe":
        if vocab_size < 257:
            raise ConfigError(f"vocab_size = {vocab_size} must be >= 257 for byte-level BPE")
        return BPETokenizer.train(texts, vocab_size)
    if spec.startswith("hf:") and len(spec) > 3:
        return HFTokenizer(spec[3:])
    if spec == "gpt2":
        return GPT2Tokenizer()
    raise ConfigError(f"unknown tokenizer '{spec}'; known: {SPECS}")


def load_tokenizer(folder: Path) -> Tokenizer:
    """The tokenizer saved in ``folder`` by :meth:`Tokenizer.save`."""
    spec_path = Path(folder) / SPEC_FILE
    if not spec_path.exists():
        raise ConfigError(f"no tokenizer saved in {folder} (missing {SPEC_FILE})")
    spec = json.loads(spec_path.read_text())["spec"]
    if spec == "bpe":
        from tokenizers import Tokenizer as HFTok

        return BPETokenizer(HFTok.from_file(str(Path(folder) / "tokenizer.json")))
    if spec.startswith("hf:"):
        return HFTokenizer(spec[3:], source=str(Path(folder) / "hf"))
    return build_tokenizer(spec)
