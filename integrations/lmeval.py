"""pathbench runs as an lm-evaluation-harness model (``--model pathbench``), so lm-eval's
generative tasks run on every method.

How lm-eval finds it: pyproject.toml declares the entry point ``lm_eval.models: pathbench =
pathbench.integrations.lmeval:PathbenchLM``, which lm-eval releases with plugin discovery (upstream #4013, after
0.4.13) resolve lazily, so ``lm_eval run --model pathbench`` works unchanged there. lm-eval
0.4.13 scans no entry points: ``pathbench lm-eval ...`` is lm-eval's own CLI with this module
imported first (every lm-eval flag, its results_*.json / samples_*.jsonl layout).

``generate_until``: each request's ``max_gen_toks`` free positions follow its prompt. They are
capped only by the run's sequence length (at most seq_len - 1 after a prompt); a prompt that
does not fit before them keeps its last tokens, as lm-eval's HF model does (it left-truncates
the context to max_length - max_gen_toks), and a warning says how many prompts were cut.
The text is cut at the first ``until`` string. Requests are sampled ``batch_size`` at a time,
each from its own random stream seeded from ``seed`` and the request's content (plus its
repeat number; :class:`pathbench.core.rng.RowGenerators`), so an answer never depends on
lm-eval's batch size, request order or ``--limit``.
Log-likelihood requests need an exact likelihood, which flow and diffusion samplers do not
give: they fail with a message saying so.

Sampler keys not given (``top_k``, ``final``, ``final_at``) come from the run's generation
protocol, or from ``protocol=plain|kl-flow``; ``top_k=none`` asks for the full vocabulary.
"""

from __future__ import annotations

import dataclasses
import hashlib
import inspect
import json
import logging
from collections import Counter
from pathlib import Path
from typing import Any

import lm_eval.models  # noqa: F401  (lm-eval's own backends: its get_model fills only an empty registry)
import torch
from lm_eval.api.model import LM
from lm_eval.api.registry import register_model
from tqdm import tqdm

from pathbench.core.devices import resolve_device
from pathbench.core.errors import ConfigError
from pathbench.core.registry import METHODS
from pathbench.engine.checkpoint import is_export, read_export, read_meta
from pathbench.engine.generate import generate
from pathbench.engine.plugins import load_all, load_plugins
from pathbench.engine.protocol import sampling_setup
from pathbench.engine.run import load_run

log = logging.getLogger("pathbench.lmeval")

DEFAULT_MAX_GEN_TOKS = 256  # lm-eval's HF model default, for a request that names none


def _batch_size(value: int | str | None) -> int:
    """lm-eval's ``--batch_size``: an integer, or ``auto``/``auto:N`` (16 requests at once; the
    sampler's memory budget cuts the batch where it must)."""
    if value is None or str(value).startswith("auto"):
        return 16
    try:
        size = int(value)
    except ValueError:
        size = 0
    if size < 1:
        raise ConfigError(f"batch_size = {value!r} must be an integer >= 1 or 'auto'")
    return size


def request_seed(seed: int, args: tuple, repeat: int) -> int:
    """A seed from the base seed, the request's arguments (context, generation kwargs) and its
    repeat number: the same request gets the same answer in any batch or order, and lm-eval's
    ``repeats`` copies of it get distinct draws. 40 bits: generate() scales a seed by ~2^20
    into a generator seed, which must stay below 2^63."""
    text = json.dumps([seed, list(args), repeat], sort_keys=True, default=str)
    return int.from_bytes(hashlib.sha256(text.encode()).digest()[:5], "big")


def pick_device(name: str | None) -> str:
    """lm-eval passes ``--device cuda:0`` unless told otherwise: on a machine without CUDA that
    falls back to cpu with a warning instead of failing; None means what exists."""
    if name is not None and str(name).startswith("cuda") and not torch.cuda.is_available():
        log.warning("device %s asked for but no CUDA device is available: using cpu", name)
        return "cpu"
    return resolve_device(None if name is None else str(name))


