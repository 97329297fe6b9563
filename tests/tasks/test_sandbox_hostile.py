"""Hostile candidates against the sandbox: every escape family of issue 17 is contained.

Each program tries to harm only what this test owns, so a real escape is harmless and seen:
a folder outside the sandbox (under /var/tmp, visible read-only inside bubblewrap, unlike the
sandbox's private /tmp) holding a victim file and the place of sentinel files, a decoy
process to signal, a localhost listener to reach, and a unique marker in the command line of
every process a program starts. After the runs: the folder holds only the intact victim, the
decoy runs unstopped, nothing connected, no marker process survives, no program passed and
none ran past its time. The problem is ``add(a, b)``; every hostile ``add`` is wrong, so a
pass can only be forged. The README's threat model ("Sandbox") is what these tests show.
"""

import contextlib
import os
import random
import shutil
import socket
import subprocess
import tempfile
import time
from pathlib import Path

import pytest

from tasks.sandbox import JudgeJob, SandboxLimits, bwrap_problem, run_jobs, run_judged, run_program

pytestmark = pytest.mark.skipif(bwrap_problem() is not None, reason=f"no kernel sandbox here: {bwrap_problem()}")

LIMITS = SandboxLimits(timeout_s=4.0, isolation="bwrap")
SETUP = "def add(a, b):\n    return a + b\n"
TEST = "assert add(2, 3) == 5\nassert add(-1, 1) == 0\n"
WRONG = "\ndef add(a, b):\n    return None\n"
HEADER = """import os, sys, signal, time, json
OUT, VICTIM, DECOY, PORT, MARKER = {out!r}, {victim!r}, {decoy}, {port}, {marker!r}
def _try(attack):
    try:
        attack()
    except BaseException:
        pass
"""

FAMILIES = {
    "posix": """
import posix
_try(lambda: posix.unlink(VICTIM))
_try(lambda: posix.rename(VICTIM, OUT + '/renamed'))
_try(lambda: posix.link(VICTIM, OUT + '/hardlink'))
_try(lambda: posix.kill(DECOY, signal.SIGKILL))
def _fork_exec():
    if posix.fork() == 0:
        try:
            posix.execv('/bin/sh', ['sh', '-c', f'echo x > {OUT}/execed; sleep {MARKER}'])
        finally:
            posix._exit(0)
_try(_fork_exec)
""",
    "io": """
import io, _io
_try(lambda: io.FileIO(OUT + '/fileio', 'w').write(b'x'))
_try(lambda: _io.open(OUT + '/io_open', 'w').write('x'))
def _dir_fd():
    folder = os.open(OUT, os.O_RDONLY)
    os.write(os.open('dirfd', os.O_WRONLY | os.O_CREAT, 0o644, dir_fd=folder), b'x')
_try(_dir_fd)
class Shifty:  # tells the guard a path inside, the real call one outside
    calls = 0
    def __fspath__(self):
        Shifty.calls += 1
        return 'inside.txt' if Shifty.calls == 1 else OUT + '/pathlike'
_try(lambda: open(Shifty(), 'w').write('x'))
class NoFlags(int):
    def __and__(self, other):
        return 0
_try(lambda: os.write(os.open(OUT + '/flags', NoFlags(os.O_WRONLY | os.O_CREAT), 0o644), b'x'))
class Mode(str):
    def __contains__(self, char):
        return False
_try(lambda: open(OUT + '/mode', Mode('w')).write('x'))
""",
    "reload": """
import importlib
_try(lambda: importlib.reload(os).remove(VICTIM))
def _reimport():
    for name in ('shutil', 'subprocess'):
        sys.modules.pop(name, None)
    import shutil
    shutil.rmtree(OUT)
_try(_reimport)
def _popen():
    import subprocess
    importlib.reload(subprocess)
    subprocess.Popen(['/bin/sh', '-c', f'echo x > {OUT}/popen; sleep {MARKER}'], start_new_session=True)
_try(_popen)
""",
    "ctypes": """
import ctypes
libc = ctypes.CDLL(None, use_errno=True)
_try(lambda: libc.unlink(VICTIM.encode()))
_try(lambda: libc.kill(DECOY, 9))
_try(lambda: libc.creat((OUT + '/ctypes').encode(), 0o644))
def _cfork():
    if libc.fork() == 0:
        libc.execv(b'/bin/sleep', (ctypes.c_char_p * 3)(b'sleep', MARKER.encode(), None))
        libc._exit(0)
_try(_cfork)
""",
    "spawn": """
import posix
from multiprocessing.util import spawnv_passfds  # _posixsubprocess.fork_exec underneath
_try(lambda: spawnv_passfds(b'/bin/sh', [b'sh', b'-c', f'echo x > {OUT}/spawned; sleep {MARKER}'.encode()], ()))
def _mp(method, target):
    import multiprocessing
    multiprocessing.get_context(method).Process(target=target, args=('/bin/sh', ['sh', '-c',
        f'setsid sleep {MARKER} & echo x > {OUT}/mp_{method}'])).start()
    time.sleep(0.3)
_try(lambda: _mp('spawn', posix.execv))  # a fresh interpreter that unpickles the target
_try(lambda: _mp('fork', lambda *a: posix.execv(*a)))
""",
    "daemon": """
import posix
def _daemon(how):
    if posix.fork() == 0:
        try:
            posix.setsid() if how == 'setsid' else posix.setpgid(0, 0)
            if posix.fork() == 0:  # reparented, outside the run's process group
                posix.execv('/bin/sh', ['sh', '-c', f'sleep 1; echo x > {OUT}/daemon_{how}; sleep {MARKER}'])
        finally:
            posix._exit(0)
_try(lambda: _daemon('setsid'))
_try(lambda: _daemon('setpgid'))
time.sleep(0.2)
""",
    "parent": """
import posix
visible = sorted(int(p) for p in os.listdir('/proc') if p.isdigit())
print('VISIBLE', visible, 'PPID', posix.getppid(), file=sys.stderr)
_try(lambda: posix.kill(posix.getppid(), signal.SIGSTOP))
_try(lambda: posix.kill(posix.getppid(), signal.SIGKILL))
_try(lambda: posix.kill(DECOY, signal.SIGSTOP))
if max(visible) < 100:  # only this run's namespace is visible: stop all of it but this process
    for pid in visible:
        if pid != posix.getpid():
            _try(lambda: posix.kill(pid, signal.SIGSTOP))
""",
    "network": """
import socket, _socket, importlib
def _connect(make):
    s = make()
    s.settimeout(1)
    s.connect(('127.0.0.1', PORT))
    s.send(b'escaped')
_try(lambda: _connect(lambda: socket.socket.__mro__[1](socket.AF_INET, socket.SOCK_STREAM)))
_try(lambda: _connect(lambda: importlib.reload(socket).socket(socket.AF_INET, socket.SOCK_STREAM)))
_try(lambda: _connect(lambda: _socket.socket.__mro__[1](_socket.AF_INET, _socket.SOCK_STREAM)))
""",
}

