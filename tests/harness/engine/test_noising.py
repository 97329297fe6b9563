"""Training's fused in-place noising gives the loss of the plain functional noising, in law,
and exact endpoints (every simplex path and euclidean)."""

import math

import pytest
import torch

from pathbench.core.registry import METHODS
from pathbench.engine.methods import masked_cross_entropy
from pathbench.engine.model import Transformer, model_config
from pathbench.engine.plugins import load_all

load_all()
V, B, S = 64, 8, 16
CASES = [("kl", {"t_max": 0.3}), ("linear", {}), ("fisher_rao", {}), ("euclidean", {})]


def reference_noisy(path, ids, given, t, generator):
    """The noising as written in the paper: z0 ~ p0, z1 = z(smoothed one-hot), z_t = ψ_t, in float64."""
    z0 = path.sample_prior((*ids.shape, V), generator=generator)
    z1 = path.target(ids, V)
    return torch.where(given.unsqueeze(-1), z1, path.interpolate(z0, z1, t.double()))


@pytest.mark.parametrize("name, options", CASES)
def test_noisy_endpoints_are_exact(name, options):
    method = METHODS.build(name, **options)
    g = torch.Generator().manual_seed(0)
    ids = torch.randint(V, (B, S), generator=g)
    given = torch.zeros(B, S, dtype=torch.bool)
    given[:, :3] = True
    t = torch.tensor([1.0] * (B // 2) + [0.0] * (B // 2))
    x = method.path.model_input(method.noisy(ids, given, t, V, torch.float32, g))
    clean = method.path.model_input(method.path.target(ids, V)).float()
    torch.testing.assert_close(x[: B // 2], clean[: B // 2], atol=1e-6, rtol=1e-5)  # t = 1: the target
    torch.testing.assert_close(x[given], clean[given], atol=1e-6, rtol=1e-5)        # given: clean always
    # t = 0: pure prior, independent of the tokens
    assert not torch.allclose(x[B // 2:][~given[B // 2:]], clean[B // 2:][~given[B // 2:]], atol=1e-2)


@pytest.mark.parametrize("name, options", CASES)
def test_fused_noising_gives_the_reference_loss_in_law(name, options):
    torch.manual_seed(0)
    model = Transformer(model_config("tiny", V, S)).eval()
    with torch.no_grad():  # a model whose output depends strongly on its input: the test has teeth
        model.embed.weight.mul_(40.0)
    method = METHODS.build(name, **options)
    g = torch.Generator().manual_seed(1)
    ids = torch.randint(V, (B, S), generator=g)
    given = torch.zeros(B, S, dtype=torch.bool)
    given[:, :2] = True
    t = method.path.t_max * torch.rand(B, generator=g)
    fast, ref = [], []
    with torch.no_grad():
        for _ in range(150):
            fast.append(masked_cross_entropy(model(method.path.model_input(
                method.noisy(ids, given, t, V, torch.float32, g)), t), ids, given).item())
            z = reference_noisy(method.path, ids, given, t, g)
            ref.append(masked_cross_entropy(model(method.path.model_input(z).float(), t), ids, given).item())
    fast, ref = torch.tensor(fast, dtype=torch.float64), torch.tensor(ref, dtype=torch.float64)
    se = math.sqrt(fast.var() / len(fast) + ref.var() / len(ref))
    assert se > 0  # the noise is live
    assert abs(fast.mean() - ref.mean()) < 4 * se
