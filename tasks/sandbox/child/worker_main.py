"""Inside the sandbox: the candidate's side of the judge's channel.

fd 0 / fd 1 are the channel (from / to the judge); they are moved aside first and the
candidate's own prints go to stderr. The judge's first line holds the program and the
limits; the worker compiles it (``compile_error`` when it does not), runs its top level
(``load_error`` when that raises) and answers ``ready``; then for every call line
``{"call": name, "args": [...], "kwargs": {...}}`` it calls the program's function and answers
with the return value and the arguments after the call (in-place effects), encoded as plain
literals (``codec.py``), or with the name of the exception raised. Nothing here is trusted:
the candidate can rewrite this code, but all it can send is plain data.
"""

import builtins
import os
import sys
import traceback


def _sender(fd):
    def send(message):
        data = dumps(message)  # noqa: F821 (codec.py, same script)
        while data:
            data = data[os.write(fd, data):]
    return send


def _describe(error):
    try:
        text = str(error)[:300]
    except BaseException:
        text = "<unprintable>"
    return {"raise": type(error).__name__, "message": text}


def worker_main():
    channel_in, channel_out = os.fdopen(os.dup(0), "rb"), os.dup(1)
    null = os.open(os.devnull, os.O_RDONLY)
    os.dup2(null, 0)
    os.dup2(2, 1)
    send, exit_ = _sender(channel_out), os._exit
    setup = loads(channel_in.readline())  # noqa: F821 (codec.py)
    sys.path.extend(setup["path"])  # started with -S: the package folders without their .pth hooks
    set_limits(setup["cpu"], setup["memory"], setup["fsize"])  # noqa: F821 (guard.py)
    try:
        code = compile(setup["program"], "<candidate>", "exec")
    except BaseException:
        send({"compile_error": traceback.format_exc()[-1000:]})
        exit_(2)
    if setup["guard"]:
        install_guard(os.path.realpath(os.getcwd()))  # noqa: F821 (guard.py)
    namespace = {"__name__": "__main__", "__builtins__": builtins}
    try:
        exec(code, namespace)
        sys.stdout.flush()
    except BaseException as error:
        traceback.print_exc()
        send({"load_error": _describe(error)})
        exit_(1)
    send({"ready": True})
    for line in channel_in:
        try:
            call = loads(line)  # noqa: F821 (codec.py)
            args, kwargs = decode(call["args"]), decode(call["kwargs"])  # noqa: F821 (codec.py)
            function = namespace.get(call["call"])
            if not callable(function):
                raise NameError(f"name {call['call']!r} is not a function of the program")
            value = function(*args, **kwargs)
            sys.stdout.flush()
            reply = {"value": encode(value), "args": encode(args)}  # noqa: F821 (codec.py)
        except BaseException as error:
            reply = _describe(error)
        send(reply)
    exit_(0)
