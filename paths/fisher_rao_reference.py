"""The KL-flow reference's Fisher-Rao path (its ``Sphere``): the same great circle, another clock.

pathbench's ``fisher_rao`` (Davis et al.) moves along the arc from s0 = √x0 to the smoothed
target at constant angular speed, φ_t = (1−t)·Ω, where φ_t is the angle still to go and
Ω = arccos⟨s0, s1⟩. The reference code (EgorSevriugov/KL-Flow, ``FM_utils.py``) draws its
Fisher-Rao row differently: toward the **unsmoothed** one-hot (β = 0, so s1 = e_i) and on the
clock

    tan(φ_t / 2) = (1 − t) · tan(Ω / 2),

i.e. s_t is the slerp from s0 to s1 at the fraction 1 − φ_t/Ω. Differentiating,
dφ/dt = −sin φ_t / (1 − t), which is known from s_t alone (φ_t = arccos⟨s_t, s1⟩), so the
conditional velocity is the tangent part of the chord to the target

    u_t(s | s1) = (s1 − ⟨s, s1⟩·s) / (1 − t)      (= Log_s(s1) · sin φ / (φ (1 − t))),

affine in s1 once projected: the marginal velocity for the denoiser's w is
(E_w[s1] − (Σ_k w_k c_k)·s) / (1 − t), c_k = ⟨s, s1^(k)⟩, E_w[s1] = b·1 + (a − b)·w — O(V).
A step moves along the velocity's great circle by the angle the clock prescribes: the velocity's
norm gives sin φ_t·(1 − t)⁻¹, hence φ_t (≤ π/2 in the positive orthant), and
tan(φ_{t+h}/2) = tan(φ_t/2)·(1 − t − h)/(1 − t); so a step with the exact target lands on it, as
every path's does, and the same rule integrates the marginal velocity. Its single-token likelihood
is not derived here (``pathbench study denoiser-gap`` lists it as not tractable).
"""

from __future__ import annotations

import torch
from torch import Tensor

from pathbench.core.registry import PATHS
from pathbench.paths.base import SimplexPath, expand_time
from pathbench.paths.fisher_rao import FisherRaoPath, _dot, _slerp_coefficients, sphere_exp_


def reference_fraction(cos: Tensor, t: Tensor) -> Tensor:
    """The slerp fraction 1 − φ_t/Ω of the reference clock for ⟨s0, s1⟩ = cos (→ t as Ω → 0)."""
    omega = torch.arccos(cos.clamp(-1.0, 1.0))
    small = omega < 1e-6
    safe = torch.where(small, torch.ones_like(omega), omega)
    phi = 2.0 * torch.atan((1.0 - t) * torch.tan(0.5 * safe))
    return torch.where(small, t + 0.0 * omega, 1.0 - phi / safe)


@PATHS.register("fisher_rao_ref", "sphere_ref")
class FisherRaoReferencePath(FisherRaoPath):
    """Fisher-Rao great circle toward the unsmoothed one-hot on the KL-flow reference's clock."""

    default_beta = 0.0

    def interpolate(self, z0: Tensor, z1: Tensor, t) -> Tensor:
        cos = _dot(z0, z1)
        c0, c1 = _slerp_coefficients(cos, reference_fraction(cos, expand_time(t, z0)))
        return c0 * z0 + c1 * z1

    def cond_velocity(self, z_t: Tensor, z1: Tensor, t) -> Tensor:
        return (z1 - _dot(z_t, z1) * z_t) / (1.0 - expand_time(t, z_t))

    def expected_velocity(self, z_t: Tensor, w: Tensor, t) -> Tensor:
        b, a = self._levels(z_t.shape[-1])
        w = w.to(z_t.dtype)
        c = self._target_cos(z_t)  # (..., V): c_k = <s, s1^(k)>
        return (b + (a - b) * w - _dot(w, c) * z_t) / (1.0 - expand_time(t, z_t))

    def step(self, z: Tensor, v: Tensor, t, h) -> Tensor:
        t, h = expand_time(t, z), expand_time(h, z)
        norm = v.norm(dim=-1, keepdim=True)
        phi = torch.asin((norm * (1.0 - t)).clamp(0.0, 1.0))
        remaining = (1.0 - t - h).clamp_min(0.0) / (1.0 - t)
        angle = phi - 2.0 * torch.atan(torch.tan(0.5 * phi) * remaining)  # how far the clock moves
        direction = v / norm.clamp_min(1e-300)
        return sphere_exp_(z.clone(), direction * angle)

    def interpolate_token_(self, z0: Tensor, ids: Tensor, t) -> Tensor:
        b, a = self._levels(z0.shape[-1])
        index = ids.unsqueeze(-1)
        cos = self._token_cos(z0, index)
        c0, c1 = _slerp_coefficients(cos, reference_fraction(cos, expand_time(t, z0)))
        z0.mul_(c0).add_(c1 * b)
        return z0.scatter_add_(-1, index, (c1 * (a - b)).expand(*ids.shape, 1).to(z0.dtype))

    # the fused steps of fisher_rao are written for its own clock: these go through the API above
    ode_step_ = SimplexPath.ode_step_
    token_step_ = SimplexPath.token_step_
    token_log_likelihood = SimplexPath.token_log_likelihood
