"""Unconditional generation: generative perplexity with entropy beside it, always.

* gen-PPL (token-pooled) = exp(Σ_tokens NLL / Σ_tokens) over all samples under a scorer
  (see pathbench.tasks.scorers for the retokenisation protocol); the per-sample mean
  mean_i exp(mean NLL_i) is reported too, with the number of scored tokens.
* entropy = per-sample unigram entropy of token ids, -Σ_v p_v ln p_v in nats with p the
  sample's token frequencies, averaged over samples; computed on the scorer's tokens (one
  tokenisation for every system, so samples from other projects compare) and, when the
  sample file carries them, on the generator's own ids too.
* reference row: real held-out text cut to the same generator length, scored the same way —
  the yardstick for both numbers (low PPL with entropy far below it means repetition).
* uncertainty: per-sample NLL sums, scored-token counts and entropies are stored under
  ``per_sample`` so any statistic can be recomputed, and gen-PPL and entropy carry a seeded
  bootstrap 95 % interval over samples (``pathbench.core.stats``).
"""

from __future__ import annotations

import copy
import json
import math
from collections import OrderedDict
from dataclasses import asdict, replace
from pathlib import Path
from typing import Any

import numpy as np

from pathbench.core import stats
from pathbench.core.errors import ConfigError
from pathbench.core.io import atomic_write_json
from pathbench.core.registry import TASKS
from pathbench.engine.checkpoint import read_meta
from pathbench.engine.generation_cost import GenerationCost, add_cost, measure_generation
from pathbench.engine.run import LoadedRun, draw_samples, environment, write_samples
from pathbench.tasks.adapters.base import EvalSettings, Task
from pathbench.tasks.adapters.reference import reference_row
from pathbench.tasks.scorers import check_spec, load_scorer, scorer_for_data
from pathbench.tasks.scorers.causal_lm import CausalScorer, check_placement

PROTOCOL = ("gen-PPL: exp of token-pooled float64 NLL under the scorer (per-sample mean also given); "
            "entropy: per-sample unigram entropy of token ids in nats, averaged; reference row: real "
            "held-out text of the same length, same scorer")


def unigram_entropy(ids: list[int]) -> float:
    """-Σ p ln p of the token frequencies of one sample, in nats (0 for a constant sample)."""
    if not ids:
        raise ConfigError("an empty sample has no entropy")
    _, counts = np.unique(np.asarray(ids), return_counts=True)
    p = counts / counts.sum()
    return float(-(p * np.log(p)).sum())


def generative_perplexity(nlls: list[np.ndarray]) -> dict[str, float]:
    """Token-pooled and per-sample-mean perplexity from per-token NLLs (float64)."""
    if not nlls:
        raise ConfigError("no samples to score")
    total = sum(float(n.sum()) for n in nlls)
    count = sum(len(n) for n in nlls)
    return {"gen_ppl": math.exp(total / count),
            "gen_ppl_sample_mean": float(np.mean([math.exp(float(n.mean())) for n in nlls])),
            "nll_per_token": total / count, "scored_tokens": count, "samples": len(nlls)}


def score_texts(texts: list[str], scorer: CausalScorer, *, ids: list[list[int]] | None = None,
                vocab_size: int | None = None, batch_size: int = 8) -> dict[str, float]:
    """Gen-PPL and entropy of ``texts`` (and of the generator's ``ids`` when given)."""
    if not texts:
        raise ConfigError("no samples to score")
    if ids is not None:
        if len(ids) != len(texts):
            raise ConfigError(f"{len(ids)} id lists for {len(texts)} texts")
        for i, row in enumerate(ids):
            if vocab_size is not None and any(t >= vocab_size or t < 0 for t in row):
                bad = next(t for t in row if t >= vocab_size or t < 0)
                raise ConfigError(f"sample {i} has token id {bad}, outside the vocabulary of {vocab_size}")
    token_lists = [scorer.tokens_for(t) for t in texts]  # one retokenisation for both numbers
    for i, tokens in enumerate(token_lists):
        # a whitespace-only sample (e.g. 64 newlines from a collapsed sampler) is a real, bad
        # output and is scored; only a sample with no token at all has no perplexity
        if not tokens:
            raise ConfigError(f"sample {i} is empty; an empty sample has no perplexity")
    nlls = scorer.nll_of_tokens(token_lists, batch_size=batch_size)
    result = generative_perplexity(nlls)
    entropies = [unigram_entropy(tokens) for tokens in token_lists]
    result["entropy"] = float(np.mean(entropies))
    per_sample = {"nll_sum": [float(n.sum()) for n in nlls], "tokens": [len(n) for n in nlls],
                  "entropy": entropies}
    if len(texts) >= 2:  # one sample has no spread to resample
        result["gen_ppl_ci95"] = stats.pooled_ppl_interval(per_sample["nll_sum"], per_sample["tokens"])
        result["entropy_ci95"] = stats.mean_interval(entropies)
    result["interval"] = stats.describe() if len(texts) >= 2 else "none: a single sample"
    if ids is not None:
        result["entropy_generator_ids"] = float(np.mean([unigram_entropy(row) for row in ids]))
    result["per_sample"] = per_sample  # raw data last: what every statistic is recomputed from
    return result


