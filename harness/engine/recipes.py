"""Training recipes: which optimizer moves which parameters, at which learning rates.

A recipe is part of how a method is trained — like its time schedule — and so of what a
comparison measures: the KL path at V = 8,192 never learns to read x_t when its dense simplex
input embedding is trained by AdamW, and learns when it is trained by Muon as the KL-flow
reference trains it (the mechanism: a near-uniform x_t gives every embedding column nearly the
same gradient; AdamW's per-element normalisation moves the columns together, so the mean row,
added alike to every position, swamps the token's signal; Muon's orthogonalised update does not).
Every recipe is registered (``pathbench list``), chosen by the train key ``optimizer``
(``recipe`` is the same key), recorded in meta.json and every metrics.json, and searched like
the learning rate by an experiment's ``tune:`` block (:mod:`pathbench.sweep.tuning`).

``lr`` (the train key) is the recipe's *primary* learning rate; a recipe that runs two
optimizers derives the second from it by a fixed ratio, so one lr axis tunes both and the ratio
stays the reference's. The trainer's warm-up + cosine schedule scales every group alike.

* ``adamw`` — AdamW (β 0.9/0.95) on every parameter; weight decay on the ≥ 2-D ones
  (embeddings and head included), none on vectors. pathbench's default.
* ``muon`` — ``torch.optim.Muon`` (RMS matched to AdamW) on the blocks' attention and MLP
  matrices only; AdamW as above on the rest (embeddings, head, time MLP, adaLN, norms).
* ``kl-flow-muon`` — the KL-flow reference's grouping (EgorSevriugov/KL-Flow ``train_fm.py``,
  the ``muon`` package's ``MuonWithAuxAdam``): Muon on **every** parameter with ≥ 2 dimensions
  — the V×d input embedding, the output head and the time MLP included — with momentum 0.95,
  Nesterov, 5 Newton–Schulz steps and the update scaled by max(1, rows/cols)^½ (torch's
  ``adjust_lr_fn="original"``, the reference's); Adam (β 0.9/0.95, ε 1e-10) on the 1-D
  parameters at lr × 0.18 (the reference's 0.00036 / 0.002); no weight decay anywhere. The
  reference's warm-up-free constant + linear warm-down schedule and its batch-scaled learning
  rate (lr × batch/128) are *not* part of it: the schedule is the trainer's for every method,
  and the learning rate is tuned per budget (at batch 16 the reference's rule gives Muon 2.5e-4,
  with which its own architecture does not reach the data's marginal in 200 steps).

A recipe that cannot run sharded (Muon orthogonalises whole matrices; ``parallel=fsdp`` shards
them) says so through :attr:`Recipe.sharded_ok`, and the trainer refuses the pair in one line.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

import torch

from pathbench.core.errors import ConfigError
from pathbench.core.registry import RECIPES

#: the recipe a run gets when neither its protocol nor the user names one (the committed ids' value)
DEFAULT_RECIPE = "adamw"
#: the KL-flow reference's Adam lr over its Muon lr (configs/default_config.yaml: 0.00036 / 0.002)
REFERENCE_ADAM_RATIO = 0.18

Named = list[tuple[str, torch.nn.Parameter]]


@dataclass(frozen=True)
class Recipe:
    """A named optimizer grouping: ``build(named parameters, lr, weight_decay)`` → optimizers.

    Every param group it returns carries ``base_lr`` (its lr at schedule factor 1)."""

    name: str
    description: str
    build: Callable[[Named, float, float], list[torch.optim.Optimizer]]
    #: False where the update needs whole matrices (Muon): refused under ``parallel=fsdp``
    sharded_ok: bool = True
    #: the learning rates it sets, as multiples of ``lr`` (recorded with every run)
    lr_ratios: tuple[tuple[str, float], ...] = (("all", 1.0),)
    #: False where the recipe ignores ``weight_decay`` (the reference uses none)
    decays: bool = True


def _fused(named: Named) -> bool | None:
    return (torch.cuda.is_available() and all(p.is_cuda for _, p in named)) or None


def _adamw(params_decay: list, params_no_decay: list, lr: float, weight_decay: float,
           fused: bool | None) -> torch.optim.AdamW:
    return torch.optim.AdamW([{"params": params_decay, "weight_decay": weight_decay},
                              {"params": params_no_decay, "weight_decay": 0.0}],
                             lr=lr, betas=(0.9, 0.95), fused=fused)


def _with_base_lr(optimizers: list[torch.optim.Optimizer]) -> list[torch.optim.Optimizer]:
    for opt in optimizers:
        for group in opt.param_groups:
            group.setdefault("base_lr", group["lr"])
    return optimizers


def build_adamw(named: Named, lr: float, weight_decay: float) -> list[torch.optim.Optimizer]:
    decay = [p for _, p in named if p.ndim >= 2]
    no_decay = [p for _, p in named if p.ndim < 2]
    return _with_base_lr([_adamw(decay, no_decay, lr, weight_decay, _fused(named))])


def _is_block_matrix(name: str, p: torch.nn.Parameter) -> bool:
    return p.ndim == 2 and name.startswith("blocks.") and (".attn." in name or ".mlp." in name)


def build_block_muon(named: Named, lr: float, weight_decay: float) -> list[torch.optim.Optimizer]:
    muon = [p for n, p in named if _is_block_matrix(n, p)]
    ids = {id(p) for p in muon}
    rest = [(n, p) for n, p in named if id(p) not in ids]
    optimizers = [_adamw([p for _, p in rest if p.ndim >= 2], [p for _, p in rest if p.ndim < 2], lr,
                         weight_decay, _fused(named))]
    if muon:
        optimizers.append(torch.optim.Muon(muon, lr=lr, weight_decay=weight_decay, adjust_lr_fn="match_rms_adamw"))
    return _with_base_lr(optimizers)


def build_reference_muon(named: Named, lr: float, weight_decay: float) -> list[torch.optim.Optimizer]:
    """The KL-flow reference's grouping; ``weight_decay`` is ignored (the reference uses none)."""
    matrices = [p for _, p in named if p.ndim >= 2]
    vectors = [p for _, p in named if p.ndim < 2]
    if any(p.ndim > 2 for p in matrices):
        raise ConfigError("recipe 'kl-flow-muon' needs every ≥ 2-D parameter to be a matrix; this model has "
                          "a parameter with more dimensions")
    optimizers: list[torch.optim.Optimizer] = []
    if matrices:
        optimizers.append(torch.optim.Muon(matrices, lr=lr, weight_decay=0.0, momentum=0.95, nesterov=True,
                                           ns_steps=5, adjust_lr_fn="original"))
    if vectors:
        optimizers.append(torch.optim.Adam(vectors, lr=lr * REFERENCE_ADAM_RATIO, betas=(0.9, 0.95), eps=1e-10,
                                           weight_decay=0.0, fused=_fused(named)))
    return _with_base_lr(optimizers)


