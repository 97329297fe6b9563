"""The method interface the trainer and the samplers see, and simplex paths wrapped as methods.

A *method* is anything trainable on the shared backbone: every simplex path (wrapped here by
:class:`PathMethod`) and every baseline in ``baselines/``. All of them live in the
``METHODS`` registry; :func:`register_path_methods` adds one method per registered path, so
a path added through a plugin is trainable and comparable with nothing else written.
"""

from __future__ import annotations

import inspect
from abc import ABC, abstractmethod
from pathlib import Path
from typing import ClassVar

import torch
import torch.nn.functional as F
from torch import Tensor

from pathbench.core.errors import ConfigError
from pathbench.core.registry import METHODS, PATHS
from pathbench.engine.calibration import read_calibration
from pathbench.engine.sampling import SAMPLERS, SamplerConfig, check_sampler, grid_intervals, sample_path
from pathbench.engine.schedule import TimeWarp


class Method(ABC):
    """A generator trained by the shared trainer on the shared backbone.

    Class attributes tell the trainer how to build the backbone: ``input_kind`` is
    ``"simplex"`` (dense (B,S,V) inputs) or ``"tokens"`` ((B,S) ids); ``causal`` and
    ``time_cond`` configure attention and adaLN time conditioning. ``sample`` returns ids of
    the tokenizer's vocabulary only (never an extra token such as a mask).
    """

    input_kind: ClassVar[str] = "simplex"
    causal: ClassVar[bool] = False
    time_cond: ClassVar[bool] = True
    #: sampler names this method understands; the first is the default
    samplers: ClassVar[tuple[str, ...]] = SAMPLERS
    #: tokens the backbone needs beyond the tokenizer's (e.g. a mask/absorbing state)
    extra_tokens: ClassVar[int] = 0
    #: generation must start from at least one given token (autoregressive models)
    requires_prefix: ClassVar[bool] = False

    #: the backbone is a two-time flow map (start and end time), see baselines/flowmap.py
    two_time: ClassVar[bool] = False
    #: peak memory of the sampler per sample row in float32 (S, V) units, the model's logits
    #: included (measured with ``pathbench study bench sample``; pathbench.engine.memory sizes batches by it)
    sampling_bsv: ClassVar[float] = 4.0

    def __init__(self, **options: object) -> None:
        self._options = dict(options)
        #: what was fitted on this method's checkpoint (time warp, tuned sampler): calibration.json
        self.calibration: dict = {}

    def init_model(self, model: torch.nn.Module) -> None:
        """Called once on a freshly built backbone before training (a student copies its teacher)."""

    def options(self) -> dict:
        """Everything needed to rebuild this method (stored in checkpoints and results)."""
        return dict(self._options)

    def sampling_bytes_per_row(self, config, seq_len: int) -> float:
        """Bytes the sampler holds per sample row beyond the backbone's activations (see
        :mod:`pathbench.engine.memory`): ``sampling_bsv`` float32 (S, V) tensors."""
        return 4.0 * seq_len * config.vocab_size * self.sampling_bsv

    def sampler_config(self, method_name: str, spec: SamplerConfig | dict) -> SamplerConfig:
        """``spec`` as a SamplerConfig checked against this method's samplers; a dict without a
        ``name`` gets the method's default sampler."""
        if isinstance(spec, dict):
            spec = SamplerConfig(**{**spec, "name": spec.get("name") or self.samplers[0]})
        if spec.name == "tuned":  # the choice `pathbench study tune-tstar` stored with the checkpoint
            if "tuned_sampler" not in self.calibration:
                raise ConfigError("sampler 'tuned' needs a tuned t*: run `pathbench study tune-tstar --ckpt DIR` first")
            spec = SamplerConfig(**self.calibration["tuned_sampler"]["sampler"])
        check_sampler(method_name, spec, self.samplers)
        if spec.grid == "error" and "time_warp" not in self.calibration:
            raise ConfigError("time grid 'error' needs the checkpoint's decoding-error curve: "
                              "run `pathbench study reparam --ckpt DIR` first")
        return spec

    def time_grid(self, path, nfe: int, grid: str | None) -> Tensor:
        """(nfe+1,) sampling times: the path's grid, or ``error`` = equal steps of decoding error
        (``nfe = 0``: the path's single time t_max)."""
        if grid == "error" and nfe:
            return TimeWarp.from_dict(self.calibration["time_warp"]).grid(nfe, path.t_max)
        return path.time_grid(nfe, grid)

    def unconditional_given(self, batch_size: int, seq_len: int, start_token: int,
                            device: torch.device | str | None = None) -> dict[str, Tensor]:
        """The ``given`` arguments of an unconditional draw: nothing, or for a method that needs
        a prefix, ``start_token`` at position 0 (every sample starts at a document boundary)."""
        if not self.requires_prefix:
            return {}
        mask = torch.zeros(batch_size, seq_len, dtype=torch.bool, device=device)
        mask[:, 0] = True
        return {"given_ids": torch.full((batch_size, seq_len), start_token, dtype=torch.long, device=device),
                "given_mask": mask}

    @abstractmethod
    def loss(self, model: torch.nn.Module, ids: Tensor, given: Tensor,
             generator: torch.Generator | None = None) -> Tensor:
        """Scalar training loss for ids (B,S) with ``given`` (B,S) positions as context."""

    @abstractmethod
    def sample(self, model: torch.nn.Module, batch_size: int, seq_len: int, cfg: SamplerConfig, *,
               given_ids: Tensor | None = None, given_mask: Tensor | None = None,
               generator: torch.Generator | None = None) -> Tensor:
        """Generate ids (B,S); positions in ``given_mask`` keep their ``given_ids``."""


