"""Time reparameterisation by decoding error (FLM, Lee et al. 2026), for any path.

A trained denoiser's decoding error e(t) — its cross-entropy −log p_θ(x1 | x_t) on held-out
data at a fixed t — falls from ≈ the unigram entropy at t = 0 to ≈ 0 near t = 1, but not
evenly: on large vocabularies it stays flat for a long while and then collapses over a short
stretch of t. A uniform grid wastes most of its steps where nothing is decided. The warp

    ρ(t) = (e(0) − ẽ(t)) / (e(0) − ẽ(t_max)),   ẽ(t) = min_{s ≤ t} e(s)  (made monotone)

measures time in "fraction of the decoding error removed"; the sampler grid ``error`` puts
t_n = ρ⁻¹(n / N), so every step removes the same share of decoding error. ρ is piecewise
linear between the measured points (a tiny slope keeps it strictly increasing, so ρ⁻¹ exists).
The curve is measured once per checkpoint (``pathbench study reparam``) and stored in its
calibration.json, so any path — and any sampler of it — can use it through ``grid=error``; and
training can draw its times the same way (``method.time_warp=<that run>``: t = ρ⁻¹(u), u ~ U(0,1),
the FLM recipe of a short run, ``pathbench study reparam``, then the real run on warped time).
"""

from __future__ import annotations

from pathlib import Path

import torch
from tqdm import tqdm

from pathbench.core.errors import ConfigError
from pathbench.core.io import atomic_open
from pathbench.data.corpus import held_out_batches
from pathbench.engine.calibration import store_calibration
from pathbench.engine.run import load_run
from pathbench.engine.schedule import TimeWarp  # the value lives in the engine, beside the sampler


@torch.no_grad()
def measure_decoding_error(method, model: torch.nn.Module, batches: list, times: list[float], *,
                           seed: int = 1234, device: str = "cpu") -> tuple[list[float], list[float]]:
    """Held-out cross-entropy and argmax error rate of the denoiser at each fixed t.

    The same noise seed at every t, so the curve is smooth in t rather than in the draws.
    """
    if not hasattr(method, "denoise_at"):
        raise ConfigError(f"method '{type(method).__name__}' has no denoiser at a fixed t "
                          "(only simplex paths and their flow-map students can be reparameterised)")
    if not batches:
        raise ConfigError("no held-out batch to measure the decoding error on")
    ce, err = [], []
    for t in tqdm(times, desc="decoding error vs t"):
        generator = torch.Generator(device).manual_seed(seed)
        total, wrong, count = 0.0, 0.0, 0.0
        for batch in batches:
            ids, given = batch.ids.to(device), batch.given.to(device)
            t_vec = torch.full((ids.shape[0],), t, dtype=torch.float32, device=device)
            logits = method.denoise_at(model, ids, given, t_vec, generator).float()
            keep = ~given
            nll = torch.nn.functional.cross_entropy(logits.transpose(1, 2), ids, reduction="none")
            total += nll[keep].sum().item()
            wrong += (logits.argmax(-1) != ids)[keep].sum().item()
            count += keep.sum().item()
        ce.append(total / max(count, 1.0))
        err.append(wrong / max(count, 1.0))
    return ce, err


def fit_time_warp(ckpt: Path, *, points: int = 33, batches: int = 8, batch_size: int = 16,
                  device: str = "cpu", out: Path | None = None) -> TimeWarp:
    """``pathbench study reparam``: measure e(t) on the run's held-out split, store it with the checkpoint."""
    if points < 2:
        raise ConfigError(f"points = {points} must be >= 2")
    method, model, _, meta, step, _ = load_run(ckpt, device)
    held_out = held_out_batches(meta["data"], batches, batch_size)
    t_max = method.path.t_max
    times = [t_max * k / (points - 1) for k in range(points)]
    ce, err = measure_decoding_error(method, model, held_out, times, device=device)
    warp = TimeWarp(times, ce, err, step)
    store_calibration(ckpt, "time_warp", warp.to_dict())
    if out is not None:
        plot_time_warp(warp, t_max, Path(out))
    return warp


def plot_time_warp(warp: TimeWarp, t_max: float, out: Path, nfe: int = 16) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, (left, right) = plt.subplots(1, 2, figsize=(10, 3.6))
    left.plot(warp.times, warp.error, marker=".", color="C0")
    left.set_xlabel("t")
    left.set_ylabel("held-out cross-entropy (nats)", color="C0")
    if warp.error_rate:
        rate = left.twinx()
        rate.plot(warp.times, warp.error_rate, ls="--", color="C1")
        rate.set_ylabel("argmax error rate", color="C1")
    grid = warp.grid(nfe, t_max).numpy()
    right.plot(warp.times, warp.forward(torch.tensor(warp.times)).numpy(), label="ρ(t)")
    right.vlines(grid, 0, 1, colors="gray", alpha=0.4, label=f"grid 'error', NFE {nfe}")
    right.set_xlabel("t")
    right.set_ylabel("share of decoding error removed")
    right.legend()
    fig.tight_layout()
    with atomic_open(out, "wb") as handle:
        fig.savefig(handle, format="png", dpi=120)
    plt.close(fig)
