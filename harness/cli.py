"""The ``pathbench`` command line.

Each sub-command parses its flags here and calls one function in the module that owns the
work. Bad input (:class:`harness.errors.ConfigError`) becomes one line on stderr and exit
code 2, never a traceback.
"""

from __future__ import annotations

import argparse
import os
import sys
from pathlib import Path

from harness.devices import resolve_device
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


def _top_k(text: str) -> int | str:
    """An integer, or ``none``/``all`` (kept as "none"): the full vocabulary, explicitly."""
    if text.strip().lower() in ("none", "all"):
        return "none"
    try:
        return int(text)
    except ValueError as err:
        raise argparse.ArgumentTypeError(f"expected an integer or 'none', got {text!r}") from err


PROTOCOL_HELP = "generation protocol: kl-flow (the KL-flow reference code) or plain (see README)"


def _sampler_flags(parser: argparse.ArgumentParser) -> None:
    """The sampler flags of sample and eval. The protocol's keys default to None so that an
    explicit value is told apart from the protocol's default."""
    parser.add_argument("--protocol", default=None,
                        help=f"{PROTOCOL_HELP}; default: the one the checkpoint was trained with")
    parser.add_argument("--sampler", default=None,
                        help="simplex paths: basic, semi, sampling, hybrid; dfm: euler; sedd: tweedie, "
                             "euler; ar: ancestral; flowmap: flowmap; tuned: the choice of tune-tstar "
                             "(default: the method's first)")
    parser.add_argument("--nfe", type=int, default=64, help="denoiser calls")
    parser.add_argument("--t-star", type=float, default=0.28, help="hybrid switch time t*")
    parser.add_argument("--top-k", type=_top_k, default=None,
                        help="an integer or none (full vocabulary); default: the protocol's (kl-flow: 1)")
    parser.add_argument("--top-p", type=float, default=None)
    parser.add_argument("--temperature", type=float, default=1.0)
    parser.add_argument("--grid", choices=["uniform", "log", "error"], default=None,
                        help="time grid (default: the path's own; error: the fitted decoding-error warp)")
    parser.add_argument("--final", choices=["argmax", "sample"], default=None,
                        help="the last call: argmax or a draw (default: the protocol's, argmax)")
    parser.add_argument("--final-at", choices=["last_step", "t_max"], default=None,
                        help="where the last call sits (default: the protocol's; kl-flow: t_max)")


