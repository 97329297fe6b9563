"""``pathbench study tune-tstar``: choose the hybrid sampler's t* (and top-k) from data, not by hand.

The rule: among the candidate (t*, top-k) settings, take the one with the lowest generative
perplexity whose entropy stays within ``margin`` nats of the real text's entropy (the
held-out reference row, same length, same scorer). Perplexity alone would reward repetition
(low entropy); the entropy band is what makes the choice honest.

Samples for tuning are drawn with their own seed (``seed``, default 1000), not the seed of the
leaderboard's samples, so a tuned row is not selected on the very samples it is reported on.
The choice is stored in the run's calibration.json (section ``tuned_sampler``); ``--sampler
tuned`` then uses it anywhere a sampler is named. A starting point can come from theory:
``--start crossing.json`` (written by ``pathbench study posterior-gap``) centres the t* grid on the
time where the geodesic-only posterior becomes accurate.
"""

from __future__ import annotations

import csv
import io
import json
import math
from dataclasses import asdict
from pathlib import Path
from typing import Any

from tqdm import tqdm

from pathbench.core.errors import ConfigError
from pathbench.core.io import atomic_open, atomic_write_text
from pathbench.engine.calibration import store_calibration
from pathbench.engine.protocol import for_sampling, resolve_sampler
from pathbench.engine.run import draw_samples, load_run
from pathbench.tasks.adapters.reference import reference_row
from pathbench.tasks.adapters.unconditional import Unconditional

DEFAULT_T_STARS = (0.1, 0.2, 0.28, 0.4, 0.6)
START_FACTORS = (0.5, 0.75, 1.0, 1.5, 2.0)


def select_tstar(rows: list[dict[str, Any]], real_entropy: float, margin: float) -> dict[str, Any]:
    """The row with the lowest ``gen_ppl`` among those with |entropy − real_entropy| ≤ margin.

    Ties go to the smaller t* (fewer stochastic steps' worth of committing), then smaller top-k.
    """
    if not margin >= 0:
        raise ConfigError(f"entropy margin = {margin!r} must be >= 0")
    if not rows:
        raise ConfigError("no candidate settings to choose from")
    eligible = [r for r in rows if abs(r["entropy"] - real_entropy) <= margin]
    if not eligible:
        closest = min(rows, key=lambda r: abs(r["entropy"] - real_entropy))
        raise ConfigError(f"no setting keeps entropy within {margin} nats of real text ({real_entropy:.3f}); "
                          f"closest: t* {closest['t_star']}, top-k {closest['top_k']} at entropy "
                          f"{closest['entropy']:.3f}; widen --margin")
    return min(eligible, key=lambda r: (r["gen_ppl"], r["t_star"], r["top_k"] or 0))


def start_grid(start: float, t_max: float = 1.0) -> list[float]:
    """A t* grid around a theory-guided start (e.g. the posterior-gap crossing), inside the run's
    [0, t_max]: a factor that would pass t_max gives t_max itself (the hybrid never switches, i.e.
    the ``basic`` sampler), once."""
    if not 0.0 <= start <= t_max:
        raise ConfigError(f"t* start = {start!r} is outside this run's [0, {t_max:g}]")
    return sorted({round(min(t_max, start * f), 3) for f in START_FACTORS})


def grid_edge(t_stars: list[float], chosen: float, t_max: float) -> str | None:
    """Where the chosen t* sits when a wider grid could still beat it: ``"lower"`` at the smallest
    candidate above 0, ``"upper"`` at the largest below t_max, else None (inside the grid, at a
    bound of the run's time range, or a grid of one). As the tuning tables flag a learning rate at
    the edge, a t* there is a search that may have stopped short, not an optimum."""
    grid = sorted(set(t_stars))
    if len(grid) < 2:
        return None
    if chosen == grid[0] and grid[0] > 0.0:
        return "lower"
    if chosen == grid[-1] and grid[-1] < t_max:
        return "upper"
    return None


