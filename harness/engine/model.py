"""The one transformer backbone every method trains.

Pre-norm blocks with rotary positions, bidirectional (denoisers) or causal (the
autoregressive baseline) attention, and DiT-style adaLN-zero time conditioning (the KL-flow
paper's best way to feed t). The input is either token ids (B,S) or dense vectors (B,S,V) —
simplex probabilities, or any real vectors such as a noised one-hot — which are multiplied
into the same token-embedding matrix, so ids and one-hot vectors give the same result.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, fields

import torch
import torch.nn as nn
import torch.nn.functional as F
from torch import Tensor

from pathbench.core.errors import ConfigError


@dataclass
class ModelConfig:
    vocab_size: int
    max_seq_len: int        # rotary tables and KV caches are built for this many positions
    n_layer: int = 4
    n_head: int = 4
    d_model: int = 128
    mlp_ratio: int = 4
    dropout: float = 0.0
    causal: bool = False    # bidirectional denoisers by default; True for the AR baseline
    time_cond: bool = True  # adaLN-zero on t; False = plain LayerNorm and no t (AR baseline)
    tie_embeddings: bool = True
    rope_base: float = 10000.0
    cond_dim: int = 128  # width of the time embedding feeding adaLN (SEDD/DiT style)
    two_time: bool = False  # a flow-map student: conditioned on a start time s and an end time t
    #: recompute each block's activations in the backward pass instead of storing them (training
    #: memory ∝ one block, ≈ 1/3 more compute; model.activation_checkpointing=true for 1.5 B)
    activation_checkpointing: bool = False


PRESETS: dict[str, dict] = {
    "tiny": dict(n_layer=4, n_head=4, d_model=128),          # ≈1.3 M non-embedding, CPU tests
    "small": dict(n_layer=6, n_head=6, d_model=384),         # ≈12.6 M non-embedding, CPU runs
    "paper-150m": dict(n_layer=12, n_head=12, d_model=768),  # ≈92 M + embeddings (131 M at V = 50 257)
    "paper-1.5b": dict(n_layer=52, n_head=24, d_model=1536),  # ≈1.53 B, the paper's largest
}


def model_config(preset: str, vocab_size: int, max_seq_len: int, **overrides) -> ModelConfig:
    """A preset's architecture for a vocabulary and length, with field overrides."""
    if preset not in PRESETS:
        raise ConfigError(f"unknown preset '{preset}'; known: {', '.join(sorted(PRESETS))}")
    known = {f.name for f in fields(ModelConfig)} - {"vocab_size", "max_seq_len"}
    for key, value in overrides.items():
        if key not in known:
            raise ConfigError(f"unknown model option '{key}'; known: {', '.join(sorted(known))}")
        _check_type(key, value)
    cfg = ModelConfig(vocab_size=vocab_size, max_seq_len=max_seq_len, **{**PRESETS[preset], **overrides})
    if cfg.d_model % cfg.n_head or (cfg.d_model // cfg.n_head) % 2:
        raise ConfigError(f"d_model = {cfg.d_model} must split into {cfg.n_head} heads of even width")
    return cfg


KIND_WORDS = {bool: "true or false", int: "an integer", float: "a number"}


def _check_type(key: str, value: object) -> None:
    """An override of the type of its field's default (an int where a float is asked is one), so
    that a string from an experiment file fails here, not in the middle of a training step."""
    default = next(f.default for f in fields(ModelConfig) if f.name == key)
    kind = type(default)
    ok = isinstance(value, bool) if kind is bool else \
        (isinstance(value, (int, float)) and not isinstance(value, bool) and (kind is float or isinstance(value, int)))
    if not ok:
        raise ConfigError(f"model option {key} = {value!r} must be {KIND_WORDS[kind]}")


def rotary_tables(seq_len: int, head_dim: int, base: float) -> tuple[Tensor, Tensor]:
    """cos, sin of shape (S, head_dim/2) for rotary position embeddings."""
    inv_freq = 1.0 / base ** (torch.arange(0, head_dim, 2, dtype=torch.float32) / head_dim)
    angles = torch.outer(torch.arange(seq_len, dtype=torch.float32), inv_freq)
    return angles.cos(), angles.sin()


def apply_rotary(x: Tensor, cos: Tensor, sin: Tensor) -> Tensor:
    """Rotate pairs (x1, x2) of the last axis of x (B, H, S, D) by the position angles."""
    x1, x2 = x[..., 0::2], x[..., 1::2]
    cos, sin = cos.to(x.dtype), sin.to(x.dtype)
    return torch.stack((x1 * cos - x2 * sin, x1 * sin + x2 * cos), dim=-1).flatten(-2)


def modulate(x: Tensor, shift: Tensor, scale: Tensor) -> Tensor:
    return x * (1 + scale.unsqueeze(1)) + shift.unsqueeze(1)


class KVCache:
    """Pre-allocated keys and values for causal incremental decoding.

    Feed a prompt, then one token (or any chunk) at a time: each forward appends its keys and
    values at ``pos`` and the model advances ``pos`` once every layer has run. Build it with
    ``model.make_kv_cache(batch)`` so its device and dtype match the weights."""

    def __init__(self, cfg: ModelConfig, batch: int, device=None, dtype=torch.float32) -> None:
        shape = (cfg.n_layer, batch, cfg.n_head, cfg.max_seq_len, cfg.d_model // cfg.n_head)
        self.k = torch.zeros(shape, device=device, dtype=dtype)  # (L, B, H, S_max, Dh)
        self.v = torch.zeros(shape, device=device, dtype=dtype)
        self.batch = batch
        self.pos = 0  # tokens already stored = absolute position of the next token

    def update(self, layer: int, k: Tensor, v: Tensor) -> tuple[Tensor, Tensor]:
        """Store k, v (B, H, S, Dh) after the cached ones; return all keys/values so far."""
        end = self.pos + k.shape[2]
        self.k[layer, :, :, self.pos:end] = k
        self.v[layer, :, :, self.pos:end] = v
        return self.k[layer, :, :, :end], self.v[layer, :, :, :end]

    def reset(self) -> None:
        self.pos = 0  # stale entries past pos are never read


class Attention(nn.Module):
    def __init__(self, cfg: ModelConfig) -> None:
        super().__init__()
        self.n_head, self.causal, self.dropout = cfg.n_head, cfg.causal, cfg.dropout
        self.qkv = nn.Linear(cfg.d_model, 3 * cfg.d_model, bias=False)
        self.proj = nn.Linear(cfg.d_model, cfg.d_model, bias=False)
        self.drop = nn.Dropout(cfg.dropout)

    def forward(self, x: Tensor, cos: Tensor, sin: Tensor, cache: KVCache | None, layer: int) -> Tensor:
        B, S, D = x.shape
        q, k, v = self.qkv(x).view(B, S, 3, self.n_head, D // self.n_head).permute(2, 0, 3, 1, 4)
        q, k = apply_rotary(q, cos, sin), apply_rotary(k, cos, sin)  # (B, H, S, Dh)
        is_causal, mask = self.causal, None
        if cache is not None:
            start = cache.pos
            k, v = cache.update(layer, k, v)  # (B, H, start + S, Dh)
            # SDPA's is_causal aligns the mask top-left, which is only right when nothing is
            # cached; a chunk after a prefix needs query i to see keys 0..start+i explicitly
            is_causal = S > 1 and start == 0
            if S > 1 and start > 0:
                mask = torch.ones(S, start + S, dtype=torch.bool, device=x.device).tril(start)
        y = F.scaled_dot_product_attention(q, k, v, attn_mask=mask, is_causal=is_causal,
                                           dropout_p=self.dropout if self.training else 0.0)
        return self.drop(self.proj(y.transpose(1, 2).reshape(B, S, D)))  # (B, S, D)


class Block(nn.Module):
    def __init__(self, cfg: ModelConfig) -> None:
        super().__init__()
        affine = not cfg.time_cond  # with adaLN the modulation supplies scale and shift
        self.norm1 = nn.LayerNorm(cfg.d_model, elementwise_affine=affine)
        self.attn = Attention(cfg)
        self.norm2 = nn.LayerNorm(cfg.d_model, elementwise_affine=affine)
        hidden = cfg.mlp_ratio * cfg.d_model
        self.mlp = nn.Sequential(nn.Linear(cfg.d_model, hidden), nn.GELU(approximate="tanh"),
                                 nn.Linear(hidden, cfg.d_model), nn.Dropout(cfg.dropout))
        # adaLN-zero: shift/scale/gate for attention and MLP, from the time embedding
        self.ada = nn.Linear(cfg.cond_dim, 6 * cfg.d_model) if cfg.time_cond else None

    def forward(self, x: Tensor, c: Tensor | None, cos: Tensor, sin: Tensor,
                cache: KVCache | None = None, layer: int = 0) -> Tensor:
        if self.ada is None:
            x = x + self.attn(self.norm1(x), cos, sin, cache, layer)
            return x + self.mlp(self.norm2(x))
        shift1, scale1, gate1, shift2, scale2, gate2 = self.ada(F.silu(c)).chunk(6, dim=-1)  # (B, D) each
        x = x + gate1.unsqueeze(1) * self.attn(modulate(self.norm1(x), shift1, scale1), cos, sin, cache, layer)
        return x + gate2.unsqueeze(1) * self.mlp(modulate(self.norm2(x), shift2, scale2))


class TimeEmbedding(nn.Module):
    """t in [0, 1] -> sinusoidal features -> MLP -> (B, cond_dim)."""

    def __init__(self, cond_dim: int, n_freq: int = 256) -> None:
        super().__init__()
        self.n_freq = n_freq
        self.mlp = nn.Sequential(nn.Linear(n_freq, cond_dim), nn.SiLU(), nn.Linear(cond_dim, cond_dim))

    def forward(self, t: Tensor) -> Tensor:
        half = self.n_freq // 2
        freqs = torch.exp(-math.log(10000.0) * torch.arange(half, device=t.device) / half)
        args = 1000.0 * t.float()[:, None] * freqs[None]  # scale t so low frequencies still resolve it
        emb = torch.cat([args.cos(), args.sin()], dim=-1)
        return self.mlp(emb.to(self.mlp[0].weight.dtype))


class Transformer(nn.Module):
    def __init__(self, cfg: ModelConfig) -> None:
        super().__init__()
        self.config = cfg
        self.embed = nn.Embedding(cfg.vocab_size, cfg.d_model)
        self.time = TimeEmbedding(cfg.cond_dim) if cfg.time_cond else None
        # the jump t_end - t of a two-time model; zero at init, so a student initialised from its
        # teacher starts as the teacher's denoiser for every jump
        self.jump = TimeEmbedding(cfg.cond_dim) if cfg.time_cond and cfg.two_time else None
        self.drop = nn.Dropout(cfg.dropout)
        self.blocks = nn.ModuleList(Block(cfg) for _ in range(cfg.n_layer))
        self.norm = nn.LayerNorm(cfg.d_model, elementwise_affine=not cfg.time_cond)
        self.final_ada = nn.Linear(cfg.cond_dim, 2 * cfg.d_model) if cfg.time_cond else None
        self.head = nn.Linear(cfg.d_model, cfg.vocab_size, bias=False)
        if cfg.tie_embeddings:
            self.head.weight = self.embed.weight
        cos, sin = rotary_tables(cfg.max_seq_len, cfg.d_model // cfg.n_head, cfg.rope_base)
        self.register_buffer("rope_cos", cos, persistent=False)
        self.register_buffer("rope_sin", sin, persistent=False)
        self.apply(self._init)
        for module in [*(b.ada for b in self.blocks), self.final_ada]:
            if module is not None:  # adaLN-zero: every block starts as the identity
                nn.init.zeros_(module.weight)
                nn.init.zeros_(module.bias)
        if self.jump is not None:
            nn.init.zeros_(self.jump.mlp[-1].weight)
            nn.init.zeros_(self.jump.mlp[-1].bias)

    @staticmethod
    def _init(module: nn.Module) -> None:
        if isinstance(module, (nn.Linear, nn.Embedding)):
            nn.init.normal_(module.weight, std=0.02)
            if getattr(module, "bias", None) is not None:
                nn.init.zeros_(module.bias)

    def forward(self, x: Tensor, t: Tensor | float | None = None, kv_cache: KVCache | None = None,
                t_end: Tensor | float | None = None) -> Tensor:
        """x: ids (B,S) or vectors (B,S,V); t: (B,) or scalar in [0,1]; ``t_end`` (B,) or scalar,
        a two-time model's end time (default t: the diagonal). Returns logits (B,S,V)."""
        cfg = self.config
        dense = x.is_floating_point()
        if x.dim() != (3 if dense else 2):
            kind = "vectors (B, S, V)" if dense else "token ids (B, S)"
            raise ConfigError(f"input of shape {tuple(x.shape)} is not {kind}")
        B, S = x.shape[:2]
        start = kv_cache.pos if kv_cache is not None else 0
        if start + S > cfg.max_seq_len:
            raise ConfigError(f"sequence length {start + S} exceeds the preset's maximum {cfg.max_seq_len}")
        if kv_cache is not None:
            if not cfg.causal:
                raise ConfigError("a KV cache needs a causal model (causal=True)")
            if kv_cache.batch != B:
                raise ConfigError(f"batch {B} does not match the KV cache's batch {kv_cache.batch}")
        if dense:
            if x.shape[-1] != cfg.vocab_size:
                raise ConfigError(f"input has {x.shape[-1]} classes, the model's vocabulary is {cfg.vocab_size}")
            # the same matrix as the lookup, so a one-hot row gives exactly the id's embedding;
            # float64 simplex inputs are cast down here, not in every caller
            h = x.to(self.embed.weight.dtype) @ self.embed.weight  # (B, S, V) @ (V, D) -> (B, S, D)
        else:
            h = self.embed(x)  # (B, S, D)
        c = None
        if self.time is not None:
            if t is None:
                raise ConfigError("this model is time-conditioned: pass t")
            t = torch.as_tensor(t, device=h.device).float().reshape(-1)
            if t.numel() not in (1, B):
                raise ConfigError(f"t has {t.numel()} values for a batch of {B}")
            c = self.time(t.expand(B))  # (B, cond_dim)
            if self.jump is not None:
                end = t if t_end is None else torch.as_tensor(t_end, device=h.device).float().reshape(-1)
                c = c + self.jump((end - t).expand(B))
            elif t_end is not None:
                raise ConfigError("t_end needs a two-time model (model option two_time=true)")
        cos, sin = self.rope_cos[start:start + S], self.rope_sin[start:start + S]
        h = self.drop(h)
        recompute = cfg.activation_checkpointing and self.training and torch.is_grad_enabled() and kv_cache is None
        for layer, block in enumerate(self.blocks):
            if recompute:  # dropout's RNG is replayed by checkpoint (preserve_rng_state)
                h = torch.utils.checkpoint.checkpoint(block, h, c, cos, sin, None, layer, use_reentrant=False)
            else:
                h = block(h, c, cos, sin, kv_cache, layer)
        h = self.norm(h)
        if self.final_ada is not None:
            shift, scale = self.final_ada(F.silu(c)).chunk(2, dim=-1)
            h = modulate(h, shift, scale)
        if kv_cache is not None:
            kv_cache.pos += S
        return self.head(h)  # (B, S, V)

    def make_kv_cache(self, batch: int) -> KVCache:
        """An empty cache on the weights' device and dtype, for causal incremental decoding."""
        w = self.embed.weight
        return KVCache(self.config, batch, device=w.device, dtype=w.dtype)

    def num_params(self, non_embedding: bool = True) -> int:
        """Parameters; non_embedding leaves out the token-embedding matrix (shared with the
        output head when tied; an untied head counts as non-embedding)."""
        total = sum(p.numel() for p in self.parameters())  # parameters() yields a tied matrix once
        return total - self.embed.weight.numel() if non_embedding else total

    def flops_per_token(self, seq_len: int) -> float:
        """Training FLOPs per token (forward + backward), the PaLM appendix B / nanoGPT estimate:

            6·N + 12·n_layer·d_model·seq_len

        6·N: every weight does one multiply-add (2 FLOPs) forward and two backward. N is the
        non-embedding count plus the output head's V×D matmul (a dense (B,S,V) input costs one
        more V×D matmul, left out so that every method is charged the same). 12·L·D·S: the
        QKᵀ and attention-times-V matmuls, forward and backward (as if unmasked; causal kernels
        may skip about half)."""
        cfg = self.config
        n = self.num_params(non_embedding=True)
        if cfg.tie_embeddings:  # an untied head is already inside the non-embedding count
            n += cfg.vocab_size * cfg.d_model
        return 6 * n + 12 * cfg.n_layer * cfg.d_model * seq_len