def _explicit_sampler(args: argparse.Namespace) -> dict:
    """The sampler keys of a command line; the protocol's keys only where they were given."""
    sampler = dict(name=args.sampler, nfe=args.nfe, t_star=args.t_star, top_p=args.top_p,
                   temperature=args.temperature, grid=args.grid)
    for key in ("top_k", "final", "final_at"):
        value = getattr(args, key)
        if value is not None:
            sampler[key] = None if value == "none" else value
    return sampler


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
    tr = sub.add_parser("train", parents=[common], help="train one method on the shared backbone")
    tr.add_argument("--method", required=True, help="a registered method (see pathbench list)")
    tr.add_argument("--preset", default="tiny", help="backbone preset: tiny, small, paper-150m, paper-1.5b")
    tr.add_argument("--steps", type=int, help="optimizer steps (train.steps)")
    tr.add_argument("--out", type=Path, required=True, help="run folder")
    tr.add_argument("--resume", action="store_true", help="continue from the run folder's checkpoint")
    tr.add_argument("--device", default=None, help="cpu or cuda (default: cuda when available)")
    tr.add_argument("--protocol", default=None,
                    help=f"{PROTOCOL_HELP}; default: kl-flow, or on --resume the run's recorded one")
    tr.add_argument("overrides", nargs="*", metavar="KEY=VALUE",
                    help="e.g. lr=3e-4 batch_size=16 data.seq_len=64 model.n_layer=2 method.beta=0.05")

    sa = sub.add_parser("sample", parents=[common], help="sample from a trained run")
    sa.add_argument("--ckpt", type=Path, required=True, help="run folder written by pathbench train")
    _sampler_flags(sa)
    sa.add_argument("--n", type=int, default=32, help="number of samples")
    sa.add_argument("--batch-size", type=int, default=16)
    sa.add_argument("--seq-len", type=int, default=None, help="default: the training length")
    sa.add_argument("--seed", type=int, default=0)
    sa.add_argument("--method", default=None, help="assert the checkpoint's method")
    sa.add_argument("--device", default=None)
    sa.add_argument("--out", type=Path, required=True, help="JSONL file, one sample per line")

    sc = sub.add_parser("score", parents=[common],
                        help="gen-PPL and entropy of a sample file (JSONL with 'text', or one sample per line)")
    sc.add_argument("file", type=Path)
    sc.add_argument("--scorer", default="smollm2", help="smollm2, hf:<name or path>, self:<ar run folder>")
    sc.add_argument("--reference-run", type=Path, default=None,
                    help="run folder whose held-out text gives the real-data reference row")
    sc.add_argument("--batch-size", type=int, default=8)
    sc.add_argument("--device", default=None)
    sc.add_argument("--out", type=Path, default=None, help="write the result as JSON")

    ev = sub.add_parser("eval", parents=[common], help="generate for a task from a run and score it")
    ev.add_argument("--ckpt", type=Path, required=True)
    ev.add_argument("--task", required=True, help="a registered task (see pathbench list)")
    _sampler_flags(ev)
    ev.add_argument("--n", type=int, default=32, help="samples (unconditional task)")
    ev.add_argument("--candidates", type=int, default=1, help="candidates per example")
    ev.add_argument("--limit", type=int, default=None, help="first N examples only")
    ev.add_argument("--seed", type=int, default=0)
    ev.add_argument("--batch-size", type=int, default=16)
    ev.add_argument("--device", default=None)
    ev.add_argument("--out", type=Path, required=True, help="result folder")
    ev.add_argument("--overwrite", action="store_true", help="replace an evaluation already in --out")
    ev.add_argument("options", nargs="*", metavar="KEY=VALUE", help="task options, e.g. scorer=smollm2")

    le = sub.add_parser("lm-eval", parents=[common],
                        help="run lm-evaluation-harness generative tasks on a run (generate_until)")
    le.add_argument("--ckpt", type=Path, required=True)
    le.add_argument("--tasks", type=_comma_list, required=True)
    le.add_argument("--include-path", type=Path, default=None, help="folder of local task YAML files")
    le.add_argument("--model-args", default="", help="e.g. nfe=64,sampler=hybrid,max_gen_toks=32")
    le.add_argument("--limit", type=int, default=None)
    le.add_argument("--out", type=Path, required=True, help="JSON results file")

    sw = sub.add_parser("sweep", parents=[common], help="run an experiment grid (submitit: local, slurm, debug)")
    sw.add_argument("file", type=Path, help="experiment YAML")
    sw.add_argument("--executor", choices=["local", "slurm", "debug"], default=None,
                    help="default: the file's executor.kind, else local")
    sw.add_argument("--out", type=Path, default=None, help="results folder (default: runs/<name>)")
    sw.add_argument("--dry-run", action="store_true", help="print the runs it would launch")
    sw.add_argument("--device", default=None)

    rp = sub.add_parser("report", parents=[common], help="tables, plots and an HTML leaderboard from a results folder")
    rp.add_argument("results_dir", type=Path)
    rp.add_argument("--out", type=Path, required=True, help="e.g. results/NAME")
    rp.add_argument("--title", default=None)
    rp.add_argument("--kl-curve", type=Path, default=None, help="a kl_curve.csv to plot beside the runs")
    rp.add_argument("--experiment", type=Path, action="append", default=None,
                    help="report only this experiment file's runs (when sweeps share a folder; repeatable)")

    be = sub.add_parser("bench", parents=[common], help="print throughput figures")
    be.add_argument("what", choices=["train", "sample"])
    be.add_argument("--method", default="kl", help="a method or a comma-separated list (kl,linear,fisher_rao)")
    be.add_argument("--preset", default="tiny")
    be.add_argument("--vocab", type=int, default=8192)
    be.add_argument("--seq-len", type=int, default=128)
    be.add_argument("--batch-size", type=int, default=16)
    be.add_argument("--steps", type=int, default=20, help="timed training steps (bench train)")
    be.add_argument("--nfe", type=int, nargs="+", default=[16, 64], help="NFEs (bench sample)")
    be.add_argument("--protocol", default="kl-flow", help="generation protocol of the simplex paths (bench sample)")
    be.add_argument("--top-k", type=_top_k, nargs="+", default=[1, "none"],
                    help="top-k of the drawing samplers, 'none' = the full vocabulary (bench sample)")
    be.add_argument("--samplers", type=_comma_list, default=None,
                    help="comma-separated samplers (default: every sampler of the method)")
    be.add_argument("--device", default=None)

    from harness.cli_fewstep import add_commands

    COMMANDS.update(add_commands(sub, common))
    return parser


