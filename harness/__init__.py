"""pathbench: compare discrete generative paths for non-autoregressive text generation.

The package a user scripts against, as ``flow_matching`` and ``lm_eval`` expose theirs::

    import pathbench

    run = pathbench.load_run("runs/kl")              # method, model, tokenizer, meta, step, folder
    pathbench.sample_run("runs/kl", "samples.jsonl", n=8, sampler={"name": "basic", "nfe": 64})
    pathbench.eval_run("runs/kl", "unconditional", "out/kl", sampler={"name": "basic", "nfe": 64})
    pathbench.load_exported("hf/kl")                 # a Hub export (pathbench export), as a run
    pathbench.PathbenchModel.from_pretrained("hf/kl")  # the same, as a Hub model that samples
    pathbench.METHODS.names()                        # every registry: PATHS, METHODS, TASKS, ...

Importing it registers every built-in component (paths, methods, tasks, scorers, protocols,
recipes, loggers) and the entry-point plugins (group ``pathbench.plugins``): the registries fill
themselves on their first read, so ``pathbench --help`` still answers without importing torch.
It also registers the lm-eval model ``pathbench`` (:mod:`pathbench.integrations`; lazily, no
torch), so ``lm_eval.simple_evaluate(model="pathbench", ...)`` works after ``import pathbench``.
The functions above load on first use (they import torch). The layers below (README "Layout"):
core, data, engine, evaluation, then sweep, studies, report and integrations, then cli; a layer
imports only the ones below it. ``pathbench.paths``, ``pathbench.baselines``, ``pathbench.tasks``
and ``pathbench.integrations`` are the repository's folders of those names.
"""

if __name__ != "pathbench":  # the repository's folder harness/ on sys.path (e.g. the cwd): not a package
    raise ImportError(f"pathbench's modules moved: import pathbench.<module>, not {__name__}.<module>")

import importlib

from pathbench import integrations  # noqa: F401  (registers the lm-eval model "pathbench", lazily)
from pathbench.core.errors import ConfigError
from pathbench.core.registry import (
    LOGGERS,
    METHODS,
    PATHS,
    PROTOCOLS,
    RECIPES,
    SCORERS,
    TASKS,
    Registry,
    fill_on_first_read,
)
from pathbench.engine.plugins import load_all, load_plugins

fill_on_first_read(load_all)

#: the public functions and classes, by the module that defines them (imported on first use: torch)
LAZY = {
    "load_run": "pathbench.engine.run",
    "train_run": "pathbench.engine.run",
    "sample_run": "pathbench.engine.run",
    "LoadedRun": "pathbench.engine.run",
    "eval_run": "pathbench.evaluation.evaluate",
    "load_scorer": "pathbench.tasks.scorers",
    "export_run": "pathbench.engine.hub",
    "load_exported": "pathbench.engine.hub",
    "PathbenchModel": "pathbench.engine.hub",  # huggingface_hub's PyTorchModelHubMixin: from_pretrained
    "PathbenchLM": "pathbench.integrations.lmeval",  # lm-eval's model class (the [eval] extra)
}

__all__ = ["ConfigError", "Registry", "PATHS", "METHODS", "TASKS", "SCORERS", "PROTOCOLS", "RECIPES", "LOGGERS",
           "load_all", "load_plugins", *LAZY]


def __getattr__(name: str):
    if name not in LAZY:
        raise AttributeError(f"module 'pathbench' has no attribute '{name}'")
    value = getattr(importlib.import_module(LAZY[name]), name)
    globals()[name] = value  # once: later reads do not come here
    return value


def __dir__() -> list[str]:
    return sorted(set(globals()) | set(LAZY))
