"""The oracle language: a hidden Markov model over V tokens whose law is known exactly.

Spec ``oracle:`` + comma-separated ``key=value`` (every key optional, see :data:`DEFAULTS`):

* ``V``: vocabulary size (the model has V + 1 outputs: EOS is id V and never occurs in the data);
* ``H``: hidden states; ``k``: tokens each state emits, with Zipf weights ``r^-zipf`` over
  its ranks r = 1..k; ``pool``: how many distinct tokens the states draw their k from
  (default min(V, H·k): disjoint supports where V allows; fewer makes supports overlap, so a token no longer names
  its state); ``floor``: emission mass spread uniformly over all V tokens (every sequence has
  a finite likelihood, so a sample that leaves the support is scored, not infinite);
* ``succ``: successors per state (transition sparsity): state s moves to s+1 (mod H, so the
  chain is irreducible) and ``succ`` − 1 other states drawn at random, with Dirichlet(1)
  weights; the first state is drawn from the stationary distribution (a stationary process);
* ``seed``; ``n``: sequences generated; ``len``: their length (default and only allowed
  value: the data's ``seq_len``, the model's length).

The structure (supports in pool indices, transitions) comes from one random stream and the
pool → token-id map from another, so ``V=64`` and ``V=8192`` with the other keys equal are the
same HMM up to the names of its tokens (and the floor's spread): the control for vocabulary
size. Sequence i is drawn from the stream of its block of 1,024 (prefix-stable in ``n``) and is
validation when ``i % round(1/val_fraction)`` is the last residue (a split by index).

Likelihood (written beside the data, ``hmm.npz`` + ``hmm.json``)::

    p(x_1..S) = Σ_z start[z_1] E[z_1, x_1] Π_{t≥2} T[z_{t-1}, z_t] E[z_t, x_t]
    E[z, v]   = (1 − floor)·P_z(v) + floor / V,   P_z(support[z, r]) = support_p[z, r]

computed by the scaled forward algorithm in float64: α_t ∝ (α_{t-1} T) ⊙ E[:, x_t], with
−log p(x_t | x_<t) the log of each step's normaliser.
"""

from __future__ import annotations

import json
import math
from dataclasses import asdict, dataclass, fields, replace
from pathlib import Path

import numpy as np
import torch

from pathbench.core.errors import ConfigError

PREFIX = "oracle"
BLOCK = 1024  # sequences per random stream
#: the defaults: the tiny AR preset gets near the entropy rate in a few CPU minutes (README "Oracle")
DEFAULTS = {"V": 8192, "H": 8, "k": 8, "pool": None, "zipf": 1.0, "succ": 3, "floor": 1e-3, "seed": 0,
            "n": 20000, "len": None}


