"""Problems for ``stdlib_infill``: held-out stdlib functions, their behaviour on recorded inputs.

The KL-flow paper's Table 6 fills masked lines of HumanEval/MBPP solutions. A tiny CPU model
trained for a minute on :mod:`pathbench.data.code_corpus` cannot solve those, so this module builds a
problem set from the *held-out* stdlib functions instead (same distribution as the training
functions, never trained on, held out by file), with tests made from the functions' own
behaviour. Construction, all deterministic:

1. **Self-contained pure functions** (static, with ``ast`` and ``symtable``): a plain
   ``def`` (no decorator, not async, no ``yield``/``await``/``import``/``global``/``nonlocal``/
   class), 1–3 required positional parameters (first not ``self``/``cls``), no required
   keyword-only one, none of :data:`BANNED` (I/O, ``eval``/``exec``, ``id``/``hash``, ...)
   nor a dunder attribute, and every free name a builtin, the function itself, or bound at
   the top of its file by an absolute import of a :data:`PURE_MODULES` module or by
   ``NAME = <literal>``; those binding lines, in name order, are the problem's *prompt*. Such
   a function can only compute on its arguments. Its docstring's lines are removed (they
   change no behaviour and cost positions); prompt + text must be <= ``max_chars``.
2. **Recorded inputs**: arguments are drawn from the fixed literal pool :data:`POOL`; for p
   parameters, ``min(|POOL|^p, max_combos)`` combinations in the order of
   ``random.Random(task_id)``. A call is a *case* when it returns within
   :data:`CALL_SECONDS`, twice with the same result, and both the result and the arguments
   after the call (in-place effects count) are plain literals (None, bool, int, float, str,
   bytes, and lists/tuples/dicts of them; sets of ints); the expected value is
   ``repr((result, args_after))``. A case whose result (or, when the call changed its
   arguments, whole expected value) was already seen is skipped, so the kept cases have
   distinct outputs: the first ``max_cases``; a function needs ``min_cases`` of them (2: not
   constant on its cases). The recorder is :mod:`pathbench.tasks.adapters.code_recorder`.
3. **Checked lines** (the negative control, per line): a maskable line is a single-line simple
   statement alone on its line (not the docstring, not ``pass``). It is *checked* when the
   function with that line replaced by ``pass`` fails at least one case (wrong value, an
   exception, or no return within :data:`MUTANT_SECONDS`): the tests see that line, so a fill
   that does nothing fails. A function needs at least one checked line; the masked line is
   ``random.Random(f"{seed}:{task_id}").choice(checked lines)``.
4. **Reproducible**: the recorder runs twice, at once, in separate interpreters (``PYTHONHASHSEED`` 0
   and 1, temp cwd, CPU and memory limits); a function whose cases or checked lines differ
   between the two is dropped. Problems are ordered by sha256 of their id (``limit`` takes a
   spread of files). The result is cached on disk (``$PATHBENCH_CACHE``, default
   the user cache folder, pathbench.core.cache), keyed by the code of this module and of the recorder, the
   interpreter, the settings and the held-out texts with their files' (size, mtime). The
   time limits (:data:`CALL_SECONDS`, :data:`MUTANT_SECONDS`) are the one machine-dependent
   part: a call that takes ~0.5 s would be dropped on a slow machine (none of the kept ones
   is close: they run in microseconds).

The recorded values are what the *original* function returned in this interpreter, so the
reference solution passes by construction (the positive control, checked in the tests).
"""

from __future__ import annotations

import ast
import builtins
import functools
import hashlib
import json
import symtable
import sys
import sysconfig
import warnings
from concurrent.futures import ThreadPoolExecutor
from dataclasses import asdict, dataclass
from pathlib import Path

import pathbench.tasks.adapters.code_recorder
from pathbench.core.cache import cache_root
from pathbench.core.errors import ConfigError
from pathbench.core.io import cached_json
from pathbench.data.code_corpus import stdlib_function_sources
from pathbench.tasks.adapters.code_recorder import record

