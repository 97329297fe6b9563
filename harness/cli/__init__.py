"""The ``pathbench`` command line (:mod:`harness.cli.main`; one module per command group).
``python -m harness.cli`` runs it too (for torchrun)."""

from harness.cli.main import main

__all__ = ["main"]
