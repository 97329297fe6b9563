"""Typed defaults with ``key=value`` overrides (the nanoGPT way, with errors that help).

Overrides on the command line name a section and a key: ``train.lr=3e-4``,
``model.n_layer=2``, ``data.seq_len=64``, ``method.beta=0.05``; a bare ``lr=3e-4`` means the
``train`` section. Values are parsed as int, float, bool, None, string, or a YAML flow list
or mapping (``ks=[1,10]``); a dataclass field
is converted to the type of its default, and an unknown key lists the valid ones.
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass, fields
from typing import Any, TypeVar

import yaml

from pathbench.core.cache import cache_root
from pathbench.core.errors import ConfigError

SECTIONS = ("train", "model", "data", "method")
T = TypeVar("T")


@dataclass
class DataConfig:
    """Where the tokens come from (see pathbench.data.corpus)."""

    corpus: str = "bbc"
    tokenizer: str = "bpe"
    vocab_size: int = 8192
    seq_len: int = 128
    val_fraction: float = 0.05
    #: "none" (unconditional), "lines" (hide a block of 10–90 % of each sequence's lines and
    #: give the rest: the code-infilling training objective) or "headline" (one row per
    #: document from its first token, its first line and the line breaks after it given, the
    #: rest generated: the headline -> lead objective; see pathbench.data.batches)
    given: str = "none"
    line_mask_min: float = 0.1
    line_mask_max: float = 0.9
    #: $PATHBENCH_CACHE or the user cache folder (pathbench.core.cache); not part of a run's id
    cache_dir: str = dataclasses.field(default_factory=lambda: str(cache_root()))
    #: the token budget: training tokens to prepare (the corpus is read only until the training
    #: split holds them); None: the whole corpus. A run needs steps × batch_size × grad_accum ×
    #: ranks × seq_len; more repeats no data, less repeats epochs (pathbench.data.corpus)
    max_tokens: int | None = None

    def __post_init__(self) -> None:
        if self.max_tokens is None:
            return
        try:
            value = float(self.max_tokens)
        except (TypeError, ValueError):
            value = float("nan")
        if isinstance(self.max_tokens, bool) or not value.is_integer() or value < 1:
            raise ConfigError(f"data.max_tokens = {self.max_tokens!r} must be a whole number of training tokens "
                              "(or none: the whole corpus)")
        self.max_tokens = int(value)


GIVEN_POLICIES = ("none", "lines", "headline")


@dataclass(frozen=True)
class HeadlineGiven:
    """The ``data.given=headline`` policy as a BatchLoader option (rows: pathbench.data.batches.DocumentRows).

    It trains on the training split only, the documents with ``not is_validation(doc,
    data.val_fraction)``; a ``headline_lead`` evaluation whose val_fraction is <= the run's (both
    0.05 by default) therefore never prompts with a trained document."""

    name: str = "headline"


def line_infill_option(cfg: DataConfig) -> tuple[float, float] | HeadlineGiven | None:
    """The BatchLoader ``line_infill`` option for a data config's ``given`` policy."""
    if cfg.given not in GIVEN_POLICIES:
        raise ConfigError(f"unknown data.given '{cfg.given}'; known: {', '.join(GIVEN_POLICIES)}")
    if cfg.given == "headline":
        return HeadlineGiven()
    return (cfg.line_mask_min, cfg.line_mask_max) if cfg.given == "lines" else None


def parse_value(text: str) -> Any:
    """'3' -> 3, '1e-3' -> 0.001, 'true' -> True, 'none' -> None, '[1,10]' -> [1, 10] (a YAML
    flow list or mapping, its items parsed the same way), anything else stays a str."""
    if text.strip()[:1] in ("[", "{"):
        return _parse_flow(text)
    lowered = text.strip().lower()
    if lowered in ("true", "false"):
        return lowered == "true"
    if lowered in ("none", "null"):
        return None
    for cast in (int, float):
        try:
            return cast(text)
        except ValueError:
            pass
    return text


def _parse_flow(text: str) -> list | dict:
    """A YAML flow collection; its string items go through :func:`parse_value`, so that
    ``[1e-3]`` is a float as ``1e-3`` is (YAML 1.1 would keep it a string)."""
    try:
        value = yaml.safe_load(text)
    except yaml.YAMLError as err:
        problem = getattr(err, "problem", None) or str(err).splitlines()[0]
        raise ConfigError(f"value '{text}' is not a YAML list or mapping ({problem}); "
                          "write e.g. [1,10] or {a: 1}") from err
    if isinstance(value, list):
        return [parse_value(v) if isinstance(v, str) else v for v in value]
    if isinstance(value, dict):
        return {k: parse_value(v) if isinstance(v, str) else v for k, v in value.items()}
    raise ConfigError(f"value '{text}' is not a YAML list or mapping; write e.g. [1,10] or {{a: 1}}")


def parse_overrides(items: list[str]) -> dict[str, dict[str, Any]]:
    """['lr=1e-3', 'model.n_layer=2'] -> {'train': {'lr': 0.001}, 'model': {'n_layer': 2}}."""
    out: dict[str, dict[str, Any]] = {section: {} for section in SECTIONS}
    for item in items:
        key, sep, value = item.partition("=")
        if not sep or not key:
            raise ConfigError(f"override '{item}' is not key=value")
        section, dot, name = key.partition(".")
        if not dot:
            section, name = "train", key
        if section not in SECTIONS:
            raise ConfigError(f"override '{item}': unknown section '{section}'; known: {', '.join(SECTIONS)}")
        out[section][name] = parse_value(value)
    return out


def _convert(value: Any, default: Any, name: str) -> Any:
    if isinstance(value, (list, dict)) and default is not None and not isinstance(default, (list, tuple, dict)):
        raise ConfigError(f"{name} = {value!r} must be a single value, not a {type(value).__name__}")
    if default is None or value is None or isinstance(default, str):
        return value if not isinstance(default, str) else str(value)
    if isinstance(default, bool):
        if not isinstance(value, bool):
            raise ConfigError(f"{name} = {value!r} must be true or false")
        return value
    if isinstance(default, (int, float)):
        if isinstance(value, bool) or not isinstance(value, (int, float)):
            raise ConfigError(f"{name} = {value!r} must be a number")
        if isinstance(default, int) and not float(value).is_integer():
            raise ConfigError(f"{name} = {value!r} must be an integer")
        return type(default)(value)
    return value


def canonical_keys(config: Any, values: dict[str, Any], section: str) -> dict[str, Any]:
    """``values`` with a dataclass's alias keys (its ``ALIASES``: train.recipe is train.optimizer)
    under their field names; the same setting given twice with two values is one line."""
    aliases = getattr(config, "ALIASES", {})
    for alias, key in aliases.items():
        if alias in values and key in values and values[alias] != values[key]:
            raise ConfigError(f"{section}.{alias} = {values[alias]!r} and {section}.{key} = {values[key]!r} name the "
                              f"same setting; give one")
    return {aliases.get(k, k): v for k, v in values.items()}


def apply_overrides(config: T, values: dict[str, Any], section: str) -> T:
    """A copy of the dataclass ``config`` with ``values`` set, each converted to its field type."""
    known = {f.name for f in fields(config)}
    values = canonical_keys(config, values, section)
    for key in values:
        if key not in known:
            raise ConfigError(f"unknown {section} option '{key}'; known: {', '.join(sorted(known))}")
    converted = {k: _convert(v, getattr(config, k), f"{section}.{k}") for k, v in values.items()}
    return dataclasses.replace(config, **converted)
