"""pathbench harness: registry, config, shared backbone, trainer, data, sampler driver, CLI."""
