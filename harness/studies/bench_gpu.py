"""``pathbench study bench gpu``: the check to run the first time a GPU is lent (≈ 5 minutes, one H100/H200).

No GPU has run this project yet; this is what one should run first, in one command
(``scripts/gpu_check.sh``), and commit. At the paper's sizes (``paper-150m``, V = 50,257,
S = 1024) it measures, each in its own guarded section so that one failure is recorded and the
rest still run:

* ``train``: bf16 autocast + torch.compile training steps of every registered method (the
  trainer's step: loss, backward, clipping, AdamW), tokens/s, model TFLOP/s and MFU against the
  device's dense bf16 peak (:func:`pathbench.core.devices.bf16_peak_flops`), peak memory;
* ``sample``: a few steps of every sampler of every method, time per step and peak memory in GB
  and in float32 (B,S,V) units (the unit the sampler's memory budget is written in);
* ``cuda_baselines``: whether dfm and sedd trained and sampled on the device (their generators
  once lived on the wrong device, which only a GPU shows);
* ``scorer``: forward NLL throughput of a randomly initialised GPT-2-large-sized model
  (36 layers, 1280 wide, 20 heads; no download) in bf16, the generative-perplexity scorer's cost;
* ``memory_1p5b``: the peak memory of one ``paper-1.5b`` kl step at 4 sequences, without and
  with activation checkpointing (what the README's fsdp memory estimate should be checked by).

``--budget-s`` trims the timed steps so that the whole check ends in time (training may use
what the sampler and scorer shares, 30 % and 10 %, leave; a method's timed steps are cut to
fit its part, down to one); a unit reached when its section's time is spent is recorded as
skipped, not silently left out. ``--device cpu --tiny`` runs
the same code at the tiny preset and a small vocabulary (fp32, no compile), so a CPU test
exercises every section; its figures say nothing about a GPU.
"""

from __future__ import annotations

import platform
import time
import traceback
from collections.abc import Callable
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

import torch

from pathbench.core.devices import bf16_peak_flops, resolve_device
from pathbench.core.errors import ConfigError
from pathbench.core.io import atomic_write_json, atomic_write_text
from pathbench.core.registry import METHODS
from pathbench.engine.methods import Method
from pathbench.engine.model import Transformer, model_config
from pathbench.engine.protocol import resolve_method_options, resolve_sampler
from pathbench.engine.trainer import TrainConfig, build_optimizers
from pathbench.studies.bench import PeakMemory, RandomBatches, bsv_units, sync

GB = 1e9
#: shares of the budget kept for the sampler and scorer sections; training gets the rest
SHARES = {"sample": 0.3, "scorer": 0.1}
GPT2_LARGE = dict(n_layer=36, n_embd=1280, n_head=20)


@dataclass
class Sizes:
    preset: str
    vocab: int
    seq_len: int
    batch_size: int
    compile: bool
    bf16: bool
    max_steps: int  # timed training steps at most (the budget may trim them to 1)
    nfe: int        # sampler steps per sampler (the autoregressive baseline: its whole length)


def sizes_for(device: str, tiny: bool, batch_size: int | None = None) -> Sizes:
    if tiny:  # the code path in seconds on a CPU
        return Sizes("tiny", 512, 32, batch_size or 4, compile=False, bf16=False, max_steps=1, nfe=2)
    if not device.startswith("cuda"):
        raise ConfigError("pathbench study bench gpu at the paper's sizes needs a CUDA device; "
                          "--device cpu needs --tiny (the code path only)")
    return Sizes("paper-150m", 50_257, 1024, batch_size or 8, compile=True, bf16=True, max_steps=10, nfe=4)


class Budget:
    """Seconds left to a section, so the timed steps can be trimmed to fit."""

    def __init__(self, seconds: float) -> None:
        self.start, self.total = time.perf_counter(), seconds

    def left(self) -> float:
        return self.total - (time.perf_counter() - self.start)


def _guarded(fn: Callable[[], dict]) -> dict:
    """One unit of the check: its figures, or the error that stopped it (the rest still run)."""
    try:
        return {"status": "ok", **fn()}
    except Exception as err:  # noqa: BLE001 - any failure is a finding to record, not a crash
        first_line = (str(err).splitlines() or [""])[0][:300]
        return {"status": "error", "error": f"{type(err).__name__}: {first_line}",
                "where": traceback.format_exc(limit=-2).splitlines()[-3:]}
    finally:
        if torch.cuda.is_available():
            torch.cuda.empty_cache()