def cmd_train(args: argparse.Namespace) -> None:
    from harness.config import parse_overrides
    from harness.run import train_run

    overrides = parse_overrides(args.overrides)
    if args.steps is not None:
        overrides["train"]["steps"] = args.steps
    result = train_run(args.method, args.preset, args.out, overrides, resume=args.resume,
                       device=resolve_device(args.device), protocol=args.protocol)
    if int(os.environ.get("RANK", "0")) != 0:
        return
    val = f", validation loss {result.val_loss:.4f}" if result.val_loss is not None else ""
    print(f"trained {args.method} to step {result.step}: loss {result.train_loss:.4f}{val}, "
          f"{result.tokens_per_s:,.0f} tokens/s; run folder {args.out}")


def cmd_sample(args: argparse.Namespace) -> None:
    from harness.run import sample_run

    records = sample_run(args.ckpt, args.out, args.n, _explicit_sampler(args), seed=args.seed,
                         batch_size=args.batch_size, seq_len=args.seq_len,
                         device=resolve_device(args.device), method_name=args.method, protocol=args.protocol)
    print(f"wrote {len(records)} samples to {args.out}; first: {records[0]['text'][:120]!r}")


def cmd_bench(args: argparse.Namespace) -> None:
    from harness import bench, bench_sample

    common = dict(method_name=args.method, preset=args.preset, vocab=args.vocab,
                  seq_len=args.seq_len, batch_size=args.batch_size, device=resolve_device(args.device))
    if args.what == "train":
        bench.bench_train(steps=args.steps, **common)
    else:
        top_ks = tuple(None if k == "none" else k for k in args.top_k)
        bench_sample.bench_sample(nfes=tuple(args.nfe), samplers=args.samplers and tuple(args.samplers),
                                  top_ks=top_ks, protocol=args.protocol, **common)


def _print_scores(label: str, row: dict) -> None:
    print(f"  {label:<10} gen-PPL {row['gen_ppl']:>10.2f}  (per-sample mean {row['gen_ppl_sample_mean']:.2f}, "
          f"{row['scored_tokens']} tokens)   entropy {row['entropy']:.3f} nats")


def cmd_score(args: argparse.Namespace) -> None:
    from harness.evaluate import score_file

    result = score_file(args.file, args.scorer, reference_run=args.reference_run, out=args.out,
                        batch_size=args.batch_size, device=resolve_device(args.device))
    print(f"scorer {args.scorer}: {result['samples']['samples']} samples from {args.file}")
    _print_scores("samples", result["samples"])
    if "reference" in result:
        _print_scores("real text", result["reference"])


def cmd_eval(args: argparse.Namespace) -> None:
    from harness.config import parse_value
    from harness.evaluate import eval_run

    options = {}
    for item in args.options:
        key, sep, value = item.partition("=")
        if not sep:
            raise ConfigError(f"task option '{item}' is not key=value")
        options[key] = parse_value(value)
    result = eval_run(args.ckpt, args.task, args.out, _explicit_sampler(args), task_options=options, n=args.n,
                      candidates=args.candidates, limit=args.limit, seed=args.seed,
                      batch_size=args.batch_size, device=resolve_device(args.device), protocol=args.protocol,
                      overwrite=args.overwrite)
    if args.task == "unconditional":
        _print_scores("samples", result["metrics"])
        _print_scores("real text", result["reference"])
    else:
        for key, value in result["metrics"].items():
            print(f"  {key:<24} {value:.4f}" if isinstance(value, float) else f"  {key:<24} {value}")
    print(f"wrote {args.out / 'metrics.json'}")


