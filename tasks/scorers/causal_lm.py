"""Causal language models as scorers: token-level NLL of texts, one protocol for every scorer.

Protocol (printed with every result): the text is cut at the generator's first EOS marker (leading ones dropped);
retokenised with the scorer's tokenizer; a context token (BOS, else EOS) is prepended and not
scored; if the sample had an EOS, the scorer's EOS is appended and scored (the first EOS is
kept, anything after it is dropped); sequences longer than the scorer's context are scored in
consecutive windows, each starting with the context token; NLL is computed in float64 and
padding is masked. On a CUDA device the model runs under bf16 autocast (TF32 matmuls); a
transformers scorer may also be loaded in another dtype or over a device map (recorded).
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from pathlib import Path

import numpy as np
import torch

from pathbench.core.devices import inference_autocast, inference_precision
from pathbench.core.errors import ConfigError
from pathbench.engine.run import load_run, require_complete

EOS_MARKER = "<|endoftext|>"


#: weight dtypes a transformers scorer may be loaded in
SCORER_DTYPES = ("float32", "bfloat16", "float16")


def check_placement(dtype: str, device_map: str | None) -> None:
    if dtype not in SCORER_DTYPES:
        raise ConfigError(f"unknown scorer dtype '{dtype}'; known: {', '.join(SCORER_DTYPES)}")
    if device_map not in (None, "auto", "balanced", "sequential"):
        raise ConfigError(f"unknown scorer device_map '{device_map}'; known: auto, balanced, sequential "
                          "(transformers' placements over the visible GPUs)")


class CausalScorer(ABC):
    """Token-level NLL of texts under a causal LM."""

    spec: str
    context_id: int
    eos_id: int
    max_length: int

    @classmethod
    def load(cls, spec: str, device: str = "cpu", dtype: str = "float32",
             device_map: str | None = None) -> "CausalScorer":
        """The scorer a whole ``spec`` names (its kind is the part before ':'), placed on ``device``;
        what :func:`pathbench.tasks.scorers.load_scorer` calls on the kind registered in ``SCORERS``. The
        project's own models (self:, oracle:) take the device only."""
        return cls(spec, device)

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
            with inference_autocast(device):  # bf16 + TF32 on CUDA; the NLL below in float64
                logits = self.logits(ids.to(device), attention.to(device))
            logp = torch.log_softmax(logits.double(), -1)
            nll = -logp[:, :-1].gather(-1, ids[:, 1:].to(device).unsqueeze(-1)).squeeze(-1).cpu()
            for row, (i, piece) in enumerate(chunk):
                out[i].append(nll[row, :len(piece)].numpy())
        return [np.concatenate(parts) for parts in out]

    def truth(self, seq_len: int) -> dict[str, float]:
        """What is known exactly about the data the scored text imitates (an oracle's entropy
        rate), added to the reference row; nothing for a scorer of real text."""
        return {}

    def protocol(self) -> dict:
        return {"scorer": self.spec, "context_token": self.context_id, "eos_token": self.eos_id,
                "max_length": self.max_length, "nll_dtype": "float64",
                **({"precision": inference_precision(self.device)} if inference_precision(self.device) else {}),
                "rules": "cut at first EOS marker, EOS kept and scored; context token prepended, "
                         "not scored; windows of max_length; padding masked"}


class HFScorer(CausalScorer):
    """Any transformers causal LM by hub name or local folder (optionally a GGUF file in it)."""

    def __init__(self, source: str, spec: str | None = None, gguf_file: str | None = None,
                 device: str = "cpu", dtype: str = "float32", device_map: str | None = None) -> None:
        from transformers import AutoModelForCausalLM, AutoTokenizer

        kwargs = {"gguf_file": gguf_file} if gguf_file else {}
        try:
            self.tokenizer = AutoTokenizer.from_pretrained(source, **kwargs)
            # a device map (e.g. "auto": a scorer larger than one GPU, over the node's) places the
            # layers itself; the weights' dtype is theirs as given, the logits' NLL is float64
            self.model = AutoModelForCausalLM.from_pretrained(
                source, dtype=getattr(torch, dtype), **kwargs, **({"device_map": device_map} if device_map else {}))
        except (OSError, ValueError) as err:
            raise ConfigError(f"scorer '{spec or 'hf:' + source}' is not available offline ({type(err).__name__}); "
                              "pass a local folder saved with save_pretrained as --scorer hf:/path/to/model, "
                              "or use --scorer smollm2") from err
        self.spec, self.source, self.dtype, self.device_map = spec or f"hf:{source}", source, dtype, device_map
        if device_map:
            self.device = self.model.device  # where the first layer sits: the inputs go there
        else:
            self.device = torch.device(device)
            self.model.to(self.device)
        self.model.eval()
        # a document separator the LM was pretrained with (gpt2's and SmolLM2's <|endoftext|>)
        # is the right context and end for a document-level score; chat models' BOS/EOS
        # (<|im_start|>, <|im_end|>) would score the text as a chat turn instead
        separator = self.tokenizer.get_vocab().get(EOS_MARKER)
        bos = self.tokenizer.bos_token_id
        self.eos_id = separator if separator is not None else self.tokenizer.eos_token_id
        self.context_id = separator if separator is not None else (bos if bos is not None else self.eos_id)
        self.max_length = int(getattr(self.model.config, "max_position_embeddings", 1024))

    @classmethod
    def load(cls, spec, device="cpu", dtype="float32", device_map=None):
        return cls(spec.partition(":")[2], device=device, dtype=dtype, device_map=device_map)

    def encode(self, text):
        return self.tokenizer.encode(text, add_special_tokens=False)

    def logits(self, ids, attention):
        return self.model(input_ids=ids, attention_mask=attention).logits

    def protocol(self) -> dict:
        return {**super().protocol(), **({"dtype": self.dtype} if self.dtype != "float32" else {}),
                **({"device_map": self.device_map} if self.device_map else {})}


class SelfScorer(CausalScorer):
    """The project's autoregressive baseline, loaded from a run folder."""

    def __init__(self, run_dir: str, device: str = "cpu") -> None:
        method, model, tokenizer, meta, step, _ = require_complete(load_run(Path(run_dir), device),
                                                                   "scorer run")
        if not method.causal:
            raise ConfigError(f"scorer 'self:{run_dir}' needs an autoregressive run (method 'ar'), "
                              f"got '{meta['method']}'")
        self.spec, self.model, self.tokenizer, self.step = f"self:{run_dir}", model, tokenizer, step
        self.device = torch.device(device)
        self.eos_id = self.context_id = tokenizer.eos_id
        self.max_length = model.config.max_seq_len

    @classmethod
    def load(cls, spec, device="cpu", dtype="float32", device_map=None):
        return cls(spec.partition(":")[2], device)

    def encode(self, text):
        return self.tokenizer.encode(text)

    def logits(self, ids, attention):
        return self.model(ids)  # causal: padding on the right never reaches scored positions

    def protocol(self) -> dict:
        return {**super().protocol(), "checkpoint_step": self.step}
