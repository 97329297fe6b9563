"""Hostile candidates against the sandbox: every escape family of issue 17 is contained.

Each program tries to harm only what this test owns, so a real escape is harmless and seen:
a folder outside the sandbox (under /var/tmp, visible read-only inside bubblewrap, unlike the
sandbox's private /tmp) holding a victim file and the place of sentinel files, a decoy
process to signal, a localhost listener to reach, and a unique marker in the command line of
every process a program starts. After the runs: the folder holds only the intact victim, the
decoy runs unstopped, nothing connected, no marker process survives, no program passed and
none ran past its time. The problem is ``add(a, b)``; every hostile ``add`` is wrong, so a
pass can only be forged. The threat model (docs/sandbox.md) is what these tests show.
"""

import contextlib
import os
import random
import shutil
import socket
import subprocess
import tempfile
import time
from pathlib import Path

import pytest

from pathbench.tasks.sandbox import JudgeJob, SandboxLimits, bwrap_problem, run_jobs, run_judged, run_program
from tests.tasks.hostile_programs import FAMILIES, FORGERIES, HANGS, HEADER, SETUP, TEST, WRONG

# the guard-only tests (negative controls) run everywhere; these need the kernel sandbox
needs_bwrap = pytest.mark.skipif(bwrap_problem() is not None, reason=f"no kernel sandbox here: {bwrap_problem()}")

LIMITS = SandboxLimits(timeout_s=4.0, isolation="bwrap")

@contextlib.contextmanager
def _world():
    """What a hostile program may want to harm: all of it this test's own, checked after."""
    # /var/tmp: visible (read-only) inside bubblewrap, unlike the sandbox's private /tmp
    folder = "/var/tmp" if os.access("/var/tmp", os.W_OK) else None
    out = Path(tempfile.mkdtemp(prefix="pathbench-hostile-", dir=folder))
    victim = out / "victim.txt"
    victim.write_text("precious")
    decoy = subprocess.Popen(["sleep", "120"])
    listener = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    listener.bind(("127.0.0.1", 0))
    listener.listen(8)
    listener.setblocking(False)
    marker = f"{random.randint(100, 899)}.{random.randint(10**5, 10**6 - 1)}"
    try:
        yield {"out": str(out), "victim": str(victim), "decoy": decoy.pid, "port": listener.getsockname()[1],
               "marker": marker, "listener": listener, "decoy_process": decoy}
    finally:
        decoy.kill()
        decoy.wait()
        listener.close()
        for pid in _marked(marker):
            os.kill(pid, 9)
        shutil.rmtree(out, ignore_errors=True)


@pytest.fixture
def world():
    with _world() as fields:
        yield fields


def _marked(marker: str) -> list[int]:
    pids = []
    for entry in os.listdir("/proc"):
        try:
            if entry.isdigit() and marker.encode() in Path(f"/proc/{entry}/cmdline").read_bytes():
                pids.append(int(entry))
        except OSError:
            pass
    return pids


def _state(pid: int) -> str:
    return Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0]


def _assert_contained(world: dict, results: list, names: list[str], limits: SandboxLimits = LIMITS) -> None:
    time.sleep(1.5)  # a daemon that escaped would write its sentinel after 1 s
    assert sorted(os.listdir(world["out"])) == ["victim.txt"], "wrote outside the work dir"
    assert Path(world["victim"]).read_text() == "precious"
    assert _state(world["decoy"]) in "RSD", "the decoy was stopped or killed"
    with pytest.raises(BlockingIOError):  # nothing connected to the test's listener
        world["listener"].accept()
    assert _marked(world["marker"]) == [], "a process of the program survived the run"
    for name, result in zip(names, results):
        assert result.isolation == "bwrap", name
        assert result.status != "passed", (name, result)
        assert result.duration < limits.timeout_s + 3, (name, result.duration)


def _program(world: dict, body: str, wrong: bool = True) -> str:
    return HEADER.format(**world) + body + (WRONG if wrong else "")


@needs_bwrap
def test_every_escape_family_is_contained_by_the_judge_and_the_program_runner(world):
    names = sorted(FAMILIES)
    candidates = [_program(world, FAMILIES[n]) for n in names]
    jobs = [JudgeJob(c, SETUP, TEST, ("add",)) for c in candidates] + [c + "\n" + TEST for c in candidates]
    results = run_jobs(jobs, LIMITS, workers=4)
    _assert_contained(world, results, names + names)
    parent = results[names.index("parent")]
    visible = parent.stderr.split("VISIBLE", 1)[1].split("]")[0]
    assert max(int(p) for p in visible.strip(" [").split(",")) < 100, parent.stderr  # the harness is not visible
    assert "PPID 1" in parent.stderr or "PPID 0" in parent.stderr


