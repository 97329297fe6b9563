"""The verdict of a conditional or code report: per metric, the methods ranked with their
intervals over prompts or problems, ties said in words.

Built from the task tables' numeric rows (:func:`pathbench.report.tables.settings`, one row per
setting: its value and stored 95 % interval). Every metric here is higher-is-better (BLEU,
ROUGE-L, BERTScore, Pass@k, Compiles@k). A row's rank is 1 + the rows whose interval lies wholly
above its own, as in the matched-entropy verdict (:mod:`pathbench.report.verdict`): rows whose
intervals overlap are *within noise* and may share a rank. A method with several settings is
one row per setting, named by what tells them apart.
"""

from __future__ import annotations

import math

import pandas as pd

from pathbench.report.tables import SETTING_KEYS, _fmt_key, header

#: the headline metrics of a task verdict, by family (the task tables show the rest)
HEADLINE = ("bleu", "rougeL", "bertscore_f1", "pass@", "compiles@")


def _name(row: pd.Series, keys: list[str]) -> str:
    extra = [f"{header(k)} {_fmt_key(row[k])}" if k != "sampler" else str(row[k]) for k in keys
             if row.get(k) is not None and not (isinstance(row[k], float) and math.isnan(row[k]))]
    return str(row["method"]) + (f" ({', '.join(extra)})" if extra else "")


def _interval(row: pd.Series, metric: str) -> tuple[float, float] | None:
    lo, hi = row.get(f"{metric}_lo"), row.get(f"{metric}_hi")
    return (float(lo), float(hi)) if pd.notna(lo) and pd.notna(hi) else None


def _cell(value: float, interval: tuple[float, float] | None, metric: str) -> str:
    p = 2 if metric.startswith("bleu") else 3
    return f"{value:.{p}f}" + (f" [{interval[0]:.{p}f}, {interval[1]:.{p}f}]" if interval else "")


def _ties_in_words(names: list[str], intervals: list[tuple[float, float] | None]) -> str:
    overlap = [(a, b) for i, a in enumerate(names) for j, b in enumerate(names) if i < j
               and intervals[i] and intervals[j] and intervals[i][0] <= intervals[j][1]
               and intervals[j][0] <= intervals[i][1]]
    if len(names) > 1 and len(overlap) == len(names) * (len(names) - 1) // 2:
        return "the two within noise" if len(names) == 2 else f"all {len(names)} within noise of one another"
    if not overlap:
        return "no two within noise"
    return "within noise: " + "; ".join(f"{a} and {b}" for a, b in overlap)


def task_verdict(agg: pd.DataFrame, metrics: list[str]) -> tuple[pd.DataFrame, str] | None:
    """(table, words) for one task's settings ``agg``: rows = methods (settings) in the order of
    the first headline metric's ranking, one column per headline metric, ``value [low, high]
    (rank)``; the words give each metric's ties. None when no headline metric has an interval."""
    shown = [m for m in metrics if m.startswith(HEADLINE) and agg[f"{m}_lo"].notna().any()]
    if agg.empty or not shown:
        return None
    varying = [k for k in SETTING_KEYS[1:] if k in agg and agg.groupby("method", dropna=False)[k]
               .nunique(dropna=False).gt(1).any()]
    names = [_name(row, varying) for _, row in agg.iterrows()]
    ranks, words = {}, []
    for m in shown:
        intervals = [_interval(row, m) for _, row in agg.iterrows()]
        ranks[m] = [None if iv is None else 1 + sum(o is not None and o[0] > iv[1] for o in intervals)
                    for iv in intervals]
        order = sorted(range(len(names)), key=lambda i: (ranks[m][i] is None, ranks[m][i] or 0, -agg[m].iloc[i]))
        ties = _ties_in_words([names[i] for i in order], [intervals[i] for i in order])
        ranking = ", ".join(f"{names[i]} #{ranks[m][i]}" for i in order if ranks[m][i] is not None)
        every_pair = ties.startswith(("all ", "the two "))  # nothing to rank: say only that
        words.append(f"{header(m)}: {ties}" if every_pair else f"{header(m)}: {ranking}; {ties}")
    first = shown[0]
    order = sorted(range(len(names)), key=lambda i: (ranks[first][i] is None, ranks[first][i] or 0,
                                                     -agg[first].iloc[i], names[i]))
    rows = [{"method": names[i],
             **{header(m): (_cell(agg[m].iloc[i], _interval(agg.iloc[i], m), m)
                            + (f" (#{ranks[m][i]})" if ranks[m][i] is not None else ""))
                for m in shown}} for i in order]
    return pd.DataFrame(rows), "; ".join(words) + "."
