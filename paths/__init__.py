"""Interpolation paths between a noise prior and a data token (pure math, no model).

Importing this package registers every path into ``pathbench.core.registry.PATHS``:
``linear``, ``fisher_rao``, ``fisher_rao_ref`` (the KL-flow reference's clock), ``kl``, ``euclidean``. See :mod:`pathbench.paths.base` for the contract.
"""

if __name__ != "pathbench.paths":  # the repository's folder paths/ on sys.path (e.g. the cwd): not a package
    raise ImportError(f"pathbench's modules moved: import pathbench.paths, not {__name__}")

from pathbench.paths import fisher_rao, fisher_rao_reference, kl, linear  # noqa: F401  (registration side effects)
from pathbench.paths.base import SimplexPath, time_grid

__all__ = ["SimplexPath", "time_grid"]