PROBLEMS_VERSION = 1
#: argument values, as Python literals (small: no call on them can build anything large)
POOL = ("0", "1", "2", "3", "-1", "7", "10", "0.5", "-2.5", "None", "True", "False",
        "''", "'a'", "'abc'", "'Hello, World'", "'a b  c'", "'12'", "'x=1;y=2'", "'foo.bar'",
        "'  pad  '", "'tab\\tsep\\n'", "'A_b-C.d'", "'<b>&\"q\"</b>'", "'utf-8'", "'strict'", "b''", "b'abc'", "b'a\\x00b'",
        "[]", "[1, 2, 3]", "[3, 1, 2]", "['a', 'b']", "[[1, 2], [3]]", "[(1, 2), (3, 4)]", "()", "(1, 2)",
        "('a', 1)", "{}", "{'a': 1, 'b': 2}", "{'b': [1, 2]}")
BANNED = frozenset({"open", "exec", "eval", "compile", "__import__", "input", "print", "globals", "locals",
                    "vars", "breakpoint", "exit", "quit", "help", "id", "hash", "setattr", "delattr",
                    "memoryview", "__build_class__", "__loader__", "__spec__"})
ALLOWED = frozenset(dir(builtins)) - BANNED
#: modules whose functions only compute (no files, processes, network, clocks or randomness)
PURE_MODULES = frozenset({"math", "cmath", "re", "string", "operator", "itertools", "functools", "collections",
                          "keyword", "unicodedata", "textwrap", "fnmatch", "copy", "bisect", "heapq", "reprlib",
                          "struct", "binascii", "html", "calendar", "fractions", "decimal", "stat", "errno",
                          "enum", "types", "codecs", "dis", "opcode"})
CALL_SECONDS, MUTANT_SECONDS = 0.5, 0.2
MAX_REPR = 300          # characters of one expected value
COMPOUND = (ast.If, ast.For, ast.While, ast.With, ast.Try, ast.FunctionDef, ast.ClassDef, ast.AsyncFor,
            ast.AsyncWith, ast.AsyncFunctionDef, ast.Match, getattr(ast, "TryStar", ast.Try))


@dataclass(frozen=True)
class StdlibProblem:
    task_id: str                          # "<file>::<function>"
    file: str                             # relative to the stdlib folder (a held-out file)
    name: str
    prompt: str                           # its file's import/constant lines that it needs ("" if none)
    source: str                           # the function's text as harvested, docstring lines removed
    cases: tuple[tuple[str, str], ...]    # (argument list literal, repr((result, args after)))
    checked: tuple[int, ...]              # 0-based line indices whose removal fails a case


# ----------------------------------------------------------------------------- static selection

def _free_names(table: symtable.SymbolTable) -> set[str]:
    names = {s.get_name() for s in table.get_symbols() if s.is_global() and s.is_referenced()}
    for child in table.get_children():
        names |= _free_names(child)
    return names


def maskable_lines(fn: ast.FunctionDef) -> list[int]:
    """0-based line indices (in the function's text) of single-line simple statements that no
    other statement starts on (no ``a; b``, no ``if x: y``), the docstring and ``pass`` excluded."""
    per_line: dict[int, int] = {}
    candidates = []
    doc = _docstring(fn)
    for node in ast.walk(fn):
        if not isinstance(node, ast.stmt) or node is fn:
            continue
        per_line[node.lineno] = per_line.get(node.lineno, 0) + 1  # statements starting there
        if (not isinstance(node, COMPOUND) and node is not doc and not isinstance(node, ast.Pass)
                and node.lineno == node.end_lineno):
            candidates.append(node.lineno)
    return sorted({line - 1 for line in candidates if per_line[line] == 1})