def cmd_lm_eval(args: argparse.Namespace) -> None:
    import json

    import lm_eval
    from lm_eval.tasks import TaskManager

    import tasks.lmeval  # noqa: F401  (registers the "pathbench" lm-eval model)
    from harness.io import atomic_write_text

    model_args = ",".join(a for a in (f"ckpt={args.ckpt}", args.model_args) if a)
    manager = TaskManager(include_path=str(args.include_path) if args.include_path else None)
    unknown = [t for t in args.tasks if t not in manager.all_tasks]
    if unknown:
        raise ConfigError(f"unknown lm-eval task '{unknown[0]}'; add its YAML folder with --include-path")
    result = lm_eval.simple_evaluate(model="pathbench", model_args=model_args, tasks=args.tasks,
                                     task_manager=manager, limit=args.limit)
    atomic_write_text(args.out, json.dumps(result["results"], indent=2, default=float) + "\n")
    for name, metrics in result["results"].items():
        print(name, {k: v for k, v in metrics.items() if not k.endswith("stderr") and k != "alias"})


def cmd_sweep(args: argparse.Namespace) -> None:
    from harness.dispatch import run_complete, sweep
    from harness.experiment import load_experiment

    out = args.out or Path("runs") / load_experiment(args.file).name
    result = sweep(args.file, out, executor=args.executor, dry_run=args.dry_run, plugins=tuple(args.plugin),
                   device=args.device)
    exp = result["experiment"]
    if args.dry_run:
        print(f"{exp.name}: {len(exp.units)} training units, {len(exp.runs)} runs -> {out}")
        for run in exp.runs:
            s = run.sampler
            state = "complete" if run_complete(out / "runs" / run.id) else "pending"
            print(f"  {run.id}  {run.protocol.get('name', ''):<8} {run.unit.method:<11} seed {run.unit.seed}  "
                  f"{s['name']:<9} NFE {s['nfe']:<5} "
                  f"t* {s['t_star']:<5} top-k {s['top_k']!s:<5} {run.task} {run.scorer or ''}  [{state}]")
        print(f"{len(result['jobs'])} job(s) would be submitted")
        return
    done = sum(run_complete(out / "runs" / r.id) for r in exp.runs)
    print(f"{exp.name}: {result['submitted']} job(s) run; {done}/{len(exp.runs)} runs complete in {out}")
    if result.get("failed"):
        raise ConfigError(f"{len(result['failed'])} job(s) failed; first: {result['failed'][0]} "
                          f"(logs in {out / 'submitit'}); run the same command again to resume")


def cmd_report(args: argparse.Namespace) -> None:
    from harness.report import write_report

    only = None
    if args.experiment:  # one or several files: the runs of any of them
        from harness.experiment import load_experiment

        only = {run.id for path in args.experiment for run in load_experiment(path).runs}
    result = write_report(args.results_dir, args.out, title=args.title, kl_curve_csv=args.kl_curve, only=only)
    for problem in result["problem_list"]:
        print(f"left out: {problem}", file=sys.stderr)
    board = Path(result["leaderboard_md"]).read_text()
    for section in board.split("\n## ")[1:]:  # the verdict first, as the report shows it
        if section.startswith(("Verdict", "Pairwise")):
            print(section.rstrip() + "\n")
    print(f"{result['runs']} runs, {result['problems']} problems; wrote {result['leaderboard_md']}, "
          f"{result['leaderboard_csv']}, {result['report_html']}")


def cmd_list(args: argparse.Namespace) -> None:
    import harness.protocol  # noqa: F401  (registers the generation protocols; imports torch)
    from harness.registry import ALL

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


COMMANDS = {"list": cmd_list, "kl-curve": cmd_kl_curve, "train": cmd_train, "sample": cmd_sample,
            "bench": cmd_bench, "score": cmd_score, "eval": cmd_eval,
            "lm-eval": cmd_lm_eval, "sweep": cmd_sweep,
            "report": cmd_report}


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
    except RuntimeError as err:
        from harness.trainer import TrainingDiverged

        if not isinstance(err, TrainingDiverged):
            raise
        print(f"pathbench {args.command}: error: {err}", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
