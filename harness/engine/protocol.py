"""Named generation protocols: one name fixes how every simplex path is trained and sampled.

* ``kl-flow`` — the KL-flow reference code (EgorSevriugov/KL-Flow), the default for new runs.
  Training draws t ~ U[0, t_max] with t_max = 0.3 (``method.t_max``) and uses the reference's
  training recipe, Muon on every ≥ 2-D parameter (``train.optimizer=kl-flow-muon``,
  :mod:`pathbench.engine.recipes`). Sampling integrates on
  [0, t_max] on a grid uniform in τ = −log(1−t) (``method.grid=log``); for the kl path every
  update is l ← (1−Δτ)·l + Δτ·E_w[l1] (``method.update=tau_euler``, kl only). After the last
  update the denoiser is called once more at t_max and its argmax is the sample
  (``sampler.final_at=t_max``, ``sampler.final=argmax``); top-k 1 in the sampling phase
  (``sampler.top_k=1``). NFE mapping: pathbench NFE = N + 1: N updates of the reference plus
  its final call at t_max.
* ``plain`` — the paper's text and pathbench's behaviour before protocols: t on [0, 1], a
  uniform grid, Euler updates, the full vocabulary, argmax at the last grid step
  (``final_at=last_step``). A run recorded without a protocol was made this way (and with
  AdamW: runs recorded before recipes name theirs in ``train.optimizer``). The paper's runs
  were trained by its reference code, so ``plain`` trains simplex paths with the same recipe as
  ``kl-flow`` (with AdamW on the dense simplex embedding neither the KL nor the Euclidean path
  learns to read x_t at V = 8,192 in a CPU budget); the two protocols differ in time only.

A protocol's method and training settings reach only simplex-path methods (:class:`PathMethod`),
and a key only where that path takes it (``update``: kl); its sampler settings reach only the
simplex-path samplers (basic, semi, sampling, hybrid). Baselines (dfm, sedd, ar, flowmap,
plugins) keep their own defaults, and the record says so. An explicit key always wins and the
record lists it under ``overridden``.

A protocol is resolved once, where a name comes in (the CLI, a sweep's expansion, a run's
meta.json read back), into a :class:`GenerationProtocol`: a frozen record that every later step
takes as it is (it never looks the protocol up by name again). Its JSON form
(:meth:`GenerationProtocol.record`) — ``{"name", "method", "train", "sampler", "overridden"}``
plus ``not_applied`` reasons, ``tuned`` (a sweep's tuned recipe), ``trained_with`` when sampling
under another protocol than training, ``legacy`` for a run recorded before protocols — is stored
in meta.json, every sample record and every metrics.json as ``generation_protocol``.
"""

from __future__ import annotations

import copy
from dataclasses import dataclass, field, replace
from typing import Any, NamedTuple

from pathbench.core.errors import ConfigError
from pathbench.core.registry import METHODS, PROTOCOLS
from pathbench.engine.methods import Method, PathMethod
from pathbench.engine.sampling import SAMPLERS, SamplerConfig

DEFAULT = "kl-flow"  # new training runs reproduce the paper's reference code
LEGACY = "plain"     # what a run recorded before protocols existed was trained with


@dataclass(frozen=True)
class Protocol:
    """How to train and sample: method options and sampler defaults (never mutated)."""

    name: str
    description: str
    method: dict
    sampler: dict
    #: train keys (the training recipe) it sets for simplex-path methods
    train: dict = field(default_factory=dict)


PROTOCOLS.add("kl-flow", Protocol(
    "kl-flow", "the KL-flow reference code: t ~ U[0, 0.3], log-τ grid, tau-Euler kl update, "
               "top-k 1, final argmax call at t_max (NFE = reference N + 1), the reference's recipe (Muon on "
               "every matrix: kl-flow-muon)",
    method={"t_max": 0.3, "grid": "log", "update": "tau_euler"},
    sampler={"top_k": 1, "final": "argmax", "final_at": "t_max"},
    train={"optimizer": "kl-flow-muon"}))
PROTOCOLS.add("plain", Protocol(
    "plain", "the paper's text: t on [0, 1], uniform grid, Euler, full vocabulary, argmax at the last step, "
             "the reference's recipe (kl-flow-muon)",
    method={"t_max": 1.0, "grid": "uniform", "update": "euler"},
    sampler={"top_k": None, "final": "argmax", "final_at": "last_step"},
    train={"optimizer": "kl-flow-muon"}))