@dataclass(frozen=True)
class OracleSpec:
    """The parameters of an oracle corpus (names as in the spec string)."""

    V: int = DEFAULTS["V"]
    H: int = DEFAULTS["H"]
    k: int = DEFAULTS["k"]
    pool: int | None = None
    zipf: float = DEFAULTS["zipf"]
    succ: int = DEFAULTS["succ"]
    floor: float = DEFAULTS["floor"]
    seed: int = DEFAULTS["seed"]
    n: int = DEFAULTS["n"]
    len: int | None = None

    @classmethod
    def parse(cls, spec: str) -> OracleSpec:
        head, _, body = spec.partition(":")
        if head != PREFIX:
            raise ConfigError(f"'{spec}' is not an oracle corpus (oracle:key=value,...)")
        types = {f.name: (float if f.name in ("zipf", "floor") else int) for f in fields(cls)}
        values: dict[str, float | int] = {}
        for item in filter(None, (p.strip() for p in body.split(","))):
            key, eq, raw = item.partition("=")
            if key not in types or not eq:
                raise ConfigError(f"oracle corpus: unknown parameter '{item}'; known: {', '.join(types)} "
                                  "(as key=value)")
            try:
                values[key] = types[key](raw)
            except ValueError:
                kind = "an integer" if types[key] is int else "a number"
                raise ConfigError(f"oracle corpus: {key} = '{raw}' is not {kind}") from None
        return cls(**values).checked()

    def checked(self) -> OracleSpec:
        pool = min(self.V, self.H * self.k) if self.pool is None else self.pool
        rules = [(self.V >= 2, f"V = {self.V} must be >= 2"), (self.H >= 1, f"H = {self.H} must be >= 1"),
                 (self.k >= 1, f"k = {self.k} (tokens per state) must be >= 1"),
                 (self.k <= pool <= self.V, f"pool = {pool} must be between k = {self.k} and V = {self.V}"),
                 (self.zipf > 0 and math.isfinite(self.zipf), f"zipf = {self.zipf} (Zipf exponent) must be > 0"),
                 (1 <= self.succ <= self.H, f"succ = {self.succ} (successors per state) must be in [1, H = {self.H}]"),
                 (0 <= self.floor < 1, f"floor = {self.floor} must be in [0, 1)"),
                 (self.seed >= 0, f"seed = {self.seed} must be >= 0"), (self.n >= 2, f"n = {self.n} must be >= 2"),
                 (self.len is None or self.len >= 1, f"len = {self.len} must be >= 1")]
        for ok, message in rules:
            if not ok:
                raise ConfigError(f"oracle corpus: {message}")
        return replace(self, pool=pool)

    def for_length(self, seq_len: int) -> OracleSpec:
        """The spec at the data's sequence length; a ``len`` other than it is refused."""
        if self.len is not None and self.len != seq_len:
            longer = "longer than" if self.len > seq_len else "different from"
            raise ConfigError(f"oracle corpus: len = {self.len} is {longer} the model's seq_len = {seq_len}; "
                              "drop len or set data.seq_len to it")
        return replace(self, len=seq_len)

    def canonical(self) -> str:
        """``oracle:`` and every parameter in a fixed order (the cache key and the record)."""
        return PREFIX + ":" + ",".join(f"{k}={v}" for k, v in asdict(self).items() if v is not None)

    def law(self) -> str:
        """The spec of the HMM alone (``n`` and ``len`` size a corpus, not its law): the scorer's name."""
        return PREFIX + ":" + ",".join(f"{k}={v}" for k, v in asdict(self.checked()).items()
                                       if v is not None and k not in ("n", "len"))


def is_oracle(corpus: str) -> bool:
    return corpus == PREFIX or corpus.startswith(PREFIX + ":")


