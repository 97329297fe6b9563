"""What the report says before any ordering: did each model learn, how was it trained and tuned,
and what the grid answers to the paper's question.

* :func:`learning_table` — one row per trained model (method, protocol, seed, recipe and lr, the
  data's marginal cross-entropy, the best held-out cross-entropy over t, learned or not), from
  the ``learning_check`` and ``training_recipe`` every metrics.json carries
  (:mod:`pathbench.engine.learning`). A model that did not learn is named in words on the first
  screen: its samples say nothing about its method.
* :func:`held_out_plot` — held-out cross-entropy against t per method (mean over seeds), the
  marginal beside it, and on an oracle corpus the Bayes-optimal denoiser's curve
  (``denoiser_gap.json`` of ``pathbench study denoiser-gap``) when given.
* :func:`tuning_section` — the tuning table (pathbench.sweep.tuning) the runs' recipes came from.
* :func:`paper_question` — KL vs Fisher-Rao vs linear at matched entropy, with intervals, or why
  this grid cannot answer it.
"""

from __future__ import annotations

import io
import json
from collections import defaultdict
from pathlib import Path

import numpy as np
import pandas as pd

from pathbench.report.verdict_tables import applied_protocol, model_checks

PAPER_PATHS = ("kl", "fisher_rao", "linear")


def _units(records: list[dict]) -> dict[str, dict]:
    """One record per trained model (its checkpoint), the first run that names it."""
    out: dict[str, dict] = {}
    for r in records:
        if r.get("learning_check") and r.get("checkpoint"):
            out.setdefault(str(r["checkpoint"]), r)
    return out


def _protocol(record: dict) -> str:
    """The protocol a run's method follows, '-' for a baseline (verdict_tables' rule)."""
    return applied_protocol(record) or "-"


def learning_table(records: list[dict]) -> tuple[pd.DataFrame | None, list[str]]:
    """(table, methods with a model that did not learn, as 'method (k of n seeds)')."""
    units = _units(records)
    if not units:
        return None, []
    rows = []
    for r in sorted(units.values(), key=lambda r: (r["method"], _protocol(r), int(r.get("seed") or 0))):
        check, recipe = r["learning_check"], r.get("training_recipe") or {}
        learned = {True: "yes", False: "NO: did not learn", None: "not checked"}[check.get("learned")]
        if check.get("kind") == "denoiser" and check.get("learned") is False:
            learned = "NO: did not learn to read x_t"
        best = check.get("best_ce")
        rows.append({"method": r["method"], "protocol": _protocol(r), "seed": r.get("seed", 0),
                     "recipe": recipe.get("name", "?") + (" (recorded before recipes)" if recipe.get("legacy") else ""),
                     "lr": recipe["lr"] if recipe.get("lr") is not None else "-",
                     "marginal CE": f"{check['marginal_ce']:.3f}" if check.get("marginal_ce") is not None else "-",
                     "best held-out CE": (f"{best:.3f}" + (f" at t = {check['best_t']:.3f}" if check.get("best_t")
                                                            is not None else "")) if best is not None else "-",
                     "learned": learned})
    failed = []
    for (method, protocol), found in sorted(model_checks(records).items(), key=lambda kv: (kv[0][0], kv[0][1] or "-")):
        k = sum(v is False for v in found.values())
        if k:
            failed.append(f"{method} [{protocol}] ({k} of {len(found)} seeds)" if protocol
                          else f"{method} ({k} of {len(found)} seeds)")
    return pd.DataFrame(rows), failed


def learning_summary(records: list[dict]) -> str:
    """One paragraph for the report's first screen."""
    table, failed = learning_table(records)
    if table is None:
        return ""
    unchecked = sorted(set(table.loc[table["learned"] == "not checked", "method"]))
    also = (f" Not checked: {', '.join(unchecked)} (an objective that is not a per-token cross-entropy of the "
            "clean data given its input)." if unchecked else "")
    if not failed:
        checked = int((table["learned"] != "not checked").sum())
        return (f"Every checked model learned: each one's best held-out cross-entropy is at least 0.1 nats below the "
                f"data's marginal (the unigram), so its samples can be read ({checked} models).{also}\n")
    return ("**Did not learn** — " + "; ".join(failed) + ": the best held-out cross-entropy of these models never "
            "gets 0.1 nats below the data's marginal (the unigram). Their samples say nothing about their method; "
            f"they are flagged in every table and must not be read as the method's behaviour.{also}\n")


