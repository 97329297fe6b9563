"""Layer 1, core: what every other layer stands on and which imports nothing of pathbench —
errors, the component registries, configuration values, atomic files and locks, devices and
the bootstrap statistics."""
