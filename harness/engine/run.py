"""Train and sample one run: wire method, data, backbone and trainer together.

A run folder is self-contained: ``meta.json`` (method and its options, model config, data
spec, the generation protocol's record, library versions, git revision), ``tokenizer/``, checkpoints, ``metrics.jsonl`` and
``train.log``. ``pathbench sample`` needs nothing but that folder.
"""

from __future__ import annotations

import dataclasses
import json
import logging
import os
import platform
import subprocess
from collections.abc import Callable
from dataclasses import asdict
from importlib.metadata import PackageNotFoundError, version
from pathlib import Path
from typing import Any, NamedTuple

import torch

from pathbench.core.config import DataConfig, apply_overrides, canonical_keys, line_infill_option
from pathbench.core.devices import inference_autocast
from pathbench.core.errors import ConfigError
from pathbench.core.io import atomic_open
from pathbench.core.registry import METHODS
from pathbench.core.rng import batch_seed, check_seeding, generator_for, row_seed
from pathbench.data.corpus import BatchLoader, check_data_spec, prepare_data
from pathbench.data.tokenizer import load_tokenizer
from pathbench.engine.calibration import read_calibration
from pathbench.engine.checkpoint import (
    EXPORT_WEIGHTS,
    is_export,
    latest_checkpoint,
    load_checkpoint,
    load_weights,
    read_export,
    read_meta,
    write_meta,
)
from pathbench.engine.contract import check_sample
from pathbench.engine.generation_cost import timed_sample
from pathbench.engine.learning import run_check
from pathbench.engine.memory import fit_batch, memory_budget
from pathbench.engine.methods import Method
from pathbench.engine.model import ModelConfig, Transformer, model_config
from pathbench.engine.plugins import load_plugins, plugin_modules
from pathbench.engine.protocol import (
    DEFAULT,
    GenerationProtocol,
    build_method,
    protocol_name_of,
    resolve_method_options,
    resolve_train_options,
    sampling_setup,
)
from pathbench.engine.recipes import recipe_record
from pathbench.engine.sampling import SamplerConfig
from pathbench.engine.step_progress import denoiser_progress
from pathbench.engine.trainer import TrainConfig, TrainResult, distributed_context, ensure_can_start, train

TRACKED = ("torch", "numpy", "tokenizers", "transformers", "datasets", "safetensors")


def environment() -> dict[str, Any]:
    """What produced a result: git revision, library versions, Python, device."""
    versions = {}
    for name in ("pathbench", *TRACKED):
        try:
            versions[name] = version(name)
        except PackageNotFoundError:
            versions[name] = None
    try:
        rev = subprocess.run(["git", "rev-parse", "HEAD"], capture_output=True, text=True,
                             cwd=Path(__file__).parent, timeout=10).stdout.strip() or None
    except (OSError, subprocess.SubprocessError):
        rev = None
    device = torch.cuda.get_device_name() if torch.cuda.is_available() else platform.processor() or "cpu"
    return {"git_revision": rev, "versions": versions, "python": platform.python_version(),
            "device": device}


def _log_to(run_dir: Path) -> None:
    handler = logging.FileHandler(run_dir / "train.log")
    handler.setFormatter(logging.Formatter("%(asctime)s %(name)s %(levelname)s %(message)s"))
    root = logging.getLogger("pathbench")
    root.setLevel(logging.INFO)
    root.addHandler(handler)


def resolve_training(method_name: str, protocol_name: str, overrides: dict[str, dict[str, Any]],
                     ) -> tuple[dict[str, dict[str, Any]], GenerationProtocol]:
    """(overrides, record): a command line's overrides with their ``method`` and ``train`` parts
    resolved under the protocol named ``protocol_name`` (its settings under the explicit keys),
    as :func:`train_run` takes them. A sweep resolves its units the same way when it expands."""
    options, record = resolve_method_options(method_name, protocol_name, overrides["method"])
    train_options, record = resolve_train_options(record, canonical_keys(TrainConfig, overrides["train"], "train"))
    return {**overrides, "method": options, "train": train_options}, record


