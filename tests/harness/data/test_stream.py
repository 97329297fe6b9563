"""Data at scale: the streamed, sharded build — the same tokens whatever the workers, a token
budget that stops the reading, memory bounded by a shard, a killed build resumed, one builder."""

import json
import os
import signal
import subprocess
import sys
import threading
import tracemalloc
from pathlib import Path

import numpy as np
import pytest

import pathbench.data.corpus as data
import pathbench.data.stream as stream
from pathbench.core.config import DataConfig, apply_overrides
from pathbench.core.errors import ConfigError
from pathbench.data.corpus import load_corpus, prepare_data, split_documents
from pathbench.data.stream import BuildProgress, data_workers

SHARD = 16 * 1024  # characters: ≈ 50 shards in the test corpus
ROOT = Path(__file__).resolve().parents[3]
DOCS = 1500


def write_jsonl(path: Path, documents: int, seed: int = 0) -> Path:
    """``documents`` distinct documents of 40–160 pseudo-words (≈ 0.5 kB each)."""
    rng = np.random.default_rng(seed)
    words = [f"w{i}x" for i in range(300)] + ["the", "of", "and", "a", "in"] * 20
    with open(path, "w") as f:
        for d in range(documents):
            picks = rng.integers(0, len(words), size=rng.integers(40, 160))
            f.write(json.dumps({"text": f"doc {d}: " + " ".join(words[i] for i in picks)}) + "\n")
    return path


@pytest.fixture(scope="module")
def corpus(tmp_path_factory):
    return write_jsonl(tmp_path_factory.mktemp("stream") / "c.jsonl", DOCS)  # ≈ 0.8 MB


def build(corpus: Path, cache: Path, **options):
    return prepare_data(f"json:{corpus}", "bpe", 16, cache, vocab_size=300, val_fraction=0.1,
                        shard_chars=SHARD, **options)


def tokens(packed) -> tuple[bytes, bytes]:
    return ((packed.folder / "train.bin").read_bytes(), (packed.folder / "val.bin").read_bytes())


@pytest.fixture(scope="module")
def one_worker(corpus, tmp_path_factory):
    return build(corpus, tmp_path_factory.mktemp("one"), workers=1)


def test_the_tokens_do_not_depend_on_the_workers_or_the_shard_size(corpus, one_worker, tmp_path):
    two = build(corpus, tmp_path / "two", workers=2)
    assert one_worker.info["shards"] > 10 and two.info["workers"] == 2
    assert tokens(two) == tokens(one_worker)
    whole = prepare_data(f"json:{corpus}", "bpe", 16, tmp_path / "whole", vocab_size=300, val_fraction=0.1,
                         workers=1)  # one shard: tokenised in this process
    assert whole.info["shards"] == 1 and tokens(whole) == tokens(one_worker)
    # and they are the documents, split by hash, tokenised and joined with EOS in corpus order
    tok = one_worker.tokenizer
    for split, docs in zip((one_worker.train, one_worker.val), split_documents(load_corpus(f"json:{corpus}"), 0.1)):
        expected = np.concatenate([np.append(tok.encode(d), tok.eos_id) for d in docs])
        flat = np.asarray(split).reshape(-1)
        assert len(expected) - 16 < len(flat) and np.array_equal(flat, expected[: len(flat)])


