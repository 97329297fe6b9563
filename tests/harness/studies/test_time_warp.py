"""The decoding-error time warp: known curves, round trips, and the stored grid in use."""

import json

import pytest
import torch

from pathbench.cli import main
from pathbench.core.errors import ConfigError
from pathbench.studies.time_warp import TimeWarp


def test_a_linear_error_curve_gives_the_uniform_grid():
    times = [k / 10 for k in range(11)]
    warp = TimeWarp(times, [5.0 - 4.0 * t for t in times])
    torch.testing.assert_close(warp.grid(5, 1.0), torch.linspace(0, 1, 6, dtype=torch.float64), atol=1e-3, rtol=0)


def test_steps_crowd_where_the_error_falls():
    times = [k / 20 for k in range(21)]
    error = [6.0 if t < 0.4 else (1.0 if t > 0.6 else 6.0 - 25.0 * (t - 0.4)) for t in times]  # falls on [0.4, 0.6]
    grid = TimeWarp(times, error).grid(10, 1.0)
    inside = ((grid > 0.39) & (grid < 0.61)).sum().item()
    assert inside >= 8  # 9 interior points, nearly all where the error drops
    assert grid[0] == 0 and grid[-1] == 1 and (grid.diff() > 0).all()


def test_forward_and_inverse_round_trip_and_a_noisy_curve_is_made_monotone():
    g = torch.Generator().manual_seed(0)
    times = torch.linspace(0, 0.9, 31, dtype=torch.float64)
    error = (4 * torch.exp(-5 * times) + 0.05 * torch.randn(31, generator=g, dtype=torch.float64)).tolist()
    warp = TimeWarp(times.tolist(), error)
    u = torch.linspace(0, 1, 101, dtype=torch.float64)
    torch.testing.assert_close(warp.forward(warp.inverse(u)), u, atol=1e-9, rtol=0)
    rho = warp.forward(times)
    assert (rho.diff() > 0).all() and rho[0] == 0 and rho[-1] == pytest.approx(1.0)


def test_bad_curves_and_mismatched_ranges():
    with pytest.raises(ConfigError, match="strictly increasing"):
        TimeWarp([0.0, 0.5, 0.5], [3.0, 2.0, 1.0])
    with pytest.raises(ConfigError, match=">= 2"):
        TimeWarp([0.0], [1.0])
    with pytest.raises(ConfigError, match=r"measured on \[0.0, 1.0\].*\[0, 0.3\]"):
        TimeWarp([0.0, 1.0], [2.0, 1.0]).grid(4, 0.3)


def test_reparam_stores_the_curve_and_grid_error_samples_with_it(kl_run, tmp_path, capsys):
    out = tmp_path / "s.jsonl"
    assert main(["sample", "--ckpt", str(kl_run), "--grid", "error", "--nfe", "4", "--n", "2",
                 "--out", str(out)]) == 2
    assert "run `pathbench study reparam --ckpt DIR` first" in capsys.readouterr().err
    assert main(["study", "reparam", "--ckpt", str(kl_run), "--points", "9", "--batches", "2"]) == 0
    stored = json.loads((kl_run / "calibration.json").read_text())["time_warp"]
    assert len(stored["times"]) == 9 and stored["step"] == 60
    assert stored["error"][0] > stored["error"][-1] + 1.0  # the trained denoiser decodes late t well
    assert (kl_run / "time_warp.png").stat().st_size > 0
    assert main(["sample", "--ckpt", str(kl_run), "--grid", "error", "--nfe", "4", "--n", "2",
                 "--out", str(out)]) == 0
    line = json.loads(out.read_text().splitlines()[0])
    assert line["sampler"]["grid"] == "error" and len(line["ids"]) == 32


def test_training_on_warped_time_draws_t_by_the_stored_curve(tmp_path):
    from pathbench.core.registry import METHODS
    from pathbench.engine.calibration import store_calibration
    from pathbench.engine.plugins import load_all

    load_all()
    times = [k / 20 for k in range(21)]
    error = [6.0 if t < 0.4 else (1.0 if t > 0.6 else 6.0 - 25.0 * (t - 0.4)) for t in times]
    store_calibration(tmp_path, "time_warp", TimeWarp(times, error).to_dict())
    method = METHODS.build("euclidean", time_warp=str(tmp_path))
    assert method.options()["time_warp"] == str(tmp_path)
    seen = []

    class Spy(torch.nn.Module):
        config = type("C", (), {"vocab_size": 11})()

        def __init__(self):
            super().__init__()
            self.w = torch.nn.Parameter(torch.zeros(1))

        def forward(self, x, t):
            seen.append(t)
            return torch.zeros(*x.shape[:2], 11) + self.w

    ids = torch.randint(11, (4000, 2))
    method.loss(Spy(), ids, torch.zeros_like(ids, dtype=torch.bool), torch.Generator().manual_seed(0))
    t = seen[0]
    inside = ((t > 0.4) & (t < 0.6)).double().mean().item()
    assert inside > 0.95  # uniform training times would put 20 % there
    with pytest.raises(ConfigError, match="has no fitted decoding-error curve; run `pathbench study reparam"):
        METHODS.build("kl", time_warp=str(tmp_path / "elsewhere"))
    with pytest.raises(ConfigError, match=r"measured on \[0.0, 1.0\], the path integrates on \[0, 0.3\]"):
        METHODS.build("kl", time_warp=str(tmp_path), t_max=0.3)
