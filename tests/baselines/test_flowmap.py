"""Flow-map distillation: the semigroup identity behind the target, NFE, init from the teacher,
and a loss that falls on the tiny preset."""

import pytest
import torch

from pathbench.baselines.flowmap import FlowMapMethod
from pathbench.core.errors import ConfigError
from pathbench.engine.methods import backbone_config
from pathbench.engine.model import Transformer, model_config
from pathbench.engine.plugins import load_all
from pathbench.engine.run import load_run
from pathbench.engine.sampling import SamplerConfig
from pathbench.studies.flowmap_gap import JUMPS, flowmap_gap, teacher_flow_map

load_all()


@pytest.mark.parametrize("path", ["kl", "linear", "euclidean"])
def test_two_jumps_are_one_jump_with_the_convex_combined_denoiser(path):
    """Z_{u,t}(Z_{s,u}(z)) = Z_{s,t}(z) with δ = λ δ_{s,u} + (1-λ) δ_{u,t}: the distillation target."""
    method = FlowMapMethod(teacher=f"@{path}")
    g = torch.Generator().manual_seed(0)
    for s, u, t in [(0.0, 0.3, 0.6), (0.1, 0.5, 1.0), (0.2, 0.25, 0.9)]:
        z = method.path.sample_prior((3, 5, 7), generator=g)  # (B, S, V) float64
        d1 = torch.rand(3, 5, 7, generator=g, dtype=torch.float64).softmax(-1)
        d2 = torch.rand(3, 5, 7, generator=g, dtype=torch.float64).softmax(-1)
        S, U, T = (torch.full((3,), x, dtype=torch.float64) for x in (s, u, t))
        two = method.jump(method.jump(z, d1, S, U), d2, U, T)
        lam = (u - s) * (1 - t) / ((t - s) * (1 - u))
        one = method.jump(z, lam * d1 + (1 - lam) * d2, S, T)
        torch.testing.assert_close(two, one, rtol=0, atol=1e-12)
        torch.testing.assert_close(method.composed(d1, d2, S, U, T), lam * d1 + (1 - lam) * d2, rtol=0, atol=1e-15)


def test_a_jump_to_t_equal_1_lands_on_the_denoisers_target():
    method = FlowMapMethod(teacher="@linear")
    z = method.path.sample_prior((2, 3, 5), generator=torch.Generator().manual_seed(1))
    delta = torch.eye(5, dtype=torch.float64)[[0, 1, 2]].expand(2, 3, 5)
    out = method.jump(z, delta, torch.zeros(2, dtype=torch.float64), torch.ones(2, dtype=torch.float64))
    torch.testing.assert_close(out, method.path.expected_target(delta))


class CountingModel(torch.nn.Module):
    def __init__(self, vocab):
        super().__init__()
        self.config = model_config("tiny", vocab, 16, two_time=True)
        self.weight = torch.nn.Parameter(torch.zeros(1))
        self.calls = []

    def forward(self, x, t, t_end=None):
        self.calls.append((float(t[0]), float(t_end[0])))
        return torch.zeros(*x.shape[:2], self.config.vocab_size)


@pytest.mark.parametrize("nfe", [1, 2, 4, 8])
def test_nfe_jumps_make_nfe_denoiser_calls_covering_0_to_t_max(nfe):
    model = CountingModel(9)
    ids = FlowMapMethod(teacher="@kl").sample(model, 2, 6, SamplerConfig("flowmap", nfe=nfe),
                                              generator=torch.Generator().manual_seed(0))
    assert ids.shape == (2, 6) and len(model.calls) == nfe
    assert model.calls[0][0] == 0.0 and model.calls[-1][1] == pytest.approx(1.0)
    assert all(a[1] == pytest.approx(b[0]) for a, b in zip(model.calls, model.calls[1:]))  # contiguous jumps


def test_fisher_rao_and_missing_teacher_are_refused():
    with pytest.raises(ConfigError, match="'fisher_rao' is not.*known: euclidean, kl, linear"):
        FlowMapMethod(teacher="@fisher_rao")
    with pytest.raises(ConfigError, match="needs teacher="):
        FlowMapMethod()
    with pytest.raises(ConfigError, match=r"diag_fraction = 1\.5"):
        FlowMapMethod(teacher="@kl", diag_fraction=1.5)


def test_student_starts_as_its_teacher_for_every_jump(kl_run):
    method = FlowMapMethod(teacher=str(kl_run))
    assert method.path_name == "kl" and method.options()["path_options"] == load_run(kl_run)[0].options()
    _, teacher, _, meta, _, _ = load_run(kl_run)
    student = Transformer(model_config(meta["preset"], meta["model"]["vocab_size"], meta["model"]["max_seq_len"],
                                       two_time=True))
    method.init_model(student)
    x = torch.rand(2, 8, backbone_config(teacher).vocab_size).softmax(-1)
    with torch.no_grad():
        for s, t in [(0.1, 0.1), (0.1, 0.7), (0.0, 1.0)]:
            torch.testing.assert_close(student.eval()(x, s, t_end=t), teacher(x, s))


def test_teacher_of_another_path_is_refused(kl_run):
    method = FlowMapMethod(teacher=str(kl_run), path="linear")
    with pytest.raises(ConfigError, match="is 'kl'.*the student distils 'linear'"):
        method.init_model(Transformer(model_config("tiny", 512, 32, two_time=True)))


