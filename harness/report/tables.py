"""The tables of ``pathbench report`` after the verdict: each number once.

One table per scorer for the unconditional task (real text first, then every setting) and one
per other task. Runs that differ only in ``seed`` are one row: gen-PPL and entropy pooled over
the seeds' samples with their 95 % interval (:func:`pathbench.core.stats.seed_pooled`, a two-stage
bootstrap over seeds then samples with several seeds, over samples with one); any other metric
``X`` stored with ``X_ci95`` is shown as ``value [low, high]``. t* appears only on rows whose
sampler switches at it (hybrid). Also the numeric frames the plots draw from.
"""

from __future__ import annotations

import json
import math
from typing import Any

import pandas as pd

from pathbench.core import stats
from pathbench.report.html import MISSING

BASE = ("method", "preset", "task", "scorer")
PROTOCOL = "generation_protocol"  # its name; a column shown where two protocols share a table
SAMPLER_FIELDS = ("sampler", "nfe", "t_star", "top_k", "top_p", "temperature", "grid", "final", "final_at")
#: the columns that name a setting in every table, in sort order
SETTING_KEYS = ["method", "sampler", "nfe", "t_star", "top_k"]
#: samplers that switch at t*; elsewhere t_star is an unused default and is not shown
T_STAR_SAMPLERS = ("hybrid", "tuned")
#: samplers that draw no token (top-k, temperature and top-p do not apply; pathbench.engine.sampling)
NO_DRAW_SAMPLERS = ("basic",)
PE = ["gen_ppl", "entropy"]
POOLED_DATA = ("nll_sum", "tokens", "entropy")  # the per-sample lists stats.seed_pooled needs
STORED = "the 95 % interval stored with the run"
FIRST = ["gen_ppl", "entropy", "gen_ppl_sample_mean", "entropy_generator_ids", "nll_per_token"]
FAMILIES = ["bleu", "rougeL", "bertscore_f1", "pass@", "compiles@"]
SEQ2SEQ, CODE = FAMILIES[:3], FAMILIES[3:]
HEADERS = {"nfe": "NFE", "t_star": "t*", "top_k": "top-k", "top_p": "top-p", "gen_ppl": "gen PPL",
           "bleu": "BLEU", "rougeL": "ROUGE-L", "bertscore_f1": "BERTScore F1", "pass": "Pass",
           "compiles": "Compiles"}


def metric_key(name: str) -> tuple:
    if name in FIRST:
        return (0, FIRST.index(name))
    for i, family in enumerate(FAMILIES):
        if name == family.rstrip("@"):
            return (1, i, 0, 0)
        if name.startswith(family):
            rest = name[len(family):].lstrip("_")
            digits = "".join(ch for ch in rest if ch.isdigit())
            rank = 2 if rest == "avg" else 1
            return (1, i, rank, int(digits) if digits else math.inf, rest)
    return (2, name)


def config_columns(df: pd.DataFrame) -> list[str]:
    sampler = set(SAMPLER_FIELDS) | {c for c in df.columns if c.startswith("sampler_")}
    return [c for c in df.columns if c in BASE or c == PROTOCOL or c.startswith("opt.") or c in sampler]


def metric_columns(df: pd.DataFrame) -> list[str]:
    skip = {"run_id", "seed", "path", *config_columns(df)}
    return [c for c in df.columns if c not in skip and not c.startswith(("ref_", "train_"))
            and pd.api.types.is_numeric_dtype(df[c])]


def _interval(value: Any) -> tuple[float, float] | None:
    """A stored ``[low, high]`` (a list, or its JSON text as a table cell holds it), else None."""
    if isinstance(value, str) and value.startswith("["):
        try:
            value = json.loads(value)
        except ValueError:
            return None
    if isinstance(value, (list, tuple)) and len(value) == 2 and \
            all(isinstance(v, (int, float)) and not isinstance(v, bool) for v in value):
        return float(value[0]), float(value[1])
    return None


def _per_sample(record: dict | None) -> dict | None:
    per = ((record or {}).get("metrics") or {}).get("per_sample")
    return per if isinstance(per, dict) and all(isinstance(per.get(k), list) for k in POOLED_DATA) else None