def _method(name: str) -> tuple[Method, dict]:
    options, record = resolve_method_options(name, "kl-flow", {})
    return METHODS.build(name, **options), record


def _model(method: Method, sizes: Sizes, device: str) -> Transformer:
    torch.manual_seed(0)
    cfg = model_config(sizes.preset, sizes.vocab + method.extra_tokens, sizes.seq_len, causal=method.causal,
                       time_cond=method.time_cond, **({"two_time": True} if method.two_time else {}))
    model = Transformer(cfg).to(device)
    method.init_model(model)
    return model


def train_one(name: str, sizes: Sizes, device: str, seconds: float) -> dict:
    """Two warm-up steps (compilation), then as many timed steps as ``seconds`` allows (≥ 1)."""
    method, _ = _method(name)
    model = _model(method, sizes, device)
    step_model = torch.compile(model) if sizes.compile else model
    optimizers = build_optimizers(model, TrainConfig())
    batches = RandomBatches(sizes.batch_size, sizes.seq_len, sizes.vocab)
    generator = torch.Generator(device).manual_seed(0)

    def step() -> float:
        batch = next(batches)
        with torch.autocast("cuda", dtype=torch.bfloat16, enabled=sizes.bf16):
            loss = method.loss(step_model, batch.ids.to(device), batch.given.to(device), generator)
        loss.backward()
        torch.nn.utils.clip_grad_norm_(model.parameters(), 1.0)
        for opt in optimizers:
            opt.step()
            opt.zero_grad(set_to_none=True)
        return loss.item()

    begin = time.perf_counter()
    with PeakMemory(device) as memory:
        step()  # compiles
        sync(device)
        second = time.perf_counter()
        step()
        sync(device)
    first_s, per_step = time.perf_counter() - begin, time.perf_counter() - second
    steps = max(1, min(sizes.max_steps, int((seconds - first_s) / max(per_step, 1e-6))))
    sync(device)
    begin = time.perf_counter()
    losses = [step() for _ in range(steps)]
    sync(device)
    elapsed = time.perf_counter() - begin
    if not all(map(torch.isfinite, torch.tensor(losses))):
        raise FloatingPointError(f"non-finite training loss {losses}")
    tokens_per_s = steps * sizes.batch_size * sizes.seq_len / elapsed
    achieved = tokens_per_s * model.flops_per_token(sizes.seq_len)
    peak = bf16_peak_flops(device) if sizes.bf16 else None
    return {"steps": steps, "first_two_steps_s": first_s, "step_ms": 1000 * elapsed / steps,
            "tokens_per_s": tokens_per_s, "model_tflops": achieved / 1e12, "mfu": achieved / peak if peak else None,
            "loss": losses[-1], "params": model.num_params(non_embedding=False),
            "peak_memory_gb": memory.peak / GB,
            "peak_memory_bsv": bsv_units(memory.peak, sizes.batch_size, sizes.seq_len, sizes.vocab)}


def sample_one(name: str, sampler: str, sizes: Sizes, device: str) -> dict:
    """``nfe`` steps of one sampler (the autoregressive baseline: its whole decode) from an
    untrained model, as ``pathbench sample`` runs them; time per step and peak memory."""
    method, record = _method(name)
    model = _model(method, sizes, device).eval()
    nfe = sizes.seq_len - 1 if method.requires_prefix else sizes.nfe
    spec, _ = resolve_sampler(method, record, {"name": sampler, "nfe": nfe})
    cfg = method.sampler_config(name, spec)
    given = method.unconditional_given(sizes.batch_size, sizes.seq_len, 0, device)
    generator = torch.Generator(device).manual_seed(0)
    with PeakMemory(device) as memory, torch.no_grad():
        begin = time.perf_counter()
        ids = method.sample(model, sizes.batch_size, sizes.seq_len, cfg, generator=generator, **given)
        sync(device)
        elapsed = time.perf_counter() - begin
    if ids.shape != (sizes.batch_size, sizes.seq_len) or int(ids.min()) < 0 or int(ids.max()) >= sizes.vocab:
        raise ValueError(f"sampler gave ids of shape {tuple(ids.shape)} in [{int(ids.min())}, {int(ids.max())}]")
    return {"nfe": nfe, "ms_per_step": 1000 * elapsed / nfe, "seconds": elapsed,
            "peak_memory_gb": memory.peak / GB,
            "peak_memory_bsv": bsv_units(memory.peak, sizes.batch_size, sizes.seq_len, sizes.vocab)}


