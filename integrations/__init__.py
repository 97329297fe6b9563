"""pathbench outside pathbench: a trained run as a model of other tools.

* :mod:`pathbench.integrations.lmeval`: a run as the lm-evaluation-harness model ``pathbench``.
* The Hugging Face Hub export (``pathbench export``, ``PathbenchModel.from_pretrained``) is
  :mod:`pathbench.engine.hub`: loading a run reads an export, so it lives in the engine.

This layer sits beside sweep, studies and report: it imports the layers below, and nothing
below imports it.
"""

if __name__ != "pathbench.integrations":  # the repository's folder integrations/ on sys.path: not a package
    raise ImportError(f"pathbench's modules moved: import pathbench.integrations, not {__name__}")