def training_protocol_name(requested: str | None, out: Path, resume: bool) -> str:
    """The protocol a training command means: the one it names, else on ``resume`` the one the
    run recorded (``plain`` if none), else the default (kl-flow)."""
    if requested is not None:
        return requested
    return protocol_name_of(read_meta(out)) if resume and (out / "meta.json").exists() else DEFAULT


def train_run(method_name: str, preset: str, out: Path, overrides: dict[str, dict[str, Any]], *,
              protocol: GenerationProtocol, resume: bool = False, device: str = "cpu") -> TrainResult:
    """``pathbench train``: build everything from names + overrides and train into ``out``.

    ``overrides["method"]`` and ``overrides["train"]`` are already resolved under ``protocol``
    (:func:`resolve_training`, or a sweep's expansion): they are taken as they are and the
    record is written into meta.json as ``generation_protocol``."""
    method: Method = build_method(method_name, overrides["method"], protocol)
    data_cfg = apply_overrides(DataConfig(), overrides["data"], "data")
    train_cfg = apply_overrides(TrainConfig(), overrides["train"], "train")
    infill = line_infill_option(data_cfg)  # validated before any data is prepared
    check_data_spec(data_cfg.corpus, data_cfg.tokenizer, data_cfg.seq_len)
    out.mkdir(parents=True, exist_ok=True)
    # one tokenising process per node: the other ranks wait for it and map its cache
    data = prepare_data(data_cfg.corpus, data_cfg.tokenizer, data_cfg.seq_len, Path(data_cfg.cache_dir),
                        vocab_size=data_cfg.vocab_size, val_fraction=data_cfg.val_fraction,
                        max_tokens=data_cfg.max_tokens, builder=int(os.environ.get("LOCAL_RANK", "0")) == 0)
    model_cfg = model_config(preset, data.tokenizer.vocab_size + method.extra_tokens, data_cfg.seq_len,
                             causal=method.causal, time_cond=method.time_cond,
                             **({"two_time": True} if method.two_time else {}), **overrides["model"])
    meta = {
        "method": METHODS.canonical(method_name), "method_options": method.options(),
        "preset": preset, "model": asdict(model_cfg), "data": asdict(data_cfg),
        "tokenizer": "tokenizer", "train": asdict(train_cfg), "generation_protocol": protocol.record(),
        "recipe": recipe_record(train_cfg.optimizer, train_cfg.lr, train_cfg.weight_decay),
        # a plugin's module, so that sample/eval/sweep load it without --plugin (built-ins: none)
        **({"plugins": plugins} if (plugins := plugin_modules(method)) else {}),
    }
    if resume and latest_checkpoint(out) is not None:
        old = read_meta(out)
        # a field added to ModelConfig since the run started takes its default, not a mismatch
        old = {**old, "model": asdict(ModelConfig(**old["model"]))} if "model" in old else old
        old = {**old, "data": asdict(DataConfig(**old["data"]))} if "data" in old else old  # likewise
        for key in ("method", "method_options", "model", "data"):
            if old.get(key) != meta[key]:
                raise ConfigError(f"cannot resume {out}: its {key} was {old.get(key)!r}, "
                                  f"this command asks for {meta[key]!r}")
    ensure_can_start(out, resume)
    rank, world = distributed_context()
    if rank == 0:
        data.tokenizer.save(out / "tokenizer")
        write_meta(out, {**meta, "environment": environment()})
        _log_to(out)
    torch.manual_seed(train_cfg.seed)  # the same initial weights on every rank
    model = Transformer(model_cfg)
    method.init_model(model)  # e.g. a flow-map student starts from its teacher's weights
    masks = {"line_infill": infill, "is_newline": data.newline_table() if infill else None}
    train_loader = BatchLoader(data.train, train_cfg.batch_size, seed=train_cfg.seed, shuffle=True,
                               rank=rank, world=world, **masks)
    result = train(method, model, iter(train_loader),
                   lambda: BatchLoader(data.val, train_cfg.batch_size, shuffle=False, **masks).epoch(),
                   train_cfg, out, resume=resume, device=device)
    if rank == 0 and train_cfg.parallel != "fsdp":  # did it learn at all? stored before anyone reads its samples (pathbench.engine.learning)
        check = run_check(out, method, model, data, data_cfg, train_cfg.batch_size, device)
        logging.getLogger("pathbench.train").info("learning check: %s", check["verdict"])
    # fsdp: every rank holds a shard; the check is computed from the consolidated copy when evaluated
    return result


