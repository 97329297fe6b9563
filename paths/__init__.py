"""Interpolation paths between a noise prior and a data token (pure math, no model).

Importing this package registers every path into ``harness.core.registry.PATHS``:
``linear``, ``fisher_rao``, ``fisher_rao_ref`` (the KL-flow reference's clock), ``kl``, ``euclidean``. See :mod:`paths.base` for the contract.
"""

from paths import fisher_rao, fisher_rao_reference, kl, linear  # noqa: F401  (registration side effects)
from paths.base import SimplexPath, time_grid

__all__ = ["SimplexPath", "time_grid"]
