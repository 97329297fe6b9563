"""The report's first section: the verdict at matched entropy, per scorer (see pathbench.report.verdict).

Built from the complete unconditional runs that carry per-sample data (``metrics.per_sample``);
the target entropy is the real text's under the same scorer (the runs' reference row).
"""

from __future__ import annotations

from collections import defaultdict

import numpy as np
import pandas as pd

from pathbench.core import stats
from pathbench.report.verdict import Setting, judge, pairwise, seed_wins, within_noise


def _label(record: dict) -> str:
    """The sampler setting a run is one point of: every key that changes the draws is in it
    (keys at their default are left out, so that the usual labels stay short); two runs of one
    seed with the same label would be one setting."""
    s = record["sampler"]
    parts = [str(s.get("name")), f"NFE {s.get('nfe')}"]
    if s.get("name") == "hybrid":
        parts.append(f"t* {s.get('t_star')}")
    if s.get("top_k") is not None:
        parts.append(f"top-k {s['top_k']}")
    if s.get("top_p") is not None:
        parts.append(f"top-p {s['top_p']}")
    if s.get("temperature") not in (None, 1.0):
        parts.append(f"T {s['temperature']}")
    if s.get("grid") is not None:
        parts.append(f"grid {s['grid']}")
    if s.get("final") not in (None, "argmax"):
        parts.append(f"final {s['final']}")
    return " ".join(parts)


def distilled_from(record: dict) -> str | None:
    """The teacher's path of a distilled student (``teacher`` in its options), None for any other
    run: the one test of "is this a student" that the report's names and protocols share."""
    options = record.get("method_options") or {}
    path = options.get("path")
    return path if options.get("teacher") and isinstance(path, str) else None


def applied_protocol(record: dict) -> str | None:
    """The generation protocol a run's method follows; None for a baseline (it keeps its own). A
    distilled student (``teacher`` in its options) sets no protocol key itself but samples its
    teacher's path on the teacher's time range, so it follows the teacher's protocol — the one
    it was made under: students of a kl-flow and of a plain teacher are two models."""
    record_protocol = record.get("generation_protocol") or {}
    applies = distilled_from(record) is not None or "method" not in (record_protocol.get("not_applied") or {})
    return record_protocol.get("name") if applies else None


def _groups(records: list[dict]) -> dict[str, tuple[float, dict[str, list[Setting]]]]:
    """scorer -> (target entropy, method -> settings)."""
    out: dict[str, tuple[float, dict]] = {}
    by_scorer: dict[str, list[dict]] = defaultdict(list)
    for r in records:
        per = (r.get("metrics") or {}).get("per_sample")
        if per and (r.get("reference") or {}).get("entropy") is not None:  # samples scored beside real text
            by_scorer[str(r.get("scorer"))].append(r)
    for scorer, runs in sorted(by_scorer.items()):
        methods: dict[str, list[Setting]] = defaultdict(list)
        several = len({applied_protocol(r) for r in runs} - {None}) > 1
        for r in runs:
            per = r["metrics"]["per_sample"]
            # a path under two protocols is two methods (two trainings, two frontiers)
            name = r["method"] + (f" [{applied_protocol(r)}]" if several and applied_protocol(r) else "")
            methods[name].append(Setting(_label(r), np.asarray(per["nll_sum"], float),
                                                np.asarray(per["tokens"], float), np.asarray(per["entropy"], float),
                                                seed=int(r.get("seed") or 0)))
        out[scorer] = (float(runs[0]["reference"]["entropy"]), dict(methods))
    return out


#: the default scorer, first in a report unless the experiment lists another first
PRIMARY_SCORER = "smollm2"


def scorer_rank(order: list[str] | None):
    """A sort key putting the experiment's scorers in their listed order (its first = its primary
    scorer), else SmolLM2 first, then the rest by name."""
    order = list(order or [])

    def key(scorer: str) -> tuple:
        if scorer in order:
            return (0, order.index(scorer), "")
        return (1, 0 if scorer == PRIMARY_SCORER else 1, scorer)
    return key


def model_checks(records: list[dict]) -> dict[tuple[str, str | None], dict[str, bool | None]]:
    """(method, the protocol it follows or None for a baseline) -> {checkpoint: learned} — one entry
    per trained model, however many runs evaluated it: the one place a report counts seeds that
    did or did not learn (:func:`learned_by_method`, pathbench.report.learning.learning_table)."""
    models: dict[tuple[str, str | None], dict[str, bool | None]] = defaultdict(dict)
    for r in records:
        check = r.get("learning_check")
        if check is not None:
            models[(r["method"], applied_protocol(r))].setdefault(str(r.get("checkpoint")), check.get("learned"))
    return dict(models)


def untrained_runs(records: list[dict]) -> frozenset[str]:
    """The run ids of every model (method and the protocol it follows) with a seed that did not
    learn: a setting pooled over seeds is not read when one of its models is untrained."""
    failed = {model for model, found in model_checks(records).items() if any(v is False for v in found.values())}
    return frozenset(r["run_id"] for r in records if (r["method"], applied_protocol(r)) in failed)


