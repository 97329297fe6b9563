"""Experiment files: a grid described once, expanded into runs with stable ids.

    name: tiny-ablation
    preset: tiny
    model: {n_layer: 2, d_model: 64}                            # pathbench.engine.model.ModelConfig fields
    data: {corpus: bbc, vocab_size: 512, seq_len: 32}          # pathbench.core.config.DataConfig keys
    train: {steps: 200, batch_size: 16, lr: 3.0e-3}             # pathbench.engine.trainer.TrainConfig keys
    methods: [kl, linear, {name: dfm, options: {scheduler: quadratic}},
              {name: flowmap, options: {teacher: "@kl"}, train: {lr: 1.0e-3}}]   # per-method train keys
    samplers:                                                   # each key may be a list (a grid axis)
      - {name: basic, nfe: [16, 64]}
      - {name: hybrid, nfe: 64, t_star: [0.1, 0.28], top_k: [1, 5]}
    seeds: [0, 1]
    tasks: [{name: unconditional, n: 32, scorers: [smollm2, "self:runs/ar"], batch_size: 16}]  # batch: samples at once
    executor: {kind: local, timeout_min: 120, parallel: 2, threads: 1,   # local: units at once, torch threads each
               slurm: {partition: gpu, gpus_per_task: 1}}
    protocol: kl-flow                                           # or plain, or [kl-flow, plain] (an axis)

The generation protocol (pathbench.engine.protocol; default kl-flow) resolves each unit's method
options and each run's sampler keys before ids are computed, so an id is the hash of what is
trained and sampled; keys given in the file override the protocol's and the record (stored
in metrics.json as ``generation_protocol``) says so. A unit or run that two protocols resolve
to the same config (a baseline they do not touch) is listed once, under the first.

A method gets the sampler entries it understands; a method with none of them (a baseline
with its own samplers, e.g. dfm) gets its default sampler at every listed NFE (an
autoregressive model once, NFE = its length). A *training unit* is (method, options, preset,
data, train budget, seed); a *run* is a unit × sampler setting × task × scorer. Ids are hashes
of the resolved configs, so the same grid always maps to the same folders.
"""

from __future__ import annotations

import hashlib
import itertools
import json
from dataclasses import asdict, dataclass, field, replace
from pathlib import Path
from typing import Any

import yaml

from pathbench.core.config import DataConfig, apply_overrides, canonical_keys
from pathbench.core.errors import ConfigError
from pathbench.core.registry import METHODS, PROTOCOLS
from pathbench.core.rng import check_seeding
from pathbench.data.corpus import check_data_spec
from pathbench.engine.memory import check_memory_gb
from pathbench.engine.model import model_config
from pathbench.engine.plugins import load_plugins
from pathbench.engine.protocol import (
    DEFAULT,
    GenerationProtocol,
    build_method,
    resolve_method_options,
    resolve_sampler,
    resolve_train_options,
)
from pathbench.engine.sampling import SamplerConfig
from pathbench.engine.trainer import TrainConfig
from pathbench.sweep.experiment_schema import check_experiment, check_tasks, task_scorers
from pathbench.sweep.tuning import TuneSpec, parse_tune, tune_name

TOP_KEYS = {"name", "preset", "model", "data", "train", "methods", "samplers", "seeds", "tasks", "executor",
            "protocol", "plugins", "tune"}
TASK_KEYS = {"name", "n", "scorers", "candidates", "limit", "options", "batch_size", "seeding", "memory_gb"}
METHOD_KEYS = {"name", "options", "train"}
EXECUTOR_KEYS = {"kind", "timeout_min", "slurm", "parallel", "threads"}
SLURM_KEYS = {"partition", "gpus_per_task", "cpus_per_task", "time_min", "nodes", "array_parallelism",
              "account", "qos", "mem_gb"}
EXECUTORS = ("local", "slurm", "debug")
#: train options that watch a run without changing it: left out of a unit's id
OBSERVERS = ("logger",)
#: train options added after results were committed under their ids: at these defaults they are
#: left out of a unit's id, so every earlier id (and its result folder, leaderboard row) stays
LATER_DEFAULTS = {"grad_accum": 1, "parallel": "ddp"}


def stable_id(config: dict) -> str:
    """12 hex digits of the SHA-1 of the canonical JSON of a resolved config."""
    return hashlib.sha1(json.dumps(config, sort_keys=True, default=str).encode()).hexdigest()[:12]