@needs_bwrap
def test_forged_passes_fail_in_the_judge(world):
    names = sorted(FORGERIES)
    jobs = [JudgeJob(_program(world, FORGERIES[n], wrong=False), SETUP, TEST, ("add",)) for n in names]
    results = run_jobs(jobs, LIMITS, workers=4)
    _assert_contained(world, results, names)
    # the same forgeries with a right add() pass: the judge judges the values, not the tricks
    right = FORGERIES["settrace"].replace("return None", "return a + b")
    assert run_judged(JudgeJob(_program(world, right, wrong=False), SETUP, TEST, ("add",)), LIMITS).passed


@needs_bwrap
def test_hangs_end_at_the_wall_clock_and_the_harness_is_never_stopped(world):
    limits = SandboxLimits(timeout_s=2.0, isolation="bwrap")
    names = sorted(HANGS)
    jobs = [JudgeJob(_program(world, HANGS[n], wrong=False), SETUP, TEST, ("add",)) for n in names]
    start = time.monotonic()
    results = run_jobs(jobs + [_program(world, HANGS["loop_at_top"], wrong=False) + TEST], limits, workers=5)
    assert time.monotonic() - start < 8
    assert [r.status for r in results] == ["timeout"] * len(results)
    _assert_contained(world, results, names + ["program loop"], limits)


def test_the_judges_guarantees_hold_under_the_guard_alone(world):
    """Without bubblewrap the tests still never share the candidate's process: forged
    equality, a neutered trace and an early exit still fail."""
    limits = SandboxLimits(timeout_s=4.0, isolation="guard")
    names = ["always_equal", "equal_int", "settrace", "exit_early", "system_exit"]
    results = run_jobs([JudgeJob(_program(world, FORGERIES[n], wrong=False), SETUP, TEST, ("add",)) for n in names],
                       limits, workers=4)
    assert [(r.isolation, r.status) for r in results] == [("guard", "failed")] * len(names)


def _harm(world: dict) -> list[str]:
    """What a program did to the world (the checks of :func:`_assert_contained`, as a list)."""
    harm = []
    if not os.path.isdir(world["out"]) or sorted(os.listdir(world["out"])) != ["victim.txt"]:
        harm.append("wrote or deleted outside")
    if world["decoy_process"].poll() is not None or _state(world["decoy"]) not in "RSD":
        harm.append("stopped or killed the decoy")
    try:
        world["listener"].accept()[0].close()
        harm.append("connected")
    except BlockingIOError:
        pass
    if _marked(world["marker"]):
        harm.append("left a process running")
    return harm


def test_every_family_but_the_parent_one_does_harm_under_the_guard_alone():
    """Negative control: the programs are real escapes (so the containment above means
    something) and the threat model's "not defended under the guard" is true. The "parent"
    family is left out: under the guard alone it would stop this test's own process."""
    names = sorted(set(FAMILIES) - {"parent"})
    with contextlib.ExitStack() as stack:
        worlds = [stack.enter_context(_world()) for _ in names]
        jobs = [JudgeJob(_program(w, FAMILIES[n]), SETUP, TEST, ("add",)) for w, n in zip(worlds, names)]
        results = run_jobs(jobs, SandboxLimits(timeout_s=4.0, isolation="guard"), workers=4)
        time.sleep(1.5)
        harmless = [n for n, w in zip(names, worlds) if not _harm(w)]
    # a harness that is not root: RLIMIT_NPROC = 0 binds under the guard too (docs/sandbox.md)
    assert harmless == ([] if os.geteuid() == 0 else ["daemon", "spawn"])
    assert all(r.isolation == "guard" for r in results)


def test_the_checks_see_an_escape_under_the_guard_alone(world):
    """Negative control of the checks above (and the threat model's "not defended"): under
    the in-process guard alone the posix module deletes the victim and a raw socket connects."""
    program = _program(world, "import posix\n_try(lambda: posix.unlink(VICTIM))\n" + FAMILIES["network"])
    result = run_judged(JudgeJob(program, SETUP, TEST, ("add",)), SandboxLimits(timeout_s=4.0, isolation="guard"))
    assert result.status == "failed" and not Path(world["victim"]).exists()
    Path(world["victim"]).write_text("precious")
    connection, _ = world["listener"].accept()
    connection.settimeout(2)
    assert connection.recv(16) == b"escaped"
    connection.close()


@needs_bwrap
def test_the_whole_program_runner_can_be_forged_which_is_why_the_judge_scores(world):
    """The documented limit of the fallback runner: tests in the candidate's interpreter."""
    forged = ("import sys, os\nframe = sys._getframe()\nwhile 'token' not in frame.f_locals:\n"
              "    frame = frame.f_back\nos.write(1, b'\\n' + frame.f_locals['token'] + b'\\n')\nos._exit(0)\n")
    assert run_program(forged + "assert False\n", LIMITS).status == "passed"
    assert not run_judged(JudgeJob(forged + WRONG, SETUP, TEST, ("add",)), LIMITS).passed