def settings(df: pd.DataFrame, records: list[dict], metrics: list[str], pooled: bool = False) -> pd.DataFrame:
    """One row per setting: the runs of ``df`` that differ only in ``seed`` (and run id).

    Per metric ``m``: ``m``, ``m_lo`` / ``m_hi`` (the 95 % interval) and ``m_std`` (std over
    seeds), ``seeds`` (runs in the row) and ``interval`` (how the interval was made). With
    ``pooled`` and per-sample data on every run, gen-PPL and entropy come from
    :func:`pathbench.core.stats.seed_pooled` (all seeds' samples pooled; two-stage bootstrap with
    several seeds). Otherwise one run shows its stored ``m_ci95``, several the mean ± std."""
    config = config_columns(df)
    columns = [*config, *[f"{m}{s}" for m in metrics for s in ("", "_lo", "_hi", "_std", "_min", "_max")], "seeds",
               "interval", "pooled"]
    if df.empty:
        return pd.DataFrame(columns=columns)
    by_id = {r["run_id"]: r for r in records}
    out = []
    for key, part in df.groupby(config, dropna=False, sort=False):
        row: dict[str, Any] = dict(zip(config, key))
        runs = [by_id.get(i) for i in part["run_id"]]
        row.update(seeds=len(part), interval=None, pooled=False)
        done: set[str] = set()
        per = [_per_sample(r) for r in runs]
        if pooled and all(per) and sum(len(p["tokens"]) for p in per) >= 2 and {"gen_ppl", "entropy"} <= set(metrics):
            result = stats.seed_pooled(per)
            for m in ("gen_ppl", "entropy"):
                row[m], (row[f"{m}_lo"], row[f"{m}_hi"]) = result[m], result[f"{m}_ci95"]
            row["interval"], row["pooled"], done = result["interval"], True, {"gen_ppl", "entropy"}
        for m in metrics:
            if m in done:
                continue
            values = part[m].astype(float)
            row[m], row[f"{m}_std"] = values.mean(), values.std() if len(part) > 1 else math.nan
            row[f"{m}_min"], row[f"{m}_max"] = (values.min(), values.max()) if len(part) > 1 else (math.nan, math.nan)
            ci = _interval(((runs[0] or {}).get("metrics") or {}).get(f"{m}_ci95")) if len(part) == 1 else None
            if ci is not None and pd.notna(row[m]):
                row[f"{m}_lo"], row[f"{m}_hi"] = ci
                row["interval"] = row["interval"] or (runs[0]["metrics"].get("interval") or STORED)
        out.append(row)
    return pd.DataFrame(out).reindex(columns=columns)


def references(df: pd.DataFrame) -> pd.DataFrame:
    """The real-text reference per scorer: its value and stored interval where the runs share
    one reference, else the mean ± std over their ``seeds`` distinct references."""
    columns = ["scorer", *[f"{m}{s}" for m in PE for s in ("", "_lo", "_hi", "_std", "_min", "_max")], "seeds",
               "interval"]
    ref = [c for c in df.columns if c.startswith("ref_")]
    if "ref_gen_ppl" not in df.columns or df["ref_gen_ppl"].isna().all():
        return pd.DataFrame(columns=columns)
    distinct = df.dropna(subset=["ref_gen_ppl"]).drop_duplicates(["scorer", *ref])
    rows = []
    for scorer, part in distinct.groupby("scorer", dropna=False, sort=True):
        row: dict[str, Any] = {"scorer": scorer, "seeds": len(part), "interval": None}
        for m in PE:
            values = part[f"ref_{m}"].astype(float) if f"ref_{m}" in part else pd.Series([math.nan])
            row[m], row[f"{m}_std"] = values.mean(), values.std() if len(part) > 1 else math.nan
            row[f"{m}_min"], row[f"{m}_max"] = (values.min(), values.max()) if len(part) > 1 else (math.nan, math.nan)
            ci = _interval(part[f"ref_{m}_ci95"].iloc[0]) if len(part) == 1 and f"ref_{m}_ci95" in part else None
            if ci is not None:
                row[f"{m}_lo"], row[f"{m}_hi"] = ci
                row["interval"] = part["ref_interval"].iloc[0] if "ref_interval" in part else STORED
        rows.append(row)
    return pd.DataFrame(rows).reindex(columns=columns)


