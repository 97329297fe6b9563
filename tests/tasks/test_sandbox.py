"""The sandbox: positive proof of a pass, timeouts, memory, no deletion outside its directory."""

import logging
import os
import signal
import time

import pytest

import pathbench.tasks.sandbox.isolation as isolation  # the modules themselves: caches cleared, spied on
import pathbench.tasks.sandbox.runner as runner
from pathbench.core.errors import ConfigError
from pathbench.tasks.sandbox import ExecResult, SandboxLimits, allocated_cpus, bwrap_problem, run_program, run_programs

FAST = SandboxLimits(timeout_s=3.0)


def test_pass_and_fail_and_syntax_error():
    assert run_program("assert sum([1, 2]) == 3", FAST).status == "passed"
    failed = run_program("print('noise')\nassert len('ab') == 3", FAST)
    assert failed.status == "failed" and "AssertionError" in failed.stderr
    assert run_program("def f(:\n    pass", FAST).status == "error"


def test_early_exits_never_count_as_a_pass():
    for exit_call in ("import os; os._exit(0)", "import sys; sys.exit(0)", "raise SystemExit(0)", "exit(0)"):
        result = run_program(f"{exit_call}\nassert False, 'tests not reached'", FAST)
        assert result.status == "failed", (exit_call, result)


def test_infinite_loop_times_out_and_later_programs_still_run():
    limits = SandboxLimits(timeout_s=1.5)
    start = time.monotonic()
    results = run_programs(["while True: pass", "import time; time.sleep(60)", "x = 2", "raise ValueError"],
                           limits, workers=4)
    assert time.monotonic() - start < 10
    assert [r.status for r in results] == ["timeout", "timeout", "passed", "failed"]
    assert all(isinstance(r, ExecResult) and r.duration >= 0 for r in results)


def test_subprocesses_are_refused():
    # the program cannot start processes (the process group is killed after every run anyway)
    program = ("import subprocess, sys\n"
               "p = subprocess.Popen([sys.executable, '-c', 'import time; time.sleep(60)'])\n"
               "print(p.pid, flush=True)\n")
    result = run_program(program, FAST)
    assert result.status == "failed"  # subprocess.Popen is disabled inside the sandbox
    assert "disabled" in result.stderr


def test_memory_bomb_is_contained():
    for bomb in ("x = bytearray(10**10)", "x = []\nwhile True:\n    x.append(' ' * 10**6)"):
        result = run_program(bomb, SandboxLimits(timeout_s=5.0, memory_bytes=256 << 20))
        assert result.status in ("failed", "error"), result
    assert run_program("x = sum(range(10))", FAST).passed  # the parent lives on and the sandbox still works


def test_files_outside_the_sandbox_survive(tmp_path):
    victim = tmp_path / "keep.txt"
    victim.write_text("precious")
    attempts = [f"import os; os.remove({str(victim)!r})",
                f"import os; os.unlink({str(victim)!r})",
                f"import pathlib; pathlib.Path({str(victim)!r}).unlink()",
                f"import shutil; shutil.rmtree({str(tmp_path)!r})",
                f"open({str(victim)!r}, 'w').write('overwritten')",
                f"import os; os.rename({str(victim)!r}, 'stolen.txt')",
                f"import os; os.system('rm -f {victim}')"]
    results = run_programs(attempts, FAST)
    assert [r.status for r in results] == ["failed"] * len(attempts)
    assert victim.read_text() == "precious"


def test_writing_inside_the_sandbox_directory_works():
    program = ("with open('scratch.txt', 'w') as fh:\n    fh.write('ok')\n"
               "assert open('scratch.txt').read() == 'ok'\nimport os\nassert os.environ['HOME'] == os.getcwd()")
    assert run_program(program, FAST).status == "passed"


def test_no_network_and_no_proxies():
    for program in ("import socket; socket.socket(socket.AF_INET, socket.SOCK_STREAM)",
                    "import socket; socket.create_connection(('127.0.0.1', 9))",
                    "import urllib.request; urllib.request.urlopen('http://127.0.0.1:9')"):
        assert run_program(program, FAST).status == "failed", program
    assert run_program("import os\nassert not any('proxy' in k.lower() for k in os.environ)", FAST).passed