@functools.lru_cache(maxsize=256)
def module_context(file: str) -> dict[str, str]:
    """Top-level names of a stdlib file a function may use, each with the line that binds it:
    ``import``/``from ... import`` of a :data:`PURE_MODULES` module (absolute imports only)
    and ``NAME = <literal>`` constants."""
    try:
        tree = ast.parse((Path(sysconfig.get_paths()["stdlib"]) / file).read_text(encoding="utf-8"))
    except (OSError, SyntaxError, UnicodeDecodeError, ValueError):
        return {}
    bound: dict[str, str] = {}
    for node in tree.body:
        if isinstance(node, ast.Import):
            for alias in node.names:
                if alias.name.split(".")[0] in PURE_MODULES:
                    bound[alias.asname or alias.name.split(".")[0]] = ast.unparse(ast.Import([alias]))
        elif isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
            for alias in node.names:
                if node.module.split(".")[0] in PURE_MODULES and alias.name != "*":
                    bound[alias.asname or alias.name] = ast.unparse(ast.ImportFrom(node.module, [alias], 0))
        elif (isinstance(node, ast.Assign) and len(node.targets) == 1 and isinstance(node.targets[0], ast.Name)
              and len(ast.unparse(node)) <= 100):
            try:
                ast.literal_eval(node.value)
            except (ValueError, TypeError, SyntaxError, MemoryError, RecursionError):
                continue
            bound[node.targets[0].id] = ast.unparse(node)
    return bound


def _parse(text: str) -> tuple[ast.Module, symtable.SymbolTable] | None:
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            return ast.parse(text), symtable.symtable(text, "<function>", "exec")
    except (SyntaxError, ValueError):
        return None


def _docstring(fn: ast.AST) -> ast.Expr | None:
    body = getattr(fn, "body", None)
    if body and isinstance(body[0], ast.Expr) and isinstance(body[0].value, ast.Constant) \
            and isinstance(body[0].value.value, str):
        return body[0]
    return None


def strip_docstring(text: str) -> str:
    """The function's text without its docstring's lines (when the docstring has whole lines
    to itself and is not the whole body); every other character is kept as harvested."""
    parsed = _parse(text)
    if parsed is None or not parsed[0].body:
        return text
    fn = parsed[0].body[0]
    doc = _docstring(fn)
    if doc is None or len(fn.body) < 2:
        return text
    lines = text.splitlines(keepends=True)
    first, last = lines[doc.lineno - 1], lines[doc.end_lineno - 1]
    if first[:doc.col_offset].strip() or last[doc.end_col_offset:].strip():
        return text  # shares a line with code
    return "".join(lines[:doc.lineno - 1] + lines[doc.end_lineno:])


def candidate(file: str, text: str, max_chars: int) -> dict | None:
    """The static record of a self-contained pure function, or None (see the module docstring).
    ``source`` is the text without its docstring; ``prompt`` holds the import and constant
    lines of its file that its free names need."""
    if not text.startswith("def "):
        return None
    text = strip_docstring(text)
    parsed = _parse(text)
    if parsed is None:
        return None
    tree, table = parsed
    fn = tree.body[0]
    if len(tree.body) != 1 or not isinstance(fn, ast.FunctionDef) or fn.decorator_list:
        return None
    a = fn.args
    positional = a.posonlyargs + a.args
    required = len(positional) - len(a.defaults)
    if not 1 <= required <= 3 or positional[0].arg in ("self", "cls"):
        return None
    if any(d is None for d in a.kw_defaults):
        return None
    for node in ast.walk(fn):
        if isinstance(node, (ast.Yield, ast.YieldFrom, ast.Await, ast.Import, ast.ImportFrom, ast.Global,
                             ast.Nonlocal, ast.ClassDef, ast.AsyncFunctionDef)):
            return None
        if isinstance(node, ast.Attribute) and node.attr.startswith("__"):
            return None
        if isinstance(node, ast.Name) and node.id in BANNED:
            return None
    top = {s.get_name() for s in table.get_symbols() if s.is_referenced()}
    free = sorted((top | _free_names(table)) - ALLOWED - {fn.name})
    context = module_context(file) if free else {}
    if any(name not in context for name in free):
        return None
    lines = maskable_lines(fn)
    prompt = "".join(context[name] + "\n" for name in free)
    prompt += "\n" if prompt else ""
    if not lines or len(prompt) + len(text) > max_chars:
        return None
    return {"file": file, "name": fn.name, "prompt": prompt, "source": text,
            "params": required, "lines": lines}


def _cache_path(key: str) -> Path:
    folder = cache_root()
    return folder / f"stdlib-infill-{hashlib.sha1(key.encode()).hexdigest()[:16]}.json"