class TokenMethod(Method):
    """The base of a baseline on token ids ((B,S) inputs, not the simplex): the conventions a
    plugin author would otherwise learn from ``baselines/sedd.py``.

    * **Mask id.** With ``extra_tokens = 1`` the backbone has V + 1 outputs and the extra one,
      id V = :meth:`mask_id`, is the mask/absorbing state. It is an input, never an output:
      drop its logit before a softmax or a draw (``logits[..., :V]``), and replace every mask
      left in a sample before ``sample`` returns (the harness checks: ids in [0, V)).
    * **Time.** Token baselines keep their paper's own time variable and say which it is in
      :attr:`time_direction`; the backbone's time input is whatever ``model(x, t)`` is given.
      (The simplex paths use t = 0 noise → t_max data; SEDD and DFM's diffusion time τ runs
      0 = data → 1 = noise.)
    * **Loss.** ``loss`` returns the *mean over scored tokens* (positions not given), so that
      losses are comparable across methods and batch shapes: :func:`masked_cross_entropy`, or
      :meth:`per_token_mean` of a (B,S) per-position loss.
    * **Samplers.** Declare ``samplers`` (the first is the default). A sampler must honour
      ``nfe``, ``top_k``/``top_p``/``temperature`` where it draws, and ``given_mask``; the
      simplex-only fields (``t_star``, ``grid``, ``final``, ``final_at``) are recorded with every
      result but a token method may ignore them (say so in its docstring).
    """

    input_kind: ClassVar[str] = "tokens"
    samplers: ClassVar[tuple[str, ...]] = ()
    #: "data at 0, noise at 1" (diffusion time) or "noise at 0, data at 1" (flow time)
    time_direction: ClassVar[str] = "data at 0, noise at 1"

    def __init__(self, **options: object) -> None:
        if not self.samplers:
            raise ConfigError(f"{type(self).__name__}: a TokenMethod declares its samplers, "
                              "e.g. samplers = ('euler',)")
        super().__init__(**options)

    @staticmethod
    def mask_id(model: torch.nn.Module) -> int:
        """The mask/absorbing id: the backbone's last output (needs ``extra_tokens = 1``)."""
        return backbone_config(model).vocab_size - 1

    @staticmethod
    def per_token_mean(loss: Tensor, given: Tensor) -> Tensor:
        """A (B,S) per-position loss averaged over the scored (not given) positions: a scalar."""
        keep = (~given).to(loss.dtype)
        return (loss * keep).sum() / keep.sum().clamp_min(1.0)


def load_time_warp(run_dir: str):
    """The decoding-error curve ``pathbench study reparam`` stored with another run (FLM's reparameterisation)."""
    section = read_calibration(Path(run_dir)).get("time_warp")
    if section is None:
        raise ConfigError(f"time_warp={run_dir}: that run has no fitted decoding-error curve; "
                          f"run `pathbench study reparam --ckpt {run_dir}` first")
    return TimeWarp.from_dict(section)


def backbone_config(model: torch.nn.Module):
    """The ModelConfig behind a model, also when DDP or torch.compile wraps it."""
    while not hasattr(model, "config"):
        model = getattr(model, "module", None) or getattr(model, "_orig_mod")
    return model.config


def masked_cross_entropy(logits: Tensor, ids: Tensor, given: Tensor) -> Tensor:
    """Mean −log p(ids) over the positions that are not given. logits (B,S,V), ids/given (B,S)."""
    nll = F.cross_entropy(logits.float().transpose(1, 2), ids, reduction="none")  # (B, S)
    keep = (~given).float()
    return (nll * keep).sum() / keep.sum().clamp_min(1.0)


