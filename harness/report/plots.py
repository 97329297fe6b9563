"""Plots for ``pathbench report`` (matplotlib, Agg): PPL vs NFE, PPL–entropy frontier, t* sweep,
KL curves. Each plot is written atomically as a PNG and also returned as bytes for embedding.

Error bars are the rows' 95 % intervals (``<metric>_lo`` / ``_hi``: pooled over seeds where a
setting has several), else ± the std over seeds. PNGs carry no software version or date
(``metadata={"Software": None}``), so the same results give the same bytes."""

from __future__ import annotations

import io
import math
from pathlib import Path

import numpy as np
import pandas as pd

from pathbench.core.io import atomic_open

MARKERS = ["o", "s", "^", "D", "v", "P", "X", "<", ">", "h"]


def _label(*parts) -> str:
    return ", ".join(str(p) for p in parts if p is not None and not (isinstance(p, float) and math.isnan(p)))


LONG_VALUE = 24  # option values longer than this (run folders, JSON) still split lines but stay out of labels
#: what besides the method tells two lines of a plot apart, when it varies
SETTING_KEYS = ["sampler", "t_star", "top_k", "top_p", "temperature", "grid", "final", "scorer"]


def _cfg_label(row: pd.Series, keys: list[str]) -> str:
    names = {"t_star": "t*", "top_k": "top-k", "top_p": "top-p", "nfe": "NFE", "grid": "grid", "final": "final",
             "temperature": "T"}
    parts = []
    for k in keys:
        v = row.get(k)
        if v is None or (isinstance(v, float) and math.isnan(v)) or len(str(v)) > LONG_VALUE:
            continue
        v = int(v) if isinstance(v, float) and v.is_integer() else v
        if k.startswith("opt."):
            parts.append(f"{k[4:]}={v}")
        else:
            parts.append(f"{names[k]}={v}" if k in names else str(v))
    return ", ".join(parts)


def _varying(frame: pd.DataFrame, keys: list[str]) -> list[str]:
    return [k for k in keys if k in frame and frame[k].astype(str).nunique() > 1]


def _lines(frame: pd.DataFrame, keys: list[str]):
    """(label, rows) per line: rows that differ in any varying setting or method option (``opt.*``)
    are separate lines, even where the label has to leave a long value out."""
    options = sorted(c for c in frame.columns if c.startswith("opt."))
    keys = _varying(frame, [*keys, *options])
    if not keys:
        yield "", frame
        return
    seen: dict[str, int] = {}
    for _, rows in frame.groupby(frame[keys].astype(str).apply(tuple, axis=1), sort=True):
        shown = keys
        if "method" in keys:  # a setting is named only where that method has several values of it
            mine = frame[frame["method"] == rows["method"].iloc[0]]
            shown = [k for k in keys if k in ("method", "sampler") or mine[k].astype(str).nunique() > 1]
        label = _cfg_label(rows.iloc[0], shown)
        seen[label] = seen.get(label, 0) + 1
        yield (label if seen[label] == 1 else f"{label} #{seen[label]}"), rows


def _style(i: int) -> dict:
    """Colour and marker that stay distinct past matplotlib's ten-colour cycle."""
    return {"color": f"C{i % 10}", "marker": MARKERS[i % len(MARKERS)], "linestyle": "-" if i < 10 else "--"}


def _err(frame: pd.DataFrame, column: str) -> np.ndarray:
    """(2, N) error bar lengths below and above: the interval where a row has one, else ± its
    std over seeds, else none."""
    value = frame[column].to_numpy(float)
    out = np.zeros((2, len(frame)))
    if f"{column}_std" in frame:
        out[:] = np.nan_to_num(frame[f"{column}_std"].to_numpy(float))
    if f"{column}_lo" in frame and f"{column}_hi" in frame:
        lo, hi = frame[f"{column}_lo"].to_numpy(float), frame[f"{column}_hi"].to_numpy(float)
        has = ~np.isnan(lo) & ~np.isnan(hi)
        out[0, has], out[1, has] = value[has] - lo[has], hi[has] - value[has]
    return np.clip(np.nan_to_num(out), 0.0, None)


