"""The score-entropy loss on small exact cases, and SEDD's noise schedule."""

import math

import torch

from pathbench.baselines.sedd import SEDD, noise_rate, score_entropy, total_noise


def true_log_score(x0, vocab, sigma):
    """log of the exact ratios p_τ(y)/p_τ(MASK) at a masked position with clean token x0."""
    ratio = 1.0 / math.expm1(sigma)
    scores = torch.full((1, 1, vocab), -math.inf, dtype=torch.float64)
    scores[0, 0, x0] = math.log(ratio)
    return scores


def test_score_entropy_is_zero_at_the_true_ratios():
    for sigma in (0.01, 0.7, 3.0):
        x0 = torch.tensor([[2]])
        loss = score_entropy(true_log_score(2, 5, sigma), x0, torch.tensor([[True]]),
                             torch.tensor([sigma], dtype=torch.float64))
        assert abs(loss.item()) < 1e-12


def test_score_entropy_is_nonnegative_and_minimised_at_the_truth():
    g = torch.Generator().manual_seed(0)
    sigma = torch.full((64,), 0.8, dtype=torch.float64)
    x0 = torch.randint(6, (64, 5), generator=g)
    masked = torch.rand(64, 5, generator=g) < 0.7
    losses = score_entropy(torch.randn(64, 5, 6, generator=g, dtype=torch.float64) * 3, x0, masked, sigma)
    assert (losses >= 0).all() and (losses[~masked] == 0).all() and (losses[masked] > 0).all()


def test_parametrised_scores_sum_to_the_ratio():
    torch.manual_seed(0)
    from pathbench.engine.model import Transformer, model_config

    model = Transformer(model_config("tiny", 9, 8))
    tau = torch.tensor([0.2, 0.9])
    log_score = SEDD().log_score(model, torch.full((2, 8), 8), tau)
    sigma = total_noise(tau, 1e-3)
    torch.testing.assert_close(log_score.exp().sum(-1), (1 / torch.expm1(sigma))[:, None].expand(2, 8))


def test_log_linear_noise_masks_at_rate_tau():
    tau = torch.tensor([0.0, 0.25, 0.5, 0.999], dtype=torch.float64)
    eps = 1e-3
    torch.testing.assert_close(-torch.expm1(-total_noise(tau, eps)), (1 - eps) * tau)
    h = 1e-6
    inner = torch.tensor([0.1, 0.5, 0.9], dtype=torch.float64)
    fd = (total_noise(inner + h, eps) - total_noise(inner - h, eps)) / (2 * h)
    torch.testing.assert_close(noise_rate(inner, eps), fd, rtol=1e-6, atol=0)