def widened(t_stars: list[float], edge: str, t_max: float) -> float:
    """The next candidate past the edge the choice sits at, by the start grid's outer factor (2):
    half the lowest t* (0 once that rounds away), or twice the highest, at most t_max."""
    if edge == "lower":
        half = round(min(t_stars) / 2, 3)
        return half if 0.0 < half < min(t_stars) else 0.0  # at the grid's resolution, 0 itself is next
    return min(t_max, round(max(t_stars) * 2, 3))


def check_t_stars(t_stars: list[float], t_max: float, protocol: str) -> None:
    """Every candidate inside the run's time range: past t_max the hybrid never switches, so such
    candidates would all be the ``basic`` sampler under another name."""
    outside = [t for t in t_stars if not 0.0 <= t <= t_max]
    if outside:
        raise ConfigError(f"t* {', '.join(f'{t:g}' for t in outside)} outside this run's [0, {t_max:g}] "
                          f"(protocol {protocol}); choose t* in it")


def read_start(spec: str) -> float:
    """A float, or a posterior-gap crossing.json: the time its exact posterior turns sharp under
    the uniform prior (``sharp.uniform``), else its uniform-prior KL crossing, else the first."""
    try:
        return float(spec)
    except ValueError:
        pass
    path = Path(spec)
    if not path.exists():
        raise ConfigError(f"--start '{spec}' is neither a number nor a crossing.json file")
    saved = json.loads(path.read_text())
    crossing = saved.get("crossing") or {}
    value = (saved.get("sharp") or {}).get("uniform")
    if value is None:
        value = crossing.get("uniform", next((v for v in crossing.values() if v is not None), None))
    if value is None:
        raise ConfigError(f"{path} has no crossing within (0, 1); give --start as a number")
    return float(value)


def tune_tstar(ckpt: Path, *, scorer: str = "smollm2", t_stars: list[float] | None = None,
               top_ks: list[int | None] = (1, 5), nfe: int = 64, n: int = 32, margin: float = 0.25,
               seed: int = 1000, start: float | None = None, batch_size: int = 16, device: str = "cpu",
               widen: int = 0, out: Path | None = None) -> dict[str, Any]:
    """Sample every (t*, top-k) on the hybrid sampler, score, select, store with the checkpoint.

    With ``widen`` > 0, a choice at the grid's edge (:func:`grid_edge`) extends the grid one t*
    past it (:func:`widened`, every top-k) and selects again, at most ``widen`` times: the search
    stops inside the grid, at a bound of [0, t_max], or with the edge still flagged."""
    if widen < 0:
        raise ConfigError(f"--widen = {widen!r} must be >= 0")

    method, model, tokenizer, meta, step, _ = load_run(ckpt, device)
    method, trained = for_sampling(method, meta, None)  # the run's own generation protocol
    if "hybrid" not in method.samplers:
        raise ConfigError(f"method '{meta['method']}' has no hybrid sampler to tune; "
                          f"its samplers: {', '.join(method.samplers)}")
    t_max = method.path.t_max  # the protocol's range: kl-flow samples on [0, 0.3], plain on [0, 1]
    if t_stars is None:
        t_stars = (start_grid(start, t_max) if start is not None
                   else sorted({min(t, t_max) for t in DEFAULT_T_STARS}))
    check_t_stars(t_stars, t_max, trained.name)
    task = Unconditional(scorer=scorer, device=device)  # t* is tuned on unconditional gen-PPL and entropy
    real = reference_row(meta["data"], n, task)
    rows, configs = [], []

    def sample(grid: list[float]) -> None:
        # top-k is tuned, so explicit; the protocol fills the rest (final step, where it sits)
        settings = [resolve_sampler(method, trained, {"name": "hybrid", "nfe": nfe, "t_star": float(t), "top_k": k})
                    for t in grid for k in top_ks]
        for spec, record in tqdm(settings, desc="tune t*"):
            cfg = method.sampler_config(meta["method"], spec)
            records = draw_samples(method, model, tokenizer, meta, step, n, cfg, seed=seed,
                                   batch_size=batch_size, device=device, protocol=record)
            scores = task.score_samples([r["text"] for r in records], [r["ids"] for r in records],
                                        tokenizer.vocab_size)
            configs.append(cfg)
            rows.append({"t_star": cfg.t_star, "top_k": cfg.top_k, "nfe": nfe,
                         "gen_ppl": scores["gen_ppl"], "entropy": scores["entropy"]})

    grid = list(t_stars)  # the candidates tried so far: the given grid, then each widening
    sample(grid)
    best = select_tstar(rows, real["entropy"], margin)
    while len(grid) - len(t_stars) < widen and (edge := grid_edge(grid, best["t_star"], t_max)):
        grid.append(widened(grid, edge, t_max))
        sample(grid[-1:])
        best = select_tstar(rows, real["entropy"], margin)
    chosen = next(asdict(c) for c in configs if c.t_star == best["t_star"] and c.top_k == best["top_k"])
    result = {"sampler": chosen, "gen_ppl": best["gen_ppl"], "entropy": best["entropy"],
              "real_entropy": real["entropy"], "real_gen_ppl": real["gen_ppl"], "margin": margin,
              "scorer": scorer, "n": n, "seed": seed, "start": start, "step": step, "candidates": rows,
              "widened": grid[len(t_stars):], "edge": grid_edge(grid, best["t_star"], t_max),
              "generation_protocol": trained.name}
    store_calibration(ckpt, "tuned_sampler", result)
    if out is not None:
        write_tuning(result, Path(out))
    return result


