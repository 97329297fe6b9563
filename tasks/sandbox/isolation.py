"""Kernel isolation with bubblewrap, detected once; the guard fallback and when it is allowed.

Under ``bwrap`` a child sees only its interpreter (:mod:`pathbench.tasks.sandbox.mounts`: the binary,
the standard library without any package folder, the libraries they link, a private /etc)
and its own size-limited tmpfs work dir, ``/tmp`` and ``/dev/shm``; a fresh ``/dev`` and
``/proc``; its own network namespace (only a loopback with nothing listening; the host's
abstract sockets are per namespace), PID namespace (every process it starts dies with the
run; the harness and the judge are not visible), IPC and UTS namespaces, a new session, no
capabilities, the seccomp filter of :mod:`pathbench.tasks.sandbox.seccomp`, a clean environment, and
``--die-with-parent``.

It runs as an unprivileged *host* uid, so that RLIMIT_NPROC = 0 (no new process or thread)
binds: when the harness is root, bubblewrap runs without a user namespace and the child's
first lines (:data:`DROP`) give up root for uid/gid 65534 before anything else runs (every
capability goes with it; bubblewrap set no_new_privs); otherwise bubblewrap maps the
harness's own uid inside a user namespace where no further one may be made.

Availability (``bwrap`` on PATH and a trial run of the interpreter under exactly these
options succeeds) is checked once per process. When it is not available, ``auto`` falls back
to the in-process guard with a single warning, except on a cluster ($SLURM_JOB_ID set),
where untrusted code meets shared nodes and the fallback is an error unless asked for
(``isolation=guard``). :func:`absent_defences` lists what the isolation in use lacks; the
code tasks store it in every metrics.json.
"""

from __future__ import annotations

import functools
import logging
import os
import shutil
import subprocess
import tempfile

from pathbench.core.errors import ConfigError
from pathbench.tasks.sandbox.cleanup import remove_tree
from pathbench.tasks.sandbox.limits import ISOLATIONS
from pathbench.tasks.sandbox.mounts import NOBODY, WORK, interpreter, tmpfs_args, view_args, write_etc
from pathbench.tasks.sandbox.seccomp import filter_fd, program

log = logging.getLogger("pathbench.sandbox")
#: the first lines of a child's script under bubblewrap when the harness is root: give up root
#: for the unprivileged host uid (capabilities go with it) or die
DROP = (f"import os as _os\nif _os.getuid() == 0:\n    _os.setgroups([])\n    _os.setresgid({NOBODY}, {NOBODY}, {NOBODY})\n"
        f"    _os.setresuid({NOBODY}, {NOBODY}, {NOBODY})\nassert _os.getuid() != 0\ndel _os\n")
#: what the in-process guard alone does not defend (README / docs/sandbox.md "threat model")
GUARD_ABSENT = ("kernel isolation (bubblewrap)",
                "filesystem view: the candidate can read every file the harness's user can read",
                "writes outside the work dir by code that bypasses the patched os/open",
                "network namespace: sockets and host Unix sockets reachable by code that bypasses the guard",
                "PID namespace: processes the candidate starts outside its process group may survive",
                "process limit when the harness runs as root (RLIMIT_NPROC does not bind root)",
                "size-limited /tmp, /dev/shm and work dir (writes go to the host disk up to RLIMIT_FSIZE per file)",
                "seccomp filter (memfd, System V shared memory, user namespaces)")


def clean_env(home: str) -> dict[str, str]:
    """The only environment a child gets (no proxies, no PYTHON*, one thread per library)."""
    return {"PATH": "/usr/local/bin:/usr/bin:/bin", "HOME": home, "TMPDIR": home, "LANG": "C.UTF-8",
            "LC_ALL": "C.UTF-8", "OMP_NUM_THREADS": "1", "MKL_NUM_THREADS": "1"}


def as_root() -> bool:
    """Whether the harness runs as root (bubblewrap then drops to :data:`NOBODY` itself)."""
    return os.geteuid() == 0


def bwrap_command(etc: str, env: dict[str, str], work_bytes: int, tmp_bytes: int,
                  seccomp_fd: int | None) -> list[str]:
    """The bubblewrap prefix of a child: ``etc`` its private /etc (:func:`write_etc`), ``env``
    its whole environment, the sizes of its work dir and of each of /tmp and /dev/shm."""
    command = [shutil.which("bwrap") or "bwrap", "--dev", "/dev", "--proc", "/proc",
               *tmpfs_args(work_bytes, tmp_bytes), *view_args(etc), "--chdir", WORK]
    if as_root():  # no user namespace: the child drops to an unprivileged host uid (DROP)
        command += ["--cap-drop", "ALL", "--cap-add", "CAP_SETUID", "--cap-add", "CAP_SETGID"]
    else:
        command += ["--unshare-user", "--uid", str(NOBODY), "--gid", str(NOBODY), "--disable-userns",
                    "--cap-drop", "ALL"]
    command += ["--unshare-pid", "--unshare-net", "--unshare-ipc", "--unshare-uts", "--hostname", "sandbox",
                "--die-with-parent", "--new-session", "--clearenv"]
    if seccomp_fd is not None:
        command += ["--seccomp", str(seccomp_fd)]
    for key, value in env.items():
        command += ["--setenv", key, value]
    return command + ["--"]


def bwrap_python(script: str, site: bool) -> list[str]:
    """The interpreter command of a child under bubblewrap (the base interpreter, root dropped)."""
    return [interpreter(), "-I", *([] if site else ["-S"]), "-c", (DROP if as_root() else "") + script]


PROBE = ("import os, sys\nassert os.getuid() == 65534 and os.getgid() == 65534 and os.getpid() < 10\n"
         "assert os.getcwd() == '/work' and not os.path.exists('/run') and not os.path.exists('/home')\n"
         "assert not [p for p in sys.path if 'site-packages' in p and os.listdir(p)]\n"
         "open('/work/probe', 'w').write('x')\n")


@functools.lru_cache(maxsize=1)
def bwrap_problem() -> str | None:
    """Why bubblewrap cannot be used here (None when it can): checked once per process."""
    if shutil.which("bwrap") is None:
        return "bwrap is not installed (apt-get install bubblewrap)"
    top = tempfile.mkdtemp(prefix="pathbench-sandbox-probe-")
    seccomp = None
    try:
        seccomp = filter_fd()
        command = bwrap_command(write_etc(top), clean_env(WORK), 1 << 20, 1 << 20, seccomp)
        done = subprocess.run(command + bwrap_python(PROBE, site=False), capture_output=True, timeout=30,
                              stdin=subprocess.DEVNULL, cwd=top, pass_fds=() if seccomp is None else (seccomp,))
    except (OSError, subprocess.TimeoutExpired) as err:
        return f"bwrap does not start: {err}"
    finally:
        if seccomp is not None:
            os.close(seccomp)
        remove_tree(top)
    if done.returncode != 0:
        return f"bwrap's trial run failed (exit {done.returncode}): {done.stderr.decode(errors='replace')[-300:]}"
    return None


def absent_defences(isolation: str) -> list[str]:
    """The defences the isolation in use lacks on this machine (empty: all of them hold)."""
    if isolation != "bwrap":  # as another user than root, RLIMIT_NPROC = 0 binds under the guard too
        return [d for d in GUARD_ABSENT if as_root() or not d.startswith("process limit")]
    return [] if program() is not None else ["seccomp filter (no table for this architecture)"]


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
