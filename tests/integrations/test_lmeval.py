"""lm-evaluation-harness runs a local generative task on a pathbench checkpoint, offline: through
lm-eval's own CLI (a fresh interpreter resolving the declared entry point, and ``pathbench
lm-eval``), with answers that depend only on the request and the seed."""

import json
import os
import shutil
import subprocess
import sys
from pathlib import Path
from types import SimpleNamespace

import pytest

from pathbench.cli import main
from pathbench.core.errors import ConfigError
from pathbench.engine.generate import generate

ROOT = Path(__file__).parents[2]
FIXTURES = ROOT / "tests" / "fixtures" / "lm_eval"
TASK = "pathbench_echo_headlines"
PROMPTS = [json.loads(line)["prompt"] for line in (FIXTURES / "headlines.jsonl").read_text().splitlines()]

# What an lm-eval with entry-point discovery (upstream #4013) does before its CLI runs:
# register each `lm_eval.models` entry point as a lazy placeholder. lm-eval 0.4.13 scans none,
# so the test does it, from pyproject.toml's declaration, then runs lm-eval's own CLI main.
DISCOVER_THEN_CLI = """
import sys
from lm_eval.api.registry import model_registry
from lm_eval.__main__ import cli_evaluate
import lm_eval.models
for name, target in (e.split("=", 1) for e in sys.argv[1].split(";")):
    model_registry.register(name, target=target)
sys.argv = ["lm-eval", *sys.argv[2:]]
cli_evaluate()
"""


@pytest.fixture(scope="module")
def run_dir(kl_run):
    return kl_run  # the session's trained kl run (conftest); nothing here writes into it


@pytest.fixture(scope="module")
def lm(run_dir):
    from pathbench.integrations.lmeval import PathbenchLM

    return PathbenchLM(ckpt=str(run_dir), nfe=3)


@pytest.fixture
def task_dir(tmp_path):
    shutil.copy(FIXTURES / "headlines.jsonl", tmp_path)
    text = (FIXTURES / "echo_headlines.yaml").read_text()
    (tmp_path / "echo_headlines.yaml").write_text(text.replace("headlines.jsonl", str(tmp_path / "headlines.jsonl")))
    return tmp_path


def check_layout(out: Path, n_samples: int) -> dict:
    """lm-eval's usual output: <out>/<model>/results_<time>.json and samples_<task>_<time>.jsonl."""
    [results_file] = out.glob("*/results_*.json")
    results = json.loads(results_file.read_text())
    assert {"results", "configs", "versions", "n-samples", "config"} <= results.keys()
    assert results["n-samples"][TASK]["effective"] == n_samples
    assert results["config"]["model"] == "pathbench"
    [samples_file] = results_file.parent.glob(f"samples_{TASK}_*.jsonl")
    assert len(samples_file.read_text().splitlines()) == n_samples
    return results


def test_standard_lm_eval_cli_resolves_the_entry_point(run_dir, task_dir, tmp_path):
    # the [project.entry-points."lm_eval.models"] table (tomllib is Python >= 3.11 only)
    table = (ROOT / "pyproject.toml").read_text().split('[project.entry-points."lm_eval.models"]\n', 1)[1]
    lines = [line for line in table.split("\n[", 1)[0].splitlines() if "=" in line and not line.startswith("#")]
    declared = dict(line.replace('"', "").replace(" ", "").split("=", 1) for line in lines)
    assert declared == {"pathbench": "pathbench.integrations.lmeval:PathbenchLM"}
    entry_points = ";".join(f"{name}={target}" for name, target in declared.items())
    out = tmp_path / "out"
    # nothing of pathbench is imported before lm-eval resolves the model: the adapter loads the
    # components itself; lm-eval's default --device cuda:0 falls back to cpu without CUDA
    proc = subprocess.run(
        [sys.executable, "-c", DISCOVER_THEN_CLI, entry_points, "run", "--model", "pathbench",
         "--model_args", f"pretrained={run_dir},nfe=2", "--tasks", TASK, "--include_path", str(task_dir),
         "--limit", "3", "--output_path", str(out), "--log_samples"],
        cwd=tmp_path, capture_output=True, text=True, timeout=300,
        env={**os.environ, "PYTHONPATH": str(ROOT), "HF_DATASETS_OFFLINE": "1", "HF_HUB_OFFLINE": "1",
             "CUDA_VISIBLE_DEVICES": ""})
    assert proc.returncode == 0, proc.stderr[-3000:]
    assert "no CUDA device is available: using cpu" in proc.stderr
    results = check_layout(out, 3)
    assert results["config"]["pathbench_method"] == "kl"
    assert results["config"]["pathbench_generation_protocol"]["name"] == "kl-flow"


