"""Flow-map distillation (FMLM, Lee et al. 2026): few-step sampling from a trained path teacher.

A path whose conditional velocity points straight at its target in its own coordinates
(``AffineTargetPath``: linear, kl, euclidean) has the marginal ODE dz/dt = (E_w[z1] − z)/(1 − t),
w = p(x1 | z_t). Its flow map Z_{s,t} — where the ODE started at z (time s) is at time t — can
be written with a *two-time denoiser* δ_{s,t}(z), a distribution over tokens per position:

    Z_{s,t}(z) = z + (t − s)/(1 − s) · (z1(δ_{s,t}(z)) − z),     z1(δ) = E_{i~δ}[z1^(i)]

(δ_{s,s} is the ordinary denoiser w; at t = 1 the jump lands on z1(δ)). Composing two jumps
s → u → t is again such a jump, with a δ that is a *convex combination* of the two:

    δ_{s,t}(z) = λ·δ_{s,u}(z) + (1 − λ)·δ_{u,t}(Z_{s,u}(z)),   λ = (u − s)(1 − t) / ((t − s)(1 − u))

(expand both jumps; the coefficient of z cancels and λ + (1 − λ) = 1), so the target stays on
the simplex and the student is trained with cross-entropy, as in FMLM (reported as
KL(target ‖ student), i.e. minus the target's entropy, so a perfect student scores 0):

* diagonal (t = s, a ``diag_fraction`` of the batch): δ_{s,s} ← the teacher's denoiser w;
* off-diagonal: δ_{s,t} ← the semigroup target built from the student itself at u = (s+t)/2
  (no gradient through the target), so long jumps are learned from shorter ones.

The student is the shared backbone with a second time input (the jump t − s, zero-initialised)
and starts from the teacher's weights, i.e. as "one Euler step of the teacher" for every jump
(``init=random`` starts from fresh weights instead).
Sampling: N jumps on the path's time grid, one denoiser call each (NFE = N), the last
returning argmax δ. Fisher-Rao's flow is not affine in its coordinates, so its composed jump
has no simplex-valued δ; it is refused with that reason.
"""

from __future__ import annotations

from pathlib import Path

import torch
from torch import Tensor

from pathbench.core.errors import ConfigError
from pathbench.core.registry import METHODS, PATHS
from pathbench.engine.checkpoint import read_meta
from pathbench.engine.methods import PathMethod, backbone_config
from pathbench.engine.run import load_run, require_complete
from pathbench.engine.sampling import SamplerConfig, draw_tokens
from pathbench.paths.base import AffineTargetPath, TokenAffinePath, softmax_into

INITS = ("teacher", "random")  # the student's starting weights: a copy of the teacher, or fresh


