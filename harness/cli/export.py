"""``pathbench export``: a run folder as a Hugging Face Hub model folder (:mod:`pathbench.engine.hub`)."""

from __future__ import annotations

import argparse
from pathlib import Path

# Command bodies import their work when called: it imports torch, which --help should not wait for.


def add_commands(sub, common: argparse.ArgumentParser) -> None:
    ex = sub.add_parser("export", parents=[common],
                        help="write a run as a Hub model folder (safetensors, config.json, tokenizer, model card)")
    ex.add_argument("--ckpt", type=Path, required=True, help="run folder (its latest checkpoint is exported)")
    ex.add_argument("--out", type=Path, required=True, help="the model folder to write (e.g. to upload to the Hub)")
    ex.add_argument("--metrics", type=Path, action="append", default=[], metavar="METRICS_JSON",
                    help="a `pathbench eval` metrics.json whose results go into the model card (repeatable)")
    ex.add_argument("--force", action="store_true", help="replace a non-empty --out")
    ex.add_argument("--push-to-hub", metavar="REPO_ID", default=None,
                    help="then upload --out to this Hub model repo (huggingface_hub; its login or HF_TOKEN)")
    ex.add_argument("--private", action="store_true", help="with --push-to-hub: create the repo private")
    ex.set_defaults(func=cmd_export)


def cmd_export(args: argparse.Namespace) -> None:
    from pathbench.engine.hub import export_run, push_to_hub

    done = export_run(args.ckpt, args.out, eval_metrics=args.metrics, force=args.force, repo_id=args.push_to_hub)
    print(f"exported {args.ckpt} (step {done.step}) to {done.folder}: {', '.join(done.files)}")
    if args.push_to_hub:
        url = push_to_hub(done.folder, args.push_to_hub, private=args.private)
        print(f"uploaded {done.folder} to the Hub repo {args.push_to_hub}: {url}")
