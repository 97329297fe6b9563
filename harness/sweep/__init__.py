"""Layer 5, sweep: experiment files expanded into training units and runs, dispatched through
submitit (local, SLURM, debug) with dependencies, progress and resumption. Imports evaluation
and below."""
