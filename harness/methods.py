"""The method interface the trainer and the samplers see, and simplex paths wrapped as methods.

A *method* is anything trainable on the shared backbone: every simplex path (wrapped here by
:class:`PathMethod`) and every baseline in ``baselines/``. All of them live in the
``BASELINES`` registry; :func:`register_path_methods` adds one method per registered path, so
a path added through a plugin is trainable and comparable with nothing else written.
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from typing import ClassVar

import torch
import torch.nn.functional as F
from torch import Tensor

from harness.registry import BASELINES, PATHS
from harness.sampling import SAMPLERS, SamplerConfig, check_sampler, sample_path


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

    def __init__(self, **options: object) -> None:
        self._options = dict(options)

    def options(self) -> dict:
        """Everything needed to rebuild this method (stored in checkpoints and results)."""
        return dict(self._options)

    def sampler_config(self, method_name: str, spec: SamplerConfig | dict) -> SamplerConfig:
        """``spec`` as a SamplerConfig checked against this method's samplers; a dict without a
        ``name`` gets the method's default sampler."""
        if isinstance(spec, dict):
            spec = SamplerConfig(**{**spec, "name": spec.get("name") or self.samplers[0]})
        check_sampler(method_name, spec, self.samplers)
        return spec

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

    def __init__(self, **options: object) -> None:
        super().__init__(**options)
        # not PATHS.build: the method registry already names the component in its errors
        self.path = PATHS.get(self.path_name)(**options)

    def options(self) -> dict:
        return self.path.options()

    def loss(self, model, ids, given, generator=None):
        batch, seq_len = ids.shape
        vocab = backbone_config(model).vocab_size
        dtype = next(model.parameters()).dtype
        dtype = dtype if dtype in (torch.float32, torch.float64) else torch.float32
        t = torch.rand(batch, generator=generator, device=ids.device, dtype=dtype) * self.path.t_max
        z0 = self.path.sample_prior((batch, seq_len, vocab), generator=generator, dtype=dtype,
                                    device=ids.device)
        z1 = self.path.target(ids, vocab, dtype)
        z_t = torch.where(given.unsqueeze(-1), z1, self.path.interpolate(z0, z1, t))
        logits = model(self.path.model_input(z_t), t)  # (B, S, V)
        return masked_cross_entropy(logits, ids, given)

    def sample(self, model, batch_size, seq_len, cfg, *, given_ids=None, given_mask=None,
               generator=None):
        device = next(model.parameters()).device
        dtype = next(model.parameters()).dtype

        def denoise(x: Tensor, t: Tensor) -> Tensor:
            return model(x.to(dtype), t.to(torch.float32))

        shape = (batch_size, seq_len, model.config.vocab_size)
        return sample_path(self.path, denoise, shape, cfg, given_ids=given_ids,
                           given_mask=given_mask, generator=generator, device=device)


def register_path_methods() -> None:
    """Register a :class:`PathMethod` under every path name not already a method."""
    for name in PATHS.names():
        if name in BASELINES:
            continue
        doc = (PATHS.get(name).__doc__ or "").strip().splitlines()
        cls = type(f"{PATHS.get(name).__name__}Method", (PathMethod,), {
            "path_name": name,
            "__doc__": f"simplex path '{name}' trained with the KL-flow objective"
                       + (f" ({doc[0].rstrip('.')})" if doc else ""),
            "__module__": __name__,
        })
        BASELINES.add(name, cls, *PATHS.aliases_of(name))