def memory_1p5b(sizes: Sizes, device: str, tiny: bool, batch_size: int = 4) -> dict:
    """Peak memory of one kl training step of ``paper-1.5b`` on one device (unsharded: the
    16·N bytes of weights, gradients and AdamW moments that fsdp divides by the ranks, plus
    the activations it does not), without and with activation checkpointing — the figures the
    README's per-GPU estimate is built from."""
    method, _ = _method("kl")
    row: dict[str, Any] = {"preset": "tiny" if tiny else "paper-1.5b", "batch_size": batch_size}
    for checkpointing in (False, True):
        cfg = model_config(row["preset"], sizes.vocab, sizes.seq_len, activation_checkpointing=checkpointing)
        with torch.device(device):
            model = Transformer(cfg)
        optimizers = build_optimizers(model, TrainConfig())
        batch = next(RandomBatches(batch_size, sizes.seq_len, sizes.vocab))
        with PeakMemory(device) as memory:  # above the float32 weights already in memory
            with torch.autocast("cuda", dtype=torch.bfloat16, enabled=sizes.bf16):
                loss = method.loss(model, batch.ids.to(device), batch.given.to(device), torch.Generator(device))
            loss.backward()
            for opt in optimizers:
                opt.step()
        row["params"] = model.num_params(non_embedding=False)
        row["checkpointing" if checkpointing else "no_checkpointing"] = memory.peak / GB
        del model, optimizers, loss
    row["weights_gb"] = 4 * row["params"] / GB
    return row


def scorer_throughput(sizes: Sizes, device: str, seconds: float, tiny: bool) -> dict:
    """Forward NLL of random ids through a random GPT-2-large-sized model, tokens/s."""
    from transformers import GPT2Config, GPT2LMHeadModel  # deferred: heavy, this section only

    shape = dict(n_layer=2, n_embd=64, n_head=2) if tiny else GPT2_LARGE
    config = GPT2Config(vocab_size=sizes.vocab, n_positions=sizes.seq_len, bos_token_id=sizes.vocab - 1,
                        eos_token_id=sizes.vocab - 1, **shape)
    torch.manual_seed(0)
    dtype = torch.bfloat16 if sizes.bf16 else torch.float32
    model = GPT2LMHeadModel(config).to(device=device, dtype=dtype).eval()
    ids = torch.randint(sizes.vocab, (sizes.batch_size, sizes.seq_len), device=device)

    @torch.no_grad()
    def nll() -> float:
        logits = model(ids).logits[:, :-1].float()
        return torch.nn.functional.cross_entropy(logits.transpose(1, 2), ids[:, 1:]).item()

    begin = time.perf_counter()
    with PeakMemory(device) as memory:
        nll()
    first = time.perf_counter() - begin
    repeats = max(1, min(10, int((seconds - first) / max(first, 1e-3))))
    begin = time.perf_counter()
    values = [nll() for _ in range(repeats)]
    elapsed = time.perf_counter() - begin
    return {"model": f"random GPT-2 {shape}", "params": sum(p.numel() for p in model.parameters()),
            "dtype": str(dtype).removeprefix("torch."), "batches": repeats,
            "tokens_per_s": repeats * ids.numel() / elapsed, "nll": values[-1],
            "peak_memory_gb": memory.peak / GB}


