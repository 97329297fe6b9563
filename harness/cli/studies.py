"""``pathbench study kl-curve``, ``study denoiser-gap`` and ``study bench``: the KL-flow paper's
Figure 2 diagnostic, the oracle corpus's denoiser gap and the throughput figures."""

from __future__ import annotations

import argparse
from pathlib import Path

from pathbench.cli.args import comma_list, memory_gb, top_k
from pathbench.core.devices import resolve_device
from pathbench.core.errors import ConfigError

# Command bodies import their work when called: it imports torch, which --help should not wait for.


def add_study_commands(sub, common: argparse.ArgumentParser) -> None:
    """The diagnostics of this module, under ``pathbench study``."""
    kl = sub.add_parser("kl-curve", parents=[common],
                        help="KL(x1‖x_t) against t per path and vocabulary size (CSV + plot)")
    kl.add_argument("--vocab", type=int, nargs="+", default=[10, 10000], metavar="V")
    kl.add_argument("--paths", type=comma_list, default=["linear", "fisher_rao", "kl"],
                    help="comma-separated registered path names (default: linear,fisher_rao,kl)")
    kl.add_argument("--samples", type=int, default=256, help="prior samples per (path, V)")
    kl.add_argument("--beta", type=float, default=0.01, help="target smoothing β")
    kl.add_argument("--points", type=int, default=99, help="times on the grid inside (0, 1)")
    kl.add_argument("--seed", type=int, default=0)
    kl.add_argument("--out", type=Path, required=True, help="output folder")
    kl.set_defaults(func=cmd_kl_curve)

    dg = sub.add_parser("denoiser-gap", parents=[common],
                        help="a trained denoiser's held-out cross-entropy against the Bayes-optimal one (oracle corpus)")
    dg.add_argument("runs", type=Path, nargs="+", help="run folders or sweep folders (their train/ units)")
    dg.add_argument("--out", type=Path, required=True, help="output folder")
    dg.add_argument("--cells", type=int, default=8, help="times: midpoints of this many cells of [0, t_max]")
    dg.add_argument("--sequences", type=int, default=64, help="held-out sequences per time")
    dg.add_argument("--seed", type=int, default=0, help="seed of the noising draws")
    dg.add_argument("--protocol", default=None, help="only runs trained under this generation protocol")
    dg.add_argument("--experiment", type=Path, action="append", default=None,
                    help="only this experiment file's units (not a sweep's tuning candidates; repeatable)")
    dg.add_argument("--device", default="cpu")
    dg.set_defaults(func=cmd_denoiser_gap)

    sp = sub.add_parser("speeds", parents=[common],
                        help="re-time a sweep's unconditional evaluations on a quiet machine (speeds.json for report --speeds)")
    sp.add_argument("sweep_dir", type=Path, help="a sweep folder (its runs/ and train/)")
    sp.add_argument("--out", type=Path, required=True, help="the speeds file to write, e.g. results/NAME/speeds.json")
    sp.add_argument("--repeats", type=int, default=3, help="timed draws per setting, after one warm-up draw")
    sp.add_argument("--device", default="cpu")
    sp.set_defaults(func=cmd_speeds)

    be = sub.add_parser("bench", parents=[common], help="print throughput figures")
    be.add_argument("what", choices=["train", "sample", "gpu", "data"],
                    help="gpu: the first-GPU check at the paper's sizes (fixed: --preset, --vocab and "
                         "--seq-len do not apply), JSON + markdown into --out")
    be.add_argument("--method", default=None,
                    help="a method or a comma-separated list (kl,linear,fisher_rao); default kl, gpu: every method")
    be.add_argument("--preset", default="tiny")
    be.add_argument("--vocab", type=int, default=8192)
    be.add_argument("--seq-len", type=int, default=128)
    be.add_argument("--batch-size", type=int, default=None, help="default 16; gpu: 8 (4 with --tiny)")
    be.add_argument("--steps", type=int, default=20, help="timed training steps (bench train)")
    be.add_argument("--nfe", type=int, nargs="+", default=[16, 64], help="NFEs (bench sample)")
    be.add_argument("--protocol", default="kl-flow", help="generation protocol of the simplex paths (bench sample)")
    be.add_argument("--top-k", type=top_k, nargs="+", default=[1, None],
                    help="top-k of the drawing samplers, 'none' = the full vocabulary (bench sample)")
    be.add_argument("--samplers", type=comma_list, default=None,
                    help="comma-separated samplers (default: every sampler of the method)")
    be.add_argument("--memory-gb", type=memory_gb, default=None,
                    help="bench sample: the sampler's memory budget (GB or auto); the batch is cut to fit it "
                         "and each line gives the measured peak beside the estimate")
    be.add_argument("--device", default=None)
    be.add_argument("--out", type=Path, default=None, help="output folder (bench gpu)")
    be.add_argument("--budget-s", type=float, default=280.0, help="seconds the whole check may take (bench gpu)")
    be.add_argument("--tiny", action="store_true",
                    help="bench gpu at the tiny preset and V = 512 (the code path, e.g. on --device cpu)")
    be.add_argument("--size-gb", type=float, default=2.0, help="generated corpus size (bench data)")
    be.add_argument("--tokenizer", default="gpt2", help="data.tokenizer of the prepared corpus (bench data)")
    be.add_argument("--workers", type=int, default=None,
                    help="tokenising processes (bench data; default: $PATHBENCH_DATA_WORKERS or the CPU allocation)")
    be.add_argument("--max-tokens", type=int, default=None, help="token budget (bench data; default: the whole corpus)")
    be.add_argument("--keep", type=Path, default=None,
                    help="write the corpus and cache under this folder and keep them (bench data; default: a temp dir)")
    be.set_defaults(func=cmd_bench)


