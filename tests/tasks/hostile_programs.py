"""Hostile candidates for ``test_sandbox_hostile.py``: one program per escape family of issue 17.

Every program harms only what the test owns (``HEADER``'s names: a folder outside the sandbox
with a victim file, a decoy process, a localhost listener, a marker for the command line of
every process started), wraps each attempt so the next one still runs, and defines a wrong
``add`` (``WRONG``) unless it is a forgery, which brings its own.
"""

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
