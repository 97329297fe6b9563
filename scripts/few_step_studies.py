#!/usr/bin/env python3
"""The studies on the few-step sweep's runs: the flow-map students' gaps and the calibration.

    scripts/few_step_studies.py gaps PROTOCOL RESULTS_DIR   # make few-step / few-step-protocols
    scripts/few_step_studies.py calibration RESULTS_DIR     # make calibration (results/calibration_cpu)

(the sweep folder is ``runs/few_step_cpu``, or ``$FEW_STEP_SWEEP``). Every step is a
``pathbench`` command a user could type (printed before it runs), on the units that the pinned
few-step files train (``experiments/few_step_cpu.yaml``, kl-flow, and
``experiments/few_step_cpu_plain.yaml``, plain), with their tuned recipes.

``gaps``: ``study flowmap-gap`` on each flow-map student of PROTOCOL's file (its KL to the
teacher's 32-step flow map, by jump), copied to RESULTS_DIR/flowmap_gap_<teacher>.csv.

``calibration``:

1. automatic t* (``study tune-tstar``) for kl under each protocol, started at the posterior-gap
   time (``results/posterior_gap/crossing.json``), NFE 16, 32 samples, top-k 1 and 5, the grid widened past an edge choice up to 3 times;
2. decoding-error time warps (``study reparam``) of kl under each protocol and of euclidean
   under plain (under kl-flow's t ≤ 0.3 its Gaussian noise hides the token from any denoiser,
   so it has no warp to fit: ``results/oracle_ablation_cpu/``);
3. euclidean (plain) trained again on its own warp (``method.time_warp``), with the teacher's
   recipe, budget and seed — only the training times differ — and its warp;
4. NFE-16 samples of both euclidean runs (basic and sampling top-5, uniform and error grid) and
   of kl with its tuned sampler on the leaderboard's seed: ``evaluations.csv``.

A step whose output exists is skipped, so a killed run resumes. The few-step sweeps must be
complete (a teacher still training is refused).
"""

from __future__ import annotations

import csv
import io
import json
import os
import shutil
import sys
from pathlib import Path

from pathbench.cli import main as pathbench
from pathbench.core.errors import ConfigError
from pathbench.core.io import atomic_write_text
from pathbench.engine.calibration import read_calibration
from pathbench.engine.run import environment
from pathbench.sweep.experiment import load_experiment, read_experiment
from pathbench.sweep.progress import train_complete
from pathbench.sweep.tuning import read_tuned

FILES = {"kl-flow": Path("experiments/few_step_cpu.yaml"), "plain": Path("experiments/few_step_cpu_plain.yaml")}
START = "results/posterior_gap/crossing.json"
SCORER = "smollm2"


def fail(message: str) -> None:
    print(message, file=sys.stderr)
    sys.exit(2)


def run(*argv: str) -> None:
    print("$ pathbench " + " ".join(argv), flush=True)
    if pathbench(list(argv)) != 0:
        fail(f"failed: pathbench {' '.join(argv)}")


def trained(sweep: Path, protocol: str, method: str) -> list[Path]:
    """The train folders of ``method``'s seed-0 units in the pinned few-step file of ``protocol``."""
    path = FILES[protocol]
    try:  # its pinned choices, else those of the sweep's own tuning stage
        exp = load_experiment(path, tuned=read_tuned(sweep, read_experiment(path).get("name", path.stem)))
    except ConfigError as err:
        fail(f"{path}: {err}")
    units = [u for u in exp.units if u.method == method and u.seed == 0]
    folders = [sweep / "train" / u.id for u in units]
    for unit, folder in zip(units, folders):
        if not train_complete(folder, int(unit.train["steps"])):
            fail(f"{folder} ({method}, {protocol}) is not trained to the end: run its sweep first (`make few-step`, `make few-step-protocols`)")
    return folders


def teacher(sweep: Path, protocol: str, method: str) -> Path:
    return trained(sweep, protocol, method)[0]


def gaps(sweep: Path, protocol: str, out: Path) -> None:
    students = trained(sweep, protocol, "flowmap")
    out.mkdir(parents=True, exist_ok=True)
    for student in students:
        if not (student / "flowmap_gap.csv").exists():
            run("study", "flowmap-gap", "--ckpt", str(student))
        name = json.loads((student / "meta.json").read_text())["method_options"]["path"]  # the teacher's path
        shutil.copyfile(student / "flowmap_gap.csv", out / f"flowmap_gap_{name}.csv")


def own_runs(sweep: Path) -> Path:
    """Where the calibration's own runs go: beside the sweep folder, not in it (a report of the
    sweep reads every metrics.json under it)."""
    return sweep.parent / "calibration_cpu"


def tune_tstar(folder: Path, out: Path, suffix: str) -> None:
    if "tuned_sampler" not in read_calibration(folder):
        run("study", "tune-tstar", "--ckpt", str(folder), "--start", START, "--nfe", "16", "--n", "32",
            "--top-k", "1,5", "--widen", "3", "--scorer", SCORER)
    for ext in ("csv", "png"):
        shutil.copyfile(folder / "tune_tstar" / f"tune_tstar.{ext}", out / f"tune_tstar{suffix}.{ext}")


