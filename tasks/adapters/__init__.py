"""Task adapters: a run generating for a task and the task's metrics computed on what it generated.

* :mod:`pathbench.tasks.adapters.base`: the task contract (``Task``, ``ExampleTask``, ``EvalSettings``).
* :mod:`pathbench.tasks.adapters.unconditional`: gen-PPL and entropy of unconditional samples,
  with the reference row of real held-out text (:mod:`pathbench.tasks.adapters.reference`).
* :mod:`pathbench.tasks.adapters.seq2seq`: headline/lead, WMT14 de-en, LaMini (BLEU, ROUGE-L, BERTScore).
* :mod:`pathbench.tasks.adapters.code`: the code-infilling tasks (Pass@k, Compiles@k) on the machinery of
  :mod:`pathbench.tasks.adapters.infill`; the stdlib problems are built and recorded by
  :mod:`pathbench.tasks.adapters.code_problems` and :mod:`pathbench.tasks.adapters.code_recorder`.

Importing this package registers each task into ``pathbench.core.registry.TASKS``.
"""

from pathbench.tasks.adapters import code, seq2seq, unconditional  # noqa: F401  (registration side effects)