@dataclass
class HMM:
    """An HMM with sparse Zipf emissions over V tokens (float64 throughout)."""

    spec: OracleSpec
    start: np.ndarray      # (H,) stationary distribution of the hidden chain
    trans: np.ndarray      # (H, H) row-stochastic, ``succ`` non-zeros per row
    support: np.ndarray    # (H, k) token ids each state emits, by Zipf rank
    support_p: np.ndarray  # (H, k) their probabilities (rows sum to 1)

    @classmethod
    def build(cls, spec: OracleSpec) -> HMM:
        spec = spec.checked()
        H, k = spec.H, spec.k
        rng = np.random.default_rng([spec.seed, 0])  # the structure, independent of V
        if spec.pool == H * k:  # disjoint supports: a random partition of the pool
            members = rng.permutation(spec.pool).reshape(H, k)
        else:  # each state's k tokens drawn from the pool: overlapping (or partly unused) supports
            members = np.stack([rng.choice(spec.pool, k, replace=False) for _ in range(H)])
        trans = np.zeros((H, H))
        for s in range(H):
            others = np.setdiff1d(np.arange(H), [(s + 1) % H])
            nexts = np.concatenate([[(s + 1) % H], rng.choice(others, spec.succ - 1, replace=False)])
            trans[s, nexts] = rng.dirichlet(np.ones(spec.succ))
        ranks = np.arange(1, k + 1, dtype=np.float64) ** -spec.zipf
        names = np.random.default_rng([spec.seed, 1]).permutation(spec.V)[:spec.pool]  # pool -> token ids
        return cls(spec, stationary(trans), trans, names[members], np.tile(ranks / ranks.sum(), (H, 1)))

    @property
    def emit(self) -> np.ndarray:
        """(H, V) E[z, v] = (1 − floor)·P_z(v) + floor / V."""
        out = np.full((self.spec.H, self.spec.V), self.spec.floor / self.spec.V)
        np.add.at(out, (np.arange(self.spec.H)[:, None], self.support), (1 - self.spec.floor) * self.support_p)
        return out

    # --- sampling --------------------------------------------------------------------
    def sample(self, count: int, length: int, rng: np.random.Generator) -> np.ndarray:
        """(count, length) int64 token ids drawn from the HMM (stationary start)."""
        z = _draw(np.tile(np.cumsum(self.start), (count, 1)), rng)
        cum_trans, cum_emit = np.cumsum(self.trans, 1), np.cumsum(self.support_p, 1)
        out = np.empty((count, length), dtype=np.int64)
        for t in range(length):
            token = self.support[z, _draw(cum_emit[z], rng)]
            uniform = rng.integers(self.spec.V, size=count)
            out[:, t] = np.where(rng.random(count) < self.spec.floor, uniform, token)
            z = _draw(cum_trans[z], rng)
        return out

    def sequences(self, first: int, last: int, length: int) -> np.ndarray:
        """Sequences first..last-1 of the corpus (each block of :data:`BLOCK` its own stream)."""
        blocks = [self.sample(BLOCK, length, np.random.default_rng([self.spec.seed, 2, b]))
                  for b in range(first // BLOCK, (last - 1) // BLOCK + 1)]
        return np.concatenate(blocks)[first - first // BLOCK * BLOCK:][:last - first]

    # --- likelihood ------------------------------------------------------------------
    def token_nll(self, token_lists: list[list[int]]) -> list[np.ndarray]:
        """−log p(x_t | x_<t) for every token of every sequence (float64, forward algorithm);
        an id outside [0, V) has probability 0 (NLL inf)."""
        if not token_lists:
            return []
        lengths = [len(ids) for ids in token_lists]
        width = max(lengths)
        ids = torch.zeros(len(token_lists), width, dtype=torch.long)
        valid = torch.zeros(len(token_lists), width, dtype=torch.bool)
        for row, seq in enumerate(token_lists):
            seq_t = torch.as_tensor(seq, dtype=torch.long)
            valid[row, :len(seq)] = (seq_t >= 0) & (seq_t < self.spec.V)
            ids[row, :len(seq)] = seq_t.clamp(0, self.spec.V - 1)
        nll = -torch.log(self.forward_filter(ids, valid)[1])
        return [nll[row, :n].numpy() for row, n in enumerate(lengths)]

    def forward_filter(self, ids: torch.Tensor, valid: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """The scaled forward recursion over a padded batch: ids, valid (B, L) (ids in [0, V);
        ``valid`` False gives a token probability 0) -> (p(z_t | x_<t) for t = 1..L+1: (B, L+1, H),
        p(x_t | x_<t): (B, L)), float64. A position of probability 0 leaves the state as it was."""
        emit = torch.from_numpy(self.emit).T.contiguous()  # (V, H)
        trans = torch.from_numpy(self.trans)
        B, L = ids.shape
        states = torch.empty(B, L + 1, self.spec.H, dtype=torch.float64)
        states[:, 0] = torch.from_numpy(self.start)
        norms = torch.empty(B, L, dtype=torch.float64)
        for t in range(L):
            alpha = states[:, t]
            joint = alpha * emit[ids[:, t]] * valid[:, t, None]  # (B, H)
            norms[:, t] = norm = joint.sum(1)  # (B,)
            states[:, t + 1] = torch.where(norm[:, None] > 0, joint / norm.clamp_min(1e-300)[:, None], alpha) @ trans
        return states, norms

    def token_posterior(self, log_lik: torch.Tensor) -> torch.Tensor:
        """The Bayes-optimal denoiser: log p(x^j = i | y^1..S) for every position j, given one
        independent observation y^j per position with log-likelihoods ``log_lik`` (B, S, V') =
        log p(y^j | x^j = i) up to a constant per position (V' >= V: ids >= V, e.g. EOS, get
        probability 0). Forward–backward over the hidden states with the observation's
        emission e_j(z) = Σ_i E[z, i] p(y^j | i), then

            p(x^j = i | y) ∝ p(y^j | i) · Σ_z α⁻_j(z) β_j(z) E[z, i],

        α⁻_j(z) = p(z_j = z, y^<j), β_j(z) = p(y^>j | z_j = z), both rescaled per step (float64)."""
        V = self.spec.V
        lik = log_lik[..., :V].double()
        top = lik.amax(-1, keepdim=True)
        lik = torch.exp(lik - top)  # (B, S, V), the largest 1 per position
        emit = torch.from_numpy(self.emit)  # (H, V)
        trans = torch.from_numpy(self.trans)
        obs = lik @ emit.T  # (B, S, H): e_j(z) up to a constant per position
        B, S, H = obs.shape
        before = torch.empty(B, S, H, dtype=torch.float64)  # α⁻_j, normalised
        alpha = torch.from_numpy(self.start).expand(B, H)
        for j in range(S):
            before[:, j] = alpha
            joint = alpha * obs[:, j]
            alpha = (joint / joint.sum(1, keepdim=True)) @ trans
        after = torch.empty(B, S, H, dtype=torch.float64)  # β_j, normalised
        beta = torch.ones(B, H, dtype=torch.float64)
        for j in range(S - 1, -1, -1):
            after[:, j] = beta
            beta = trans @ (obs[:, j] * beta).T
            beta = (beta / beta.sum(0, keepdim=True)).T
        state = before * after  # (B, S, H) ∝ p(z_j | y^≠j)
        post = torch.log(lik * ((state / state.sum(-1, keepdim=True)) @ emit))  # (B, S, V)
        post = torch.log_softmax(post, -1)
        if log_lik.shape[-1] > V:  # ids the HMM never emits
            post = torch.cat([post, torch.full((B, S, log_lik.shape[-1] - V), -math.inf, dtype=post.dtype)], -1)
        return post

    def entropy(self, length: int, count: int = 512, seed: int = 0) -> dict[str, float]:
        """Monte-Carlo entropies (nats per token) from ``count`` fresh sequences, with standard
        errors over sequences: ``per_token`` = H(X_1..len)/len (what the gen-PPL of the HMM's own
        samples of this length estimates) and ``rate`` = the entropy rate, estimated as the mean
        −log p(x_t | x_<t) over the second half of sequences of 4·len tokens."""
        rng = np.random.default_rng([self.spec.seed, 3, seed])
        short = np.stack(self.token_nll(self.sample(count, length, rng).tolist())).mean(1)
        long = np.stack(self.token_nll(self.sample(count, 4 * length, rng).tolist()))[:, 2 * length:].mean(1)
        sem = lambda x: float(x.std(ddof=1) / math.sqrt(len(x)))  # noqa: E731
        return {"per_token": float(short.mean()), "per_token_se": sem(short), "rate": float(long.mean()),
                "rate_se": sem(long), "sequences": count, "length": length}

    # --- files -----------------------------------------------------------------------
    def write(self, folder: Path, length: int) -> dict:
        """``hmm.npz`` (the arrays) and ``hmm.json`` (spec, formula, entropies) into ``folder``."""
        folder = Path(folder)
        np.savez(folder / "hmm.npz", start=self.start, trans=self.trans, support=self.support,
                 support_p=self.support_p, floor=np.float64(self.spec.floor), V=np.int64(self.spec.V))
        info = {"spec": self.spec.canonical(), "arrays": {"start": "(H,)", "trans": "(H, H)", "support": "(H, k)",
                                                         "support_p": "(H, k)"},
                "likelihood": "p(x_1..S) = sum_z start[z1] E[z1,x1] prod_t trans[z_{t-1},z_t] E[z_t,x_t]; "
                              "E[z,v] = (1-floor)*sum_r support_p[z,r]*[support[z,r]==v] + floor/V",
                "eos": f"id {self.spec.V}: never in the data", "entropy_nats": self.entropy(length)}
        (folder / "hmm.json").write_text(json.dumps(info, indent=1))
        return info

    @classmethod
    def read(cls, folder: Path, spec: OracleSpec) -> HMM:
        arrays = np.load(Path(folder) / "hmm.npz")
        return cls(spec, arrays["start"], arrays["trans"], arrays["support"], arrays["support_p"])


def stationary(trans: np.ndarray) -> np.ndarray:
    """π with π T = π, Σ π = 1 (least squares on the stacked system; the chain is irreducible)."""
    H = len(trans)
    system = np.vstack([trans.T - np.eye(H), np.ones((1, H))])
    pi = np.linalg.lstsq(system, np.concatenate([np.zeros(H), [1.0]]), rcond=None)[0]
    pi = np.clip(pi, 0, None)
    return pi / pi.sum()


def _draw(cumulative: np.ndarray, rng: np.random.Generator) -> np.ndarray:
    """One index per row of (N, K) cumulative probabilities (inverse CDF, float64)."""
    u = rng.random(len(cumulative))[:, None] * cumulative[:, -1:]
    return np.minimum((cumulative <= u).sum(1), cumulative.shape[1] - 1)