RECIPES.add("adamw", Recipe(
    "adamw", "AdamW (β 0.9/0.95) on every parameter, weight decay on ≥ 2-D ones (pathbench's default)",
    build_adamw))
RECIPES.add("muon", Recipe(
    "muon", "Muon on the blocks' attention/MLP matrices (RMS matched to AdamW), AdamW on the rest",
    build_block_muon, sharded_ok=False, lr_ratios=(("muon", 1.0), ("adamw", 1.0))))
RECIPES.add("kl-flow-muon", Recipe(
    "kl-flow-muon", "the KL-flow reference's: Muon (momentum 0.95, Nesterov, 5 Newton-Schulz steps) on every "
                    "≥ 2-D parameter incl. embedding, head and time MLP; Adam (β 0.9/0.95, ε 1e-10) at lr × 0.18 "
                    "on 1-D ones; no weight decay",
    build_reference_muon, sharded_ok=False, lr_ratios=(("muon", 1.0), ("adam", REFERENCE_ADAM_RATIO)), decays=False),
    "reference")


def get_recipe(name: str) -> Recipe:
    """The registered recipe ``name`` (an unknown name lists the known ones)."""
    return RECIPES.get(name)


def recipe_record(name: str, lr: float, weight_decay: float) -> dict:
    """What meta.json and metrics.json record of a run's recipe: its name and every lr it sets."""
    recipe = get_recipe(name)
    return {"name": recipe.name, "lr": lr, "learning_rates": {k: lr * r for k, r in recipe.lr_ratios},
            "weight_decay": weight_decay if recipe.decays else 0.0,
            "description": recipe.description}


def build_optimizers(model: torch.nn.Module, recipe: str, lr: float,
                     weight_decay: float) -> list[torch.optim.Optimizer]:
    """The optimizers of ``recipe`` over ``model``'s trainable parameters."""
    named = [(n, p) for n, p in model.named_parameters() if p.requires_grad]
    return get_recipe(recipe).build(named, lr, weight_decay)
