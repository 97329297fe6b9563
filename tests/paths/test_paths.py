"""Invariants and known answers of every registered path, in float64."""

import math

import pytest
import torch

import pathbench.paths  # noqa: F401  (registers the paths)
from pathbench.core.errors import ConfigError
from pathbench.core.registry import PATHS
from pathbench.paths.base import one_hot, time_grid
from pathbench.paths.kl import KLPath

V = 7
ALL = ["linear", "fisher_rao", "fisher_rao_ref", "kl", "euclidean"]
SIMPLEX = ["linear", "fisher_rao", "fisher_rao_ref", "kl"]


def endpoints(name, batch=4, vocab=V, seed=0, **options):
    path = PATHS.build(name, **options)
    g = torch.Generator().manual_seed(seed)
    ids = torch.randint(vocab, (batch,), generator=g)
    z0 = path.sample_prior((batch, vocab), generator=g)
    return path, ids, z0, path.target(ids, vocab)


@pytest.mark.parametrize("name", SIMPLEX)
def test_path_stays_on_simplex_with_exact_endpoints(name):
    path, _, z0, z1 = endpoints(name)
    for t in torch.linspace(0, 1, 21, dtype=torch.float64).tolist():
        x = path.to_probs(path.interpolate(z0, z1, t))
        assert (x >= 0).all()
        torch.testing.assert_close(x.sum(-1), torch.ones(4, dtype=torch.float64), atol=1e-12, rtol=0)
    torch.testing.assert_close(path.interpolate(z0, z1, 0.0), z0, atol=1e-12, rtol=0)
    torch.testing.assert_close(path.interpolate(z0, z1, 1.0), z1, atol=1e-12, rtol=0)
    x1 = path.to_probs(z1)
    # the smoothed target (β = 0.01 by default; fisher_rao_ref: the reference's unsmoothed one-hot)
    expect = 1 - path.beta + path.beta / V
    assert path.beta == (0.0 if name == "fisher_rao_ref" else 0.01)
    torch.testing.assert_close(x1.max(-1).values, torch.full((4,), expect, dtype=torch.float64))


def test_fisher_rao_state_stays_on_unit_sphere():
    path, _, z0, z1 = endpoints("fisher_rao", vocab=50)
    for t in (0.0, 0.13, 0.5, 0.97, 1.0):
        norms = path.interpolate(z0, z1, t).norm(dim=-1)
        torch.testing.assert_close(norms, torch.ones_like(norms), atol=1e-12, rtol=0)


@pytest.mark.parametrize("name", ALL)
@pytest.mark.parametrize("t", [0.05, 0.3, 0.5, 0.9])
def test_cond_velocity_is_derivative_of_interpolate(name, t):
    path, _, z0, z1 = endpoints(name)
    eps = 1e-6
    fd = (path.interpolate(z0, z1, t + eps) - path.interpolate(z0, z1, t - eps)) / (2 * eps)
    v = path.cond_velocity(path.interpolate(z0, z1, t), z1, t)
    rel = (v - fd).norm() / fd.norm()
    assert rel < 1e-5


@pytest.mark.parametrize("name", ALL)
def test_expected_velocity_matches_brute_force_mixture(name):
    path, _, z0, z1 = endpoints(name)
    t = torch.tensor([0.1, 0.4, 0.6, 0.85], dtype=torch.float64)
    z_t = path.interpolate(z0, z1, t)
    g = torch.Generator().manual_seed(1)
    w = torch.softmax(3 * torch.randn(4, V, generator=g, dtype=torch.float64), -1)
    brute = sum(
        w[:, i : i + 1] * path.cond_velocity(z_t, path.target(torch.full((4,), i), V), t)
        for i in range(V)
    )
    torch.testing.assert_close(path.expected_velocity(z_t, w, t), brute, atol=1e-12, rtol=1e-10)


