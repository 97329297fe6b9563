"""``pathbench sweep`` and ``pathbench report``: an experiment grid run to completion (and resumed),
and the report of its results folder."""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from pathbench.core.errors import ConfigError

# Command bodies import their work when called: it imports torch or matplotlib, which --help should not wait for.


def add_commands(sub, common: argparse.ArgumentParser) -> None:
    sw = sub.add_parser("sweep", parents=[common], help="run an experiment grid (submitit: local, slurm, debug)")
    sw.add_argument("file", type=Path, help="experiment YAML")
    sw.add_argument("--executor", choices=["local", "slurm", "debug"], default=None,
                    help="default: the file's executor.kind, else local")
    sw.add_argument("--out", type=Path, default=None, help="results folder (default: runs/<name>)")
    sw.add_argument("--dry-run", action="store_true", help="print the runs it would launch")
    sw.add_argument("--device", default=None)
    sw.set_defaults(func=cmd_sweep)

    rp = sub.add_parser("report", parents=[common], help="tables, plots and an HTML leaderboard from a results folder")
    rp.add_argument("results_dir", type=Path)
    rp.add_argument("--out", type=Path, required=True, help="e.g. results/NAME")
    rp.add_argument("--title", default=None)
    rp.add_argument("--kl-curve", type=Path, default=None, help="a kl_curve.csv to plot beside the runs")
    rp.add_argument("--experiment", type=Path, action="append", default=None,
                    help="report only this experiment file's runs (when sweeps share a folder; repeatable)")
    rp.add_argument("--denoiser-gap", type=Path, default=None,
                    help="a denoiser_gap.json (oracle corpora): its Bayes-optimal curve beside the held-out CE")
    rp.add_argument("--speeds", type=Path, default=None,
                    help="a speeds.json (pathbench study speeds): the quality-speed section reads its re-measured "
                         "generation cost instead of the runs' own timings")
    rp.set_defaults(func=cmd_report)


def cmd_sweep(args: argparse.Namespace) -> None:
    from pathbench.sweep.dispatch import run_complete
    from pathbench.sweep.driver import sweep
    from pathbench.sweep.experiment import read_experiment

    out = args.out or Path("runs") / str(read_experiment(args.file).get("name", args.file.stem))
    result = sweep(args.file, out, executor=args.executor, dry_run=args.dry_run, plugins=tuple(args.plugin),
                   device=args.device)
    exp = result["experiment"]
    if result.get("tuning_pending"):
        print(f"{exp.name}: tuning first: {len(exp.units)} candidate unit(s) -> {out / 'train'}; the grid is "
              f"expanded with each method's choice once they are trained")
        if result.get("tuning_later"):
            print(f"  then {result['tuning_later']} flow-map student candidate(s), each against its teacher's "
                  "chosen candidate, once the teachers' are trained")
        print(f"{len(result['jobs'])} job(s) would be submitted")
        return
    if args.dry_run:
        print(f"{exp.name}: {len(exp.units)} training units, {len(exp.runs)} runs -> {out}")
        for run in exp.runs:
            s = run.sampler
            state = "complete" if run_complete(out / "runs" / run.id) else "pending"
            print(f"  {run.id}  {run.unit.protocol_name or '':<8} {run.unit.method:<11} seed {run.unit.seed}  "
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
    from pathbench.report.leaderboard import write_report
    from pathbench.sweep.tuning import tuning_dir

    only, scorers = None, None
    tuning = sorted(p for p in (args.results_dir / "tuning").glob("*") if (p / "tuning.json").is_file())
    if args.denoiser_gap is not None and not args.denoiser_gap.is_file():
        raise ConfigError(f"--denoiser-gap {args.denoiser_gap} does not exist (pathbench study denoiser-gap writes it)")
    speeds = None
    if args.speeds is not None:
        from pathbench.studies.speeds import read_speeds

        speeds = read_speeds(args.speeds)
    if args.experiment:  # one or several files: the runs of any of them
        from pathbench.sweep.experiment import load_experiment, read_experiment
        from pathbench.sweep.tuning import read_tuned

        runs, tuning = [], []
        for path in args.experiment:  # a tuned sweep's grid is the one its tuning chose
            raw = read_experiment(path)
            name = str(raw.get("name", path.stem))
            tuned = read_tuned(args.results_dir, name)
            runs += load_experiment(path, tuned=tuned).runs
            source = (raw.get("tune") or {}).get("from")  # the table the pins came from: from the working
            # folder, else from the repository the file lies in (experiments/ beside results/)
            pinned = [base / Path(str(source)).parent for base in (Path("."), path.resolve().parent.parent)] \
                if source else []
            if (tuning_dir(args.results_dir, name) / "tuning.json").is_file():
                tuning.append(tuning_dir(args.results_dir, name))
            elif found := next((p for p in pinned if (p / "tuning.json").is_file()), None):
                tuning.append(found)
        only = {run.id for run in runs}
        # the scorers as the experiment lists them: its first is its primary scorer, shown first
        scorers = list(dict.fromkeys(str(run.scorer) for run in runs if run.scorer is not None))
    result = write_report(args.results_dir, args.out, title=args.title, kl_curve_csv=args.kl_curve, only=only,
                          scorer_order=scorers, tuning=tuning, denoiser_gap=args.denoiser_gap, speeds=speeds)
    for problem in result["problem_list"]:
        print(f"left out: {problem}", file=sys.stderr)
    board = Path(result["leaderboard_md"]).read_text()
    for section in board.split("\n## ")[1:]:  # the verdict first, as the report shows it
        if section.startswith(("The paper's question", "Did every model", "Verdict", "Pairwise")):
            print(section.rstrip() + "\n")
    print(f"{result['runs']} runs, {result['problems']} problems; wrote {result['leaderboard_md']}, "
          f"{result['leaderboard_csv']}, {result['report_html']}")