@dataclass(frozen=True)
class GenerationProtocol:
    """A protocol resolved for one method (and, once a sampler is chosen, for that sampler).

    Built only by the functions below, each of which returns a new record (``replace``): the
    dicts it holds are never changed after it is made. ``definition`` is the named protocol it
    was resolved from, so that a later step (the training keys, a sampler) reads its settings
    from the record instead of looking the name up again; only :meth:`record` is written out.
    """

    definition: Protocol
    #: method keys the protocol set: {key: value}
    method: dict
    #: sampler keys the protocol sets (before a sampler is chosen: what its path samplers default to)
    sampler: dict
    #: explicit keys that won over the protocol's: {"part.key": value}
    overridden: dict
    #: why a part or key was not applied: {"method" | "sampler" | "method.key": reason}; {} for none
    not_applied: dict = field(default_factory=dict)
    #: a sweep's tuned recipe (train keys given explicitly over the protocol's); None: not tuned
    tuned: dict | None = None
    #: train keys the protocol set; None: not resolved for training (sampling under another protocol)
    train: dict | None = None
    #: the protocol the run was trained with, when it is sampled under another one
    trained_with: str | None = None
    #: a run recorded before protocols existed (read as ``plain``)
    legacy: bool = False

    @property
    def name(self) -> str:
        return self.definition.name

    @property
    def applies_to_method(self) -> bool:
        """False for a method that is not a simplex path (dfm, sedd, ar, flowmap, plugins)."""
        return "method" not in self.not_applied

    def record(self) -> dict[str, Any]:
        """The JSON form stored as ``generation_protocol`` (a fresh copy; keys in the order the
        resolution adds them, optional ones only when set)."""
        out: dict[str, Any] = {"name": self.name, "method": self.method, "sampler": self.sampler,
                               "overridden": self.overridden}
        optional = {"not_applied": self.not_applied or None, "tuned": self.tuned, "train": self.train,
                    "legacy": self.legacy or None, "trained_with": self.trained_with}
        out.update({key: value for key, value in optional.items() if value is not None})
        return copy.deepcopy(out)

    @classmethod
    def from_record(cls, record: dict) -> GenerationProtocol:
        """The record a run stored (its meta.json ``generation_protocol``) read back: the one place
        where a stored protocol's name is looked up."""
        unknown = sorted(set(record) - RECORD_KEYS)
        if unknown:
            raise ConfigError(f"generation protocol record has unknown keys {unknown}; known: {sorted(RECORD_KEYS)}")
        record = copy.deepcopy(record)
        return cls(PROTOCOLS.get(record["name"]), record.get("method", {}), record.get("sampler", {}),
                   record.get("overridden", {}), record.get("not_applied", {}), record.get("tuned"),
                   record.get("train"), record.get("trained_with"), bool(record.get("legacy", False)))


RECORD_KEYS = {"name", "method", "sampler", "overridden", "not_applied", "tuned", "train", "trained_with", "legacy"}


class Sampling(NamedTuple):
    """What a loaded run is sampled with: the method (rebuilt under another protocol than its
    training one), the sampler and the protocol record they were resolved under."""

    method: Method
    sampler: SamplerConfig
    protocol: GenerationProtocol


def _path_method(method_name: str) -> type | None:
    """The method's class if it is a simplex path trained as a method, else None (a flow-map
    student is a PathMethod without a path of its own: its path options come from its teacher)."""
    cls = METHODS.get(method_name)
    return cls if isinstance(cls, type) and issubclass(cls, PathMethod) and cls.path_name else None


def resolve_method_options(method_name: str, protocol_name: str, explicit: dict) -> tuple[dict, GenerationProtocol]:
    """(method options, record): the protocol named ``protocol_name`` resolved for a method, its
    method settings under the explicit ones (an unknown name lists the known ones)."""
    protocol: Protocol = PROTOCOLS.get(protocol_name)
    cls = _path_method(method_name)
    if cls is None:
        reason = (f"'{METHODS.canonical(method_name)}' is not a simplex-path method; it keeps its own options, "
                  "training recipe and sampler defaults")
        return dict(explicit), GenerationProtocol(protocol, {}, {}, {}, {"method": reason})
    takes = cls.option_names()
    applied: dict[str, Any] = {}
    overridden: dict[str, Any] = {}
    not_applied: dict[str, str] = {}
    for key, value in protocol.method.items():
        if key in explicit:
            overridden[f"method.{key}"] = explicit[key]
        elif key in takes:
            applied[key] = value
        else:
            not_applied[f"method.{key}"] = f"'{METHODS.canonical(method_name)}' takes no '{key}'"
    # the sampler part: what its path samplers will default to
    record = GenerationProtocol(protocol, applied, dict(protocol.sampler), overridden, not_applied)
    return {**applied, **explicit}, record


