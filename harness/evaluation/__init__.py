"""Layer 4, evaluation: a loaded run generating for a registered task and scored under its
written metric protocol. Imports engine (and below) and the ``tasks`` package."""
