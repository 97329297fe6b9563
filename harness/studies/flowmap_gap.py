"""``pathbench study flowmap-gap``: how far a flow-map student is from its teacher's flow map, by jump.

The student's δ_{s,t}(z_s) is compared with the teacher's own flow map over the same jump: K Euler
steps of the teacher's ODE from z_s, written as one jump whose δ is the convex combination of the
K denoiser outputs (``FlowMapMethod.composed``, applied step by step), so that

    KL(δ_teacher,K ‖ δ_student)     averaged over held-out positions, z_s drawn on the path

is 0 for a perfectly distilled student. Short jumps (t − s small) are what the diagonal loss
trains; long jumps from noise (s = 0) are what one- and two-step sampling uses, and they are
learned only through the semigroup target — this table shows how far that got.
"""

from __future__ import annotations

import csv
from pathlib import Path

import torch
from torch import Tensor

from pathbench.core.errors import ConfigError
from pathbench.core.io import atomic_open
from pathbench.data.corpus import held_out_batches
from pathbench.engine.run import load_run
from pathbench.paths.posterior import entropy_categorical, kl_categorical

#: (s, t) jumps as fractions of the path's t_max (0.3 under the kl-flow protocol, 1 under plain):
#: the diagonal at three times, short jumps, and long jumps from noise
JUMPS = ((0.0, 0.0), (0.5, 0.5), (0.9, 0.9), (0.0, 1 / 16), (0.5, 0.5 + 1 / 16),
         (0.0, 0.25), (0.0, 0.5), (0.5, 1.0), (0.0, 1.0))
COLUMNS = ("s", "t", "kl", "teacher_entropy", "student_entropy", "student_accuracy")


@torch.no_grad()
def teacher_flow_map(method, teacher: torch.nn.Module, z: Tensor, s: float, t: float, steps: int) -> Tensor:
    """δ (B,S,V) of the teacher's K-step Euler flow map from z (B,S,V) at time s to time t."""
    batch, dtype = z.shape[0], torch.promote_types(z.dtype, torch.float32)  # float64 stays float64
    at = lambda v: torch.full((batch,), v, dtype=dtype, device=z.device)  # noqa: E731
    if t <= s:
        return teacher(method.path.model_input(z), at(s)).to(dtype).softmax(-1)
    times = torch.linspace(s, t, steps + 1, dtype=torch.float64).tolist()
    delta = None
    for a, b in zip(times[:-1], times[1:]):
        w = teacher(method.path.model_input(z), at(a)).to(dtype).softmax(-1)
        delta = w if delta is None else method.composed(delta, w, at(s), at(a), at(b))
        z = method.jump(z, w, at(a), at(b))
    return delta


@torch.no_grad()
def flowmap_gap(method, student: torch.nn.Module, teacher: torch.nn.Module, batches: list, *,
                jumps=None, steps: int = 32, seed: int = 0, device: str = "cpu") -> list[dict]:
    """One row per jump (s, t) (times; default: ``JUMPS`` scaled to the path's t_max): mean
    KL(teacher map ‖ student), both δ's entropies (nats), and how often the student's argmax is
    the held-out token."""
    if jumps is None:
        jumps = [(s * method.path.t_max, t * method.path.t_max) for s, t in JUMPS]
    if steps < 1:
        raise ConfigError(f"steps = {steps} must be >= 1")
    if not batches:
        raise ConfigError("no held-out batch to compare the student with its teacher on")
    rows, vocab = [], student.config.vocab_size
    for s, t in jumps:
        if not 0.0 <= s <= t <= method.path.t_max:
            raise ConfigError(f"jump ({s}, {t}) is not 0 <= s <= t <= t_max = {method.path.t_max}")
        generator = torch.Generator(device).manual_seed(seed)
        sums = dict.fromkeys(COLUMNS[2:], 0.0)
        count = 0.0
        for batch in batches:
            ids, given = batch.ids.to(device), batch.given.to(device)
            s_vec = torch.full((ids.shape[0],), s, dtype=torch.float32, device=device)
            z = method.noisy(ids, given, s_vec, vocab, torch.float32, generator)  # (B, S, V)
            logits = student(method.path.model_input(z), s_vec, t_end=torch.full_like(s_vec, t))  # (B, S, V)
            log_mine = logits.float().log_softmax(-1)
            log_theirs = teacher_flow_map(method, teacher, z, s, t, steps).log()  # 0 -> -inf: 0·log 0 = 0
            keep = ~given
            sums["kl"] += kl_categorical(log_theirs, log_mine)[keep].sum().item()
            sums["teacher_entropy"] += entropy_categorical(log_theirs)[keep].sum().item()
            sums["student_entropy"] += entropy_categorical(log_mine)[keep].sum().item()
            sums["student_accuracy"] += (log_mine.argmax(-1) == ids)[keep].float().sum().item()
            count += keep.sum().item()
        rows.append({"s": s, "t": t, **{k: v / max(count, 1.0) for k, v in sums.items()}})
    return rows


def write_flowmap_gap(ckpt: Path, *, steps: int = 32, batches: int = 1, batch_size: int = 16,
                      device: str = "cpu") -> list[dict]:
    """Measure a student run folder against the teacher named in its options; CSV in the folder."""
    method, student, _, meta, _, _ = load_run(ckpt, device)
    if not getattr(method, "two_time", False):
        raise ConfigError(f"{ckpt} is a '{meta['method']}' run, not a flow-map student (method flowmap)")
    teacher = method.teacher(device)
    rows = flowmap_gap(method, student.eval(), teacher, held_out_batches(meta["data"], batches, batch_size),
                       steps=steps, device=device)
    with atomic_open(ckpt / "flowmap_gap.csv", "w", newline="") as handle:
        writer = csv.DictWriter(handle, fieldnames=COLUMNS)
        writer.writeheader()
        writer.writerows({k: round(v, 6) for k, v in row.items()} for row in rows)
    return rows
