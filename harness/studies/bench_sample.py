"""``pathbench study bench sample``: where a sampler's time and memory go (an untrained model: speed only).

Per method, sampler, top-k and NFE: samples/s and tokens/s; the time outside the denoiser per
step as a multiple of one denoiser call (the sampler's own cost); the *floor* — the measured
time of the elementwise passes over (B,S,V) that such a step cannot avoid (the softmax of the
logits for an ODE step; the fresh prior's random numbers and logs, and the draw's pass over
the logits, for a re-noising step; the model input's transform), in the same unit, so the
distance to the limit is visible; and the peak memory beyond one bare denoiser call (which
holds the model's logits), in float32 (B,S,V) units. The autoregressive baseline's KV-cache
decode is timed beside it at the same size. Simplex paths are set up under a generation
protocol (``kl-flow`` by default: t_max 0.3, the τ grid, τ-Euler for kl, the final call at
t_max), the one a reproduction runs. With a memory budget (``--memory-gb``) the batch is the one
:mod:`pathbench.engine.memory` allows, and each line gives the measured peak beside the estimate
and the budget.
"""

from __future__ import annotations

import statistics
import time

import torch

from pathbench.baselines.unmask import draw_rows
from pathbench.core.registry import METHODS
from pathbench.engine.memory import bytes_per_row, fit_batch, memory_budget
from pathbench.engine.methods import Method, PathMethod
from pathbench.engine.model import Transformer, model_config
from pathbench.engine.protocol import resolve_method_options, resolve_sampler
from pathbench.engine.sampling import SamplerConfig, draw_tokens, grid_intervals, scheme_at
from pathbench.paths.base import softmax_into
from pathbench.studies.bench import PeakMemory, bsv_units, sync, timed_forward

TARGETS = {"basic": 0.75, "semi": 2.0, "sampling": 2.0, "hybrid": 2.0,  # outside-model time / call
           "flowmap": 1.0, "euler": 1.0, "tweedie": 1.0}  # flowmap's jumps; dfm's and sedd's steps
MEMORY_TARGET = 3.0  # float32 (B,S,V) tensors beyond the model's logits


def _median_seconds(fn, device: str, repeats: int = 3) -> float:
    times = []
    for _ in range(repeats):
        sync(device)
        start = time.perf_counter()
        fn()
        sync(device)
        times.append(time.perf_counter() - start)
    return statistics.median(times)


def _floors(method: PathMethod, logits: torch.Tensor, top_k: int | None, device: str) -> dict[str, float]:
    """Seconds of the unavoidable (B,S,V) passes of one step, by kind of step."""
    path, g = method.path, torch.Generator(device).manual_seed(0)
    z, buf, work = torch.empty_like(logits), torch.empty_like(logits), logits.clone()
    path.prior_(z, g)
    prior = _median_seconds(lambda: path.prior_(buf, g), device)
    model_input = _median_seconds(lambda: path.model_input_(z, buf), device)
    softmax = _median_seconds(lambda: softmax_into(work, work), device)
    draw = _median_seconds(lambda: draw_tokens(logits, SamplerConfig("sampling", top_k=top_k), g), device)
    return {"basic": softmax + model_input, "semi": draw + model_input,
            "sampling": prior + draw + model_input}


def _token_floor(method: Method, logits: torch.Tensor, cfg: SamplerConfig, device: str) -> float:
    """Seconds a step of a mask-source sampler (dfm, sedd) cannot avoid, on average: its float64
    draw at the expected share of positions that move (``draw_shares``), each measured as a
    share of one draw over every position, and one uniform per position."""
    flat = logits.reshape(-1, logits.shape[-1])
    rows, vocab = torch.arange(flat.shape[0], device=flat.device), logits.shape[-1] - method.extra_tokens
    u = torch.rand(flat.shape[0], dtype=torch.float64, device=flat.device)
    draw = _median_seconds(lambda: draw_rows(flat, rows, u, cfg, vocab), device)
    uniform = _median_seconds(lambda: torch.rand(flat.shape[0], dtype=torch.float64, device=flat.device), device)
    shares = method.draw_shares(cfg)
    return (sum(shares) * draw + len(shares) * uniform) / len(shares)


