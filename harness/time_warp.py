"""Time reparameterisation by decoding error (FLM, Lee et al. 2026), for any path.

A trained denoiser's decoding error e(t) — its cross-entropy −log p_θ(x1 | x_t) on held-out
data at a fixed t — falls from ≈ the unigram entropy at t = 0 to ≈ 0 near t = 1, but not
evenly: on large vocabularies it stays flat for a long while and then collapses over a short
stretch of t. A uniform grid wastes most of its steps where nothing is decided. The warp

    ρ(t) = (e(0) − ẽ(t)) / (e(0) − ẽ(t_max)),   ẽ(t) = min_{s ≤ t} e(s)  (made monotone)

measures time in "fraction of the decoding error removed"; the sampler grid ``error`` puts
t_n = ρ⁻¹(n / N), so every step removes the same share of decoding error. ρ is piecewise
linear between the measured points (a tiny slope keeps it strictly increasing, so ρ⁻¹ exists).
The curve is measured once per checkpoint (``pathbench reparam``) and stored in its
calibration.json, so any path — and any sampler of it — can use it through ``grid=error``; and
training can draw its times the same way (``method.time_warp=<that run>``: t = ρ⁻¹(u), u ~ U(0,1),
the FLM recipe of a short run, ``pathbench reparam``, then the real run on warped time).
"""

from __future__ import annotations

from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

import torch
from torch import Tensor
from tqdm import tqdm

from harness.errors import ConfigError


@dataclass
class TimeWarp:
    """A measured decoding-error curve: times (K,) increasing in [0, t_max], error (K,) in nats."""

    times: list[float]
    error: list[float]
    error_rate: list[float] | None = None  # 1 - argmax accuracy, for the plot
    step: int | None = None

    def __post_init__(self) -> None:
        if len(self.times) < 2 or len(self.times) != len(self.error):
            raise ConfigError(f"a time warp needs >= 2 (t, error) points of equal count, got "
                              f"{len(self.times)} times and {len(self.error)} errors")
        if any(b <= a for a, b in zip(self.times, self.times[1:])):
            raise ConfigError("time-warp times must be strictly increasing")

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> "TimeWarp":
        return cls(**{k: data.get(k) for k in ("times", "error", "error_rate", "step")})

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)

    def _knots(self) -> tuple[Tensor, Tensor]:
        t = torch.tensor(self.times, dtype=torch.float64)
        e = torch.cummin(torch.tensor(self.error, dtype=torch.float64), dim=0).values
        drop = e[0] - e
        if drop[-1] <= 0:  # the model learned nothing over t: fall back to the identity
            rho = (t - t[0]) / (t[-1] - t[0])
        else:
            rho = drop / drop[-1]
        # a small share of plain time keeps ρ strictly increasing (flat stretches stay invertible)
        eps = 1e-3
        rho = (1 - eps) * rho + eps * (t - t[0]) / (t[-1] - t[0])
        return t, rho

    def forward(self, t: Tensor) -> Tensor:
        """ρ(t) in [0, 1] for t in [times[0], times[-1]]."""
        knots_t, knots_rho = (k.to(t.device) for k in self._knots())
        return _interp(t.to(torch.float64), knots_t, knots_rho)

    def inverse(self, u: Tensor) -> Tensor:
        """t = ρ⁻¹(u) for u in [0, 1]."""
        knots_t, knots_rho = (k.to(u.device) for k in self._knots())
        return _interp(u.to(torch.float64), knots_rho, knots_t)

    def grid(self, nfe: int, t_max: float) -> Tensor:
        """(nfe+1,) times 0 = t_0 < ... < t_nfe = t_max, equal steps of ρ."""
        if not isinstance(nfe, int) or nfe < 1:
            raise ConfigError(f"NFE = {nfe!r} must be an integer >= 1")
        if abs(self.times[0]) > 1e-9 or abs(self.times[-1] - t_max) > 1e-6:
            raise ConfigError(f"the time warp was measured on [{self.times[0]}, {self.times[-1]}], "
                              f"the path integrates on [0, {t_max}]; run `pathbench reparam` again")
        times = self.inverse(torch.linspace(0.0, 1.0, nfe + 1, dtype=torch.float64))
        times[0], times[-1] = 0.0, t_max
        return times


def _interp(x: Tensor, xp: Tensor, fp: Tensor) -> Tensor:
    """Piecewise-linear interpolation of (xp, fp) at x (xp increasing), clamped at the ends."""
    x = x.clamp(xp[0], xp[-1])
    idx = torch.searchsorted(xp, x, right=True).clamp(1, len(xp) - 1)
    x0, x1, f0, f1 = xp[idx - 1], xp[idx], fp[idx - 1], fp[idx]
    return f0 + (f1 - f0) * (x - x0) / (x1 - x0)


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
    """``pathbench reparam``: measure e(t) on the run's held-out split, store it with the checkpoint."""
    from harness.calibration import store_calibration
    from harness.data import held_out_batches
    from harness.run import load_run

    if points < 2:
        raise ConfigError(f"points = {points} must be >= 2")
    method, model, _, meta, step = load_run(ckpt, device)
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

    from harness.io import atomic_open

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
