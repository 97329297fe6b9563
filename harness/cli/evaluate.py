"""``pathbench score`` and ``eval``: scoring sample files and evaluating a run on a registered
task (lm-evaluation-harness tasks: :mod:`pathbench.cli.lmeval`)."""

from __future__ import annotations

import argparse
from pathlib import Path

from pathbench.cli.args import draw_flags, explicit_sampler, given, print_scores, sampler_flags
from pathbench.core.devices import resolve_device
from pathbench.core.errors import ConfigError

# Command bodies import their work when called: it imports torch, which --help should not wait for.


def add_commands(sub, common: argparse.ArgumentParser) -> None:
    ev = sub.add_parser("eval", parents=[common], help="generate for a task from a run and score it")
    ev.add_argument("--ckpt", type=Path, required=True)
    ev.add_argument("--task", required=True, help="a registered task (see pathbench list)")
    sampler_flags(ev)
    ev.add_argument("--n", type=int, default=32, help="samples (unconditional task)")
    ev.add_argument("--candidates", type=int, default=1, help="candidates per example")
    ev.add_argument("--limit", type=int, default=None, help="first N examples only")
    ev.add_argument("--seed", type=int, default=0)
    ev.add_argument("--batch-size", type=int, default=16)
    draw_flags(ev)
    ev.add_argument("--device", default=None)
    ev.add_argument("--out", type=Path, required=True, help="result folder")
    ev.add_argument("--overwrite", action="store_true", help="replace an evaluation already in --out")
    ev.add_argument("options", nargs="*", metavar="KEY=VALUE", help="task options, e.g. scorer=smollm2")
    ev.set_defaults(func=cmd_eval)

    sc = sub.add_parser("score", parents=[common],
                        help="gen-PPL and entropy of a sample file (JSONL with 'text', a .json array of strings "
                             "or of objects with 'text', or one sample per line)")
    sc.add_argument("file", type=Path)
    sc.add_argument("--scorer", default="smollm2",
                    help="smollm2 (default: SmolLM2-135M-Instruct, 4-bit Q4_1 GGUF), hf:<name or path>, "
                         "self:<ar run folder>")
    sc.add_argument("--reference-run", type=Path, default=None,
                    help="run folder whose held-out text gives the real-data reference row")
    sc.add_argument("--batch-size", type=int, default=8)
    sc.add_argument("--device", default=None)
    sc.add_argument("--out", type=Path, default=None, help="write the result as JSON")
    sc.set_defaults(func=cmd_score)


def cmd_score(args: argparse.Namespace) -> None:
    from pathbench.tasks.adapters.unconditional import score_file

    result = score_file(args.file, args.scorer, reference_run=args.reference_run, out=args.out,
                        batch_size=args.batch_size, device=resolve_device(args.device))
    print(f"scorer {args.scorer}: {result['samples']['samples']} samples from {args.file}")
    print_scores("samples", result["samples"])
    if "reference" in result:
        print_scores("real text", result["reference"])


def cmd_eval(args: argparse.Namespace) -> None:
    from pathbench.core.config import parse_value
    from pathbench.evaluation.evaluate import eval_run

    options = {}
    for item in args.options:
        key, sep, value = item.partition("=")
        if not sep:
            raise ConfigError(f"task option '{item}' is not key=value")
        options[key] = parse_value(value)
    result = eval_run(args.ckpt, args.task, args.out, explicit_sampler(args), task_options=options, n=args.n,
                      candidates=args.candidates, limit=args.limit, seed=args.seed,
                      batch_size=args.batch_size, device=resolve_device(args.device), protocol=given(args.protocol),
                      overwrite=args.overwrite, seeding=args.seeding, memory_gb=args.memory_gb)
    if "reference" in result:  # a task scored against real text: the two rows side by side
        print_scores("samples", result["metrics"])
        print_scores("real text", result["reference"])
    else:
        for key, value in result["metrics"].items():
            print(f"  {key:<24} {value:.4f}" if isinstance(value, float) else f"  {key:<24} {value}")
    print(f"wrote {args.out / 'metrics.json'}")