@register_model("pathbench")
class PathbenchLM(LM):
    def __init__(self, ckpt: str | None = None, pretrained: str | None = None, sampler: str | None = None,
                 nfe: int = 64, t_star: float = 0.28, top_k: int | str | None = None, top_p: float | None = None,
                 temperature: float = 1.0, grid: str | None = None, protocol: str | None = None,
                 final: str | None = None, final_at: str | None = None,
                 max_gen_toks: int = DEFAULT_MAX_GEN_TOKS, seed: int = 0, device: str | None = None,
                 batch_size: int | str | None = None, max_batch_size: int | None = None,
                 trust_remote_code: bool | None = None, **unknown) -> None:
        # batch_size / max_batch_size / trust_remote_code: lm-eval always passes the first two
        # (and the third with --trust_remote_code); answers do not depend on them (see above):
        # batch_size is how many requests are sampled at once ("auto": 16, cut to the memory budget)
        super().__init__()
        self.batch_size = _batch_size(batch_size)
        if unknown:
            raise ConfigError(f"unknown pathbench model arg(s) {', '.join(sorted(unknown))}; "
                              f"valid: {', '.join(model_args())}")
        # pretrained: lm-eval's usual name for the model's location; it also names the folder
        # under --output_path that lm-eval writes the results into
        if ckpt is not None and pretrained is not None and str(ckpt) != str(pretrained):
            raise ConfigError(f"model args ckpt={ckpt} and pretrained={pretrained} name different runs; give one")
        ckpt = ckpt if ckpt is not None else pretrained
        if ckpt is None:
            raise ConfigError("pathbench model args need ckpt=<run folder> (or pretrained=<run folder>)")
        load_all()  # the built-in paths, baselines and tasks, and entry-point plugins
        self._device = pick_device(device)
        explicit = sampler_keys(sampler, nfe, t_star, top_k, top_p, temperature, grid, final, final_at)
        method, self.model, self.tok, self.meta, _, _ = load_run(Path(str(ckpt)), self._device)
        self.method, self.sampler, self.protocol = sampling_setup(method, self.meta, protocol, explicit)
        self.seq_len = int(self.meta["data"]["seq_len"])
        self.default_max_gen_toks, self.seed = _number("max_gen_toks", max_gen_toks, int), _number("seed", seed, int)

    def fit(self, prompt: str, max_gen_toks: int) -> tuple[list[str | int], bool, bool]:
        """The request's parts ``[prompt, n]`` (``[n]`` for an empty prompt) with n =
        max_gen_toks capped by the sequence length; and whether n was capped and the prompt cut."""
        ids = self.tok.encode(prompt)
        new = max(1, min(max_gen_toks, self.seq_len - (1 if ids else 0)))
        kept = ids[len(ids) - (self.seq_len - new):] if len(ids) > self.seq_len - new else ids
        parts: list[str | int] = [self.tok.decode(kept), new] if kept else [new]
        return parts, new < max_gen_toks, len(kept) < len(ids)

    def generate_until(self, requests, disable_tqdm: bool = False) -> list[str]:
        repeats: Counter = Counter()
        layouts, seeds, stops, capped, cut = [], [], [], 0, 0
        for request in requests:
            prompt, kwargs = request.args
            until = kwargs.get("until") or []
            stops.append([until] if isinstance(until, str) else list(until))
            parts, was_capped, was_cut = self.fit(prompt, int(kwargs.get("max_gen_toks", self.default_max_gen_toks)))
            capped, cut = capped + was_capped, cut + was_cut
            if self.method.requires_prefix and isinstance(parts[0], int):
                raise ConfigError("the autoregressive baseline cannot answer an empty prompt")
            key = json.dumps(list(request.args), sort_keys=True, default=str)
            seeds.append(request_seed(self.seed, request.args, repeats[key]))
            repeats[key] += 1
            layouts.append(parts)
        answers = []
        for first in tqdm(range(0, len(layouts), self.batch_size), desc="pathbench generate_until",
                          disable=disable_tqdm):
            # each request draws from its own stream (its seed): batching changes no answer
            block = slice(first, first + self.batch_size)
            texts = generate(self.method, self.model, self.tok, layouts[block], self.sampler, seq_len=self.seq_len,
                             batch_size=self.batch_size, request_seeds=seeds[block])
            for [[text]], until in zip(texts, stops[block]):
                for stop in until:
                    text = text.split(stop)[0] if stop else text
                answers.append(text)
        if capped:
            log.warning("%d of %d requests asked for more new tokens than seq_len %d allows after a prompt: "
                        "generated %d at most", capped, len(requests), self.seq_len, self.seq_len - 1)
        if cut:
            log.warning("%d of %d prompts did not fit in seq_len %d before their max_gen_toks: kept their "
                        "last tokens (as lm-eval's HF model does)", cut, len(requests), self.seq_len)
        return answers

    def loglikelihood(self, requests, disable_tqdm: bool = False):
        raise ConfigError("pathbench models answer generative tasks (output_type: generate_until) "
                          "only: flow and diffusion samplers give no exact log-likelihood")

    def loglikelihood_rolling(self, requests, disable_tqdm: bool = False):
        return self.loglikelihood(requests)

    def get_model_info(self) -> dict:
        """What lm-eval records in its results' ``config``: the run and how it was sampled."""
        return {"pathbench_method": self.meta["method"], "pathbench_sampler": dataclasses.asdict(self.sampler),
                "pathbench_generation_protocol": self.protocol.record(), "pathbench_seq_len": self.seq_len}