class LoadedRun(NamedTuple):
    """A run folder loaded once: what every task, scorer and study reads from it."""

    method: Method
    model: torch.nn.Module  # on its device, in eval mode
    tokenizer: Any
    meta: dict
    step: int  # the checkpoint's optimizer step
    folder: Path


def load_run(ckpt: Path, device: str = "cpu", method_name: str | None = None) -> LoadedRun:
    """The run in folder ``ckpt`` (method, model, tokenizer, meta, step, folder), with its
    consistency checked and the plugin modules it recorded loaded. ``ckpt`` may also be a Hub
    export of a run (``pathbench export``): every command reads one as it reads the run."""
    if is_export(ckpt):
        meta, step = read_export(ckpt)

        def load(model: torch.nn.Module) -> int:
            load_weights(model, ckpt / EXPORT_WEIGHTS)
            return step

        return assemble_run(meta, ckpt, load, device, method_name)
    return assemble_run(read_meta(ckpt), ckpt, lambda model: load_checkpoint(ckpt, model, with_state=False).step,
                        device, method_name)


def assemble_run(meta: dict, folder: Path, load: Callable[[torch.nn.Module], int], device: str = "cpu",
                 method_name: str | None = None) -> LoadedRun:
    """A run from its ``meta`` and a folder holding its tokenizer (``meta["tokenizer"]``) and
    calibration; ``load`` puts the weights into the model and returns their step. A run folder
    (:func:`load_run`) and a Hub export (:mod:`pathbench.engine.hub`) differ only in ``load``."""
    load_plugins(meta.get("plugins", ()), needed_by=f"run {folder}")
    if method_name is not None and METHODS.canonical(method_name) != meta["method"]:
        raise ConfigError(f"checkpoint {folder} was trained with method '{meta['method']}', "
                          f"not '{method_name}'")
    method: Method = METHODS.build(meta["method"], **meta["method_options"])
    method.calibration = read_calibration(folder)
    model_cfg = ModelConfig(**meta["model"])
    tokenizer = load_tokenizer(folder / meta["tokenizer"])
    if tokenizer.vocab_size + method.extra_tokens != model_cfg.vocab_size:
        extra = f" + {method.extra_tokens} extra" if method.extra_tokens else ""
        raise ConfigError(f"vocabulary mismatch: the checkpoint's model has {model_cfg.vocab_size} "
                          f"tokens, its tokenizer {tokenizer.vocab_size}{extra}")
    model = Transformer(model_cfg)
    step = load(model)
    return LoadedRun(method, model.to(device).eval(), tokenizer, meta, step, folder)


def require_complete(run: LoadedRun, role: str) -> LoadedRun:
    """``run`` when it is trained to the step its meta.json asks for; a sibling still training,
    preempted or crashed (a scorer, a teacher) is refused instead of silently used half-trained."""
    steps = int(run.meta.get("train", {}).get("steps", run.step))
    if run.step < steps:
        raise ConfigError(f"{role} {run.folder} is not trained to the end: its checkpoint is at step {run.step} of "
                          f"{steps} (still training, preempted or crashed); resume it first")
    return run


def sample_run(ckpt: Path, out: Path, n: int, sampler: dict, *, seed: int = 0,
               batch_size: int = 16, seq_len: int | None = None, device: str = "cpu",
               method_name: str | None = None, protocol: str | None = None, seeding: str = "batch",
               memory_gb: float | str | None = None) -> list[dict[str, Any]]:
    """``pathbench sample``: ``n`` unconditional samples as JSON lines (written atomically).
    ``sampler`` holds the explicit keys; ``protocol`` (default: the run's) fills the rest."""
    method, model, tokenizer, meta, step, _ = load_run(ckpt, device, method_name)
    method, cfg, record = sampling_setup(method, meta, protocol, sampler)  # names -> records, once
    records = draw_samples(method, model, tokenizer, meta, step, n, cfg, seed=seed,
                           batch_size=batch_size, seq_len=seq_len, device=device, protocol=record,
                           seeding=seeding, memory_gb=memory_gb)
    write_samples(records, out)
    return records