def reparam(folder: Path, out: Path, name: str) -> None:
    if "time_warp" not in read_calibration(folder):
        run("study", "reparam", "--ckpt", str(folder))
    shutil.copyfile(folder / "time_warp.png", out / f"time_warp_{name}.png")
    atomic_write_text(out / f"calibration_{name}.json", json.dumps(read_calibration(folder), indent=2) + "\n")


def train_warped(base: Path, folder: Path) -> None:
    """``base``'s training again (its recipe, budget, seed and data), on its own decoding-error warp."""
    meta = json.loads((base / "meta.json").read_text())
    t, d = meta["train"], meta["data"]
    if train_complete(folder, int(t["steps"])):
        return
    keys = [f"{k}={t[k]}" for k in ("lr", "optimizer", "warmup", "batch_size", "seed", "eval_every",
                                    "eval_batches", "ckpt_every", "log_every")]
    keys += [f"data.{k}={d[k]}" for k in ("corpus", "tokenizer", "vocab_size", "seq_len")]
    resume = ["--resume"] if (folder / "checkpoint.json").exists() else []
    run("train", "--method", "euclidean", "--preset", meta["preset"], "--steps", str(t["steps"]),
        "--protocol", "plain", "--out", str(folder), *resume, *keys, "progress=false",
        f"method.time_warp={base}")


def evaluate(folder: Path, label: str, sweep: Path, settings: list[list[str]]) -> list[dict]:
    rows = []
    for setting in settings:
        name = "-".join(s.lstrip("-") for s in setting)
        out = own_runs(sweep) / "eval" / f"{folder.name}-{name}"
        if not (out / "metrics.json").exists():  # `pathbench eval` writes it last, atomically
            run("eval", "--ckpt", str(folder), "--task", "unconditional", "--n", "32", "--nfe", "16",
                "--seed", "0", *setting, "--out", str(out), "--overwrite", f"scorer={SCORER}")
        m = json.loads((out / "metrics.json").read_text())
        sampler, metrics = m["sampler"], m["metrics"]
        rows.append({"run": f"{label} ({folder.name})", "sampler": sampler["name"], "nfe": sampler["nfe"],
                     "grid": sampler.get("grid") or "path's own",
                     "t_star": sampler["t_star"] if sampler["name"] == "hybrid" else "",
                     "top_k": sampler.get("top_k") or "", "seed": 0,
                     "gen_ppl": round(metrics["gen_ppl"], 2),
                     "gen_ppl_ci95": "[{:.1f}, {:.1f}]".format(*metrics["gen_ppl_ci95"]),
                     "entropy": round(metrics["entropy"], 3),
                     "entropy_ci95": "[{:.3f}, {:.3f}]".format(*metrics["entropy_ci95"]),
                     "learned": (m.get("learning_check") or {}).get("learned", ""),
                     "revision": m["environment"]["git_revision"][:7]})
    return rows


def calibration(sweep: Path, out: Path) -> None:
    kl, kl_plain = teacher(sweep, "kl-flow", "kl"), teacher(sweep, "plain", "kl")
    euclidean = teacher(sweep, "plain", "euclidean")
    out.mkdir(parents=True, exist_ok=True)
    tune_tstar(kl, out, "")
    tune_tstar(kl_plain, out, "_plain")
    reparam(kl, out, "kl")
    reparam(kl_plain, out, "kl_plain")
    reparam(euclidean, out, "euclidean")
    warped = own_runs(sweep) / "euclidean_warped"
    train_warped(euclidean, warped)
    reparam(warped, out, "euclidean_warped")
    grid = [["--sampler", "basic", "--grid", g] for g in ("uniform", "error")]
    grid += [["--sampler", "sampling", "--top-k", "5", "--grid", g] for g in ("uniform", "error")]
    rows = evaluate(euclidean, "euclidean, uniform t", sweep, grid)
    rows += evaluate(warped, "euclidean, warped t", sweep, grid)
    rows += evaluate(kl, "kl, kl-flow", sweep, [["--sampler", "tuned"]])
    rows += evaluate(kl_plain, "kl, plain", sweep, [["--sampler", "tuned"]])
    buffer = io.StringIO()
    writer = csv.DictWriter(buffer, fieldnames=list(rows[0]))
    writer.writeheader()
    writer.writerows(rows)
    atomic_write_text(out / "evaluations.csv", buffer.getvalue())
    print(f"wrote {out} (revision {(environment()['git_revision'] or 'unknown')[:7]})")


if __name__ == "__main__":
    sweep_dir = Path(os.environ.get("FEW_STEP_SWEEP", "runs/few_step_cpu"))
    match sys.argv[1:]:
        case ["gaps", protocol, out] if protocol in FILES:
            gaps(sweep_dir, protocol, Path(out))
        case ["calibration", out]:
            calibration(sweep_dir, Path(out))
        case _:
            fail(f"usage: {sys.argv[0]} gaps {{{','.join(FILES)}}} RESULTS_DIR | calibration RESULTS_DIR")
