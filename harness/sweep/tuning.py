"""Tuning inside the budget: a stage of a sweep that searches every method's training recipe
and learning rate on the same grid, with the same steps and seed, before any seed is trained.

    tune:
      grid: {lr: [3.0e-3, 1.0e-2, 3.0e-2], optimizer: [adamw, kl-flow-muon]}  # train keys -> values
      steps: 30            # each candidate's budget (default: the experiment's train.steps)
      seed: 0
      select: val_loss     # the held-out loss of the method's own objective, the only rule
      methods: [kl, dfm]   # default: every method of the file
      chosen:              # pinned choices (method -> train keys), so a sweep need not tune again
        kl: {lr: 3.0e-2, optimizer: kl-flow-muon}
        flowmap@kl: {lr: 1.0e-3, optimizer: adamw}   # a flow-map student: name@teacher
      from: results/NAME/tuning/tuning.json   # the tuning result the pins came from

Every candidate is an ordinary training unit (resumed, skipped when complete, its id the hash
of what it trains) in the sweep's ``train/`` folder; a candidate that diverges is recorded as
such, never the sweep's failure. The selection rule compares candidates *within* a method — a
held-out loss is never compared across methods (their objectives differ). The chosen keys enter
each method's units as explicit train keys (over the protocol's recipe), and the unit's record
says ``tuned``. The result — ``tuning/tuning.json``, ``tuning.csv``, ``tuning.md`` and the
sensitivity plot ``tuning.png`` (held-out loss against lr per method and recipe) — flags a
choice at the edge of the grid: the best may lie outside it.

Flow-map students (``{name: flowmap, options: {teacher: "@kl"}}``) are tuned on the same grid,
steps and seed, in a second round after their teachers: once each teacher's choice is selected,
every candidate of a student distils the teacher's *chosen tuning candidate* (the student's
expansion with the teacher pinned to its choice gives that very unit, already trained, so only
students train) and is selected by its own held-out loss (the distillation objective, against
that teacher). A student is tuned and pinned under ``name@teacher`` (``flowmap@kl``), its tuned
keys override its per-method ``train:`` keys, and its rows join the same table, naming the
teacher unit. A sweep folder whose tuning lacks a student (made before students were tuned)
tunes again: the complete candidates are skipped, so only the students train.
"""

from __future__ import annotations

import itertools
import json
import math
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from pathbench.core.config import apply_overrides, canonical_keys
from pathbench.core.errors import ConfigError
from pathbench.core.registry import METHODS
from pathbench.engine.learning import read_check
from pathbench.engine.trainer import TrainConfig
from pathbench.sweep.progress import train_complete

SELECT_RULES = ("val_loss",)
TUNE_KEYS = {"grid", "steps", "seed", "select", "methods", "chosen", "from"}
#: keys a grid may search: how a method is optimised, not what it is (steps and batch are the budget)
TUNABLE = ("lr", "optimizer", "weight_decay", "warmup", "min_lr_ratio", "grad_clip")


@dataclass(frozen=True)
class TuneSpec:
    """An experiment's ``tune:`` block, validated."""

    grid: dict[str, list]
    steps: int | None
    seed: int
    select: str
    methods: list[str] | None
    chosen: dict[str, dict] = field(default_factory=dict)
    source: str | None = None

    def candidates(self) -> list[dict]:
        keys = sorted(self.grid)
        return [dict(zip(keys, values)) for values in itertools.product(*(self.grid[k] for k in keys))]

    def covers(self, method: str) -> bool:
        """Whether the search covers a method, by its tune name (``flowmap`` covers ``flowmap@kl``)."""
        return self.methods is None or method in self.methods or method.split("@")[0] in self.methods