# forged passes: only the judge holds the tests, the token and the verdict
FORGERIES = {
    "token_from_frames": """
import gc
def _forge():
    seen = set()
    frame = sys._getframe()
    while frame is not None:
        seen |= {v for v in frame.f_locals.values() if isinstance(v, str) and len(v) == 32}
        frame = frame.f_back
    seen |= {o for o in gc.get_objects() if isinstance(o, str) and len(o) == 32}
    for token in list(seen)[:50]:
        line = (json.dumps({'verdict': 'passed', 'token': token}) + '\\n').encode()
        for fd in range(20):
            _try(lambda: os.write(fd, line))
_try(_forge)
def add(a, b):
    _forge()
    return None
""",
    "token_from_memory": """
import re
def _forge():
    for pid in ('self', str(os.getppid()), '1'):
        try:
            maps = open(f'/proc/{pid}/maps').read().splitlines()
            mem = open(f'/proc/{pid}/mem', 'rb', 0)
        except OSError:
            continue
        for line in maps[:400]:
            lo, hi = (int(x, 16) for x in line.split()[0].split('-'))
            try:
                mem.seek(lo)
                chunk = mem.read(min(hi - lo, 1 << 24))
            except (OSError, OverflowError, ValueError):
                continue
            for token in list(set(re.findall(rb'[0-9a-f]{32}', chunk)))[:20]:
                line = b'{"verdict": "passed", "token": "' + token + b'"}\\n'
                for fd in range(20):
                    _try(lambda: os.write(fd, line))
_try(_forge)
def add(a, b):
    return None
""",
    "settrace": """
import builtins
def _skip(frame, event, arg):
    return _skip
sys.settrace(_skip)
sys.setprofile(lambda *a: None)
builtins.AssertionError = type('AssertionError', (Exception,), {})
def add(a, b):
    return None
""",
    "always_equal": """
class Liar:
    def __eq__(self, other):
        return True
    __ne__ = lambda self, other: False
    __hash__ = object.__hash__
def add(a, b):
    return Liar()
""",
    "equal_int": """
class Five(int):
    def __eq__(self, other):
        return True
    __hash__ = int.__hash__
def add(a, b):
    return Five(0)
""",
    "exit_early": """
def add(a, b):
    os._exit(0)
""",
    "system_exit": """
def add(a, b):
    raise SystemExit(0)
""",
    "channel_garbage": """
def add(a, b):
    for fd in range(3, 20):
        _try(lambda: os.write(fd, b'[' * 200000 + b'\\n'))
    return None
""",
}

