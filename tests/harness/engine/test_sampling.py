"""The sampler driver with oracle denoisers (no trained model needed): its semantics, the
reference schedule, and the float32 in-place driver against the float64 reference in law."""

import numpy as np
import pytest
import torch
from scipy.stats import chi2_contingency, chisquare

import pathbench.engine.sampling as sampling
import pathbench.paths  # noqa: F401  (registers the paths)
from pathbench.core.errors import ConfigError
from pathbench.core.registry import PATHS
from pathbench.engine.sampling import SamplerConfig, sample_path
from tests.harness.engine.reference_sampler import reference_sample_path

V = 6


def fixed_denoiser(w):
    """Returns log w at every position whatever the input."""
    def denoise(x, t):
        return torch.log(w).expand(x.shape[0], x.shape[1], -1)
    return denoise


def input_dependent_denoiser(seed=0):
    """A fixed random map of the input, so that trajectories matter."""
    weight = torch.randn(V, V, generator=torch.Generator().manual_seed(seed), dtype=torch.float64)
    def denoise(x, t):
        return 3 * x.double() @ weight + t[:, None, None]
    return denoise


def test_sampling_draws_follow_the_denoiser_distribution():
    w = torch.tensor([0.05, 0.3, 0.1, 0.25, 0.2, 0.1], dtype=torch.float64)
    cfg = SamplerConfig("sampling", nfe=3, top_k=V, final="sample")
    ids = sample_path(PATHS.build("kl"), fixed_denoiser(w), (10_000, 1, V), cfg,
                      generator=torch.Generator().manual_seed(0))
    counts = torch.bincount(ids.flatten(), minlength=V).double()
    assert chisquare(counts.numpy(), (w * 10_000).numpy()).pvalue > 1e-3


def test_top_k_keeps_only_the_k_most_likely_tokens():
    w = torch.tensor([0.05, 0.3, 0.1, 0.25, 0.2, 0.1], dtype=torch.float64)
    cfg = SamplerConfig("sampling", nfe=2, top_k=2, final="sample")
    ids = sample_path(PATHS.build("linear"), fixed_denoiser(w), (4000, 1, V), cfg,
                      generator=torch.Generator().manual_seed(0))
    counts = torch.bincount(ids.flatten(), minlength=V)
    assert set(torch.nonzero(counts).flatten().tolist()) == {1, 3}
    assert chisquare(counts[[1, 3]].numpy(), [4000 * 0.3 / 0.55, 4000 * 0.25 / 0.55]).pvalue > 1e-3


@pytest.mark.parametrize("name", ["linear", "fisher_rao", "kl", "euclidean"])
def test_hybrid_reduces_to_sampling_and_basic_at_the_ends(name):
    path = PATHS.build(name)
    def run(sampler, t_star=0.28):
        cfg = SamplerConfig(sampler, nfe=8, t_star=t_star)
        return sample_path(path, input_dependent_denoiser(), (64, 8, V), cfg,
                           generator=torch.Generator().manual_seed(5))
    basic, samp = run("basic"), run("sampling")
    assert not torch.equal(basic, samp)  # the identities below are not vacuous
    assert torch.equal(run("hybrid", t_star=0.0), samp)
    assert torch.equal(run("hybrid", t_star=1.0), basic)


@pytest.mark.parametrize("sampler", ["basic", "semi", "sampling", "hybrid"])
@pytest.mark.parametrize("nfe", [1, 2, 7])
def test_nfe_counts_denoiser_calls(sampler, nfe):
    calls = []
    base = input_dependent_denoiser()
    def denoise(x, t):
        calls.append(t[0].item())
        return base(x, t)
    sample_path(PATHS.build("kl", t_max=0.3, grid="log"), denoise, (2, 3, V),
                SamplerConfig(sampler, nfe=nfe), generator=torch.Generator().manual_seed(0))
    assert len(calls) == nfe
    assert calls[0] == 0.0 and all(a < b < 0.3 for a, b in zip(calls, calls[1:]))


