"""The shape of an experiment file, checked whole before anything is expanded, run or written.

:func:`check_experiment` checks the type of every key the file gives and of every item of
every axis (``seeds: [zero]``, ``methods: 7``, ``samplers: {name: basic}``, ``tasks:
unconditional``, a sampler's ``nfe: [16, x]``, ...) and raises one :class:`ConfigError` line
naming the key, the bad value and what is valid. Names (of methods, tasks, samplers,
protocols) and keys it does not know are left to :func:`pathbench.sweep.experiment.expand`,
which checks them against the registries right after this; a key's *values* beyond their
type (ranges, choices) are checked where they are used, also before anything runs: a task
entry's options by :func:`check_tasks`, as ``pathbench eval`` checks them.
"""

from __future__ import annotations

import dataclasses
from typing import Any

from pathbench.core.errors import ConfigError
from pathbench.core.registry import TASKS
from pathbench.engine.sampling import SamplerConfig
from pathbench.evaluation.evaluate import check_candidates, check_task

EXAMPLE = {"methods": "methods: [kl, {name: dfm, options: {...}}]",
           "samplers": "samplers: [{name: basic, nfe: [16, 64]}]",
           "tasks": "tasks: [unconditional, {name: headline_lead, n: 32}]",
           "seeds": "seeds: [0, 1]", "protocol": "protocol: kl-flow or [kl-flow, plain]",
           "plugins": "plugins: [my.module]"}


def _kind(value: Any) -> str:
    return {dict: "mapping", list: "list", str: "string", bool: "boolean", type(None): "null", int: "integer",
            float: "number"}.get(type(value), type(value).__name__)


def _fail(where: str, value: Any, want: str) -> None:
    text = repr(value)
    text = text if len(text) <= 80 else text[:77] + "..."
    raise ConfigError(f"experiment: {where} = {text} must be {want} (given: {_kind(value)})")


def _is_int(value: Any) -> bool:
    return isinstance(value, int) and not isinstance(value, bool)


def _is_number(value: Any) -> bool:
    return isinstance(value, (int, float)) and not isinstance(value, bool)


def _mapping(where: str, value: Any) -> dict:
    if not isinstance(value, dict):
        _fail(where, value, "a mapping of keys (e.g. {key: value})")
    for key in value:
        if not isinstance(key, str):
            _fail(f"a key of {where}", key, "a string")
    return value


def _strings(where: str, value: Any, single: bool = True) -> None:
    """A string or (a non-empty) list of strings."""
    items = [value] if single and isinstance(value, str) else value
    if not isinstance(items, list):
        _fail(where, value, "a string or a list of strings" if single else "a list of strings")
    for i, item in enumerate(items):
        if not isinstance(item, str) or not item:
            _fail(f"{where}[{i}]", item, "a non-empty string")


def _axis(where: str, value: Any, example: str) -> list:
    """An axis that must be a non-empty list (a bare value is refused: ``tasks: unconditional``)."""
    if not isinstance(value, list):
        _fail(where, value, f"a list ({example})")
    if not value:
        raise ConfigError(f"experiment has no '{where}' (an empty axis expands to zero runs); {example}")
    return value


_ANNOTATION_CHECKS = {"int": _is_int, "float": _is_number, "str": lambda v: isinstance(v, str),
                      "bool": lambda v: isinstance(v, bool), "None": lambda v: v is None}


def _field_check(annotation: str):
    """``int | None`` -> a check accepting an int or None (unknown types: anything)."""
    parts = [p.strip() for p in str(annotation).split("|")]
    if not all(p in _ANNOTATION_CHECKS for p in parts):
        return None, str(annotation)
    return (lambda v: any(_ANNOTATION_CHECKS[p](v) for p in parts)), " or ".join(
        {"int": "an integer", "float": "a number", "str": "a string", "bool": "true or false", "None": "null"}[p]
        for p in parts)


def _sampler(where: str, entry: Any) -> None:
    _mapping(where, entry)
    if not isinstance(entry.get("name"), str):
        _fail(f"{where}.name", entry.get("name"), "a sampler name (a string)")
    types = {f.name: f.type for f in dataclasses.fields(SamplerConfig)}
    for key, value in entry.items():
        if key not in types:
            continue  # expand() names the unknown key and the valid ones
        check, want = _field_check(types[key])
        values = value if isinstance(value, list) and key != "name" else [value]  # a list is an axis
        for i, item in enumerate(values):
            if check is not None and not check(item):
                _fail(f"{where}.{key}" + (f"[{i}]" if values is value else ""), item,
                      want + (" (or a list of them: an axis)" if key != "name" else ""))


def _method(where: str, entry: Any) -> None:
    if isinstance(entry, str):
        return
    if not isinstance(entry, dict):
        _fail(where, entry, "a method name or a mapping {name: ..., options: {...}, train: {...}}")
    _mapping(where, entry)
    if not isinstance(entry.get("name"), str):
        _fail(f"{where}.name", entry.get("name"), "a method name (a string)")
    for key in ("options", "train"):
        if entry.get(key) is not None:
            _mapping(f"{where}.{key}", entry[key])


