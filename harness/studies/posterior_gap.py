"""``pathbench study posterior-gap``: KL(exact posterior ‖ geodesic-only approximation) against t.

For one token on the KL path (see :mod:`pathbench.paths.posterior` for both posteriors), draw
(i ~ π, x0 ~ Dirichlet(1)), form x_t, and average KL(p(·|x_t) ‖ q(·|x_t)) over draws, at
``points`` times in (0, 1), for a point-mass prior (all data on one token) and a uniform prior
over tokens. Two times come out of it (``crossing.json``), each the first t below ``threshold``:

* ``sharp``: the exact posterior's entropy — from there on x_t identifies its token, so the
  ``sampling`` scheme's commitment to one drawn token loses nothing (uniform prior: the
  theory-guided start for the hybrid sampler's t*, ``pathbench study tune-tstar --start crossing.json``);
* ``crossing``: KL(exact ‖ geodesic-only) — from there on even the noise-blind geodesic
  reading of x_t is right.

Writes ``posterior_gap.csv`` (prior, vocab, t, kl_mean, kl_std, exact_entropy),
``posterior_gap.png`` and ``crossing.json``.
"""

from __future__ import annotations

import csv
import io
from pathlib import Path
from typing import Any

import torch
from torch import Tensor
from tqdm import tqdm

from pathbench.core.errors import ConfigError
from pathbench.core.io import atomic_open, atomic_write_json, atomic_write_text
from pathbench.paths.base import check_unit_interval, sample_log_dirichlet1
from pathbench.paths.diagnostics import kl_times
from pathbench.paths.posterior import entropy_categorical, exact_posterior_log, geodesic_posterior_log, kl_categorical

PRIORS = ("point_mass", "uniform")
COLUMNS = ("prior", "vocab", "t", "kl_mean", "kl_std", "exact_entropy")
CHUNK = 32  # draws per batch: (CHUNK, V) float64 tensors stay small at V = 50 000


def log_prior(name: str, vocab: int) -> Tensor:
    if name == "point_mass":  # all data on token 0
        out = torch.full((vocab,), float("-inf"), dtype=torch.float64)
        out[0] = 0.0
        return out
    if name == "uniform":
        return torch.full((vocab,), -torch.log(torch.tensor(float(vocab), dtype=torch.float64)).item(),
                          dtype=torch.float64)
    raise ConfigError(f"unknown prior '{name}'; known: {', '.join(PRIORS)}")


def gap_at(t: float, vocab: int, prior: str, n_samples: int, beta: float,
           generator: torch.Generator) -> tuple[Tensor, Tensor]:
    """(KL(p‖q), H(p)) per draw at time t, each (n_samples,)."""
    lp = log_prior(prior, vocab)
    log_lo, log_hi = torch.log(torch.tensor(beta / vocab)), torch.log1p(torch.tensor(-beta + beta / vocab))
    kls, entropies = [], []
    for first in range(0, n_samples, CHUNK):
        size = min(CHUNK, n_samples - first)
        tokens = (torch.zeros(size, dtype=torch.long) if prior == "point_mass"
                  else torch.randint(vocab, (size,), generator=generator))
        l0 = sample_log_dirichlet1((size, vocab), generator=generator)  # (N, V)
        l1 = torch.full((size, vocab), log_lo.item(), dtype=torch.float64)
        l1[torch.arange(size), tokens] = log_hi.item()
        log_xt = torch.log_softmax((1.0 - t) * l0 + t * l1, dim=-1)
        exact = exact_posterior_log(log_xt, t, beta, lp)
        kls.append(kl_categorical(exact, geodesic_posterior_log(log_xt, t)))
        entropies.append(entropy_categorical(exact))
    return torch.cat(kls), torch.cat(entropies)


def posterior_gap(vocab: int, times: list[float], prior: str, n_samples: int, beta: float,
                  generator: torch.Generator, progress: bool = True) -> list[dict[str, Any]]:
    rows = []
    for t in tqdm(times, desc=f"posterior gap ({prior})", disable=not progress):
        kl, entropy = gap_at(t, vocab, prior, n_samples, beta, generator)
        rows.append({"prior": prior, "vocab": vocab, "t": t, "kl_mean": kl.mean().item(),
                     "kl_std": kl.std().item() if n_samples > 1 else 0.0,
                     "exact_entropy": entropy.mean().item()})
    return rows


