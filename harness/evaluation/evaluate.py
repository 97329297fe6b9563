"""Evaluate a run or a sample file on a task; results carry their metric protocol.

``pathbench score FILE`` re-scores any sample file (ours or another system's) under the
unconditional protocol; ``pathbench eval`` generates for a registered task from a run folder
and scores it. Every result is written atomically with the protocol and the environment.
"""

from __future__ import annotations

import hashlib
import json
import shutil
from collections import OrderedDict
from dataclasses import asdict
from pathlib import Path
from typing import Any

from harness.core.errors import ConfigError
from harness.core.io import atomic_open, atomic_write_json, exclusive
from harness.core.registry import TASKS, accepted_options
from harness.data.corpus import prepare_stored
from harness.engine.checkpoint import read_meta
from harness.engine.generate import generate
from harness.engine.protocol import for_sampling, sampling_setup
from harness.engine.run import draw_samples, environment, load_run, write_samples
from tasks.scorers import check_spec, load_scorer
from tasks.unconditional import read_samples  # the unconditional task's file format

_reference_cache: dict[str, dict[str, float]] = {}
# Unconditional samples are a deterministic function of (checkpoint, sampler, n, seed, batch):
# runs that differ only in their scorer reuse one draw instead of sampling twice. Small: a
# sweep job evaluates its runs in grid order, so the scorers of one sampler are neighbours.
_samples_cache: "OrderedDict[str, list[dict[str, Any]]]" = OrderedDict()
_SAMPLES_CACHE_SIZE = 4


def reference_row(run_dir: Path, n: int, task, store: Path | None = None) -> dict[str, float]:
    """Real held-out text of the run's data, cut to the run's length, scored like samples
    (computed once per data, n and scorer in a process: every run of a sweep job shares it).
    With ``store`` (a sweep's ``reference/`` folder) it is also computed once per sweep: the
    first unit that needs it writes it there, under a lock, and the others read it."""
    meta = read_meta(run_dir)
    data_cfg = meta["data"]
    key = json.dumps([data_cfg, n, task.scorer_spec], sort_keys=True)
    if key not in _reference_cache:
        if store is None:
            _reference_cache[key] = _score_reference(data_cfg, n, task)
        else:
            _reference_cache[key] = _stored_reference(store, key, task, lambda: _score_reference(data_cfg, n, task))
    return dict(_reference_cache[key])


def _stored_reference(store: Path, key: str, task, compute) -> dict[str, float]:
    """The reference row from ``store`` when one was computed under the same key, scorer state
    and arithmetic (a ``self:`` scorer's checkpoint record, torch's thread count and the device
    change float sums), else computed and written atomically."""
    import torch

    spec = task.scorer_spec
    scorer_state = None
    if spec.startswith("self:"):  # a retrained scorer rewrites its checkpoint record
        record = Path(spec[len("self:"):]) / "checkpoint.json"
        scorer_state = [record.read_text(), record.stat().st_mtime_ns] if record.is_file() else None
    full = json.dumps([key, scorer_state, torch.get_num_threads(), str(getattr(task, "device", "cpu"))])
    path = store / f"{hashlib.sha1(full.encode()).hexdigest()[:16]}.json"
    with exclusive(store / ".lock"):
        try:
            return json.loads(path.read_text())["reference"]
        except (OSError, ValueError, KeyError):
            row = compute()
            atomic_write_json(path, {"key": json.loads(full), "reference": row})
            return row


def _score_reference(data_cfg: dict, n: int, task) -> dict[str, float]:
    data = prepare_stored(data_cfg)
    count = min(n, len(data.val))
    seqs = [[int(t) for t in data.val[i]] for i in range(count)]
    texts = [data.tokenizer.decode(s) for s in seqs]
    return task.score_samples(texts, seqs, data.tokenizer.vocab_size)


def score_file(path: Path, scorer: str, *, reference_run: Path | None = None, out: Path | None = None,
               batch_size: int = 8, device: str = "cpu") -> dict[str, Any]:
    task = TASKS.build("unconditional", scorer=scorer, batch_size=batch_size, device=device)
    texts, ids = read_samples(path)
    result: dict[str, Any] = {"samples": task.score_samples(texts, ids), "file": str(path)}
    if reference_run is not None:
        result["reference"] = reference_row(reference_run, len(texts), task)
    result["protocol"] = task.protocol()
    result["environment"] = environment()
    if out is not None:
        atomic_write_json(out, result)
    return result


def _cached_samples(ckpt: Path, method, model, tokenizer, meta: dict, step: int, n: int, cfg,
                    seed: int, batch_size: int, device: str, protocol: dict) -> list[dict[str, Any]]:
    # the method's options are part of the key: another protocol may rebuild it (t_max, grid)
    key = json.dumps([str(Path(ckpt).resolve()), step, method.options(), asdict(cfg), n, seed, batch_size,
                      device, protocol], sort_keys=True, default=str)
    if key in _samples_cache:
        _samples_cache.move_to_end(key)
    else:
        _samples_cache[key] = draw_samples(method, model, tokenizer, meta, step, n, cfg, seed=seed,
                                           batch_size=batch_size, device=device, protocol=protocol)
        while len(_samples_cache) > _SAMPLES_CACHE_SIZE:
            _samples_cache.popitem(last=False)
    return _samples_cache[key]