def test_pathbench_lm_eval_passes_lm_eval_flags_through(run_dir, task_dir, tmp_path, capsys):
    out = tmp_path / "out"
    assert main(["lm-eval", "--ckpt", str(run_dir), "--tasks", TASK, "--include_path", str(task_dir),
                 "--model_args", "nfe=2", "--device", "cpu", "--limit", "4", "--output_path", str(out),
                 "--log_samples"]) == 0
    results = check_layout(out, 4)
    assert results["config"]["model_args"] == {"pretrained": str(run_dir), "nfe": 2}
    # the output folder is named after the run, as lm-eval names it after `pretrained`
    assert next(out.glob("*/results_*.json")).parent.name == str(run_dir).replace("/", "__")
    # lm-eval's own argument checks (lm_eval.config) are bad input: one line, exit 2
    assert main(["lm-eval", "--ckpt", str(run_dir), "--tasks", TASK, "--log_samples"]) == 2
    assert capsys.readouterr().err.strip().splitlines()[-1] == ("pathbench lm-eval: error: lm-eval: Specify "
                                                                "--output_path if providing --log_samples or "
                                                                "--predict_only")


def test_lm_eval_argv():
    from pathbench.cli.lmeval import lm_eval_argv

    assert lm_eval_argv(Path("r"), ["--tasks", "t"]) == ["run", "--model", "pathbench", "--model_args",
                                                         "pretrained=r", "--tasks", "t"]
    assert lm_eval_argv(None, ["ls", "tasks"]) == ["ls", "tasks"]
    with pytest.raises(ConfigError, match="--model hf"):
        lm_eval_argv(Path("r"), ["--model", "hf"])


def test_unknown_model_args_are_an_error_listing_the_valid_ones(run_dir):
    from pathbench.integrations.lmeval import PathbenchLM

    with pytest.raises(ConfigError, match=r"unknown pathbench model arg\(s\) nfee, samplr; valid: ckpt, pretrained, "
                                          r"sampler, nfe,"):
        PathbenchLM(ckpt=str(run_dir), nfee=3, samplr="hybrid")
    with pytest.raises(ConfigError, match="need ckpt="):
        PathbenchLM()


def test_max_gen_toks_comes_from_the_request(lm):
    prompt = " ".join(["the"] * 40)
    n_prompt = len(lm.tok.encode(prompt))
    assert lm.seq_len == 32 and n_prompt > 32
    assert lm.fit("Dollar gains on", 20) == (["Dollar gains on", 20], False, False)
    parts, capped, cut = lm.fit(prompt, 10)  # kept: the prompt's last 22 tokens, as lm-eval's HF model does
    assert (len(lm.tok.encode(parts[0])), parts[1], capped, cut) == (22, 10, False, True)
    parts, capped, cut = lm.fit("Dollar gains on", 64)  # capped by the sequence length only
    assert (len(lm.tok.encode(parts[0])), parts[1], capped, cut) == (1, 31, True, True)
    assert lm.fit("", 64) == ([32], True, False)


def request(prompt: str, max_gen_toks: int = 6) -> SimpleNamespace:
    return SimpleNamespace(args=(prompt, {"until": ["\n"], "max_gen_toks": max_gen_toks}))