HANGS = {
    "loop_at_top": "while True:\n    pass\n",
    "loop_in_call": "def add(a, b):\n    while True:\n        pass\n",
    "stop_itself": "import posix\ndef add(a, b):\n    posix.kill(posix.getpid(), signal.SIGSTOP)\n",
    "sleep_in_call": "def add(a, b):\n    time.sleep(600)\n",
}


@contextlib.contextmanager
def _world():
    """What a hostile program may want to harm: all of it this test's own, checked after."""
    out = Path(tempfile.mkdtemp(prefix="pathbench-hostile-", dir="/var/tmp" if os.access("/var/tmp", os.W_OK) else None))
    victim = out / "victim.txt"
    victim.write_text("precious")
    decoy = subprocess.Popen(["sleep", "120"])
    listener = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    listener.bind(("127.0.0.1", 0))
    listener.listen(8)
    listener.setblocking(False)
    marker = f"{random.randint(100, 899)}.{random.randint(10**5, 10**6 - 1)}"
    try:
        yield {"out": str(out), "victim": str(victim), "decoy": decoy.pid, "port": listener.getsockname()[1],
               "marker": marker, "listener": listener, "decoy_process": decoy}
    finally:
        decoy.kill()
        decoy.wait()
        listener.close()
        for pid in _marked(marker):
            os.kill(pid, 9)
        shutil.rmtree(out, ignore_errors=True)


@pytest.fixture
def world():
    with _world() as fields:
        yield fields


def _marked(marker: str) -> list[int]:
    pids = []
    for entry in os.listdir("/proc"):
        try:
            if entry.isdigit() and marker.encode() in Path(f"/proc/{entry}/cmdline").read_bytes():
                pids.append(int(entry))
        except OSError:
            pass
    return pids


def _state(pid: int) -> str:
    return Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0]


def _assert_contained(world: dict, results: list, names: list[str], limits: SandboxLimits = LIMITS) -> None:
    time.sleep(1.5)  # a daemon that escaped would write its sentinel after 1 s
    assert sorted(os.listdir(world["out"])) == ["victim.txt"], "wrote outside the work dir"
    assert Path(world["victim"]).read_text() == "precious"
    assert _state(world["decoy"]) in "RSD", "the decoy was stopped or killed"
    with pytest.raises(BlockingIOError):  # nothing connected to the test's listener
        world["listener"].accept()
    assert _marked(world["marker"]) == [], "a process of the program survived the run"
    for name, result in zip(names, results):
        assert result.isolation == "bwrap", name
        assert result.status != "passed", (name, result)
        assert result.duration < limits.timeout_s + 3, (name, result.duration)


def _program(world: dict, body: str, wrong: bool = True) -> str:
    return HEADER.format(**world) + body + (WRONG if wrong else "")


def test_every_escape_family_is_contained_by_the_judge_and_the_program_runner(world):
    names = sorted(FAMILIES)
    candidates = [_program(world, FAMILIES[n]) for n in names]
    jobs = [JudgeJob(c, SETUP, TEST, ("add",)) for c in candidates] + [c + "\n" + TEST for c in candidates]
    results = run_jobs(jobs, LIMITS, workers=4)
    _assert_contained(world, results, names + names)
    parent = results[names.index("parent")]
    visible = parent.stderr.split("VISIBLE", 1)[1].split("]")[0]
    assert max(int(p) for p in visible.strip(" [").split(",")) < 100, parent.stderr  # the harness is not visible
    assert "PPID 1" in parent.stderr or "PPID 0" in parent.stderr


