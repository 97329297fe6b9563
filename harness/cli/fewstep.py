"""``pathbench`` commands for the few-step regime: ``distill``, and the diagnostics under ``pathbench
study``: ``reparam``, ``tune-tstar``, ``posterior-gap``, ``flowmap-gap`` (the parsers and their
one-call handlers; :mod:`pathbench.cli.main` mounts them)."""

from __future__ import annotations

import argparse
from pathlib import Path

from pathbench.cli.args import float_list, top_k_list
from pathbench.core.devices import resolve_device

# Command bodies import their work when called: it imports torch, which --help should not wait for.


def add_commands(sub, common: argparse.ArgumentParser) -> None:
    di = sub.add_parser("distill", parents=[common],
                        help="train a flow-map student of a trained path run (= train --method flowmap)")
    di.add_argument("--teacher", type=Path, required=True, help="run folder of a trained linear/kl/euclidean")
    di.add_argument("--steps", type=int, required=True)
    di.add_argument("--out", type=Path, required=True)
    di.add_argument("--resume", action="store_true")
    di.add_argument("--device", default=None)
    di.add_argument("overrides", nargs="*", metavar="KEY=VALUE", help="e.g. lr=1e-3 method.diag_fraction=0.5")
    di.set_defaults(func=cmd_distill)


def add_study_commands(sub, common: argparse.ArgumentParser) -> None:
    """The few-step diagnostics, under ``pathbench study``."""
    rp = sub.add_parser("reparam", parents=[common],
                        help="measure decoding error vs t on held-out data; store the time warp (grid=error)")
    rp.add_argument("--ckpt", type=Path, required=True)
    rp.add_argument("--points", type=int, default=33, help="times on [0, t_max]")
    rp.add_argument("--batches", type=int, default=8, help="held-out batches per time")
    rp.add_argument("--batch-size", type=int, default=16)
    rp.add_argument("--device", default=None)
    rp.set_defaults(func=cmd_reparam)

    tu = sub.add_parser("tune-tstar", parents=[common],
                        help="choose hybrid t* and top-k: lowest gen-PPL with entropy near real text")
    tu.add_argument("--ckpt", type=Path, required=True)
    tu.add_argument("--scorer", default="smollm2")
    tu.add_argument("--t-stars", type=float_list, default=None, help="e.g. 0.1,0.2,0.28 (default: "
                    "0.1,0.2,0.28,0.4,0.6, or a grid around --start)")
    tu.add_argument("--start", default=None, help="a t* or a posterior-gap crossing.json to centre the grid on")
    tu.add_argument("--top-k", type=top_k_list, default=[1, 5], help="e.g. 1,5,none")
    tu.add_argument("--margin", type=float, default=0.25, help="entropy band around real text, nats")
    tu.add_argument("--nfe", type=int, default=64)
    tu.add_argument("--n", type=int, default=32, help="validation samples per setting")
    tu.add_argument("--seed", type=int, default=1000, help="tuning seed (not the leaderboard's)")
    tu.add_argument("--batch-size", type=int, default=16)
    tu.add_argument("--widen", type=int, default=0, help="a choice at the grid's edge extends the grid one "
                    "t* past it (half the lowest, twice the highest) and selects again, at most this many times")
    tu.add_argument("--device", default=None)
    tu.set_defaults(func=cmd_tune_tstar)

    pg = sub.add_parser("posterior-gap", parents=[common],
                        help="exact KL-path posterior vs its geodesic-only approximation (CSV + plot)")
    pg.add_argument("--vocab", type=int, default=50000)
    pg.add_argument("--priors", default="point_mass,uniform", help="comma-separated: point_mass, uniform")
    pg.add_argument("--samples", type=int, default=256)
    pg.add_argument("--beta", type=float, default=0.01)
    pg.add_argument("--points", type=int, default=99)
    pg.add_argument("--threshold", type=float, default=0.1, help="KL level (nats) that defines the crossing")
    pg.add_argument("--seed", type=int, default=0)
    pg.add_argument("--out", type=Path, required=True)
    pg.set_defaults(func=cmd_posterior_gap)

    fg = sub.add_parser("flowmap-gap", parents=[common],
                        help="a flow-map student against its teacher's K-step flow map, by jump (s, t)")
    fg.add_argument("--ckpt", type=Path, required=True, help="run folder of a flow-map student")
    fg.add_argument("--steps", type=int, default=32, help="teacher Euler steps per jump")
    fg.add_argument("--batches", type=int, default=1, help="held-out batches")
    fg.add_argument("--batch-size", type=int, default=16)
    fg.add_argument("--device", default=None)
    fg.set_defaults(func=cmd_flowmap_gap)


def cmd_reparam(args: argparse.Namespace) -> None:
    from pathbench.studies.time_warp import fit_time_warp

    out = args.ckpt / "time_warp.png"
    warp = fit_time_warp(args.ckpt, points=args.points, batches=args.batches, batch_size=args.batch_size,
                         device=resolve_device(args.device), out=out)
    half = min(range(len(warp.times)), key=lambda k: abs(warp.error[k] - (warp.error[0] + warp.error[-1]) / 2))
    print(f"decoding error {warp.error[0]:.3f} nats at t = 0 -> {warp.error[-1]:.3f} at t = {warp.times[-1]:g}; "
          f"half of it gone by t ≈ {warp.times[half]:.3f}")
    print(f"grid 'error' at NFE 8: {', '.join(f'{t:.3f}' for t in warp.grid(8, warp.times[-1]).tolist())}")
    print(f"stored in {args.ckpt / 'calibration.json'}; plot {out}")


