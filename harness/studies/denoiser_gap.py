"""``pathbench study denoiser-gap``: a trained denoiser's held-out cross-entropy against the Bayes-optimal one.

On an oracle corpus (:mod:`pathbench.data.oracle`) the data law is known, so the best any
denoiser can do at time t is the exact posterior

    p*(x1^j = i | z_t) ∝ p(z_t^j | x1^j = i) · Σ_z α⁻_j(z) β_j(z) E[z, i]

— each position's single-token likelihood (:meth:`pathbench.paths.base.SimplexPath.token_log_likelihood`)
combined with the HMM by forward–backward (:meth:`pathbench.data.oracle.HMM.token_posterior`).
For every run and time t, the held-out sequences are noised once (float64, a fixed seed: every
run of a path sees the same draws) and

    CE_model(t) = mean −log p_θ(x1 | z_t),   CE_bayes(t) = mean −log p*(x1 | z_t),
    gap(t) = CE_model(t) − CE_bayes(t)  (≥ 0 in expectation; standard error over sequences, paired).

The times are the midpoints of K equal cells of [0, t_max], so the mean gap over them estimates
the run's excess training loss, E_{t~U[0, t_max]}[gap(t)], in nats per token. A path whose
likelihood is not tractable, or too costly at this V (Fisher-Rao is O(V²) per position), and a
method that is not a simplex path are listed with the reason instead.

Writes ``denoiser_gap.csv`` (one row per run and t), ``denoiser_gap.json`` (rows, per-run
excess loss, skipped runs, settings) and ``denoiser_gap.png``.
"""

from __future__ import annotations

import csv
import io
import math
from collections import defaultdict
from pathlib import Path
from typing import Any

import numpy as np
import torch

from pathbench.core.errors import ConfigError
from pathbench.core.io import atomic_open, atomic_write_json, atomic_write_text
from pathbench.core.registry import PROTOCOLS
from pathbench.core.stats import mean_interval
from pathbench.data.corpus import prepare_stored
from pathbench.data.oracle import HMM, OracleSpec, is_oracle
from pathbench.engine.checkpoint import read_meta
from pathbench.engine.methods import PathMethod
from pathbench.engine.run import load_run
from pathbench.paths.base import SimplexPath
from pathbench.paths.fisher_rao import FisherRaoPath

COLUMNS = ("run", "method", "protocol", "seed", "vocab", "t", "ce_model", "ce_bayes", "gap", "gap_se", "sequences")
QUADRATIC_MAX_VOCAB = 1024  # Fisher-Rao's O(V²) likelihood above this V: minutes per time point
BATCH = 16


def run_folders(sources: list[Path]) -> list[Path]:
    """Run folders from run folders or sweep folders (their ``train/<unit>/`` runs), in order."""
    out: list[Path] = []
    for source in map(Path, sources):
        if (source / "meta.json").is_file():
            out.append(source)
        elif (source / "train").is_dir():
            out += sorted(p for p in (source / "train").iterdir() if (p / "meta.json").is_file())
        else:
            raise ConfigError(f"{source} is neither a run folder (meta.json) nor a sweep folder (train/)")
    if not out:
        raise ConfigError(f"no run found in {', '.join(map(str, sources))}")
    return out


def skip_reason(run) -> str | None:
    """Why a loaded run has no denoiser gap, or None."""
    if not isinstance(run.method, PathMethod):
        return f"method '{run.meta['method']}' is not a simplex path (its denoiser does not read z_t)"
    if not is_oracle(run.meta["data"]["corpus"]):
        return f"corpus '{run.meta['data']['corpus']}' is not an oracle corpus: its data law is unknown"
    path = run.method.path
    if type(path).token_log_likelihood is SimplexPath.token_log_likelihood:
        return f"path '{run.meta['method']}' has no tractable single-token likelihood"
    if isinstance(path, FisherRaoPath) and run.tokenizer.vocab_size > QUADRATIC_MAX_VOCAB:
        return (f"Fisher-Rao's likelihood costs O(V²) per position; V = {run.tokenizer.vocab_size} is over "
                f"{QUADRATIC_MAX_VOCAB}")
    return None


