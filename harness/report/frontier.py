"""The quality–speed frontier: gen-PPL against the measured speed of generation.

Non-autoregressive generation exists to be faster than autoregressive decoding, so a method's
quality is shown beside what it cost: per method and sampler setting of the unconditional task,
gen-PPL with its 95 % interval and entropy (as every table: :func:`pathbench.report.tables.settings`,
pooled over seeds) against the samples/s its evaluations measured (``generation`` of
metrics.json, :mod:`pathbench.engine.generation_cost`), the autoregressive baseline (KV cache) on
the same axes. Speeds are comparable only on one device, precision and thread count: the
device note says which, and the sentences compare settings measured on the same one.

A setting is *faster* than another when it draws more samples/s — with speeds re-measured by
``pathbench study speeds`` (repeated draws), only when its slowest draw beats the other's fastest;
it is *faster and better* when, in addition, its gen-PPL interval lies wholly below the other's;
when the gen-PPL intervals overlap it is faster *within noise* on quality. :func:`speedups` is the few-step table's column: a setting's samples/s
against NFE 8 of the same method and sampler, and against the AR baseline.
"""

from __future__ import annotations

import io
import math
from dataclasses import dataclass
from pathlib import Path

import pandas as pd

from pathbench.core.io import atomic_open
from pathbench.report.tables import config_columns, settings
from pathbench.report.verdict_tables import applied_protocol

AR = "ar"
#: the columns of a frontier row, in order
COLUMNS = ["method", "sampler", "nfe", "top_k", "scorer", "gen_ppl", "gen_ppl_lo", "gen_ppl_hi", "entropy",
           "samples_per_s", "samples_per_s_low", "samples_per_s_high", "tokens_per_s", "device", "seeds",
           "autoregressive", "learned"]


@dataclass
class Frontier:
    rows: pd.DataFrame        # one row per setting (COLUMNS), fastest first
    sentences: list[str]      # where one method is both faster and better than another, in words
    plot: Path | None         # the PNG, when a path was given and a row has a speed


def _device(generation: dict) -> str:
    return (f"{generation.get('device_name') or generation.get('device')}, {generation.get('precision')}, "
            f"{generation.get('threads')} threads")


def frontier_rows(df: pd.DataFrame, records: list[dict], untrained: frozenset[str] = frozenset()) -> pd.DataFrame:
    """The frontier table of the gathered results (``df``, ``records`` as
    :func:`pathbench.report.leaderboard.load` returns them): unconditional runs with gen-PPL.
    ``learned`` is False for a setting with a run in ``untrained`` (run ids of models that did not
    learn, :func:`pathbench.report.verdict_tables.untrained_runs`)."""
    by_id = {r["run_id"]: r for r in records}
    # the runs scored by generative perplexity (a task that reports gen_ppl; no task named here)
    part = df[df["gen_ppl"].notna()] if "gen_ppl" in df else df.iloc[0:0]
    if part.empty:
        return pd.DataFrame(columns=COLUMNS)
    agg = settings(part, records, ["gen_ppl", "entropy"], pooled=True)
    config = config_columns(part)
    # beside a second protocol a model is named as the verdict names it ('kl [plain]'), so a sentence
    # never leaves the reader to guess which protocol's kl it compares
    several = len({applied_protocol(r) for r in records} - {None}) > 1
    out = []
    for (key, runs), (_, row) in zip(part.groupby(config, dropna=False, sort=False), agg.iterrows()):
        protocol = applied_protocol(by_id.get(runs["run_id"].iloc[0]) or {})
        name = row["method"] + (f" [{protocol}]" if several and protocol else "")
        costs = [(by_id.get(i) or {}).get("generation") or {} for i in runs["run_id"]]
        speeds = [c["samples_per_s"] for c in costs if c.get("samples_per_s")]
        # re-measured speeds (pathbench study speeds) carry the slowest and fastest of repeated draws:
        # the spread over the setting's runs and repeats; a single timing per run has none
        lows = [c["samples_per_s_low"] for c in costs if c.get("samples_per_s_low")]
        highs = [c["samples_per_s_high"] for c in costs if c.get("samples_per_s_high")]
        tokens = [c["tokens_per_s"] for c in costs if c.get("tokens_per_s")]
        devices = sorted({_device(c) for c in costs if c})
        out.append({**{c: row.get(c) for c in COLUMNS if c in row}, "method": name,
                    "samples_per_s": sum(speeds) / len(speeds) if speeds else math.nan,
                    "samples_per_s_low": min(lows) if lows else math.nan,
                    "samples_per_s_high": max(highs) if highs else math.nan,
                    "tokens_per_s": sum(tokens) / len(tokens) if tokens else math.nan,
                    "device": "; ".join(devices) if devices else "not measured",
                    "autoregressive": row["method"] == AR,
                    "learned": not untrained.intersection(runs["run_id"])})
    rows = pd.DataFrame(out).reindex(columns=COLUMNS)
    return rows.sort_values(["samples_per_s", "gen_ppl"], ascending=[False, True], na_position="last",
                            ignore_index=True)


