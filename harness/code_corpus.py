"""Code corpus harvested from the running interpreter's standard library (offline).

Functions of 5–30 lines, cut with ``ast``, deduplicated by text, held out by *file* (a hash of
the path), so no function of a held-out file is ever trained on. ``load_corpus("stdlib")``
gives the training functions; the code-infilling tasks keep the held-out ones for evaluation.
"""

from __future__ import annotations

import ast
import functools
import hashlib
import sysconfig
import textwrap
import warnings
from pathlib import Path
from types import SimpleNamespace

from harness.errors import ConfigError


def _is_val_file(relative: str, val_percent: int) -> bool:
    return int(hashlib.sha256(relative.encode()).hexdigest(), 16) % 100 < val_percent


def _segment(lines: list[str], node: ast.AST) -> str:
    """ast.get_source_segment(padded=True) on just the node's lines (linear, not per-file)."""
    snippet = "".join(lines[node.lineno - 1:node.end_lineno])
    local = SimpleNamespace(lineno=1, end_lineno=node.end_lineno - node.lineno + 1,
                            col_offset=node.col_offset, end_col_offset=node.end_col_offset)
    return ast.get_source_segment(snippet, local, padded=True) or ""


@functools.lru_cache(maxsize=4)
def _stdlib_functions(val_percent: int = 10) -> tuple[tuple[str, ...], tuple[str, ...]]:
    """(train, val) function texts; a text's split is that of the first file (sorted) holding it."""
    root = Path(sysconfig.get_paths()["stdlib"])
    files = sorted(p for p in root.rglob("*.py")
                   if not {"site-packages", "dist-packages"} & set(p.relative_to(root).parts))
    seen: set[str] = set()
    train: list[str] = []
    val: list[str] = []
    for path in files:
        relative = path.relative_to(root).as_posix()
        try:
            source = path.read_text(encoding="utf-8")
            with warnings.catch_warnings():
                warnings.simplefilter("ignore")
                tree = ast.parse(source)
        except (SyntaxError, UnicodeDecodeError, ValueError, OSError):
            continue
        target = val if _is_val_file(relative, val_percent) else train
        lines = source.splitlines(keepends=True)
        for node in ast.walk(tree):
            if not isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef)):
                continue
            if not 5 <= node.end_lineno - node.lineno + 1 <= 30:
                continue
            text = textwrap.dedent(_segment(lines, node))
            if not text.startswith(("def ", "async def ")) or text in seen:
                continue  # unindentable (e.g. a string at column 0) or a duplicate
            seen.add(text)
            target.append(text)
    return tuple(train), tuple(val)


def harvest_stdlib_functions(limit: int | None = None, split: str = "train", val_percent: int = 10) -> list[str]:
    """Functions of 5–30 lines from the running interpreter's stdlib, deduped, held out by file
    (sha256 of the path relative to the stdlib folder < val_percent %)."""
    if split not in ("train", "val"):
        raise ConfigError(f"split '{split}' is unknown; choose train or val")
    if not 0 < val_percent < 100:
        raise ConfigError(f"val_percent = {val_percent} must be in 1..99")
    train, val = _stdlib_functions(val_percent)
    texts = list(train if split == "train" else val)
    return texts if limit is None else texts[:limit]
