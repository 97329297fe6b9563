"""The recorder of ``stdlib_infill`` cases: runs held-out stdlib functions on literal inputs.

:data:`RECORDER` runs in its own interpreter (``python -s -c``; temp cwd and HOME, a minimal
environment with a fixed ``PYTHONHASHSEED``; RLIMIT_AS 2 GiB, RLIMIT_CPU 600 s, RLIMIT_FSIZE
1 MiB, no core). The functions it runs were chosen statically to be self-contained and pure
(:mod:`pathbench.tasks.adapters.code_problems`); they are the interpreter's own stdlib code, not model output, so
this is a guard against hangs and blow-ups, not a sandbox for untrusted code (that is
:mod:`pathbench.tasks.sandbox`, which runs the filled programs).

For each job: the function is defined (prompt + source, real builtins), each argument
combination is called twice under a repeating ``ITIMER_REAL`` alarm (``call_s``; a swallowed
tick is raised again); a call is a case when both calls return the same plain-literal
``repr((result, args after))`` of at most ``max_repr`` characters and its distinctness key
(the result, or the whole repr when the arguments changed) is new; ``max_cases`` at most.
With ``min_cases`` cases, each maskable line is replaced by ``pass`` and the line is
*checked* when the mutant fails a case (other value, exception, or ``mutant_s`` exceeded).
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import tempfile
from pathlib import Path

from pathbench.core.errors import ConfigError

RECORDER = r'''
import ast, builtins, json, random, resource, signal, sys
for name, value in (("RLIMIT_AS", 2 << 30), ("RLIMIT_CPU", 600), ("RLIMIT_FSIZE", 1 << 20), ("RLIMIT_CORE", 0)):
    try:
        resource.setrlimit(getattr(resource, name), (value, value))
    except (ValueError, OSError):
        pass
class Timeout(BaseException):
    pass
def alarm(signum, frame):
    raise Timeout()
signal.signal(signal.SIGALRM, alarm)
def limited(fn, seconds):
    signal.setitimer(signal.ITIMER_REAL, seconds, 0.05)  # repeats: a swallowed tick is raised again
    try:
        return fn()
    finally:
        signal.setitimer(signal.ITIMER_REAL, 0)
def plain(v, depth=0):
    if depth > 6:
        return False
    if v is None or type(v) in (bool, int, float, str, bytes):
        return True
    if type(v) in (list, tuple):
        return all(plain(x, depth + 1) for x in v)
    if type(v) is dict:
        return all(plain(k, depth + 1) and plain(x, depth + 1) for k, x in v.items())
    if type(v) in (set, frozenset):
        return all(type(x) is int for x in v)
    return False
def load(source, name):
    namespace = {"__builtins__": builtins, "__name__": "recorded"}
    exec(compile(source, "<function>", "exec"), namespace)
    return namespace[name]
def call(f, args_src, seconds):
    """(distinctness key, expected) of one call, or None when its values are not plain literals;
    the key is the result alone unless the call changed its arguments."""
    args = ast.literal_eval(args_src)
    before = repr(args)
    def run():
        out = f(*args)
        if not (plain(out) and plain(args)):
            return None
        full = repr((out, args))
        return (repr(out) if repr(args) == before else full), full
    return limited(run, seconds)
def record(job, pool, cfg):
    f = limited(lambda: load(job["prompt"] + job["source"], job["name"]), cfg["call_s"])
    p = job["params"]
    total = len(pool) ** p
    order = random.Random(job["task_id"]).sample(range(total), min(total, cfg["max_combos"]))
    cases, seen = [], set()
    for index in order:
        combo = [pool[(index // len(pool) ** j) % len(pool)] for j in range(p)]
        args_src = "[" + ", ".join(combo) + "]"
        try:
            first, second = call(f, args_src, cfg["call_s"]), call(f, args_src, cfg["call_s"])
        except BaseException:
            continue
        if first is None or first != second or len(first[1]) > cfg["max_repr"] or first[0] in seen:
            continue
        seen.add(first[0])
        cases.append([args_src, first[1]])
        if len(cases) >= cfg["max_cases"]:
            break
    checked = []
    if len(cases) >= cfg["min_cases"]:
        lines = job["source"].splitlines(keepends=True)
        for li in job["lines"]:
            line = lines[li]
            indent = line[:len(line) - len(line.lstrip())]
            mutant = "".join(lines[:li] + [indent + "pass" + ("\n" if line.endswith("\n") else "")] + lines[li + 1:])
            try:
                g = limited(lambda: load(job["prompt"] + mutant, job["name"]), cfg["call_s"])
            except BaseException:
                checked.append(li)
                continue
            for args_src, expected in cases:
                try:
                    got = call(g, args_src, cfg["mutant_s"])
                except BaseException:
                    got = None
                if got is None or got[1] != expected:
                    checked.append(li)
                    break
    return {"cases": cases, "checked": checked}
payload = json.loads(sys.stdin.buffer.read().decode("utf-8"))
out = {}
for job in payload["jobs"]:
    try:
        out[job["task_id"]] = record(job, payload["pool"], payload["cfg"])
    except BaseException:
        out[job["task_id"]] = {"cases": [], "checked": []}
with open(payload["result"], "w", encoding="utf-8") as handle:
    json.dump(out, handle)
'''


def record(jobs: list[dict], pool: list[str], cfg: dict, hash_seed: int) -> dict:
    """{task_id: {"cases": [[args literal, expected repr]], "checked": [line]}} for every job
    (task_id, name, prompt, source, params, lines), from one run of :data:`RECORDER`."""
    with tempfile.TemporaryDirectory(prefix="pathbench-record-") as work:
        result = os.path.join(work, "result.json")
        payload = json.dumps({"jobs": jobs, "pool": pool, "cfg": cfg, "result": result})
        env = {"PATH": "/usr/bin:/bin", "HOME": work, "PYTHONHASHSEED": str(hash_seed), "LC_ALL": "C.UTF-8"}
        try:
            proc = subprocess.run([sys.executable, "-s", "-c", RECORDER], input=payload.encode("utf-8"),
                                  cwd=work, env=env, capture_output=True, timeout=900)
        except subprocess.TimeoutExpired as err:
            raise ConfigError("recording the stdlib_infill cases took more than 900 s") from err
        if proc.returncode != 0 or not os.path.exists(result):
            tail = proc.stderr.decode("utf-8", "replace")[-300:]
            raise ConfigError(f"recording the stdlib_infill cases failed (exit {proc.returncode}): {tail}")
        return json.loads(Path(result).read_text(encoding="utf-8"))


