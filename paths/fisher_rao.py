"""Fisher-Rao geodesic: great-circle arcs of s = √x on the unit sphere (Davis et al. 2024).

The map x ↦ s = √x sends the simplex isometrically (up to a factor 2) onto the positive
orthant of the unit sphere under the Fisher-Rao metric, so the geodesic is the slerp

    Ω = arccos⟨s0, s1⟩,   s_t = [sin((1-t)Ω)·s0 + sin(tΩ)·s1] / sin Ω,   x_t = s_t²

with velocity u_t(s | s1) = Log_s(s1) / (1-t), where the sphere's logarithm is
Log_s(y) = θ/sin θ · (y - cos θ · s), θ = arccos⟨s, y⟩.

For smoothed one-hot targets s1^(k) = b·1 + (a-b)·e_k (a = √(1-β+β/V), b = √(β/V)) the
marginal velocity needs only c_k = ⟨s, s1^(k)⟩ = b·Σs + (a-b)·s_k, so with
g_k = w_k θ_k / sin θ_k:

    E_w[Log_s(s1)] = b·(Σ_k g_k)·1 + (a-b)·g - (Σ_k g_k c_k)·s          — O(V), not O(V²).

Steps follow the sphere's exponential map, Exp_s(u) = cos‖u‖·s + sin‖u‖·u/‖u‖.

The in-place operations use the same two-level structure of s1: ⟨s0, s1⟩ = b·Σs0 + (a-b)·s0_i
per position, so slerp toward a token is a scale, a shift and one scatter, and
⟨g, c⟩ = b·Σs·Σg + (a-b)·⟨g, s⟩ needs no second (B,S,V) buffer.
"""

from __future__ import annotations

import math

import torch
from torch import Tensor

from pathbench.core.registry import PATHS
from pathbench.paths.base import SimplexPath, expand_time, exponential_, one_hot, sample_log_dirichlet1, smooth


def _dot(a: Tensor, b: Tensor) -> Tensor:
    return (a * b).sum(-1, keepdim=True)


def _theta_over_sin(cos: Tensor) -> Tensor:
    """θ / sin θ for θ = arccos(cos), continuous through θ = 0 (value 1)."""
    theta = torch.arccos(cos.clamp(-1.0, 1.0))
    small = theta < 1e-6
    safe_sin = torch.where(small, torch.ones_like(theta), torch.sin(theta))
    return torch.where(small, 1.0 + theta * theta / 6.0, theta / safe_sin)


def sphere_log(s: Tensor, y: Tensor) -> Tensor:
    """Log_s(y): the tangent vector at s of length θ pointing along the arc to y."""
    cos = _dot(s, y)
    return _theta_over_sin(cos) * (y - cos * s)


def _slerp_coefficients(cos: Tensor, t: Tensor) -> tuple[Tensor, Tensor]:
    """(c0, c1) of s_t = c0·s0 + c1·s1 for ⟨s0, s1⟩ = cos, with the chord where Ω ≈ 0."""
    omega = torch.arccos(cos.clamp(-1.0, 1.0))
    small = omega < 1e-7
    sin_omega = torch.where(small, torch.ones_like(omega), torch.sin(omega))
    c0 = torch.where(small, 1.0 - t, torch.sin((1.0 - t) * omega) / sin_omega)
    c1 = torch.where(small, t + 0.0 * omega, torch.sin(t * omega) / sin_omega)
    return c0, c1


def sphere_exp_(s: Tensor, u: Tensor) -> Tensor:
    """s ← Exp_s(u) in place. x = s² forgets the sign of s, so the result is folded back into
    the positive orthant and re-normalised (rounding never drifts the state off the sphere)."""
    norm = u.norm(dim=-1, keepdim=True)
    small = norm < 1e-12
    sinc = torch.where(small, 1.0 - norm * norm / 6.0, torch.sin(norm) / torch.where(small, 1.0, norm))
    s.mul_(torch.cos(norm)).addcmul_(u, sinc).abs_()
    return s.div_(s.norm(dim=-1, keepdim=True))


