"""``pathbench study bench train``: where a training step's time goes (speed targets live here, not in tests).

For each method: tokens/s of the shared trainer and of a bare PyTorch loop on the same model,
method and batches; inside the bare loop, the share of a step spent noising (prior, target,
interpolation: ``PathMethod.noisy``) against the model's forward, loss and backward; achieved
FLOP/s (6·N + attention per token) against this machine's measured fp32 matmul peak; and the
peak memory of a step in float32 (B,S,V) units. ``pathbench.studies.bench_sample`` does the same for the
samplers; the measuring tools (model timer, peak memory) are shared from here.

Batches are uniformly random token ids of the run's vocabulary: throughput does not depend on
which tokens are fed, and this keeps the benchmark free of tokenizer training.
"""

from __future__ import annotations

import os
import tempfile
import threading
import time
from contextlib import contextmanager
from pathlib import Path

import torch

from pathbench.core.registry import METHODS
from pathbench.data.corpus import Batch
from pathbench.engine.methods import Method, PathMethod
from pathbench.engine.model import Transformer, model_config
from pathbench.engine.trainer import TrainConfig, build_optimizers, train


def sync(device: str) -> None:
    if str(device).startswith("cuda"):
        torch.cuda.synchronize()


def matmul_peak_flops(size: int = 1024, repeats: int = 20, device: str = "cpu") -> float:
    """Measured fp32 FLOP/s of a square matmul, the ceiling a training step can approach."""
    a = torch.randn(size, size, device=device)
    b = torch.randn(size, size, device=device)
    for _ in range(3):
        a @ b
    sync(device)
    start = time.perf_counter()
    for _ in range(repeats):
        a @ b
    sync(device)
    return 2 * size**3 * repeats / (time.perf_counter() - start)


class Stopwatch:
    """Accumulated wall time of the calls it wraps (synchronised on CUDA)."""

    def __init__(self, device: str) -> None:
        self.device, self.seconds, self.calls = device, 0.0, 0

    def wrap(self, fn):
        def timed(*args, **kwargs):
            sync(self.device)
            start = time.perf_counter()
            out = fn(*args, **kwargs)
            sync(self.device)
            self.seconds += time.perf_counter() - start
            self.calls += 1
            return out
        return timed

    def reset(self) -> None:
        self.seconds, self.calls = 0.0, 0


@contextmanager
def timed_forward(model: torch.nn.Module, device: str):
    """Times every forward of ``model`` (the denoiser) while the block runs."""
    watch = Stopwatch(device)
    model.forward = watch.wrap(model.forward)  # an instance attribute shadows the class's
    try:
        yield watch
    finally:
        del model.forward


def _rss_bytes() -> int:
    with open("/proc/self/statm") as handle:
        return int(handle.read().split()[1]) * os.sysconf("SC_PAGE_SIZE")


class PeakMemory:
    """Peak memory above the level at entry, in bytes: CUDA's allocator counter on a GPU; on
    the CPU the resident set sampled every 2 ms by a thread (tensors of (B,S,V) size are
    mmapped and given back on free, so the resident set follows the live tensors; one pass over
    such a tensor takes longer than 2 ms)."""

    def __init__(self, device: str) -> None:
        self.device, self.peak = str(device), 0

    def __enter__(self) -> "PeakMemory":
        if self.device.startswith("cuda"):
            torch.cuda.synchronize()
            torch.cuda.reset_peak_memory_stats()
            self._base = torch.cuda.memory_allocated()
            return self
        self._base, self._max, self._stop = _rss_bytes(), _rss_bytes(), threading.Event()

        def watch() -> None:
            while not self._stop.is_set():
                self._max = max(self._max, _rss_bytes())
                time.sleep(0.002)

        self._thread = threading.Thread(target=watch, daemon=True)
        self._thread.start()
        return self

    def __exit__(self, *exc) -> None:
        if self.device.startswith("cuda"):
            torch.cuda.synchronize()
            self.peak = torch.cuda.max_memory_allocated() - self._base
            return
        self._stop.set()
        self._thread.join()
        self.peak = max(self._max, _rss_bytes()) - self._base


def bsv_units(nbytes: float, batch: int, seq_len: int, vocab: int) -> float:
    """``nbytes`` in units of one float32 (B, S, V) tensor."""
    return nbytes / (4 * batch * seq_len * vocab)


class RandomBatches:
    """An endless, resumable stream of random (B, S) token batches."""

    def __init__(self, batch: int, seq_len: int, vocab: int, seed: int = 0) -> None:
        self.shape, self.vocab, self.seed, self.index = (batch, seq_len), vocab, seed, 0

    def __iter__(self):
        return self

    def __next__(self) -> Batch:
        g = torch.Generator().manual_seed(self.seed * 1_000_003 + self.index)
        self.index += 1
        ids = torch.randint(self.vocab, self.shape, generator=g)
        return Batch(ids, torch.zeros_like(ids, dtype=torch.bool))

    def state_dict(self) -> dict:
        return {"index": self.index}

    def load_state_dict(self, state: dict) -> None:
        self.index = state["index"]