@pytest.mark.parametrize("name", ALL)
def test_expected_velocity_one_hot_and_linear_in_w(name):
    path, ids, z0, z1 = endpoints(name)
    z_t = path.interpolate(z0, z1, 0.37)
    torch.testing.assert_close(
        path.expected_velocity(z_t, one_hot(ids, V), 0.37), path.cond_velocity(z_t, z1, 0.37),
        atol=1e-12, rtol=1e-10,
    )
    g = torch.Generator().manual_seed(2)
    w1 = torch.softmax(torch.randn(4, V, generator=g, dtype=torch.float64), -1)
    w2 = torch.softmax(torch.randn(4, V, generator=g, dtype=torch.float64), -1)
    a = 0.3
    mix = path.expected_velocity(z_t, a * w1 + (1 - a) * w2, 0.37)
    parts = a * path.expected_velocity(z_t, w1, 0.37) + (1 - a) * path.expected_velocity(z_t, w2, 0.37)
    torch.testing.assert_close(mix, parts, atol=1e-12, rtol=1e-10)


@pytest.mark.parametrize("name", ALL)
@pytest.mark.parametrize("grid", ["uniform", "log"])
def test_path_step_with_exact_target_lands_on_x1(name, grid):
    t_max = 1.0 if grid == "uniform" else 0.999
    path, _, z0, z1 = endpoints(name, t_max=t_max, grid=grid)
    times = path.time_grid(8)
    z = z0
    for t, t_next in zip(times[:-1], times[1:]):
        z = path.step(z, path.cond_velocity(z, z1, t.item()), t.item(), (t_next - t).item())
    torch.testing.assert_close(z, path.interpolate(z0, z1, t_max), atol=1e-10, rtol=1e-10)


PULL_BACK = {"fisher_rao": torch.sqrt, "kl": torch.log}  # x -> path coordinates


def _euler_in_probabilities(path, to_z, z0, z1, t_end, steps):
    """Generic Euler on x (the simplex), pulling back to path coordinates each step."""
    x = path.to_probs(z0)
    h = t_end / steps
    for n in range(steps):
        z = to_z(x)
        x = x + h * path.prob_velocity(z, path.cond_velocity(z, z1, n * h))
    return x


@pytest.mark.parametrize("name", ["fisher_rao", "kl"])
def test_probability_space_euler_converges_at_first_order(name):
    path, _, z0, z1 = endpoints(name)
    exact = path.to_probs(path.interpolate(z0, z1, 0.6))
    errors = [(_euler_in_probabilities(path, PULL_BACK[name], z0, z1, 0.6, n) - exact).abs().max().item()
              for n in (40, 80, 160)]
    ratios = [errors[0] / errors[1], errors[1] / errors[2]]
    assert all(1.7 < r < 2.3 for r in ratios), (errors, ratios)


def test_kl_tau_euler_reference_update_is_first_order_on_log_grid():
    path, ids, z0, z1 = endpoints("kl", t_max=0.9, grid="log", update="tau_euler")
    w = one_hot(ids, V)  # an oracle denoiser that knows the target
    exact = path.to_probs(path.interpolate(z0, z1, 0.9))

    def error(nfe):
        times = path.time_grid(nfe)
        z = z0
        for t, t_next in zip(times[:-1].tolist(), times[1:].tolist()):
            z = path.step(z, path.expected_velocity(z, w, t), t, t_next - t)
        return (path.to_probs(z) - exact).abs().max().item()

    e = [error(n) for n in (16, 32, 64)]
    assert e[0] > 1e-4  # the reference update is not exact, unlike the plain Euler step
    assert all(1.7 < e[i] / e[i + 1] < 2.3 for i in range(2)), e


def test_kl_tau_euler_is_the_reference_update():
    path = KLPath(t_max=0.5, grid="log", update="tau_euler")
    g = torch.Generator().manual_seed(3)
    l = torch.randn(2, V, generator=g, dtype=torch.float64)
    w = torch.softmax(torch.randn(2, V, generator=g, dtype=torch.float64), -1)
    times = path.time_grid(4)
    t, h = times[1].item(), (times[2] - times[1]).item()
    d_tau = -math.log1p(-times[2].item()) + math.log1p(-t)
    expected = (1 - d_tau) * l + d_tau * path.expected_target(w)
    torch.testing.assert_close(path.step(l, path.expected_velocity(l, w, t), t, h), expected)


