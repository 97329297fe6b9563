"""The time-warp value: a decoding-error curve ρ(t) and the grids and training times it gives.

ρ(t) = (e(0) − ẽ(t)) / (e(0) − ẽ(t_max)) with ẽ the running minimum of the measured decoding
error e(t); piecewise linear between measured points, strictly increasing, so ρ⁻¹ exists.
``pathbench study reparam`` (pathbench.studies.time_warp) measures it; the sampler's ``grid=error`` and
training's ``method.time_warp`` read it. A value of the engine: it imports nothing above it.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass
from typing import Any

import torch
from torch import Tensor

from pathbench.core.errors import ConfigError


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
                              f"the path integrates on [0, {t_max}]; run `pathbench study reparam` again")
        times = self.inverse(torch.linspace(0.0, 1.0, nfe + 1, dtype=torch.float64))
        times[0], times[-1] = 0.0, t_max
        return times


def _interp(x: Tensor, xp: Tensor, fp: Tensor) -> Tensor:
    """Piecewise-linear interpolation of (xp, fp) at x (xp increasing), clamped at the ends."""
    x = x.clamp(xp[0], xp[-1])
    idx = torch.searchsorted(xp, x, right=True).clamp(1, len(xp) - 1)
    x0, x1, f0, f1 = xp[idx - 1], xp[idx], fp[idx - 1], fp[idx]
    return f0 + (f1 - f0) * (x - x0) / (x1 - x0)