def _task(where: str, entry: Any) -> None:
    if isinstance(entry, str):
        return
    if not isinstance(entry, dict):
        _fail(where, entry, "a task name or a mapping {name: ..., n: ..., options: {...}}")
    _mapping(where, entry)
    if not isinstance(entry.get("name"), str):
        _fail(f"{where}.name", entry.get("name"), "a task name (a string)")
    for key in ("n", "candidates"):
        if key in entry and not (_is_int(entry[key]) and entry[key] >= 1):
            _fail(f"{where}.{key}", entry[key], "an integer >= 1")
    if entry.get("limit") is not None and not (_is_int(entry["limit"]) and entry["limit"] >= 1):
        _fail(f"{where}.limit", entry["limit"], "an integer >= 1 or null")
    if entry.get("options") is not None:
        _mapping(f"{where}.options", entry["options"])
    if "scorers" in entry:
        _strings(f"{where}.scorers", entry["scorers"])
    if entry.get("seeding") is not None and not isinstance(entry["seeding"], str):
        _fail(f"{where}.seeding", entry["seeding"], "a string (batch or row)")


def _executor(value: Any) -> None:
    _mapping("executor", value)
    if "kind" in value and not isinstance(value["kind"], str):
        _fail("executor.kind", value["kind"], "a string (local, slurm or debug)")
    if "timeout_min" in value and not (_is_number(value["timeout_min"]) and value["timeout_min"] > 0):
        _fail("executor.timeout_min", value["timeout_min"], "a number of minutes > 0")
    if value.get("slurm") is not None:
        for key, item in _mapping("executor.slurm", value["slurm"]).items():
            if isinstance(item, (list, dict)):
                _fail(f"executor.slurm.{key}", item, "a single value")


def check_experiment(raw: Any) -> None:
    """Every key's type and every axis item's type; one ConfigError line for the first bad one."""
    if not isinstance(raw, dict):
        _fail("the file", raw, "a mapping of keys (name, methods, samplers, tasks, ...)")
    _mapping("the file", raw)
    for key in ("name", "preset"):
        if key in raw and (not isinstance(raw[key], str) or not raw[key]):
            _fail(key, raw[key], "a non-empty string")
    for key in ("model", "data", "train", "tune"):  # tune: its inner keys are the tuner's to check
        if raw.get(key) is not None:
            _mapping(key, raw[key])
    for key in ("methods", "samplers", "tasks"):
        if key not in raw:
            raise ConfigError(f"experiment has no '{key}' (an empty axis expands to zero runs); {EXAMPLE[key]}")
        _axis(key, raw[key], EXAMPLE[key])
    for i, entry in enumerate(raw["methods"]):
        _method(f"methods[{i}]", entry)
    for i, entry in enumerate(raw["samplers"]):
        _sampler(f"samplers[{i}]", entry)
    for i, entry in enumerate(raw["tasks"]):
        _task(f"tasks[{i}]", entry)
    if "seeds" in raw:
        seeds = raw["seeds"] if isinstance(raw["seeds"], list) else [raw["seeds"]]
        if not seeds:
            raise ConfigError(f"experiment: seeds is empty (an empty axis expands to zero runs); {EXAMPLE['seeds']}")
        for i, seed in enumerate(seeds):
            if not _is_int(seed) or seed < 0:
                _fail("seeds" + (f"[{i}]" if isinstance(raw["seeds"], list) else ""), seed,
                      f"an integer >= 0 ({EXAMPLE['seeds']})")
    for key in ("protocol", "plugins"):
        if raw.get(key) is not None:
            _strings(key, raw[key])
    if raw.get("executor") is not None:
        _executor(raw["executor"])


def task_scorers(task: dict) -> list:
    """The scorers a task entry's runs use ([None]: a task that takes none)."""
    if not getattr(TASKS.get(task["name"]), "takes_scorers", False):  # an unknown task: one line naming the known
        return [None]
    scorers = task.get("scorers", ["smollm2"])
    return scorers if isinstance(scorers, list) else [scorers]


def check_tasks(tasks: list) -> None:
    """Every task entry built with its options (with each of its scorers) and its candidate
    count checked, as ``pathbench eval`` does before a model loads: a bad option is one line
    naming it and the valid values, before anything is trained or written."""
    for entry in tasks:
        task = {"name": entry} if isinstance(entry, str) else dict(entry)
        for scorer in task_scorers(task):
            options = dict(task.get("options") or {})
            if scorer is not None:  # a "self:@name" scorer: its kind is checked; its folder is the sweep's
                options["scorer"] = scorer
            check_candidates(check_task(task["name"], options), task["name"], int(task.get("candidates", 1)))
