"""Tokenizers: BPE trained here, HF by local path, tiktoken GPT-2 offline set-up, save/load."""

import importlib.util

import pytest

from pathbench.core.errors import ConfigError
from pathbench.data.corpus import load_corpus
from pathbench.data.tokenizer import (
    GPT2_CACHE_NAME,
    BPETokenizer,
    build_tokenizer,
    load_tokenizer,
    setup_gpt2_bpe,
    tokenizer_identity,
    whisper_gpt2_asset,
)

TEXT = "Quarterly profits at US media giant TimeWarner jumped 76% to $1.13bn (£600m)."


@pytest.fixture(scope="module")
def small_bpe():
    return build_tokenizer("bpe", load_corpus("bbc")[:200], vocab_size=512)


def save_as_hf(tokenizer, folder, **kwargs):
    from transformers import PreTrainedTokenizerFast

    PreTrainedTokenizerFast(tokenizer_object=tokenizer, **kwargs).save_pretrained(folder)
    return folder


def test_bpe_round_trip_save_and_reload(small_bpe, tmp_path):
    tok = small_bpe
    assert (tok.name, tok.spec, tok.vocab_size) == ("bpe", "bpe", 512)
    assert tok.decode([tok.eos_id]) == "<|endoftext|>"
    ids = tok.encode(TEXT)
    assert max(ids) < 512 and tok.decode(ids) == TEXT and tok.encode_batch([TEXT, "x"])[0] == ids
    tok.save(tmp_path / "tok")
    assert (tmp_path / "tok" / "tokenizer.json").is_file()
    again = load_tokenizer(tmp_path / "tok")
    assert isinstance(again, BPETokenizer) and again.encode(TEXT) == ids and again.eos_id == tok.eos_id


def test_build_with_save_dir_trains_only_on_the_given_texts(tmp_path):
    tok = build_tokenizer("bpe", ["aaaa bbbb"] * 20, vocab_size=270, save_dir=tmp_path / "t")
    assert load_tokenizer(tmp_path / "t").encode("aaaa bbbb") == tok.encode("aaaa bbbb")
    assert len(tok.encode("aaaa")) == 1 and len(tok.encode("zzzz")) > 1  # merges come from the texts


def test_hf_tokenizer_from_a_local_folder(small_bpe, tmp_path):
    folder = save_as_hf(small_bpe._tok, tmp_path / "hf", eos_token="<|endoftext|>", model_max_length=8)
    tok = build_tokenizer(f"hf:{folder}")
    assert tok.spec == f"hf:{folder}" and tok.vocab_size == 512 and tok.eos_id == small_bpe.eos_id
    assert tok.encode(TEXT) == small_bpe.encode(TEXT) and tok.decode(tok.encode(TEXT)) == TEXT  # no max-length cut
    tok.save(tmp_path / "saved")
    assert load_tokenizer(tmp_path / "saved").encode(TEXT) == small_bpe.encode(TEXT)


def test_local_hf_identity_follows_the_folder_content(small_bpe, tmp_path):
    folder = save_as_hf(small_bpe._tok, tmp_path / "hf", eos_token="<|endoftext|>")
    before = tokenizer_identity(f"hf:{folder}", 8192)
    save_as_hf(small_bpe._tok, folder, eos_token="<|endoftext|>", bos_token="<|endoftext|>")
    assert tokenizer_identity(f"hf:{folder}", 8192) != before
    assert tokenizer_identity("bpe", 512) != tokenizer_identity("bpe", 1024)
    assert tokenizer_identity("gpt2", 512) == tokenizer_identity("gpt2", 1024) == "gpt2"


def test_hf_errors(small_bpe, tmp_path):
    folder = save_as_hf(small_bpe._tok, tmp_path / "no-eos")
    with pytest.raises(ConfigError, match="has no EOS token"):
        build_tokenizer(f"hf:{folder}")
    with pytest.raises(ConfigError, match="tokenizer 'hf:no-such/model' cannot be loaded"):
        build_tokenizer("hf:no-such/model")