def held_out_plot(records: list[dict], plt, bayes: dict | None = None) -> bytes | None:
    """PNG: held-out CE against t per method (mean over seeds), marginal dashed, Bayes dotted."""
    curves: dict[str, list] = defaultdict(list)
    marginal = []
    for r in _units(records).values():
        check = r["learning_check"]
        if check.get("kind") == "denoiser" and check.get("times"):
            label = f"{r['method']} [{_protocol(r)}]"
            curves[label].append((check["times"], check["held_out_ce"]))
            marginal.append(check["marginal_ce"])
    if not curves:
        return None
    fig, ax = plt.subplots(figsize=(6.4, 3.8))
    for label, items in sorted(curves.items()):
        times = items[0][0]
        ce = np.mean([c for t, c in items if t == times], axis=0)
        ax.plot(times, ce, marker="o", ms=3, label=f"{label} ({len(items)} seeds)")
    ax.axhline(float(np.mean(marginal)), color="k", ls="--", lw=1, label="data marginal (unigram)")
    for label, (times, ce) in sorted((bayes or {}).items()):
        ax.plot(times, ce, color="grey", ls=":", lw=1.5, label=f"Bayes-optimal ({label})")
    ax.set_xlabel("t")
    ax.set_ylabel("held-out cross-entropy (nats/token)")
    ax.set_title("Did the denoisers learn to read x_t?")
    ax.grid(alpha=0.3)
    ax.legend(fontsize=7)
    fig.tight_layout()
    buffer = io.BytesIO()
    fig.savefig(buffer, format="png", dpi=110)
    plt.close(fig)
    return buffer.getvalue()


def bayes_curves(denoiser_gap_json: Path | None) -> dict | None:
    """protocol -> (times, Bayes-optimal CE) from a denoiser_gap.json (one vocabulary's rows)."""
    if denoiser_gap_json is None or not Path(denoiser_gap_json).is_file():
        return None
    rows = json.loads(Path(denoiser_gap_json).read_text()).get("rows", [])
    out: dict[str, dict[float, list]] = defaultdict(lambda: defaultdict(list))
    for row in rows:
        out[f"{row['protocol']}, V {row['vocab']}"][row["t"]].append(row["ce_bayes"])
    return {k: (sorted(v), [float(np.mean(v[t])) for t in sorted(v)]) for k, v in out.items()}


def tuning_section(folder: Path | None) -> str | None:
    """The tuning table's Markdown (``tuning.md``) from a folder holding a tuning result."""
    if folder is None:
        return None
    path = Path(folder) / "tuning.md"
    return path.read_text() if path.is_file() else None


def paper_question(verdicts: list, failed: list[str]) -> str:
    """KL vs Fisher-Rao vs linear at matched entropy, in words, with intervals (``verdicts``:
    pathbench.report.verdict.MethodVerdict of one scorer; ``failed``: :func:`learning_table`'s
    'method [protocol] (k of n seeds)'). A report of several protocols (methods named 'kl [plain]')
    answers once per protocol, each from its own paths and its own failed models."""
    by_protocol: dict[str | None, dict] = defaultdict(dict)
    for v in verdicts:
        path, _, protocol = v.method.partition(" [")
        if path in PAPER_PATHS:
            by_protocol[protocol.rstrip("]") or None][path] = v
    ask = ("The paper's question: at the same sample entropy, does the KL path give lower generative perplexity "
           "than the Fisher-Rao and linear paths? ")
    if len(by_protocol) <= 1:
        found = next(iter(by_protocol.values()), {})
        answered, text = _answer(found, failed)
        return ask + ("Answer on this grid: " if answered else "This grid cannot answer it: ") + text
    parts = []
    for protocol, found in sorted(by_protocol.items()):
        answered, text = _answer(found, [f for f in failed if f"[{protocol}]" in f])
        parts.append(f"Under {protocol}: " + ("the answer is " if answered else "this grid cannot answer it: ") + text)
    return ask + " ".join(p.rstrip() for p in parts) + "\n"


def _answer(found: dict, failed: list[str]) -> tuple[bool, str]:
    """(answered, the answer or why not) for one protocol's paths (path name -> MethodVerdict)."""
    missing = [p for p in PAPER_PATHS if p not in found]
    if missing:
        return False, f"it has no {', '.join(missing)} run.\n"
    bad = [f for f in failed if f.split(" ")[0] in PAPER_PATHS]
    if bad:
        return False, f"{'; '.join(bad)} did not learn.\n"
    unreached = [v.method for v in found.values() if v.interval is None]
    if unreached:
        return False, (f"{', '.join(unreached)} never reach(es) real text's entropy with the sampler settings here "
                       "(matched entropy is interpolated, never extrapolated).\n")
    ordered = sorted(found.values(), key=lambda v: v.matched_ppl)
    parts = [f"{v.method} {v.matched_ppl:,.0f} [{v.interval[0]:,.0f}, {v.interval[1]:,.0f}]" for v in ordered]
    pairs = []
    for i, a in enumerate(ordered):
        for b in ordered[i + 1:]:
            tie = not (a.interval[1] < b.interval[0] or b.interval[1] < a.interval[0])
            pairs.append(f"{a.method} {'and' if tie else '<'} {b.method}" + (" within noise" if tie else " beyond noise"))
    kl, others = found["kl"], [v for p, v in found.items() if p != "kl"]
    if all(kl.interval[1] < o.interval[0] for o in others):
        answer = "yes, beyond noise"
    elif any(o.interval[1] < kl.interval[0] for o in others):
        answer = "no: " + ", ".join(o.method for o in others if o.interval[1] < kl.interval[0]) + " beats KL beyond noise"
    else:
        answer = "not beyond noise (overlapping intervals)"
    return True, f"{answer}. Matched gen-PPL, 95 % intervals: {'; '.join(parts)} ({'; '.join(pairs)}).\n"