def read_samples(path: Path) -> tuple[list[str], list[list[int]] | None]:
    """Texts (and ids when every sample has them) from a JSONL sample file (``text`` per line),
    a ``.json`` array (of strings, or of objects with ``text``), or a plain text file with one
    sample per line."""
    if not path.exists():
        raise ConfigError(f"sample file {path} does not exist")
    if path.suffix == ".json":
        return _json_array_samples(path)
    texts, ids = [], []
    for number, line in enumerate(path.read_text(encoding="utf-8").splitlines(), 1):
        if not line.strip():
            continue
        if path.suffix == ".jsonl":
            try:
                record = json.loads(line)
            except ValueError as err:
                raise ConfigError(f"{path}:{number} is not JSON: {err}") from err
            if "text" not in record:
                raise ConfigError(f"{path}:{number} has no 'text' field")
            texts.append(record["text"])
            ids.append(record.get("ids"))
        else:
            texts.append(line)
    if not texts:
        raise ConfigError(f"sample file {path} holds no sample")
    return texts, (ids if ids and all(row is not None for row in ids) else None)


def _json_array_samples(path: Path) -> tuple[list[str], list[list[int]] | None]:
    """A ``.json`` sample file: one array, each item a string or an object with ``text``
    (and optionally ``ids``), as other systems dump their samples."""
    try:
        items = json.loads(path.read_text(encoding="utf-8"))
    except ValueError as err:
        raise ConfigError(f"sample file {path} is not JSON: {err}") from err
    if not isinstance(items, list):
        raise ConfigError(f"sample file {path} holds a JSON {type(items).__name__}; a .json sample file is an "
                          "array of strings or of objects with a 'text' field (or use .jsonl, one per line)")
    records = [{"text": item} if isinstance(item, str) else item for item in items]
    for index, record in enumerate(records):
        if not isinstance(record, dict) or not isinstance(record.get("text"), str):
            raise ConfigError(f"{path}[{index}] is {json.dumps(items[index])[:80]}, not a string or an object "
                              "with a 'text' string")
    if not records:
        raise ConfigError(f"sample file {path} holds no sample (an empty JSON array)")
    ids = [record.get("ids") for record in records]
    return [r["text"] for r in records], (ids if all(row is not None for row in ids) else None)


def reference_texts(sequences: np.ndarray, tokenizer, n: int, length: int) -> list[str]:
    """The first ``n`` held-out sequences cut to ``length`` generator tokens, decoded."""
    if len(sequences) < n:
        raise ConfigError(f"the held-out split has {len(sequences)} sequences, fewer than n = {n}")
    return [tokenizer.decode([int(t) for t in sequences[i][:length]]) for i in range(n)]


# Unconditional samples are a deterministic function of (checkpoint, sampler, n, seed, batch):
# runs that differ only in their scorer reuse one draw instead of sampling twice. Small: a
# sweep job evaluates its runs in grid order, so the scorers of one sampler are neighbours.
_samples_cache: OrderedDict[str, tuple[list[dict[str, Any]], GenerationCost]] = OrderedDict()
_SAMPLES_CACHE_SIZE = 4