def _step_mix(method: PathMethod, cfg: SamplerConfig) -> tuple[int, int]:
    """(ODE steps, drawing steps) of a run of ``cfg``; the decoding call has no step."""
    if cfg.name == "flowmap":  # NFE - 1 jumps, each an ODE-like step on the full δ
        return cfg.nfe - 1, 0
    steps = grid_intervals(cfg)
    times = method.time_grid(method.path, steps, cfg.grid)[:steps].tolist()
    ode = sum(scheme_at(cfg, t) == "basic" for t in times)
    return ode, steps - ode


def _variants(method: Method, samplers, nfes, top_ks) -> list[tuple[str, int, int | None]]:
    # a baseline with none of the listed samplers is timed with its own default one
    names = [s for s in (samplers or method.samplers) if s in method.samplers] or [method.samplers[0]]
    if method.requires_prefix:
        return [(method.samplers[0], -1, None)]  # autoregressive: NFE = its length
    out = []
    for nfe in nfes:
        for name in names:
            draws = isinstance(method, PathMethod) and name not in ("basic", "flowmap")
            out += [(name, nfe, k) for k in (top_ks if draws else (None,))]
    return out


def bench_sample(method_name: str = "kl", preset: str = "tiny", vocab: int = 8192, seq_len: int = 128,
                 batch_size: int = 16, nfes: tuple[int, ...] = (16, 64), samplers: tuple[str, ...] | None = None,
                 top_ks: tuple[int | None, ...] = (1, None), protocol: str = "kl-flow",
                 device: str = "cpu", with_ar: bool = True, memory_gb: float | str | None = None) -> list[dict]:
    """Print and return the figures for each method of a comma-separated list (and AR beside)."""
    names = [n.strip() for n in method_name.split(",")]
    if with_ar and "ar" not in [METHODS.canonical(n) for n in names]:
        names.append("ar")
    rows = []
    for name in names:
        rows += _bench_method(name, preset, vocab, seq_len, batch_size, nfes, samplers, top_ks, protocol, device,
                              memory_gb)
    return rows