@dataclass
class TrainUnit:
    method: str
    options: dict
    preset: str
    data: dict
    train: dict
    seed: int
    #: the generation protocol it was resolved under; not hashed: the options it resolved to are
    protocol: GenerationProtocol | None = None
    #: the file's ``model:`` overrides of the preset's ModelConfig fields (n_layer, d_model, ...)
    model: dict = field(default_factory=dict)

    def config(self) -> dict:
        """Its fields (``TrainUnit(**config)`` is the unit again): copies, the record as it is."""
        return {**asdict(replace(self, protocol=None)), "protocol": self.protocol}

    @property
    def protocol_name(self) -> str | None:
        """The name of the protocol it was resolved under (None: none given)."""
        return self.protocol.name if self.protocol is not None else None

    def identity(self) -> dict:
        """What is trained: where the data cache lives, the record and the live-curve logger
        (it only observes: pathbench.engine.loggers) do not change it; options newer than the
        committed results are in it only when they differ from their defaults."""
        config = self.config()
        del config["protocol"]
        if not config["model"]:  # in the id only when given: every unit without one keeps its id
            del config["model"]
        # nor does an unset token budget (units keep the ids they had before data.max_tokens existed)
        config["data"] = {k: v for k, v in config["data"].items()
                          if k != "cache_dir" and not (k == "max_tokens" and v is None)}
        config["train"] = {k: v for k, v in config["train"].items()
                           if k not in OBSERVERS and not (k in LATER_DEFAULTS and v == LATER_DEFAULTS[k])}
        return config

    @property
    def id(self) -> str:
        return stable_id(self.identity())


@dataclass
class RunSpec:
    unit: TrainUnit
    sampler: dict
    task: str
    task_options: dict
    scorer: str | None
    n: int
    candidates: int
    limit: int | None
    #: the generation protocol of this run (the unit's, resolved for its sampler)
    protocol: GenerationProtocol | None = None
    #: samples drawn at once (the evaluation batch; None: eval's default, 16)
    batch_size: int | None = None
    #: "row": one random stream per sample (None: eval's default, "batch")
    seeding: str | None = None
    #: the sampler's memory budget in GB (None: "auto"); not part of the id: an execution setting
    memory_gb: float | str | None = None

    def config(self) -> dict:
        config = {"train_unit": self.unit.identity(), "train_id": self.unit.id, "sampler": self.sampler,
                  "task": self.task, "task_options": self.task_options, "scorer": self.scorer, "n": self.n,
                  "candidates": self.candidates, "limit": self.limit}
        if self.batch_size is not None:  # part of the id only when set: the draws depend on it
            config["batch_size"] = self.batch_size
        if self.seeding is not None:
            config["seeding"] = self.seeding
        return config

    @property
    def id(self) -> str:
        return stable_id(self.config())


@dataclass
class Experiment:
    name: str
    units: list[TrainUnit]
    runs: list[RunSpec]
    executor: dict = field(default_factory=dict)
    #: plugin modules the file names (``plugins: [module, ...]``), loaded before it is expanded
    plugins: list[str] = field(default_factory=list)
    #: the ``tune:`` block (pathbench.sweep.tuning), None without one
    tune: TuneSpec | None = None


def _check_keys(where: str, given: dict, valid: set[str]) -> None:
    unknown = sorted(set(given) - valid)
    if unknown:
        raise ConfigError(f"unknown key '{unknown[0]}' in {where}; valid: {', '.join(sorted(valid))}")


def _as_list(value: Any) -> list:
    return value if isinstance(value, list) else [value]


def _sampler_grid(entry: dict) -> list[dict]:
    """One sampler entry with list-valued axes -> every combination of the keys it gives
    (validated; the protocol fills the others per method)."""
    if "name" not in entry:
        raise ConfigError(f"sampler entry {entry} has no 'name'")
    valid = set(SamplerConfig.__dataclass_fields__)
    _check_keys(f"sampler '{entry['name']}'", entry, valid)
    keys = sorted(entry)
    for key in keys:
        if entry[key] == []:
            raise ConfigError(f"sampler '{entry['name']}' has an empty axis '{key}' (an empty axis expands to "
                              "zero runs); give it at least one value")
    combos = [dict(zip(keys, values)) for values in itertools.product(*(_as_list(entry[k]) for k in keys))]
    for combo in combos:
        SamplerConfig(**combo)
    return combos


