"""The judge: a trusted interpreter that runs the tests and calls the candidate over a channel.

Payload (JSON on stdin): the token, the dataset's own code (``setup``: the prompt with the
reference solution, so prompt-defined helpers such as HumanEval's ``poly`` run here), the
test code, the names of the candidate's entry points, the candidate program, limits and the
per-call timeout. The judge sends the program to the candidate's worker (fds named in the
payload), execs the setup, binds each entry point to a :class:`Candidate` proxy and execs
the tests. A proxy call encodes the arguments (a test passing a value that is not a plain
literal makes the run ``unsupported``), waits at most the per-call timeout for the reply,
writes the candidate's in-place changes back into list/dict/set arguments and returns the
decoded value, or raises the builtin exception the candidate raised (another exception type
as :class:`CandidateError`). The verdict is the last stdout line; a pass carries the token,
which never leaves the judge and the parent. A call that timed out, a channel that broke or
a value that could not cross decides the verdict even if a test swallowed the exception.
"""

import builtins
import json
import os
import select
import sys
import time
import traceback

MAX_MESSAGE = 16 << 20  # the payload's max_message replaces it


class CandidateError(Exception):
    """The candidate raised an exception that is not a builtin one (its type name kept)."""


class Stop(BaseException):
    """The channel cannot go on (timeout, crash, unsupported argument): the run is decided."""


class Channel:
    def __init__(self, fd_in, fd_out, timeout, max_message=MAX_MESSAGE):
        self.fd_in, self.fd_out, self.timeout, self.max_message = fd_in, fd_out, timeout, max_message
        self.buffer, self.verdict = bytearray(), None   # verdict: set once the channel is dead

    def stop(self, verdict, why):
        if self.verdict is None:
            self.verdict = (verdict, why)
        raise Stop(why)

    def send(self, message):
        data = dumps(message)  # noqa: F821 (codec.py, same script)
        try:
            while data:
                data = data[os.write(self.fd_out, data):]
        except OSError as err:
            self.stop("failed", f"the candidate closed its channel ({err.strerror})")

    def receive(self, what):
        """The next line, in time linear in its length (each byte is scanned once); a line longer
        than ``max_message`` fails the candidate as soon as that many bytes arrived."""
        deadline = time.monotonic() + self.timeout
        scanned, end = 0, self.buffer.find(b"\n")
        while end < 0:
            if len(self.buffer) > self.max_message:
                self.stop("failed", f"the answer to {what} is larger than {self.max_message} bytes")
            left = deadline - time.monotonic()
            if left <= 0 or not select.select([self.fd_in], [], [], left)[0]:
                self.stop("timeout", f"no answer to {what} within {self.timeout} s")
            chunk = os.read(self.fd_in, 1 << 20)
            if not chunk:
                self.stop("failed", f"the candidate's process ended during {what}")
            scanned = len(self.buffer)
            self.buffer += chunk
            end = self.buffer.find(b"\n", scanned)
        if end > self.max_message:
            self.stop("failed", f"the answer to {what} is larger than {self.max_message} bytes")
        line = bytes(self.buffer[:end])
        del self.buffer[:end + 1]
        try:
            return loads(line)  # noqa: F821 (codec.py)
        except (ValueError, RecursionError):
            self.stop("failed", f"the answer to {what} is not a channel message")


def _exception(reply):
    name, message = str(reply.get("raise")), str(reply.get("message", ""))
    found = getattr(builtins, name, None)
    if isinstance(found, type) and issubclass(found, Exception) and found.__module__ == "builtins":
        try:
            return found(message)
        except Exception:
            pass
    return CandidateError(f"{name}: {message}")


def _write_back(original, changed):
    """Mirror an in-place change of a list/dict/set argument the candidate made."""
    if type(original) is list and type(changed) is list:
        original[:] = changed
    elif type(original) in (dict, set) and type(changed) is type(original):
        original.clear()
        original.update(changed)


class Candidate:
    """Stands for one function of the candidate's program on the judge's side."""

    def __init__(self, channel, name):
        self._channel, self.__name__ = channel, name

    def __call__(self, *args, **kwargs):
        channel = self._channel
        if channel.verdict is not None:
            raise Stop(channel.verdict[1])
        try:
            message = {"call": self.__name__, "args": encode(list(args)), "kwargs": encode(kwargs)}  # noqa: F821
        except Unencodable as err:  # noqa: F821 (codec.py)
            channel.stop("unsupported", f"the test passes {self.__name__} an argument that cannot cross: {err}")
        channel.send(message)
        reply = channel.receive(f"a call of {self.__name__}")
        if "raise" in reply:
            raise _exception(reply)
        try:
            value, after = decode(reply["value"]), decode(reply["args"])  # noqa: F821 (codec.py)
        except (KeyError, Unencodable) as err:  # noqa: F821 (codec.py)
            channel.stop("failed", f"{self.__name__} returned a value that cannot cross: {err}")
        if type(after) is list and len(after) == len(args):
            for original, changed in zip(args, after):
                _write_back(original, changed)
        return value

    def __repr__(self):
        return f"<candidate {self.__name__}>"


def _finish(token, verdict, detail):
    sys.stdout.write("\n" + json.dumps({"verdict": verdict, "detail": detail[-2000:],
                                        **({"token": token} if verdict == "passed" else {})}) + "\n")
    sys.stdout.flush()
    os._exit(0 if verdict == "passed" else 1)


def judge_main():
    payload = json.loads(sys.stdin.buffer.read().decode("utf-8"))
    token = payload.pop("token")
    sys.path.extend(payload["path"])  # started with -S: the package folders without their .pth hooks
    set_limits(payload["cpu"], payload["memory"], payload["fsize"], nproc=False)  # noqa: F821 (guard.py)
    channel = Channel(payload["fd_in"], payload["fd_out"], payload["call_timeout"], payload["max_message"])
    try:
        channel.send({"program": payload["program"], "guard": payload["guard"], "cpu": payload["cpu"],
                      "memory": payload["memory"], "fsize": payload["fsize"], "path": payload["worker_path"]})
        first = channel.receive("loading the program")
    except Stop:
        _finish(token, *channel.verdict)
    if "compile_error" in first:
        _finish(token, "error", str(first["compile_error"]))
    if "ready" not in first:
        _finish(token, "failed", f"the program's top level raised: {first.get('load_error')}")
    namespace = {"__name__": "__main__", "__builtins__": builtins}
    try:
        exec(compile(payload["setup"], "<dataset>", "exec"), namespace)
    except BaseException:
        _finish(token, "unsupported", "the dataset's own code does not run: " + traceback.format_exc())
    for name in payload["entry"]:
        namespace[name] = Candidate(channel, name)
    try:
        exec(compile(payload["test"], "<test>", "exec"), namespace)
    except BaseException:
        if channel.verdict is None:
            _finish(token, "failed", traceback.format_exc())
    if channel.verdict is not None:
        _finish(token, *channel.verdict)
    _finish(token, "passed", "")
