"""Scorers for generative perplexity by spec, one protocol for every scorer
(:mod:`pathbench.tasks.scorers.causal_lm`).

Specs: ``hf:<name or local path>`` (any transformers causal LM: gpt2, gpt2-large, Llama-2
where the user has them), ``smollm2`` (offline default: SmolLM2-135M-Instruct quantised to 4
bits, :mod:`pathbench.tasks.scorers.smollm2`), ``self:<run folder>`` (the project's own autoregressive baseline
as a second opinion), and registered kinds (``oracle:...``, :mod:`pathbench.tasks.scorers.oracle`).
"""

from __future__ import annotations

from pathbench.core.errors import ConfigError
from pathbench.core.registry import SCORERS
from pathbench.tasks.scorers.causal_lm import CausalScorer, HFScorer, SelfScorer, check_placement
from pathbench.tasks.scorers.smollm2 import SmolLM2Scorer

_cache: dict[tuple, CausalScorer] = {}

KNOWN = "smollm2, hf:<name or path>, self:<run folder>, oracle (an oracle: corpus's own HMM)"


def _kind(spec: str) -> str:
    return spec.partition(":")[0]


def check_spec(spec: object) -> str:
    """``spec`` when it names a scorer kind (before anything is loaded or generated)."""
    if not isinstance(spec, str) or _kind(spec) not in SCORERS or spec.endswith(":") \
            or (_kind(spec) in ("hf", "self") and ":" not in spec) or (spec.startswith("smollm2") and spec != "smollm2"):
        raise ConfigError(f"unknown scorer '{spec}'; known: {KNOWN}")
    return spec


def scorer_for_data(spec: str, data_cfg: dict) -> str:
    """The spec that scores samples of a run with ``data_cfg`` (its meta.json ``data``): a scorer
    kind with a ``bind`` binds to the run's data (``oracle`` -> the HMM of the run's corpus, and
    refuses another corpus); the others are the spec itself."""
    bind = getattr(SCORERS.get(_kind(check_spec(spec))), "bind", None)
    return bind(spec, data_cfg) if bind is not None else spec


def load_scorer(spec: str, device: str = "cpu", dtype: str = "float32",
                device_map: str | None = None) -> CausalScorer:
    """A scorer by spec, cached per process and placement (SmolLM2: ≈1 s from its de-quantised
    cache). ``dtype`` and ``device_map`` place a transformers scorer (hf:, smollm2); the
    project's own models (self:, oracle:) take the device only."""
    check_placement(dtype, device_map)
    key = (spec, str(device), dtype, device_map)
    if key not in _cache:
        # every kind, built-in or a plugin's, is a CausalScorer class registered under its kind
        _cache[key] = SCORERS.get(_kind(check_spec(spec))).load(spec, device, dtype, device_map)
    return _cache[key]


SCORERS.add("smollm2", SmolLM2Scorer)
SCORERS.add("hf", HFScorer)
SCORERS.add("self", SelfScorer)
