"""dfm, sedd and flowmap's in-place samplers against the float64 references they replaced
(tests/baselines/reference_samplers.py): the same law by two-sample chi-square on a denoiser
whose output depends on the whole input (so the trajectories matter), and the same trajectory
where nothing is drawn."""

import numpy as np
import pytest
import torch
from scipy.stats import chi2_contingency

import pathbench.baselines.unmask as unmask
from pathbench.baselines.dfm import DFM
from pathbench.baselines.flowmap import FlowMapMethod
from pathbench.baselines.sedd import SEDD
from pathbench.engine.model import model_config
from pathbench.engine.sampling import SamplerConfig
from tests.baselines.reference_samplers import reference_dfm, reference_flowmap, reference_sedd

V = 5  # data tokens; the token models add the mask as id V


class TokenToy(torch.nn.Module):
    """Logits of a fixed random map of a position's token, its right neighbour's and t."""

    def __init__(self, seed=0):
        super().__init__()
        g = torch.Generator().manual_seed(seed)
        self.config = model_config("tiny", V + 1, 16)
        self.own = torch.nn.Parameter(2 * torch.randn(V + 1, V + 1, generator=g))
        self.right = torch.nn.Parameter(torch.randn(V + 1, V + 1, generator=g))
        self.slope = torch.nn.Parameter(torch.randn(V + 1, generator=g))

    def forward(self, x, t):
        return self.own[x] + self.right[x.roll(-1, 1)] + t[:, None, None] * self.slope


def same_law(a: torch.Tensor, b: torch.Tensor) -> bool:
    """Two-sample chi-square over the joint of each pair of neighbouring positions."""
    for pos in range(a.shape[1] - 1):
        table = np.array([torch.bincount(ids[:, pos] * (V + 1) + ids[:, pos + 1], minlength=(V + 1) ** 2).numpy()
                          for ids in (a, b)])
        table = table[:, table.sum(0) > 0]
        if table.shape[1] > 1 and chi2_contingency(table).pvalue < 1e-3:
            return False
    return True


def given(rows, seq_len):
    """Position 1 given as token 3 (an infilling context)."""
    ids, mask = torch.zeros(rows, seq_len, dtype=torch.long), torch.zeros(rows, seq_len, dtype=torch.bool)
    ids[:, 1], mask[:, 1] = 3, True
    return {"given_ids": ids, "given_mask": mask}


TOKEN_CASES = [
    (DFM(), SamplerConfig("euler", nfe=4), reference_dfm),
    (DFM(scheduler="polynomial", n=2.0), SamplerConfig("euler", nfe=3, top_k=3, temperature=0.7), reference_dfm),
    (DFM(), SamplerConfig("euler", nfe=5, top_p=0.8), reference_dfm),
    (SEDD(), SamplerConfig("tweedie", nfe=4), reference_sedd),
    (SEDD(), SamplerConfig("euler", nfe=4, final="sample"), reference_sedd),
    (SEDD(), SamplerConfig("tweedie", nfe=3, top_k=2, temperature=1.5, final="sample"), reference_sedd),
]


@pytest.mark.parametrize("method,cfg,reference", TOKEN_CASES,
                         ids=["dfm", "dfm-poly-top3-T0.7", "dfm-top-p", "sedd-tweedie", "sedd-euler-sample",
                              "sedd-top2-T1.5"])
@pytest.mark.parametrize("with_given", [False, True], ids=["free", "given"])
def test_token_samplers_draw_from_the_reference_law(method, cfg, reference, with_given):
    model, rows, seq_len = TokenToy(), 6000, 3
    extra = given(rows, seq_len) if with_given else {}
    with torch.no_grad():
        ref = reference(method, model, rows, seq_len, cfg, generator=torch.Generator().manual_seed(0), **extra)
        fast = method.sample(model, rows, seq_len, cfg, generator=torch.Generator().manual_seed(1), **extra)
    assert fast.max() < V and ref.max() < V  # the mask is never left nor drawn
    if with_given:
        assert (fast[:, 1] == 3).all()
    assert same_law(ref, fast)


