"""``pathbench lm-eval``: lm-evaluation-harness's own command line with the ``pathbench`` model
registered (:mod:`pathbench.integrations.lmeval`).

Every argument other than ``--ckpt`` / ``--plugin`` goes to lm-eval unchanged, so every lm-eval
flag works and its output layout comes out (``--output_path`` gets ``results_*.json``, and
``samples_*.jsonl`` with ``--log_samples``). ``--ckpt DIR`` is short for ``--model pathbench
--model_args pretrained=DIR`` (lm-eval names its output folder after ``pretrained``); further
``--model_args`` merge into it, as lm-eval merges repeated ones.
This route exists because lm-eval 0.4.13 discovers no third-party models; a release that reads
the ``lm_eval.models`` entry point runs ``lm_eval run --model pathbench`` directly.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from pathbench.core.errors import ConfigError

LM_EVAL_COMMANDS = ("run", "ls", "validate")  # lm-eval's sub-commands; none given means run


def add_commands(sub, common: argparse.ArgumentParser) -> None:
    le = sub.add_parser(
        "lm-eval", parents=[common], allow_abbrev=False,  # an lm-eval flag is never taken for one of ours
        help="lm-evaluation-harness's CLI with the pathbench model (generate_until tasks)",
        epilog="Every other argument goes to lm-eval as given (see `lm-eval run --help`), e.g. "
               "pathbench lm-eval --ckpt runs/kl --tasks my_task --include_path tasks_dir "
               "--model_args nfe=64 --output_path out --log_samples")
    le.add_argument("--ckpt", type=Path, default=None,
                    help="run folder: short for --model pathbench --model_args pretrained=DIR")
    le.set_defaults(func=cmd_lm_eval, passes_through=True)


def lm_eval_argv(ckpt: Path | None, extra: list[str]) -> list[str]:
    """lm-eval's own argv (after the program name) for ``pathbench lm-eval --ckpt ckpt extra...``."""
    extra = list(extra)
    command = extra.pop(0) if extra and extra[0] in LM_EVAL_COMMANDS else "run"
    if ckpt is None:
        return [command, *extra]
    if command != "run":
        raise ConfigError(f"--ckpt goes with lm-eval's run, not '{command}'")
    models = [extra[i + 1] for i, arg in enumerate(extra[:-1]) if arg in ("--model", "-M")]
    models += [arg.split("=", 1)[1] for arg in extra if arg.startswith("--model=")]
    if any(model != "pathbench" for model in models):
        raise ConfigError(f"--ckpt evaluates a pathbench run, but --model {models[0]} was given too")
    return [command, "--model", "pathbench", "--model_args", f"pretrained={ckpt}", *extra]


def pathbench_model_args(argv: list[str]) -> dict | None:
    """The merged ``--model_args`` of an lm-eval ``run`` argv when its model is pathbench (None
    for another model or another sub-command): what :func:`pathbench.integrations.lmeval.check_model_args` checks."""
    from lm_eval.utils import simple_parse_args_string

    if not argv or argv[0] != "run":
        return None
    models, merged = [], {}
    for i, arg in enumerate(argv):
        value = argv[i + 1] if arg in ("--model", "-M", "--model_args", "-a") and i + 1 < len(argv) else None
        if arg.startswith(("--model=", "--model_args=")):
            arg, value = arg.split("=", 1)
        if value is not None and arg in ("--model", "-M"):
            models.append(value)
        elif value is not None:
            try:
                merged.update(simple_parse_args_string(value) or {})
            except (ValueError, TypeError) as err:
                raise ConfigError(f"--model_args {value!r} is not key=value,key=value ({err})") from None
    return merged if models and all(m == "pathbench" for m in models) else None


def cmd_lm_eval(args: argparse.Namespace) -> None:
    from lm_eval.__main__ import cli_evaluate

    import pathbench.integrations.lmeval  # registers the "pathbench" lm-eval model

    argv = lm_eval_argv(args.ckpt, args.passed_through)
    model_args = pathbench_model_args(argv)
    if model_args is not None:  # before lm-eval logs anything or loads the model
        pathbench.integrations.lmeval.check_model_args(model_args)
    saved, saved_error = sys.argv, argparse.ArgumentParser.error
    sys.argv = ["lm-eval", *argv]  # lm-eval's parser reads sys.argv

    def one_line(parser: argparse.ArgumentParser, message: str) -> None:
        # lm-eval's parsers print their usage and exit 2: bad input is one line here, as everywhere
        raise ConfigError(f"lm-eval {parser.prog.split()[-1]}: {message} (see `pathbench lm-eval run --help`)")

    argparse.ArgumentParser.error = one_line  # type: ignore[method-assign]
    try:
        cli_evaluate()
    except (ValueError, TypeError, FileNotFoundError, KeyError) as err:
        if not _raised_by_lm_eval_config(err):
            raise
        hint = ("; valid: the tasks `pathbench lm-eval ls tasks` lists (add --include_path DIR for your own)"
                if "task" in str(err).lower() else "")
        raise ConfigError(f"lm-eval: {str(err).strip()}{hint}") from err  # e.g. "Tasks not found: ..."
    finally:
        sys.argv, argparse.ArgumentParser.error = saved, saved_error


def _raised_by_lm_eval_config(err: BaseException) -> bool:
    """Whether ``err`` comes from lm-eval's argument checks (lm_eval.config), which reject bad
    input, rather than from an evaluation that went wrong (a traceback is the right report)."""
    tb = err.__traceback__
    while tb is not None and tb.tb_next is not None:
        tb = tb.tb_next
    return tb is not None and str(tb.tb_frame.f_globals.get("__name__", "")).startswith("lm_eval.config")
