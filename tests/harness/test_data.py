"""Corpora, tokenizers, packing, the split, the cache and the resumable loader."""

import json

import numpy as np
import pytest

from harness.data import BatchLoader, is_validation, load_corpus, pack, prepare_data
from harness.errors import ConfigError
from harness.tokenizer import BPETokenizer, build_tokenizer, load_tokenizer


def test_bbc_corpus_is_the_embedded_default():
    docs = load_corpus("bbc")
    assert len(docs) == 2225
    assert docs[0].startswith("Ad sales boost Time Warner profit")


def test_bpe_round_trip_and_reload(tmp_path):
    docs = load_corpus("bbc")[:200]
    tok = build_tokenizer("bpe", docs, vocab_size=512)
    assert tok.vocab_size == 512 and tok.decode([tok.eos_id]) == "<|endoftext|>"
    text = "Quarterly profits at US media giant TimeWarner jumped 76% to $1.13bn (£600m)."
    assert tok.decode(tok.encode(text)) == text
    tok.save(tmp_path / "tok")
    again = load_tokenizer(tmp_path / "tok")
    assert isinstance(again, BPETokenizer) and again.encode(text) == tok.encode(text)


def test_pack_joins_documents_with_eos_and_drops_the_tail():
    packed = pack([[1, 2, 3], [4, 5], [6, 7, 8, 9]], eos_id=0, seq_len=4)
    assert packed.tolist() == [[1, 2, 3, 0], [4, 5, 0, 6], [7, 8, 9, 0]]
    assert pack([[1]], eos_id=0, seq_len=4).shape == (0, 4)


def test_split_is_stable_and_disjoint(bbc_small):
    docs = load_corpus("bbc")
    val = [d for d in docs if is_validation(d, 0.05)]
    assert 0.03 < len(val) / len(docs) < 0.07
    # the split follows the text, not the position: reordering changes nothing, and the
    # corpus's exact duplicate articles always land on the same side (no leakage)
    assert sorted(val) == sorted(d for d in reversed(docs) if is_validation(d, 0.05))
    assert not set(val) & {d for d in docs if not is_validation(d, 0.05)}
    info = json.loads((bbc_small.folder / "done.json").read_text())
    assert info["train"]["documents"] + info["val"]["documents"] == 2225
    assert info["val"]["documents"] == len(val)


def test_packed_sequences_reproduce_the_tokenised_documents(bbc_small):
    tok = bbc_small.tokenizer
    train_docs = [d for d in load_corpus("bbc") if not is_validation(d, 0.05)]
    flat = np.asarray(bbc_small.train).reshape(-1)
    expected = []
    for doc in train_docs[:20]:
        expected += tok.encode(doc) + [tok.eos_id]
    assert flat[: len(expected)].tolist() == expected
    assert bbc_small.train.shape[1] == 32 and bbc_small.train.dtype == np.uint16


def test_cache_is_reused_not_rebuilt(bbc_small, data_cache, monkeypatch):
    import harness.data as data

    def fail(*args, **kwargs):
        raise AssertionError("rebuilt")

    monkeypatch.setattr(data, "_build", fail)
    again = prepare_data("bbc", "bpe", 32, data_cache, vocab_size=512)
    assert again.folder == bbc_small.folder and np.array_equal(again.train, bbc_small.train)
    assert not list(data_cache.glob(".building-*"))  # nothing half-written left behind


def test_loader_resumes_exactly(bbc_small):
    loader = BatchLoader(bbc_small.train, 8, seed=3)
    for _ in range(5):
        next(loader)
    state = loader.state_dict()
    expected = [next(loader).ids for _ in range(4)]
    resumed = BatchLoader(bbc_small.train, 8, seed=3)
    resumed.load_state_dict(state)
    assert all((a == next(resumed).ids).all() for a in expected)
    batch = expected[0]
    assert batch.shape == (8, 32) and not next(resumed).given.any()