def _reference_lines(ax, ref: pd.DataFrame, column: str) -> None:
    for _, r in ref.iterrows():
        if pd.notna(r.get(column)):
            ax.axhline(r[column], color="black", linestyle="--", linewidth=1,
                       label=_label("real text", r["scorer"] if len(ref) > 1 else None))


def ppl_vs_nfe(agg: pd.DataFrame, ref: pd.DataFrame, plt):
    """One panel per method that was sampled at two NFEs or more (a panel of one point says nothing)."""
    data = agg.dropna(subset=["nfe", "gen_ppl"])
    methods = sorted(m for m in data["method"].unique()
                     if not _one_value_each(data[data["method"] == m], "nfe", SETTING_KEYS))
    fig, axes = plt.subplots(1, len(methods), figsize=(5 * len(methods), 4), squeeze=False)
    for ax, method in zip(axes[0], methods):
        part = agg[agg["method"] == method].dropna(subset=["nfe", "gen_ppl"])
        for i, (label, line) in enumerate(_lines(part, SETTING_KEYS)):
            line = line.sort_values("nfe")
            ax.errorbar(line["nfe"], line["gen_ppl"], yerr=_err(line, "gen_ppl"), capsize=3,
                        label=label or method, **_style(i))
        _reference_lines(ax, ref, "gen_ppl")
        ax.set_xscale("log", base=2)
        nfes = sorted(part["nfe"].unique())
        ax.set_xticks(nfes, [f"{int(v)}" for v in nfes])
        ax.minorticks_off()
        ax.set_yscale("log")
        ax.set_title(method)
        ax.set_xlabel("NFE (function evaluations)")
        ax.set_ylabel("generative perplexity")
        ax.grid(alpha=0.3, which="both")
        ax.legend(fontsize="small")
    return fig


def few_step(agg: pd.DataFrame, ref: pd.DataFrame, plt, max_nfe: int = 16):
    """Gen PPL and entropy against NFE ≤ max_nfe, every method on one pair of axes."""
    part = agg[agg["nfe"] <= max_nfe].dropna(subset=["gen_ppl", "entropy"])
    if part["nfe"].nunique() < 2:
        return None
    fig, (ppl_ax, ent_ax) = plt.subplots(1, 2, figsize=(14, 4.5))
    for i, (label, line) in enumerate(_lines(part, ["method", *SETTING_KEYS])):
        line = line.sort_values("nfe")
        ppl_ax.plot(line["nfe"], line["gen_ppl"], label=label, **_style(i))
        ent_ax.plot(line["nfe"], line["entropy"], label=label, **_style(i))
    _reference_lines(ppl_ax, ref, "gen_ppl")
    _reference_lines(ent_ax, ref, "entropy")
    nfes = sorted(part["nfe"].unique())
    for ax, name in ((ppl_ax, "generative perplexity"), (ent_ax, "entropy (nats)")):
        ax.set_xscale("log", base=2)
        ax.set_xticks(nfes, [f"{int(v)}" for v in nfes])
        ax.minorticks_off()
        ax.set_xlabel("NFE (function evaluations)")
        ax.set_ylabel(name)
        ax.grid(alpha=0.3, which="both")
    ppl_ax.set_yscale("log")
    ent_ax.legend(fontsize="x-small", loc="center left", bbox_to_anchor=(1.02, 0.5))
    return fig


