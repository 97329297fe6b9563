"""A seccomp filter for the candidate: the kernel calls that would take memory past its bounds.

RLIMIT_AS bounds what one process maps and the sized tmpfs bound what it writes to files, but
some memory is neither: a ``memfd`` (``memfd_create``) or System V segment (``shmget``) grows
without a mapping, and a new user namespace (``unshare``/``clone`` with ``CLONE_NEWUSER``)
could mount a tmpfs of any size. Those calls fail with EPERM; ``clone3`` fails with ENOSYS
(its flags sit in memory a filter cannot read; the C library then uses ``clone``). A call made
through another ABI (x32, i386) ends the process. bubblewrap loads the filter (``--seccomp
FD``) just before it starts the interpreter. On an architecture with no table here there is
no filter, and :func:`program` says so (the run records it as an absent defence).
"""

from __future__ import annotations

import os
import platform
import struct

CLONE_NEWUSER = 0x10000000
EPERM, ENOSYS = 1, 38
X32_BIT = 0x40000000
# (audit arch, syscall numbers): clone, unshare, clone3, memfd_create, shmget
TABLES = {"x86_64": (0xC000003E, {"clone": 56, "unshare": 272, "clone3": 435, "memfd_create": 319, "shmget": 29}),
          "aarch64": (0xC00000B7, {"clone": 220, "unshare": 97, "clone3": 435, "memfd_create": 279, "shmget": 194})}
LD_W_ABS, JEQ, JGE, JSET, RET = 0x20, 0x15, 0x35, 0x45, 0x06
ALLOW, KILL = 0x7FFF0000, 0x80000000
ARCH_AT, NR_AT, ARG0_AT = 4, 0, 16  # offsets in struct seccomp_data (arg0's low word, little-endian)


def _errno(code: int) -> int:
    return 0x00050000 | code


def _op(code: int, k: int, jt: int = 0, jf: int = 0) -> bytes:
    return struct.pack("=HBBI", code, jt, jf, k)


def program(machine: str | None = None) -> bytes | None:
    """The compiled BPF filter for this machine's architecture (None where there is no table)."""
    machine = machine or platform.machine()
    if machine not in TABLES:
        return None
    arch, nr = TABLES[machine]
    ops = [_op(LD_W_ABS, ARCH_AT), _op(JEQ, arch, 1, 0), _op(RET, KILL), _op(LD_W_ABS, NR_AT)]
    if machine == "x86_64":
        ops += [_op(JGE, X32_BIT, 0, 1), _op(RET, KILL)]
    for name in ("memfd_create", "shmget"):
        ops += [_op(JEQ, nr[name], 0, 1), _op(RET, _errno(EPERM))]
    ops += [_op(JEQ, nr["clone3"], 0, 1), _op(RET, _errno(ENOSYS))]
    for name in ("unshare", "clone"):  # flags are the first argument of both
        ops += [_op(JEQ, nr[name], 0, 4), _op(LD_W_ABS, ARG0_AT), _op(JSET, CLONE_NEWUSER, 0, 1),
                _op(RET, _errno(EPERM)), _op(RET, ALLOW)]
    ops.append(_op(RET, ALLOW))
    return b"".join(ops)


def filter_fd() -> int | None:
    """A readable fd holding :func:`program` (a pipe the child inherits), or None without a filter.
    The caller closes it once the child started."""
    code = program()
    if code is None:
        return None
    read, write = os.pipe()
    try:
        os.write(write, code)  # a few hundred bytes: far below a pipe's buffer
    finally:
        os.close(write)
    return read
