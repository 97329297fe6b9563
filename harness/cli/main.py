"""The ``pathbench`` command line: the parser, assembled from one module per command group
(each adds its sub-commands with ``set_defaults(func=...)``), and ``main``.

Bad input (:class:`harness.core.errors.ConfigError`) becomes one line on stderr and exit
code 2, never a traceback. ``list`` lives here: it shows what the registries hold.
"""

from __future__ import annotations

import argparse
import shlex
import sys

from harness.cli import data, evaluate, export, fewstep, lmeval, studies, sweep, train
from harness.cli.args import Parser, common_options
from harness.core.errors import ConfigError
from harness.core.registry import ALL
from harness.engine.plugins import load_all

# Command bodies import their work when called: it imports torch, which --help should not wait for.


def build_parser() -> argparse.ArgumentParser:
    parser = Parser(prog="pathbench",
                    description="Compare discrete generative paths for non-autoregressive text generation.")
    sub = parser.add_subparsers(dest="command", required=True, metavar="COMMAND", parser_class=Parser)
    common = common_options()
    sub.add_parser("list", parents=[common], help="list every registered component by kind").set_defaults(func=cmd_list)
    for group in (studies, train, evaluate, lmeval, export, sweep, fewstep, data):
        group.add_commands(sub, common)
    return parser


def cmd_list(args: argparse.Namespace) -> None:
    import harness.engine.loggers  # noqa: F401  (registers the live-curve loggers)
    import harness.engine.protocol  # noqa: F401  (registers the generation protocols; imports torch)

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
    try:
        load_all(args.plugin)
        args.func(args)
    except ConfigError as err:
        print(f"pathbench {args.command}: error: {err}", file=sys.stderr)
        return 2
    except RuntimeError as err:
        from harness.engine.trainer import TrainingDiverged, TrainingStopped  # imports torch

        if isinstance(err, TrainingStopped):
            again = " ".join(shlex.quote(a) for a in (argv if argv is not None else sys.argv[1:]))
            resume = "" if "--resume" in again.split() else " --resume"
            print(f"pathbench {args.command}: {err}; resume with: pathbench {again}{resume}", file=sys.stderr)
            return err.exit_code
        if not isinstance(err, TrainingDiverged):
            raise
        print(f"pathbench {args.command}: error: {err}", file=sys.stderr)
        return 1
    return 0