def test_a_token_budget_stops_reading_the_corpus(corpus, one_worker, tmp_path, monkeypatch):
    read = []
    real = data.iter_documents

    def counted(spec):
        for doc in real(spec):
            read.append(doc)
            yield doc

    monkeypatch.setattr(data, "iter_documents", counted)
    budget = 50_000  # ≈ 11 % of the corpus's training tokens
    packed = build(corpus, tmp_path, workers=1, max_tokens=budget)
    info = packed.info
    assert info["train"]["tokens"] == budget and info["budget_reached"] and packed.train.shape == (budget // 16, 16)
    full = np.asarray(one_worker.train).reshape(-1)
    assert np.array_equal(np.asarray(packed.train).reshape(-1), full[:budget])  # the same first tokens
    val = np.asarray(packed.val).reshape(-1)
    assert 0 < len(val) < one_worker.val.size and np.array_equal(val, np.asarray(one_worker.val).reshape(-1)[: len(val)])
    used = info["train"]["documents"] + info["val"]["documents"]
    tokenised = len(read) - DOCS  # the BPE tokenizer's pass reads the training split first
    assert used < DOCS / 5 and used <= tokenised < used + 2 * SHARD // 150  # read a shard or two beyond
    assert packed.folder != one_worker.folder  # the budget is part of the cache key


def generated(documents: int):
    """``documents`` pseudo-word documents (≈ 0.5 kB each), generated one at a time."""
    rng = np.random.default_rng(documents)
    for d in range(documents):
        yield f"doc {d}: " + " ".join(f"w{i}x" for i in rng.integers(0, 300, size=rng.integers(40, 160)))


def test_peak_memory_is_bounded_by_a_shard_not_the_corpus(tmp_path, monkeypatch):
    """The tokenising pass's Python memory (tracemalloc: strings, token lists, arrays) for a
    corpus and one 4 x larger, streamed from a generator: a real source buffers a fixed amount
    of its own (datasets reads JSON in 10 MB chunks, the BPE trainer 256 documents) that would
    hide the pipeline's in a corpus this small. The peak is taken once the tokenizer is trained
    (on a fixed sample)."""
    real = data.build_tokenizer

    def trained_then_reset(spec, texts, vocab_size, save_dir):  # on a fixed sample: quicker
        tokenizer = real(spec, generated(100), vocab_size, save_dir=save_dir)
        tracemalloc.reset_peak()
        return tokenizer

    monkeypatch.setattr(data, "build_tokenizer", trained_then_reset)
    monkeypatch.setattr(data, "iter_documents", lambda spec: generated(int(spec.split("/")[-1])))
    peaks, chars = {}, {}
    for documents in (100, 600, 2400):  # the first one takes the one-off imports out of the measure
        tracemalloc.start()
        prepare_data(f"hf:generated/{documents}", "bpe", 16, tmp_path, vocab_size=300, shard_chars=SHARD, workers=1)
        peaks[documents] = tracemalloc.get_traced_memory()[1]
        tracemalloc.stop()
        chars[documents] = sum(len(d) for d in generated(documents))
    # the old pipeline held every document and its tokens as Python ints: ≈ 10 x the text, growing with it
    assert abs(peaks[2400] - peaks[600]) < (chars[2400] - chars[600]) / 10, (peaks, chars)
    assert peaks[2400] < chars[2400] / 4, (peaks, chars)


KILL_AT_SHARD = """
import os, signal, sys
import pathbench.data.stream as stream
save = stream.BuildProgress.save
def save_then_die(self, folder):
    if self.shards == 6:  # shard 6 is on disk, its progress is not: the next build cuts it off
        os.kill(os.getpid(), signal.SIGKILL)
    save(self, folder)
stream.BuildProgress.save = save_then_die
from pathbench.data.corpus import prepare_data
prepare_data("json:" + sys.argv[1], "bpe", 16, sys.argv[2], vocab_size=300, val_fraction=0.1,
             shard_chars=int(sys.argv[3]), workers=1)
"""


def test_a_killed_build_resumes_and_gives_the_same_cache(corpus, one_worker, tmp_path, monkeypatch):
    cache = tmp_path / "cache"
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    done = subprocess.run([sys.executable, "-c", KILL_AT_SHARD, str(corpus), str(cache), str(SHARD)], env=env,
                          capture_output=True, text=True, timeout=300)
    assert done.returncode == -signal.SIGKILL, done.stderr[-2000:]
    building = list(cache.glob(".building-data-*"))
    assert len(building) == 1 and not list(cache.glob("data-*"))  # nothing trusted yet
    progress = json.loads((building[0] / "progress.json").read_text())
    assert progress["shards"] == 5 and not progress["finished"]
    train_bytes = (building[0] / "train.bin").stat().st_size
    assert train_bytes > progress["train_tokens"] * 2  # shard 6's tokens were written past the record
    encoded = []
    real = stream.encode_shard
    monkeypatch.setattr(stream, "encode_shard", lambda *a: encoded.append(1) or real(*a))
    resumed = build(corpus, cache, workers=1)
    assert resumed.info["resumed"] and len(encoded) == one_worker.info["shards"] - 5
    assert tokens(resumed) == tokens(one_worker)
    assert sorted(p.name for p in cache.iterdir()) == [resumed.folder.name]  # no lock, no building folder


def test_a_build_of_another_key_is_not_resumed(corpus, one_worker, tmp_path):
    key = json.loads(one_worker.info["key"])
    stale = tmp_path / f".building-{one_worker.folder.name}"
    (stale / "tokenizer").mkdir(parents=True)
    one_worker.tokenizer.save(stale / "tokenizer")
    (stale / "train.bin").write_bytes(b"\1" * 4000)
    BuildProgress(json.dumps(key[:-1] + [123]), documents=100, train_tokens=1000).save(stale)
    assert BuildProgress.read(stale, one_worker.info["key"], 2) is None
    assert tokens(build(corpus, tmp_path, workers=1)) == tokens(one_worker)


def test_one_process_builds_and_the_others_wait_for_it(corpus, one_worker, tmp_path, monkeypatch):
    builds, results = [], {}
    real = data._build
    monkeypatch.setattr(data, "_build", lambda *a: builds.append(1) or real(*a))
    monkeypatch.setattr(data, "WAIT_POLL_S", 0.05)

    def prepare(name, **options):
        results[name] = build(corpus, tmp_path, workers=1, **options)

    threads = [threading.Thread(target=prepare, args=("rank1",), kwargs={"builder": False})]
    threads += [threading.Thread(target=prepare, args=(f"task{i}",)) for i in range(2)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=300)
    assert len(builds) == 1 and sorted(results) == ["rank1", "task0", "task1"]
    assert all(tokens(r) == tokens(one_worker) for r in results.values())
    assert sorted(p.name for p in tmp_path.iterdir()) == [one_worker.folder.name]  # the lock file is gone


def test_a_rank_that_must_not_build_stops_when_no_process_builds(corpus, tmp_path, monkeypatch):
    monkeypatch.setattr(data, "WAIT_POLL_S", 0.05)
    monkeypatch.setattr(data, "WAIT_GRACE_S", 0.2)
    with pytest.raises(ConfigError, match=r"no process is building the data cache .*LOCAL_RANK 0") as err:
        build(corpus, tmp_path, builder=False)
    assert "\n" not in str(err.value) and not list(tmp_path.iterdir())


def test_bad_budget_and_worker_values_give_one_line(monkeypatch, tmp_path):
    assert apply_overrides(DataConfig(), {"max_tokens": 1.3e10}, "data").max_tokens == 13_000_000_000
    for bad in ("lots", 2.5, 0, True):
        with pytest.raises(ConfigError, match=r"data.max_tokens = .* must be a whole number of training tokens"):
            apply_overrides(DataConfig(), {"max_tokens": bad}, "data")
    with pytest.raises(ConfigError, match=r"data.max_tokens = 10 is less than one sequence of seq_len = 16"):
        prepare_data("bbc", "bpe", 16, tmp_path, max_tokens=10)
    with pytest.raises(ConfigError, match="does not apply to the oracle corpus"):
        prepare_data("oracle:V=64", "oracle", 12, tmp_path, max_tokens=1000)
    monkeypatch.setenv(stream.WORKERS_ENV, "many")
    with pytest.raises(ConfigError, match="PATHBENCH_DATA_WORKERS = 'many' is not a whole number"):
        data_workers()
    monkeypatch.setenv(stream.WORKERS_ENV, "3")
    assert data_workers() == 3 and data_workers(1) == 1
    monkeypatch.delenv(stream.WORKERS_ENV)
    assert data_workers() == len(os.sched_getaffinity(0))


def test_pathbench_prepare_names_the_cache_a_run_reads(corpus, one_worker, capsys, monkeypatch):
    from pathbench.cli import main

    monkeypatch.setattr(data, "_build", lambda *a: pytest.fail("rebuilt"))
    options = [f"data.corpus=json:{corpus}", "data.vocab_size=300", "data.seq_len=16", "data.val_fraction=0.1",
               f"data.cache_dir={one_worker.folder.parent}"]
    assert main(["prepare", "--workers", "1", *options]) == 0  # the same key as the run's: found, not rebuilt
    out = capsys.readouterr().out
    assert out.startswith(f"{one_worker.folder}: {one_worker.info['train']['tokens']:,} train and ")
    assert main(["prepare", "lr=3e-4", *options]) == 2
    assert "takes data.* options only, not train.lr" in capsys.readouterr().err


def test_the_build_lock_is_seen_while_held_and_gone_after(tmp_path):
    from pathbench.core.io import exclusive, is_locked

    lock = tmp_path / ".data-x.lock"
    assert not is_locked(lock)
    with exclusive(lock, remove=True):
        assert is_locked(lock) and lock.exists()
    assert not is_locked(lock) and not lock.exists()
