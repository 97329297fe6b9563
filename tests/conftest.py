"""Shared fixtures: one small-vocabulary packing of the embedded BBC corpus per test session."""

import os

import pytest
import torch

os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("HF_DATASETS_OFFLINE", "1")

SMALL = {"vocab_size": 512, "seq_len": 32}


@pytest.fixture(scope="session")
def data_cache(tmp_path_factory):
    return tmp_path_factory.mktemp("data-cache")


@pytest.fixture(scope="session")
def bbc_small(data_cache):
    from pathbench.data.corpus import prepare_data

    return prepare_data("bbc", "bpe", SMALL["seq_len"], data_cache, vocab_size=SMALL["vocab_size"])


@pytest.fixture(scope="session")
def tiny_lm(tmp_path_factory):
    """A small random Llama with a BPE tokenizer, saved as a local folder (hf:<path>)."""
    from transformers import LlamaConfig, LlamaForCausalLM, PreTrainedTokenizerFast

    from pathbench.data.corpus import load_corpus
    from pathbench.data.tokenizer import build_tokenizer

    folder = tmp_path_factory.mktemp("tiny-lm")
    bpe = build_tokenizer("bpe", load_corpus("bbc")[:100], vocab_size=300)
    tok = PreTrainedTokenizerFast(tokenizer_object=bpe._tok, eos_token="<|endoftext|>", bos_token="<|endoftext|>")
    tok.save_pretrained(folder)
    torch.manual_seed(0)
    cfg = LlamaConfig(vocab_size=300, hidden_size=32, intermediate_size=64, num_hidden_layers=2,
                      num_attention_heads=2, num_key_value_heads=2, max_position_embeddings=32,
                      bos_token_id=tok.bos_token_id, eos_token_id=tok.eos_token_id)
    LlamaForCausalLM(cfg).save_pretrained(folder)
    return folder


@pytest.fixture(scope="session")
def kl_run(tmp_path_factory, data_cache, bbc_small):
    """A kl run trained for 60 tiny steps on the small BBC packing (a teacher, a tuning subject)."""
    from pathbench.cli import main

    folder = tmp_path_factory.mktemp("kl-run") / "kl"
    assert main(["train", "--method", "kl", "--steps", "60", "--out", str(folder), f"data.cache_dir={data_cache}",
                 f"data.vocab_size={SMALL['vocab_size']}", f"data.seq_len={SMALL['seq_len']}", "batch_size=16",
                 # AdamW: the teacher the flow-map and tuning tests were written for (its recipe is not under test)
                 "lr=3e-3", "warmup=10", "progress=false", "optimizer=adamw"]) == 0
    return folder