def _number(key: str, value: Any, kind: type) -> Any:
    """``value`` as an int or float, or one line naming the model arg."""
    try:
        if isinstance(value, bool) or (kind is int and not float(value).is_integer()):
            raise ValueError
        return kind(float(value)) if kind is int else kind(value)
    except (TypeError, ValueError):
        raise ConfigError(f"model arg {key}={value!r} must be {'an integer' if kind is int else 'a number'}") from None


def sampler_keys(sampler, nfe, t_star, top_k, top_p, temperature, grid, final, final_at) -> dict[str, Any]:
    """The explicit sampler keys of the model args, their numbers checked."""
    explicit = {"name": sampler, "nfe": _number("nfe", nfe, int), "t_star": _number("t_star", t_star, float),
                "temperature": _number("temperature", temperature, float),
                "top_p": None if top_p is None else _number("top_p", top_p, float), "grid": grid}
    if top_k is not None:  # not given: the protocol's; "none": the full vocabulary
        explicit["top_k"] = None if str(top_k).lower() in ("none", "all") else _number("top_k", top_k, int)
    explicit.update({k: v for k, v in (("final", final), ("final_at", final_at)) if v is not None})
    return explicit


def check_model_args(args: dict[str, Any]) -> None:
    """Everything about the model args that can be checked before lm-eval starts, without loading
    the model: the keys, the run folder, the numbers, and the sampler and protocol against the
    run's method (built from its meta.json, no weights). One ConfigError line for the first fault."""
    valid = model_args()
    unknown = sorted(set(args) - set(valid))
    if unknown:
        raise ConfigError(f"unknown pathbench model arg(s) {', '.join(unknown)}; valid: {', '.join(valid)}")
    ckpt, pretrained = args.get("ckpt"), args.get("pretrained")
    if ckpt is not None and pretrained is not None and str(ckpt) != str(pretrained):
        raise ConfigError(f"model args ckpt={ckpt} and pretrained={pretrained} name different runs; give one")
    folder = ckpt if ckpt is not None else pretrained
    if folder is None:
        raise ConfigError("pathbench model args need ckpt=<run folder> (or pretrained=<run folder>)")
    folder = Path(str(folder))
    if not folder.is_dir():
        raise ConfigError(f"checkpoint {folder} does not exist (ckpt= or pretrained= names a run folder)")
    meta = read_export(folder)[0] if is_export(folder) else read_meta(folder)
    defaults = {name: p.default for name, p in inspect.signature(PathbenchLM.__init__).parameters.items()}
    given = {**defaults, **args}
    explicit = sampler_keys(*(given[k] for k in ("sampler", "nfe", "t_star", "top_k", "top_p", "temperature", "grid",
                                                 "final", "final_at")))
    for key in ("max_gen_toks", "seed"):
        _number(key, given[key], int)
    _batch_size(given["batch_size"])
    load_all()
    load_plugins(meta.get("plugins", ()), needed_by=f"run {folder}")
    sampling_setup(METHODS.build(meta["method"], **meta["method_options"]), meta, given["protocol"], explicit)


def model_args() -> list[str]:
    """The model args PathbenchLM takes (``--model_args key=value,...``)."""
    return [name for name, p in inspect.signature(PathbenchLM.__init__).parameters.items()
            if name != "self" and p.kind is p.POSITIONAL_OR_KEYWORD]
