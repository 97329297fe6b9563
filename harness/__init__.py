"""pathbench harness, in layers (README "Layout"): core, data, engine, evaluation, then sweep,
studies and report, then cli; a layer imports only the ones below it."""
