"""Exact KL-path posterior p(x1 | x_t) vs a brute-force change of variables, and the posterior-gap
diagnostic."""

import json
import math

import pytest
import torch

from pathbench.core.errors import ConfigError
from pathbench.paths.posterior import exact_posterior_log, geodesic_posterior_log, kl_categorical
from pathbench.studies.posterior_gap import crossing, posterior_gap, write_posterior_gap

BETA = 0.1


def smoothed_log(i, vocab, beta=BETA):
    x1 = torch.full((vocab,), beta / vocab, dtype=torch.float64)
    x1[i] += 1 - beta
    return x1.log()


def forward(x0_free, i, t, vocab=3):
    """(x0_1, x0_2) -> (x_t,1, x_t,2) on the 2-simplex for token i."""
    x0 = torch.cat([x0_free, 1 - x0_free.sum(0, keepdim=True)])
    xt = torch.softmax((1 - t) * x0.log() + t * smoothed_log(i, vocab), 0)
    return xt[:2]


def inverse(xt, i, t, vocab=3):
    x0 = torch.softmax((xt.log() - t * smoothed_log(i, vocab)) / (1 - t), 0)
    return x0[:2]


def brute_force_posterior(xt, t, prior):
    """Bayes by the change of variables p(x_t | i) = p0(x0) / |det ∂x_t/∂x0| (p0 = 2, the
    Dirichlet(1,1,1) density), the Jacobian of the forward map taken by autograd."""
    dens = []
    for i in range(3):
        x0 = inverse(xt, i, t)
        jac = torch.autograd.functional.jacobian(lambda z: forward(z, i, t), x0)  # (2, 2)
        dens.append(prior[i] * 2.0 / abs(torch.linalg.det(jac).item()))
    total = sum(dens)
    return torch.tensor([d / total for d in dens], dtype=torch.float64)


@pytest.mark.parametrize("t", [0.1, 0.3, 0.6, 0.85])
@pytest.mark.parametrize("prior", [(1 / 3, 1 / 3, 1 / 3), (0.6, 0.3, 0.1)])
def test_exact_posterior_matches_brute_force_change_of_variables_for_v3(t, prior):
    g = torch.Generator().manual_seed(int(100 * t))
    for _ in range(3):
        xt = torch.softmax(torch.randn(3, generator=g, dtype=torch.float64), 0)
        got = exact_posterior_log(xt.log()[None], t, BETA, torch.tensor(prior, dtype=torch.float64).log())[0].exp()
        torch.testing.assert_close(got, brute_force_posterior(xt, t, prior), rtol=1e-9, atol=1e-12)


@pytest.mark.parametrize("t", [0.15, 0.3, 0.45])
def test_exact_posterior_matches_monte_carlo_integration_for_v3(t):
    """Independent of any Jacobian: draw (token, x0) from the generative model, push x0 along the
    path, and count which token produced the x_t that land in a small disc around a fixed point.
    The frequencies integrate p(x_t | i) over the disc; they agree with Bayes' rule to Monte
    Carlo error: within four binomial standard errors (hundreds to thousands of hits per token)."""
    prior = torch.tensor([0.5, 0.3, 0.2], dtype=torch.float64)
    target = torch.tensor([0.45, 0.35, 0.2], dtype=torch.float64)
    g = torch.Generator().manual_seed(7)
    n, radius = 4_000_000, 0.02
    tokens = torch.multinomial(prior, n, replacement=True, generator=g)
    x0 = -torch.rand(n, 3, generator=g, dtype=torch.float64).log()  # Dirichlet(1): normalised Exp(1) draws
    x0 = x0 / x0.sum(-1, keepdim=True)
    x1 = torch.stack([smoothed_log(i, 3) for i in range(3)])[tokens]  # (n, 3)
    xt = torch.softmax((1 - t) * x0.log() + t * x1, -1)
    near = (xt[:, :2] - target[:2]).norm(dim=-1) < radius
    counts = torch.bincount(tokens[near], minlength=3).double()
    assert counts.min() > 400
    exact = exact_posterior_log(target.log()[None], t, BETA, prior.log())[0].exp()
    standard_error = (exact * (1 - exact) / counts.sum()).sqrt()
    assert ((counts / counts.sum() - exact).abs() < 4 * standard_error).all()


