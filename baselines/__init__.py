"""Trainable generators that are not simplex paths: dfm, sedd, ar, and flowmap (a student
distilled from a trained path).

Importing this package registers each into ``pathbench.core.registry.METHODS``; they train on the
shared backbone with the shared trainer and sample through ``pathbench sample``.
"""

if __name__ != "pathbench.baselines":  # the repository's folder baselines/ on sys.path (e.g. the cwd): not a package
    raise ImportError(f"pathbench's modules moved: import pathbench.baselines, not {__name__}")

from pathbench.baselines import ar, dfm, flowmap, sedd  # noqa: F401  (registration side effects)