def _disambiguate(agg: pd.DataFrame, base: list[str], candidates: list[str]) -> list[str]:
    """The extra config columns that vary within a group of ``base`` (needed to tell rows apart)."""
    if agg.empty:
        return []
    groups = agg.groupby(base, dropna=False)
    return [c for c in candidates if c not in base and groups[c].nunique(dropna=False).gt(1).any()]


def _precision(name: str) -> int:
    return 2 if "ppl" in name or name.startswith("bleu") else 3


def _fmt_key(value: Any) -> str:
    if value is None or (isinstance(value, float) and math.isnan(value)):
        return MISSING
    if isinstance(value, float):
        return str(int(value)) if value.is_integer() and abs(value) >= 1 else f"{value:g}"
    return str(value)


def _cell(row: pd.Series, name: str) -> str:
    """``value [low, high]``: the 95 % interval where there is one, else (several seeds without
    per-sample data) ``mean [lowest, highest]`` over the seeds — one notation, the caption says
    which; else the value."""
    value, p = row.get(name), _precision(name)
    if value is None or pd.isna(value):
        return MISSING
    for low, high in (("_lo", "_hi"), ("_min", "_max")):
        lo, hi = row.get(f"{name}{low}"), row.get(f"{name}{high}")
        if lo is not None and hi is not None and pd.notna(lo) and pd.notna(hi):
            return f"{value:.{p}f} [{lo:.{p}f}, {hi:.{p}f}]"
    return f"{value:.{p}f}"


def header(name: str) -> str:
    for family in FAMILIES:
        if name.startswith(family):
            rest = name[len(family):].lstrip("_")
            fam = HEADERS[family.rstrip("@")]
            if family.endswith("@"):
                return f"{fam}@{rest}"
            return fam if not rest else f"{fam} {'Avg' if rest == 'avg' else 'Top-' + rest[3:]}"
    return HEADERS.get(name, name)


def _without_unused_t_star(agg: pd.DataFrame) -> pd.DataFrame:
    """t* only where the sampler switches at it (hybrid), top-k only where it draws tokens;
    elsewhere they are defaults, not settings."""
    if "t_star" in agg and "sampler" in agg:
        agg = agg.assign(t_star=agg["t_star"].where(agg["sampler"].isin(T_STAR_SAMPLERS)))
    if "top_k" in agg and "sampler" in agg:  # the ODE draws no token: its top-k is unused too
        agg = agg.assign(top_k=agg["top_k"].where(~agg["sampler"].isin(NO_DRAW_SAMPLERS)))
    return agg


def _display(agg: pd.DataFrame, config: list[str], metrics: list[str], ref: pd.DataFrame | None = None) -> pd.DataFrame:
    """The table of one scorer or task: real text first (if given), then the settings sorted by
    method, sampler, NFE, t*, top-k; key columns that are empty throughout are left out."""
    keys = [k for k in SETTING_KEYS if k in ("method", "sampler") or agg[k].notna().any()]
    keys += _disambiguate(agg, keys, [c for c in config if c not in ("task", "scorer")])
    agg = agg.sort_values(keys, na_position="last", kind="stable")
    rows = [{**{header(k): MISSING for k in keys}, header("method"): "real text", "seeds": MISSING,
             **{header(m): _cell(r, m) for m in metrics}} for _, r in (ref if ref is not None else agg.iloc[0:0]).iterrows()]
    rows += [{**{header(k): _fmt_key(r[k]) for k in keys}, "seeds": str(int(r["seeds"])),
              **{header(m): _cell(r, m) for m in metrics}} for _, r in agg.iterrows()]
    return pd.DataFrame(rows, columns=[*map(header, keys), "seeds", *map(header, metrics)])


def _caption(agg: pd.DataFrame, metrics: list[str], unconditional: bool, reference: bool = False) -> str:
    intervals = sorted({str(i) for i in agg["interval"].dropna()})
    text = "One row per setting: runs that differ only in seed are one row (`seeds` = how many)"
    text += ("; gen PPL is token-pooled over all their samples, entropy the mean over them. "
             if unconditional and agg["pooled"].fillna(False).astype(bool).any() else ". ")
    text += ("Cells: value [95 % interval]; interval: " + "; ".join(intervals) + "." if intervals else
             "No interval is stored with these runs.")
    text += " NFE: denoiser calls per sample (function evaluations)."
    if "t_star" in agg and agg["t_star"].notna().any():
        text += (" t*: the time at which the hybrid sampler switches from ODE steps to sampling; shown only for "
                 "the hybrid sampler (the only one that switches at it).")
    if agg[[f"{m}_min" for m in metrics]].notna().any().any():
        text += " Rows of several seeds without per-sample data to pool: mean [lowest, highest] over the seeds."
    return text + (" First row: real text under this scorer." if reference else "")


