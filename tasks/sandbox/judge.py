"""Tests judged outside the candidate's process: the trusted judge and the sandboxed worker.

A :class:`JudgeJob` is a candidate program, the dataset's own code (prompt + reference
solution: its helpers run in the judge), the test code and the entry points the tests call.
:func:`run_judged` starts two children joined by two pipes (JSON lines, plain literals only,
:mod:`pathbench.tasks.sandbox.child.codec`):

* the **candidate's worker** (:mod:`pathbench.tasks.sandbox.child.worker_main`), sandboxed (bubblewrap
  when available, limits, guards), which holds only the candidate's program;
* the **judge** (:mod:`pathbench.tasks.sandbox.child.judge_main`), a trusted ``python -I`` outside the
  sandbox with its own limits, which holds the tests, the token and the verdict.

The harness waits on the judge with the run's wall clock and kills both process groups
after it, whatever happened; under bubblewrap the worker cannot see, signal or read either
of them. Statuses are those of the whole-program runner; a pass needs the judge's exit 0
and its verdict line carrying the run's token.
"""

from __future__ import annotations

import ast
import json
import os
import secrets
import subprocess
import tempfile
import time
from dataclasses import dataclass

from pathbench.tasks.sandbox.cleanup import remove_tree
from pathbench.tasks.sandbox.isolation import clean_env, resolve
from pathbench.tasks.sandbox.limits import STATUSES, ExecResult, SandboxLimits
from pathbench.tasks.sandbox.process import SITE_PATHS, TAIL, child_script, kill_group, python, spawn, tail
from pathbench.tasks.sandbox.runner import child_limits, run_concurrently, run_program

WORKER = child_script(("codec", "guard", "worker_main"), "worker_main")
JUDGE = child_script(("codec", "guard", "judge_main"), "judge_main")


@dataclass(frozen=True)
class JudgeJob:
    program: str               # the candidate's completed program (untrusted)
    setup: str                 # the dataset's prompt + reference solution (trusted; helpers run in the judge)
    test: str                  # the test code (trusted), run in the judge
    entry: tuple[str, ...]     # names the tests call that the judge forwards to the candidate


def entry_points(source: str, test: str) -> tuple[str, ...]:
    """The functions ``source`` defines at its top level that ``test`` reads, in name order:
    what the judge forwards to the candidate when a problem does not name its entry points."""
    try:
        defined = {n.name for n in ast.parse(source).body if isinstance(n, (ast.FunctionDef, ast.AsyncFunctionDef))}
        read = {n.id for n in ast.walk(ast.parse(test)) if isinstance(n, ast.Name) and isinstance(n.ctx, ast.Load)}
    except (SyntaxError, ValueError, RecursionError):
        return ()
    return tuple(sorted(defined & read))


def _verdict(stdout: str, token: str) -> tuple[str, str]:
    lines = [line for line in stdout.splitlines() if line.strip()]
    try:
        verdict = json.loads(lines[-1]) if lines else {}
    except ValueError:
        verdict = {}
    status = str(verdict.get("verdict", "error")) if isinstance(verdict, dict) else "error"
    if status == "passed" and verdict.get("token") != token:
        status = "failed"
    return status, str(verdict.get("detail", "")) if isinstance(verdict, dict) else ""


def _start_judge(folder: str, channel: tuple[int, int]) -> subprocess.Popen:
    """The trusted judge: outside the sandbox (it runs only the dataset's code on plain data),
    in its own session, holding the channel's ends; payload on stdin, verdict on stdout."""
    return subprocess.Popen(python(JUDGE, site=False), stdin=subprocess.PIPE, stdout=subprocess.PIPE,
                            stderr=subprocess.PIPE, cwd=folder, env=clean_env(folder), pass_fds=channel,
                            start_new_session=True)


def run_judged(job: JudgeJob, limits: SandboxLimits = SandboxLimits()) -> ExecResult:
    """Judge one candidate; never raises for its faults."""
    isolation = resolve(limits.isolation)
    token = secrets.token_hex(16)
    start = time.monotonic()
    top = tempfile.mkdtemp(prefix="pathbench-sandbox-")
    try:
        judge_dir = os.path.join(top, "judge")
        os.mkdir(judge_dir)
        to_judge, to_worker = os.pipe(), os.pipe()
        procs: list[subprocess.Popen] = []
        timed_out, out, err = False, b"", b""
        try:
            # the verdict comes back through a pipe, not a file a candidate could find and append to
            with open(os.path.join(top, "worker.err"), "wb") as werr:
                procs.append(spawn(WORKER, top, isolation, limits, to_worker[0], to_judge[1], werr, site=False))
                payload = {"token": token, "program": job.program, "setup": job.setup, "test": job.test,
                           "entry": list(job.entry), "guard": True, "fd_in": to_judge[0], "fd_out": to_worker[1],
                           "call_timeout": limits.call_timeout, "max_message": limits.message_bytes,
                           "path": SITE_PATHS, "worker_path": SITE_PATHS if isolation != "bwrap" else [],
                           **child_limits(limits)}
                procs.append(_start_judge(judge_dir, (to_judge[0], to_worker[1])))
                for fd in (*to_judge, *to_worker):  # the children hold their ends; EOF reaches them
                    os.close(fd)
                to_judge = to_worker = ()
                try:
                    out, err = procs[1].communicate(json.dumps(payload).encode("utf-8"), timeout=limits.timeout_s)
                except subprocess.TimeoutExpired:
                    timed_out, out, err = True, b"", b""
        except OSError as error:
            return ExecResult("error", f"sandbox could not start: {error}", time.monotonic() - start,
                              isolation=isolation, runner="judge")
        finally:
            for fd in (*to_judge, *to_worker):
                os.close(fd)
            for proc in procs:
                kill_group(proc)
        duration = time.monotonic() - start
        status, detail = ("timeout", "") if timed_out else _verdict(out.decode(errors="replace"), token)
        worker_err, judge_err = tail(os.path.join(top, "worker.err")), err[-TAIL:].decode(errors="replace")
    finally:
        remove_tree(top)  # whatever the candidate left there (guard); never raises
    unsupported = status == "unsupported"
    if status not in STATUSES:
        status = "error" if unsupported or not detail else "failed"
    if status == "error" and not detail and not unsupported:
        detail = "the judge gave no verdict: " + judge_err
    return ExecResult(status, (detail + "\n" + worker_err)[-2000:], duration, procs[-1].returncode if procs else None,
                      isolation=isolation, runner="judge", unsupported=unsupported)


def run_job(job: JudgeJob | str, limits: SandboxLimits = SandboxLimits()) -> ExecResult:
    """A :class:`JudgeJob` through the judge, a string as a whole program (:func:`run_program`)."""
    return run_judged(job, limits) if isinstance(job, JudgeJob) else run_program(job, limits)


def run_jobs(jobs: list[JudgeJob | str], limits: SandboxLimits = SandboxLimits(),
             workers: int | None = None) -> list[ExecResult]:
    """Judged candidates and whole programs concurrently (:func:`run_job`); results in input order."""
    return run_concurrently(run_job, jobs, limits, workers)


def run_judged_many(jobs: list[JudgeJob], limits: SandboxLimits = SandboxLimits(),
                    workers: int | None = None) -> list[ExecResult]:
    """Judge many candidates concurrently; results in input order."""
    return run_concurrently(run_judged, jobs, limits, workers)