def eval_run(ckpt: Path, task_name: str, out: Path, sampler: dict, *, task_options: dict | None = None,
             n: int = 32, candidates: int = 1, limit: int | None = None, seed: int = 0,
             batch_size: int = 16, device: str = "cpu", extra: dict | None = None,
             protocol: str | dict | None = None, overwrite: bool = False,
             reference_store: Path | None = None) -> dict[str, Any]:
    """Generate from ``ckpt`` for ``task_name`` and score; writes out/metrics.json + generations.
    ``sampler`` holds the explicit keys and ``protocol`` (a name; default: the run's) fills the
    rest, or ``protocol`` is a record already resolved into ``sampler`` (a sweep's run).
    ``extra`` (run id, status, ...) is merged into the result before its one atomic write;
    ``reference_store`` is a folder where the real-text row is shared (:func:`reference_row`).
    An evaluation already in ``out`` is refused unless ``overwrite``; a failed evaluation
    leaves no folder behind that it created."""
    task = check_task(task_name, task_options or {})  # bad names fail before anything is loaded
    held = [name for name in OUTPUTS if (out / name).exists()]
    if held and not overwrite:
        raise ConfigError(f"{out} already holds an evaluation ({', '.join(held)}); pass --overwrite to "
                          "replace it or choose another --out (nothing was overwritten)")
    created = not out.exists()
    try:
        return _eval_run(task, ckpt, task_name, out, sampler, task_options, n, candidates, limit, seed,
                         batch_size, device, extra, protocol, reference_store)
    except BaseException:
        if created and out.exists():
            shutil.rmtree(out)  # only this failed command's partial files are in it
        raise


#: the files an evaluation writes into its folder
OUTPUTS = ("metrics.json", "samples.jsonl", "generations.jsonl")


def check_task(task_name: str, options: dict):
    """The task built from its name and options, its scorer's name checked: every mistake in
    them is one line naming the bad value and the valid ones, before a checkpoint is read or a
    sample drawn."""
    accepted = accepted_options(TASKS.get(task_name))  # an unknown task lists the known ones
    unknown = sorted(set(options) - accepted) if accepted is not None else []
    if unknown:
        raise ConfigError(f"unknown option '{unknown[0]}' for task '{task_name}'; valid: {', '.join(sorted(accepted))}")
    task = TASKS.build(task_name, **options)
    spec = getattr(task, "scorer_spec", None)
    if spec is not None:
        check_spec(spec)
    return task


def _eval_run(task, ckpt, task_name, out, sampler, task_options, n, candidates, limit, seed, batch_size,
              device, extra, protocol, reference_store) -> dict[str, Any]:
    options = dict(task_options or {})
    method, model, tokenizer, meta, step = load_run(ckpt, device)
    if getattr(task, "scorer_spec", None) is not None:  # a scorer that cannot load fails before sampling

        load_scorer(task.scorer_spec, getattr(task, "device", "cpu"))
    if isinstance(protocol, dict):
        method, _ = for_sampling(method, meta, protocol["name"])
        cfg, record = method.sampler_config(meta["method"], sampler), protocol
    else:
        method, cfg, record = sampling_setup(method, meta, protocol, sampler)
    out.mkdir(parents=True, exist_ok=True)
    result: dict[str, Any] = {"method": meta["method"], "method_options": method.options(),
                              **({"plugins": meta["plugins"]} if meta.get("plugins") else {}),
                              "checkpoint": str(ckpt), "checkpoint_step": step, "task": task_name,
                              "task_options": options, "sampler": asdict(cfg), "seed": seed,
                              "generation_protocol": record}
    if task_name == "unconditional":
        records = _cached_samples(ckpt, method, model, tokenizer, meta, step, n, cfg, seed,
                                  batch_size, device, record)
        write_samples(records, out / "samples.jsonl")
        texts, ids = [r["text"] for r in records], [r["ids"] for r in records]
        result["metrics"] = task.score_samples(texts, ids, tokenizer.vocab_size)
        result["reference"] = reference_row(ckpt, n, task, reference_store)
    else:
        if candidates < task.min_candidates:
            raise ConfigError(f"task '{task_name}' needs at least {task.min_candidates} candidates, "
                              f"got {candidates}")
        examples = task.examples(tokenizer, meta["data"]["seq_len"], limit)
        generations = generate(method, model, tokenizer, [e.parts for e in examples], cfg,
                               seq_len=meta["data"]["seq_len"], candidates=candidates,
                               batch_size=batch_size, seed=seed)
        with atomic_open(out / "generations.jsonl", "w", encoding="utf-8") as handle:
            for example, cands in zip(examples, generations):
                handle.write(json.dumps({"references": example.references, "candidates": cands,
                                         "meta": example.meta}, ensure_ascii=False) + "\n")
        result["metrics"] = task.score(examples, generations)
    result["protocol"] = task.protocol()  # the metric protocol; generation_protocol is the sampling one
    result["environment"] = environment()
    result.update(extra or {})
    atomic_write_json(out / "metrics.json", result)
    return result