def _bare_loop(method: Method, model: torch.nn.Module, batches, steps: int, cfg: TrainConfig,
               device: str, noising: Stopwatch | None = None) -> float:
    """The reference: loss, backward, clip, AdamW step — nothing else. Returns seconds; with
    ``noising`` the path method's noising inside the loss is timed on it."""
    optimizers = build_optimizers(model, cfg)
    generator = torch.Generator(device).manual_seed(0)
    if noising is not None and isinstance(method, PathMethod):
        method.noisy = noising.wrap(method.noisy)
    start = time.perf_counter()
    for _ in range(steps):
        batch = next(batches)
        loss = method.loss(model, batch.ids.to(device), batch.given.to(device), generator)
        loss.backward()
        torch.nn.utils.clip_grad_norm_(model.parameters(), cfg.grad_clip)
        for opt in optimizers:
            opt.step()
            opt.zero_grad(set_to_none=True)
    sync(device)
    if "noisy" in vars(method):
        del method.noisy
    return time.perf_counter() - start


def bench_train(method_name: str = "kl", preset: str = "tiny", vocab: int = 8192, seq_len: int = 128,
                batch_size: int = 16, steps: int = 20, device: str = "cpu") -> list[dict]:
    """Per method (a comma-separated list): trainer vs bare loop tokens/s, the noising share of
    a step, achieved FLOP/s and peak step memory; prints and returns the figures.

    Both loops run ``steps`` timed steps after a 2-step warm-up on a fresh copy of the same
    model; the trainer's time includes what a real run pays: LR schedule, metrics, the final
    held-out evaluation (one batch) and the final checkpoint."""
    peak_flops = matmul_peak_flops(device=device)
    rows = []
    for name in method_name.split(","):
        rows.append(_bench_train_one(name.strip(), preset, vocab, seq_len, batch_size, steps, device, peak_flops))
    return rows


def _bench_train_one(method_name: str, preset: str, vocab: int, seq_len: int, batch_size: int, steps: int,
                     device: str, peak: float) -> dict:
    method: Method = METHODS.build(method_name)
    cfg_model = model_config(preset, vocab + method.extra_tokens, seq_len, causal=method.causal,
                             time_cond=method.time_cond)
    tokens = steps * batch_size * seq_len
    cfg = TrainConfig(steps=steps, batch_size=batch_size, warmup=1, eval_every=10**9,
                      eval_batches=1, ckpt_every=10**9, log_every=10, progress=False)

    def fresh_model() -> Transformer:
        torch.manual_seed(0)
        return Transformer(cfg_model).to(device)

    def batches(seed: int = 0) -> RandomBatches:
        return RandomBatches(batch_size, seq_len, vocab, seed=seed)

    _bare_loop(method, fresh_model(), batches(), 2, cfg, device)
    noising = Stopwatch(device)
    model = fresh_model()
    bare_s = _bare_loop(method, model, batches(), steps, cfg, device, noising)
    with PeakMemory(device) as memory:  # apart from the timed loop: the watcher costs CPU
        _bare_loop(method, fresh_model(), batches(), 2, cfg, device)
    with tempfile.TemporaryDirectory() as tmp:
        warm = TrainConfig(**{**cfg.__dict__, "steps": 2})
        train(method, fresh_model(), batches(), lambda: [next(batches(1))], warm, Path(tmp) / "warm", device=device)
        start = time.perf_counter()
        train(method, fresh_model(), batches(), lambda: [next(batches(1))], cfg, Path(tmp) / "run", device=device)
        sync(device)
        trainer_s = time.perf_counter() - start
    flops = model.flops_per_token(seq_len) * tokens
    result = {
        "method": method_name, "preset": preset, "params": model.num_params(),
        "tokens_per_s_trainer": tokens / trainer_s, "tokens_per_s_bare": tokens / bare_s,
        "trainer_overhead": trainer_s / bare_s - 1, "noising_share": noising.seconds / bare_s,
        "noising_ms_per_step": 1000 * noising.seconds / steps, "step_ms": 1000 * bare_s / steps,
        "peak_memory_bsv": bsv_units(memory.peak, batch_size, seq_len, vocab),
        "matmul_peak_gflops": peak / 1e9, "achieved_gflops": flops / trainer_s / 1e9,
        "fraction_of_peak": flops / trainer_s / peak,
    }
    noise = (f"noising {result['noising_ms_per_step']:.0f} ms = {100 * result['noising_share']:.1f}% "
             f"of a step (target <= 20%)" if isinstance(method, PathMethod) else "no noising (token method)")
    print(f"bench train  method={method_name} preset={preset} params={result['params']:,} "
          f"V={vocab} S={seq_len} B={batch_size} steps={steps} device={device}")
    print(f"  trainer      {result['tokens_per_s_trainer']:>10,.0f} tokens/s")
    print(f"  bare loop    {result['tokens_per_s_bare']:>10,.0f} tokens/s   "
          f"(trainer overhead {100 * result['trainer_overhead']:+.1f}%, target within 10%)")
    print(f"  step         {result['step_ms']:>10,.0f} ms: {noise}; the rest is the model's forward, "
          f"loss, backward and optimizer")
    print(f"  peak memory  {result['peak_memory_bsv']:>10.1f} x float32 (B,S,V) above the loaded model")
    print(f"  achieved     {result['achieved_gflops']:>10,.1f} GFLOP/s = "
          f"{100 * result['fraction_of_peak']:.1f}% of the measured fp32 matmul peak "
          f"{result['matmul_peak_gflops']:,.1f} GFLOP/s")
    return result
