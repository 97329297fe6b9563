"""Kernel isolation with bubblewrap, detected once; the guard fallback and when it is allowed.

Under ``bwrap`` a child sees the whole filesystem read-only, except its own work directory
(bound read-write) and a private tmpfs ``/tmp``; it has a fresh ``/dev`` and ``/proc``, its own
network namespace (only a loopback with nothing listening: no network), PID namespace
(every process it starts is killed when the run ends; the harness and the judge are not
visible), IPC and UTS namespaces, a new session (no terminal to inject into), no
capabilities, uid/gid 65534 inside a user namespace (not root even there), and a clean
environment. ``--die-with-parent`` ends it if the harness dies.

Availability (``bwrap`` on PATH and a trial run of the interpreter under exactly these
options succeeds) is checked once per process. When it is not available, ``auto`` falls back
to the in-process guard with a single warning, except on a cluster ($SLURM_JOB_ID set),
where untrusted code meets shared nodes and the fallback is an error unless asked for
(``isolation=guard``).
"""

from __future__ import annotations

import functools
import logging
import os
import shutil
import subprocess
import sys
import tempfile

from harness.core.errors import ConfigError
from tasks.sandbox.limits import ISOLATIONS

log = logging.getLogger("pathbench.sandbox")
UNPRIVILEGED = "65534"  # nobody/nogroup


def clean_env(home: str) -> dict[str, str]:
    """The only environment a child gets (no proxies, no PYTHON*, one thread per library)."""
    return {"PATH": "/usr/local/bin:/usr/bin:/bin", "HOME": home, "TMPDIR": home, "LANG": "C.UTF-8",
            "LC_ALL": "C.UTF-8", "OMP_NUM_THREADS": "1", "MKL_NUM_THREADS": "1"}


def hidden_interpreter_roots() -> list[str]:
    """The interpreter's folders that the private ``/tmp`` would hide (a virtualenv under /tmp,
    as a checkout there makes): bound read-only again on top of it, or the child has no python."""
    roots = sorted({os.path.abspath(r) for r in (sys.prefix, sys.exec_prefix, sys.base_prefix,
                                                 os.path.dirname(sys.executable))})
    hidden = [r for r in roots if os.path.isdir(r) and (r + "/").startswith("/tmp/")]
    return [r for r in hidden if not any(r.startswith(other + "/") for other in hidden)]  # outermost only


def bwrap_command(work: str, env: dict[str, str]) -> list[str]:
    """The bubblewrap prefix for a child whose writable work directory is ``work``."""
    again = [arg for root in hidden_interpreter_roots() for arg in ("--ro-bind", root, root)]
    command = [shutil.which("bwrap") or "bwrap", "--ro-bind", "/", "/", "--dev", "/dev", "--proc", "/proc",
               "--tmpfs", "/tmp", *again, "--bind", work, work, "--chdir", work,
               "--unshare-user", "--uid", UNPRIVILEGED, "--gid", UNPRIVILEGED, "--unshare-pid", "--unshare-net",
               "--unshare-ipc", "--unshare-uts", "--hostname", "sandbox", "--die-with-parent", "--new-session",
               "--cap-drop", "ALL", "--clearenv"]
    for key, value in env.items():
        command += ["--setenv", key, value]
    return command + ["--"]


@functools.lru_cache(maxsize=1)
def bwrap_problem() -> str | None:
    """Why bubblewrap cannot be used here (None when it can): checked once per process."""
    if shutil.which("bwrap") is None:
        return "bwrap is not installed (apt-get install bubblewrap)"
    probe = "import os; assert os.getuid() == 65534 and os.getpid() < 10 and os.getppid() < 10"
    try:
        with tempfile.TemporaryDirectory(prefix="pathbench-sandbox-probe-") as work:
            done = subprocess.run(bwrap_command(work, clean_env(work)) + [sys.executable, "-I", "-c", probe],
                                  capture_output=True, timeout=30, stdin=subprocess.DEVNULL)
    except (OSError, subprocess.TimeoutExpired) as err:
        return f"bwrap does not start: {err}"
    if done.returncode != 0:
        return f"bwrap's trial run failed (exit {done.returncode}): {done.stderr.decode(errors='replace')[-300:]}"
    return None


@functools.lru_cache(maxsize=1)
def _warn_once(reason: str) -> None:
    log.warning("SANDBOX WITHOUT KERNEL ISOLATION: %s; untrusted code runs under the in-process guard only, "
                "which code that sets out to escape can defeat (install bubblewrap, or pass isolation=guard "
                "to choose this)", reason)


def resolve(requested: str) -> str:
    """The isolation a run uses, "bwrap" or "guard", for the requested one of :data:`ISOLATIONS`."""
    if requested not in ISOLATIONS:
        raise ConfigError(f"isolation = {requested!r} is not one of {', '.join(ISOLATIONS)}")
    if requested == "guard":
        return "guard"
    problem = bwrap_problem()
    if problem is None:
        return "bwrap"
    if requested == "bwrap":
        raise ConfigError(f"isolation = 'bwrap' but {problem}")
    if os.environ.get("SLURM_JOB_ID"):
        raise ConfigError(f"no kernel sandbox on this cluster node: {problem}; install bubblewrap, "
                          "or pass isolation=guard to run untrusted code under the in-process guard only")
    _warn_once(problem)
    return "guard"