def cmd_tune_tstar(args: argparse.Namespace) -> None:
    from pathbench.studies.tune_tstar import read_start, tune_tstar

    start = read_start(args.start) if args.start is not None else None
    result = tune_tstar(args.ckpt, scorer=args.scorer, t_stars=args.t_stars, top_ks=args.top_k, nfe=args.nfe,
                        n=args.n, margin=args.margin, seed=args.seed, start=start, batch_size=args.batch_size,
                        widen=args.widen, device=resolve_device(args.device), out=args.ckpt / "tune_tstar")
    print(f"real text: gen-PPL {result['real_gen_ppl']:.1f}, entropy {result['real_entropy']:.3f} nats "
          f"(margin ±{args.margin})")
    for row in result["candidates"]:
        ok = abs(row["entropy"] - result["real_entropy"]) <= args.margin
        print(f"  t* {row['t_star']:<6} top-k {row['top_k']!s:<5} gen-PPL {row['gen_ppl']:>10.1f}  "
              f"entropy {row['entropy']:.3f}{'' if ok else '  (outside the band)'}")
    if result["widened"]:
        print(f"widened past the grid's edge: t* {', '.join(f'{t:g}' for t in result['widened'])}")
    chosen = result["sampler"]
    print(f"chosen: t* {chosen['t_star']}, top-k {chosen['top_k']} (gen-PPL {result['gen_ppl']:.1f}, entropy "
          f"{result['entropy']:.3f}); stored in {args.ckpt / 'calibration.json'} -> use --sampler tuned")
    if result.get("edge"):
        wider = "smaller" if result["edge"] == "lower" else "larger"
        print(f"at the grid's {result['edge']} edge: a {wider} t* may be better still (or leave the band); "
              "widen the grid (--widen N, or --t-stars) to know")


def cmd_posterior_gap(args: argparse.Namespace) -> None:
    from pathbench.studies.posterior_gap import write_posterior_gap

    priors = tuple(p.strip() for p in args.priors.split(",") if p.strip())
    result = write_posterior_gap(args.out, vocab=args.vocab, priors=priors, n_samples=args.samples,
                                 beta=args.beta, points=args.points, threshold=args.threshold, seed=args.seed)
    where = lambda t: f"t = {t:.3f}" if t is not None else "never within (0, 1)"  # noqa: E731
    for prior in result["crossing"]:
        print(f"  {prior} prior: KL(exact ‖ geodesic-only) < {args.threshold} nats from {where(result['crossing'][prior])}; "
              f"exact posterior entropy < {args.threshold} nats from {where(result['sharp'][prior])}")
    print(f"wrote {args.out / 'posterior_gap.csv'}, {args.out / 'posterior_gap.png'}, {args.out / 'crossing.json'} "
          "(pass it to tune-tstar --start)")


def cmd_distill(args: argparse.Namespace) -> None:
    from pathbench.core.config import parse_overrides
    from pathbench.engine.checkpoint import read_meta
    from pathbench.engine.protocol import protocol_name_of
    from pathbench.engine.run import resolve_training, train_run

    teacher = read_meta(args.teacher)
    overrides = parse_overrides(args.overrides)
    overrides["train"]["steps"] = args.steps
    # the teacher's preset and data, so the student sees the same corpus, tokenizer and length
    overrides["data"] = {**teacher["data"], **overrides["data"]}
    overrides["method"] = {"teacher": str(args.teacher), **overrides["method"]}
    # the student's path (t_max, grid) is its teacher's, so it is recorded under the teacher's protocol
    overrides, record = resolve_training("flowmap", protocol_name_of(teacher), overrides)
    result = train_run("flowmap", teacher["preset"], args.out, overrides, protocol=record, resume=args.resume,
                       device=resolve_device(args.device))
    print(f"distilled {teacher['method']} into a flow map: step {result.step}, loss {result.train_loss:.4f}"
          f"{f', validation {result.val_loss:.4f}' if result.val_loss is not None else ''}; run folder {args.out}")


def cmd_flowmap_gap(args: argparse.Namespace) -> None:
    from pathbench.studies.flowmap_gap import write_flowmap_gap

    rows = write_flowmap_gap(args.ckpt, steps=args.steps, batches=args.batches, batch_size=args.batch_size,
                             device=resolve_device(args.device))
    print(f"{'s':>6} {'t':>6}  KL(teacher ‖ student)  entropy teacher / student  student argmax = data")
    for r in rows:
        print(f"{r['s']:6.3f} {r['t']:6.3f}  {r['kl']:21.3f}  {r['teacher_entropy']:15.3f} / {r['student_entropy']:<7.3f}"
              f"  {r['student_accuracy']:.3f}")
    print(f"wrote {args.ckpt / 'flowmap_gap.csv'} (teacher: {args.steps} Euler steps per jump)")