def parse_tune(raw: Any, method_names: list[str]) -> TuneSpec | None:
    """The ``tune:`` block of an experiment (None: no tuning; ``method_names``: the file's methods by
    :func:`tune_name`); every mistake is one line."""
    if raw is None:
        return None
    if not isinstance(raw, dict):
        raise ConfigError(f"tune must be a mapping (grid, steps, seed, select, methods, chosen, from), got {raw!r}")
    unknown = sorted(set(raw) - TUNE_KEYS)
    if unknown:
        raise ConfigError(f"unknown key '{unknown[0]}' in tune; valid: {', '.join(sorted(TUNE_KEYS))}")
    grid = raw.get("grid")
    if not isinstance(grid, dict) or not grid:
        raise ConfigError("tune.grid is empty: name at least one train key and its values, e.g. {lr: [1.0e-3, 3.0e-3]}")
    grid = canonical_keys(TrainConfig, dict(grid), "tune.grid")
    for key, values in grid.items():
        if key not in TUNABLE:
            raise ConfigError(f"tune.grid cannot search '{key}'; tunable keys: {', '.join(TUNABLE)}")
        values = values if isinstance(values, list) else [values]
        if not values:
            raise ConfigError(f"tune.grid.{key} is empty (an empty axis tunes nothing); give at least one value")
        for value in values:  # each value type-checked (and a recipe name looked up) now
            apply_overrides(TrainConfig(), {key: value}, "tune.grid")
        grid[key] = values
    select = raw.get("select", "val_loss")
    if select not in SELECT_RULES:
        raise ConfigError(f"unknown selection rule '{select}'; known: {', '.join(SELECT_RULES)}")
    steps, seed = raw.get("steps"), raw.get("seed", 0)
    for name, value in (("steps", steps), ("seed", seed)):
        if value is not None and (isinstance(value, bool) or not isinstance(value, int) or value < (name == "steps")):
            raise ConfigError(f"tune.{name} = {value!r} must be a whole number{' >= 1' if name == 'steps' else ''}")
    methods = raw.get("methods")
    if methods is not None:
        if not isinstance(methods, list) or not all(isinstance(m, str) for m in methods) or not methods:
            raise ConfigError(f"tune.methods = {methods!r} must be a non-empty list of the file's method names")
        for name in methods:  # a student by its tune name (flowmap@kl), or every one of a method (flowmap)
            if name not in method_names and name not in {n.split("@")[0] for n in method_names}:
                raise ConfigError(f"tune.methods names '{name}', not a method of this file; "
                                  f"its methods: {', '.join(method_names)}")
    chosen = raw.get("chosen") or {}
    if not isinstance(chosen, dict):
        raise ConfigError(f"tune.chosen must map method names to train keys, got {chosen!r}")
    pinned = {}
    for name, keys in chosen.items():
        if name not in method_names:
            raise ConfigError(f"tune.chosen names '{name}', not a method of this file; its methods: "
                              f"{', '.join(method_names)}")
        keys = canonical_keys(TrainConfig, dict(keys or {}), f"tune.chosen.{name}")
        extra = sorted(set(keys) - set(grid))
        if extra or not keys:
            raise ConfigError(f"tune.chosen.{name} must give the grid's keys ({', '.join(sorted(grid))}), "
                              f"got {sorted(keys)}")
        apply_overrides(TrainConfig(), keys, f"tune.chosen.{name}")
        pinned[name] = keys
    source = raw.get("from")
    return TuneSpec(grid, steps, int(seed), select, methods, pinned, None if source is None else str(source))


def final_val_loss(train_dir: Path) -> float | None:
    """The last held-out loss a unit logged (the trainer evaluates at its final step)."""
    try:
        lines = (train_dir / "metrics.jsonl").read_text().splitlines()
    except OSError:
        return None
    for line in reversed(lines):
        record = json.loads(line)
        if "val_loss" in record:
            return float(record["val_loss"])
    return None


def select(rows: list[dict], spec: TuneSpec) -> dict[str, dict]:
    """Each method's best candidate by held-out loss (finite ones only), with an edge flag."""
    chosen: dict[str, dict] = {}
    for method in dict.fromkeys(r["method"] for r in rows):
        mine = [r for r in rows if r["method"] == method and r["val_loss"] is not None
                and math.isfinite(r["val_loss"])]
        if not mine:
            raise ConfigError(f"no tuning candidate of '{method}' finished with a finite held-out loss; "
                              "widen tune.grid toward smaller learning rates")
        best = min(mine, key=lambda r: r["val_loss"])
        lrs = spec.grid.get("lr", [])
        edge = ["lr"] if len(lrs) > 1 and best["lr"] in (min(lrs), max(lrs)) else []
        chosen[method] = {"keys": {k: best[k] for k in spec.grid}, "val_loss": best["val_loss"],
                          "unit": best["unit"], "at_edge": edge}
    return chosen


def tune_name(entry: Any) -> str:
    """The name a method entry is tuned, pinned and listed under: its name, and for a flow-map
    student its teacher too (``flowmap@kl``: two students of one method are tuned apart)."""
    name = str(entry if isinstance(entry, str) else entry.get("name") if isinstance(entry, dict) else entry)
    return f"{name}@{entry['options']['teacher'][1:]}" if is_student(entry) else name


def is_student(entry: Any) -> bool:
    """A flow-map student (``teacher: "@name"``): tuned after its teacher, against the teacher's choice."""
    teacher = (entry.get("options") or {}).get("teacher") if isinstance(entry, dict) else None
    return isinstance(teacher, str) and teacher.startswith("@")


def _tuning_train(raw: dict, spec: TuneSpec) -> dict:
    return {**(raw.get("train") or {}), **({"steps": spec.steps} if spec.steps else {})}


