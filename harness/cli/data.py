"""``pathbench prepare``: build a data cache once, ahead of the runs that read it.

Runs and sweep units build a missing cache themselves (the first one, under the cache's file
lock, while the others wait); on a cluster that holds GPUs idle while the CPUs tokenise, so a
large corpus is better prepared first on a CPU node, into the cache folder the runs share."""

from __future__ import annotations

import argparse
from pathlib import Path

from pathbench.core.errors import ConfigError

# Command bodies import their work when called: it imports torch, which --help should not wait for.


def add_commands(sub, common: argparse.ArgumentParser) -> None:
    pr = sub.add_parser("prepare", parents=[common],
                        help="build a data cache once (a corpus streamed and tokenised by a pool of processes)")
    pr.add_argument("--experiment", type=Path, default=None, help="prepare the data section of this experiment file")
    pr.add_argument("--workers", type=int, default=None,
                    help="tokenising processes (default: $PATHBENCH_DATA_WORKERS or this job's CPU allocation)")
    pr.add_argument("overrides", nargs="*", metavar="data.KEY=VALUE",
                    help="e.g. data.corpus=json:web/*.jsonl data.tokenizer=gpt2 data.seq_len=1024 data.max_tokens=2e9")
    pr.set_defaults(func=cmd_prepare)


def cmd_prepare(args: argparse.Namespace) -> None:
    from pathbench.core.config import DataConfig, apply_overrides, parse_overrides
    from pathbench.data.corpus import prepare_data
    from pathbench.sweep.experiment import load_experiment

    if args.workers is not None and args.workers < 1:
        raise ConfigError(f"--workers {args.workers} must be an integer >= 1 (tokenising processes; "
                          "leave it out for $PATHBENCH_DATA_WORKERS or this job's CPU allocation)")
    overrides = parse_overrides(args.overrides)
    others = [f"{section}.{key}" for section, values in overrides.items() if section != "data" for key in values]
    if others:
        raise ConfigError(f"pathbench prepare takes data.* options only, not {', '.join(others)}")
    section = load_experiment(args.experiment).units[0].data if args.experiment else {}
    cfg = apply_overrides(apply_overrides(DataConfig(), section, "data"), overrides["data"], "data")
    data = prepare_data(cfg.corpus, cfg.tokenizer, cfg.seq_len, Path(cfg.cache_dir), vocab_size=cfg.vocab_size,
                        val_fraction=cfg.val_fraction, max_tokens=cfg.max_tokens, workers=args.workers)
    info = data.info
    print(f"{data.folder}: {info['train']['tokens']:,} train and {info['val']['tokens']:,} validation tokens "
          f"({info['train']['sequences']:,} + {info['val']['sequences']:,} sequences of {cfg.seq_len}; "
          f"built in {info['build_seconds']} s by {info.get('workers', 1)} worker(s))")
