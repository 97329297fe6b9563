"""The tiny sweep on a real single-node SLURM cluster (munged, slurmctld, slurmd started by
``scripts/slurm_single_node.sh``): a requeued scorer unit, a cancelled one, a re-run, and every
result equal to the local executor's. Skipped, saying why, only where the Debian packages or the
daemons are unavailable (``.ci/run`` installs slurm-wlm and munge)."""

import json
import os
import socket
import subprocess
import sys
import time
from pathlib import Path

import pytest
import yaml

ROOT = Path(__file__).parents[3]
SCRIPT = ROOT / "scripts" / "slurm_single_node.sh"
STEPS = 300
AR_STEPS = 900  # the scorer unit trains longest: time to requeue and cancel it mid-training


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("", 0))
        return s.getsockname()[1]


@pytest.fixture(scope="module")
def cluster(tmp_path_factory):
    state = tmp_path_factory.mktemp("slurm")
    env = {**os.environ, "SLURMCTLD_PORT": str(free_port()), "SLURMD_PORT": str(free_port())}
    done = subprocess.run(["bash", str(SCRIPT), "start", str(state)], capture_output=True, text=True, env=env,
                          timeout=120)
    if done.returncode == 3:
        pytest.skip(done.stderr.strip())  # packages or root missing: said once, here
    assert done.returncode == 0, done.stderr + done.stdout
    conf = str(state / "slurm.conf")
    # a 2 s poll and a 5 s grace for a vanished job keep the test short (defaults: 10 s and 30 s)
    yield {**os.environ, "SLURM_CONF": conf, "PATHBENCH_SLURM_POLL_S": "2", "PATHBENCH_SLURM_VANISH_S": "5"}
    subprocess.run(["bash", str(SCRIPT), "stop", str(state)], timeout=60)


def experiment(tmp_path: Path, kind: str) -> Path:
    spec = {"name": "slurm-tiny", "preset": "tiny",
            "data": {"corpus": "oracle:V=16,H=2,k=4,succ=2,n=600", "tokenizer": "oracle", "seq_len": 8,
                     "cache_dir": str(tmp_path.parent / "cache")},
            "train": {"steps": STEPS, "batch_size": 8, "eval_every": 100, "ckpt_every": 25, "progress": False},
            "methods": [{"name": "ar", "train": {"steps": AR_STEPS}}, "kl"],
            "samplers": [{"name": "sampling", "nfe": 2, "top_k": [None]}, {"name": "ancestral", "top_k": [None]}],
            "seeds": [0], "tasks": [{"name": "unconditional", "n": 4, "scorers": ["oracle", "self:@ar"]}],
            "executor": {"kind": kind, "timeout_min": 10, "threads": 1, "parallel": 2,
                         "slurm": {"partition": "debug", "cpus_per_task": 1}}}
    path = tmp_path / f"{kind}.yaml"
    path.write_text(yaml.safe_dump(spec))
    return path


def sweep(path: Path, out: Path, env: dict) -> subprocess.Popen:
    return subprocess.Popen([sys.executable, "-m", "pathbench.cli", "sweep", str(path), "--out", str(out)],
                            stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True, env=env)


def results(out: Path) -> dict:
    """Every run's numbers (metrics and reference row), by run id."""
    found = {}
    for path in (out / "runs").glob("*/metrics.json"):
        m = json.loads(path.read_text())
        found[path.parent.name] = {"metrics": m["metrics"], "reference": m["reference"], "status": m["status"]}
    return found


def ar_job_at(out: Path, env: dict, step: int, timeout: float = 120) -> str:
    """The SLURM id of the running ar unit's job once its checkpoint has passed ``step``."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        for unit in (out / "train").glob("*"):
            meta, ckpt = unit / "meta.json", unit / "checkpoint.json"
            if meta.is_file() and json.loads(meta.read_text())["method"] == "ar" and ckpt.is_file() \
                    and json.loads(ckpt.read_text())["step"] >= step:
                jobs = subprocess.run(["squeue", "-h", "-o", "%i %T"], capture_output=True, text=True, env=env)
                running = [line.split()[0] for line in jobs.stdout.splitlines() if line.endswith("RUNNING")]
                if len(running) == 1:  # the kl unit waits for ar: only ar runs
                    return running[0]
        time.sleep(0.5)
    raise AssertionError("the ar unit never reached its checkpoint on the cluster")


def release(job: str, env: dict, timeout: float = 60) -> None:
    """Start a requeued job now: SLURM holds a requeued job back for its requeue delay (minutes)."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        state = subprocess.run(["squeue", "-h", "-j", job, "-o", "%T"], capture_output=True, text=True, env=env)
        if state.stdout.strip() == "PENDING":
            subprocess.run(["scontrol", "update", f"JobId={job}", "StartTime=now"], env=env, capture_output=True)
            return
        if state.stdout.strip() == "RUNNING" and time.monotonic() > deadline - timeout + 5:
            return  # already started again
        time.sleep(0.5)


@pytest.fixture(scope="module")
def local(tmp_path_factory):
    root = tmp_path_factory.mktemp("local")
    out = root / "out"
    proc = sweep(experiment(root, "local"), out, {**os.environ})
    assert proc.wait(timeout=600) == 0, proc.stdout.read()
    return results(out)


def test_a_requeued_scorer_unit_resumes_and_every_result_equals_the_local_one(cluster, local, tmp_path):
    out = tmp_path / "out"
    proc = sweep(experiment(tmp_path, "slurm"), out, cluster)
    job = ar_job_at(out, cluster, 50)
    subprocess.run(["scontrol", "requeue", job], check=True, env=cluster)  # the scorer unit preempted
    release(job, cluster)
    log = proc.communicate(timeout=600)[0]
    assert proc.returncode == 0, log
    got = results(out)
    assert len(got) == len(local) == 4 and got == local  # bit for bit: metrics and reference rows
    (ar_log,) = [p for p in (out / "train").glob("*/train.log") if json.loads((p.parent / "meta.json").read_text())
                 ["method"] == "ar"]
    assert "resumed from" in ar_log.read_text()  # requeued mid-training, it continued from its checkpoint
    # the kl unit's runs were scored by the complete ar model, whose step is in the protocol
    kl_runs = [json.loads(p.read_text()) for p in (out / "runs").glob("*/metrics.json")]
    assert {m["protocol"].get("checkpoint_step") for m in kl_runs if m["scorer"] == "self:@ar"} == {AR_STEPS}


def test_a_cancelled_unit_fails_fast_its_users_wait_and_a_rerun_finishes(cluster, local, tmp_path):
    out = tmp_path / "out"
    path = experiment(tmp_path, "slurm")
    proc = sweep(path, out, cluster)
    job = ar_job_at(out, cluster, 25)
    subprocess.run(["scancel", job], check=True, env=cluster)
    log = proc.communicate(timeout=300)[0]
    assert proc.returncode == 2, log  # reported, not waited for for ever
    assert "left the SLURM queue without a result" in log and "did not finish training" in log
    assert results(out) == {}  # the ar unit died before evaluating, the kl unit never ran: nothing half-scored
    again = sweep(path, out, cluster)
    log = again.communicate(timeout=600)[0]
    assert again.returncode == 0, log
    assert results(out) == local