def test_forged_passes_fail_in_the_judge(world):
    names = sorted(FORGERIES)
    jobs = [JudgeJob(_program(world, FORGERIES[n], wrong=False), SETUP, TEST, ("add",)) for n in names]
    results = run_jobs(jobs, LIMITS, workers=4)
    _assert_contained(world, results, names)
    # the same forgeries with a right add() pass: the judge judges the values, not the tricks
    right = FORGERIES["settrace"].replace("return None", "return a + b")
    assert run_judged(JudgeJob(_program(world, right, wrong=False), SETUP, TEST, ("add",)), LIMITS).passed


def test_hangs_end_at_the_wall_clock_and_the_harness_is_never_stopped(world):
    limits = SandboxLimits(timeout_s=2.0, isolation="bwrap")
    names = sorted(HANGS)
    jobs = [JudgeJob(_program(world, HANGS[n], wrong=False), SETUP, TEST, ("add",)) for n in names]
    start = time.monotonic()
    results = run_jobs(jobs + [_program(world, HANGS["loop_at_top"], wrong=False) + TEST], limits, workers=5)
    assert time.monotonic() - start < 8
    assert [r.status for r in results] == ["timeout"] * len(results)
    _assert_contained(world, results, names + ["program loop"], limits)


def test_the_judges_guarantees_hold_under_the_guard_alone(world):
    """Without bubblewrap the tests still never share the candidate's process: forged
    equality, a neutered trace and an early exit still fail."""
    limits = SandboxLimits(timeout_s=4.0, isolation="guard")
    names = ["always_equal", "equal_int", "settrace", "exit_early", "system_exit"]
    results = run_jobs([JudgeJob(_program(world, FORGERIES[n], wrong=False), SETUP, TEST, ("add",)) for n in names],
                       limits, workers=4)
    assert [(r.isolation, r.status) for r in results] == [("guard", "failed")] * len(names)


def _harm(world: dict) -> list[str]:
    """What a program did to the world (the checks of :func:`_assert_contained`, as a list)."""
    harm = []
    if not os.path.isdir(world["out"]) or sorted(os.listdir(world["out"])) != ["victim.txt"]:
        harm.append("wrote or deleted outside")
    if world["decoy_process"].poll() is not None or _state(world["decoy"]) not in "RSD":
        harm.append("stopped or killed the decoy")
    try:
        world["listener"].accept()[0].close()
        harm.append("connected")
    except BlockingIOError:
        pass
    if _marked(world["marker"]):
        harm.append("left a process running")
    return harm


def test_every_family_but_the_parent_one_does_harm_under_the_guard_alone():
    """Negative control: the programs are real escapes (so the containment above means
    something) and the threat model's "not defended under the guard" is true. The "parent"
    family is left out: under the guard alone it would stop this test's own process."""
    names = sorted(set(FAMILIES) - {"parent"})
    with contextlib.ExitStack() as stack:
        worlds = [stack.enter_context(_world()) for _ in names]
        jobs = [JudgeJob(_program(w, FAMILIES[n]), SETUP, TEST, ("add",)) for w, n in zip(worlds, names)]
        results = run_jobs(jobs, SandboxLimits(timeout_s=4.0, isolation="guard"), workers=4)
        time.sleep(1.5)
        harmless = [n for n, w in zip(names, worlds) if not _harm(w)]
    assert harmless == [] and all(r.isolation == "guard" for r in results)


def test_the_checks_see_an_escape_under_the_guard_alone(world):
    """Negative control of the checks above (and the threat model's "not defended"): under
    the in-process guard alone the posix module deletes the victim and a raw socket connects."""
    program = _program(world, "import posix\n_try(lambda: posix.unlink(VICTIM))\n" + FAMILIES["network"])
    result = run_judged(JudgeJob(program, SETUP, TEST, ("add",)), SandboxLimits(timeout_s=4.0, isolation="guard"))
    assert result.status == "failed" and not Path(world["victim"]).exists()
    Path(world["victim"]).write_text("precious")
    connection, _ = world["listener"].accept()
    connection.settimeout(2)
    assert connection.recv(16) == b"escaped"
    connection.close()


def test_the_whole_program_runner_can_be_forged_which_is_why_the_judge_scores(world):
    """The documented limit of the fallback runner: tests in the candidate's interpreter."""
    forged = ("import sys, os\nframe = sys._getframe()\nwhile 'token' not in frame.f_locals:\n"
              "    frame = frame.f_back\nos.write(1, b'\\n' + frame.f_locals['token'] + b'\\n')\nos._exit(0)\n")
    assert run_program(forged + "assert False\n", LIMITS).status == "passed"
    assert not run_judged(JudgeJob(forged + WRONG, SETUP, TEST, ("add",)), LIMITS).passed