def draw_samples(method: Method, model: torch.nn.Module, tokenizer, meta: dict, step: int, n: int,
                 sampler: SamplerConfig, *, seed: int = 0, batch_size: int = 16,
                 seq_len: int | None = None, device: str = "cpu",
                 protocol: GenerationProtocol | None = None, seeding: str = "batch",
                 memory_gb: float | str | None = None) -> list[dict[str, Any]]:
    """``n`` unconditional samples from a loaded run, one record per sample (text, ids, seed,
    and ``protocol``'s record as ``generation_protocol``; None: no such key).

    ``seeding="batch"``: one stream per batch, seeded with (seed, first index) — the samples
    depend on the batch size; ``"row"``: one stream per sample (:func:`pathbench.core.rng.row_seed`)
    — they do not. The batch is cut to fit ``memory_gb`` (:mod:`pathbench.engine.memory`)."""
    if n < 1:
        raise ConfigError(f"n = {n} must be >= 1")
    check_seeding(seeding)
    sampler = method.sampler_config(meta["method"], sampler)  # checked against the method's samplers
    seq_len = seq_len or meta["data"]["seq_len"]
    if seq_len > model.config.max_seq_len:
        raise ConfigError(f"sequence length {seq_len} exceeds the checkpoint's maximum "
                          f"{model.config.max_seq_len}")
    batch_size = fit_batch(method, model, seq_len, batch_size, memory_budget(memory_gb, device), seeding)
    written = protocol.record() if protocol is not None else None  # one JSON form for every sample
    records = []
    starts = range(0, n, batch_size)
    with denoiser_progress(model, f"sample {sampler.name}", len(starts), sampler.nfe) as progress:
        for first in starts:
            records += _draw_batch(method, model, tokenizer, meta, step, sampler, first, min(batch_size, n - first),
                                   seed=seed, seq_len=seq_len, device=device, protocol=written, seeding=seeding)
            progress.batch_done()
    return records


def _draw_batch(method: Method, model: torch.nn.Module, tokenizer, meta: dict, step: int, sampler: SamplerConfig,
                first: int, size: int, *, seed: int, seq_len: int, device: str, protocol: dict | None,
                seeding: str) -> list[dict[str, Any]]:
    """The records of one batch of :func:`draw_samples`: rows ``first`` .. ``first + size - 1``
    (``protocol``: the record's JSON form, or None)."""
    records = []
    rows = list(range(first, first + size))
    generator = generator_for(seeding, seed, rows, device=device)
    seeds = [row_seed(seed, i) for i in rows] if seeding == "row" else [batch_seed(seed, first)] * size
    given = method.unconditional_given(size, seq_len, tokenizer.eos_id, device)
    with inference_autocast(device), timed_sample(model, size, seq_len, given.get("given_mask")):
        ids = method.sample(model, size, seq_len, sampler, generator=generator, **given)
    ids = check_sample(meta["method"], ids, size, seq_len, tokenizer.vocab_size, **given).cpu()
    for row, sample_ids in enumerate(ids.tolist()):
        records.append({
            "index": first + row, "text": tokenizer.decode(sample_ids), "ids": sample_ids,
            "seed": seeds[row], "row_in_batch": row, "batch_size": size,
            **({"seeding": "row"} if seeding == "row" else {}),
            "method": meta["method"], "method_options": method.options(),
            "sampler": dataclasses.asdict(sampler), "checkpoint_step": step,
            **({"generation_protocol": protocol} if protocol is not None else {}),
        })
    return records


def write_samples(records: list[dict[str, Any]], out: Path) -> None:
    with atomic_open(out, "w", encoding="utf-8") as handle:
        for record in records:
            handle.write(json.dumps(record, ensure_ascii=False) + "\n")