@torch.no_grad()
def gap_curve(run, times: list[float], sequences: int, seed: int) -> list[dict[str, Any]]:
    """CE_model, CE_bayes and their paired gap at each t for one loaded run."""
    data = prepare_stored(run.meta["data"])
    spec = OracleSpec.parse(run.meta["data"]["corpus"]).for_length(run.meta["data"]["seq_len"])
    hmm = HMM.read(data.folder, spec)
    ids = torch.as_tensor(np.asarray(data.val[:sequences], dtype=np.int64))  # (N, S)
    if len(ids) < sequences:
        raise ConfigError(f"{run.folder}: the held-out split has {len(ids)} sequences, fewer than {sequences}")
    method, model = run.method, run.model
    vocab = model.config.vocab_size
    rows = []
    for t in times:
        generator = torch.Generator().manual_seed(seed)
        ce_model, ce_bayes = [], []
        for first in range(0, len(ids), BATCH):
            x1 = ids[first:first + BATCH]  # (B, S)
            tt = torch.full((len(x1),), t, dtype=torch.float64)
            z = method.noisy(x1, torch.zeros_like(x1, dtype=torch.bool), tt, vocab, torch.float64, generator)
            device = next(model.parameters()).device
            logits = model(method.path.model_input(z).float().to(device), tt.float().to(device)).cpu()  # (B, S, V)
            ce_model.append(_nll(torch.log_softmax(logits.double(), -1), x1))
            log_lik = method.path.token_log_likelihood(z.reshape(-1, vocab), t).reshape(z.shape)
            ce_bayes.append(_nll(hmm.token_posterior(log_lik), x1))
        m, b = torch.cat(ce_model).numpy(), torch.cat(ce_bayes).numpy()  # (N,) per sequence
        rows.append({"run": run.folder.name, "method": run.meta["method"], "protocol": protocol_name(run.meta),
                     "seed": run.meta["train"].get("seed", 0),
                     "vocab": spec.V, "t": t, "ce_model": float(m.mean()), "ce_bayes": float(b.mean()),
                     "gap": float((m - b).mean()), "gap_se": float((m - b).std(ddof=1) / math.sqrt(len(m))),
                     "sequences": len(m)})
    return rows


def protocol_name(meta: dict) -> str:
    """The generation protocol a run was trained under (``plain`` for a run recorded before them)."""
    return (meta.get("generation_protocol") or {}).get("name", "plain")


def _nll(log_post: torch.Tensor, x1: torch.Tensor) -> torch.Tensor:
    """Mean −log p(x1) per sequence. log_post (B, S, V), x1 (B, S) -> (B,)."""
    return -log_post.gather(-1, x1.unsqueeze(-1)).squeeze(-1).mean(-1)