def crossing(rows: list[dict[str, Any]], threshold: float, key: str = "kl_mean") -> float | None:
    """The first t whose ``key`` (mean KL, or the exact posterior's entropy) is below ``threshold``."""
    below = [r["t"] for r in sorted(rows, key=lambda r: r["t"]) if r[key] < threshold]
    return below[0] if below else None


def write_posterior_gap(out_dir: Path, vocab: int = 50000, priors: tuple[str, ...] = PRIORS,
                        n_samples: int = 256, beta: float = 0.01, points: int = 99,
                        threshold: float = 0.1, seed: int = 0) -> dict[str, Any]:
    if vocab < 2:
        raise ConfigError(f"vocab = {vocab} must be >= 2")
    check_unit_interval("beta", beta, open_low=True, open_high=True)
    if not threshold > 0:
        raise ConfigError(f"threshold = {threshold!r} must be > 0 nats")
    if n_samples < 1:
        raise ConfigError(f"samples = {n_samples} must be >= 1")
    for prior in priors:
        log_prior(prior, 2)  # unknown names fail before any work
    times = kl_times(points).tolist()
    rows, crossings, sharp = [], {}, {}
    for prior in priors:
        mine = posterior_gap(vocab, times, prior, n_samples, beta, torch.Generator().manual_seed(seed))
        rows += mine
        crossings[prior] = crossing(mine, threshold)
        sharp[prior] = crossing(mine, threshold, "exact_entropy")
    out_dir = Path(out_dir)
    buffer = io.StringIO()
    writer = csv.writer(buffer, lineterminator="\n")
    writer.writerow(COLUMNS)
    for r in rows:
        writer.writerow([r["prior"], r["vocab"], f"{r['t']:.6f}", *(f"{r[k]:.10g}" for k in COLUMNS[3:])])
    atomic_write_text(out_dir / "posterior_gap.csv", buffer.getvalue())
    result = {"threshold": threshold, "crossing": crossings, "sharp": sharp, "vocab": vocab, "beta": beta,
              "samples": n_samples, "seed": seed}
    atomic_write_json(out_dir / "crossing.json", result)
    _plot(rows, crossings, sharp, threshold, vocab, beta, out_dir / "posterior_gap.png")
    return {**result, "rows": rows}


def _plot(rows, crossings, sharp, threshold, vocab, beta, path: Path) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, (gap_ax, ent_ax) = plt.subplots(1, 2, figsize=(11, 4))
    for prior in dict.fromkeys(r["prior"] for r in rows):
        mine = [r for r in rows if r["prior"] == prior]
        t = [r["t"] for r in mine]
        mean = [max(r["kl_mean"], 1e-12) for r in mine]
        (line,) = gap_ax.plot(t, mean, label=f"{prior} prior")
        low = [max(r["kl_mean"] - r["kl_std"], 1e-12) for r in mine]
        gap_ax.fill_between(t, low, [r["kl_mean"] + r["kl_std"] for r in mine], color=line.get_color(),
                            alpha=0.2, linewidth=0)
        ent_ax.plot(t, [r["exact_entropy"] for r in mine], color=line.get_color(), label=f"{prior} prior")
        if sharp.get(prior) is not None and sharp[prior] > t[0]:
            ent_ax.axvline(sharp[prior], color=line.get_color(), linestyle=":",
                           label=f"entropy < {threshold:g} at t = {sharp[prior]:.2f}")
        if crossings.get(prior) is not None:
            gap_ax.axvline(crossings[prior], color=line.get_color(), linestyle=":",
                           label=f"crossing t = {crossings[prior]:.2f}")
    gap_ax.axhline(threshold, color="gray", linestyle="--", linewidth=1, label=f"threshold {threshold:g} nats")
    gap_ax.axvline(0.28, color="black", linestyle="-.", linewidth=1, label="paper's t* = 0.28")
    ent_ax.axvline(0.28, color="black", linestyle="-.", linewidth=1, label="paper's t* = 0.28")
    gap_ax.set_ylim(bottom=1e-3)
    gap_ax.set(yscale="log", xlabel="t", ylabel="KL(exact ‖ geodesic-only)  [nats]",
               title=f"KL path, V = {vocab:,}, β = {beta:g}")
    ent_ax.set(xlabel="t", ylabel="entropy of the exact posterior  [nats]", title="how sharp p(x1 | x_t) is")
    for ax in (gap_ax, ent_ax):
        ax.grid(alpha=0.3, which="both")
        ax.legend(fontsize="small")
    fig.tight_layout()
    with atomic_open(path, "wb") as handle:
        fig.savefig(handle, format="png", dpi=120)
    plt.close(fig)