def read_experiment(path: Path) -> dict:
    """An experiment file's raw mapping (a missing file or bad YAML is one line)."""
    if not path.exists():
        raise ConfigError(f"experiment file {path} does not exist")
    try:
        raw = yaml.safe_load(path.read_text())
    except yaml.YAMLError as err:
        raise ConfigError(f"experiment file {path} is not valid YAML: {str(err).splitlines()[0]}") from err
    if not isinstance(raw, dict):
        raise ConfigError(f"experiment file {path} must be a mapping of keys")
    check_experiment(raw)  # a sweep reads its tune block before the grid is expanded
    return raw


def load_experiment(path: Path, tuned: dict[str, dict] | None = None) -> Experiment:
    """Parse and validate an experiment file and expand its grid (``tuned``: the choices of a
    sweep's tuning stage, for methods the file does not pin; pathbench.sweep.tuning)."""
    return expand(read_experiment(path), default_name=path.stem, tuned=tuned)


def expand(raw: dict, default_name: str = "experiment", tuned: dict[str, dict] | None = None) -> Experiment:
    check_experiment(raw)  # the type of every key and axis item, before any of it is used
    _check_keys("experiment", raw, TOP_KEYS)
    plugins = [str(m) for m in _as_list(raw.get("plugins") or [])]
    load_plugins(plugins, needed_by=f"experiment '{raw.get('name', default_name)}'")
    for required in ("methods", "samplers", "tasks"):
        if not raw.get(required):
            raise ConfigError(f"experiment has no '{required}' (an empty axis expands to zero runs)")
    check_tasks(raw["tasks"])
    preset = raw.get("preset", "tiny")
    data = asdict(apply_overrides(DataConfig(), raw.get("data") or {}, "data"))
    check_data_spec(data["corpus"], data["tokenizer"], data["seq_len"])  # before any unit is submitted
    model = dict(raw.get("model") or {})
    model_config(preset, 2, data["seq_len"], **model)  # a bad preset, key or width fails here, once
    data["cache_dir"] = str(Path(data["cache_dir"]).resolve())  # jobs may start elsewhere
    shared_train = canonical_keys(TrainConfig, dict(raw.get("train") or {}), "train")  # the keys as given
    apply_overrides(TrainConfig(), shared_train, "train")  # a bad shared key fails here, once
    seeds = [int(s) for s in _as_list(raw.get("seeds", [0]))]
    if not seeds:
        raise ConfigError("experiment has no seeds (an empty axis expands to zero runs)")
    samplers = [s for entry in raw["samplers"] for s in _sampler_grid(entry)]
    executor = dict(raw.get("executor") or {})
    _check_keys("executor", executor, EXECUTOR_KEYS)
    _check_keys("executor.slurm", executor.get("slurm") or {}, SLURM_KEYS)
    if executor.get("kind", "local") not in EXECUTORS:
        raise ConfigError(f"unknown executor '{executor['kind']}'; known: {', '.join(EXECUTORS)}")
    for key in ("parallel", "threads"):  # counts: a typo must not reach the dispatcher
        value = executor.get(key)
        if value is not None and (isinstance(value, bool) or not isinstance(value, int) or value < 1):
            raise ConfigError(f"executor.{key} = {value!r} must be a positive integer")
    protocols = [PROTOCOLS.get(p).name for p in _as_list(raw.get("protocol", DEFAULT))]
    if not protocols:
        raise ConfigError(f"experiment has no protocol (an empty axis expands to zero runs); "
                          f"known: {', '.join(PROTOCOLS.names())}")
    tune = parse_tune(raw.get("tune"), [tune_name(m) for m in raw["methods"]])
    choices = {**(tune.chosen if tune else {}), **(tuned or {})}
    units: dict[str, TrainUnit] = {}  # by id: a unit two protocols resolve alike is trained once
    runs: dict[str, RunSpec] = {}
    for protocol in protocols:
        built: dict[str, Any] = {}  # this protocol's methods so far: teachers of "@name" students
        for entry in raw["methods"]:
            entry = {"name": entry} if isinstance(entry, str) else dict(entry)
            _check_keys(f"method '{entry.get('name')}'", entry, METHOD_KEYS)
            name = entry.get("name")
            options, record = resolve_method_options(name, protocol, _with_teacher_path(entry, built))
            method = build_method(name, options, record)  # validates the name and options
            built.setdefault(METHODS.canonical(name), method)
            # a method may change the shared budget's settings (e.g. a distilled student's lr); the
            # protocol's recipe (simplex paths) sits under every key the file gives
            own_keys = canonical_keys(TrainConfig, dict(entry.get("train") or {}), f"{name}.train")
            key = tune_name(entry)  # a flow-map student's: flowmap@kl
            if tune is not None and tune.covers(key):
                if key not in choices:
                    raise ConfigError(f"method '{key}' has no tuned recipe yet: `pathbench sweep` tunes it first, "
                                      "or pin one under tune.chosen")
                # the tuned choice is explicit: over the protocol's recipe and the entry's own train keys
                own_keys = {**own_keys, **choices[key]}
                record = replace(record, tuned=dict(choices[key]))
            resolved, record = resolve_train_options(record, {**shared_train, **own_keys})
            own_train = asdict(apply_overrides(TrainConfig(), resolved, f"{name}.train"))
            for seed in seeds:
                unit = TrainUnit(METHODS.canonical(name), method.options(), preset, data,
                                 {**own_train, "seed": seed}, seed, record, model)
                units.setdefault(unit.id, unit)
                for explicit in _samplers_for(method, samplers, data["seq_len"]):
                    spec, run_record = resolve_sampler(method, record, explicit)
                    sampler = asdict(SamplerConfig(**spec))
                    for task in raw["tasks"]:
                        for run in _task_runs(unit, sampler, task, run_record):
                            runs.setdefault(run.id, run)
    if not runs:
        raise ConfigError("the grid expands to zero runs")
    return Experiment(raw.get("name", default_name), list(units.values()), list(runs.values()), executor, plugins,
                      tune)



