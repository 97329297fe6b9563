"""The sandbox when the harness is not root (issue 27): a child process of this test runs as an
unprivileged uid, starts the sandbox there and reports what a hostile candidate could do.

As root the harness runs bubblewrap without a user namespace and the candidate drops to uid
65534 itself; as another user bubblewrap needs an unprivileged user namespace, and the process
limit, the tmpfs sizes and the seccomp filter must hold there too. Where that cannot work (the
kernel forbids unprivileged user namespaces, or the interpreter lies where that user cannot
read it) the run must fall back to the guard and say which defences are absent.

The child needs an interpreter the unprivileged user can read: the one running this test, or
else the system's interpreter of the same version with this test's package folders on its path
(a pyenv interpreter lies under /root, 0700)."""

import json
import os
import shutil
import subprocess
import sys
import sysconfig
import tempfile
from pathlib import Path

import pytest

from pathbench.tasks.sandbox import bwrap_problem
from pathbench.tasks.sandbox.isolation import GUARD_ABSENT

UID = 65534
REPO = Path(__file__).resolve().parents[2]
pytestmark = [pytest.mark.skipif(os.geteuid() != 0, reason="the unprivileged run is started from a root test process; "
                                 "as another user every sandbox test already is that run"),
              pytest.mark.skipif(shutil.which("bwrap") is None or bwrap_problem() is not None,
                                 reason=f"no kernel sandbox here even as root: {bwrap_problem()}")]

CHILD = r"""
import json, os, sys
from pathbench.tasks.sandbox import JudgeJob, SandboxLimits, absent_defences, bwrap_problem, run_judged, run_program
secret = sys.argv[1]
limits = SandboxLimits(timeout_s=10.0, disk_bytes=2 << 20, tmp_bytes=1 << 20)
probe = '''
import posix, os, sys, ctypes, threading, _socket
sys.stdout = sys.stderr
try:
    posix.fork()
    print('FORK started')
except OSError as err:
    print('FORK refused', type(err).__name__)
try:
    threading.Thread(target=lambda: None).start()
    print('THREAD started')
except RuntimeError:
    print('THREAD refused')
try:
    print('SECRET read', open(%r).read())
except OSError as err:
    print('SECRET hidden', type(err).__name__)
written = 0
try:
    fd = posix.open('/work/fill', posix.O_WRONLY | posix.O_CREAT, 0o600)
    while written < (8 << 20):
        written += posix.write(fd, b'x' * (1 << 16))
except OSError as err:
    print('WORK full at', written >> 20, 'MiB', err.errno)
libc = ctypes.CDLL(None, use_errno=True)
print('MEMFD', libc.memfd_create(b'x', 0), 'USERNS', libc.unshare(0x10000000))
print('UID', posix.getuid())
posix.mkdir('locked'); posix.mkdir('locked/in'); posix.chmod('locked/in', 0); posix.chmod('locked', 0o100)
''' % secret
ran = run_program(probe, limits)
setup, test = "def add(a, b):\n    return a + b\n", "assert add(2, 3) == 5\n"
right = run_judged(JudgeJob(setup, setup, test, ("add",)), limits)
wrong = run_judged(JudgeJob("def add(a, b):\n    return 0\n", setup, test, ("add",)), limits)
print(json.dumps({"uid": os.getuid(), "python": sys.executable, "problem": bwrap_problem(), "isolation": ran.isolation,
                  "said": ran.stderr, "judged": [right.status, wrong.status, right.isolation],
                  "absent": absent_defences(ran.isolation), "left": sorted(set(os.listdir(".")) - {"secret"})}))
"""


def _as_user(python: str, folder: str, prefix: list[str]) -> subprocess.CompletedProcess:
    site = [p for p in sys.path if p.endswith(("site-packages", "dist-packages")) and os.path.isdir(p)]
    env = {"PATH": "/usr/local/bin:/usr/bin:/bin", "HOME": folder, "TMPDIR": folder, "LANG": "C.UTF-8",
           "PYTHONPATH": os.pathsep.join([str(REPO), *site]), "PYTHONDONTWRITEBYTECODE": "1"}
    return subprocess.run([*prefix, python, "-c", CHILD, os.path.join(folder, "secret")], capture_output=True,
                          text=True, timeout=120, cwd=folder, env=env, user=UID, group=UID, extra_groups=[])


