"""The shared machinery of the code-infilling tasks (see :mod:`pathbench.tasks.adapters.code` for the tasks).

A :class:`Problem` is a prompt, a reference solution continuing it and test code. One block
of the solution is masked (:func:`mask_block`: a random run of lines; :func:`mask_line`: one
of the problem's named lines), the model fills the block's token count, and
:meth:`InfillTask.score` compiles and runs each completed program (:func:`build_program`)
in :mod:`pathbench.tasks.sandbox`: pass@k, compiles@k, their bootstrap intervals over problems and the
per-problem raw data (the rules are in :mod:`pathbench.tasks.adapters.code`'s docstring).

Candidates are judged outside their own process (:mod:`pathbench.tasks.sandbox.judge`): the tests run
in a trusted judge that calls the problem's entry points in the sandboxed candidate and
receives plain literals. A problem whose tests the judge cannot express is known from its
reference solution: the reference is judged once per problem, and when it does not pass
there, every candidate of that problem runs as a whole program in the sandbox instead
(``per_example["runner"]`` says which problems did; their pass can be forged by a program
that sets out to).
"""

from __future__ import annotations

import random
from collections import Counter
from dataclasses import dataclass
from typing import Any

from pathbench.core.errors import ConfigError
from pathbench.tasks.adapters.base import Example, ExampleTask, check_generations
from pathbench.tasks.metrics.passk import (
    FORMULA,
    compiles,
    interval_description,
    interval_metrics,
    mean_pass_at_k,
    usable_ks,
)
from pathbench.tasks.sandbox import (
    ISOLATIONS,
    ExecResult,
    JudgeJob,
    SandboxLimits,
    absent_defences,
    entry_points,
    resolve,
    run_jobs,
)


@dataclass(frozen=True)
class Problem:
    task_id: str
    prompt: str        # given text before the solution (signature + docstring, or a comment)
    solution: str      # reference solution, continuing the prompt
    test: str          # test code that raises unless the solution is right
    #: 0-based lines of the solution one of which is masked (a checked line); () = a random block
    lines: tuple[int, ...] = ()
    #: the functions the tests call in the candidate; () = the top-level functions of prompt +
    #: solution that the test reads (a problem whose helpers the tests also call names its own)
    entry: tuple[str, ...] = ()


def mask_block(solution: str, key: str, fraction: float = 0.5, seed: int = 0) -> tuple[str, str, str]:
    """(before, block, after) with before + block + after == solution; deterministic in (seed, key)."""
    lines = solution.splitlines(keepends=True)
    if not any(line.strip() for line in lines):
        raise ConfigError(f"problem {key}: the reference solution is empty")
    size = min(len(lines), max(1, round(fraction * len(lines))))
    starts = [s for s in range(len(lines) - size + 1) if any(x.strip() for x in lines[s:s + size])]
    start = random.Random(f"{seed}:{key}").choice(starts)
    return "".join(lines[:start]), "".join(lines[start:start + size]), "".join(lines[start + size:])


def mask_line(solution: str, key: str, lines: tuple[int, ...], seed: int = 0) -> tuple[str, str, str]:
    """(before, line, after): line ``random.Random(f"{seed}:{key}").choice(lines)`` of the solution."""
    parts = solution.splitlines(keepends=True)
    if not lines or any(not 0 <= i < len(parts) for i in lines):
        raise ConfigError(f"problem {key}: maskable lines {list(lines)} are not lines of its {len(parts)}-line solution")
    i = random.Random(f"{seed}:{key}").choice(sorted(lines))
    return "".join(parts[:i]), parts[i], "".join(parts[i + 1:])


def fill(prefix: str, generated: str, suffix: str) -> str:
    """The completed solution: a filled block of lines ends with a newline when lines follow."""
    if suffix and not generated.endswith("\n"):
        generated += "\n"
    return prefix + generated + suffix


def build_program(prefix: str, generated: str, suffix: str, test: str) -> str:
    """What the sandbox runs: the completed solution, then the tests."""
    return fill(prefix, generated, suffix) + "\n\n" + test + "\n"


