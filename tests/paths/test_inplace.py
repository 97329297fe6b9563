"""The in-place operations of the hot loops equal the functional path API (float64, known
answers), and the fast priors have the law of the functional ones."""

import pytest
import torch
from scipy.stats import ks_2samp

import pathbench.paths  # noqa: F401  (registers the paths)
from pathbench.core.registry import PATHS
from pathbench.paths.base import SimplexPath

V = 7
ALL = ["linear", "fisher_rao", "fisher_rao_ref", "kl", "euclidean"]
CASES = [("linear", {}), ("fisher_rao", {}), ("fisher_rao_ref", {}), ("fisher_rao_ref", {"beta": 0.01}), ("kl", {}), ("kl", {"update": "tau_euler", "t_max": 0.5}),
         ("euclidean", {"sigma": 0.7})]


def same_point(path, a, b):
    """Equal as points of the path (kl: up to a constant per position, which softmax drops)."""
    if path.shift_invariant:
        a, b = a - a.mean(-1, keepdim=True), b - b.mean(-1, keepdim=True)
    torch.testing.assert_close(a, b, atol=1e-10, rtol=1e-9)


def setup(name, options, batch=(3, 5)):
    path = PATHS.build(name, **options)
    g = torch.Generator().manual_seed(0)
    ids = torch.randint(V, batch, generator=g)
    z = path.sample_prior((*batch, V), generator=g)
    w = torch.softmax(torch.randn(*batch, V, generator=g, dtype=torch.float64), -1)
    return path, ids, z, w


@pytest.mark.parametrize("name, options", CASES)
@pytest.mark.parametrize("t", [0.0, 0.17, 0.3, 1.0, "per-sequence"])
def test_interpolate_token_equals_interpolate(name, options, t):
    path, ids, z0, _ = setup(name, options)
    t = torch.tensor([0.0, 0.4, 1.0], dtype=torch.float64) if t == "per-sequence" else t
    expected = path.interpolate(z0, path.target(ids, V), t)
    same_point(path, path.interpolate_token_(z0.clone(), ids, t), expected)


@pytest.mark.parametrize("name, options", CASES)
def test_steps_equal_the_functional_step(name, options):
    path, ids, z, w = setup(name, options)
    t, h = 0.2, 0.05
    expected = path.step(z, path.expected_velocity(z, w, t), t, h)
    same_point(path, path.ode_step_(z.clone(), w.clone(), t, h, torch.empty_like(z)), expected)
    same_point(path, path.ode_step_(z.clone(), w.clone(), t, h), expected)  # no scratch given
    expected = path.step(z, path.cond_velocity(z, path.target(ids, V), t), t, h)
    same_point(path, path.token_step_(z.clone(), ids, t, h, torch.empty_like(z)), expected)


@pytest.mark.parametrize("name, options", CASES)
def test_model_input_equals_the_functional_one(name, options):
    path, _, z, _ = setup(name, options)
    torch.testing.assert_close(path.model_input_(z, torch.empty_like(z)), path.model_input(z))


@pytest.mark.parametrize("name", ALL)
def test_fast_prior_has_the_law_of_sample_prior(name):
    path = PATHS.build(name)
    fast = path.prior_(torch.empty(20_000, V), torch.Generator().manual_seed(0))  # float32
    ref = path.sample_prior((20_000, V), generator=torch.Generator().manual_seed(1))
    view = (lambda z: z) if name == "euclidean" else path.to_probs
    for k in (0, V - 1):  # a coordinate of x0: Beta(1, V-1) on the simplex, N(0, σ²) for euclidean
        assert ks_2samp(view(fast.double())[:, k].numpy(), view(ref)[:, k].numpy()).pvalue > 1e-3


def test_a_plugin_path_gets_correct_in_place_operations_from_the_functional_api():
    class Plain(type(PATHS.build("linear"))):  # only the functional API of its parent
        prior_ = SimplexPath.prior_
        interpolate_token_ = SimplexPath.interpolate_token_
        ode_step_ = SimplexPath.ode_step_
        token_step_ = SimplexPath.token_step_

    fast, plain = PATHS.build("linear"), Plain()
    _, ids, z, w = setup("linear", {})
    torch.testing.assert_close(plain.ode_step_(z.clone(), w, 0.1, 0.1), fast.ode_step_(z.clone(), w, 0.1, 0.1))
    torch.testing.assert_close(plain.noise_(torch.empty_like(z), ids, 1.0), fast.target(ids, V))
