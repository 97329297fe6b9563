"""``pathbench study bench data``: the data pipeline at scale on a generated local corpus.

It writes a JSONL corpus of ``size_gb`` GB into a temporary folder (documents of 3–12 real
paragraphs of the embedded BBC News corpus drawn at random: English text, so the tokenizer
works as it would on web text, and every document different, so the hash split is the real
one), prepares it through the same ``json:`` streaming path and process pool a run uses, and
prints the build's throughput (tokens/s and MB/s in all and per worker) and its peak memory:
the resident sets of the main process, of its largest worker and of their sum, sampled every
50 ms (``psutil``, where installed; else the main process's ``getrusage`` peak), against the
corpus's size. The
corpus and the cache are deleted afterwards unless ``keep`` names a folder.
"""

from __future__ import annotations

import json
import resource
import shutil
import tempfile
import threading
import time
from dataclasses import asdict, dataclass
from pathlib import Path

import numpy as np

try:  # optional (not a dependency): the whole-tree figure needs it
    import psutil
except ImportError:  # pragma: no cover - installed with accelerate here
    psutil = None

from pathbench.data.corpus import load_corpus, prepare_data
from pathbench.data.stream import SHARD_CHARS, data_workers
from pathbench.studies.bench import _rss_bytes


def write_corpus(path: Path, size_bytes: int, seed: int = 0) -> int:
    """A JSONL file of about ``size_bytes`` bytes of BBC paragraphs recombined; its documents."""
    paragraphs = [p.strip() for doc in load_corpus("bbc") for p in doc.split("\n\n") if p.strip()]
    rng = np.random.default_rng(seed)
    written = documents = 0
    with open(path, "w", encoding="utf-8") as f:
        while written < size_bytes:
            picks = rng.integers(0, len(paragraphs), size=(256, 12))  # ≈ 0.8 MB per write
            counts = rng.integers(3, 13, size=256)
            lines = "".join(json.dumps({"text": "\n\n".join(paragraphs[i] for i in row[:n])}) + "\n"
                            for row, n in zip(picks, counts))
            f.write(lines)
            written += len(lines.encode("utf-8"))
            documents += len(counts)
    return documents


def _cpu_seconds() -> float:
    """User + system CPU time of this process and of its children that have ended."""
    return sum(u.ru_utime + u.ru_stime for u in (resource.getrusage(resource.RUSAGE_SELF),
                                                 resource.getrusage(resource.RUSAGE_CHILDREN)))


class TreeMemory:
    """Peak resident sets, sampled every ``every`` s by a thread: of this process, of its largest
    child (a pool worker) and of their sum. (``getrusage``'s children figure cannot serve: a
    spawned worker's high-water mark includes the parent's pages it was forked with.)"""

    def __init__(self, every: float = 0.05) -> None:
        self.every, self.main, self.worker, self.tree = every, 0, 0, 0
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._watch, daemon=True)

    def _watch(self) -> None:
        me = psutil.Process()
        while not self._stop.is_set():
            main = me.memory_info().rss
            children = []
            for proc in me.children(recursive=True):
                try:
                    children.append(proc.memory_info().rss)
                except psutil.Error:  # a worker that just exited
                    pass
            self.main, self.worker = max(self.main, main), max([self.worker, *children])
            self.tree = max(self.tree, main + sum(children))
            time.sleep(self.every)

    def __enter__(self) -> TreeMemory:
        if psutil is not None:
            self._thread.start()
        return self

    def __exit__(self, *exc) -> None:
        self._stop.set()
        if self._thread.is_alive():
            self._thread.join()


@dataclass
class DataBench:
    corpus_bytes: int
    documents: int
    tokenizer: str
    workers: int
    shard_chars: int
    seconds: float
    train_tokens: int
    val_tokens: int
    tokens_per_s: float
    tokens_per_s_per_worker: float
    cpu_seconds: float          # of the main process and its workers during the build
    tokens_per_cpu_s: float     # per core actually used: not diluted by a loaded machine
    mb_per_s: float
    mb_per_s_per_worker: float
    main_rss_before_mb: float
    main_peak_rss_mb: float
    worker_peak_rss_mb: float
    tree_peak_rss_mb: float


def bench_data(size_gb: float = 2.0, tokenizer: str = "gpt2", vocab_size: int = 8192, seq_len: int = 1024,
               workers: int | None = None, shard_chars: int = SHARD_CHARS, max_tokens: int | None = None,
               keep: Path | None = None) -> DataBench:
    workers = data_workers(workers)
    root = Path(tempfile.mkdtemp(prefix="pathbench-bench-data-", dir=keep))
    try:
        corpus = root / "corpus.jsonl"
        started = time.perf_counter()
        documents = write_corpus(corpus, int(size_gb * 1e9))
        size = corpus.stat().st_size
        print(f"bench data  wrote {size / 1e9:.2f} GB, {documents:,} documents in {time.perf_counter() - started:.0f} s "
              f"({corpus})")
        before = _rss_bytes()
        with TreeMemory() as tree:
            started, cpu = time.perf_counter(), _cpu_seconds()
            data = prepare_data(f"json:{corpus}", tokenizer, seq_len, root / "cache", vocab_size=vocab_size,
                                max_tokens=max_tokens, workers=workers, shard_chars=shard_chars)
            seconds = time.perf_counter() - started
        cpu = _cpu_seconds() - cpu  # the pool's workers have been waited for: they are counted
        main_peak = tree.main or resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024  # KiB on Linux
        train, val = data.info["train"]["tokens"], data.info["val"]["tokens"]
        read = size if max_tokens is None else size * (data.info["train"]["documents"] + data.info["val"]["documents"]) / documents
        result = DataBench(size, documents, tokenizer, workers, shard_chars, seconds, train, val,
                           (train + val) / seconds, (train + val) / seconds / workers, cpu, (train + val) / cpu, read / 1e6 / seconds,
                           read / 1e6 / seconds / workers, before / 2**20, main_peak / 2**20, tree.worker / 2**20,
                           tree.tree / 2**20)
    finally:
        if keep is None:
            shutil.rmtree(root, ignore_errors=True)
    _print(result)
    return result


def _print(r: DataBench) -> None:
    print(f"  prepared   tokenizer={r.tokenizer} workers={r.workers} shard={r.shard_chars / 2**20:.0f} M characters "
          f"in {r.seconds:.0f} s: {r.train_tokens:,} train + {r.val_tokens:,} validation tokens")
    print(f"  throughput {r.tokens_per_s:>12,.0f} tokens/s  {r.mb_per_s:6.1f} MB/s   "
          f"per worker {r.tokens_per_s_per_worker:,.0f} tokens/s  {r.mb_per_s_per_worker:.1f} MB/s")
    print(f"  per core   {r.tokens_per_cpu_s:>12,.0f} tokens per CPU-second ({r.cpu_seconds:,.0f} CPU-s of the main "
          f"process and the workers: the per-core rate on a machine shared with other work)")
    print(f"  memory     main process {r.main_rss_before_mb:,.0f} MB before, peak {r.main_peak_rss_mb:,.0f} MB; "
          f"largest worker {r.worker_peak_rss_mb:,.0f} MB; whole tree "
          f"{f'{r.tree_peak_rss_mb:,.0f} MB' if r.tree_peak_rss_mb else 'n/a (pip install psutil)'} "
          f"(corpus {r.corpus_bytes / 2**20:,.0f} MB)")
    print("  " + json.dumps(asdict(r)))