@pytest.mark.parametrize("name", ["linear", "fisher_rao", "kl", "euclidean"])
@pytest.mark.parametrize("sampler", ["basic", "semi", "sampling"])
def test_oracle_that_knows_the_answer_is_reproduced(name, sampler):
    answer = torch.randint(V, (3, 5), generator=torch.Generator().manual_seed(1))
    def denoise(x, t):
        return torch.log(torch.nn.functional.one_hot(answer, V).double().clamp_min(1e-30))
    ids = sample_path(PATHS.build(name), denoise, (3, 5, V), SamplerConfig(sampler, nfe=4),
                      generator=torch.Generator().manual_seed(0))
    assert torch.equal(ids, answer)


@pytest.mark.parametrize("sampler", ["basic", "semi", "sampling"])
def test_given_positions_are_clamped_at_every_step(sampler):
    path = PATHS.build("kl")
    given_ids = torch.randint(V, (4, 5), generator=torch.Generator().manual_seed(2))
    given_mask = torch.zeros(4, 5, dtype=torch.bool)
    given_mask[:, :2] = True
    seen = []
    base = input_dependent_denoiser()
    def denoise(x, t):
        seen.append(x[given_mask])
        return base(x, t)
    ids = sample_path(path, denoise, (4, 5, V), SamplerConfig(sampler, nfe=5), given_ids=given_ids,
                      given_mask=given_mask, generator=torch.Generator().manual_seed(0))
    assert torch.equal(ids[given_mask], given_ids[given_mask])
    expected = path.to_probs(path.target(given_ids[given_mask], V)).float()  # the float32 state
    for x in seen:
        torch.testing.assert_close(x, expected)


@pytest.mark.parametrize("top_k, draw", [(None, "inverse_cdf_categorical"), (3, "gumbel_categorical")])
def test_categorical_draws_happen_in_float64(monkeypatch, top_k, draw):
    dtypes = []
    real = getattr(sampling, draw)
    def spy(log_probs, generator=None, *rest):
        dtypes.append(log_probs.dtype)
        return real(log_probs, generator, *rest)
    monkeypatch.setattr(sampling, draw, spy)
    denoise = lambda x, t: input_dependent_denoiser()(x, t).float()  # a float32 model  # noqa: E731
    sample_path(PATHS.build("kl"), denoise, (2, 3, V), SamplerConfig("hybrid", nfe=6, final="sample", top_k=top_k),
                generator=torch.Generator().manual_seed(0))
    # uniform grid t = 0, 1/6 | 2/6, 3/6, 4/6 | 5/6: two basic steps, three sampling steps
    # (one draw each) and the final draw
    assert len(dtypes) == 4 and set(dtypes) == {torch.float64}
    with pytest.raises(TypeError, match="float64"):
        real(torch.zeros(2, 3, dtype=torch.float32))


def test_inverse_cdf_draw_follows_the_distribution_and_never_draws_a_zero():
    w = torch.tensor([0.05, 0.3, 0.0, 0.25, 0.3, 0.1], dtype=torch.float64)
    ids = sampling.inverse_cdf_categorical(torch.log(w).expand(20_000, V).contiguous() + 7.0,
                                           torch.Generator().manual_seed(3))
    counts = torch.bincount(ids, minlength=V).double()
    assert counts[2] == 0
    keep = w > 0
    assert chisquare(counts[keep].numpy(), (w[keep] * 20_000).numpy()).pvalue > 1e-3


def test_unknown_sampler_for_paths():
    with pytest.raises(ConfigError, match="has no sampler 'euler'; known: basic, semi, sampling, hybrid"):
        sample_path(PATHS.build("kl"), input_dependent_denoiser(), (1, 2, V), SamplerConfig("euler"))


def test_top_p_keeps_the_smallest_set_reaching_p():
    from pathbench.engine.sampling import denoiser_log_probs

    logits = torch.log(torch.tensor([[0.5, 0.3, 0.15, 0.05]], dtype=torch.float64))
    kept = denoiser_log_probs(logits, None, 1.0, top_p=0.75).exp()
    torch.testing.assert_close(kept, torch.tensor([[0.625, 0.375, 0, 0]], dtype=torch.float64))
    kept = denoiser_log_probs(logits, None, 1.0, top_p=0.79).exp()
    assert (kept > 0).tolist() == [[True, True, False, False]]  # 0.5 + 0.3 reaches 0.79
    kept = denoiser_log_probs(logits, None, 1.0, top_p=0.81).exp()
    assert (kept > 0).tolist() == [[True, True, True, False]]