class InfillTask(ExampleTask):
    """Shared machinery: problems -> masked requests -> sandboxed tests -> pass@k, compiles@k."""

    name = "infill"
    min_candidates = 1  # pass@10 is reported only with >= 10 candidates (only the ks that fit)

    def __init__(self, mask_fraction: float = 0.5, seed: int = 0, ks: list[int] | tuple[int, ...] = (1, 10),
                 timeout_s: float = 10.0, memory_mb: int = 1024, workers: int | None = None,
                 skip_long: bool = False, isolation: str = "auto") -> None:
        if not 0 < mask_fraction <= 1:
            raise ConfigError(f"mask_fraction = {mask_fraction} must be in (0, 1]")
        if (not isinstance(ks, (list, tuple)) or not ks
                or not all(isinstance(k, int) and not isinstance(k, bool) and k >= 1 for k in ks)):
            raise ConfigError(f"ks = {ks!r} must be a non-empty list of integers >= 1, e.g. ks=[1,10]")
        if timeout_s <= 0 or memory_mb < 64:
            raise ConfigError(f"timeout_s = {timeout_s} must be > 0 and memory_mb = {memory_mb} >= 64")
        if isolation not in ISOLATIONS:
            raise ConfigError(f"isolation = {isolation!r} is not one of {', '.join(ISOLATIONS)}")
        self.mask_fraction, self.seed, self.ks = float(mask_fraction), int(seed), sorted({int(k) for k in ks})
        self.limits = SandboxLimits(timeout_s=float(timeout_s), memory_bytes=int(memory_mb) << 20, isolation=isolation)
        self.workers, self.skip_long, self.skipped = workers, bool(skip_long), 0
        self._judged: dict[JudgeJob, ExecResult] = {}  # each problem's reference, judged once

    def problems(self) -> list[Problem]:
        raise NotImplementedError

    def mask(self, p: Problem) -> tuple[str, str, str]:
        """(before, block, after) of the problem's solution: one of its checked lines when it
        names some, else a random block of ``mask_fraction`` of its lines."""
        if p.lines:
            return mask_line(p.solution, p.task_id, p.lines, self.seed)
        return mask_block(p.solution, p.task_id, self.mask_fraction, self.seed)

    def examples(self, tokenizer, seq_len: int, limit: int | None = None) -> list[Example]:
        problems = self.problems()
        problems = problems if limit is None else problems[:limit]
        out, too_long = [], []
        for p in problems:
            before, block, after = self.mask(p)
            prefix, n = p.prompt + before, len(tokenizer.encode(block))
            need = len(tokenizer.encode(prefix)) + n + len(tokenizer.encode(after))
            if need > seq_len:
                too_long.append((p.task_id, need))
                continue
            out.append(Example([prefix, n] + ([after] if after else []), [block],
                               {"task_id": p.task_id, "prefix": prefix, "suffix": after, "test": p.test,
                                "entry": p.entry or entry_points(p.prompt + p.solution, p.test)}))
        if too_long and not self.skip_long:
            worst = max(too_long, key=lambda t: t[1])
            raise ConfigError(f"{len(too_long)} of {len(problems)} problems need more than seq_len = {seq_len} "
                              f"positions (e.g. {worst[0]} needs {worst[1]}); raise seq_len or pass skip_long=true")
        self.skipped = len(too_long)
        if not out:
            raise ConfigError(f"no {self.name} problem fits seq_len = {seq_len}")
        return out

    def programs(self, examples: list[Example], generations: list[list[list[str]]]) -> list[list[str]]:
        """Every candidate as a whole program (solution + tests), as the fallback runner runs it."""
        return [[build_program(e.meta["prefix"], cand[0], e.meta["suffix"], e.meta["test"]) for cand in gens]
                for e, gens in zip(examples, generations)]

    def judge_job(self, e: Example, generated: str) -> JudgeJob:
        """A candidate for the judge; the trusted setup is the problem's prompt + reference solution."""
        reference = fill(e.meta["prefix"], e.references[0], e.meta["suffix"])
        return JudgeJob(fill(e.meta["prefix"], generated, e.meta["suffix"]), reference, e.meta["test"],
                        tuple(e.meta["entry"]))

    def judged(self, examples: list[Example]) -> list[bool]:
        """Per problem: whether the judge expresses its tests, i.e. its reference solution
        passes through the judge (checked once per problem and task object)."""
        refs = [self.judge_job(e, e.references[0]) if e.meta["entry"] else None for e in examples]
        todo = sorted({r for r in refs if r is not None and r not in self._judged}, key=lambda r: r.program)
        self._judged.update(zip(todo, run_jobs(todo, self.limits, self.workers)))
        return [r is not None and self._judged[r].passed for r in refs]

    def score(self, examples: list[Example], generations: list[list[list[str]]]) -> dict[str, Any]:
        n = check_generations(examples, generations)
        ks = usable_ks(self.ks, n)
        for e, gens in zip(examples, generations):
            if any(len(cand) != 1 for cand in gens):
                raise ConfigError(f"problem {e.meta['task_id']}: expected 1 slot per candidate")
        builds = [[compiles(fill(e.meta["prefix"], cand[0], e.meta["suffix"])) for cand in gens]
                  for e, gens in zip(examples, generations)]
        judged = self.judged(examples)
        programs = [[self.judge_job(e, cand[0]) for cand in gens] if j else row for e, gens, j, row in
                    zip(examples, generations, judged, self.programs(examples, generations))]
        unique = sorted({p for row, ok in zip(programs, builds) for p, b in zip(row, ok) if b}, key=repr)
        todo = [p for p in unique if p not in self._judged]  # a candidate equal to its reference ran already
        results = {**{p: self._judged[p] for p in unique if p in self._judged},
                   **dict(zip(todo, run_jobs(todo, self.limits, self.workers)))}
        status = [[results[p].status if b else "error" for p, b in zip(row, ok)] for row, ok in zip(programs, builds)]
        passed = [[s == "passed" for s in row] for row in status]
        metrics: dict[str, Any] = {}
        for k in ks:
            metrics[f"pass@{k}"] = mean_pass_at_k(passed, k)
        for k in ks:
            metrics[f"compiles@{k}"] = mean_pass_at_k(builds, k)
        intervals, how = interval_metrics({"pass": passed, "compiles": builds}, ks)
        metrics.update(intervals)
        metrics["interval"] = how
        counts = Counter(s for row in status for s in row)
        metrics.update({s: counts.get(s, 0) for s in ("passed", "failed", "timeout", "error")})
        metrics.update({"examples": len(examples), "candidates": n, "skipped_too_long": self.skipped,
                        "programs_run": len(unique)})
        used = self.isolation_used()
        metrics["sandbox"] = {"isolation": used, "absent_defences": absent_defences(used)}
        # raw data last: what every statistic above is recomputed from
        metrics["per_example"] = {"task_id": [e.meta["task_id"] for e in examples], "passed": passed,
                                  "compiles": builds, "status": status,
                                  "runner": ["judge" if j else "program" for j in judged]}
        return metrics

    def protocol(self) -> dict[str, Any]:
        return {"task": self.name, "estimator": FORMULA, "ks": self.ks,
                "ks_reported": "only k <= candidates per problem",
                "compiles": "compile(prompt + before + generation + after, '<candidate>', 'exec') succeeds",
                "pass": "compiles, and solution + tests ran to the end without exception in the sandbox "
                        "(a candidate that does not compile is not run: status error)",
                "interval": interval_description(),
                "mask": "one contiguous block of round(mask_fraction * lines) >= 1 lines of the reference "
                        "solution, start from random.Random(f'{seed}:{task_id}'); slot = its token count, "
                        "generation cut at EOS, a newline appended when lines follow",
                "mask_fraction": self.mask_fraction, "mask_seed": self.seed,
                # what ran on this machine (isolation, absent defences) is a fact of each result:
                # metrics["sandbox"]; the protocol holds only what is asked, the same everywhere
                "sandbox": {**self.limits.protocol(),
                            "judge": "tests run in a trusted judge process that calls the entry points in the "
                                     "sandboxed candidate over pipes (JSON lines, plain literals, never pickled); "
                                     "a problem whose reference does not pass through the judge runs as a whole "
                                     "program in the sandbox (per_example runner = 'program')",
                            "pass": "random per-run token printed only after the tests ran without exception"}}

    def isolation_used(self) -> str:
        """"bwrap" or "guard": what this task's runs use (detected once per process)."""
        return resolve(self.limits.isolation)
