"""``pathbench bench``: throughput figures, printed (speed targets live here, not in tests).

* ``bench train``: tokens/s of the shared trainer and of a bare PyTorch loop on the same
  model, method and batches, and achieved FLOP/s (6·N + attention per token) as a fraction of
  this machine's measured fp32 matmul peak.
* ``bench sample``: samples/s and tokens/s per sampler at given NFEs.

Batches are uniformly random token ids of the run's vocabulary: throughput does not depend on
which tokens are fed, and this keeps the benchmark free of tokenizer training.
"""

from __future__ import annotations

import tempfile
import time
from pathlib import Path

import torch

from harness.data import Batch
from harness.methods import Method
from harness.model import Transformer, model_config
from harness.registry import BASELINES
from harness.sampling import SamplerConfig
from harness.trainer import TrainConfig, build_optimizers, train


def matmul_peak_flops(size: int = 1024, repeats: int = 20, device: str = "cpu") -> float:
    """Measured fp32 FLOP/s of a square matmul, the ceiling a training step can approach."""
    a = torch.randn(size, size, device=device)
    b = torch.randn(size, size, device=device)
    for _ in range(3):
        a @ b
    _sync(device)
    start = time.perf_counter()
    for _ in range(repeats):
        a @ b
    _sync(device)
    return 2 * size**3 * repeats / (time.perf_counter() - start)


def _sync(device: str) -> None:
    if str(device).startswith("cuda"):
        torch.cuda.synchronize()


class _RandomBatches:
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
               device: str) -> float:
    """The reference: loss, backward, clip, AdamW step — nothing else. Returns seconds."""
    optimizers = build_optimizers(model, cfg)
    generator = torch.Generator(device).manual_seed(0)
    start = time.perf_counter()
    for _ in range(steps):
        batch = next(batches)
        loss = method.loss(model, batch.ids.to(device), batch.given.to(device), generator)
        loss.backward()
        torch.nn.utils.clip_grad_norm_(model.parameters(), cfg.grad_clip)
        for opt in optimizers:
            opt.step()
            opt.zero_grad(set_to_none=True)
    _sync(device)
    return time.perf_counter() - start


def bench_train(method_name: str = "kl", preset: str = "tiny", vocab: int = 8192, seq_len: int = 128,
                batch_size: int = 16, steps: int = 20, device: str = "cpu") -> dict:
    """Trainer vs bare loop tokens/s and achieved FLOP/s; prints and returns the figures.

    Both run ``steps`` timed steps after a 2-step warm-up on a fresh copy of the same model;
    the trainer's time includes what a real run pays: LR schedule, metrics, the final
    held-out evaluation (one batch) and the final checkpoint."""
    method: Method = BASELINES.build(method_name)
    cfg_model = model_config(preset, vocab + method.extra_tokens, seq_len, causal=method.causal,
                             time_cond=method.time_cond)
    tokens = steps * batch_size * seq_len
    cfg = TrainConfig(steps=steps, batch_size=batch_size, warmup=1, eval_every=10**9,
                      eval_batches=1, ckpt_every=10**9, log_every=10, progress=False)

    def fresh_model() -> Transformer:
        torch.manual_seed(0)
        return Transformer(cfg_model).to(device)

    def val() -> list:
        return [next(_RandomBatches(batch_size, seq_len, vocab, seed=1))]

    _bare_loop(method, fresh_model(), _RandomBatches(batch_size, seq_len, vocab), 2, cfg, device)
    bare_s = _bare_loop(method, fresh_model(), _RandomBatches(batch_size, seq_len, vocab), steps, cfg,
                        device)
    with tempfile.TemporaryDirectory() as tmp:
        warm = TrainConfig(**{**cfg.__dict__, "steps": 2})
        train(method, fresh_model(), _RandomBatches(batch_size, seq_len, vocab), val, warm,
              Path(tmp) / "warm", device=device)
        model = fresh_model()
        start = time.perf_counter()
        train(method, model, _RandomBatches(batch_size, seq_len, vocab), val, cfg, Path(tmp) / "run",
              device=device)
        _sync(device)
        trainer_s = time.perf_counter() - start
    peak = matmul_peak_flops(device=device)
    flops = model.flops_per_token(seq_len) * tokens
    result = {
        "method": method_name, "preset": preset, "params": model.num_params(),
        "tokens_per_s_trainer": tokens / trainer_s, "tokens_per_s_bare": tokens / bare_s,
        "trainer_overhead": trainer_s / bare_s - 1, "matmul_peak_gflops": peak / 1e9,
        "achieved_gflops": flops / trainer_s / 1e9, "fraction_of_peak": flops / trainer_s / peak,
    }
    print(f"bench train  method={method_name} preset={preset} params={result['params']:,} "
          f"V={vocab} S={seq_len} B={batch_size} steps={steps} device={device}")
    print(f"  trainer      {result['tokens_per_s_trainer']:>10,.0f} tokens/s")
    print(f"  bare loop    {result['tokens_per_s_bare']:>10,.0f} tokens/s   "
          f"(trainer overhead {100 * result['trainer_overhead']:+.1f}%)")
    print(f"  achieved     {result['achieved_gflops']:>10,.1f} GFLOP/s = "
          f"{100 * result['fraction_of_peak']:.1f}% of the measured fp32 matmul peak "
          f"{result['matmul_peak_gflops']:,.1f} GFLOP/s")
    return result