def test_same_seed_same_samples_different_seed_different():
    path, denoise = PATHS.build("fisher_rao"), input_dependent_denoiser()
    cfg = SamplerConfig("semi", nfe=6)
    a, b, c = (sample_path(path, denoise, (16, 4, V), cfg, generator=torch.Generator().manual_seed(s))
               for s in (0, 0, 1))
    assert torch.equal(a, b) and not torch.equal(a, c)


@pytest.mark.parametrize(
    "options, message",
    [
        ({"nfe": 0}, "NFE = 0 must be an integer >= 1"),
        ({"t_star": 1.5}, r"t\* = 1.5 is outside \[0, 1\]"),
        ({"top_k": 0}, "top-k = 0 must be >= 1"),
        ({"temperature": 0.0}, "temperature = 0.0 must be > 0"),
        ({"final": "mode"}, "unknown final step 'mode'; known: argmax, sample"),
    ],
)
def test_bad_sampler_options(options, message):
    with pytest.raises(ConfigError, match=message):
        SamplerConfig(**options)


# --- semantics: truncation only where tokens are drawn ---------------------------------------
def _spy(base, log):
    def denoise(x, t):
        log.append((t[0].item(), x.clone()))
        return base(x, t)
    return denoise


@pytest.mark.parametrize("name", ["linear", "fisher_rao", "kl", "euclidean"])
def test_basic_ignores_top_k_and_temperature_and_hybrid_before_t_star_is_basic(name):
    path, base = PATHS.build(name), input_dependent_denoiser(3)
    def run(cfg):
        seen = []
        ids = sample_path(path, _spy(base, seen), (32, 6, V), cfg, generator=torch.Generator().manual_seed(4))
        return ids, seen
    plain, plain_seen = run(SamplerConfig("basic", nfe=8))
    truncated, _ = run(SamplerConfig("basic", nfe=8, top_k=1, temperature=0.3, top_p=0.5))
    assert torch.equal(plain, truncated)
    # t* = 1: hybrid never samples, so top-k 1 changes nothing
    assert torch.equal(run(SamplerConfig("hybrid", nfe=8, t_star=1.0, top_k=1))[0], plain)
    hybrid, hybrid_seen = run(SamplerConfig("hybrid", nfe=8, t_star=0.5, top_k=1))
    assert not torch.equal(hybrid, plain)  # it does sample after t*
    before = [(t, x) for t, x in hybrid_seen if t <= 0.5]  # the input at t* still comes from basic steps
    assert len(before) == 5
    for (t, x), (t_ref, x_ref) in zip(before, plain_seen):
        assert t == t_ref and torch.equal(x, x_ref)


def test_reference_schedule_on_a_toy_denoiser():
    """kl-flow: N τ-Euler updates on a grid uniform in τ over [0, 0.3], then a call at 0.3 and
    argmax — pathbench NFE = N + 1."""
    path = PATHS.build("kl", t_max=0.3, grid="log", update="tau_euler")
    base, seen, n_updates = input_dependent_denoiser(7), [], 4
    cfg = SamplerConfig("basic", nfe=n_updates + 1, final_at="t_max")
    ids = sample_path(path, _spy(base, seen), (3, 4, V), cfg, generator=torch.Generator().manual_seed(0),
                      dtype=torch.float64)
    tau_max = -torch.log1p(torch.tensor(-0.3, dtype=torch.float64))
    taus = torch.linspace(0, tau_max.item(), n_updates + 1, dtype=torch.float64)
    assert len(seen) == n_updates + 1
    torch.testing.assert_close(torch.tensor([t for t, _ in seen], dtype=torch.float64), -torch.expm1(-taus))
    assert seen[-1][0] == pytest.approx(0.3)
    # the update by hand: l ← (1 - Δτ)·l + Δτ·E_w[l1], E_w[l1] = w·log(1-β+β/V) + (1-w)·log(β/V)
    d_tau, beta = (taus[1] - taus[0]).item(), path.beta
    hi, lo = torch.log(torch.tensor(1 - beta + beta / V)), torch.log(torch.tensor(beta / V))
    l = torch.log(seen[0][1])
    for n in range(n_updates):
        w = base(torch.softmax(l, -1), torch.full((3,), seen[n][0], dtype=torch.float64)).softmax(-1)
        l = (1 - d_tau) * l + d_tau * (w * hi + (1 - w) * lo)
        torch.testing.assert_close(seen[n + 1][1], torch.softmax(l, -1))
    final = base(torch.softmax(l, -1), torch.full((3,), 0.3, dtype=torch.float64))
    assert torch.equal(ids, final.argmax(-1))


