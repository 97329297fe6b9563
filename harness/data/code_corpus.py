"""Code corpus harvested from the running interpreter's standard library (offline).

Functions of 5–30 lines, cut with ``ast``, deduplicated by text, held out by *file*: a file
is held out when ``int(sha256(path relative to the stdlib folder)) mod 100 < val_percent``,
so no function of a held-out file is ever trained on (a text found in several files belongs
to the first file, in sorted order, that holds it). ``load_corpus("stdlib")`` gives the
training functions; the code-infilling task ``stdlib_infill`` keeps the held-out ones for
evaluation (:func:`stdlib_function_sources` names each one's file).

Parsing the whole stdlib takes ~25 s on one core (the files are parsed by a process per core,
up to 8), so the harvest is cached on disk as JSON in ``$PATHBENCH_CACHE`` (default
the user cache folder, pathbench.core.cache), built by one process at a time, keyed by the harvest rules' version,
the interpreter version, the stdlib folder and every file's (path, size, mtime); a changed
file or interpreter makes a new key. The cache is written atomically and only read back when
its key matches, so it never changes what is harvested.
"""

from __future__ import annotations

import ast
import functools
import hashlib
import json
import multiprocessing
import sys
import sysconfig
import textwrap
import warnings
from concurrent.futures import ProcessPoolExecutor
from pathlib import Path
from types import SimpleNamespace

from pathbench.core.cache import cache_root
from pathbench.core.errors import ConfigError
from pathbench.core.io import cached_json
from pathbench.data.stream import allocated_cpus

HARVEST_VERSION = 1  # bump when the harvest rules change (invalidates the disk cache)


def _is_val_file(relative: str, val_percent: int) -> bool:
    return int(hashlib.sha256(relative.encode()).hexdigest(), 16) % 100 < val_percent


def is_held_out_file(relative: str, val_percent: int = 10) -> bool:
    """Whether a stdlib file (path relative to the stdlib folder) is held out from training."""
    return _is_val_file(relative, val_percent)


def _segment(lines: list[str], node: ast.AST) -> str:
    """ast.get_source_segment(padded=True) on just the node's lines (linear, not per-file)."""
    snippet = "".join(lines[node.lineno - 1:node.end_lineno])
    local = SimpleNamespace(lineno=1, end_lineno=node.end_lineno - node.lineno + 1,
                            col_offset=node.col_offset, end_col_offset=node.end_col_offset)
    return ast.get_source_segment(snippet, local, padded=True) or ""


def _stdlib_files() -> tuple[Path, list[Path]]:
    root = Path(sysconfig.get_paths()["stdlib"])
    files = sorted(p for p in root.rglob("*.py")
                   if not {"site-packages", "dist-packages"} & set(p.relative_to(root).parts))
    return root, files


def _file_functions(path: Path) -> list[str]:
    """The dedented functions of 5–30 lines of one file, in ``ast.walk`` order (duplicates kept:
    the merge in :func:`_harvest` drops them across files in sorted file order)."""
    try:
        source = path.read_text(encoding="utf-8")
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            tree = ast.parse(source)
    except (SyntaxError, UnicodeDecodeError, ValueError, OSError):
        return []
    # ast counts lines at "\n" only; str.splitlines also splits at a form feed (Debian's stdlib has them)
    lines = [line + "\n" for line in source.split("\n")]
    texts = []
    for node in ast.walk(tree):
        if not isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef)):
            continue
        if not 5 <= node.end_lineno - node.lineno + 1 <= 30:
            continue
        text = textwrap.dedent(_segment(lines, node))
        if text.startswith(("def ", "async def ")):  # else unindentable (a string at column 0)
            texts.append(text)
    return texts


def _workers() -> int:
    return max(1, min(8, allocated_cpus()))


def _harvest(root: Path, files: list[Path], val_percent: int) -> dict[str, list]:
    """{"train": [text], "val": [[file, text]]}: the harvest itself (no cache). Files are parsed
    by a pool of processes (parsing is the cost); the merge is sequential in sorted file order,
    so the result does not depend on the number of workers."""
    workers = _workers()
    if workers > 1:  # spawn, not fork: the caller may hold torch's threads and locks
        context = multiprocessing.get_context("spawn")
        with ProcessPoolExecutor(workers, mp_context=context) as pool:
            per_file = list(pool.map(_file_functions, files, chunksize=32))
    else:
        per_file = [_file_functions(path) for path in files]
    seen: set[str] = set()
    train: list[str] = []
    val: list[list[str]] = []
    for path, texts in zip(files, per_file):
        relative = path.relative_to(root).as_posix()
        held_out = _is_val_file(relative, val_percent)
        for text in texts:
            if text in seen:
                continue  # a text found in several files belongs to the first one
            seen.add(text)
            if held_out:
                val.append([relative, text])
            else:
                train.append(text)
    return {"train": train, "val": val}


def _cache_file(root: Path, files: list[Path], val_percent: int) -> Path:
    stats = []
    for p in files:
        try:
            st = p.stat()
        except OSError:
            continue
        stats.append((p.relative_to(root).as_posix(), st.st_size, st.st_mtime_ns))
    key = json.dumps([HARVEST_VERSION, sys.version, str(root), val_percent, stats])
    folder = cache_root()
    return folder / f"stdlib-functions-{hashlib.sha1(key.encode()).hexdigest()[:16]}.json"


@functools.lru_cache(maxsize=4)
def _stdlib_functions(val_percent: int = 10) -> tuple[tuple[str, ...], tuple[tuple[str, str], ...]]:
    """(train texts, val (file, text) pairs); read from the disk cache when its key matches."""
    root, files = _stdlib_files()
    cache = _cache_file(root, files, val_percent)
    # parallel units harvest once; a damaged or foreign file is harvested again
    data = cached_json(cache, lambda: _harvest(root, files, val_percent),
                       valid=lambda d: isinstance(d, dict) and {"train", "val"} <= set(d))
    return tuple(data["train"]), tuple((f, t) for f, t in data["val"])


def _check(split: str, val_percent: int) -> None:
    if split not in ("train", "val"):
        raise ConfigError(f"split '{split}' is unknown; choose train or val")
    if not 0 < val_percent < 100:
        raise ConfigError(f"val_percent = {val_percent} must be in 1..99")


def harvest_stdlib_functions(limit: int | None = None, split: str = "train", val_percent: int = 10) -> list[str]:
    """Functions of 5–30 lines from the running interpreter's stdlib, deduped, held out by file
    (sha256 of the path relative to the stdlib folder < val_percent %)."""
    _check(split, val_percent)
    train, val = _stdlib_functions(val_percent)
    texts = list(train) if split == "train" else [text for _, text in val]
    return texts if limit is None else texts[:limit]


def stdlib_function_sources(val_percent: int = 10) -> list[tuple[str, str]]:
    """The held-out functions as (file relative to the stdlib folder, text), in harvest order."""
    _check("val", val_percent)
    return list(_stdlib_functions(val_percent)[1])