def _name(row) -> str:
    nfe = "KV cache" if row["autoregressive"] else f"NFE {int(row['nfe'])}" if pd.notna(row["nfe"]) else None
    sampler = ", ".join(str(p) for p in (row["sampler"], nfe) if p is not None and not pd.isna(p))
    return f"{row['method']} ({sampler})"


def _quality(row) -> str:
    interval = f" [{row['gen_ppl_lo']:.1f}, {row['gen_ppl_hi']:.1f}]" if pd.notna(row["gen_ppl_lo"]) else ""
    return f"gen-PPL {row['gen_ppl']:.1f}{interval} at entropy {row['entropy']:.2f}"


#: how much lower a setting's entropy may be and still count as "better" at a lower gen-PPL (nats):
#: less diverse text buys perplexity, so a comparison across entropies is no comparison
ENTROPY_SLACK = 0.1


def _better(a, b) -> bool | None:
    """True: a's interval lies wholly below b's at an entropy no lower (within ENTROPY_SLACK);
    None: they overlap (within noise); False: not better, or not comparable (a less diverse)."""
    if a["entropy"] < b["entropy"] - ENTROPY_SLACK:
        return False
    if pd.isna(a["gen_ppl_hi"]) or pd.isna(b["gen_ppl_lo"]):
        return a["gen_ppl"] < b["gen_ppl"] if a["gen_ppl"] != b["gen_ppl"] else None
    if a["gen_ppl_hi"] < b["gen_ppl_lo"]:
        return True
    return None if a["gen_ppl_lo"] <= b["gen_ppl_hi"] else False


def _faster(a, b) -> bool:
    """a's slowest measured draw beats b's fastest: a speed difference beyond the timing spread."""
    low, high = a["samples_per_s_low"], b["samples_per_s_high"]
    if pd.isna(low) or pd.isna(high):
        return a["samples_per_s"] > b["samples_per_s"]
    return low > high


def compare(rows: pd.DataFrame) -> list[str]:
    """One sentence per ordered pair of methods (same scorer and device) where a setting of the
    first is faster than one of the second (beyond the timing spread, :func:`_faster`) at an entropy no lower (:data:`ENTROPY_SLACK`): 'both faster
    and better' when its gen-PPL interval is wholly below, else 'faster ... within noise' when the intervals overlap (the largest speedup
    of each kind is quoted). Pairs where the faster setting is worse say nothing, and so does every
    pair with a setting whose model did not learn (``learned`` False: it has no quality to trade)."""
    timed = rows[rows["samples_per_s"].notna() & rows["learned"].fillna(True).astype(bool)]
    sentences = []
    for (scorer, device), group in timed.groupby(["scorer", "device"], dropna=False, sort=True):
        methods = list(dict.fromkeys(group["method"]))
        for a_name in methods:
            for b_name in methods:
                if a_name == b_name:
                    continue
                best: dict[bool | None, tuple] = {}
                for _, a in group[group["method"] == a_name].iterrows():
                    for _, b in group[group["method"] == b_name].iterrows():
                        if not _faster(a, b):
                            continue
                        verdict, ratio = _better(a, b), a["samples_per_s"] / b["samples_per_s"]
                        if verdict is not False and ratio > best.get(verdict, (0.0,))[0]:
                            best[verdict] = (ratio, a, b)
                for verdict, (ratio, a, b) in sorted(best.items(), key=lambda kv: kv[0] is None):
                    how = "both faster and better than" if verdict else "faster than, and within noise of,"
                    sentences.append(f"{_name(a)} is {how} {_name(b)}: {a['samples_per_s']:.3g} against "
                                     f"{b['samples_per_s']:.3g} samples/s ({ratio:.1f}x), {_quality(a)} against "
                                     f"{_quality(b)} (scorer {scorer}; {device}).")
    return sentences