def _bench_method(name, preset, vocab, seq_len, batch_size, nfes, samplers, top_ks, protocol, device,
                  memory_gb=None) -> list[dict]:
    # a flow-map student is timed on an untrained kl teacher's path under the same protocol
    teacher = {"teacher": "@kl", "path_options": resolve_method_options("kl", protocol, {})[0]} \
        if METHODS.canonical(name) == "flowmap" else {}
    options, record = resolve_method_options(name, protocol, teacher)
    method: Method = METHODS.build(name, **options)
    torch.manual_seed(0)
    model = Transformer(model_config(preset, vocab + method.extra_tokens, seq_len, causal=method.causal,
                                     time_cond=method.time_cond, **({"two_time": True} if method.two_time else {})
                                     )).to(device).eval()
    budget = memory_budget(memory_gb, device)
    per_row = bytes_per_row(method, model, seq_len)
    if budget is not None:
        batch_size = fit_batch(method, model, seq_len, batch_size, budget)
        print(f"memory budget {budget / 1e9:.2f} GB: batch {batch_size} (estimate {per_row / 1e9:.3f} GB a row)")
    unit = (batch_size, seq_len, vocab)
    print(f"bench sample  method={name} preset={preset} V={vocab} S={seq_len} B={batch_size} "
          f"device={device} protocol={record.name if isinstance(method, PathMethod) else 'n/a'} "
          f"{options or ''}")
    given = method.unconditional_given(batch_size, seq_len, 0, device)  # as `pathbench sample` does
    call_s, call_peak, logits = None, 0.0, None
    if not method.requires_prefix:
        x = torch.softmax(torch.randn(*unit, device=device), -1)
        x = x if method.input_kind == "simplex" else x.argmax(-1)  # what the denoiser reads
        t = torch.full((batch_size,), 0.1, device=device)
        with torch.no_grad():
            logits = model(x, t)
            call_s = _median_seconds(lambda: model(x, t), device)
            with PeakMemory(device) as memory:
                model(x, t)
            call_peak = memory.peak
        del x
        print(f"  one denoiser call {1000 * call_s:.0f} ms (its peak {bsv_units(call_peak, *unit):.1f} x (B,S,V))")
    rows = []
    for sampler, nfe, top_k in _variants(method, samplers, nfes, top_ks):
        nfe = seq_len - 1 if nfe < 0 else nfe
        explicit = {"name": sampler, "nfe": nfe, **({"top_k": top_k} if sampler != "basic" else {})}
        spec, _ = resolve_sampler(method, record, explicit)
        cfg = method.sampler_config(name, spec)
        generator = torch.Generator(device).manual_seed(0)
        with timed_forward(model, device) as watch, PeakMemory(device) as memory, torch.no_grad():
            start = time.perf_counter()
            method.sample(model, batch_size, seq_len, cfg, generator=generator, **given)
            sync(device)
            seconds = time.perf_counter() - start
        row = {"method": name, "sampler": sampler, "nfe": nfe, "top_k": cfg.top_k,
               "samples_per_s": batch_size / seconds, "tokens_per_s": batch_size * seq_len / seconds,
               "model_share": watch.seconds / seconds, "denoiser_calls": watch.calls,
               "peak_beyond_call_bsv": bsv_units(memory.peak - call_peak, *unit),
               "peak_gb": memory.peak / 1e9, "estimate_gb": per_row * batch_size / 1e9,
               **({"budget_gb": budget / 1e9} if budget is not None else {})}
        line = (f"  NFE {nfe:>4}  {sampler:<9} top-k {str(cfg.top_k):<4} {row['samples_per_s']:>7.2f} samples/s "
                f"{row['tokens_per_s']:>8,.0f} tokens/s  model {100 * row['model_share']:>3.0f}%")
        if call_s and (isinstance(method, PathMethod) or hasattr(method, "draw_shares")):
            per_call = watch.seconds / max(watch.calls, 1)
            if isinstance(method, PathMethod):
                ode, drawn = _step_mix(method, cfg)
                floors = _floors(method, logits, cfg.top_k, device)
                floor = (ode * floors["basic"] + drawn * floors["semi" if sampler == "semi" else "sampling"]) / nfe
            else:
                floor = _token_floor(method, logits, cfg, device)
            row.update(outside_per_step=(seconds - watch.seconds) / nfe / per_call, floor_per_step=floor / per_call,
                       target=TARGETS[sampler])
            line += (f"  outside/step {row['outside_per_step']:.2f}x a call (target <= {TARGETS[sampler]}x, "
                     f"floor {row['floor_per_step']:.2f}x)  memory +{row['peak_beyond_call_bsv']:.1f} "
                     f"(target <= {MEMORY_TARGET:.0f})")
        else:
            line += f"  memory +{row['peak_beyond_call_bsv']:.1f} x (B,S,V) beyond one call"
        if budget is not None:
            verdict = "within" if memory.peak <= budget else "OVER"
            line += (f"  peak {row['peak_gb']:.2f} GB (estimate {row['estimate_gb']:.2f}) {verdict} the budget "
                     f"{budget / 1e9:.2f} GB")
        print(line)
        rows.append(row)
    if method.requires_prefix and hasattr(method, "kv_cache"):
        method.kv_cache = False  # the same decode without the cache, to show what it saves
        start = time.perf_counter()
        method.sample(model, batch_size, seq_len, SamplerConfig(method.samplers[0], nfe=seq_len - 1),
                      generator=torch.Generator(device).manual_seed(0), **given)
        sync(device)
        seconds = time.perf_counter() - start
        method.kv_cache = True
        rows.append({"method": name, "sampler": "no-kv-cache", "nfe": seq_len - 1,
                     "samples_per_s": batch_size / seconds, "tokens_per_s": batch_size * seq_len / seconds})
        print(f"  without KV cache {batch_size / seconds:>8.2f} samples/s {batch_size * seq_len / seconds:>10,.0f} tokens/s")
    return rows
