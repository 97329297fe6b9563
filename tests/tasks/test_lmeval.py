"""lm-evaluation-harness runs a local generative task on a pathbench checkpoint, offline."""

import json
import shutil
from pathlib import Path

import pytest

from harness.cli import main
from harness.engine.generate import generate
from harness.engine.protocol import sampling_setup
from harness.engine.run import load_run

FIXTURES = Path(__file__).parents[1] / "fixtures" / "lm_eval"


@pytest.fixture(scope="module")
def run_dir(tmp_path_factory, data_cache, bbc_small):
    out = tmp_path_factory.mktemp("lm-eval") / "kl"
    assert main(["train", "--method", "kl", "--steps", "2", "--out", str(out), f"data.cache_dir={data_cache}",
                 "data.vocab_size=512", "data.seq_len=32", "batch_size=8", "progress=false"]) == 0
    return out


@pytest.fixture
def task_dir(tmp_path):
    shutil.copy(FIXTURES / "headlines.jsonl", tmp_path)
    text = (FIXTURES / "echo_headlines.yaml").read_text()
    (tmp_path / "echo_headlines.yaml").write_text(text.replace("headlines.jsonl", str(tmp_path / "headlines.jsonl")))
    return tmp_path


def test_lm_eval_generate_until_matches_pathbench_generation(run_dir, task_dir, tmp_path, monkeypatch):
    monkeypatch.setenv("HF_DATASETS_OFFLINE", "1")
    import lm_eval
    from lm_eval.tasks import TaskManager

    import tasks.lmeval  # noqa: F401

    result = lm_eval.simple_evaluate(model="pathbench", model_args=f"ckpt={run_dir},nfe=3",
                                     tasks=["pathbench_echo_headlines"], log_samples=True,
                                     task_manager=TaskManager(include_path=str(task_dir)))
    metrics = result["results"]["pathbench_echo_headlines"]
    assert metrics["sample_len"] == 5 and 0.0 <= metrics["exact_match,strip"] <= 1.0
    samples = sorted(result["samples"]["pathbench_echo_headlines"], key=lambda s: s["doc_id"])
    # the same requests through pathbench's own generator give the same answers
    method, model, tok, meta, _, _ = load_run(run_dir)
    # the run's protocol (kl-flow) fills the keys lm-eval did not give, as for `pathbench sample`
    method, sampler, record = sampling_setup(method, meta, None, {"name": "basic", "nfe": 3})
    assert record["name"] == "kl-flow" and (sampler.top_k, sampler.final_at) == (1, "t_max")
    prompts = [json.loads(line)["prompt"] for line in (task_dir / "headlines.jsonl").read_text().splitlines()]
    direct = generate(method, model, tok, [[p, 6] for p in prompts], sampler, seq_len=32)
    for sample, mine in zip(samples, direct):
        assert sample["resps"][0][0] == mine[0][0].split("\n")[0]


def test_lm_eval_command(run_dir, task_dir, tmp_path, monkeypatch, capsys):
    monkeypatch.setenv("HF_DATASETS_OFFLINE", "1")
    out = tmp_path / "r.json"
    assert main(["lm-eval", "--ckpt", str(run_dir), "--tasks", "pathbench_echo_headlines", "--include-path",
                 str(task_dir), "--model-args", "nfe=2", "--out", str(out)]) == 0
    assert "pathbench_echo_headlines" in json.loads(out.read_text())
    rc = main(["lm-eval", "--ckpt", str(run_dir), "--tasks", "no_such_task", "--out", str(out)])
    assert rc == 2 and "unknown lm-eval task 'no_such_task'" in capsys.readouterr().err


def test_loglikelihood_requests_fail_clearly(run_dir):
    from harness.core.errors import ConfigError
    from tasks.lmeval import PathbenchLM

    with pytest.raises(ConfigError, match="generate_until"):
        PathbenchLM(ckpt=str(run_dir)).loglikelihood([])