def test_loader_crosses_epochs_and_validation_pass_is_complete():
    seqs = np.arange(10 * 4).reshape(10, 4)
    loader = BatchLoader(seqs, 3, seed=0)
    seen = [next(loader).ids[:, 0].tolist() for _ in range(3)]  # 9 of the 10 rows
    assert len({r for rows in seen for r in rows}) == 9
    next(loader)  # the 10th row is left and a new epoch begins
    assert loader.state_dict()["epoch"] == 1
    rows = [b.ids[:, 0].tolist() for b in BatchLoader(seqs, 3, shuffle=False).epoch()]
    assert sum(rows, []) == list(range(0, 40, 4))


def test_local_json_and_text_corpora_through_datasets(tmp_path):
    (tmp_path / "c.jsonl").write_text("\n".join(json.dumps({"text": f"doc {i}"}) for i in range(5)))
    assert load_corpus(f"json:{tmp_path / 'c.jsonl'}") == [f"doc {i}" for i in range(5)]
    (tmp_path / "c.txt").write_text("line one\nline two\n")
    assert load_corpus(f"text:{tmp_path / 'c.txt'}") == ["line one", "line two"]
    (tmp_path / "a.txt").write_text("first file")
    assert load_corpus(f"files:{tmp_path / 'a.txt'}") == ["first file"]


def test_hf_tokenizer_from_a_local_folder(tmp_path):
    from transformers import PreTrainedTokenizerFast

    bpe = build_tokenizer("bpe", load_corpus("bbc")[:50], vocab_size=300)
    PreTrainedTokenizerFast(tokenizer_object=bpe._tok, eos_token="<|endoftext|>").save_pretrained(tmp_path / "hf")
    tok = build_tokenizer(f"hf:{tmp_path / 'hf'}")
    assert tok.vocab_size == 300 and tok.eos_id == bpe.eos_id
    assert tok.encode("Time Warner profit") == bpe.encode("Time Warner profit")
    tok.save(tmp_path / "saved")
    assert load_tokenizer(tmp_path / "saved").encode("profit") == bpe.encode("profit")


def test_gpt2_without_its_bpe_file_says_how_to_provide_it(tmp_path, monkeypatch):
    import importlib.util

    monkeypatch.setenv("TIKTOKEN_CACHE_DIR", str(tmp_path))
    real = importlib.util.find_spec
    monkeypatch.setattr(importlib.util, "find_spec", lambda name, *a: None if name == "whisper" else real(name, *a))
    with pytest.raises(ConfigError, match="pip install --no-deps openai-whisper==20250625"):
        build_tokenizer("gpt2")


@pytest.mark.parametrize("call, message", [
    (lambda tmp: load_corpus("wiki"), "unknown corpus 'wiki'; known forms: bbc, hf:"),
    (lambda tmp: load_corpus(f"files:{tmp}/none/*.txt"), "corpus 'files:.*' is empty"),
    (lambda tmp: load_corpus(f"json:{tmp}/missing.jsonl"), "file .*missing.jsonl does not exist"),
    (lambda tmp: build_tokenizer("sentencepiece"), "unknown tokenizer 'sentencepiece'; known: bpe, hf:"),
    (lambda tmp: prepare_data("bbc", "bpe", 1, tmp), "seq_len = 1 must be >= 2"),
])
def test_bad_input(tmp_path, call, message):
    with pytest.raises(ConfigError, match=message):
        call(tmp_path)


def test_corpus_too_small_for_a_split(tmp_path):
    (tmp_path / "tiny.txt").write_text("only a few words here")
    with pytest.raises(ConfigError, match="too small for one train sequence of 4096 tokens"):
        prepare_data(f"files:{tmp_path / 'tiny.txt'}", "bpe", 4096, tmp_path / "cache", vocab_size=300)
    assert not list((tmp_path / "cache").glob("*"))
