"""The whole-program runner: one program (solution + tests) in one sandboxed interpreter.

The program runs under :mod:`pathbench.tasks.sandbox.child.runner_main` (limits, guards, the pass
token written only after it finished without an exception), in its own session, under
bubblewrap when available (:mod:`pathbench.tasks.sandbox.isolation`). The solution and its tests share
that interpreter, so a program that sets out to forge its pass can; scoring untrusted
candidates goes through the judge (:mod:`pathbench.tasks.sandbox.judge`), and this runner serves whole
programs and the problems the judge cannot express.
"""

from __future__ import annotations

import json
import os
import secrets
import signal
import subprocess
import tempfile
import time
from collections.abc import Callable, Sequence
from concurrent.futures import ThreadPoolExecutor
from typing import TypeVar

from pathbench.tasks.sandbox.cleanup import remove_tree
from pathbench.tasks.sandbox.isolation import resolve
from pathbench.tasks.sandbox.limits import ExecResult, SandboxLimits, allocated_cpus
from pathbench.tasks.sandbox.process import child_script, kill_group, spawn, tail

EXIT_FAILED, EXIT_SYNTAX = 1, 2
RUNNER = child_script(("guard", "runner_main"), "runner_main")
Job = TypeVar("Job")


def child_limits(limits: SandboxLimits) -> dict[str, int]:
    """The rlimits a child sets on itself: CPU seconds (just over the wall clock), memory, file size."""
    return {"cpu": int(limits.timeout_s) + 1, "memory": int(limits.memory_bytes), "fsize": int(limits.file_size_bytes)}


def run_program(program: str, limits: SandboxLimits = SandboxLimits()) -> ExecResult:
    """Execute ``program`` once in a fresh sandboxed interpreter; never raises for its faults."""
    isolation = resolve(limits.isolation)
    token = secrets.token_hex(16)
    payload = json.dumps({"token": token, "program": program, **child_limits(limits)})
    start = time.monotonic()
    top = tempfile.mkdtemp(prefix="pathbench-sandbox-")
    try:
        out_path, err_path = os.path.join(top, "stdout"), os.path.join(top, "stderr")
        timed_out = False
        with open(out_path, "wb") as out, open(err_path, "wb") as err:
            try:
                proc = spawn(RUNNER, top, isolation, limits, subprocess.PIPE, out, err)
            except OSError as error:
                return ExecResult("error", f"sandbox could not start: {error}", time.monotonic() - start,
                                  isolation=isolation)
            try:
                proc.communicate(payload.encode("utf-8"), timeout=limits.timeout_s)
            except subprocess.TimeoutExpired:
                timed_out = True
            except OSError:  # the child closed its stdin early (it is judged by its exit and output)
                pass
            finally:
                kill_group(proc)  # strays left by the program, and the program itself on a timeout
        duration = time.monotonic() - start
        code = proc.returncode
        stdout_tail, stderr_tail = tail(out_path), tail(err_path)
    finally:
        remove_tree(top)  # whatever the program left there (guard); never raises
    if timed_out or code == -signal.SIGXCPU:
        status = "timeout"
    elif code == 0 and stdout_tail.rstrip("\n").endswith(token):
        status = "passed"
    elif code == EXIT_SYNTAX or (code is not None and code < 0):
        status = "error"    # does not compile, or killed by a signal (memory, file size, ...)
    else:
        status = "failed"   # raised, exited early, or never proved it finished
    return ExecResult(status, stderr_tail, duration, code, isolation=isolation)


def run_concurrently(run: Callable[[Job, SandboxLimits], ExecResult], jobs: Sequence[Job], limits: SandboxLimits,
                     workers: int | None = None) -> list[ExecResult]:
    """``run`` on every job from a thread pool (threads wait on processes); results in input order.
    The default worker count is the CPUs this job may use (:func:`allocated_cpus`)."""
    if not jobs:
        return []
    resolve(limits.isolation)  # a config error, or the one warning, before any thread starts
    workers = workers or allocated_cpus()
    with ThreadPoolExecutor(max_workers=max(1, min(workers, len(jobs)))) as pool:
        return list(pool.map(lambda job: run(job, limits), jobs))


def run_programs(programs: list[str], limits: SandboxLimits = SandboxLimits(),
                 workers: int | None = None) -> list[ExecResult]:
    """Run many whole programs concurrently; results in input order."""
    return run_concurrently(run_program, programs, limits, workers)
