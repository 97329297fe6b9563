"""Layer 5, studies: the diagnostics and tuning commands built on the engine — the KL curve,
the posterior gap, the time warp (``reparam``), t* tuning, the flow-map gap and the benchmarks.
Imports evaluation and below."""