def test_final_at_t_max_with_one_call_decodes_the_prior_at_t_max():
    seen = []
    sample_path(PATHS.build("kl", t_max=0.3), _spy(input_dependent_denoiser(), seen), (2, 3, V),
                SamplerConfig("sampling", nfe=1, final_at="t_max"), generator=torch.Generator().manual_seed(0))
    assert [t for t, _ in seen] == [pytest.approx(0.3)]


# --- the fast driver against the float64 reference ---------------------------------------------
@pytest.mark.parametrize("name", ["linear", "fisher_rao", "kl", "euclidean"])
@pytest.mark.parametrize("final_at", ["last_step", "t_max"])
def test_basic_matches_the_float64_reference_trajectory_by_trajectory(name, final_at):
    """From the same prior draw the in-place ODE gives the reference's tokens: exactly with a
    float64 state, on all but a few near-ties with the float32 one."""
    path = PATHS.build(name, **({"t_max": 0.3, "grid": "log"} if name != "euclidean" else {}))
    base, shape = input_dependent_denoiser(1), (400, 4, V)
    z0 = path.sample_prior(shape, generator=torch.Generator().manual_seed(2))
    path.sample_prior = lambda shape, **kw: z0.clone()
    path.prior_ = lambda out, generator=None: out.copy_(z0)
    cfg = SamplerConfig("basic", nfe=6, final_at=final_at)
    ref = reference_sample_path(path, base, shape, cfg)
    assert torch.equal(sample_path(path, base, shape, cfg, dtype=torch.float64), ref)
    assert (sample_path(path, base, shape, cfg) == ref).double().mean() > 0.99


def _same_law(table) -> bool:
    """Two-sample chi-square over the categories either sample hit."""
    table = np.array(table)
    table = table[:, table.sum(0) > 0]
    return table.shape[1] < 2 or chi2_contingency(table).pvalue > 1e-3


@pytest.mark.parametrize("name", ["linear", "fisher_rao", "kl", "euclidean"])
@pytest.mark.parametrize("cfg", [
    SamplerConfig("sampling", nfe=4, final="sample"),
    SamplerConfig("sampling", nfe=4, top_k=3, temperature=0.7, final="sample"),
    SamplerConfig("semi", nfe=4, top_p=0.8, final="sample", final_at="t_max"),
    SamplerConfig("hybrid", nfe=5, t_star=0.4, top_k=2),
], ids=["sampling", "sampling-top3-T0.7", "semi-top-p", "hybrid-top2"])
def test_fast_sampler_draws_from_the_reference_law(name, cfg):
    """Chi-square (two-sample, per position) of the float32 in-place driver against the
    float64 functional reference on an input-dependent denoiser."""
    path, base, shape = PATHS.build(name), input_dependent_denoiser(5), (6000, 2, V)
    ref = reference_sample_path(path, base, shape, cfg, generator=torch.Generator().manual_seed(0))
    fast = sample_path(path, base, shape, cfg, generator=torch.Generator().manual_seed(1))
    for pos in range(shape[1]):
        assert _same_law([torch.bincount(ids[:, pos], minlength=V).numpy() for ids in (ref, fast)])


def test_full_vocabulary_draw_in_blocks_follows_the_distribution(monkeypatch):
    monkeypatch.setattr(sampling, "DRAW_BLOCK", 4 * V)  # 4 rows a block
    w = torch.tensor([0.05, 0.3, 0.1, 0.25, 0.2, 0.1], dtype=torch.float64)
    logits = torch.log(w).float().expand(5000, 1, V).contiguous()
    ids = sampling.draw_tokens(logits, SamplerConfig("sampling", temperature=1.0),
                               torch.Generator().manual_seed(0))
    counts = torch.bincount(ids.flatten(), minlength=V).double()
    assert chisquare(counts.numpy(), (w * 5000).numpy()).pvalue > 1e-3
