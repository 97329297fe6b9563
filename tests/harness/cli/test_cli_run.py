"""`pathbench train` and `pathbench sample` end to end on the embedded corpus, and their errors."""

import json
import shutil

import pytest
import torch

from pathbench.cli import main
from tests.conftest import SMALL


def data_args(cache):
    return [f"data.cache_dir={cache}", f"data.vocab_size={SMALL['vocab_size']}",
            f"data.seq_len={SMALL['seq_len']}", "batch_size=8", "eval_every=3", "log_every=1"]


@pytest.fixture(scope="module")
def kl_run(tmp_path_factory, data_cache, bbc_small):
    out = tmp_path_factory.mktemp("runs") / "kl"
    assert main(["train", "--method", "kl", "--preset", "tiny", "--steps", "6", "--out", str(out),
                 *data_args(data_cache)]) == 0
    return out


def test_train_writes_a_self_contained_run_folder(kl_run):
    for name in ("meta.json", "checkpoint.json", "metrics.jsonl", "train.log", "tokenizer"):
        assert (kl_run / name).exists(), name
    meta = json.loads((kl_run / "meta.json").read_text())
    assert meta["method"] == "kl" and meta["method_options"]["beta"] == 0.01
    assert meta["model"]["vocab_size"] == 512 and meta["environment"]["versions"]["torch"]
    assert len((kl_run / "metrics.jsonl").read_text().splitlines()) == 6


def test_sample_writes_one_json_line_per_sample(kl_run, tmp_path):
    args = ["sample", "--ckpt", str(kl_run), "--sampler", "hybrid", "--t-star", "0.28", "--nfe", "4",
            "--n", "5", "--batch-size", "2", "--out"]
    assert main([*args, str(tmp_path / "a.jsonl")]) == 0
    assert main([*args, str(tmp_path / "b.jsonl")]) == 0
    lines = [json.loads(line) for line in (tmp_path / "a.jsonl").read_text().splitlines()]
    assert len(lines) == 5 and [r["index"] for r in lines] == list(range(5))
    for record in lines:
        assert len(record["ids"]) == 32 and all(0 <= i < 512 for i in record["ids"])
        assert isinstance(record["text"], str) and record["sampler"]["name"] == "hybrid"
        assert record["sampler"]["t_star"] == 0.28 and record["sampler"]["nfe"] == 4
    assert {r["seed"] for r in lines} == {0, 2, 4}  # one seed per batch of 2, recorded per sample
    assert (tmp_path / "a.jsonl").read_text() == (tmp_path / "b.jsonl").read_text()  # reproducible


@pytest.mark.parametrize("method", ["linear", "fisher_rao", "euclidean"])
def test_every_simplex_path_is_a_method_through_the_same_commands(method, tmp_path, data_cache, bbc_small):
    out = tmp_path / method
    assert main(["train", "--method", method, "--steps", "2", "--out", str(out), *data_args(data_cache)]) == 0
    assert main(["sample", "--ckpt", str(out), "--sampler", "basic", "--nfe", "2", "--n", "2",
                 "--out", str(tmp_path / "s.jsonl")]) == 0
    assert len((tmp_path / "s.jsonl").read_text().splitlines()) == 2


def error_of(args, capsys):
    rc = main(args)
    err = capsys.readouterr().err.strip()
    assert rc == 2 and "\n" not in err and "Traceback" not in err
    return err


def test_train_bad_input(tmp_path, data_cache, capsys):
    base = ["train", "--steps", "2", "--out", str(tmp_path / "r")]
    assert "unknown method 'kll'; known: ar, dfm, euclidean, fisher_rao, fisher_rao_ref, flowmap, kl, linear, sedd" in error_of(
        [*base, "--method", "kll"], capsys)
    assert "unknown preset 'huge'; known: paper-1.5b, paper-150m, small, tiny" in error_of(
        [*base, "--method", "kl", "--preset", "huge", *data_args(data_cache)], capsys)
    assert "corpus 'files:/nonexistent/*.txt' is empty" in error_of(
        [*base, "--method", "kl", "data.corpus=files:/nonexistent/*.txt"], capsys)
    assert "error: method 'kl': beta = 0 is outside (0, 1)" in error_of(
        [*base, "--method", "kl", "method.beta=0"], capsys)


def test_train_over_an_existing_run_overwrites_nothing(kl_run, data_cache, capsys):
    meta = (kl_run / "meta.json").read_text()
    err = error_of(["train", "--method", "kl", "--steps", "6", "--out", str(kl_run), *data_args(data_cache)], capsys)
    assert "already holds a checkpoint; pass --resume" in err
    assert (kl_run / "meta.json").read_text() == meta