def frontier(agg: pd.DataFrame, ref: pd.DataFrame, plt):
    """Gen PPL against entropy, one panel per scorer (their PPL scales differ): bars are the 95 %
    intervals on both axes, the dotted line the target entropy (real text's), star = real text."""
    data = agg.dropna(subset=["gen_ppl", "entropy"])
    scorers = sorted(data["scorer"].dropna().unique()) if "scorer" in data else []
    scorers = scorers or [None]
    fig, axes = plt.subplots(1, len(scorers), figsize=(6.5 * len(scorers), 4.8), squeeze=False)
    methods = sorted(data["method"].unique())
    for ax, scorer in zip(axes[0], scorers):
        part = data if scorer is None else data[data["scorer"] == scorer]
        for i, method in enumerate(methods):
            mine = part[part["method"] == method]
            if mine.empty:
                continue
            ax.errorbar(mine["entropy"], mine["gen_ppl"], xerr=_err(mine, "entropy"), yerr=_err(mine, "gen_ppl"),
                        fmt=MARKERS[i % len(MARKERS)], color=f"C{i % 10}", markersize=6, capsize=2,
                        elinewidth=0.8, alpha=0.85, label=method)
        mine_ref = ref if scorer is None or "scorer" not in ref else ref[ref["scorer"] == scorer]
        for _, r in mine_ref.dropna(subset=["gen_ppl", "entropy"]).iterrows():
            ax.axvline(r["entropy"], color="black", linestyle=":", linewidth=1.2,
                       label=f"target entropy {r['entropy']:.3f} nats (real text)")
            ax.annotate(f"target H = {r['entropy']:.2f}", xy=(r["entropy"], 1.0), xycoords=("data", "axes fraction"),
                        xytext=(0, 2), textcoords="offset points", ha="center", va="bottom", fontsize="small")
            ax.scatter([r["entropy"]], [r["gen_ppl"]], marker="*", s=250, color="gold", edgecolor="black",
                       zorder=5, label="real text")
        ax.set_yscale("log")
        ax.set_xlabel("entropy [nats]")
        ax.set_ylabel("generative perplexity")
        ax.set_title("PPL–entropy frontier" + (f" (scorer {scorer})" if scorer else ""), pad=16)
        ax.grid(alpha=0.3, which="both")
        ax.legend(fontsize="small", loc="upper left")
    return fig


def _one_value_each(part: pd.DataFrame, column: str, keys: list[str]) -> bool:
    """Whether every line of a plot over ``column`` would be a single point (no curve to draw)."""
    return all(line[column].nunique() < 2 for _, line in _lines(part, keys))


def single_point_notes(agg: pd.DataFrame) -> list[str]:
    """The plots left out because each of their lines would have one x value, said in words."""
    notes = []
    data = agg.dropna(subset=["nfe", "gen_ppl"]) if not agg.empty else agg
    if not data.empty and all(_one_value_each(data[data["method"] == m], "nfe", SETTING_KEYS)
                              for m in data["method"].unique()):
        nfes = ", ".join(str(int(v)) for v in sorted(data["nfe"].unique()))
        notes.append(f"No gen-PPL-vs-NFE plot: each setting was sampled at one NFE only ({nfes}); "
                     "the tables give its value.")
    hybrid = _hybrid(agg)
    if not hybrid.empty and _one_value_each(hybrid, "t_star", T_STAR_LINE_KEYS):
        stars = ", ".join(f"{v:g}" for v in sorted(hybrid["t_star"].unique()))
        notes.append(f"No t* plot: each hybrid setting was sampled at one t* only ({stars}; t* = the time at which "
                     "the hybrid sampler switches from ODE steps to sampling); the tables give its value.")
    return notes


T_STAR_LINE_KEYS = ["method", "nfe", "top_k", "top_p", "temperature", "grid", "final", "scorer"]


def _hybrid(agg: pd.DataFrame) -> pd.DataFrame:
    if agg.empty or "t_star" not in agg:
        return agg.iloc[0:0]
    return agg[(agg["sampler"] == "hybrid") & agg["t_star"].notna()]


def t_star_sweep(agg: pd.DataFrame, ref: pd.DataFrame, plt):
    hybrid = _hybrid(agg)
    if hybrid.empty or _one_value_each(hybrid, "t_star", T_STAR_LINE_KEYS):
        return None
    fig, axes = plt.subplots(1, 2, figsize=(10, 4))
    groups = list(_lines(hybrid, T_STAR_LINE_KEYS))
    for ax, column, ylabel in ((axes[0], "gen_ppl", "generative perplexity"), (axes[1], "entropy", "entropy [nats]")):
        for i, (label, line) in enumerate(groups):
            line = line.sort_values("t_star")
            ax.errorbar(line["t_star"], line[column], yerr=_err(line, column), capsize=3,
                        label=label, **_style(i))
        _reference_lines(ax, ref, column)
        if column == "gen_ppl":
            ax.set_yscale("log")
        ax.set_xlabel("t* (switch time of the hybrid sampler)")
        ax.set_ylabel(ylabel)
        ax.grid(alpha=0.3, which="both")
        ax.legend(fontsize="small")
    fig.suptitle("t* sweep")
    return fig


