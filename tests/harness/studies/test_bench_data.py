"""`pathbench study bench data` runs end to end on a tiny generated corpus (no timing asserts)."""

import json
import tempfile
from pathlib import Path

from pathbench.cli import main
from pathbench.studies.bench_data import bench_data, write_corpus


def test_the_generated_corpus_is_distinct_bbc_paragraphs(tmp_path):
    documents = write_corpus(tmp_path / "c.jsonl", 200_000, seed=1)
    lines = (tmp_path / "c.jsonl").read_text().splitlines()
    texts = [json.loads(line)["text"] for line in lines]
    assert documents == len(texts) and len(set(texts)) == len(texts)
    assert (tmp_path / "c.jsonl").stat().st_size >= 200_000 and all(3 <= t.count("\n\n") + 1 <= 12 for t in texts)


def test_bench_data_prepares_the_corpus_and_reports_throughput_and_memory(capsys):
    before = set(Path(tempfile.gettempdir()).glob("pathbench-bench-data-*"))
    r = bench_data(size_gb=0.001, tokenizer="bpe", vocab_size=300, seq_len=64, workers=1)
    assert 1_000_000 <= r.corpus_bytes < 2_000_000 and r.train_tokens > 100_000 and r.val_tokens > 0
    assert r.tokens_per_s > 0 and r.tokens_per_cpu_s > 0 and r.cpu_seconds > 0
    assert r.main_peak_rss_mb >= r.main_rss_before_mb > 0
    assert set(Path(tempfile.gettempdir()).glob("pathbench-bench-data-*")) == before  # cleaned up
    out = capsys.readouterr().out
    assert "tokens per CPU-second" in out and "whole tree" in out


def test_bench_data_refuses_bad_workers(capsys):
    assert main(["study", "bench", "data", "--workers", "0", "--size-gb", "0.001"]) == 2
    assert "data workers = 0 must be >= 1" in capsys.readouterr().err
