"""DFM with a known denoiser."""

import torch

from pathbench.baselines.dfm import DFM, QuadraticConvexScheduler, seeded
from pathbench.engine.model import model_config
from pathbench.engine.sampling import SamplerConfig


class AllMassOn(torch.nn.Module):
    """A denoiser certain that every position is token ``k``."""

    def __init__(self, vocab, k):
        super().__init__()
        self.config = model_config("tiny", vocab, 64)
        self.k = k
        self.weight = torch.nn.Parameter(torch.zeros(1))
        self.calls = 0

    def forward(self, x, t):
        self.calls += 1
        logits = torch.full((*x.shape, self.config.vocab_size), -30.0)
        logits[..., self.k] = 30.0
        return logits


def test_a_model_certain_of_token_2_yields_all_2s_at_t_1():
    for scheduler in ("quadratic", "polynomial"):
        model = AllMassOn(vocab=11, k=2)  # 10 data tokens + the mask
        ids = DFM(scheduler=scheduler).sample(model, 4, 16, SamplerConfig("euler", nfe=8),
                                              generator=torch.Generator().manual_seed(0))
        assert (ids == 2).all()
        assert model.calls == 8  # NFE = denoiser calls


def test_quadratic_scheduler_matches_its_formula():
    t = torch.linspace(0, 1, 11, dtype=torch.float64)
    out = QuadraticConvexScheduler()(t)
    torch.testing.assert_close(out.alpha_t, 2 * t - t**2)
    torch.testing.assert_close(out.alpha_t + out.sigma_t, torch.ones_like(t))
    eps = 1e-6
    fd = (QuadraticConvexScheduler()(t[1:-1] + eps).alpha_t - QuadraticConvexScheduler()(t[1:-1] - eps).alpha_t) / (2 * eps)
    torch.testing.assert_close(out.d_alpha_t[1:-1], fd)
    torch.testing.assert_close(QuadraticConvexScheduler().kappa_inverse(out.alpha_t), t)


def test_training_masks_at_rate_kappa():
    method = DFM(scheduler="polynomial", n=1.0)
    ids = torch.randint(10, (4000, 8))
    t = torch.full((4000,), 0.3)
    x_t = method.path.sample(torch.full_like(ids, 10), ids, t).x_t
    assert abs((x_t == 10).double().mean().item() - 0.7) < 0.01  # P(mask) = 1 - κ_t = 0.7


def test_the_seed_is_drawn_on_the_generators_device():
    """On CUDA the trainer's generator lives on the GPU while torch's default device is the CPU:
    the draw must follow the generator. Here the default device is moved instead (meta), which
    fails the same way when the draw does not name the generator's device."""
    expected = seeded(torch.Generator().manual_seed(3))
    with torch.device("meta"):
        assert seeded(torch.Generator().manual_seed(3)) == expected
    assert seeded(None) == 0
