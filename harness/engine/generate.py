"""Conditional generation for every method: given text, free slots, decoded answers.

A request is a list of parts: a ``str`` is given text (tokenised and clamped), an ``int`` is
a number of free token positions the method fills. Prompt → response is ``[prompt, n]``;
infilling is ``[prefix, n, suffix]``. Requests are laid out left-aligned in ``seq_len``
positions; positions after the last part are free too (the method writes there, nobody reads
it), so every method sees the same layout.
"""

from __future__ import annotations

from collections import defaultdict
from dataclasses import dataclass

import torch
from torch import Tensor

from pathbench.core.devices import inference_autocast
from pathbench.core.errors import ConfigError
from pathbench.core.rng import RowGenerators, check_seeding, generator_for, row_seed
from pathbench.data.tokenizer import Tokenizer
from pathbench.engine.contract import check_sample
from pathbench.engine.generation_cost import timed_sample
from pathbench.engine.memory import fit_batch, memory_budget
from pathbench.engine.methods import Method
from pathbench.engine.sampling import SamplerConfig
from pathbench.engine.step_progress import StepProgress, denoiser_progress

Part = str | int


@dataclass
class Layout:
    ids: Tensor                     # (S,) given token ids (0 where free)
    given: Tensor                   # (S,) bool
    slots: list[tuple[int, int]]    # [start, end) of each free part, in order


def layout(tokenizer: Tokenizer, parts: list[Part], seq_len: int) -> Layout:
    """Place the parts of one request on ``seq_len`` positions."""
    ids = torch.zeros(seq_len, dtype=torch.long)
    given = torch.zeros(seq_len, dtype=torch.bool)
    slots, pos = [], 0
    for part in parts:
        if isinstance(part, str):
            tokens = tokenizer.encode(part)
            end = pos + len(tokens)
            if end > seq_len:
                raise ConfigError(f"request needs {end} positions, more than seq_len = {seq_len}; "
                                  "shorten the prompt or raise seq_len")
            ids[pos:end] = torch.tensor(tokens, dtype=torch.long)
            given[pos:end] = True
        else:
            if part < 1:
                raise ConfigError(f"a free slot must have >= 1 position, got {part}")
            end = pos + part
            if end > seq_len:
                raise ConfigError(f"request needs {end} positions, more than seq_len = {seq_len}")
            slots.append((pos, end))
        pos = end
    return Layout(ids, given, slots)


def decode_slot(tokenizer: Tokenizer, ids: list[int], stop_at_eos: bool = True) -> str:
    """Text of one free slot; generation stops at the first EOS (it ends a document)."""
    if stop_at_eos and tokenizer.eos_id in ids:
        ids = ids[: ids.index(tokenizer.eos_id)]
    return tokenizer.decode(ids)


@torch.no_grad()
def generate(method: Method, model: torch.nn.Module, tokenizer: Tokenizer, requests: list[list[Part]],
             sampler: SamplerConfig, *, seq_len: int, candidates: int = 1, batch_size: int = 16,
             seed: int = 0, seeding: str = "batch", memory_gb: float | str | None = None,
             request_seeds: list[int] | None = None) -> list[list[list[str]]]:
    """Fill every request ``candidates`` times. Returns [request][candidate][slot] -> text.

    ``seeding="batch"``: candidate c of a batch uses the generator seeded with (seed, c, its
    first request), so adding requests never changes the candidates of earlier batches;
    ``"row"``: candidate c of request r has its own stream (seed, c, r), so nothing depends on
    the batch; ``request_seeds``: row streams seeded from each request's own seed (an lm-eval
    request's, from its content) instead of its position. The batch is cut to fit ``memory_gb``
    (:mod:`pathbench.engine.memory`).
    """
    if candidates < 1:
        raise ConfigError(f"candidates = {candidates} must be >= 1")
    check_seeding(seeding)
    if request_seeds is not None and len(request_seeds) != len(requests):
        raise ConfigError(f"{len(request_seeds)} request seeds for {len(requests)} requests")
    device = next(model.parameters()).device
    batch_size = fit_batch(method, model, seq_len, batch_size, memory_budget(memory_gb, device), seeding)
    layouts = [layout(tokenizer, parts, seq_len) for parts in requests]
    out: list[list[list[str]]] = [[] for _ in requests]
    batches = _batches(layouts, batch_size, by_prefix=method.requires_prefix)
    with denoiser_progress(model, f"generate {sampler.name}", len(batches) * candidates, sampler.nfe) as progress:
        for index in batches:
            _fill_batch(method, model, tokenizer, layouts, index, sampler, seq_len, candidates, seed, seeding,
                        request_seeds, device, out, progress)
    return out


def _fill_batch(method: Method, model: torch.nn.Module, tokenizer: Tokenizer, layouts: list[Layout],
                index: list[int], sampler: SamplerConfig, seq_len: int, candidates: int, seed: int, seeding: str,
                request_seeds: list[int] | None, device, out: list[list[list[str]]], progress: StepProgress) -> None:
    """Every candidate of the requests ``index`` (one batch of :func:`generate`), appended to ``out``."""
    ids = torch.stack([layouts[i].ids for i in index]).to(device)
    given = torch.stack([layouts[i].given for i in index]).to(device)
    for c in range(candidates):
        if request_seeds is not None:
            generator = RowGenerators.seeded([row_seed(request_seeds[i], 0, c) for i in index], device)
        else:
            generator = generator_for(seeding, seed, index, c, device)
        with inference_autocast(device), timed_sample(model, len(index), seq_len, given):
            sampled = method.sample(model, len(index), seq_len, sampler, given_ids=ids, given_mask=given,
                                    generator=generator)
        sampled = check_sample(type(method).__name__, sampled, len(index), seq_len, tokenizer.vocab_size,
                               given_ids=ids, given_mask=given).cpu()
        for row, i in enumerate(index):
            tokens = sampled[row].tolist()
            out[i].append([decode_slot(tokenizer, tokens[a:b]) for a, b in layouts[i].slots])
        progress.batch_done()


def _batches(layouts: list[Layout], batch_size: int, by_prefix: bool) -> list[list[int]]:
    """Request indices in batches; an autoregressive batch must share its prefix length."""
    groups: dict[int, list[int]] = defaultdict(list)
    for i, lay in enumerate(layouts):
        groups[int(lay.given.long().cumprod(0).sum()) if by_prefix else 0].append(i)
    return [idx[j:j + batch_size] for key in sorted(groups) for idx in [groups[key]]
            for j in range(0, len(idx), batch_size)]