def bench_sample(method_name: str = "kl", preset: str = "tiny", vocab: int = 8192, seq_len: int = 128,
                 batch_size: int = 16, nfes: tuple[int, ...] = (16, 64),
                 samplers: tuple[str, ...] | None = None, device: str = "cpu") -> list[dict]:
    """Samples/s and tokens/s per sampler and NFE (an untrained model: speed only).
    ``samplers=None`` times every sampler the method has."""
    method: Method = BASELINES.build(method_name)
    torch.manual_seed(0)
    model = Transformer(model_config(preset, vocab + method.extra_tokens, seq_len, causal=method.causal,
                                     time_cond=method.time_cond)).to(device).eval()
    rows = []
    print(f"bench sample  method={method_name} preset={preset} V={vocab} S={seq_len} "
          f"B={batch_size} device={device}")
    given = method.unconditional_given(batch_size, seq_len, 0, device)  # as `pathbench sample` does
    # an autoregressive model's NFE is its length; it is timed once per variant
    variants = [(name, nfe) for nfe in nfes for name in (samplers or method.samplers)
                if name in method.samplers] if not method.requires_prefix else [
        (method.samplers[0], seq_len - 1)]
    for name, nfe in variants:
        cfg = SamplerConfig(name, nfe=nfe)
        generator = torch.Generator(device).manual_seed(0)
        start = time.perf_counter()
        method.sample(model, batch_size, seq_len, cfg, generator=generator, **given)
        _sync(device)
        seconds = time.perf_counter() - start
        rows.append({"sampler": name, "nfe": nfe, "samples_per_s": batch_size / seconds,
                     "tokens_per_s": batch_size * seq_len / seconds})
        print(f"  NFE {nfe:>4}  {name:<9} {batch_size / seconds:>8.2f} samples/s "
              f"{batch_size * seq_len / seconds:>10,.0f} tokens/s")
    if method.requires_prefix and hasattr(method, "kv_cache"):
        method.kv_cache = False  # the same decode without the cache, to show what it saves
        start = time.perf_counter()
        method.sample(model, batch_size, seq_len, SamplerConfig(method.samplers[0], nfe=seq_len - 1),
                      generator=torch.Generator(device).manual_seed(0), **given)
        _sync(device)
        seconds = time.perf_counter() - start
        method.kv_cache = True
        rows.append({"sampler": "no-kv-cache", "nfe": seq_len - 1, "samples_per_s": batch_size / seconds,
                     "tokens_per_s": batch_size * seq_len / seconds})
        print(f"  without KV cache {batch_size / seconds:>8.2f} samples/s "
              f"{batch_size * seq_len / seconds:>10,.0f} tokens/s")
    return rows