def test_sample_bad_input(kl_run, tmp_path, capsys):
    out = ["--out", str(tmp_path / "s.jsonl")]
    assert "was trained with method 'kl', not 'linear'" in error_of(
        ["sample", "--ckpt", str(kl_run), "--method", "linear", *out], capsys)
    assert "sequence length 64 exceeds the checkpoint's maximum 32" in error_of(
        ["sample", "--ckpt", str(kl_run), "--seq-len", "64", *out], capsys)
    assert "NFE = 0 must be an integer >= 1" in error_of(["sample", "--ckpt", str(kl_run), "--nfe", "0", *out], capsys)
    assert "is not a pathbench run folder" in error_of(["sample", "--ckpt", str(tmp_path), *out], capsys)
    assert not (tmp_path / "s.jsonl").exists()


def test_vocabulary_mismatch_and_truncated_checkpoint(kl_run, tmp_path, capsys):
    from pathbench.data.corpus import load_corpus
    from pathbench.data.tokenizer import build_tokenizer

    broken = tmp_path / "copy"
    shutil.copytree(kl_run, broken)
    shutil.rmtree(broken / "tokenizer")
    build_tokenizer("bpe", load_corpus("bbc")[:50], vocab_size=300).save(broken / "tokenizer")
    out = ["--out", str(tmp_path / "s.jsonl")]
    assert "vocabulary mismatch: the checkpoint's model has 512 tokens, its tokenizer 300" in error_of(
        ["sample", "--ckpt", str(broken), *out], capsys)
    shutil.rmtree(broken)
    shutil.copytree(kl_run, broken)
    weights = next((broken / "checkpoints").glob("step-*")) / "model.safetensors"
    weights.write_bytes(weights.read_bytes()[:500])
    assert "is corrupt or truncated" in error_of(["sample", "--ckpt", str(broken), *out], capsys)


def test_torchrun_ddp_on_two_cpu_processes(tmp_path, data_cache, bbc_small):
    import os
    import subprocess
    import sys

    out = tmp_path / "ddp"
    cmd = [sys.executable, "-m", "torch.distributed.run", "--nproc_per_node", "2", "-m", "pathbench.cli",
           "train", "--method", "kl", "--steps", "4", "--out", str(out), *data_args(data_cache),
           "progress=false"]
    done = subprocess.run(cmd, capture_output=True, text=True, timeout=300,
                          env={**os.environ, "OMP_NUM_THREADS": "1"})
    assert done.returncode == 0, done.stderr[-2000:]
    assert done.stdout.count("trained kl to step 4") == 1  # rank 0 reports
    assert len((out / "metrics.jsonl").read_text().splitlines()) == 4
    assert json.loads((out / "checkpoint.json").read_text())["step"] == 4


def test_two_rank_resume_continues_every_ranks_own_draws(tmp_path, data_cache, bbc_small):
    """Stopped at step 2 and resumed, a 2-rank DDP run logs the same losses as the run that went
    straight to step 4: each rank restores its own generator, not rank 0's."""
    import os
    import subprocess
    import sys

    def torchrun(out, steps, *extra):
        cmd = [sys.executable, "-m", "torch.distributed.run", "--nproc_per_node", "2", "-m", "pathbench.cli",
               "train", "--method", "kl", "--steps", str(steps), "--out", str(out), *data_args(data_cache),
               "progress=false", "ckpt_every=2", "log_every=1", *extra]
        done = subprocess.run(cmd, capture_output=True, text=True, timeout=300,
                              env={**os.environ, "OMP_NUM_THREADS": "1"})
        assert done.returncode == 0, done.stderr[-2000:]
        return [json.loads(line)["loss"] for line in (out / "metrics.jsonl").read_text().splitlines()]

    straight = torchrun(tmp_path / "straight", 4)
    torchrun(tmp_path / "split", 2)
    resumed = torchrun(tmp_path / "split", 4, "--resume")
    assert len(straight) == 4 and resumed == straight
    (state_file,) = (tmp_path / "split" / "checkpoints").glob("*4/state.pt")
    ranks = torch.load(state_file, weights_only=False)["rng_ranks"]
    assert len(ranks) == 2 and not torch.equal(ranks[0]["method"], ranks[1]["method"])


def test_line_infilling_training_conditions_on_the_given_lines(tmp_path, data_cache, bbc_small):
    out = tmp_path / "infill"
    assert main(["train", "--method", "kl", "--steps", "2", "--out", str(out), *data_args(data_cache),
                 "data.given=lines"]) == 0
    meta = json.loads((out / "meta.json").read_text())
    assert meta["data"]["given"] == "lines" and meta["data"]["line_mask_min"] == 0.1


def test_unknown_given_policy(tmp_path, capsys):
    rc = main(["train", "--method", "kl", "--steps", "1", "--out", str(tmp_path / "x"), "data.given=spans"])
    assert rc == 2 and "unknown data.given 'spans'; known: none, lines" in capsys.readouterr().err


