"""SLURM requests that fit the partition (a fake sinfo on PATH stands in for the cluster)."""

import os

import pytest

from pathbench.core.errors import ConfigError
from pathbench.sweep.dispatch import make_executor
from pathbench.sweep.slurm import PartitionLimits, parse_sinfo, partition_limits, slurm_parameters


def test_sinfo_lines_give_the_largest_node():
    text = "16|(null)\n64|gpu:h100:8(S:0-1)\n32+|gpu:4,tmpfs:100\n"
    assert parse_sinfo(text) == PartitionLimits(cpus=64, gpus=8)
    assert parse_sinfo("8|(null)\n") == PartitionLimits(8, 0)
    assert parse_sinfo("") is None


def test_nothing_is_asked_for_that_the_file_does_not_ask_for():
    params = slurm_parameters({}, 60, None, PartitionLimits(cpus=4, gpus=0))
    assert "gpus_per_node" not in params and params["tasks_per_node"] == 1
    assert params["cpus_per_task"] == 4  # the default 8, capped at the node's 4 CPUs
    assert slurm_parameters({}, 60, 2, None)["cpus_per_task"] == 2  # the executor's threads
    assert slurm_parameters({}, 60, None, None)["cpus_per_task"] == 8
    gpu = slurm_parameters({"gpus_per_task": 4, "partition": "gpu"}, 60, None, PartitionLimits(64, 8))
    assert gpu["gpus_per_node"] == 4 and gpu["tasks_per_node"] == 4 and gpu["slurm_partition"] == "gpu"


def test_requests_no_node_can_meet_are_one_line_errors():
    with pytest.raises(ConfigError, match=r"gpus_per_task = 1 cannot be met on partition 'cpu' \(no GPU\)"):
        slurm_parameters({"gpus_per_task": 1, "partition": "cpu"}, 60, None, PartitionLimits(16, 0))
    with pytest.raises(ConfigError, match=r"cpus_per_task = 32 exceeds every node of the default partition "
                                          r"\(16 CPUs per node\)"):
        slurm_parameters({"cpus_per_task": 32}, 60, None, PartitionLimits(16, 0))


def fake_cluster(tmp_path, monkeypatch, sinfo_out: str):
    bin_dir = tmp_path / "bin"
    bin_dir.mkdir(exist_ok=True)
    for name, body in (("srun", "exit 0"), ("sinfo", f"printf '{sinfo_out}'")):
        (bin_dir / name).write_text(f"#!/bin/sh\n{body}\n")
        (bin_dir / name).chmod(0o755)
    monkeypatch.setenv("PATH", f"{bin_dir}{os.pathsep}{os.environ['PATH']}")


def test_the_submission_script_fits_a_cpu_partition(tmp_path, monkeypatch):
    fake_cluster(tmp_path, monkeypatch, "2|(null)\\n")
    assert partition_limits("debug") == PartitionLimits(2, 0)
    executor = make_executor("slurm", tmp_path / "submitit", {"timeout_min": 30, "slurm": {"partition": "debug"}})
    script = executor._executor._make_submission_file_text("python -m submitit.core._submit", "uid")
    assert "#SBATCH --cpus-per-task=2" in script and "gpus" not in script
    with pytest.raises(ConfigError, match="cannot be met on partition 'debug'"):
        make_executor("slurm", tmp_path / "s2", {"slurm": {"partition": "debug", "gpus_per_task": 8}})


def test_an_empty_partition_is_named(tmp_path, monkeypatch):
    fake_cluster(tmp_path, monkeypatch, "")
    with pytest.raises(ConfigError, match="SLURM partition 'gpu' has no node"):
        partition_limits("gpu")