class PathMethod(Method):
    """A simplex path trained with the paper's objective (KL-flow, Eq. 13):

    t ~ U[0, t_max], x0 ~ p0, x_t = ψ_t(x0, x1); minimise Σ_k −log p_θ(x1^(k) | x_t) over
    the positions that are not given (given positions are fed as their clean target).
    """

    path_name: ClassVar[str] = ""
    sampling_bsv = 3.5  # z and the model input in place, the logits (bench sample at V = 50,257: 3.4)

    def __init__(self, time_warp: str | None = None, **options: object) -> None:
        super().__init__(**options)
        known = self.option_names()
        for key in options:
            if key not in known:
                raise ConfigError(f"refuses key '{key}'; "
                                  f"its keys: {', '.join(sorted(known))}")
        # not PATHS.build: the method registry already names the component in its errors
        self.path = PATHS.get(self.path_name)(**options)
        self.time_warp, self._warp = time_warp, None
        if time_warp is not None:  # FLM: train on times spaced by a fitted decoding-error curve
            self._warp = load_time_warp(time_warp)
            self._warp.grid(1, self.path.t_max)  # its range must be this path's [0, t_max]

    def options(self) -> dict:
        return {**self.path.options(), **({"time_warp": self.time_warp} if self.time_warp else {})}

    @classmethod
    def option_names(cls) -> set[str]:
        """The method options this path method takes: its path's constructor keys + ``time_warp``."""
        params = inspect.signature(PATHS.get(cls.path_name).__init__).parameters
        return {n for n, p in params.items() if n != "self" and p.kind is not p.VAR_KEYWORD} | {"time_warp"}

    def loss(self, model, ids, given, generator=None):
        dtype = next(model.parameters()).dtype
        dtype = dtype if dtype in (torch.float32, torch.float64) else torch.float32
        u = torch.rand(ids.shape[0], generator=generator, device=ids.device, dtype=dtype)
        # t ~ U[0, t_max], or t = ρ⁻¹(u): as many training times per share of decoding error
        t = self.path.t_max * u if self._warp is None else self._warp.inverse(u).to(dtype)
        return masked_cross_entropy(self.denoise_at(model, ids, given, t, generator), ids, given)

    def noisy(self, ids: Tensor, given: Tensor, t: Tensor, vocab: int, dtype: torch.dtype,
              generator: torch.Generator | None = None) -> Tensor:
        """z_t = ψ_t(z0, z1(ids)) with z0 ~ p0, given positions at their clean target. (B,S,V)

        Written in place into one fresh buffer by the path's fused noising (no dense one-hot
        target, no logsumexp where the path's coordinates do not see it)."""
        z = self.path.noise_(torch.empty((*ids.shape, vocab), dtype=dtype, device=ids.device), ids, t, generator)
        if given.any():
            z[given] = self.path.target(ids[given], vocab, dtype)
        return z

    def denoise_at(self, model, ids: Tensor, given: Tensor, t: Tensor,
                   generator: torch.Generator | None = None) -> Tensor:
        """Denoiser logits (B,S,V) at times t (B,) on a fresh noising of ids (B,S)."""
        z_t = self.noisy(ids, given, t, backbone_config(model).vocab_size, t.dtype, generator)
        return model(self.path.model_input(z_t), t)  # (B, S, V)

    def sample(self, model, batch_size, seq_len, cfg, *, given_ids=None, given_mask=None,
               generator=None):
        device = next(model.parameters()).device
        dtype = next(model.parameters()).dtype
        # the state in float32 (float64 only for a float64 model); draws are float64 regardless
        state = torch.float64 if dtype == torch.float64 else torch.float32

        def denoise(x: Tensor, t: Tensor) -> Tensor:
            logits = model(x if x.dtype == dtype else x.to(dtype), t.to(torch.float32))  # (B, S, V)
            # bf16 logits (autocast on CUDA) are widened: the ODE step and softmax run in float32
            return logits if logits.dtype in (torch.float32, torch.float64) else logits.float()

        shape = (batch_size, seq_len, model.config.vocab_size)
        return sample_path(self.path, denoise, shape, cfg, given_ids=given_ids,
                           given_mask=given_mask, generator=generator, device=device, dtype=state,
                           times=self.time_grid(self.path, grid_intervals(cfg), cfg.grid))


def register_path_methods() -> None:
    """Register a :class:`PathMethod` under every path name not already a method."""
    for name in PATHS.names():
        if name in METHODS:
            continue
        doc = (PATHS.get(name).__doc__ or "").strip().splitlines()
        cls = type(f"{PATHS.get(name).__name__}Method", (PathMethod,), {
            "path_name": name,
            "__doc__": f"simplex path '{name}' trained with the KL-flow objective"
                       + (f" ({doc[0].rstrip('.')})" if doc else ""),
            "__module__": __name__,
        })
        METHODS.add(name, cls, *PATHS.aliases_of(name))
