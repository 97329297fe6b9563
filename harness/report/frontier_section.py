"""The report's quality–speed section: gen-PPL against measured samples/s per method and sampler
setting, the autoregressive baseline on the same axes (:mod:`pathbench.report.frontier`)."""

from __future__ import annotations

import math

import pandas as pd

from pathbench.report.frontier import quality_speed_frontier
from pathbench.report.section_types import Figure, ReportInput, Section
from pathbench.report.verdict_tables import untrained_runs


def _speed(value: float, low: float, high: float) -> str:
    if math.isnan(value):
        return "-"
    spread = not (math.isnan(low) or math.isnan(high)) and f"{low:.2f}" != f"{high:.2f}"
    return f"{value:.2f}" + (f" [{low:.2f}, {high:.2f}]" if spread else "")


def _few_step(rows) -> bool:
    """A few-step grid: settings below NFE 8 beside NFE 8 itself (FMLM's comparison)."""
    nfe = rows["nfe"].dropna()
    return bool((nfe == 8).any() and (nfe < 8).any())


def _times(x: float) -> str:
    return "-" if math.isnan(x) else f"{x:.1f}x"


def _measured(speeds: dict | None) -> str:
    """Where the speeds come from, in words."""
    if not speeds:
        return ("Generation cost as measured (the sampler's own wall time, scoring excluded; a timing, so it varies "
                "from run to run and machine to machine).")
    revision = f", revision {speeds['revision']}" if speeds.get("revision") else ""
    return (f"Generation cost re-measured by `pathbench study speeds` on {speeds.get('date')}{revision} "
            f"({speeds.get('machine')}; torch {speeds.get('torch')}): each setting's draw as its evaluation ran it, "
            f"timed {speeds.get('repeats')} times after a warm-up; samples/s is the mean over seeds of the median, "
            "[slowest, fastest] over seeds and repeats; scoring excluded. A method counts as faster only when its "
            "slowest draw beats the other's fastest.")


def quality_and_speed(data: ReportInput) -> list[Section]:
    result = quality_speed_frontier(data.df, data.records, data.out_dir / "quality_speed.png",
                                    untrained_runs(data.records))
    rows = result.rows
    if rows.empty or rows["samples_per_s"].isna().all():
        return []
    table = pd.DataFrame({
        "method": rows["method"], "sampler": rows["sampler"], "NFE": rows["nfe"],
        "top-k": ["-" if k is None or (isinstance(k, float) and math.isnan(k)) else str(k) for k in rows["top_k"]],
        "scorer": rows["scorer"],
        "gen PPL": [f"{p:.1f}" + (f" [{lo:.1f}, {hi:.1f}]" if not (math.isnan(lo) or math.isnan(hi)) else "")
                    for p, lo, hi in zip(rows["gen_ppl"], rows["gen_ppl_lo"], rows["gen_ppl_hi"])],
        "entropy": [f"{e:.2f}" for e in rows["entropy"]],
        "samples/s": [_speed(v, lo, hi) for v, lo, hi in
                      zip(rows["samples_per_s"], rows["samples_per_s_low"], rows["samples_per_s_high"])],
        "device": rows["device"]})
    if _few_step(rows):  # the few-step table: each setting's measured speedup over NFE 8 and over AR
        table.insert(len(table.columns) - 1, "x NFE 8", [_times(x) for x in rows["speedup_vs_nfe8"]])
        table.insert(len(table.columns) - 1, "x AR", [_times(x) for x in rows["speedup_vs_ar"]])
    figures = [Figure(result.plot, result.plot.read_bytes(), "gen-PPL against measured samples/s (log axes); the "
                      "autoregressive baseline starred")] if result.plot is not None else []
    left_out = sorted(set(rows.loc[~rows["learned"].fillna(True).astype(bool), "method"]))  # as compare() did
    text = (_measured(data.extra.get("speeds")) + " " + " ".join(result.sentences)
            + (f" Left out of these comparisons: {', '.join(left_out)} did not learn (see 'Did every model "
               "learn?'); their rows stay in the table, not to be read." if left_out else ""))
    return [Section("Quality and speed", text, table, figures=figures)]