def write_tuning(result: dict[str, Any], out: Path) -> None:
    """tune_tstar.csv and tune_tstar.png (PPL vs t* per top-k, entropy band marked)."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    rows = result["candidates"]
    buffer = io.StringIO()
    writer = csv.DictWriter(buffer, fieldnames=["t_star", "top_k", "nfe", "gen_ppl", "entropy", "eligible"])
    writer.writeheader()
    for r in rows:
        writer.writerow({**r, "eligible": abs(r["entropy"] - result["real_entropy"]) <= result["margin"]})
    atomic_write_text(out / "tune_tstar.csv", buffer.getvalue())
    fig, (ppl_ax, ent_ax) = plt.subplots(1, 2, figsize=(10, 3.6))
    for k in sorted({r["top_k"] for r in rows}, key=lambda k: k or math.inf):
        mine = sorted((r for r in rows if r["top_k"] == k), key=lambda r: r["t_star"])
        ppl_ax.plot([r["t_star"] for r in mine], [r["gen_ppl"] for r in mine], marker="o", label=f"top-k {k}")
        ent_ax.plot([r["t_star"] for r in mine], [r["entropy"] for r in mine], marker="o", label=f"top-k {k}")
    chosen = result["sampler"]
    ppl_ax.scatter([chosen["t_star"]], [result["gen_ppl"]], s=160, facecolors="none", edgecolors="k",
                   label="chosen")
    edge = f", chosen at the grid's {result['edge']} edge" if result.get("edge") else ""
    ppl_ax.set(xlabel="t*", ylabel="gen-PPL", yscale="log", title=f"scorer {result['scorer']}{edge}")
    ent_ax.axhspan(result["real_entropy"] - result["margin"], result["real_entropy"] + result["margin"],
                   color="gray", alpha=0.2, label="real text ± margin")
    ent_ax.set(xlabel="t*", ylabel="entropy (nats)")
    for ax in (ppl_ax, ent_ax):
        ax.legend(fontsize=8)
    fig.tight_layout()
    with atomic_open(out / "tune_tstar.png", "wb") as handle:
        fig.savefig(handle, format="png", dpi=120)
    plt.close(fig)
