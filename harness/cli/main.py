"""The ``pathbench`` command line: the parser, assembled from one module per command group
(each adds its sub-commands with ``set_defaults(func=...)``), and ``main``.

``pathbench --help`` lists the workflow first (train, sample, eval, score, sweep, report, export,
lm-eval, list, prepare, distill); the research diagnostics are one verb, ``pathbench study NAME``.
Their old top-level names still work, unlisted, and say on stderr where they moved.

Bad input (:class:`pathbench.core.errors.ConfigError`) becomes one line on stderr and exit
code 2, never a traceback. ``list`` lives here: it shows what the registries hold.
"""

from __future__ import annotations

import argparse
import shlex
import sys

from pathbench.cli import data, evaluate, export, fewstep, lmeval, studies, sweep, train
from pathbench.cli.args import Parser, common_options
from pathbench.core.errors import ConfigError
from pathbench.core.registry import ALL
from pathbench.engine.plugins import load_all

# Command bodies import their work when called: it imports torch, which --help should not wait for.


STUDIES = (studies, fewstep)  # the modules whose add_study_commands mount the diagnostics


class MovedCommands:
    """The top-level sub-commands as a study module sees them when its commands are mounted a
    second time under their old names: unlisted in --help, each remembers where it moved."""

    def __init__(self, sub) -> None:
        self.sub = sub

    def add_parser(self, name: str, **options):
        options.pop("help", None)  # no help: argparse leaves it out of the command list
        parser = self.sub.add_parser(name, **options)
        parser.set_defaults(moved_to=f"study {name}")
        return parser


def build_parser() -> argparse.ArgumentParser:
    parser = Parser(prog="pathbench",
                    description="Compare discrete generative paths for non-autoregressive text generation.")
    sub = parser.add_subparsers(dest="command", required=True, metavar="COMMAND", parser_class=Parser)
    common = common_options()
    for group in (train, evaluate, sweep, export, lmeval):  # the workflow, in the order it is used
        group.add_commands(sub, common)
    sub.add_parser("list", parents=[common], help="list every registered component by kind").set_defaults(func=cmd_list)
    for group in (data, fewstep):
        group.add_commands(sub, common)
    study = sub.add_parser("study", help="research diagnostics: kl-curve, posterior-gap, denoiser-gap, "
                                         "flowmap-gap, reparam, tune-tstar, bench")
    diagnostics = study.add_subparsers(dest="study", required=True, metavar="STUDY", parser_class=Parser)
    for group in STUDIES:
        group.add_study_commands(diagnostics, common)
    for group in STUDIES:
        group.add_study_commands(MovedCommands(sub), common)
    return parser


def command_name(args: argparse.Namespace) -> str:
    """The command as typed, for error lines: ``study kl-curve`` or ``train``."""
    return f"study {args.study}" if args.command == "study" else args.command


def cmd_list(args: argparse.Namespace) -> None:
    import pathbench.engine.loggers  # noqa: F401  (registers the live-curve loggers)
    import pathbench.engine.protocol  # noqa: F401  (registers the generation protocols; imports torch)

    for kind, registry in ALL.items():
        print(f"{kind}:")
        if not len(registry):
            print("  (none registered)")
        for name in registry:
            obj = registry.get(name)
            # a protocol is an instance: its description, not its class's docstring
            doc = (getattr(obj, "description", None) or obj.__doc__ or "").strip().splitlines()
            aliases = registry.aliases_of(name)
            alias_text = f" (aliases: {', '.join(aliases)})" if aliases else ""
            print(f"  {name}{alias_text}  {doc[0] if doc else ''}".rstrip())


def main(argv: list[str] | None = None) -> int:
    parser = build_parser()
    args, extra = parser.parse_known_args(argv)
    if extra and not getattr(args, "passes_through", False):  # only lm-eval hands flags on
        parser.error(f"unrecognized arguments: {' '.join(extra)}")
    args.passed_through = extra
    if getattr(args, "moved_to", None):
        print(f"pathbench {args.command}: moved to 'pathbench {args.moved_to}' (the old name still works)",
              file=sys.stderr)
    try:
        load_all(args.plugin)
        args.func(args)
    except ConfigError as err:
        print(f"pathbench {command_name(args)}: error: {err}", file=sys.stderr)
        return 2
    except RuntimeError as err:
        from pathbench.engine.trainer import TrainingDiverged, TrainingStopped  # imports torch

        if isinstance(err, TrainingStopped):
            again = " ".join(shlex.quote(a) for a in (argv if argv is not None else sys.argv[1:]))
            resume = "" if "--resume" in again.split() else " --resume"
            print(f"pathbench {args.command}: {err}; resume with: pathbench {again}{resume}", file=sys.stderr)
            return err.exit_code
        if not isinstance(err, TrainingDiverged):
            raise
        print(f"pathbench {command_name(args)}: error: {err}", file=sys.stderr)
        return 1
    return 0