def cmd_kl_curve(args: argparse.Namespace) -> None:
    from pathbench.studies.kl_curve import run_kl_curve

    rows = run_kl_curve(args.paths, args.vocab, args.out, samples=args.samples, beta=args.beta,
                        points=args.points, seed=args.seed)
    at = min({r.t for r in rows}, key=lambda t: abs(t - 0.3))
    print(f"KL(x1‖x_t) at t = {at:.2f} (nats, mean over {args.samples} prior samples):")
    for vocab in args.vocab:
        cells = ", ".join(f"{r.path} {r.kl_mean:.3f}" for r in rows if r.vocab == vocab and r.t == at)
        print(f"  V = {vocab}: {cells}")
    print(f"wrote {args.out / 'kl_curve.csv'} and {args.out / 'kl_curve.png'}")


def cmd_denoiser_gap(args: argparse.Namespace) -> None:
    from pathbench.studies.denoiser_gap import write_denoiser_gap

    units = None
    if args.experiment:  # the units each file expands to, with the tuning its sweep folder or pins chose
        from pathbench.sweep.experiment import load_experiment, read_experiment
        from pathbench.sweep.tuning import read_tuned

        units = set()
        for path in args.experiment:
            name = str(read_experiment(path).get("name", path.stem))
            tuned = next((t for t in (read_tuned(run, name) for run in args.runs) if t), None)
            units |= {unit.id for unit in load_experiment(path, tuned=tuned).units}
    result = write_denoiser_gap(args.runs, args.out, cells=args.cells, sequences=args.sequences, seed=args.seed,
                                device=resolve_device(args.device), protocol=args.protocol, units=units)
    print("excess training loss over the Bayes-optimal denoiser (nats/token, mean over t in [0, t_max]; "
          "95 % interval over seeds):")
    for row in result["summary"]:
        interval = f" [{row['ci95'][0]:.3f}, {row['ci95'][1]:.3f}]" if row["ci95"] else ""
        print(f"  V = {row['vocab']:>6,}  {row['method']:<11} {row['protocol']:<8} {row['excess_loss']:.3f}{interval}  "
              f"({row['seeds']} seeds)")
    reasons: dict[str, int] = {}
    for reason in result["skipped"].values():
        reasons[reason] = reasons.get(reason, 0) + 1
    for reason, count in reasons.items():
        print(f"  skipped {count} run(s): {reason}")
    print(f"wrote {args.out / 'denoiser_gap.csv'}, denoiser_gap.json and denoiser_gap.png")


def cmd_speeds(args: argparse.Namespace) -> None:
    from pathbench.studies.speeds import measure_speeds

    if not (args.sweep_dir / "runs").is_dir():
        raise ConfigError(f"{args.sweep_dir} is not a sweep folder (no runs/ inside); give the folder "
                          "`pathbench sweep --out` wrote")
    result = measure_speeds(args.sweep_dir, args.out, repeats=args.repeats, device=resolve_device(args.device))
    print(f"wrote {args.out}: {len(result['runs'])} evaluation(s), median of {args.repeats} timed draws each")


def cmd_bench(args: argparse.Namespace) -> None:
    from pathbench.studies import bench, bench_data, bench_sample

    if args.what == "data":  # --vocab applies to a bpe tokenizer, --seq-len to the packing
        bench_data.bench_data(size_gb=args.size_gb, tokenizer=args.tokenizer, vocab_size=args.vocab,
                              seq_len=args.seq_len, workers=args.workers, max_tokens=args.max_tokens, keep=args.keep)
        return

    if args.what == "gpu":
        return cmd_bench_gpu(args)
    common = dict(method_name=args.method or "kl", preset=args.preset, vocab=args.vocab,
                  seq_len=args.seq_len, batch_size=args.batch_size or 16, device=resolve_device(args.device))
    if args.what == "train":
        bench.bench_train(steps=args.steps, **common)
    else:
        bench_sample.bench_sample(nfes=tuple(args.nfe), samplers=args.samplers and tuple(args.samplers),
                                  top_ks=tuple(args.top_k), protocol=args.protocol, memory_gb=args.memory_gb, **common)


def cmd_bench_gpu(args: argparse.Namespace) -> None:
    from pathbench.studies.bench_gpu import gpu_check

    if args.out is None:
        raise ConfigError("pathbench study bench gpu needs --out FOLDER (it writes gpu_check.json and gpu_check.md)")
    record = gpu_check(args.out, device=args.device or "cuda", tiny=args.tiny, budget_s=args.budget_s,
                       batch_size=args.batch_size, methods=args.method and args.method.split(","))
    failed = [f"{section}/{key}" for section in ("train", "sample") for key, row in record[section].items()
              if row["status"] == "error"] + [key for key in ("scorer", "memory_1p5b") if record[key]["status"] == "error"]
    print(f"bench gpu on {record['device']}: {record['elapsed_s']:.0f} s; "
          f"{len(failed)} failed{': ' + ', '.join(failed) if failed else ''}; "
          f"wrote {args.out / 'gpu_check.json'} and gpu_check.md")