def resolve_train_options(record: GenerationProtocol, explicit: dict) -> tuple[dict, GenerationProtocol]:
    """(train options, record): the protocol's training keys (its recipe) under the explicit
    ones, for a simplex-path method (a record whose method part was not applied gets none)."""
    overridden = dict(record.overridden)
    applied: dict[str, Any] = {}
    if record.applies_to_method:
        for key, value in record.definition.train.items():
            if key in explicit:
                overridden[f"train.{key}"] = explicit[key]
            else:
                applied[key] = value
    return {**applied, **explicit}, replace(record, overridden=overridden, train=applied)


def build_method(method_name: str, options: dict, record: GenerationProtocol) -> Method:
    """METHODS.build, with a hint when a value the protocol set (not the user) is refused."""
    try:
        return METHODS.build(method_name, **options)
    except ConfigError as err:
        applied = [f"{k}={v}" for k, v in record.method.items() if f"'{v}'" in str(err)]
        if not applied:
            raise
        raise type(err)(f"{err} (protocol '{record.name}' set {', '.join(applied)}; give the key "
                        f"explicitly or choose another protocol)") from err


def recorded(meta: dict) -> GenerationProtocol:
    """The protocol record of a trained run; a run from before protocols counts as ``plain``
    and every protocol key whose value differs from plain's must have been given explicitly."""
    if "generation_protocol" in meta:
        return GenerationProtocol.from_record(meta["generation_protocol"])
    plain: Protocol = PROTOCOLS.get(LEGACY)
    options = meta.get("method_options") or {}
    explicit = {k: options[k] for k, v in plain.method.items() if k in options and options[k] != v}
    _, record = resolve_method_options(meta["method"], LEGACY, explicit)
    return replace(record, legacy=True)


def protocol_name_of(meta: dict) -> str:
    """The protocol a run was trained with (``plain`` for a run recorded before protocols)."""
    return (meta.get("generation_protocol") or {}).get("name", LEGACY)


def for_sampling(method: Method, meta: dict, protocol_name: str | None) -> tuple[Method, GenerationProtocol]:
    """(method, record) to sample a loaded run under ``protocol_name`` (None: its own). Under
    another protocol the method is rebuilt from the run's options with that protocol's
    settings, except for keys that were explicit at training time."""
    trained = recorded(meta)
    if protocol_name is None or PROTOCOLS.get(protocol_name).name == trained.name:
        return method, trained
    explicit = {k.split(".", 1)[1]: v for k, v in trained.overridden.items() if k.startswith("method.")}
    options, record = resolve_method_options(meta["method"], protocol_name, explicit)
    if record.method:  # only a path method changes; a baseline is sampled as trained
        rebuilt = build_method(meta["method"], {**meta["method_options"], **options}, record)
        rebuilt.calibration = method.calibration
        method = rebuilt
    return method, replace(record, trained_with=trained.name)


def resolve_sampler(method: Method, record: GenerationProtocol, explicit: dict) -> tuple[dict, GenerationProtocol]:
    """(sampler spec, record): the protocol's sampler defaults under the explicit keys, for a
    simplex-path sampler of a path method; any other sampler keeps its own defaults."""
    name = explicit.get("name") or method.samplers[0]
    overridden = {k: v for k, v in record.overridden.items() if not k.startswith("sampler.")}
    if not (isinstance(method, PathMethod) and name in SAMPLERS):
        reason = (f"sampler '{name}' keeps its own defaults (protocol sampler settings are for "
                  f"{', '.join(SAMPLERS)} of simplex-path methods)")
        not_applied = {**record.not_applied, "sampler": reason}
        return dict(explicit), replace(record, sampler={}, overridden=overridden, not_applied=not_applied)
    applied: dict[str, Any] = {}
    for key, value in record.definition.sampler.items():
        if key in explicit:
            overridden[f"sampler.{key}"] = explicit[key]
        else:
            applied[key] = value
    return {**applied, **explicit}, replace(record, sampler=applied, overridden=overridden)


def sampling_setup(method: Method, meta: dict, protocol_name: str | None, explicit: dict) -> Sampling:
    """(method, sampler config, record) for sampling a loaded run: the one place where a
    command turns a protocol's name and the user's explicit sampler keys into what is sampled."""
    method, record = for_sampling(method, meta, protocol_name)
    spec, record = resolve_sampler(method, record, explicit)
    return Sampling(method, method.sampler_config(meta["method"], spec), record)
