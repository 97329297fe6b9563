"""The stdlib code corpus and line-masked infilling batches."""

import ast

import numpy as np
import pytest

from pathbench.core.errors import ConfigError
from pathbench.data import code_corpus
from pathbench.data.code_corpus import harvest_stdlib_functions, is_held_out_file, stdlib_function_sources
from pathbench.data.corpus import BatchLoader, line_infill_given, load_corpus


def test_stdlib_harvest_functions_deduped_and_held_out_by_file():
    train, val = harvest_stdlib_functions(), harvest_stdlib_functions(split="val")
    assert len(train) > 1000 and len(val) > 100
    assert len(set(train)) == len(train) and len(set(val)) == len(val) and not set(train) & set(val)
    for text in train[:300] + val[:100]:
        assert 5 <= len(text.splitlines()) <= 30 and text.startswith(("def ", "async def "))
        assert isinstance(ast.parse(text).body[0], (ast.FunctionDef, ast.AsyncFunctionDef))
    assert harvest_stdlib_functions(limit=7) == train[:7]
    with pytest.raises(ConfigError, match="train or val"):
        harvest_stdlib_functions(split="test")


def test_held_out_sources_name_held_out_files():
    sources = stdlib_function_sources()
    assert [text for _, text in sources] == harvest_stdlib_functions(split="val")
    assert all(is_held_out_file(file) for file, _ in sources)
    assert len({file for file, _ in sources}) > 50


def test_harvest_is_read_back_from_its_disk_cache(monkeypatch, tmp_path):
    monkeypatch.setenv("PATHBENCH_CACHE", str(tmp_path))
    root, files = code_corpus._stdlib_files()
    cache = code_corpus._cache_file(root, files, 10)
    assert cache.parent == tmp_path and cache != code_corpus._cache_file(root, files, 20)
    cache.write_text('{"train": ["def a():\\n    pass"], "val": [["x.py", "def b():\\n    pass"]]}')
    code_corpus._stdlib_functions.cache_clear()
    try:
        assert harvest_stdlib_functions() == ["def a():\n    pass"]
        assert stdlib_function_sources() == [("x.py", "def b():\n    pass")]
    finally:
        code_corpus._stdlib_functions.cache_clear()


def test_stdlib_infill_problems_come_only_from_held_out_files():
    from pathbench.tasks.adapters.code_problems import module_context, stdlib_problems, strip_docstring

    problems = stdlib_problems()
    train = set(harvest_stdlib_functions())
    by_file: dict[str, list[str]] = {}
    for file, text in stdlib_function_sources():
        by_file.setdefault(file, []).append(text)
    assert len(problems) >= 10 and len({p.task_id for p in problems}) == len(problems)
    for p in problems:
        assert is_held_out_file(p.file) and p.task_id.startswith(p.file + "::")
        originals = [t for t in by_file[p.file] if strip_docstring(t) == p.source]
        assert originals and not set(originals) & train  # never trained on
        assert p.source.startswith(f"def {p.name}(")
        context = set(module_context(p.file).values())
        assert all(line in context for line in p.prompt.splitlines() if line)


def test_stdlib_corpus_is_the_training_functions_only():
    assert load_corpus("stdlib") == harvest_stdlib_functions()


def test_line_infill_masks_one_contiguous_block_of_whole_lines():
    is_newline = np.zeros(10, dtype=bool)
    is_newline[9] = True  # token 9 ends a line
    ids = np.array([[1, 2, 9, 3, 9, 4, 5, 9, 6, 9, 7, 9]] * 200)  # 6 lines
    given = line_infill_given(ids, is_newline, np.random.default_rng(0), 0.1, 0.9)
    lines = np.concatenate([[0], np.cumsum(ids[0] == 9)[:-1]])
    fractions = []
    for row in given:
        masked_lines = sorted(set(lines[~row]))
        assert masked_lines == list(range(masked_lines[0], masked_lines[-1] + 1))  # contiguous
        for line in set(lines):  # whole lines: a line is all given or all masked
            assert len(set(row[lines == line])) == 1
        fractions.append(len(masked_lines) / 6)
    assert min(fractions) >= 1 / 6 and max(fractions) <= 5 / 6 and len(set(fractions)) >= 4


def test_loader_gives_line_masks_reproducibly_after_resume():
    is_newline = np.zeros(10, dtype=bool)
    is_newline[9] = True
    seqs = np.tile(np.array([1, 2, 9, 3, 9, 4, 9, 5, 9], dtype=np.int64), (20, 1))
    loader = BatchLoader(seqs, 4, seed=1, line_infill=(0.1, 0.9), is_newline=is_newline)
    next(loader)
    state = loader.state_dict()
    expected = next(loader).given
    again = BatchLoader(seqs, 4, seed=1, line_infill=(0.1, 0.9), is_newline=is_newline)
    again.load_state_dict(state)
    assert (next(again).given == expected).all() and (~expected).any() and expected.any()
    with pytest.raises(ConfigError, match="needs the tokenizer's newline table"):
        BatchLoader(seqs, 4, line_infill=(0.1, 0.9))


def test_parallel_harvest_equals_the_one_process_harvest(monkeypatch):
    """The pool parses files in any order; the merge keeps sorted-file order and the first file
    of a duplicated text, so 1 and 3 workers give the same lists (a sample of 120 files)."""
    root, files = code_corpus._stdlib_files()
    sample = files[::max(1, len(files) // 120)]
    by_workers = {}
    for workers in (1, 3):
        monkeypatch.setattr(code_corpus, "_workers", lambda w=workers: w)
        by_workers[workers] = code_corpus._harvest(root, sample, 10)
    assert by_workers[1] == by_workers[3]
    texts = by_workers[1]["train"] + [t for _, t in by_workers[1]["val"]]
    assert len(texts) == len(set(texts)) > 100 and by_workers[1]["val"]


def test_a_form_feed_between_functions_does_not_shift_the_cut(tmp_path):
    """ast numbers lines at newlines only (a stdlib built by Debian has form feeds between
    sections): the functions after one are cut whole, not shifted or refused."""
    body = "def {}(x):\n    y = x\n    y += 1\n    y *= 2\n    return y\n"
    path = tmp_path / "ff.py"
    path.write_text(body.format("a") + "\x0c\n" + body.format("b") + "\x0c\n\x0c\n" + body.format("c"))
    assert code_corpus._file_functions(path) == [body.format(n).rstrip("\n") for n in "abc"]