def speedups(rows: pd.DataFrame) -> pd.DataFrame:
    """``rows`` with the few-step table's measured speedups: ``speedup_vs_nfe8`` (samples/s over
    those of NFE 8 of the same method, sampler, top-k and scorer on the same device) and
    ``speedup_vs_ar`` (over the AR baseline's with the same scorer and device); NaN where the
    other row was not run."""
    out = rows.copy()
    key = ["method", "sampler", "top_k", "scorer", "device"]
    eight = out[out["nfe"] == 8].set_index(key)["samples_per_s"]
    ar = out[out["autoregressive"].astype(bool)].groupby(["scorer", "device"], dropna=False)["samples_per_s"].max()

    def lookup(series, index):
        try:
            value = series.loc[index]
        except (KeyError, TypeError):
            return math.nan
        return float(value.iloc[0]) if isinstance(value, pd.Series) else float(value)

    out["speedup_vs_nfe8"] = [r["samples_per_s"] / lookup(eight, tuple(r[k] for k in key))
                              for _, r in out.iterrows()]
    out["speedup_vs_ar"] = [math.nan if r["autoregressive"] else r["samples_per_s"] / lookup(ar, (r["scorer"],
                                                                                                r["device"]))
                            for _, r in out.iterrows()]
    return out


def plot(rows: pd.DataFrame, path: Path) -> Path | None:
    """gen-PPL (95 % interval bars) against samples/s, both log, a marker per method; AR starred."""
    timed = rows[rows["samples_per_s"].notna() & rows["gen_ppl"].notna()]
    if timed.empty:
        return None
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(6.5, 4.5))
    markers = ["o", "s", "^", "D", "v", "P", "X", "<", ">", "h"]
    for i, (method, group) in enumerate(timed.groupby("method", sort=True)):
        group = group.sort_values("samples_per_s")
        lo = (group["gen_ppl"] - group["gen_ppl_lo"]).fillna(0).clip(lower=0)
        hi = (group["gen_ppl_hi"] - group["gen_ppl"]).fillna(0).clip(lower=0)
        ar = method == AR
        left = (group["samples_per_s"] - group["samples_per_s_low"]).fillna(0).clip(lower=0)
        right = (group["samples_per_s_high"] - group["samples_per_s"]).fillna(0).clip(lower=0)
        spread = group["samples_per_s_low"].notna().any()  # re-measured speeds only
        ax.errorbar(group["samples_per_s"], group["gen_ppl"], yerr=[lo, hi], xerr=[left, right] if spread else None, marker="*" if ar else markers[i % 10],
                    markersize=12 if ar else 6, linestyle="none" if ar else "-", capsize=3,
                    label=f"{method} (KV cache)" if ar else method)
        for _, r in group.iterrows():
            if pd.notna(r["nfe"]) and not ar:
                ax.annotate(f"{int(r['nfe'])}", (r["samples_per_s"], r["gen_ppl"]), fontsize=7,
                            textcoords="offset points", xytext=(3, 3))
    ax.set_xscale("log")
    ax.set_yscale("log")
    spread = timed["samples_per_s_low"].notna().any()
    ax.set_xlabel("samples / s (measured" + (", slowest to fastest draw" if spread else "") + "; numbers: NFE)")
    ax.set_ylabel("gen PPL (95 % interval)")
    ax.set_title("Quality vs speed — " + "; ".join(sorted(set(timed["device"]))), fontsize=8)
    ax.legend(fontsize=7)
    fig.tight_layout()
    buffer = io.BytesIO()
    fig.savefig(buffer, format="png", dpi=110, metadata={"Software": None})
    plt.close(fig)
    with atomic_open(path, "wb") as handle:
        handle.write(buffer.getvalue())
    return path


def quality_speed_frontier(df: pd.DataFrame, records: list[dict], plot_path: Path | None = None,
                           untrained: frozenset[str] = frozenset()) -> Frontier:
    """The one call for the report: the frontier rows (with the speedup columns), the sentences
    in words (none about a setting with a run in ``untrained``), and the plot written to
    ``plot_path`` (when given)."""
    rows = speedups(frontier_rows(df, records, untrained))
    return Frontier(rows, compare(rows), plot(rows, Path(plot_path)) if plot_path is not None else None)
