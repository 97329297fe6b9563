"""Task adapters and metrics: unconditional (gen-PPL, entropy), seq2seq (BLEU/ROUGE-L/
BERTScore), code infilling (Pass@k, Compiles@k); scorers: causal LMs and the oracle HMM.

Importing this package registers each task into ``harness.core.registry.TASKS`` and each scorer
kind into ``SCORERS``. A task computes its metrics itself (the functions of its modules): no
metric is looked up by name. Tasks reach methods only through the registry.
"""

from tasks import code, oracle_scorer, scorers, seq2seq, unconditional  # noqa: F401  (registration side effects)