@pytest.mark.parametrize("vocab", [3, 10, 1000])
def test_posteriors_are_distributions(vocab):
    g = torch.Generator().manual_seed(vocab)
    log_xt = torch.log_softmax(torch.randn(5, vocab, generator=g, dtype=torch.float64) * 3, -1)
    prior = torch.log_softmax(torch.randn(vocab, generator=g, dtype=torch.float64), -1)
    for t in (0.05, 0.28, 0.7, 0.99):
        for lp in (None, prior):
            for log_p in (exact_posterior_log(log_xt, t, 0.01, lp), geodesic_posterior_log(log_xt, t)):
                torch.testing.assert_close(log_p.logsumexp(-1), torch.zeros(5, dtype=torch.float64),
                                           rtol=0, atol=1e-12)


def test_late_in_time_both_posteriors_find_the_token_and_point_mass_kl_is_minus_log_q():
    vocab, token = 500, 7
    g = torch.Generator().manual_seed(0)
    l0 = torch.log_softmax(torch.randn(4, vocab, generator=g, dtype=torch.float64), -1)
    l1 = smoothed_log(token, vocab, 0.01).expand(4, vocab)
    log_xt = torch.log_softmax(0.05 * l0 + 0.95 * l1, -1)
    exact, approx = exact_posterior_log(log_xt, 0.95, 0.01), geodesic_posterior_log(log_xt, 0.95)
    assert (exact.exp()[:, token] > 0.999).all() and (approx.exp()[:, token] > 0.98).all()
    point = torch.full((vocab,), -math.inf, dtype=torch.float64)
    point[token] = 0.0
    exact_pm = exact_posterior_log(log_xt, 0.95, 0.01, point)
    torch.testing.assert_close(kl_categorical(exact_pm, approx), -approx[:, token])


def test_the_gap_closes_over_time_and_crosses_the_threshold():
    times = [0.05, 0.2, 0.5, 0.8]
    for prior in ("point_mass", "uniform"):
        rows = posterior_gap(1000, times, prior, 64, 0.01, torch.Generator().manual_seed(0), progress=False)
        kl = [r["kl_mean"] for r in rows]
        assert kl[0] > 5.0 and kl[-1] < 0.05 and kl[0] > kl[1] > kl[-1]
        assert crossing(rows, 0.1) in (0.5, 0.8)


def test_write_posterior_gap_files_and_bad_input(tmp_path):
    result = write_posterior_gap(tmp_path, vocab=200, n_samples=16, points=9)
    lines = (tmp_path / "posterior_gap.csv").read_text().splitlines()
    assert lines[0] == "prior,vocab,t,kl_mean,kl_std,exact_entropy" and len(lines) == 1 + 2 * 9
    saved = json.loads((tmp_path / "crossing.json").read_text())
    assert saved["crossing"] == result["crossing"] and set(saved["crossing"]) == {"point_mass", "uniform"}
    assert saved["sharp"]["point_mass"] == pytest.approx(0.1)  # a point mass is sharp from the first t
    assert (tmp_path / "posterior_gap.png").stat().st_size > 0
    for kwargs, message in [({"beta": 0.0}, "beta = 0.0 is outside"), ({"beta": 1.0}, "beta = 1.0 is outside"),
                            ({"priors": ("zipf",)}, "unknown prior 'zipf'; known: point_mass, uniform"),
                            ({"vocab": 1}, "vocab = 1 must be >= 2"), ({"threshold": 0}, "threshold = 0")]:
        with pytest.raises(ConfigError, match=message):
            write_posterior_gap(tmp_path, **{"n_samples": 2, "points": 3, **kwargs})