@TASKS.register("unconditional")
class Unconditional(Task):
    """Unconditional samples: gen-PPL under a scorer, entropy, and a real-text reference row."""

    takes_scorers = True

    def __init__(self, scorer: str = "smollm2", batch_size: int = 8, device: str = "cpu",
                 scorer_dtype: str = "float32", scorer_device_map: str | None = None) -> None:
        check_placement(scorer_dtype, scorer_device_map)
        # a bad scorer name is one line when the task is built, before a checkpoint is read
        self.scorer_spec, self.batch_size, self.device = check_spec(scorer), batch_size, device
        #: how a transformers scorer is loaded: its weights' dtype, a device map over the GPUs
        self.placement = {"dtype": scorer_dtype, "device_map": scorer_device_map}
        #: the scorer as given: a bound task's ``scorer_spec`` may say more (oracle -> that run's HMM)
        self.given_scorer = scorer
        #: the data spec this task is bound to (:meth:`bind`); None: not bound
        self.data: dict | None = None

    def scorer(self) -> CausalScorer:
        """The scorer, loaded once per process on this task's device and placement."""
        return load_scorer(self.scorer_spec, self.device, **self.placement)

    def bind(self, data: dict) -> Unconditional:
        """A new task with its scorer bound to a run's data (``oracle``: that run's HMM) and loaded,
        so that a scorer that cannot load or cannot score this data fails before anything is
        sampled. This task is left as it is."""
        bound = Unconditional(scorer_for_data(self.scorer_spec, data), self.batch_size, self.device,
                              self.placement["dtype"], self.placement["device_map"])
        bound.given_scorer, bound.data = self.given_scorer, copy.deepcopy(data)  # its own copy
        bound.scorer()
        return bound

    def evaluate(self, run: LoadedRun, settings: EvalSettings, out: Path) -> dict[str, Any]:
        """``settings.n`` samples (samples.jsonl), their scores, and the real-text row (with what
        is known exactly about the data, for an oracle corpus: its entropy rate). Called on the
        task bound to the run's data (:meth:`bind`)."""
        if self.data != run.meta["data"]:
            raise ConfigError("the unconditional task is not bound to this run's data: evaluate the task that "
                              "task.bind(run.meta['data']) returns")
        records = cached_samples(run, settings)
        write_samples(records, out / "samples.jsonl")
        metrics = self.score_samples([r["text"] for r in records], [r["ids"] for r in records],
                                     run.tokenizer.vocab_size)
        return {"metrics": metrics, "reference": self.reference(run.meta["data"], settings.n, settings.reference_store),
                **({"scorer": self.scorer_spec} if self.scorer_spec != self.given_scorer else {})}

    def score_samples(self, texts: list[str], ids: list[list[int]] | None = None,
                      vocab_size: int | None = None) -> dict[str, float]:
        return score_texts(texts, self.scorer(), ids=ids,
                           vocab_size=vocab_size, batch_size=self.batch_size)

    def reference(self, data_cfg: dict, n: int, store: Path | None = None) -> dict[str, Any]:
        """The real-text row of a run's data under this scorer, with what the scorer knows exactly
        about that data (an oracle's entropy rate)."""
        row = reference_row(data_cfg, n, self, store)
        row.update(self.scorer().truth(data_cfg["seq_len"]))
        return row

    def protocol(self) -> dict:
        return {"metrics": PROTOCOL, **self.scorer().protocol()}


def cached_samples(run: LoadedRun, settings: EvalSettings) -> list[dict[str, Any]]:
    """The run's samples under ``settings`` (drawn once per process for every scorer)."""
    # the method's options are part of the key: another protocol may rebuild it (t_max, grid)
    key = json.dumps([str(Path(run.folder).resolve()), run.step, run.method.options(), asdict(settings.sampler),
                      settings.n, settings.seed, settings.batch_size, settings.device, settings.protocol.record(),
                      settings.seeding, settings.memory_gb],
                     sort_keys=True, default=str)
    if key in _samples_cache:
        _samples_cache.move_to_end(key)
        records, cost = _samples_cache[key]
        add_cost(replace(cost, reused=True))  # a reused draw reports what drawing it cost
        return records
    with measure_generation() as cost:
        records = draw_samples(run.method, run.model, run.tokenizer, run.meta, run.step, settings.n,
                               settings.sampler, seed=settings.seed, batch_size=settings.batch_size,
                               device=settings.device, protocol=settings.protocol,
                               seeding=settings.seeding, memory_gb=settings.memory_gb)
    _samples_cache[key] = records, cost
    while len(_samples_cache) > _SAMPLES_CACHE_SIZE:
        _samples_cache.popitem(last=False)
    return records


def score_file(path: Path, scorer: str, *, reference_run: Path | None = None, out: Path | None = None,
               batch_size: int = 8, device: str = "cpu") -> dict[str, Any]:
    """``pathbench score``: any sample file (ours or another system's) scored under this task's
    protocol; with ``reference_run``, that run's real-text row beside it."""
    task = Unconditional(scorer=scorer, batch_size=batch_size, device=device)
    data_cfg = read_meta(reference_run)["data"] if reference_run is not None else None
    if data_cfg is not None:
        task = task.bind(data_cfg)
    texts, ids = read_samples(path)
    result: dict[str, Any] = {"samples": task.score_samples(texts, ids), "file": str(path)}
    if data_cfg is not None:
        result["reference"] = task.reference(data_cfg, len(texts))
    result["protocol"] = task.protocol()
    result["environment"] = environment()
    if out is not None:
        atomic_write_json(out, result)
    return result