def _cache_key(sources: list[tuple[str, str]], cfg: dict) -> str:
    """Everything the problem set depends on: this module's and the recorder's code, the
    interpreter, the settings, the held-out texts and their files' (size, mtime)."""
    root = Path(sysconfig.get_paths()["stdlib"])
    files = []
    for file in sorted({f for f, _ in sources}):
        try:
            st = (root / file).stat()
            files.append((file, st.st_size, st.st_mtime_ns))
        except OSError:
            files.append((file, None, None))
    code = [hashlib.sha1(Path(m).read_bytes()).hexdigest() for m in (__file__, pathbench.tasks.adapters.code_recorder.__file__)]
    digest = hashlib.sha1(json.dumps(sources).encode()).hexdigest()
    return json.dumps([PROBLEMS_VERSION, code, sys.version, cfg, digest, files], sort_keys=True)


@functools.lru_cache(maxsize=8)
def stdlib_problems(max_chars: int = 300, min_cases: int = 2, max_cases: int = 6, max_combos: int = 1500,
                    val_percent: int = 10) -> tuple[StdlibProblem, ...]:
    """Every held-out stdlib problem (see the module docstring), ordered by sha256 of its id;
    read from the disk cache when its key (:func:`_cache_key`) matches, else recorded."""
    for name, value, low in (("max_chars", max_chars, 40), ("min_cases", min_cases, 1),
                             ("max_cases", max_cases, 1), ("max_combos", max_combos, 1)):
        if int(value) < low:
            raise ConfigError(f"{name} = {value} must be >= {low}")
    if max_cases < min_cases:
        raise ConfigError(f"max_cases = {max_cases} must be >= min_cases = {min_cases}")
    sources = stdlib_function_sources(val_percent)
    cfg = {"call_s": CALL_SECONDS, "mutant_s": MUTANT_SECONDS, "max_repr": MAX_REPR, "min_cases": min_cases,
           "max_cases": max_cases, "max_combos": max_combos, "max_chars": max_chars}
    cache = _cache_path(_cache_key(sources, cfg))
    # parallel units record once; a damaged or foreign file is recorded again
    stored = cached_json(cache, lambda: _build(sources, cfg), valid=lambda d: isinstance(d, list))
    return tuple(StdlibProblem(p["task_id"], p["file"], p["name"], p["prompt"], p["source"],
                               tuple(tuple(c) for c in p["cases"]), tuple(p["checked"])) for p in stored)


def _build(sources: list[tuple[str, str]], cfg: dict) -> list[dict]:
    jobs, ids = [], set()
    for file, text in sources:
        found = candidate(file, text, cfg["max_chars"])
        if found is None:
            continue
        base = task_id = f"{file}::{found['name']}"
        suffix = 2
        while task_id in ids:
            task_id, suffix = f"{base}#{suffix}", suffix + 1
        ids.add(task_id)
        jobs.append({"task_id": task_id, **found})
    # two recordings under different hash seeds (a case whose output depends on it is dropped),
    # in two interpreters at once: each is a subprocess, so threads suffice to overlap them
    with ThreadPoolExecutor(2) as pool:
        first, second = pool.map(lambda seed: record(jobs, list(POOL), cfg, seed), (0, 1))
    stored = []
    for job in jobs:
        a, b = first.get(job["task_id"]), second.get(job["task_id"])
        if a != b or a is None or len(a["cases"]) < cfg["min_cases"] or not a["checked"]:
            continue
        stored.append(asdict(StdlibProblem(job["task_id"], job["file"], job["name"], job["prompt"], job["source"],
                                           tuple(map(tuple, a["cases"])), tuple(a["checked"]))))
    return sorted(stored, key=lambda p: hashlib.sha256(p["task_id"].encode()).hexdigest())


def check_program(problem: StdlibProblem) -> str:
    """The test the sandbox runs after the (filled) function: every recorded case must give
    the recorded ``repr((result, args after))``."""
    lines = ["def _pathbench_check():"]
    for args_src, expected in problem.cases:
        lines.append(f"    _args = {args_src}")
        lines.append(f"    _got = repr(({problem.name}(*_args), _args))")
        lines.append(f"    assert _got == {expected!r}, ({args_src!r}, _got)")
    lines.append("")
    lines.append("_pathbench_check()")
    return "\n".join(lines) + "\n"
