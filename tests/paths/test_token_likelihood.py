"""Single-token likelihoods p(z_t | x1 = i): the observation model of the Bayes-optimal denoiser.

With a uniform prior over tokens, the posterior p(i | z_t) ∝ p(z_t | i) is calibrated exactly
when the likelihood is right: E[p(true | z_t)] = E[Σ_i p(i | z_t)²] (the true token is itself a
draw from the posterior), and no tempered version p^γ has a lower expected log loss.
"""

import math

import pytest
import torch

import pathbench.paths  # noqa: F401  (registers the built-in paths)
from pathbench.core.errors import ConfigError
from pathbench.core.registry import PATHS

DRAWS = 4000


def noised(name: str, vocab: int, t: float, seed: int = 0):
    path = PATHS.build(name)
    g = torch.Generator().manual_seed(seed)
    ids = torch.randint(vocab, (DRAWS,), generator=g)
    z = path.noise_(torch.empty(DRAWS, vocab, dtype=torch.float64), ids, t, g)
    return path, ids, z


@pytest.mark.parametrize("name", ["kl", "fisher_rao", "euclidean", "linear"])
@pytest.mark.parametrize("vocab, t", [(5, 0.3), (12, 0.15)])
def test_posterior_from_the_likelihood_is_calibrated(name, vocab, t):
    path, ids, z = noised(name, vocab, t)
    post = torch.softmax(path.token_log_likelihood(z, t), -1)  # (N, V), uniform prior
    hit = post[torch.arange(DRAWS), ids]
    both = torch.stack([hit, (post ** 2).sum(-1)])
    diff = (both[0] - both[1])
    assert hit.min() > 0  # the true token is never ruled out
    assert 0.05 < hit.mean() < 0.999  # neither trivial nor blind at this t
    assert abs(diff.mean()) <= 4 * diff.std() / math.sqrt(DRAWS) + 1e-12  # (linear: 0 per draw)


@pytest.mark.parametrize("name", ["kl", "fisher_rao", "euclidean"])
def test_no_tempered_likelihood_predicts_better(name):
    vocab, t = 8, 0.2
    path, ids, z = noised(name, vocab, t, seed=1)
    log_lik = path.token_log_likelihood(z, t)

    def loss(gamma):
        return -torch.log_softmax(gamma * log_lik, -1)[torch.arange(DRAWS), ids]

    base = loss(1.0)
    for gamma in (0.5, 2.0):
        worse = loss(gamma) - base
        assert worse.mean() > 2 * worse.std() / math.sqrt(DRAWS), gamma


def test_linear_candidate_set_has_its_known_size():
    """Token j != true is a candidate iff x0_j >= c = t(hi - lo)/(1 - t): probability (1 - c)^(V-1)."""
    vocab, t = 50, 0.02
    path, ids, z = noised("linear", vocab, t, seed=2)
    candidates = torch.isfinite(path.token_log_likelihood(z, t)).sum(-1).double() - 1  # others
    lo, hi = path.target_levels(vocab)
    c = t * (hi - lo) / (1 - t)
    expected = (vocab - 1) * (1 - c) ** (vocab - 1)
    assert candidates.mean().item() == pytest.approx(expected, rel=0.05)


def test_a_path_without_one_says_so():
    from pathbench.paths.base import SimplexPath

    class Odd(PATHS.get("linear")):
        token_log_likelihood = SimplexPath.token_log_likelihood

    with pytest.raises(ConfigError, match="no tractable single-token likelihood"):
        Odd().token_log_likelihood(torch.ones(1, 3) / 3, 0.5)
