"""Layer 3, engine: the shared backbone, the method contract (paths and baselines as
trainable methods), the sampler driver and generation protocols, the trainer, checkpoints,
and the run folder (train, load, sample). Imports core, data and the ``paths`` package."""