def _with_teacher_path(entry: dict, built: dict[str, Any]) -> dict:
    """A student's options; a ``teacher: "@kl"`` student distils the path options this
    protocol gave the sweep's kl unit (t_max, grid, ...), so its id follows the teacher's."""
    options = dict(entry.get("options") or {})
    teacher = options.get("teacher")
    if isinstance(teacher, str) and teacher.startswith("@") and "path_options" not in options:
        found = built.get(METHODS.canonical(teacher[1:])) if teacher[1:] in METHODS else None
        if found is not None and hasattr(found, "path"):
            options["path_options"] = found.path.options()
    return options


def _samplers_for(method, samplers: list[dict], seq_len: int) -> list[dict]:
    """The explicit sampler keys of each of ``method``'s runs."""
    own = [s for s in samplers if s["name"] in method.samplers]
    if own:
        return own
    if method.requires_prefix:  # autoregressive: one setting, NFE = generated length
        return [{"name": method.samplers[0], "nfe": seq_len - 1}]
    nfes = sorted({s.get("nfe", SamplerConfig.nfe) for s in samplers})
    return [{"name": method.samplers[0], "nfe": n} for n in nfes]


def _task_runs(unit: TrainUnit, sampler: dict, task: dict | str, protocol: GenerationProtocol) -> list[RunSpec]:
    task = {"name": task} if isinstance(task, str) else dict(task)
    _check_keys(f"task '{task.get('name')}'", task, TASK_KEYS)
    scorers = task_scorers(task)
    if not scorers:
        raise ConfigError(f"task '{task['name']}' has no scorers (an empty axis expands to zero runs)")
    batch = task.get("batch_size")
    if batch is not None and (not isinstance(batch, int) or isinstance(batch, bool) or batch < 1):
        raise ConfigError(f"task '{task['name']}': batch_size = {batch!r} must be an integer >= 1 (samples drawn at once)")
    seeding = task.get("seeding")
    if seeding is not None:
        check_seeding(seeding)
    check_memory_gb(task.get("memory_gb"))  # a bad budget is one line now, not in the job
    return [RunSpec(unit, sampler, task["name"], dict(task.get("options") or {}), scorer,
                    int(task.get("n", 32)), int(task.get("candidates", 1)), task.get("limit"), protocol, batch,
                    seeding, task.get("memory_gb"))
            for scorer in scorers]
