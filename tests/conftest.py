"""Shared fixtures: one small-vocabulary packing of the embedded BBC corpus per test session."""

import os

import pytest

os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("HF_DATASETS_OFFLINE", "1")

SMALL = {"vocab_size": 512, "seq_len": 32}


@pytest.fixture(scope="session")
def data_cache(tmp_path_factory):
    return tmp_path_factory.mktemp("data-cache")


@pytest.fixture(scope="session")
def bbc_small(data_cache):
    from harness.data import prepare_data

    return prepare_data("bbc", "bpe", SMALL["seq_len"], data_cache, vocab_size=SMALL["vocab_size"])
