"""Task adapters and metrics (unconditional, seq2seq, code infilling).

Each module registers itself into ``harness.registry.TASKS`` / ``METRICS`` / ``SCORERS``.
"""