def hide_whisper(monkeypatch):
    real = importlib.util.find_spec
    monkeypatch.setattr(importlib.util, "find_spec",
                        lambda name, *a, **k: None if name == "whisper" else real(name, *a, **k))


def test_gpt2_without_its_bpe_file_says_how_to_provide_it(tmp_path, monkeypatch):
    monkeypatch.setenv("TIKTOKEN_CACHE_DIR", str(tmp_path))
    monkeypatch.setenv("PATHBENCH_CACHE", str(tmp_path / "empty-cache"))
    hide_whisper(monkeypatch)
    with pytest.raises(ConfigError) as err:
        build_tokenizer("gpt2")
    message = str(err.value)
    assert "\n" not in message and "run scripts/install.sh" in message and "openai-whisper==20250625" in message
    assert str(tmp_path / "empty-cache" / "gpt2.tiktoken") in message
    assert str(tmp_path / GPT2_CACHE_NAME) in message


def test_gpt2_setup_checks_the_whisper_asset(tmp_path, monkeypatch):
    fake = tmp_path / "site" / "whisper"
    (fake / "assets").mkdir(parents=True)
    (fake / "__init__.py").write_text("raise ImportError('only located, never imported')\n")
    (fake / "assets" / "gpt2.tiktoken").write_text("not the real file")
    monkeypatch.syspath_prepend(str(tmp_path / "site"))
    monkeypatch.setenv("TIKTOKEN_CACHE_DIR", str(tmp_path / "cache"))
    monkeypatch.setenv("PATHBENCH_CACHE", str(tmp_path / "pathbench-cache"))
    assert whisper_gpt2_asset() == fake / "assets" / "gpt2.tiktoken"
    with pytest.raises(ConfigError, match="is not the r50k_base file"):
        setup_gpt2_bpe()
    assert not (tmp_path / "cache" / GPT2_CACHE_NAME).exists()


def test_gpt2_the_file_install_extracts_comes_first_and_is_checked(tmp_path, monkeypatch):
    # scripts/install.sh puts whisper/assets/gpt2.tiktoken from the sdist into the pathbench cache
    monkeypatch.setenv("PATHBENCH_CACHE", str(tmp_path / "pathbench-cache"))
    monkeypatch.setenv("TIKTOKEN_CACHE_DIR", str(tmp_path / "cache"))
    (tmp_path / "pathbench-cache").mkdir()
    (tmp_path / "pathbench-cache" / "gpt2.tiktoken").write_text("truncated")
    assert whisper_gpt2_asset() == tmp_path / "pathbench-cache" / "gpt2.tiktoken"
    with pytest.raises(ConfigError, match="is not the r50k_base file"):
        setup_gpt2_bpe()


def test_gpt2_from_whisper_asset(tmp_path, monkeypatch):
    # scripts/install.sh extracts this file from openai-whisper's sdist (an older venv: the package)
    assert whisper_gpt2_asset() is not None, "openai-whisper is not installed: run scripts/install.sh"
    monkeypatch.setenv("TIKTOKEN_CACHE_DIR", str(tmp_path))
    tok = build_tokenizer("gpt2", save_dir=tmp_path / "saved")
    assert (tmp_path / GPT2_CACHE_NAME).is_file()
    assert (tok.vocab_size, tok.eos_id, tok.encode("Hello world")) == (50257, 50256, [15496, 995])
    assert tok.decode(tok.encode(TEXT + "<|endoftext|>")) == TEXT + "<|endoftext|>"
    assert load_tokenizer(tmp_path / "saved").encode(TEXT) == tok.encode(TEXT)


def test_bad_specs(tmp_path):
    with pytest.raises(ConfigError, match=r"unknown tokenizer 'sentencepiece'; known: bpe, hf:<name or path>, gpt2"):
        build_tokenizer("sentencepiece")
    with pytest.raises(ConfigError, match="vocab_size = 100 must be >= 257"):
        build_tokenizer("bpe", ["text"], vocab_size=100)
    with pytest.raises(ConfigError, match="no tokenizer saved in"):
        load_tokenizer(tmp_path)
