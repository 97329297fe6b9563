"""`pathbench study kl-curve` end to end, checked against an independent NumPy computation."""

import csv

import numpy as np
import pytest

from pathbench.cli import main


def independent_kl(path, vocab, t, samples=4000, beta=0.01, seed=123):
    """KL(x1‖x_t) by NumPy's own Dirichlet sampler and the textbook formulas."""
    rng = np.random.default_rng(seed)
    x0 = rng.dirichlet(np.ones(vocab), size=samples)
    x0 = np.maximum(x0, 1e-300)  # NumPy's sampler may return exact zeros at large V
    x1 = np.full(vocab, beta / vocab)
    x1[0] += 1 - beta  # by symmetry the target token does not matter
    if path == "linear":
        xt = (1 - t) * x0 + t * x1
    elif path == "fisher_rao":
        s0, s1 = np.sqrt(x0), np.sqrt(x1)
        omega = np.arccos(np.clip(s0 @ s1, -1, 1))[:, None]
        xt = ((np.sin((1 - t) * omega) * s0 + np.sin(t * omega) * s1) / np.sin(omega)) ** 2
    else:
        logits = (1 - t) * np.log(x0) + t * np.log(x1)
        logits -= logits.max(1, keepdims=True)
        xt = np.exp(logits) / np.exp(logits).sum(1, keepdims=True)
    kl = (x1 * (np.log(x1) - np.log(xt))).sum(1)
    return kl.mean(), kl.std(ddof=1)


@pytest.fixture(scope="module")
def curve(tmp_path_factory):
    out = tmp_path_factory.mktemp("klc")
    rc = main(["study", "kl-curve", "--vocab", "10", "10000", "--paths", "linear,fisher_rao,kl",
               "--samples", "256", "--beta", "0.01", "--out", str(out)])
    assert rc == 0
    with open(out / "kl_curve.csv") as handle:
        rows = list(csv.DictReader(handle))
    return out, rows


def test_csv_layout_and_plot(curve):
    out, rows = curve
    assert list(rows[0]) == ["path", "vocab", "t", "kl_mean", "kl_std"]
    assert len(rows) == 3 * 2 * 99
    ts = sorted({float(r["t"]) for r in rows})
    assert len(ts) >= 50 and 0 < ts[0] and ts[-1] < 1
    png = (out / "kl_curve.png").read_bytes()
    assert png[:8] == b"\x89PNG\r\n\x1a\n" and len(png) > 20_000


def _at(rows, path, vocab, t):
    row = min((r for r in rows if r["path"] == path and int(r["vocab"]) == vocab),
              key=lambda r: abs(float(r["t"]) - t))
    return float(row["t"]), float(row["kl_mean"]), float(row["kl_std"])


@pytest.mark.parametrize("path", ["linear", "fisher_rao", "kl"])
@pytest.mark.parametrize("vocab", [10, 10000])
@pytest.mark.parametrize("t", [0.1, 0.3, 0.7])
def test_csv_agrees_with_independent_computation(curve, path, vocab, t):
    _, rows = curve
    t_csv, mean, std = _at(rows, path, vocab, t)
    ref_mean, ref_std = independent_kl(path, vocab, t_csv)
    standard_error = np.hypot(std / np.sqrt(256), ref_std / np.sqrt(4000))
    assert abs(mean - ref_mean) < 5 * standard_error + 1e-9, (mean, ref_mean, standard_error)


def test_kl_path_keeps_kl_several_times_higher_at_large_vocab(curve):
    _, rows = curve
    _, kl, _ = _at(rows, "kl", 10000, 0.3)
    _, linear, _ = _at(rows, "linear", 10000, 0.3)
    _, fisher_rao, _ = _at(rows, "fisher_rao", 10000, 0.3)
    assert kl > 3 * linear and kl > 3 * fisher_rao


@pytest.mark.parametrize(
    "args, message",
    [
        (["--paths", "linear,kll"], "unknown path 'kll'; known: euclidean, fisher_rao, fisher_rao_ref, kl, linear"),
        (["--vocab", "1"], "vocab = 1 must be >= 2"),
        (["--paths", "kl", "--beta", "0"], "path 'kl': beta = 0.0 is outside (0, 1)"),
        (["--beta", "1.2"], "beta = 1.2 is outside [0, 1)"),
        (["--vocab", "ten"], "argument --vocab: invalid int value: 'ten'"),
        (["--samples", "1"], "samples = 1 must be >= 2"),
        (["--paths", "euclidean"], "does not live on the simplex"),
    ],
)
def test_bad_input_is_one_line_and_exit_code_2(tmp_path, capsys, args, message):
    try:
        rc = main(["study", "kl-curve", *args, "--out", str(tmp_path / "o")])
    except SystemExit as stop:  # argparse's own type errors
        rc = stop.code
    err = capsys.readouterr().err.strip()
    assert rc == 2
    assert message in err and "\n" not in err and "Traceback" not in err
    assert not (tmp_path / "o" / "kl_curve.csv").exists()