def test_dirichlet_prior_moments_and_large_vocab():
    path = PATHS.build("linear")
    x = path.sample_prior((20000, 5), generator=torch.Generator().manual_seed(0))
    torch.testing.assert_close(x.sum(-1), torch.ones(20000, dtype=torch.float64))
    # Dirichlet(1) on V=5: each coordinate ~ Beta(1, 4): mean 1/5, variance 4/(25·6)
    torch.testing.assert_close(x.mean(0), torch.full((5,), 0.2, dtype=torch.float64), atol=4e-3, rtol=0)
    torch.testing.assert_close(x.var(0), torch.full((5,), 4 / 150, dtype=torch.float64), atol=1.5e-3, rtol=0)
    big = PATHS.build("kl").sample_prior((2, 50000), generator=torch.Generator().manual_seed(0))
    assert torch.isfinite(big).all()
    torch.testing.assert_close(torch.logsumexp(big, -1), torch.zeros(2, dtype=torch.float64))


def test_euclidean_prior_is_gaussian_and_off_simplex():
    path = PATHS.build("euclidean", sigma=2.0)
    z = path.sample_prior((4000, 8), generator=torch.Generator().manual_seed(0))
    assert abs(z.std().item() - 2.0) < 0.05
    assert torch.equal(path.model_input(z), z)
    with pytest.raises(ConfigError, match="does not live on the simplex"):
        path.log_probs(z)


def test_time_grids():
    torch.testing.assert_close(time_grid(4), torch.tensor([0, 0.25, 0.5, 0.75, 1], dtype=torch.float64))
    log_grid = time_grid(5, t_max=0.9, kind="log")
    tau = -torch.log1p(-log_grid)
    torch.testing.assert_close(tau.diff(), torch.full((5,), tau[-1].item() / 5, dtype=torch.float64))
    assert log_grid[0] == 0 and abs(log_grid[-1].item() - 0.9) < 1e-12
    with pytest.raises(ConfigError, match="NFE = 0"):
        time_grid(0)
    with pytest.raises(ConfigError, match="needs t_max < 1"):
        time_grid(4, kind="log")
    with pytest.raises(ConfigError, match="unknown time grid 'cosine'; known: uniform, log"):
        time_grid(4, kind="cosine")


@pytest.mark.parametrize(
    "name, options, message",
    [
        ("kl", {"beta": 0.0}, r"path 'kl': beta = 0.0 is outside \(0, 1\)"),
        ("kl", {"beta": 1.0}, r"beta = 1.0 is outside \(0, 1\)"),
        ("linear", {"beta": -0.1}, r"beta = -0.1 is outside \[0, 1\)"),
        ("fisher_rao", {"t_max": 1.5}, r"t_max = 1.5 is outside \(0, 1\]"),
        ("linear", {"grid": "cos"}, "unknown time grid 'cos'; known: uniform, log"),
        ("kl", {"update": "rk4"}, "unknown kl update 'rk4'; known: euler, tau_euler"),
        ("linear", {"gamma": 1}, "unknown option 'gamma' for path 'linear'; valid: beta, "),
    ],
)
def test_bad_options_fail_with_one_line(name, options, message):
    with pytest.raises(ConfigError, match=message):
        PATHS.build(name, **options)


def test_beta_zero_allowed_for_linear_and_fisher_rao():
    for name in ("linear", "fisher_rao"):
        path, ids, z0, z1 = endpoints(name, beta=0.0)
        assert torch.equal(path.to_probs(z1).argmax(-1), ids)
        assert torch.isfinite(path.cond_velocity(path.interpolate(z0, z1, 0.5), z1, 0.5)).all()


def test_reference_fisher_rao_runs_on_the_reference_clock():
    """tan(φ_t/2) = (1 − t)·tan(Ω/2) with φ_t the angle still to go; the same great circle as fisher_rao."""
    path, ids, z0, z1 = endpoints("fisher_rao_ref")
    omega = torch.arccos((z0 * z1).sum(-1))
    for t in (0.1, 0.4, 0.8):
        z = path.interpolate(z0, z1, t)
        phi = torch.arccos((z * z1).sum(-1).clamp(-1, 1))
        torch.testing.assert_close(torch.tan(phi / 2), (1 - t) * torch.tan(omega / 2), atol=1e-10, rtol=1e-9)
        # on the arc from z0 to z1: z lies in their span
        fr = PATHS.build("fisher_rao", beta=0.0)
        frac = 1 - phi / omega
        torch.testing.assert_close(z, torch.stack([fr.interpolate(z0[i:i + 1], z1[i:i + 1], frac[i].item())[0]
                                                   for i in range(len(z0))]), atol=1e-10, rtol=1e-9)
