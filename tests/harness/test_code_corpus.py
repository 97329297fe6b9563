"""The stdlib code corpus and line-masked infilling batches."""

import ast

import numpy as np
import pytest

from harness.code_corpus import harvest_stdlib_functions
from harness.data import BatchLoader, line_infill_given, load_corpus
from harness.errors import ConfigError


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
    with pytest.raises(ConfigError, match="line_infill needs the tokenizer's newline table"):
        BatchLoader(seqs, 4, line_infill=(0.1, 0.9))