def kl_curves(kl: pd.DataFrame, plt):
    vocabs = sorted(kl["vocab"].unique())
    fig, axes = plt.subplots(1, len(vocabs), figsize=(5 * len(vocabs), 4), squeeze=False)
    for ax, vocab in zip(axes[0], vocabs):
        for name, part in kl[kl["vocab"] == vocab].groupby("path", sort=False):
            part = part.sort_values("t")
            (line,) = ax.plot(part["t"], part["kl_mean"], label=name)
            ax.fill_between(part["t"], part["kl_mean"] - part["kl_std"], part["kl_mean"] + part["kl_std"],
                            color=line.get_color(), alpha=0.2, linewidth=0)
        ax.set_title(f"V = {int(vocab):,}")
        ax.set_xlabel("t")
        ax.set_ylabel("KL(x1 ‖ x_t)  [nats]")
        ax.grid(alpha=0.3)
        ax.legend(fontsize="small")
    return fig


def load_kl_curves(results_dir: Path, kl_curve_csv: str | Path | None, problems: list[str]) -> pd.DataFrame | None:
    """Every ``kl_curve.csv`` under ``results_dir`` (or just ``kl_curve_csv``); bad files go to ``problems``."""
    paths = [Path(kl_curve_csv)] if kl_curve_csv else sorted(results_dir.rglob("kl_curve.csv"))
    frames = []
    for path in paths:
        try:
            frame = pd.read_csv(path)
        except (OSError, ValueError) as err:
            problems.append(f"{path}: unreadable KL curve CSV ({type(err).__name__}: {err})")
            continue
        missing = {"path", "vocab", "t", "kl_mean", "kl_std"} - set(frame.columns)
        if missing:
            problems.append(f"{path}: KL curve CSV lacks column(s) {', '.join(sorted(missing))}")
        else:
            frames.append(frame)
    return pd.concat(frames, ignore_index=True).drop_duplicates() if frames else None


def make_plots(agg: pd.DataFrame, ref: pd.DataFrame, kl: pd.DataFrame | None,
               out_dir: Path) -> dict[str, tuple[Path, bytes, str]]:
    """name -> (PNG path, PNG bytes, caption) for each plot that has data and more than one x
    value on some line (:func:`single_point_notes` says the others in words)."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    figures = {}
    single = single_point_notes(agg)
    if not agg.empty and agg["gen_ppl"].notna().any():
        if not any(note.startswith("No gen-PPL-vs-NFE") for note in single):
            figures["ppl_vs_nfe"] = (ppl_vs_nfe(agg, ref, plt), "Generative perplexity vs NFE (denoiser calls "
                                     "per sample) per method")
        figures["ppl_entropy_frontier"] = (frontier(agg, ref, plt), "PPL–entropy frontier per scorer: bars are 95 % "
                                           "intervals (pooled over seeds where several), dotted line the target "
                                           "entropy, star: real text")
        steps = few_step(agg, ref, plt)
        if steps is not None:
            figures["few_step"] = (steps, "Few-step regime: gen PPL and entropy at NFE ≤ 16")
        sweep = t_star_sweep(agg, ref, plt)
        if sweep is not None:
            figures["t_star_sweep"] = (sweep, "Gen PPL and entropy vs t* (the hybrid sampler's switch from ODE "
                                       "steps to sampling)")
    if kl is not None and not kl.empty:
        figures["kl_curves"] = (kl_curves(kl, plt), "KL(x1 ‖ x_t) along each path")
    out = {}
    for name, (fig, caption) in figures.items():
        fig.tight_layout()
        buffer = io.BytesIO()
        fig.savefig(buffer, format="png", dpi=110, metadata={"Software": None})
        plt.close(fig)
        path = out_dir / f"{name}.png"
        with atomic_open(path, "wb") as handle:
            handle.write(buffer.getvalue())
        out[name] = (path, buffer.getvalue(), caption)
    return out
