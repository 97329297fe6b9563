"""Tasks, by concern:

* :mod:`pathbench.tasks.adapters`: the task adapters, a run generating for a task and scored
  under its protocol: unconditional (gen-PPL, entropy), seq2seq (BLEU/ROUGE-L/BERTScore), code
  infilling (Pass@k, Compiles@k); the contract is :mod:`pathbench.tasks.adapters.base`.
* :mod:`pathbench.tasks.scorers`: the causal LMs that score text (hf, smollm2, self, the oracle
  HMM), loaded by spec.
* :mod:`pathbench.tasks.metrics`: the text and pass@k metrics the tasks compute.
* :mod:`pathbench.tasks.sandbox`: where model-written code runs.

Importing this package registers each task into ``pathbench.core.registry.TASKS`` and each scorer
kind into ``SCORERS``. A task computes its metrics itself (the functions of its modules): no
metric is looked up by name. Tasks reach methods only through the registry. The lm-eval model
adapter is an integration, :mod:`pathbench.integrations.lmeval`.

A module imported by its name from before the split (``pathbench.tasks.base``,
``pathbench.tasks.lmeval``, ...) fails with one line naming its module now.
"""

if __name__ != "pathbench.tasks":  # the repository's folder tasks/ on sys.path (e.g. the cwd): not a package
    raise ImportError(f"pathbench's modules moved: import pathbench.tasks, not {__name__}")

import sys
from importlib.abc import MetaPathFinder

from pathbench.tasks import adapters, scorers  # noqa: F401  (registration side effects)
from pathbench.tasks.adapters.base import EvalSettings, Example, ExampleTask, Task, check_generations
from pathbench.tasks.scorers import CausalScorer, load_scorer

__all__ = ["Task", "ExampleTask", "Example", "EvalSettings", "check_generations", "CausalScorer", "load_scorer"]

#: the modules' names before tasks/ was split by concern -> their names now
MOVED = {f"pathbench.tasks.{old}": new for old, new in [
    ("base", "pathbench.tasks.adapters.base"), ("unconditional", "pathbench.tasks.adapters.unconditional"),
    ("reference", "pathbench.tasks.adapters.reference"), ("seq2seq", "pathbench.tasks.adapters.seq2seq"),
    ("infill", "pathbench.tasks.adapters.infill"), ("code", "pathbench.tasks.adapters.code"),
    ("code_problems", "pathbench.tasks.adapters.code_problems"),
    ("code_recorder", "pathbench.tasks.adapters.code_recorder"),
    ("causal_lm", "pathbench.tasks.scorers.causal_lm"), ("smollm2", "pathbench.tasks.scorers.smollm2"),
    ("oracle_scorer", "pathbench.tasks.scorers.oracle"),
    ("text_metrics", "pathbench.tasks.metrics.text"), ("passk", "pathbench.tasks.metrics.passk"),
    ("lmeval", "pathbench.integrations.lmeval"),
]}


class MovedModule(MetaPathFinder):
    """Finds no module: an old name (``MOVED``) fails with one line naming the new one, so a
    plugin written against it is told where to look and no module answers to two names."""

    def find_spec(self, name, path=None, target=None):
        if name in MOVED:
            raise ImportError(f"pathbench's modules moved: import {MOVED[name]}, not {name}")
        return None


if not any(type(finder).__name__ == MovedModule.__name__ for finder in sys.meta_path):
    sys.meta_path.insert(0, MovedModule())  # first: an installed older copy must not answer to the old name
