"""The judge: plain literals across the channel, exceptions, in-place effects, timeouts, fallbacks."""

import math

import pytest

from pathbench.tasks.sandbox import JudgeJob, SandboxLimits, entry_points, run_judged, run_judged_many
from pathbench.tasks.sandbox.child.codec import Unencodable, decode, dumps, encode, loads

FAST = SandboxLimits(timeout_s=4.0)


# ---------------------------------------------------------------- codec
@pytest.mark.parametrize("value", [None, True, False, 0, -7, 10**40, 0.1, -0.0, 1e308, "", "é\n\x00", b"a\x00\xff",
                                   [], [1, [2, (3,)]], (), (1, "a"), {1: "x", (2, 3): [4]}, {"a": {"b": None}},
                                   {1, 2}, set(), frozenset({"a"}), 1 + 2j, [{"tuple": [1]}]])
def test_plain_literals_round_trip_exactly(value):
    back = decode(loads(dumps({"value": encode(value)}))["value"])
    assert back == value and type(back) is type(value) and repr(back) == repr(value)


def test_non_finite_floats_round_trip():
    inf, ninf, nan = decode(loads(dumps({"v": encode([math.inf, -math.inf, math.nan])}))["v"])
    assert inf == math.inf and ninf == -math.inf and math.isnan(nan)


def test_anything_but_exact_builtin_literals_is_refused():
    class Liar:
        def __eq__(self, other):
            return True

    class Int(int):
        pass

    cyclic: list = []
    cyclic.append(cyclic)
    for value in (Liar(), Int(3), [Int(3)], {"k": Liar()}, print, range(3), cyclic, bytearray(b"x"), ...):
        with pytest.raises(Unencodable):
            encode(value)


def test_malformed_channel_data_is_refused():
    for data in ({"pickle": "x"}, {"tuple": [1], "set": [2]}, {"set": [[1]]}, {"dict": [[[1], 2]]}, {"bytes": "zz"},
                 {"float": "1.5"}, {"complex": ["a", 1]}, {"dict": [1]}):
        with pytest.raises(Unencodable):
            decode(data)
    with pytest.raises(ValueError):
        loads(b"[1, 2]")


# ---------------------------------------------------------------- the judge
def _job(candidate: str, test: str, setup: str = "", entry: tuple[str, ...] = ("f",)) -> JudgeJob:
    return JudgeJob(candidate, setup or candidate, test, entry)


def test_exceptions_cross_by_builtin_type_and_others_fail():
    candidate = ("def f(x):\n    if x < 0:\n        raise ValueError('negative')\n    if x == 0:\n"
                 "        class Custom(Exception):\n            pass\n        raise Custom('mine')\n    return x\n")
    raises = "try:\n    f({})\nexcept {} as e:\n    assert {!r} in str(e)\nelse:\n    raise AssertionError\n"
    tests = [raises.format(-1, "ValueError", "negative"), raises.format(0, "Exception", "Custom: mine"),
             "assert f(-1) == 1\n"]
    results = run_judged_many([_job(candidate, test) for test in tests], FAST)
    assert [r.status for r in results] == ["passed", "passed", "failed"]
    assert "ValueError: negative" in results[2].stderr


def test_in_place_effects_on_arguments_come_back():
    candidate = "def f(xs, d, s):\n    xs.append(len(xs))\n    d['n'] = 1\n    s.add(9)\n    return None\n"
    test = ("xs, d, s = [5], {}, set()\nkeep = xs\nassert f(xs, d, s) is None\n"
            "assert keep == [5, 1] and d == {'n': 1} and s == {9} and keep is xs\n")
    assert run_judged(_job(candidate, test), FAST).passed


def test_compile_error_load_error_and_missing_function():
    setup = "def f(x):\n    return x\n"
    candidates = ["def f(:\n", "raise RuntimeError('at load')\n" + setup, "def g(x):\n    return x\n"]
    results = run_judged_many([_job(c, "assert f(1) == 1\n", setup=setup) for c in candidates], FAST)
    assert [r.status for r in results] == ["error", "failed", "failed"]
    assert "RuntimeError" in results[1].stderr and "not a function" in results[2].stderr


def test_a_call_that_runs_too_long_is_a_timeout_even_if_the_test_swallows_it():
    candidate = "def f(x):\n    while x:\n        pass\n    return 1\n"
    test = "try:\n    f(1)\nexcept BaseException:\n    pass\nassert f(0) == 1\n"
    start_limits = SandboxLimits(timeout_s=6.0, call_timeout_s=1.0)
    result = run_judged(_job(candidate, test), start_limits)
    assert result.status == "timeout" and result.duration < 4, result
    assert "no answer" in result.stderr


def test_a_test_that_passes_something_that_is_not_a_literal_is_unsupported():
    candidate = "def f(g):\n    return g(1)\n"
    result = run_judged(_job(candidate, "assert f(lambda x: x + 1) == 2\n"), FAST)
    assert result.status == "error" and result.unsupported and result.runner == "judge"


def test_helpers_of_the_dataset_run_in_the_judge():
    """A candidate that redefines the prompt's helper changes nothing the tests see."""
    setup = "def helper(x):\n    return 2 * x\n\ndef f(x):\n    return helper(x) + 1\n"
    test = "assert helper(3) == 6 and f(3) == 7\n"
    cheat = "def helper(x):\n    return 0\n\ndef f(x):\n    return 1\n"
    right = "def helper(x):\n    return 0\n\ndef f(x):\n    return 2 * x + 1\n"
    assert [r.status for r in run_judged_many([_job(cheat, test, setup), _job(right, test, setup)], FAST)] == \
        ["failed", "passed"]


def test_entry_points_are_the_solutions_functions_the_test_reads():
    source = "import math\nX = 1\ndef f(x):\n    return x\n\ndef g():\n    pass\n\nclass C:\n    pass\n"
    assert entry_points(source, "assert f(1) == 1 and C and X\n") == ("f",)
    assert entry_points(source, "assert g() is None\nassert f(2)\n") == ("f", "g")
    assert entry_points("def (", "f()") == ()
