"""Metrics a task computes on what a run generated (a task calls them itself: no metric is looked
up by name).

* :mod:`pathbench.tasks.metrics.text`: BLEU (sacrebleu), ROUGE-L, BERTScore; Top-k / Avg over
  candidates and bootstrap intervals over prompts.
* :mod:`pathbench.tasks.metrics.passk`: pass@k and compiles@k (the unbiased estimator) and their
  bootstrap intervals over problems.
"""
