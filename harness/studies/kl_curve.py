"""``pathbench study kl-curve``: KL(x1 ‖ x_t) against t for several paths and vocabulary sizes.

Writes ``kl_curve.csv`` (columns path, vocab, t, kl_mean, kl_std; std over prior samples)
and ``kl_curve.png`` (one panel per V, one line per path, ±1 std band).
"""

from __future__ import annotations

import csv
import io
from dataclasses import dataclass
from pathlib import Path

import torch
from tqdm import tqdm

from pathbench.core.errors import ConfigError
from pathbench.core.io import atomic_open, atomic_write_text
from pathbench.core.registry import PATHS
from pathbench.paths.diagnostics import kl_times, kl_to_target

COLUMNS = ("path", "vocab", "t", "kl_mean", "kl_std")


@dataclass(frozen=True)
class KLCurveRow:
    path: str
    vocab: int
    t: float
    kl_mean: float
    kl_std: float


def compute_kl_curves(path_names: list[str], vocabs: list[int], *, samples: int = 256,
                      beta: float = 0.01, points: int = 99, seed: int = 0,
                      progress: bool = True) -> list[KLCurveRow]:
    """Monte-Carlo KL(x1‖x_t) for every (path, V); the same seed per (path, V) cell."""
    if samples < 2:
        raise ConfigError(f"samples = {samples} must be >= 2 (a standard deviation needs two)")
    for vocab in vocabs:
        if vocab < 2:
            raise ConfigError(f"vocab = {vocab} must be >= 2")
    built = {name: PATHS.build(name, beta=beta) for name in path_names}  # validates names and β
    off_simplex = [name for name, path in built.items() if not path.on_simplex]
    if off_simplex:
        on = ", ".join(n for n in PATHS.names() if PATHS.get(n).on_simplex)
        raise ConfigError(f"path '{off_simplex[0]}' does not live on the simplex, so KL(x1‖x_t) "
                          f"is undefined; paths on the simplex: {on}")
    times = kl_times(points)
    rows: list[KLCurveRow] = []
    cells = [(name, vocab) for vocab in vocabs for name in path_names]
    for name, vocab in tqdm(cells, desc="kl-curve", disable=not progress):
        generator = torch.Generator().manual_seed(seed)
        kl = kl_to_target(built[name], vocab, times, samples, generator=generator)
        mean, std = kl.mean(1), kl.std(1)
        rows += [KLCurveRow(name, vocab, t, m, s)
                 for t, m, s in zip(times.tolist(), mean.tolist(), std.tolist())]
    return rows


def write_csv(rows: list[KLCurveRow], path: Path) -> None:
    buffer = io.StringIO()
    writer = csv.writer(buffer, lineterminator="\n")
    writer.writerow(COLUMNS)
    for r in rows:
        writer.writerow([r.path, r.vocab, f"{r.t:.6f}", f"{r.kl_mean:.10g}", f"{r.kl_std:.10g}"])
    atomic_write_text(path, buffer.getvalue())


def plot(rows: list[KLCurveRow], path: Path, beta: float) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    vocabs = sorted({r.vocab for r in rows})
    names = list(dict.fromkeys(r.path for r in rows))
    fig, axes = plt.subplots(1, len(vocabs), figsize=(5 * len(vocabs), 4), squeeze=False)
    for ax, vocab in zip(axes[0], vocabs):
        for name in names:
            cell = [r for r in rows if r.vocab == vocab and r.path == name]
            t = [r.t for r in cell]
            m = [r.kl_mean for r in cell]
            s = [r.kl_std for r in cell]
            (line,) = ax.plot(t, m, label=name)
            ax.fill_between(t, [a - b for a, b in zip(m, s)], [a + b for a, b in zip(m, s)],
                            color=line.get_color(), alpha=0.2, linewidth=0)
        ax.set_title(f"V = {vocab:,}, β = {beta:g}")
        ax.set_xlabel("t")
        ax.set_ylabel("KL(x1 ‖ x_t)  [nats]")
        ax.set_xlim(0, 1)
        ax.set_ylim(bottom=0)
        ax.grid(alpha=0.3)
        ax.legend()
    fig.tight_layout()
    with atomic_open(path, "wb") as handle:
        fig.savefig(handle, format="png", dpi=120)
    plt.close(fig)


def run_kl_curve(path_names: list[str], vocabs: list[int], out: Path, *, samples: int = 256,
                 beta: float = 0.01, points: int = 99, seed: int = 0) -> list[KLCurveRow]:
    rows = compute_kl_curves(path_names, vocabs, samples=samples, beta=beta, points=points, seed=seed)
    out.mkdir(parents=True, exist_ok=True)
    write_csv(rows, out / "kl_curve.csv")
    plot(rows, out / "kl_curve.png", beta)
    return rows
