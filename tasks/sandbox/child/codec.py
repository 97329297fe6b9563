"""Values across the judge <-> candidate channel: plain literals as tagged JSON, never pickled.

Only exact builtin types cross (``type(x) is int``, not a subclass): None, bool, int, float,
complex, str, bytes, list, tuple, dict, set, frozenset, nested up to :data:`MAX_DEPTH`. JSON
has no tuple, set, bytes, complex, non-finite float or non-string key, so those are objects
with one tag key; every JSON object must be exactly one tag (anything else is refused). An
object with a forged ``__eq__`` (or any other class) cannot be encoded, and decoding builds
only plain values, so what the judge compares is data, never the candidate's code.
"""

import json
import math

MAX_DEPTH = 64
_TAGS = ("float", "complex", "tuple", "set", "frozenset", "bytes", "dict")


class Unencodable(TypeError):
    """A value that is not a plain literal (or nests too deep)."""


def encode(value, depth=0):
    """The JSON-ready form of a plain literal; :class:`Unencodable` for anything else."""
    if depth > MAX_DEPTH:
        raise Unencodable("nested too deep")
    kind = type(value)
    if value is None or kind is bool or kind is int or kind is str:
        return value
    if kind is float:
        return value if math.isfinite(value) else {"float": float.__repr__(value)}
    if kind is complex:
        return {"complex": [encode(value.real, depth + 1), encode(value.imag, depth + 1)]}
    if kind is bytes:
        return {"bytes": bytes.hex(value)}
    if kind is list:
        return [encode(item, depth + 1) for item in value]
    if kind in (tuple, set, frozenset):
        items = [encode(item, depth + 1) for item in value]
        return {kind.__name__: items}
    if kind is dict:
        return {"dict": [[encode(k, depth + 1), encode(v, depth + 1)] for k, v in dict.items(value)]}
    raise Unencodable(f"a {kind.__name__} is not a plain literal")


def decode(data, depth=0):
    """The plain value of :func:`encode`'s output; :class:`Unencodable` for malformed data."""
    if depth > MAX_DEPTH:
        raise Unencodable("nested too deep")
    kind = type(data)
    if data is None or kind in (bool, int, float, str):
        return data
    if kind is list:
        return [decode(item, depth + 1) for item in data]
    if kind is not dict or len(data) != 1 or next(iter(data)) not in _TAGS:
        raise Unencodable("malformed value")
    tag, body = next(iter(data.items()))
    try:
        if tag == "float" and body in ("nan", "inf", "-inf"):
            return float(body)
        if tag == "bytes" and type(body) is str:
            return bytes.fromhex(body)
        if type(body) is not list:
            raise Unencodable("malformed value")
        items = [decode(item, depth + 1) for item in body]
        if tag == "complex" and len(items) == 2 and all(type(x) in (int, float) for x in items):
            return complex(*items)
        if tag in ("tuple", "set", "frozenset"):
            return {"tuple": tuple, "set": set, "frozenset": frozenset}[tag](items)
        if tag == "dict" and all(type(pair) is list and len(pair) == 2 for pair in items):
            return {k: v for k, v in items}
    except (TypeError, ValueError) as err:  # unhashable set member or key, bad hex
        raise Unencodable(f"malformed value: {err}") from None
    raise Unencodable("malformed value")


def dumps(message):
    """One channel line (bytes, newline-terminated) of a message of encoded parts."""
    return (json.dumps(message, separators=(",", ":")) + "\n").encode("utf-8")


def loads(line):
    """A message from one channel line; ValueError (or RecursionError) when it is not JSON."""
    message = json.loads(line.decode("utf-8"))
    if type(message) is not dict:
        raise ValueError("a channel message is a JSON object")
    return message