def gpu_check(out: Path, device: str = "cuda", tiny: bool = False, budget_s: float = 280.0,
              batch_size: int | None = None, methods: list[str] | None = None) -> dict[str, Any]:
    """Run every section, write ``gpu_check.json`` and ``gpu_check.md`` into ``out``, return the record."""
    if device.startswith("cuda") and not torch.cuda.is_available():
        raise ConfigError("pathbench study bench gpu needs a CUDA device and none is available "
                          "(--device cpu --tiny runs its code path on the CPU)")
    device = resolve_device(device)
    sizes = sizes_for(device, tiny, batch_size)
    if (out / "gpu_check.json").exists():
        raise ConfigError(f"{out} already holds a gpu check; choose another --out (nothing was overwritten)")
    budget = Budget(budget_s)
    names = methods or METHODS.names()
    for name in names:
        METHODS.get(name)  # an unknown name is bad input (one line, exit 2), not a skipped unit
    record: dict[str, Any] = {
        "device": torch.cuda.get_device_name(device) if device.startswith("cuda") else platform.processor() or "cpu",
        "torch": torch.__version__, "cuda": torch.version.cuda, "tiny": tiny, "budget_s": budget_s,
        "bf16_peak_tflops": (bf16_peak_flops(device) or 0) / 1e12 or None, "sizes": asdict(sizes),
        "train": {}, "sample": {}, "cuda_baselines": {}, "scorer": {}, "memory_1p5b": {},
    }
    trainable = [n for n in names if _needs(n) is None]
    for name in names:
        if (reason := _needs(name)) is not None:
            record["train"][name] = record["sample"][name] = {"status": "skipped", "reason": reason}
    # a section starts a unit while the budget still holds the shares of the sections after it
    reserve = budget_s * (SHARES["sample"] + SHARES["scorer"])
    for i, name in enumerate(trainable):
        share = (budget.left() - reserve) / (len(trainable) - i)
        record["train"][name] = (_guarded(lambda n=name, s=share: train_one(n, sizes, device, s))
                                 if share > 0 else {"status": "skipped", "reason": "budget spent"})
    for name in trainable:
        for sampler in _method(name)[0].samplers:
            record["sample"][f"{name}/{sampler}"] = (
                _guarded(lambda n=name, s=sampler: sample_one(n, s, sizes, device))
                if budget.left() > budget_s * SHARES["scorer"] else {"status": "skipped", "reason": "budget spent"})
    for name in ("dfm", "sedd"):
        if name in trainable:
            samples = {v["status"] for k, v in record["sample"].items() if k.startswith(name + "/")}
            record["cuda_baselines"][name] = {"device": device, "train": record["train"][name]["status"],
                                              "sample": "error" if "error" in samples else
                                              "ok" if samples == {"ok"} else "skipped"}
    record["scorer"] = _guarded(lambda: scorer_throughput(sizes, device, max(budget.left(), 1.0), tiny))
    record["memory_1p5b"] = _guarded(lambda: memory_1p5b(sizes, device, tiny))
    record["elapsed_s"] = time.perf_counter() - budget.start
    out.mkdir(parents=True, exist_ok=True)
    atomic_write_json(out / "gpu_check.json", record)
    atomic_write_text(out / "gpu_check.md", markdown(record))
    return record


def _needs(name: str) -> str | None:
    """Why a method cannot be built bare (a student needs its teacher's run), or None."""
    try:
        _method(name)
    except ConfigError as err:
        return str(err)
    return None


def _cell(value: Any) -> str:
    if value is None:
        return "–"
    if isinstance(value, float):
        return f"{value:,.3g}" if abs(value) < 1000 else f"{value:,.0f}"
    return str(value)


def _table(rows: dict[str, dict], columns: list[str]) -> list[str]:
    lines = ["| | status | " + " | ".join(columns) + " |", "|---" * (len(columns) + 2) + "|"]
    for key, row in rows.items():
        status = row["status"] if row["status"] == "ok" else f"{row['status']}: {row.get('error') or row.get('reason')}"
        lines.append(f"| {key} | {status} | " + " | ".join(_cell(row.get(c)) for c in columns) + " |")
    return lines


def markdown(record: dict) -> str:
    s = record["sizes"]
    lines = [f"# pathbench study bench gpu — {record['device']}", "",
             f"torch {record['torch']} (CUDA {record['cuda']}); preset {s['preset']}, V = {s['vocab']:,}, "
             f"S = {s['seq_len']}, B = {s['batch_size']}, bf16 {s['bf16']}, compile {s['compile']}; "
             f"bf16 peak {_cell(record['bf16_peak_tflops'])} TFLOP/s; {record['elapsed_s']:.0f} s of a "
             f"{record['budget_s']:.0f} s budget.", "", "## Training steps", ""]
    lines += _table(record["train"], ["tokens_per_s", "model_tflops", "mfu", "step_ms", "first_two_steps_s",
                                      "peak_memory_gb", "peak_memory_bsv"])
    lines += ["", "## Sampler steps (untrained model)", ""]
    lines += _table(record["sample"], ["nfe", "ms_per_step", "peak_memory_gb", "peak_memory_bsv"])
    lines += ["", "## dfm and sedd on the device", ""]
    lines += [f"- {name}: train {v['train']}, sample {v['sample']} ({v['device']})"
              for name, v in record["cuda_baselines"].items()]
    lines += ["", "## Scorer (random GPT-2-large-sized model)", ""]
    lines += _table({"scorer": record["scorer"]}, ["model", "dtype", "tokens_per_s", "peak_memory_gb"])
    lines += ["", "## One paper-1.5b training step on one device (GB above its float32 weights)", ""]
    lines += _table({"kl": record["memory_1p5b"]}, ["preset", "batch_size", "weights_gb", "no_checkpointing",
                                                     "checkpointing"])
    return "\n".join(lines) + "\n"