def reference_caption(ref: pd.DataFrame) -> str:
    """What the real-text row's brackets are where several seeds' scorers gave it (self:@ar)."""
    several = ref[ref["seeds"] > 1] if "seeds" in ref else ref.iloc[0:0]
    return (" Real text scored by each seed's own model: mean [lowest, highest] over those "
            f"{int(several['seeds'].max())} scorers." if not several.empty else "")


def _names(values: pd.Series) -> pd.Series:
    """Cells as the names a title uses; a missing one (None or NaN alike) is ``-``."""
    return values.map(lambda v: MISSING if v is None or (isinstance(v, float) and math.isnan(v)) else str(v))


def tables(df: pd.DataFrame, records: list[dict] | None = None) -> dict[str, Any]:
    """Display tables (title -> DataFrame of strings) after the verdict: one per scorer for the
    unconditional task (real text first), one per other task; each number appears once. Also
    ``_captions`` (title -> caption), and the numeric frames ``_agg`` (unconditional settings,
    pooled over seeds) and ``_ref`` (real text per scorer) for the plots."""
    df = df.reindex(columns=[*df.columns, *[k for k in [*SETTING_KEYS, "scorer"] if k not in df.columns]])
    records = records or []
    config, metrics = config_columns(df), metric_columns(df)
    out: dict[str, Any] = {}
    captions: dict[str, str] = {}
    task_aggs: dict[str, tuple[pd.DataFrame, list[str]]] = {}
    # runs of samples scored against real text (gen-PPL and a reference row), whatever their task
    scored = [c for c in ("gen_ppl", "ref_gen_ppl") if c in df]
    samples = df[df[scored].notna().any(axis=1)] if scored else df.iloc[0:0]
    unc_runs = samples[samples["gen_ppl"].notna()] if "gen_ppl" in samples else samples.iloc[0:0]
    unc = _without_unused_t_star(settings(unc_runs, records, PE, pooled=True)) if not unc_runs.empty else \
        settings(df.iloc[0:0].reindex(columns=[*df.columns, *PE]), [], PE)
    ref = references(samples)
    for scorer in sorted(_names(unc["scorer"]).unique()):
        mine = unc[_names(unc["scorer"]) == scorer]
        title = f"Unconditional leaderboard (scorer {scorer})"
        real = ref[_names(ref["scorer"]) == scorer]
        out[title] = _display(mine, config, PE, real)
        captions[title] = _caption(mine, PE, True, not real.empty) + reference_caption(real)
    rest = df.drop(samples.index)
    for task in sorted(_names(rest["task"]).unique()):
        runs = rest[_names(rest["task"]) == task]
        shown = [m for m in metrics if runs[m].notna().any() and
                 (m.startswith(tuple(FAMILIES)) or f"{m}_ci95" in df.columns)] or \
            [m for m in metrics if runs[m].notna().any()]
        if not shown:
            continue
        kind = "Seq2seq" if any(m.startswith(tuple(SEQ2SEQ)) for m in shown) else \
            "Code infilling" if any(m.startswith(tuple(CODE)) for m in shown) else "Task"
        scorers = runs["scorer"].dropna().map(str).unique()
        for scorer in sorted(scorers) if len(scorers) > 1 else [None]:
            part = runs if scorer is None else runs[_names(runs["scorer"]) == scorer]
            agg = _without_unused_t_star(settings(part, records, shown))
            title = f"{kind} ({task}" + (f", scorer {scorer})" if scorer else ")")
            out[title], captions[title] = _display(agg, config, shown), _caption(agg, shown, unconditional=False)
            task_aggs[title] = (agg.sort_values("method", kind="stable").reset_index(drop=True), shown)
    out["_captions"], out["_agg"], out["_ref"] = captions, unc.reset_index(drop=True), ref
    out["_tasks"] = task_aggs  # title -> (numeric settings, metrics shown): the task verdicts read them
    return out