def learned_by_method(records: list[dict]) -> dict[str, str]:
    """method name (as the verdict names it) -> 'yes', 'NO: did not learn (k of n seeds)' or
    'not checked', from each trained model's learning check (pathbench.engine.learning)."""
    several = len({applied_protocol(r) for r in records} - {None}) > 1
    out = {}
    for (method, protocol), found in model_checks(records).items():
        name = method + (f" [{protocol}]" if several and protocol else "")
        failed = sum(v is False for v in found.values())
        if failed:
            what = "read x_t" if method != "ar" else "predict the next token"
            out[name] = f"NO: did not learn to {what} ({failed} of {len(found)} seeds)"
        else:
            out[name] = "yes" if all(v is True for v in found.values()) else "not checked"
    return out


def learned_for(learned: dict[str, str], label: str) -> str:
    """A table row's learning check from :func:`learned_by_method`: a task verdict's row names its
    setting after the method when the setting varies ('kl (NFE 16)', 'kl [plain] (NFE 8)')."""
    return learned.get(label) or learned.get(label.split(" (")[0], "not checked")


def primary_verdicts(records: list[dict], scorer_order: list[str] | None = None):
    """(scorer, its MethodVerdicts) under the primary scorer, or None without a verdict."""
    groups = sorted(_groups(records).items(), key=lambda item: scorer_rank(scorer_order)(item[0]))
    if not groups:
        return None
    scorer, (target, methods) = groups[0]
    return scorer, judge(methods, target)


def verdict_sections(records: list[dict], scorer_order: list[str] | None = None
                     ) -> list[tuple[str, pd.DataFrame | None, str]]:
    """(title, table or None, text) per scorer — the primary scorer first (:func:`scorer_rank`) —
    the verdict first then the pairwise shares."""
    groups = dict(sorted(_groups(records).items(), key=lambda item: scorer_rank(scorer_order)(item[0])))
    if not groups:
        if not any("gen_ppl" in (r.get("metrics") or {}) for r in records):  # a conditional or code sweep
            return [("Verdict", None, "No matched-entropy verdict: no unconditional run here (it ranks "
                     "unconditional samples); the task tables below carry each number's interval.\n")]
        return [("Verdict", None, "No verdict: no unconditional run here carries per-sample data "
                 "(results made before per-sample storage); re-run the sweep to get one.\n")]
    sections = []
    learned = learned_by_method(records)
    for scorer, (target, methods) in groups.items():
        verdicts = judge(methods, target)
        n_seeds = max(len(v.seeds) for v in verdicts)
        rows = []
        for v in verdicts:
            value = f"{v.matched_ppl:.2f}" if v.matched_ppl else "not reached"
            row = {"rank": v.rank if v.rank is not None else "-", "method": v.method,
                   "matched gen PPL": value + (f" [{v.interval[0]:.2f}, {v.interval[1]:.2f}]" if v.interval else ""),
                   "reached in": f"{100 * v.reached_share:.0f} % of resamples"}
            if n_seeds > 1:
                row["per seed"] = ", ".join(f"{x:.0f}" if x is not None else "not reached"
                                            for x in v.seed_values.values())
            row.update({"best setting reaching the target": v.best_setting or "none",
                        "settings": len({s.label for s in methods[v.method]}), "seeds": len(v.seeds),
                        "learned": learned.get(v.method, "not checked")})
            rows.append(row)
        reached = [v for v in verdicts if v.interval is not None]
        ties = [f"{a.method} and {b.method}" for i, a in enumerate(reached) for b in reached[i + 1:]
                if within_noise(a, b)]
        how = stats.describe(seeds=n_seeds) + (" (seeds pooled per setting)" if n_seeds > 1 else " within each setting")
        text = (f"Matched entropy: each method's gen-PPL read off its PPL–entropy frontier (its sampler settings) "
                f"at the entropy of real text, {target:.3f} nats under {scorer}, so that less diverse text cannot "
                "buy a lower perplexity; interpolated in log-PPL between settings below and above the target, never "
                f"extrapolated ('not reached': no setting on one side). Cells: value [95 % interval]; interval: {how}. "
                "'reached in N % of resamples': the share of bootstrap resamples whose settings still bracket the "
                "target — the interval is taken over those. Rank ties where intervals overlap. "
                + (f"Within noise (overlapping intervals): {'; '.join(ties)}." if ties else
                   "No two methods that reach the target are within noise.") + "\n")
        sections.append((f"Verdict: gen-PPL at matched entropy ({scorer})", pd.DataFrame(rows), text))
        if len(reached) > 1:
            share = pairwise(reached)

            def cell(a, b):
                if a is b:
                    return "-"
                text = f"{share[(a.method, b.method)]:.2f}"
                if n_seeds > 1:
                    wins, common = seed_wins(a, b)
                    text += f" ({wins}/{common} seeds)"
                return text

            table = pd.DataFrame([{"P(row < column)": a.method, **{b.method: cell(a, b) for b in reached}}
                                  for a in reached])
            seeds_note = (" In brackets: the seeds whose own matched gen-PPL (that seed's settings alone) is "
                          "lower for the row method, of the seeds where both reach the target." if n_seeds > 1 else "")
            sections.append((f"Pairwise: share of resamples with the lower matched PPL ({scorer})", table,
                             "Each cell: the share of bootstrap resamples in which the row method's matched "
                             "gen-PPL is below the column method's." + seeds_note + "\n"))
    return sections
