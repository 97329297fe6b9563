"""pathbench checkpoints as an lm-evaluation-harness model, so lm-eval's generative tasks run
on every method.

``generate_until``: the prompt is given (clamped), ``max_gen_toks`` free positions follow
(capped by the run's sequence length; an over-long prompt keeps its last tokens, as lm-eval's
HF model does), the method fills them, and the text is cut at the first ``until`` string.
Log-likelihood requests need an exact likelihood, which flow and diffusion samplers do not
give: they fail with a message saying so.

    lm_eval.simple_evaluate(model="pathbench", model_args="ckpt=runs/kl,nfe=64", tasks=[...])

Sampler keys not given (``top_k``, ``final``, ``final_at``) come from the run's generation
protocol, or from ``protocol=plain|kl-flow``; ``top_k=none`` asks for the full vocabulary.
"""

from __future__ import annotations

from pathlib import Path

from lm_eval.api.model import LM
from lm_eval.api.registry import register_model

from harness.core.errors import ConfigError
from harness.engine.generate import generate
from harness.engine.protocol import sampling_setup
from harness.engine.run import load_run


@register_model("pathbench")
class PathbenchLM(LM):
    def __init__(self, ckpt: str, sampler: str | None = None, nfe: int = 64, t_star: float = 0.28,
                 top_k: int | str | None = None, temperature: float = 1.0, max_gen_toks: int = 32,
                 batch_size: int = 16, seed: int = 0, device: str = "cpu", protocol: str | None = None,
                 final: str | None = None, final_at: str | None = None, **unused) -> None:
        super().__init__()
        method, self.model, self.tok, self.meta, _, _ = load_run(Path(ckpt), device)
        explicit = {"name": sampler, "nfe": int(nfe), "t_star": float(t_star), "temperature": float(temperature)}
        if top_k is not None:  # not given: the protocol's; "none": the full vocabulary
            explicit["top_k"] = None if str(top_k).lower() in ("none", "all") else int(top_k)
        explicit.update({k: v for k, v in (("final", final), ("final_at", final_at)) if v is not None})
        self.method, self.sampler, self.protocol = sampling_setup(method, self.meta, protocol, explicit)
        self.seq_len = self.meta["data"]["seq_len"]
        self.max_gen_toks, self.batch_size, self.seed = int(max_gen_toks), int(batch_size), int(seed)

    def _request(self, prompt: str, max_new: int) -> list[str | int]:
        new = max(1, min(max_new, self.max_gen_toks, self.seq_len - 1))
        ids = self.tok.encode(prompt)[-(self.seq_len - new):]  # keep the end of a long prompt
        return [self.tok.decode(ids), new] if ids else [new]

    def generate_until(self, requests, disable_tqdm: bool = False) -> list[str]:
        parts, stops = [], []
        for request in requests:
            prompt, kwargs = request.args
            until = kwargs.get("until") or []
            stops.append([until] if isinstance(until, str) else list(until))
            parts.append(self._request(prompt, int(kwargs.get("max_gen_toks", self.max_gen_toks))))
        if self.method.requires_prefix and any(isinstance(p[0], int) for p in parts):
            raise ConfigError("the autoregressive baseline cannot answer an empty prompt")
        texts = generate(self.method, self.model, self.tok, parts, self.sampler, seq_len=self.seq_len,
                         batch_size=self.batch_size, seed=self.seed)
        answers = []
        for (text,), until in zip((t[0] for t in texts), stops):
            for stop in until:
                text = text.split(stop)[0] if stop else text
            answers.append(text)
        return answers

    def loglikelihood(self, requests, disable_tqdm: bool = False):
        raise ConfigError("pathbench models answer generative tasks (output_type: generate_until) "
                          "only: flow and diffusion samplers give no exact log-likelihood")

    def loglikelihood_rolling(self, requests, disable_tqdm: bool = False):
        return self.loglikelihood(requests)