def tuning_experiment(raw: dict, spec: TuneSpec, expand) -> tuple[list, list[dict]]:
    """(units, rows) of the first round: every candidate of every tuned method that trains on its
    own as an ordinary training unit (the experiment's own expansion with the candidate pinned, one
    seed, the tuning budget). Flow-map students follow in :func:`student_experiment`."""
    entries = [m for m in raw["methods"] if spec.covers(tune_name(m)) and not is_student(m)]
    units: dict[str, Any] = {}
    rows: list[dict] = []
    for candidate in spec.candidates() if entries else ():
        names_here = [m if isinstance(m, str) else m["name"] for m in entries]
        one = {**raw, "methods": entries, "seeds": [spec.seed], "train": _tuning_train(raw, spec),
               "tune": {"grid": spec.grid, "chosen": {n: candidate for n in names_here}}}
        for unit in expand(one, default_name="tuning").units:
            units.setdefault(unit.id, unit)
            rows.append({"method": unit.method, **candidate, "protocol": unit.protocol_name or "",
                         "unit": unit.id})
    return list(units.values()), rows


def student_experiment(raw: dict, spec: TuneSpec, expand, teachers: dict[str, dict]) -> tuple[list, list[dict]]:
    """(units, rows) of the second round: every candidate of every tuned flow-map student, each the
    experiment's own expansion of the student and its teacher with the teacher pinned to its choice
    (``teachers``: train keys by tune name), one seed, the tuning budget. The teacher's unit there
    is its chosen tuning candidate (the same keys, steps and seed: the same id), already trained
    in the first round, so only the students train; a row names the teacher unit it distilled."""
    units: dict[str, Any] = {}
    rows: list[dict] = []
    for entry in raw["methods"]:
        key = tune_name(entry)
        if not is_student(entry) or not spec.covers(key):
            continue
        teacher = entry["options"]["teacher"]
        mine = [m for m in raw["methods"] if not is_student(m) and _canonical(tune_name(m)) == _canonical(teacher[1:])]
        covered = [tune_name(m) for m in mine if spec.covers(tune_name(m))]
        pinned = {n: teachers[n] for n in covered if n in teachers}  # a missing one: expand says so
        for candidate in spec.candidates():
            one = {**raw, "methods": [*mine, entry], "seeds": [spec.seed], "train": _tuning_train(raw, spec),
                   "tune": {"grid": spec.grid, "methods": [*covered, key], "chosen": {**pinned, key: candidate}}}
            expanded = expand(one, default_name="tuning").units
            for unit in expanded:
                units.setdefault(unit.id, unit)
            for unit in (u for u in expanded if u.options.get("teacher") == teacher):
                # the unit the sweep's dispatcher gives it (pathbench.sweep.dispatch._own_unit)
                found = [u for u in expanded if u.method == _canonical(teacher[1:]) and u.seed == unit.seed]
                same = [u for u in found if u.protocol_name == unit.protocol_name]
                rows.append({"method": key, **candidate, "protocol": unit.protocol_name or "", "unit": unit.id,
                             "teacher": (same or found)[0].id if found else None})
    return list(units.values()), rows


def _canonical(name: str) -> str:
    return METHODS.canonical(name) if name in METHODS else name


def read_rows(rows: list[dict], out_dir: Path, steps: dict[str, int]) -> None:
    """Fill each candidate row from its unit's training folder: its final held-out loss (None
    where it did not finish: diverged or failed), its status and its learning check."""
    for row in rows:
        folder = Path(out_dir) / "train" / row["unit"]
        complete = train_complete(folder, steps[row["unit"]])
        row["val_loss"] = final_val_loss(folder) if complete else None
        row["status"] = "complete" if complete else "diverged or failed"
        check = read_check(folder)
        row["learned"] = None if check is None else check.get("learned")


def tuning_dir(sweep_dir: Path, experiment: str) -> Path:
    """Where a sweep folder keeps one experiment's tuning (two experiments may share a folder)."""
    return Path(sweep_dir) / "tuning" / "".join(c if c.isalnum() or c in "-_." else "-" for c in experiment)


def read_tuned(sweep_dir: Path, experiment: str) -> dict[str, dict] | None:
    """The chosen train keys per method of one experiment's tuning in a sweep folder, or None."""
    path = tuning_dir(sweep_dir, experiment) / "tuning.json"
    if not path.is_file():
        return None
    return tuned_keys(json.loads(path.read_text())["chosen"])


def tuned_keys(chosen: dict[str, dict]) -> dict[str, dict]:
    """Each method's chosen train keys from a tuning record's ``chosen`` (method -> choice)."""
    return {method: choice["keys"] for method, choice in chosen.items()}
