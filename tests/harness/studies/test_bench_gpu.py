"""``pathbench study bench gpu``: refused without CUDA; its code path (--device cpu --tiny) fills every
section with numbers."""

import json
import math

import pytest
import torch

from pathbench.cli import main
from pathbench.core.registry import METHODS
from pathbench.engine.plugins import load_all


@pytest.mark.skipif(torch.cuda.is_available(), reason="checks the refusal on a machine without CUDA")
def test_without_cuda_it_exits_2_with_one_line(tmp_path, capsys):
    assert main(["study", "bench", "gpu", "--out", str(tmp_path / "g")]) == 2
    err = capsys.readouterr().err.strip()
    assert len(err.splitlines()) == 1 and "needs a CUDA device" in err
    assert not (tmp_path / "g").exists()


def test_cpu_needs_tiny(tmp_path, capsys):
    assert main(["study", "bench", "gpu", "--device", "cpu", "--out", str(tmp_path / "g")]) == 2
    assert "--device cpu needs --tiny" in capsys.readouterr().err


@pytest.fixture
def one_thread():
    """One intra-op thread: on shared cores two threads' barriers cost 10-50x at these sizes."""
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(threads)


def test_tiny_cpu_run_has_every_method_and_sampler(tmp_path, capsys, one_thread):
    load_all()
    # the project's methods (other tests register throw-away ones, e.g. one whose loss explodes)
    names = [n for n in METHODS.names() if not METHODS.get(n).__module__.startswith("pathbench.tasks") and
             METHODS.get(n).__module__.split(".")[0] == "pathbench"]
    out = tmp_path / "g"
    assert main(["study", "bench", "gpu", "--device", "cpu", "--tiny", "--budget-s", "600", "--method", ",".join(names),
                 "--out", str(out)]) == 0
    assert "0 failed" in capsys.readouterr().out
    record = json.loads((out / "gpu_check.json").read_text())
    assert set(record["train"]) == set(names)
    for name in names:
        row = record["train"][name]
        if row["status"] == "skipped":  # only a student that needs a trained teacher run
            assert "teacher" in row["reason"]
            continue
        assert row["status"] == "ok", row
        assert row["tokens_per_s"] > 0 and math.isfinite(row["loss"]) and row["peak_memory_gb"] >= 0
        assert row["mfu"] is None  # no bf16 peak is claimed for a CPU
        for sampler in METHODS.get(name).samplers:
            cell = record["sample"][f"{name}/{sampler}"]
            assert cell["status"] == "ok" and cell["ms_per_step"] > 0 and cell["peak_memory_bsv"] >= 0, (name, sampler)
    assert sum(row["status"] == "ok" for row in record["train"].values()) >= 7
    assert record["cuda_baselines"] == {"dfm": {"device": "cpu", "train": "ok", "sample": "ok"},
                                        "sedd": {"device": "cpu", "train": "ok", "sample": "ok"}}
    assert record["scorer"]["status"] == "ok" and record["scorer"]["tokens_per_s"] > 0
    probe = record["memory_1p5b"]
    assert probe["status"] == "ok" and probe["preset"] == "tiny" and probe["no_checkpointing"] > 0
    table = (out / "gpu_check.md").read_text()
    assert "| kl/hybrid | ok |" in table and "## Scorer" in table
    assert main(["study", "bench", "gpu", "--device", "cpu", "--tiny", "--out", str(out)]) == 2  # never over a result
    assert "already holds a gpu check" in capsys.readouterr().err