def test_the_law_test_tells_a_wrong_jump_probability_apart():
    """The chi-square above has the power to see a sampler off by a little: dfm jumping with a
    probability 20 % too small is rejected."""
    model, rows, cfg = TokenToy(), 6000, SamplerConfig("euler", nfe=4)
    slow = DFM()
    slow.jump_probability = lambda t, h: 0.8 * DFM.jump_probability(slow, t, h)
    with torch.no_grad():
        ref = reference_dfm(DFM(), model, rows, 3, cfg, generator=torch.Generator().manual_seed(0))
        fast = slow.sample(model, rows, 3, cfg, generator=torch.Generator().manual_seed(1))
    assert not same_law(ref, fast)


def test_a_step_draws_only_at_the_positions_that_move(monkeypatch):
    """The float64 draw covers the revealed rows, never the whole (B,S,V): at the first tweedie
    step of 16 only about 1/16 of the positions are drawn."""
    drawn = []
    real = unmask.inverse_cdf_categorical
    monkeypatch.setattr(unmask, "inverse_cdf_categorical",
                        lambda log_w, u=None: drawn.append(log_w.shape) or real(log_w, u=u))
    with torch.no_grad():
        SEDD().sample(TokenToy(), 64, 16, SamplerConfig("tweedie", nfe=16), generator=torch.Generator().manual_seed(0))
    first = drawn[0][0]
    assert all(shape[1] == V for shape in drawn)  # over the data tokens, not the mask
    assert 20 < first < 120, first  # ≈ 1024/16 rows, not 1024
    assert sum(shape[0] for shape in drawn) <= 64 * 16  # each position is revealed once at most


class JumpToy(torch.nn.Module):
    """A two-time denoiser: a fixed random map of the input and both times."""

    def __init__(self, dtype=torch.float64, seed=1):
        super().__init__()
        self.config = model_config("tiny", V, 16, two_time=True)
        g = torch.Generator().manual_seed(seed)
        self.weight = torch.nn.Parameter(torch.randn(V, V, generator=g, dtype=torch.float64).to(dtype))

    def forward(self, x, t, t_end=None):
        return 3 * x @ self.weight + (t + 2 * t_end)[:, None, None].to(x.dtype)


@pytest.mark.parametrize("path", ["kl", "linear", "euclidean"])
def test_flowmap_follows_the_reference_trajectory_from_the_same_prior(path):
    """Exactly with a float64 model (float64 state), on all but a few near-ties in float32."""
    method = FlowMapMethod(teacher=f"@{path}", path_options={"t_max": 0.3} if path != "euclidean" else None)
    rows, seq_len, cfg = 400, 4, SamplerConfig("flowmap", nfe=4)
    z0 = method.path.sample_prior((rows, seq_len, V), generator=torch.Generator().manual_seed(2))
    method.path.prior_ = lambda out, generator=None: out.copy_(z0)
    extra = given(rows, seq_len)
    with torch.no_grad():
        ref = reference_flowmap(method, JumpToy(), rows, seq_len, cfg, prior=z0, **extra)
        assert torch.equal(method.sample(JumpToy(), rows, seq_len, cfg, **extra), ref)
        fast32 = method.sample(JumpToy(torch.float32), rows, seq_len, cfg, **extra)
    assert (fast32 == ref).double().mean() > 0.99


def test_flowmap_final_draw_follows_the_reference_law():
    method, cfg = FlowMapMethod(teacher="@kl"), SamplerConfig("flowmap", nfe=3, final="sample", top_k=3)
    with torch.no_grad():
        ref = reference_flowmap(method, JumpToy(), 6000, 2, cfg, generator=torch.Generator().manual_seed(0))
        fast = method.sample(JumpToy(torch.float32), 6000, 2, cfg, generator=torch.Generator().manual_seed(1))
    assert same_law(ref, fast)
