"""What a sandboxed run may use and what it reports: :class:`SandboxLimits`, :class:`ExecResult`."""

from __future__ import annotations

import os
from dataclasses import asdict, dataclass

STATUSES = ("passed", "failed", "timeout", "error")
#: ``auto``: bubblewrap when it works, else the guard with one loud warning (an error on a
#: cluster, where $SLURM_JOB_ID is set); ``bwrap``: bubblewrap or an error; ``guard``: the
#: in-process guard only (no kernel isolation, by choice)
ISOLATIONS = ("auto", "bwrap", "guard")


@dataclass(frozen=True)
class SandboxLimits:
    timeout_s: float = 10.0            # wall clock of the whole run; every process is killed after it
    memory_bytes: int = 1 << 30        # RLIMIT_AS (of its one process: RLIMIT_NPROC = 0, no fork, no thread)
    file_size_bytes: int = 16 << 20    # RLIMIT_FSIZE (also caps captured stdout/stderr)
    disk_bytes: int = 64 << 20         # bubblewrap: size of its work dir (a tmpfs, so memory too)
    tmp_bytes: int = 16 << 20          # bubblewrap: size of each of its /tmp and /dev/shm (tmpfs)
    isolation: str = "auto"            # one of ISOLATIONS (requested; ExecResult says what was used)
    call_timeout_s: float | None = None  # one judge call; None = timeout_s
    message_bytes: int = 16 << 20      # the largest reply the judge reads from a candidate (larger: failed)

    def protocol(self) -> dict[str, float | str | None]:
        return asdict(self)

    @property
    def call_timeout(self) -> float:
        return self.timeout_s if self.call_timeout_s is None else min(self.call_timeout_s, self.timeout_s)


@dataclass
class ExecResult:
    status: str           # one of STATUSES
    stderr: str           # last characters of the child's stderr (why it failed)
    duration: float       # wall seconds
    returncode: int | None = None
    isolation: str = ""   # "bwrap" or "guard": what the run actually used
    #: "program" (whole program in the sandbox) or "judge"; ``unsupported``: the judge could
    #: not express the tests (an argument that is not a plain literal, dataset code that fails)
    runner: str = "program"
    unsupported: bool = False

    @property
    def passed(self) -> bool:
        return self.status == "passed"


def allocated_cpus() -> int:
    """CPUs this process may run on (a Slurm job's allocation, a taskset), not the node's count."""
    try:
        return max(1, len(os.sched_getaffinity(0)))
    except (AttributeError, OSError):  # no sched_getaffinity on this platform
        return max(1, os.cpu_count() or 1)
