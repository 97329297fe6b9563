"""Inside a child: run one whole program (solution + tests) and prove it finished.

The payload (JSON on stdin) holds the program, the limits and a random token; the token is
written to the saved stdout only after the program ran without any exception
(``SystemExit`` included), so an early ``sys.exit(0)`` or ``os._exit(0)`` is no pass. The
tests share this interpreter with the solution, so code that sets out to can read the token
(frames, ``/proc/self/mem``) or neuter the tests: the judge (:mod:`judge_main`) is the
scoring path for untrusted candidates; this runner serves whole programs and the problems
the judge cannot express.
"""

import builtins
import json
import os
import sys
import traceback


def runner_main():
    payload = json.loads(sys.stdin.buffer.read().decode("utf-8"))
    token = payload.pop("token").encode()
    set_limits(payload["cpu"], payload["memory"], payload["fsize"])  # noqa: F821 (guard.py, same script)
    write, exit_, fd = os.write, os._exit, os.dup(1)
    try:
        code = compile(payload["program"], "<program>", "exec")
    except BaseException:
        traceback.print_exc()
        sys.stderr.flush()
        exit_(2)
    install_guard(os.path.realpath(os.getcwd()))  # noqa: F821 (guard.py, same script)
    namespace = {"__name__": "__main__", "__builtins__": builtins}
    try:
        exec(code, namespace)
        sys.stdout.flush()
    except BaseException:
        try:
            traceback.print_exc()
            sys.stderr.flush()
        finally:
            exit_(1)
    write(fd, b"\n" + token + b"\n")
    exit_(0)
