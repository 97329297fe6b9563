"""Scorers: causal language models that give the token-level NLL of texts, one protocol for every
scorer (:mod:`pathbench.tasks.scorers.causal_lm`), loaded by spec (:mod:`pathbench.tasks.scorers.load`).

Kinds: ``hf:<name or path>`` and ``self:<run folder>`` (:mod:`pathbench.tasks.scorers.causal_lm`),
``smollm2`` (the offline default, :mod:`pathbench.tasks.scorers.smollm2`) and ``oracle`` (the
HMM of an ``oracle:`` corpus, :mod:`pathbench.tasks.scorers.oracle`). Importing this package
registers each kind into ``pathbench.core.registry.SCORERS``.
"""

from pathbench.tasks.scorers.causal_lm import CausalScorer, HFScorer, SelfScorer
from pathbench.tasks.scorers.load import check_spec, load_scorer, scorer_for_data
from pathbench.tasks.scorers.oracle import OracleScorer
from pathbench.tasks.scorers.smollm2 import SmolLM2Scorer

__all__ = ["CausalScorer", "HFScorer", "OracleScorer", "SelfScorer", "SmolLM2Scorer", "check_spec", "load_scorer",
           "scorer_for_data"]