@PATHS.register("fisher_rao", "fr", "sphere")
class FisherRaoPath(SimplexPath):
    """Geodesic of the Fisher-Rao metric: z = s = √x on the unit sphere."""

    def sample_prior(self, shape, *, generator=None, dtype=torch.float64, device=None) -> Tensor:
        return (0.5 * sample_log_dirichlet1(shape, generator=generator, dtype=dtype, device=device)).exp()

    def target(self, ids: Tensor, vocab_size: int, dtype: torch.dtype = torch.float64) -> Tensor:
        return smooth(one_hot(ids, vocab_size, dtype), self.beta).sqrt()

    def interpolate(self, z0: Tensor, z1: Tensor, t) -> Tensor:
        c0, c1 = _slerp_coefficients(_dot(z0, z1), expand_time(t, z0))
        return c0 * z0 + c1 * z1

    def cond_velocity(self, z_t: Tensor, z1: Tensor, t) -> Tensor:
        return sphere_log(z_t, z1) / (1.0 - expand_time(t, z_t))

    def expected_velocity(self, z_t: Tensor, w: Tensor, t) -> Tensor:
        b, a = self._levels(z_t.shape[-1])
        w = w.to(z_t.dtype)
        c = self._target_cos(z_t)
        g = w * _theta_over_sin(c)
        mean_log = b * g.sum(-1, keepdim=True) + (a - b) * g - _dot(g, c) * z_t
        return mean_log / (1.0 - expand_time(t, z_t))

    def step(self, z: Tensor, v: Tensor, t, h) -> Tensor:
        return sphere_exp_(z.clone(), expand_time(h, z) * v)

    # --- in-place operations ----------------------------------------------------------
    def _levels(self, vocab: int) -> tuple[float, float]:
        """(b, a): the coordinates of s1 off and on its token."""
        return math.sqrt(self.beta / vocab), math.sqrt(1.0 - self.beta + self.beta / vocab)

    def _target_cos(self, z: Tensor) -> Tensor:
        """c_k = ⟨z, s1^(k)⟩ = b·Σz + (a-b)·z_k for every token k. (..., V)"""
        b, a = self._levels(z.shape[-1])
        return b * z.sum(-1, keepdim=True) + (a - b) * z

    def _token_cos(self, z: Tensor, index: Tensor) -> Tensor:
        """⟨z, s1(i)⟩ = b·Σz + (a-b)·z_i per position, for tokens ``index`` (B, S, 1)."""
        b, a = self._levels(z.shape[-1])
        return b * z.sum(-1, keepdim=True) + (a - b) * z.gather(-1, index)  # (B, S, 1)

    def prior_(self, out: Tensor, generator=None) -> Tensor:
        exponential_(out, generator).sqrt_()  # √E / ‖√E‖ = √(E / ΣE)
        return out.div_(out.norm(dim=-1, keepdim=True))

    def interpolate_token_(self, z0: Tensor, ids: Tensor, t) -> Tensor:
        b, a = self._levels(z0.shape[-1])
        index = ids.unsqueeze(-1)
        c0, c1 = _slerp_coefficients(self._token_cos(z0, index), expand_time(t, z0))
        z0.mul_(c0).add_(c1 * b)
        return z0.scatter_add_(-1, index, (c1 * (a - b)).expand(*ids.shape, 1).to(z0.dtype))

    def ode_step_(self, z: Tensor, w: Tensor, t: float, h: float, scratch: Tensor | None = None) -> Tensor:
        b, a = self._levels(z.shape[-1])
        k = scratch if scratch is not None else torch.empty_like(z)
        sum_z = z.sum(-1, keepdim=True)
        torch.mul(z, a - b, out=k).add_(b * sum_z).clamp_(-1.0, 1.0).arccos_()  # θ_k, c_k = <s, s1^(k)>
        # g_k = w_k θ_k / sin θ_k. Where θ_k = 0 the state is s1^(k) itself, whose Log term
        # g_k (s1^(k) - c_k s) vanishes whatever g_k is, so the clamped 0/tiny is exact there.
        g = w.mul_(k).div_(k.sin_().clamp_min_(torch.finfo(k.dtype).tiny))
        sum_g = g.sum(-1, keepdim=True)
        g_dot_z = ((g.unsqueeze(-2) @ z.unsqueeze(-1)).squeeze(-1) if g.dtype == z.dtype  # (B, S, 1)
                   else (g * z).sum(-1, keepdim=True))  # a matmul forms no (B,S,V) product
        g_dot_c = b * sum_z * sum_g + (a - b) * g_dot_z
        scale = h / (1.0 - t)
        u = g.mul_((a - b) * scale).add_(b * scale * sum_g).addcmul_(z, -scale * g_dot_c)
        return sphere_exp_(z, u)

    def token_step_(self, z: Tensor, ids: Tensor, t: float, h: float,
                    scratch: Tensor | None = None) -> Tensor:
        b, a = self._levels(z.shape[-1])
        index = ids.unsqueeze(-1)
        cos = self._token_cos(z, index)
        coef = _theta_over_sin(cos) * (h / (1.0 - t))  # u = coef·(s1 - cos·s)
        u = scratch if scratch is not None else torch.empty_like(z)
        torch.mul(z, -coef * cos, out=u).add_(coef * b)
        u.scatter_add_(-1, index, (coef * (a - b)).to(u.dtype))
        return sphere_exp_(z, u)

    def model_input_(self, z: Tensor, out: Tensor) -> Tensor:
        return torch.mul(z, z, out=out)

    def to_probs(self, z: Tensor) -> Tensor:
        return z * z

    def log_probs(self, z: Tensor) -> Tensor:
        return 2.0 * torch.log(z.abs())

    def prob_velocity(self, z: Tensor, v: Tensor) -> Tensor:
        return 2.0 * z * v

    def token_log_likelihood(self, z_t: Tensor, t: float, chunk: int = 64) -> Tensor:
        """Given token i, s0 lies on the great circle from s1(i) through s_t, at angle
        Ω = θ/(1-t) from s1(i) (θ = ∠(s_t, s1(i))): s0(i) = A·s1(i) + B·s_t with
        A = cos Ω − sin Ω·cos θ / sin θ, B = sin Ω / sin θ. In geodesic polar coordinates around
        s1(i) the map s0 -> s_t scales the radius by (1-t), so the surface measure changes by
        (sin θ / sin Ω)^(V-2) / (1-t); the Dirichlet(1) prior has density ∝ Π_k s0_k on the sphere:

            log p(s_t | i) = Σ_k log s0_k(i) + (V-2)·(log sin Ω − log sin θ) + const,

        −inf where s0(i) leaves the positive orthant. O(V²) per position (each i has its own s0)."""
        V = z_t.shape[-1]
        s = z_t.double()
        b, a = self._levels(V)
        cos = (b * s.sum(-1, keepdim=True) + (a - b) * s).clamp(-1.0, 1.0)  # (N, V): ⟨s_t, s1(i)⟩
        theta = torch.arccos(cos).clamp_min(1e-12)
        omega = theta / (1.0 - t)
        A = torch.cos(omega) - torch.sin(omega) * cos / torch.sin(theta)
        B = torch.sin(omega) / torch.sin(theta)
        out = torch.empty_like(s)
        for first in range(0, V, chunk):  # (N, C, V) at a time: s0 of C candidate tokens
            idx = slice(first, first + chunk)
            s0 = A[:, idx, None] * b + B[:, idx, None] * s[:, None, :]  # off-token coordinates
            own = torch.arange(first, min(first + chunk, V))
            s0[:, torch.arange(len(own)), own] += A[:, idx] * (a - b)
            logs = torch.where(s0 > 0, torch.log(s0.clamp_min(1e-300)), -torch.inf).sum(-1)
            out[:, idx] = logs + (V - 2) * (torch.log(torch.sin(omega[:, idx]).clamp_min(1e-300))
                                            - torch.log(torch.sin(theta[:, idx])))
        return torch.where(omega <= math.pi / 2, out, -torch.inf)
