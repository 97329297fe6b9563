"""The ``pathbench`` command line (:mod:`pathbench.cli.main`; one module per command group).
``python -m pathbench.cli`` runs it too (for torchrun)."""

from pathbench.cli.main import main

__all__ = ["main"]
