"""What the command modules share: the one-line-error parser, argument types, the plugin
option every command takes and the sampler flags of ``sample`` and ``eval``."""

from __future__ import annotations

import argparse


class Parser(argparse.ArgumentParser):
    """argparse that reports a bad flag in one line (no usage block)."""

    def error(self, message: str) -> None:  # type: ignore[override]
        self.exit(2, f"{self.prog}: error: {message} (see {self.prog} --help)\n")


def comma_list(text: str) -> list[str]:
    items = [part.strip() for part in text.split(",") if part.strip()]
    if not items:
        raise argparse.ArgumentTypeError(f"expected a comma-separated list, got {text!r}")
    return items


class NotGiven:
    """The value of a flag that was not on the command line (:data:`NOT_GIVEN`): told apart from
    every value a flag can take, None included (``--top-k none`` is the full vocabulary)."""

    def __repr__(self) -> str:
        return "NOT_GIVEN"


#: the one "not given" of the command line; the default then is the engine's, written once there
#: (a sampler key: pathbench.engine.sampling.SamplerConfig or the generation protocol's)
NOT_GIVEN = NotGiven()


def given(value: object, default: object = None) -> object:
    """``value``, or ``default`` where the flag was not given."""
    return default if value is NOT_GIVEN else value


def top_k(text: str) -> int | None:
    """An integer, or ``none``/``all`` (None): the full vocabulary, explicitly."""
    if text.strip().lower() in ("none", "all"):
        return None
    try:
        return int(text)
    except ValueError as err:
        raise argparse.ArgumentTypeError(f"expected an integer or 'none', got {text!r}") from err


def memory_gb(text: str) -> float | str:
    """A number of GB, or ``auto`` (90 % of a CUDA device's free memory; no cap on the CPU) or ``none``."""
    if text.strip().lower() in ("auto", "none"):
        return text.strip().lower()
    try:
        return float(text)
    except ValueError as err:
        raise argparse.ArgumentTypeError(f"expected a number of GB, 'auto' or 'none', got {text!r}") from err


def draw_flags(parser: argparse.ArgumentParser) -> None:
    """How the draws of sample and eval are seeded, and the sampler's memory budget."""
    parser.add_argument("--seeding", choices=["batch", "row"], default="batch",
                        help="one random stream per batch (default; samples depend on --batch-size) or per "
                             "sample (row: independent of the batch and of memory chunking)")
    parser.add_argument("--memory-gb", type=memory_gb, default="auto",
                        help="the sampler's memory budget: GB, auto (90%% of a CUDA device's free memory, no "
                             "cap on the CPU) or none; a batch that would not fit is drawn in smaller ones")


PROTOCOL_HELP = "generation protocol: kl-flow (the KL-flow reference code) or plain (see README)"


def sampler_flags(parser: argparse.ArgumentParser) -> None:
    """The sampler flags of sample and eval. Each defaults to :data:`NOT_GIVEN`: a key not given
    takes the generation protocol's value (top_k, final, final_at) or SamplerConfig's default, so
    an explicit value is told apart from a default and every default is written once, there."""
    parser.add_argument("--protocol", default=NOT_GIVEN,
                        help=f"{PROTOCOL_HELP}; default: the one the checkpoint was trained with")
    parser.add_argument("--sampler", default=NOT_GIVEN,
                        help="simplex paths: basic, semi, sampling, hybrid; dfm: euler; sedd: tweedie, "
                             "euler; ar: ancestral; flowmap: flowmap; tuned: the choice of tune-tstar "
                             "(default: the method's first)")
    parser.add_argument("--nfe", type=int, default=NOT_GIVEN, help="denoiser calls")
    parser.add_argument("--t-star", type=float, default=NOT_GIVEN, help="hybrid switch time t*")
    parser.add_argument("--top-k", type=top_k, default=NOT_GIVEN,
                        help="an integer or none (full vocabulary); default: the protocol's (kl-flow: 1)")
    parser.add_argument("--top-p", type=float, default=NOT_GIVEN)
    parser.add_argument("--temperature", type=float, default=NOT_GIVEN)
    parser.add_argument("--grid", choices=["uniform", "log", "error"], default=NOT_GIVEN,
                        help="time grid (default: the path's own; error: the fitted decoding-error warp)")
    parser.add_argument("--final", choices=["argmax", "sample"], default=NOT_GIVEN,
                        help="the last call: argmax or a draw (default: the protocol's, argmax)")
    parser.add_argument("--final-at", choices=["last_step", "t_max"], default=NOT_GIVEN,
                        help="where the last call sits (default: the protocol's; kl-flow: t_max)")


#: flag (attribute) -> SamplerConfig key of the sampler flags
SAMPLER_FLAGS = {"sampler": "name", "nfe": "nfe", "t_star": "t_star", "top_k": "top_k", "top_p": "top_p",
                 "temperature": "temperature", "grid": "grid", "final": "final", "final_at": "final_at"}


def explicit_sampler(args: argparse.Namespace) -> dict:
    """The sampler keys of a command line: only those that were given."""
    return {key: getattr(args, flag) for flag, key in SAMPLER_FLAGS.items() if getattr(args, flag) is not NOT_GIVEN}


def common_options() -> argparse.ArgumentParser:
    common = Parser(add_help=False)
    common.add_argument("--plugin", action="append", default=[], metavar="MODULE",
                        help="import MODULE first so its components register (repeatable)")
    return common


def float_list(text: str) -> list[float]:
    try:
        return [float(x) for x in text.split(",") if x.strip()]
    except ValueError as err:
        raise argparse.ArgumentTypeError(f"expected comma-separated numbers, got {text!r}") from err


def top_k_list(text: str) -> list[int | None]:
    items = [x.strip() for x in text.split(",") if x.strip()]
    try:
        return [None if x in ("none", "all") else int(x) for x in items]
    except ValueError as err:
        raise argparse.ArgumentTypeError(f"expected comma-separated integers or 'none', got {text!r}") from err


def print_scores(label: str, row: dict) -> None:
    """One row of gen-PPL and entropy (``score`` and ``eval`` of unconditional samples); the
    reference row of an oracle corpus is its HMM's samples, printed with the entropy rate."""
    oracle = "entropy_rate" in row
    label = "HMM samples" if oracle and label == "real text" else label
    print(f"  {label:<11} gen-PPL {row['gen_ppl']:>10.2f}  (per-sample mean {row['gen_ppl_sample_mean']:.2f}, "
          f"{row['scored_tokens']} tokens)   entropy {row['entropy']:.3f} nats")
    if oracle:
        print(f"  {'truth':<11} exp(entropy per token) {row['entropy_per_token_ppl']:.2f} "
              f"± {row['entropy_per_token_ppl'] * row['entropy_per_token_se']:.2f}, exp(entropy rate) "
              f"{row['entropy_rate_ppl']:.2f} ± {row['entropy_rate_ppl'] * row['entropy_rate_se']:.2f}")
