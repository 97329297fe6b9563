"""The ``oracle`` scorer: samples scored by the exact likelihood of the HMM that made the data.

Specs: ``oracle`` (the HMM of the run being evaluated: its ``oracle:`` corpus; any other corpus is
refused) and ``oracle:<key=value,...>`` (an HMM named in full, e.g. to score a sample file).

Protocol: the text is read back to ids by the oracle's identity tokenizer (a word it does not
know — text of another corpus — is refused); it is cut at the first EOS (leading ones dropped)
and EOS is not scored, since the HMM has no end event and EOS never occurs in its data; every
other token is scored, the first included (the HMM starts stationary), by the forward
algorithm in float64. Gen-PPL under this scorer is therefore measured against the truth, and
the reference row — the HMM's own held-out samples — adds the entropy rate and the entropy
per token at the sample length (Monte Carlo over fresh sequences, with standard errors): its
gen-PPL estimates exp(entropy per token at that length), which a perfect model also scores.
"""

from __future__ import annotations

import math

import numpy as np
import torch

from pathbench.core.errors import ConfigError
from pathbench.core.registry import SCORERS
from pathbench.data.oracle import HMM, OracleSpec, is_oracle
from pathbench.data.tokenizer import EOS, WordTokenizer
from pathbench.tasks.scorers.causal_lm import CausalScorer

#: Monte-Carlo sequences behind the reference row's entropies (standard error ≈ 0.3 % of them)
TRUTH_SEQUENCES = 1024


class OracleScorer(CausalScorer):
    """Exact −log p(x_t | x_<t) under an :class:`~pathbench.data.oracle.HMM`."""

    def __init__(self, spec: str, device: str = "cpu") -> None:
        if not spec.startswith("oracle:"):
            raise ConfigError("scorer 'oracle' scores the samples of a run trained on an oracle: corpus, against "
                              "its HMM; without a run, name the HMM in full: --scorer oracle:V=...,H=...")
        self.oracle = OracleSpec.parse(spec)
        self.spec, self.device = spec, torch.device("cpu")  # a few (B, H) products: the CPU is enough
        self.hmm = HMM.build(self.oracle)
        self.tokenizer = WordTokenizer(self.oracle.V)
        self.eos_id = self.context_id = self.oracle.V
        self.max_length = 2**31 - 1  # the forward algorithm has no context window

    @staticmethod
    def bind(spec: str, data_cfg: dict) -> str:
        """The full spec of the HMM behind a run's data (``oracle``), or ``spec`` if it names that
        same HMM; samples of another corpus are refused with the reason."""
        corpus = data_cfg.get("corpus", "")
        if not is_oracle(corpus):
            raise ConfigError(f"scorer '{spec}' computes the likelihood under the HMM of an oracle: corpus; this run "
                              f"was trained on corpus '{corpus}' (score it with smollm2, hf:<model> or self:<run>)")
        own = OracleSpec.parse(corpus).law()
        if spec != "oracle" and OracleSpec.parse(spec).law() != own:
            raise ConfigError(f"scorer '{spec}' is another HMM than the one this run was trained on ({own}); "
                              "use scorer 'oracle' for the run's own")
        return own

    def encode(self, text: str) -> list[int]:
        return self.tokenizer.encode(text)

    def tokens_for(self, text: str) -> list[int]:
        while text.startswith(EOS):
            text = text[len(EOS):].lstrip()
        return self.encode(text.partition(EOS)[0])

    def nll_of_tokens(self, token_lists: list[list[int]], batch_size: int = 8) -> list[np.ndarray]:
        for i, ids in enumerate(token_lists):
            if not ids:
                raise ConfigError(f"sample {i} is empty after cutting at EOS; an empty sample has no perplexity")
        return self.hmm.token_nll(token_lists)

    def logits(self, ids: torch.Tensor, attention: torch.Tensor) -> torch.Tensor:
        """(B, L) -> (B, L, V + 1): log p(x_{t+1} = v | x_≤t) (EOS at −inf), the HMM's predictive law."""
        ids = ids.cpu()
        states, _ = self.hmm.forward_filter(ids.clamp(0, self.oracle.V - 1), (ids >= 0) & (ids < self.oracle.V))
        out = torch.full((*ids.shape, self.oracle.V + 1), -math.inf, dtype=torch.float64)
        out[..., :-1] = torch.log(states[:, 1:] @ torch.from_numpy(self.hmm.emit))  # p(z_{t+1} | x_≤t) @ E
        return out

    def protocol(self) -> dict:
        return {"scorer": self.spec, "nll": "exact: scaled forward algorithm of the HMM, float64",
                "rules": "identity tokenizer (unknown words refused); cut at the first EOS, EOS not scored (the HMM "
                         "has no end event); every token scored, the first included (stationary start)",
                "reference": "the HMM's own held-out samples; entropy_rate and entropy_per_token by Monte Carlo "
                             f"over {TRUTH_SEQUENCES} fresh sequences, with standard errors"}

    def truth(self, seq_len: int) -> dict[str, float]:
        """The entropy rate and the entropy per token at ``seq_len`` (nats), with their perplexities."""
        h = self.hmm.entropy(seq_len, count=TRUTH_SEQUENCES)
        return {"entropy_rate": h["rate"], "entropy_rate_se": h["rate_se"], "entropy_rate_ppl": math.exp(h["rate"]),
                "entropy_per_token": h["per_token"], "entropy_per_token_se": h["per_token_se"],
                "entropy_per_token_ppl": math.exp(h["per_token"])}


SCORERS.add("oracle", OracleScorer)