def write_denoiser_gap(sources: list[Path], out_dir: Path, *, cells: int = 8, sequences: int = 64,
                       seed: int = 0, device: str = "cpu", protocol: str | None = None,
                       progress: bool = True, units: set[str] | None = None) -> dict[str, Any]:
    """The gap curves of every simplex run in ``sources`` (optionally only those trained under
    ``protocol``, only the units ``units`` names: an experiment's own) written into ``out_dir``;
    see the module docstring."""
    if cells < 1:
        raise ConfigError(f"cells = {cells} must be >= 1")
    if sequences < 2:
        raise ConfigError(f"sequences = {sequences} must be >= 2 (a standard error needs two)")
    if protocol is not None:
        PROTOCOLS.get(protocol)  # an unknown name fails listing the known ones
    rows, skipped, excess = [], {}, {}
    folders = run_folders(sources)
    if units is not None:  # an experiment's own units: not its tuning candidates, nor another file's
        folders = [f for f in folders if f.name in units or f.resolve().name in units]
        if not folders:
            raise ConfigError(f"no unit of the given experiment(s) in {', '.join(map(str, sources))}; run its sweep")
    if protocol is not None:  # runs of other protocols are not part of this study (nor of its record)
        folders = [f for f in folders if protocol_name(read_meta(f)) == protocol]
        if not folders:
            raise ConfigError(f"no run in {', '.join(map(str, sources))} was trained under protocol '{protocol}'")
    for number, folder in enumerate(folders, 1):
        run = load_run(folder, device)
        reason = skip_reason(run)
        if reason is not None:
            skipped[folder.name] = reason
            continue
        t_max = run.method.path.t_max
        times = [t_max * (k + 0.5) / cells for k in range(cells)]
        mine = gap_curve(run, times, sequences, seed)
        rows += mine
        excess[folder.name] = {"method": mine[0]["method"], "protocol": mine[0]["protocol"], "seed": mine[0]["seed"],
                               "vocab": mine[0]["vocab"],
                               "excess_loss": float(np.mean([r["gap"] for r in mine])),
                               "bayes_loss": float(np.mean([r["ce_bayes"] for r in mine])),
                               "model_loss": float(np.mean([r["ce_model"] for r in mine]))}
        if progress:
            print(f"[{number}/{len(folders)}] {mine[0]['method']} [{mine[0]['protocol']}] seed {mine[0]['seed']} "
                  f"(V = {mine[0]['vocab']}): "
                  f"excess loss {excess[folder.name]['excess_loss']:.3f} nats/token", flush=True)
    if not rows:
        raise ConfigError("no run has a denoiser gap: " + "; ".join(f"{k}: {v}" for k, v in skipped.items()))
    summary = summarise(excess)
    out_dir = Path(out_dir)
    buffer = io.StringIO()
    writer = csv.writer(buffer, lineterminator="\n")
    writer.writerow(COLUMNS)
    for r in rows:
        writer.writerow([r[k] if isinstance(r[k], (str, int)) else f"{r[k]:.8g}" for k in COLUMNS])
    atomic_write_text(out_dir / "denoiser_gap.csv", buffer.getvalue())
    result = {"summary": summary, "runs": excess, "skipped": skipped, "rows": rows,
              "settings": {"cells": cells, "sequences": sequences, "seed": seed, "protocol": protocol or "any",
                           "times": "midpoints of equal cells of [0, t_max]; mean gap = excess training loss"}}
    atomic_write_json(out_dir / "denoiser_gap.json", result)
    _plot(rows, summary, out_dir / "denoiser_gap.png")
    return result


def summarise(excess: dict[str, dict[str, Any]]) -> list[dict[str, Any]]:
    """Per method, protocol and V: the mean excess loss over seeds, its 95 % bootstrap interval over seeds."""
    groups: dict[tuple[str, str, int], list[float]] = defaultdict(list)
    for r in excess.values():
        groups[(r["method"], r["protocol"], r["vocab"])].append(r["excess_loss"])
    out = []
    for (method, protocol, vocab), values in sorted(groups.items(), key=lambda kv: (kv[0][2], kv[0][1], np.mean(kv[1]))):
        out.append({"method": method, "protocol": protocol, "vocab": vocab, "excess_loss": float(np.mean(values)),
                    "seeds": len(values), "ci95": mean_interval(values) if len(values) > 1 else None})
    return out


def _plot(rows, summary, path: Path) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    vocabs = sorted({r["vocab"] for r in rows})
    fig, axes = plt.subplots(1, len(vocabs), figsize=(6 * len(vocabs), 4.2), squeeze=False)
    for ax, vocab in zip(axes[0], vocabs):
        for method, protocol in dict.fromkeys((s["method"], s["protocol"]) for s in summary if s["vocab"] == vocab):
            mine = [r for r in rows if r["vocab"] == vocab and r["method"] == method and r["protocol"] == protocol]
            times = sorted({r["t"] for r in mine})
            gaps = np.array([[r["gap"] for r in mine if r["t"] == t] for t in times])  # (T, seeds)
            style = "-" if protocol == "kl-flow" else "--"
            (line,) = ax.plot(times, gaps.mean(1), marker="o", linestyle=style, label=f"{method} [{protocol}]")
            if gaps.shape[1] > 1:
                ax.fill_between(times, gaps.min(1), gaps.max(1), color=line.get_color(), alpha=0.2, linewidth=0)
        ax.axhline(0.0, color="gray", linewidth=1)
        ax.set(xlabel="t", ylabel="CE(model) − CE(Bayes-optimal)  [nats/token]",
               title=f"denoiser gap, V = {vocab:,} (band: seeds' range)")
        ax.grid(alpha=0.3)
        ax.legend(fontsize="small")
    fig.tight_layout()
    with atomic_open(path, "wb") as handle:
        fig.savefig(handle, format="png", dpi=120)
    plt.close(fig)
