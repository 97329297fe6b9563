"""Starting and ending sandboxed children: their scripts, the isolation prefix, the kill.

A child is ``python -I -c SCRIPT`` where SCRIPT joins the sources of :mod:`pathbench.tasks.sandbox.child`
modules (they are self-contained) and a call of their entry function. Every child runs in
its own session with a work directory as cwd and HOME and :func:`clean_env`: under bubblewrap
(:func:`pathbench.tasks.sandbox.isolation.bwrap_command`) a size-limited tmpfs, ``/work``, that never
touches the host disk; under the guard ``<run folder>/work``. The end of a run kills the
child's process group (SIGKILL), which under bubblewrap also ends its PID namespace and so
every process the program started.
"""

from __future__ import annotations

import functools
import os
import signal
import subprocess
import sys
from pathlib import Path
from typing import IO, Any

from pathbench.tasks.sandbox.isolation import bwrap_command, bwrap_python, clean_env
from pathbench.tasks.sandbox.limits import SandboxLimits
from pathbench.tasks.sandbox.mounts import WORK, write_etc
from pathbench.tasks.sandbox.seccomp import filter_fd

CHILD = Path(__file__).resolve().parent / "child"
#: the harness interpreter's package folders (so a candidate can import what it could before)
SITE_PATHS = [p for p in sys.path if p.rstrip("/").endswith(("site-packages", "dist-packages"))]
TAIL = 2000


@functools.lru_cache(maxsize=None)
def child_script(modules: tuple[str, ...], entry: str) -> str:
    """The ``-c`` script of the named child modules' sources followed by ``entry()``."""
    return "\n\n".join((CHILD / f"{m}.py").read_text(encoding="utf-8") for m in modules) + f"\n\n{entry}()\n"


def python(script: str, site: bool = True) -> list[str]:
    """``python -I -c script``; without ``site`` also ``-S``: no ``site`` import (its ``.pth``
    hooks cost most of a start), the child appends :data:`SITE_PATHS` to ``sys.path`` itself."""
    return [sys.executable, "-I", *([] if site else ["-S"]), "-c", script]


def spawn(script: str, top: str, isolation: str, limits: SandboxLimits, stdin: Any, stdout: IO | int,
          stderr: IO | int, site: bool = True, pass_fds: tuple[int, ...] = ()) -> subprocess.Popen:
    """Start an untrusted child of the run whose host folder is ``top`` under ``isolation``
    ("bwrap" or "guard"); under the guard its work dir is ``top/work`` (made here)."""
    if isolation != "bwrap":
        work = os.path.join(top, "work")
        os.makedirs(work, exist_ok=True)
        env = clean_env(work)
        return subprocess.Popen(python(script, site), stdin=stdin, stdout=stdout, stderr=stderr, cwd=work, env=env,
                                start_new_session=True, close_fds=True, pass_fds=pass_fds)
    etc = os.path.join(top, "etc")
    if not os.path.isdir(etc):
        write_etc(top)
    seccomp = filter_fd()
    try:
        command = bwrap_command(etc, clean_env(WORK), limits.disk_bytes, limits.tmp_bytes, seccomp)
        return subprocess.Popen(command + bwrap_python(script, site), stdin=stdin, stdout=stdout, stderr=stderr,
                                cwd=top, env={"PATH": "/usr/bin:/bin"}, start_new_session=True, close_fds=True,
                                pass_fds=(*pass_fds, *(() if seccomp is None else (seccomp,))))
    finally:
        if seccomp is not None:
            os.close(seccomp)


def kill_group(proc: subprocess.Popen) -> None:
    """SIGKILL the child's process group (strays included) and reap the child."""
    try:
        os.killpg(proc.pid, signal.SIGKILL)
    except (ProcessLookupError, PermissionError):
        pass
    proc.wait()


def tail(path: str | Path) -> str:
    """The last :data:`TAIL` characters of a file (a child's stderr)."""
    with open(path, "rb") as fh:
        fh.seek(0, os.SEEK_END)
        fh.seek(max(0, fh.tell() - TAIL))
        return fh.read().decode("utf-8", errors="replace")