def test_resume_a_run_written_before_a_model_field_existed(tmp_path, data_cache, bbc_small, capsys):
    """A run whose meta.json predates a ModelConfig field resumes (the field takes its default);
    a real change of the architecture is still refused."""
    out = tmp_path / "old"
    args = ["train", "--method", "kl", "--out", str(out), *data_args(data_cache)]
    assert main([*args, "--steps", "2"]) == 0
    meta = json.loads((out / "meta.json").read_text())
    del meta["model"]["two_time"]  # as written by a revision without flow-map students
    (out / "meta.json").write_text(json.dumps(meta))
    assert main([*args, "--steps", "4", "--resume"]) == 0
    assert json.loads((out / "checkpoint.json").read_text())["step"] == 4
    assert main([*args, "model.n_layer=2", "--steps", "6", "--resume"]) == 2
    assert "cannot resume" in capsys.readouterr().err


def test_eval_rejects_a_bad_task_scorer_or_option_before_sampling(kl_run, tmp_path, capsys, monkeypatch):
    import pathbench.evaluation.evaluate as evaluate
    import pathbench.tasks.adapters.unconditional as unconditional

    def never(*args, **kwargs):
        raise AssertionError("reached before the names were checked")

    monkeypatch.setattr(unconditional, "draw_samples", never)
    out = tmp_path / "ev"
    base = ["eval", "--ckpt", str(kl_run), "--nfe", "2", "--n", "2", "--out", str(out)]
    # an unavailable scorer is found once the checkpoint is read, still before any sample
    assert "scorer 'hf:/nonexistent' is not available offline" in error_of(
        [*base, "--task", "unconditional", "scorer=hf:/nonexistent"], capsys)
    monkeypatch.setattr(evaluate, "load_run", never)  # a bad name: not even the checkpoint is read
    assert error_of([*base, "--task", "unconditional", "scorer=gpt5"], capsys) == (
        "pathbench eval: error: task 'unconditional': unknown scorer 'gpt5'; known: smollm2, hf:<name or path>, self:<run folder>, "
        "oracle (an oracle: corpus's own HMM)")
    assert error_of([*base, "--task", "unconditional", "scorerr=smollm2"], capsys) == (
        "pathbench eval: error: unknown option 'scorerr' for task 'unconditional'; valid: batch_size, device, scorer, "
            "scorer_device_map, scorer_dtype")
    assert "unknown task 'translate'; known: headline_lead, humaneval_infill" in error_of(
        [*base, "--task", "translate"], capsys)
    assert not out.exists()  # nothing written


def test_row_seeded_samples_do_not_depend_on_the_batch_or_the_memory_budget(kl_run, tmp_path, capsys):
    base = ["sample", "--ckpt", str(kl_run), "--sampler", "sampling", "--top-k", "none", "--nfe", "3",
            "--n", "5", "--seeding", "row"]
    variants = {"b5": ["--batch-size", "5"], "b2": ["--batch-size", "2"],
                "budget": ["--batch-size", "5", "--memory-gb", "0.0006"]}  # ≈ 0.47 MB a row: 1 at a time
    ids = {}
    for name, extra in variants.items():
        assert main([*base, *extra, "--out", str(tmp_path / f"{name}.jsonl")]) == 0
        records = [json.loads(line) for line in (tmp_path / f"{name}.jsonl").read_text().splitlines()]
        ids[name] = [r["ids"] for r in records]
        assert all(r["seeding"] == "row" for r in records)
    assert ids["b5"] == ids["b2"] == ids["budget"]
    budget = [json.loads(line) for line in (tmp_path / "budget.jsonl").read_text().splitlines()]
    assert {r["batch_size"] for r in budget} == {1}  # the budget cut the batch
    # batch streams: the draws follow the batch size (every committed result is batch-seeded)
    batch = ["sample", "--ckpt", str(kl_run), "--sampler", "sampling", "--top-k", "none", "--nfe", "3", "--n", "4"]
    assert main([*batch, "--batch-size", "4", "--out", str(tmp_path / "c4.jsonl")]) == 0
    assert main([*batch, "--batch-size", "2", "--out", str(tmp_path / "c2.jsonl")]) == 0
    read = [[json.loads(line)["ids"] for line in (tmp_path / f).read_text().splitlines()] for f in ("c4.jsonl", "c2.jsonl")]
    assert read[0][:2] != read[1][:2]


def test_a_budget_that_cannot_hold_one_sample_is_one_line(kl_run, tmp_path, capsys):
    code = main(["sample", "--ckpt", str(kl_run), "--nfe", "2", "--n", "2", "--memory-gb", "0.00001",
                 "--out", str(tmp_path / "x.jsonl")])
    err = capsys.readouterr().err
    assert code == 2 and "more than the memory budget of 0.00 GB" in err and "Traceback" not in err
    assert not (tmp_path / "x.jsonl").exists()
