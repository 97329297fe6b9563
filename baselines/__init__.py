"""Trainable generators that are not simplex paths (dfm, sedd, ar).

Each module registers itself into ``harness.registry.BASELINES`` with a decorator.
"""