def test_distillation_loss_falls_on_the_tiny_preset(kl_run, tmp_path, data_cache):
    """A student from fresh weights: its loss on fixed batches and fixed noise falls by half."""
    from pathbench.cli import main
    from pathbench.data.corpus import BatchLoader, prepare_data

    out = tmp_path / "student"
    assert main(["distill", "--teacher", str(kl_run), "--steps", "60", "--out", str(out), "lr=3e-3",
                 "warmup=5", "batch_size=16", "eval_every=60", "progress=false", "method.init=random"]) == 0
    method, student, _, meta, _, _ = load_run(out)
    assert meta["method"] == "flowmap" and meta["model"]["two_time"] and meta["data"]["vocab_size"] == 512
    torch.manual_seed(0)  # the trainer's seed: the weights the student started from
    fresh = Transformer(backbone_config(student))
    data = prepare_data("bbc", "bpe", 32, data_cache, vocab_size=512)
    batches = list(BatchLoader(data.val, 16, shuffle=False).epoch())[:4]

    def mean_loss(model):
        g = torch.Generator().manual_seed(7)
        with torch.no_grad():
            return sum(method.loss(model.eval(), b.ids, b.given, g).item() for b in batches) / len(batches)

    before, after = mean_loss(fresh), mean_loss(student)
    assert after < 0.5 * before, (before, after)
    ids = method.sample(student, 3, 32, SamplerConfig("flowmap", nfe=1), generator=torch.Generator().manual_seed(0))
    assert ids.shape == (3, 32) and int(ids.max()) < 512

    assert main(["study", "flowmap-gap", "--ckpt", str(out), "--steps", "4"]) == 0
    rows = (out / "flowmap_gap.csv").read_text().splitlines()
    assert rows[0] == "s,t,kl,teacher_entropy,student_entropy,student_accuracy" and len(rows) == 1 + len(JUMPS)
    assert all(float(r.split(",")[2]) >= 0 for r in rows[1:])
    assert main(["study", "flowmap-gap", "--ckpt", str(kl_run)]) == 2  # a teacher is not a student


class SoftTeacher(torch.nn.Module):
    """A smooth made-up denoiser of (x, t), float64, for checking the composed teacher map."""

    def forward(self, x, t):
        return (3.0 * x + t.reshape(-1, 1, 1) * torch.arange(x.shape[-1], dtype=x.dtype)).log_softmax(-1)


@pytest.mark.parametrize("path", ["kl", "linear"])
def test_the_teachers_k_step_map_is_one_jump_with_the_composed_delta(path):
    """K Euler jumps of the teacher land where one jump with teacher_flow_map's δ lands."""
    method, teacher = FlowMapMethod(teacher=f"@{path}"), SoftTeacher()
    z = method.path.sample_prior((2, 3, 6), generator=torch.Generator().manual_seed(3))
    s, t, steps = 0.1, 0.85, 5
    at = lambda v: torch.full((2,), v, dtype=torch.float64)  # noqa: E731
    walked = z
    times = torch.linspace(s, t, steps + 1, dtype=torch.float64).tolist()
    for a, b in zip(times[:-1], times[1:]):
        walked = method.jump(walked, teacher(method.path.model_input(walked), at(a)).softmax(-1), at(a), at(b))
    delta = teacher_flow_map(method, teacher, z, s, t, steps)
    assert delta.dtype == torch.float64
    torch.testing.assert_close(delta.sum(-1), torch.ones(2, 3, dtype=torch.float64), rtol=0, atol=1e-12)
    torch.testing.assert_close(method.jump(z, delta, at(s), at(t)), walked, rtol=0, atol=1e-10)


def test_a_student_at_init_is_its_teachers_one_step_map_exactly(kl_run, data_cache):
    """With the teacher's weights and a zero jump embedding the student is one teacher Euler step
    for every jump: against a 1-step teacher map the gap is 0; against 8 steps it is not (off the
    diagonal), while the diagonal stays 0."""
    from pathbench.data.corpus import BatchLoader, prepare_data

    method = FlowMapMethod(teacher=str(kl_run))
    _, teacher, _, meta, _, _ = load_run(kl_run)
    student = Transformer(model_config(meta["preset"], meta["model"]["vocab_size"], meta["model"]["max_seq_len"],
                                       two_time=True))
    method.init_model(student)
    data = prepare_data("bbc", "bpe", 32, data_cache, vocab_size=512)
    batches = list(BatchLoader(data.val, 4, shuffle=False).epoch())[:1]
    t_max = method.path.t_max  # the teacher's (0.3: kl_run trains under the kl-flow protocol)
    jumps = tuple((s * t_max, t * t_max) for s, t in ((0.3, 0.3), (0.0, 0.5), (0.2, 1.0)))
    one = flowmap_gap(method, student.eval(), teacher, batches, jumps=jumps, steps=1)
    assert all(abs(r["kl"]) < 1e-5 for r in one), one
    eight = flowmap_gap(method, student.eval(), teacher, batches, jumps=jumps, steps=8)
    assert abs(eight[0]["kl"]) < 1e-5 and eight[1]["kl"] > 1e-3 and eight[2]["kl"] > 1e-3
    with pytest.raises(ConfigError, match="steps = 0 must be >= 1"):
        flowmap_gap(method, student, teacher, batches, steps=0)