def _interpreters() -> list[str]:
    version = f"python{sysconfig.get_python_version()}"
    found = [sys.executable, *(shutil.which(version, path=p) for p in ("/usr/bin", "/usr/local/bin"))]
    return list(dict.fromkeys(p for p in found if p))


@pytest.fixture
def folder():
    """The unprivileged harness's folder (its HOME and TMPDIR), holding a file it may read."""
    top = tempfile.mkdtemp(prefix="pathbench-unprivileged-", dir="/var/tmp" if os.access("/var/tmp", os.W_OK) else None)
    try:
        Path(top, "secret").write_text("the answers")
        for path in (top, os.path.join(top, "secret")):
            os.chown(path, UID, UID)
        yield top
    finally:
        shutil.rmtree(top, ignore_errors=True)


def _report(folder: str, prefix: list[str] = ()) -> dict:
    """What the child said, run by the first interpreter under which bubblewrap works for
    :data:`UID` (else by the last one that ran at all)."""
    reports, why = [], []
    for python in _interpreters():
        try:
            done = _as_user(python, folder, list(prefix))
        except OSError as err:  # this user may not run it at all
            why.append(f"{python}: {err}")
            continue
        why.append(f"{python}: exit {done.returncode}: {done.stderr[-1000:]}")
        if done.returncode == 0:
            reports.append(json.loads(done.stdout.strip().splitlines()[-1]))
            if reports[-1]["problem"] is None:
                break
    assert reports, f"no interpreter runs the harness as uid {UID}: {why}"
    assert reports[-1]["uid"] == UID and reports[-1]["left"] == [], reports[-1]  # every run's folder removed
    return reports[-1]


def _assert_honest_fallback(report: dict) -> None:
    said = report["said"]
    assert report["isolation"] == "guard" and report["problem"], report
    assert report["absent"] == [d for d in GUARD_ABSENT if not d.startswith("process limit")], report
    assert "FORK refused BlockingIOError" in said and "THREAD refused" in said, said  # NPROC binds a user not root
    assert "SECRET read the answers" in said, said  # the guard alone has no view: recorded as absent
    assert report["judged"] == ["passed", "failed", "guard"], report


def test_an_unprivileged_harness_keeps_every_defence_of_bubblewrap(folder):
    report = _report(folder)
    if report["problem"] is not None:  # the kernel forbids it: the fallback must be honest, and that is all
        _assert_honest_fallback(report)
        pytest.skip(f"bubblewrap does not run for uid {UID} here (the fallback was honest): {report['problem']}")
    said = report["said"]
    assert report["isolation"] == "bwrap" and report["absent"] == [], report
    assert "FORK refused BlockingIOError" in said and "THREAD refused" in said, said
    assert "SECRET hidden FileNotFoundError" in said, said
    full = [line.split() for line in said.splitlines() if line.startswith("WORK full")]
    assert full and int(full[0][3]) <= 2 and full[0][5] == "28", said  # ENOSPC at the tmpfs size
    assert "MEMFD -1 USERNS -1" in said and "UID 65534" in said, said
    assert report["judged"] == ["passed", "failed", "bwrap"], report


def test_where_user_namespaces_are_forbidden_the_fallback_says_what_is_absent(folder):
    """The unprivileged harness inside a user namespace that may make no other (what a kernel
    without unprivileged user namespaces gives): bubblewrap's trial fails, ``auto`` falls back to
    the guard and the run lists what that lacks."""
    bwrap = shutil.which("bwrap")
    outer = [bwrap, "--bind", "/", "/", "--dev", "/dev", "--proc", "/proc", "--unshare-user", "--disable-userns", "--"]
    _assert_honest_fallback(_report(folder, outer))