@METHODS.register("flowmap", "fmlm")
class FlowMapMethod(PathMethod):
    """Two-time flow-map student distilled from a trained simplex-path teacher (FMLM)."""

    samplers = ("flowmap",)
    two_time = True
    sampling_bsv = 3.5  # z and the model input in place, the logits (bench sample at V = 50,257: 3.0)

    def __init__(self, teacher: str | None = None, path: str | None = None,
                 path_options: dict | None = None, diag_fraction: float = 0.25, init: str = "teacher") -> None:
        if not teacher:
            raise ConfigError("flowmap needs teacher=<run folder of a trained path> "
                              "(or teacher=@<method> inside an experiment file)")
        teacher = str(teacher)
        if path is None:
            if teacher.startswith("@"):
                path = teacher[1:]
            else:
                meta = read_meta(Path(teacher))
                path, path_options = meta["method"], {**meta["method_options"], **(path_options or {})}
        if init not in INITS:
            raise ConfigError(f"unknown flowmap init '{init}'; known: {', '.join(INITS)}")
        if not 0.0 < diag_fraction < 1.0:
            raise ConfigError(f"diag_fraction = {diag_fraction!r} is outside (0, 1)")
        cls = PATHS.get(path)
        if not issubclass(cls, AffineTargetPath):
            affine = [n for n in PATHS.names() if issubclass(PATHS.get(n), AffineTargetPath)]
            raise ConfigError(f"flow-map distillation needs a path that is affine in its coordinates; "
                              f"'{path}' is not (its composed jump has no simplex-valued denoiser); "
                              f"known: {', '.join(affine)}")
        super(PathMethod, self).__init__()
        self.path = cls(**(path_options or {}))
        self.path_name, self.teacher_dir, self.diag_fraction = PATHS.canonical(path), teacher, float(diag_fraction)
        self.init = init
        self._teacher: torch.nn.Module | None = None

    def options(self) -> dict:
        return {"teacher": self.teacher_dir, "path": self.path_name, "path_options": self.path.options(),
                "diag_fraction": self.diag_fraction, "init": self.init}

    # --- the teacher ----------------------------------------------------------------
    def _load_teacher(self, device) -> torch.nn.Module:
        if self.teacher_dir.startswith("@"):
            raise ConfigError(f"teacher '{self.teacher_dir}' names a method of an experiment; "
                              "outside `pathbench sweep` give the teacher's run folder")
        method, model, _, meta, _, _ = require_complete(load_run(Path(self.teacher_dir), str(device)), "teacher")
        if meta["method"] != self.path_name or method.options() != self.path.options():
            raise ConfigError(f"teacher {self.teacher_dir} is '{meta['method']}' {method.options()}, "
                              f"the student distils '{self.path_name}' {self.path.options()}")
        return model.requires_grad_(False).eval()

    def init_model(self, model: torch.nn.Module) -> None:
        teacher = self._load_teacher("cpu")  # checked in both cases: a wrong teacher fails early
        if self.init == "random":
            return
        missing, unexpected = model.load_state_dict(teacher.state_dict(), strict=False)
        if unexpected or any(not k.startswith("jump.") for k in missing):
            raise ConfigError(f"the student's backbone does not match teacher {self.teacher_dir}: "
                              f"missing {sorted(missing)[:3]}, unexpected {sorted(unexpected)[:3]} "
                              "(use the teacher's preset and data)")

    def teacher(self, device) -> torch.nn.Module:
        if self._teacher is None:
            self._teacher = self._load_teacher(device)
        return self._teacher.to(device)

    # --- the flow map -------------------------------------------------------------------
    def jump(self, z: Tensor, delta: Tensor, s: Tensor, t: Tensor) -> Tensor:
        """Z_{s,t}(z) = z + (t−s)/(1−s)·(z1(δ) − z). z, δ (B,S,V); s, t (B,)."""
        frac = ((t - s) / (1.0 - s)).to(z.dtype).reshape(-1, 1, 1)
        return z + frac * (self.path.expected_target(delta.to(z.dtype)) - z)

    @staticmethod
    def composed(delta_su: Tensor, delta_ut: Tensor, s: Tensor, u: Tensor, t: Tensor) -> Tensor:
        """δ_{s,t} of the jump s → u → t: λ·δ_{s,u} + (1 − λ)·δ_{u,t}, λ = (u−s)(1−t)/((t−s)(1−u)).
        δ (B,S,V); s, u, t (B,) with s < t."""
        lam = ((u - s) * (1.0 - t) / ((t - s) * (1.0 - u))).reshape(-1, 1, 1).to(delta_su.dtype)
        return lam * delta_su + (1.0 - lam) * delta_ut

    def loss(self, model, ids, given, generator=None):
        batch = ids.shape[0]
        vocab = backbone_config(model).vocab_size
        dtype = next(model.parameters()).dtype
        dtype = dtype if dtype in (torch.float32, torch.float64) else torch.float32
        t_max = self.path.t_max
        pair = torch.rand(2, batch, generator=generator, device=ids.device, dtype=dtype) * t_max
        s, t = pair.min(0).values, pair.max(0).values
        diag = torch.rand(batch, generator=generator, device=ids.device) < self.diag_fraction
        t = torch.where(diag, s, t)
        z1 = self.path.target(ids, vocab, dtype)
        z_s = self.noisy(ids, given, s, vocab, dtype, generator)  # (B, S, V)
        logits = model(self.path.model_input(z_s), s, t_end=t)  # (B, S, V)
        with torch.no_grad():
            target = torch.empty_like(logits, dtype=torch.float32)
            if diag.any():
                w = self.teacher(ids.device)(self.path.model_input(z_s[diag]), s[diag])
                target[diag] = w.float().softmax(-1)
            off = ~diag
            if off.any():
                z, s_o, t_o, keep = z_s[off], s[off], t[off], given[off].unsqueeze(-1)
                u = (s_o + t_o) / 2
                first = model(self.path.model_input(z), s_o, t_end=u).float().softmax(-1)
                y = torch.where(keep, z1[off], self.jump(z, first, s_o, u))
                second = model(self.path.model_input(y), u, t_end=t_o).float().softmax(-1)
                target[off] = self.composed(first, second, s_o.float(), u.float(), t_o.float())
        # cross-entropy minus the target's entropy: KL(target ‖ student), 0 when distilled exactly
        log_target = target.clamp_min(torch.finfo(target.dtype).tiny).log()
        kl = (target * (log_target - logits.float().log_softmax(-1))).sum(-1)  # (B, S)
        keep = (~given).float()
        return (kl * keep).sum() / keep.sum().clamp_min(1.0)

    def jump_(self, z: Tensor, w: Tensor, s: float, t: float) -> Tensor:
        """z ← Z_{s,t}(z) in place for δ = w (B,S,V), which it may overwrite: for a path with
        two target levels a few fused passes (as the sampler driver's ODE step), else :meth:`jump`."""
        if not isinstance(self.path, TokenAffinePath):
            at = lambda v: torch.tensor([v], dtype=torch.float64, device=z.device)  # noqa: E731
            return z.copy_(self.jump(z, w, at(s), at(t)))
        lo, hi = self.path.target_levels(z.shape[-1])
        frac = (t - s) / (1.0 - s)  # the flow map's own fraction, not the path's τ-Euler one
        z.mul_(1.0 - frac).add_(w, alpha=frac * (hi - lo))
        return z if self.path.shift_invariant else z.add_(frac * lo)

    @torch.no_grad()
    def sample(self, model, batch_size, seq_len, cfg: SamplerConfig, *, given_ids=None, given_mask=None,
               generator=None):
        """N jumps in place on two (B,S,V) buffers — the state z and the model input, later the
        softmax's scratch — as :func:`pathbench.engine.sampling.sample_path` does: the state is
        float32 (or the model's float64), every draw float64."""
        device = next(model.parameters()).device
        dtype = next(model.parameters()).dtype
        work = dtype if dtype in (torch.float32, torch.float64) else torch.float32
        vocab = model.config.vocab_size
        times = self.time_grid(self.path, cfg.nfe, cfg.grid).tolist()
        z = self.path.prior_(torch.empty((batch_size, seq_len, vocab), dtype=work, device=device), generator)
        buffer = torch.empty_like(z)  # the model input, then scratch once the model has read it
        clamp = given_mask is not None and bool(given_mask.any())
        if clamp:
            mask, given_ids = given_mask.to(device), given_ids.to(device)
            z_given = self.path.target(given_ids[mask], vocab, work)  # (n_given, V)
            z[mask] = z_given
        for n in range(cfg.nfe):
            s = torch.full((batch_size,), times[n], device=device)
            t = torch.full((batch_size,), times[n + 1], device=device)
            logits = model(self.path.model_input_(z, buffer).to(dtype), s, t_end=t)  # (B, S, V)
            if n == cfg.nfe - 1:  # temperature, top-k and top-p shape only a drawn final token
                ids = logits.argmax(-1) if cfg.final == "argmax" else draw_tokens(logits, cfg, generator)
                return torch.where(mask, given_ids, ids) if clamp else ids
            if logits.dtype == z.dtype and logits.is_contiguous():
                w = torch.ops.aten._softmax.out(logits, -1, False, out=logits)  # in place: no softmax copy
            else:  # e.g. bfloat16 logits: the full δ in the state's dtype, in the free buffer
                w = softmax_into(buffer.copy_(logits), buffer)
            self.jump_(z, w, times[n], times[n + 1])  # a jump uses the full δ
            del logits, w  # before the next call allocates its own
            if clamp:
                z[mask] = z_given
        raise AssertionError("unreachable: the loop returns on its last call")