def test_killing_is_disabled():
    result = run_program(f"import os; os.kill({os.getpid()}, {int(signal.SIGTERM)})", FAST)
    assert result.status == "failed" and os.getpid() > 0


def test_order_is_preserved_over_many_programs():
    programs = [f"assert {i} % 3 != 0" for i in range(30)]
    results = run_programs(programs, FAST)
    assert [r.passed for r in results] == [i % 3 != 0 for i in range(30)]
    assert run_programs([], FAST) == []


# ---------------------------------------------------------------- isolation and workers
def test_the_isolation_used_is_recorded_and_bwrap_is_used_when_it_works():
    result = run_program("x = 1", FAST)
    assert result.isolation == ("bwrap" if bwrap_problem() is None else "guard")
    assert run_program("x = 1", SandboxLimits(timeout_s=3.0, isolation="guard")).isolation == "guard"


def test_without_bwrap_one_warning_and_the_guard_or_an_error(monkeypatch, caplog):
    monkeypatch.setenv("PATH", "/nonexistent")  # bwrap is genuinely not found
    monkeypatch.delenv("SLURM_JOB_ID", raising=False)
    isolation.bwrap_problem.cache_clear()
    isolation._warn_once.cache_clear()
    try:
        assert "not installed" in isolation.bwrap_problem()
        with caplog.at_level(logging.WARNING, logger="pathbench.sandbox"):
            assert [isolation.resolve("auto") for _ in range(3)] == ["guard"] * 3
        assert len([r for r in caplog.records if "WITHOUT KERNEL ISOLATION" in r.getMessage()]) == 1
        with pytest.raises(ConfigError, match="isolation = 'bwrap' but bwrap is not installed"):
            isolation.resolve("bwrap")
        monkeypatch.setenv("SLURM_JOB_ID", "123")
        with pytest.raises(ConfigError, match="no kernel sandbox on this cluster node.*isolation=guard"):
            isolation.resolve("auto")
        assert isolation.resolve("guard") == "guard"
        with pytest.raises(ConfigError, match="isolation = 'chroot' is not one of auto, bwrap, guard"):
            isolation.resolve("chroot")
    finally:
        isolation.bwrap_problem.cache_clear()
        isolation._warn_once.cache_clear()


def test_the_worker_count_follows_the_cpus_this_job_may_use(monkeypatch):
    assert allocated_cpus() == len(os.sched_getaffinity(0))
    seen = []
    real = runner.ThreadPoolExecutor

    def spy(max_workers):
        seen.append(max_workers)
        return real(max_workers=max_workers)

    monkeypatch.setattr(runner, "ThreadPoolExecutor", spy)
    monkeypatch.setattr(runner, "allocated_cpus", lambda: 3)
    run_programs(["x = 1"] * 5, FAST)
    assert seen == [3]


def test_where_bwrap_is_installed_it_works_wherever_the_interpreter_lives():
    """A checkout under /tmp (as CI makes) puts the virtualenv under the sandbox's private /tmp:
    its folders are bound again on top, so the kernel sandbox is not silently lost there."""
    import shutil

    if shutil.which("bwrap") is not None:
        assert bwrap_problem() is None


def test_the_candidates_view_is_its_interpreter_only():
    """No wholesale bind: the bound paths are the interpreter, its standard library and the
    libraries they link; package folders inside the standard library are covered."""
    from pathbench.tasks.sandbox import mounts

    bound, hidden = mounts.interpreter_files()
    assert "/" not in bound and mounts.interpreter() in bound and mounts.stdlib_dir() in bound
    assert all(p == mounts.interpreter() or p == mounts.stdlib_dir() or ".so" in os.path.basename(p) for p in bound)
    assert not any("site-packages" in p or "dist-packages" in p for p in bound)
    assert all(p.startswith(mounts.stdlib_dir() + "/") for p in hidden)
    command = isolation.bwrap_command("/nonexistent/etc", {}, 1 << 20, 1 << 20, None)
    binds = [command[i + 2] for i, arg in enumerate(command) if arg in ("--bind", "--ro-bind")]
    assert "--bind" not in command and set(binds) == {"/etc", *bound}
