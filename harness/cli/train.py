"""``pathbench train`` and ``pathbench sample``: one method on the shared backbone, and
samples from its run folder."""

from __future__ import annotations

import argparse
import os
from pathlib import Path

from pathbench.cli.args import NOT_GIVEN, PROTOCOL_HELP, draw_flags, explicit_sampler, given, sampler_flags
from pathbench.core.devices import resolve_device

# Command bodies import their work when called: it imports torch, which --help should not wait for.


def add_commands(sub, common: argparse.ArgumentParser) -> None:
    tr = sub.add_parser("train", parents=[common], help="train one method on the shared backbone")
    tr.add_argument("--method", required=True, help="a registered method (see pathbench list)")
    tr.add_argument("--preset", default="tiny", help="backbone preset: tiny, small, paper-150m, paper-1.5b")
    tr.add_argument("--steps", type=int, help="optimizer steps (train.steps)")
    tr.add_argument("--out", type=Path, required=True, help="run folder")
    tr.add_argument("--resume", action="store_true", help="continue from the run folder's checkpoint")
    tr.add_argument("--device", default=None, help="cpu or cuda (default: cuda when available)")
    tr.add_argument("--protocol", default=NOT_GIVEN,
                    help=f"{PROTOCOL_HELP}; default: kl-flow, or on --resume the run's recorded one")
    tr.add_argument("overrides", nargs="*", metavar="KEY=VALUE",
                    help="e.g. lr=3e-4 batch_size=16 data.seq_len=64 model.n_layer=2 method.beta=0.05")
    tr.set_defaults(func=cmd_train)

    sa = sub.add_parser("sample", parents=[common], help="sample from a trained run")
    sa.add_argument("--ckpt", type=Path, required=True, help="run folder written by pathbench train")
    sampler_flags(sa)
    sa.add_argument("--n", type=int, default=32, help="number of samples")
    sa.add_argument("--batch-size", type=int, default=16)
    draw_flags(sa)
    sa.add_argument("--seq-len", type=int, default=None, help="default: the training length")
    sa.add_argument("--seed", type=int, default=0)
    sa.add_argument("--method", default=None, help="assert the checkpoint's method")
    sa.add_argument("--device", default=None)
    sa.add_argument("--out", type=Path, required=True, help="JSONL file, one sample per line")
    sa.set_defaults(func=cmd_sample)


def cmd_train(args: argparse.Namespace) -> None:
    from pathbench.core.config import parse_overrides
    from pathbench.engine.run import resolve_training, train_run, training_protocol_name

    overrides = parse_overrides(args.overrides)
    if args.steps is not None:
        overrides["train"]["steps"] = args.steps
    # the protocol is resolved here, once: the run is trained with the record as it is
    protocol = training_protocol_name(given(args.protocol), args.out, args.resume)
    overrides, record = resolve_training(args.method, protocol, overrides)
    result = train_run(args.method, args.preset, args.out, overrides, protocol=record, resume=args.resume,
                       device=resolve_device(args.device))
    if int(os.environ.get("RANK", "0")) != 0:
        return
    val = f", validation loss {result.val_loss:.4f}" if result.val_loss is not None else ""
    print(f"trained {args.method} to step {result.step}: loss {result.train_loss:.4f}{val}, "
          f"{result.tokens_per_s:,.0f} tokens/s; run folder {args.out}")
    from pathbench.engine.learning import read_check

    check = read_check(args.out)
    if check is not None:
        print(f"learning check: {check['verdict']}")


def cmd_sample(args: argparse.Namespace) -> None:
    from pathbench.engine.run import sample_run

    records = sample_run(args.ckpt, args.out, args.n, explicit_sampler(args), seed=args.seed,
                         batch_size=args.batch_size, seq_len=args.seq_len,
                         device=resolve_device(args.device), method_name=args.method, protocol=given(args.protocol),
                         seeding=args.seeding, memory_gb=args.memory_gb)
    print(f"wrote {len(records)} samples to {args.out}; first: {records[0]['text'][:120]!r}")