def test_answers_do_not_depend_on_batch_or_order(lm):
    from pathbench.integrations.lmeval import request_seed

    requests = [request(p) for p in PROMPTS[:3]]
    together = lm.generate_until(requests)
    alone = [lm.generate_until([r])[0] for r in reversed(requests)][::-1]
    assert together == alone
    # each is pathbench's own generation with the request's seed
    for r, answer in zip(requests, together):
        [[[text]]] = generate(lm.method, lm.model, lm.tok, [[r.args[0], 6]], lm.sampler, seq_len=32,
                              request_seeds=[request_seed(0, r.args, 0)])
        assert answer == text.split("\n")[0]
    # a repeated request (lm-eval's `repeats`) draws again; the base seed changes every answer's seed
    args = requests[0].args
    seeds = {request_seed(0, args, 0), request_seed(0, args, 1), request_seed(1, args, 0)}
    assert len(seeds) == 3 and max(seeds) < 2 ** 40


def test_device_falls_back_to_cpu_without_cuda(monkeypatch, caplog):
    import torch

    from pathbench.integrations.lmeval import pick_device

    monkeypatch.setattr(torch.cuda, "is_available", lambda: False)
    assert pick_device("cuda:0") == "cpu" and "no CUDA device is available" in caplog.text
    assert pick_device(None) == "cpu" and pick_device("cpu") == "cpu"
    with pytest.raises(ConfigError, match="unknown device 'tpu'"):
        pick_device("tpu")


def test_loglikelihood_requests_fail_clearly(lm):
    with pytest.raises(ConfigError, match="generate_until"):
        lm.loglikelihood([])


def test_lm_evals_batch_size_sets_requests_at_once_and_a_bad_one_is_one_line(run_dir):
    from pathbench.integrations.lmeval import PathbenchLM

    assert PathbenchLM(ckpt=str(run_dir), nfe=2, batch_size="4").batch_size == 4
    assert PathbenchLM(ckpt=str(run_dir), nfe=2, batch_size="auto:8").batch_size == 16
    with pytest.raises(ConfigError, match="batch_size = 'many' must be an integer >= 1 or 'auto'"):
        PathbenchLM(ckpt=str(run_dir), nfe=2, batch_size="many")


def test_bad_model_args_sampler_and_checkpoint_are_one_line_before_lm_eval_starts(run_dir, task_dir, tmp_path, capsys,
                                                                                   monkeypatch):
    """Checked without loading the model or starting lm-eval: a monkeypatched lm-eval entry
    point that would fail the test if reached shows that nothing of lm-eval ran."""
    import lm_eval.__main__

    monkeypatch.setattr(lm_eval.__main__, "cli_evaluate", lambda: pytest.fail("lm-eval started"))
    out = tmp_path / "out"
    cases = {("--model_args", "nfee=3"): "unknown pathbench model arg(s) nfee; valid: ckpt, pretrained, sampler",
             ("--model_args", "sampler=hybridd"): "hybridd",
             ("--model_args", "nfe=abc"): "model arg nfe='abc' must be an integer",
             ("--model_args", "protocol=klflow"): "klflow"}
    for extra, expected in cases.items():
        assert main(["lm-eval", "--ckpt", str(run_dir), "--tasks", TASK, "--include_path", str(task_dir),
                     *extra, "--output_path", str(out)]) == 2, extra
        err = capsys.readouterr().err.strip().splitlines()
        assert len(err) == 1 and expected in err[0], (extra, err)
    missing = tmp_path / "no-such-run"
    assert main(["lm-eval", "--ckpt", str(missing), "--tasks", TASK, "--output_path", str(out)]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and f"checkpoint {missing} does not exist" in err[0]
    assert main(["lm-eval", "--model", "pathbench", "--model_args", f"pretrained={tmp_path}", "--tasks", TASK]) == 2
    assert "is not a pathbench run folder" in capsys.readouterr().err
    assert not out.exists()


def test_lm_evals_own_usage_errors_and_unknown_tasks_are_one_line(run_dir, tmp_path, capsys):
    assert main(["lm-eval", "--ckpt", str(run_dir), "--no_such_flag", "1", "--tasks", TASK]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and "unrecognized arguments: --no_such_flag" in err[0], err
    assert main(["lm-eval", "--ckpt", str(run_dir), "--tasks", "no_such_task_xyz", "--output_path",
                 str(tmp_path / "o")]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert "no_such_task_xyz" in err[-1] and "pathbench lm-eval ls tasks" in err[-1], err
