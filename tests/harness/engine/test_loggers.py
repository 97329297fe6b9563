"""``train.logger``: live curves fed the very records of metrics.jsonl, which change neither a
result nor an id; unknown names and missing libraries are one-line errors."""

import json
import sys

import pytest
from safetensors.torch import load_file

from pathbench.cli import main
from pathbench.engine.plugins import load_all
from pathbench.sweep.experiment import expand
from tests.conftest import SMALL

try:
    from tensorboard.backend.event_processing.event_accumulator import EventAccumulator
except ImportError:  # the tests that read event files skip (fixture `tensorboard`)
    EventAccumulator = None


def train_args(cache, out, steps=4, *extra):
    return ["train", "--method", "kl", "--steps", str(steps), "--out", str(out), f"data.cache_dir={cache}",
            f"data.vocab_size={SMALL['vocab_size']}", f"data.seq_len={SMALL['seq_len']}", "batch_size=8",
            "eval_every=2", "log_every=1", "ckpt_every=2", "progress=false", *extra]


def records(run):
    return [json.loads(line) for line in (run / "metrics.jsonl").read_text().splitlines()]


@pytest.fixture
def tensorboard():
    if EventAccumulator is None:
        pytest.skip("the [logging] extra (tensorboard) is not installed")


def tensorboard_scalars(run):
    """{tag: [(step, value), ...]} as TensorBoard itself reads the run's event files."""
    acc = EventAccumulator(str(run / "tensorboard"), size_guidance={"scalars": 0})
    acc.Reload()
    return {tag: [(e.step, e.value) for e in acc.Scalars(tag)] for tag in acc.Tags()["scalars"]}


def expected_scalars(run):
    out = {}
    for record in records(run):
        for key, value in record.items():
            if key != "step":
                out.setdefault(key, []).append((record["step"], value))
    return out


def assert_same_curves(run):
    got, want = tensorboard_scalars(run), expected_scalars(run)
    assert set(got) == set(want) and {"loss", "lr", "val_loss", "tokens_per_s"} <= set(want)
    for tag, points in want.items():
        assert [s for s, _ in got[tag]] == [s for s, _ in points], tag
        assert [v for _, v in got[tag]] == pytest.approx([v for _, v in points], rel=1e-6), tag  # float32


def test_tensorboard_curves_are_metrics_jsonl_and_change_no_result(tensorboard, tmp_path, data_cache, bbc_small):
    plain, logged = tmp_path / "plain", tmp_path / "logged"
    assert main(train_args(data_cache, plain)) == 0
    assert main(train_args(data_cache, logged, 4, "logger=tensorboard")) == 0
    assert list((logged / "tensorboard").glob("events.out.tfevents.*")) and not (plain / "tensorboard").exists()
    assert_same_curves(logged)
    assert [r["step"] for r in records(logged)] == [1, 2, 3, 4]
    # the logger only observes: the same losses and the same final weights as without it
    drop = lambda rs: [{k: v for k, v in r.items() if k not in ("tokens_per_s", "model_tflops")} for r in rs]  # noqa: E731
    assert drop(records(logged)) == drop(records(plain))
    weights = [load_file(run / "checkpoints" / "step-00000004" / "model.safetensors") for run in (plain, logged)]
    assert weights[0].keys() == weights[1].keys() and all((weights[0][k] == weights[1][k]).all() for k in weights[0])


def test_a_resumed_run_logs_every_step_once(tensorboard, tmp_path, data_cache, bbc_small):
    run = tmp_path / "resumed"
    assert main(train_args(data_cache, run, 2, "logger=tb")) == 0
    assert main([*train_args(data_cache, run, 4, "logger=tensorboard"), "--resume"]) == 0
    assert [r["step"] for r in records(run)] == [1, 2, 3, 4]
    assert_same_curves(run)


def test_the_logger_is_not_part_of_a_units_id():
    load_all()
    raw = {"methods": ["kl", "dfm"], "samplers": [{"name": "basic", "nfe": 4}], "tasks": ["unconditional"],
           "data": {"seq_len": 32, "vocab_size": 512}, "train": {"steps": 3}}
    plain, logged = expand(raw), expand({**raw, "train": {"steps": 3, "logger": "tensorboard"}})
    assert [u.id for u in plain.units] == [u.id for u in logged.units]
    assert [r.id for r in plain.runs] == [r.id for r in logged.runs]
    assert logged.units[0].train["logger"] == "tensorboard"  # still handed to the trainer


def one_line_error(args, capsys):
    rc = main(args)
    err = capsys.readouterr().err.strip()
    assert rc == 2 and "\n" not in err and "Traceback" not in err
    return err


def test_an_unknown_logger_lists_the_known_ones(tmp_path, data_cache, capsys):
    err = one_line_error(train_args(data_cache, tmp_path / "x", 2, "logger=tensorbored"), capsys)
    assert err == ("pathbench train: error: unknown logger 'tensorbored'; known: mlflow, tensorboard, wandb")
    assert not (tmp_path / "x").exists()  # refused before anything was written


@pytest.mark.parametrize("logger, package, extra", [("tensorboard", "tensorboard", "logging"),
                                                    ("wandb", "wandb", "wandb"), ("mlflow", "mlflow", "mlflow")])
def test_a_missing_logger_library_says_how_to_install_it(logger, package, extra, tmp_path, data_cache, capsys,
                                                        monkeypatch):
    monkeypatch.setitem(sys.modules, package, None)  # as if not installed (find_spec gives None)
    err = one_line_error(train_args(data_cache, tmp_path / "x", 2, f"logger={logger}"), capsys)
    assert err == (f"pathbench train: error: train.logger={logger} needs the '{package}' package, "
                   f"which is not installed: pip install 'pathbench[{extra}]'")
    assert not (tmp_path / "x").exists()
