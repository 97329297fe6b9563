"""The ``pathbench`` command line.

Each sub-command parses its flags here and calls one function in the module that owns the
work. Bad input (:class:`harness.errors.ConfigError`) becomes one line on stderr and exit
code 2, never a traceback.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from harness.errors import ConfigError


class _Parser(argparse.ArgumentParser):
    """argparse that reports a bad flag in one line (no usage block)."""

    def error(self, message: str) -> None:  # type: ignore[override]
        self.exit(2, f"{self.prog}: error: {message} (see {self.prog} --help)\n")


def _comma_list(text: str) -> list[str]:
    items = [part.strip() for part in text.split(",") if part.strip()]
    if not items:
        raise argparse.ArgumentTypeError(f"expected a comma-separated list, got {text!r}")
    return items


def _common() -> argparse.ArgumentParser:
    common = _Parser(add_help=False)
    common.add_argument("--plugin", action="append", default=[], metavar="MODULE",
                        help="import MODULE first so its components register (repeatable)")
    return common


def build_parser() -> argparse.ArgumentParser:
    parser = _Parser(
        prog="pathbench",
        description="Compare discrete generative paths for non-autoregressive text generation.",
    )
    sub = parser.add_subparsers(dest="command", required=True, metavar="COMMAND",
                                parser_class=_Parser)
    common = _common()

    sub.add_parser("list", parents=[common], help="list every registered component by kind")

    kl = sub.add_parser("kl-curve", parents=[common],
                        help="KL(x1‖x_t) against t per path and vocabulary size (CSV + plot)")
    kl.add_argument("--vocab", type=int, nargs="+", default=[10, 10000], metavar="V")
    kl.add_argument("--paths", type=_comma_list, default=["linear", "fisher_rao", "kl"],
                    help="comma-separated registered path names (default: linear,fisher_rao,kl)")
    kl.add_argument("--samples", type=int, default=256, help="prior samples per (path, V)")
    kl.add_argument("--beta", type=float, default=0.01, help="target smoothing β")
    kl.add_argument("--points", type=int, default=99, help="times on the grid inside (0, 1)")
    kl.add_argument("--seed", type=int, default=0)
    kl.add_argument("--out", type=Path, required=True, help="output folder")
    return parser


def cmd_list(args: argparse.Namespace) -> None:
    from harness.registry import ALL

    for kind, registry in ALL.items():
        print(f"{kind}:")
        if not len(registry):
            print("  (none registered)")
        for name in registry:
            obj = registry.get(name)
            doc = (obj.__doc__ or "").strip().splitlines()
            aliases = registry.aliases_of(name)
            alias_text = f" (aliases: {', '.join(aliases)})" if aliases else ""
            print(f"  {name}{alias_text}  {doc[0] if doc else ''}".rstrip())


def cmd_kl_curve(args: argparse.Namespace) -> None:
    from harness.kl_curve import run_kl_curve

    rows = run_kl_curve(args.paths, args.vocab, args.out, samples=args.samples, beta=args.beta,
                        points=args.points, seed=args.seed)
    at = min({r.t for r in rows}, key=lambda t: abs(t - 0.3))
    print(f"KL(x1‖x_t) at t = {at:.2f} (nats, mean over {args.samples} prior samples):")
    for vocab in args.vocab:
        cells = ", ".join(f"{r.path} {r.kl_mean:.3f}" for r in rows if r.vocab == vocab and r.t == at)
        print(f"  V = {vocab}: {cells}")
    print(f"wrote {args.out / 'kl_curve.csv'} and {args.out / 'kl_curve.png'}")


COMMANDS = {"list": cmd_list, "kl-curve": cmd_kl_curve}


def main(argv: list[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    try:
        from harness.plugins import load_all

        load_all(args.plugin)
        COMMANDS[args.command](args)
    except ConfigError as err:
        print(f"pathbench {args.command}: error: {err}", file=sys.stderr)
        return 2
    return 0


if __name__ == "__main__":
    sys.exit(main())
