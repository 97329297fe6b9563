"""``pathbench report DIR``: gather every run's ``metrics.json`` into tables, plots and a leaderboard.

:func:`collect` reads every ``metrics.json`` under a results folder (recursively) into one flat
pandas table (one row per complete run); files that are not valid JSON, lack the required keys
or are not ``status: complete`` are left out and listed as problems, never averaged in.
:func:`tables` averages over seeds (mean, std, ``n``) per configuration: the unconditional
leaderboard (gen-PPL and entropy side by side, plus the real-text reference row per scorer),
PPL vs NFE, the inference-scheme comparison, the t* sweep, and the seq2seq / code tables.
:func:`write_report` writes ``leaderboard.md``, ``leaderboard.csv``, ``report.html`` (one
self-contained file: tables, base64 plots, problems, metric protocols) and the PNG plots.
"""

from __future__ import annotations

import base64
import html
import json
import math
from pathlib import Path
from typing import Any

import pandas as pd

from harness.errors import ConfigError
from harness.io import atomic_write_text
from harness.report_verdict import verdict_sections

REQUIRED = ("run_id", "method", "task", "sampler", "metrics")
#: raw per-sample data kept in a result for recomputing statistics, not a table column
RAW = ("per_sample",)
BASE = ("method", "preset", "task", "scorer")
PROTOCOL = "generation_protocol"  # its name; a column shown where two protocols share a table
SAMPLER_FIELDS = ("sampler", "nfe", "t_star", "top_k", "top_p", "temperature", "grid", "final", "final_at")
LEADER_KEYS = ["method", "sampler", "nfe", "t_star", "top_k", "scorer"]
FIRST = ["gen_ppl", "entropy", "gen_ppl_sample_mean", "entropy_generator_ids", "nll_per_token"]
FAMILIES = ["bleu", "rougeL", "bertscore_f1", "pass@", "compiles@"]
SEQ2SEQ, CODE = FAMILIES[:3], FAMILIES[3:]
HEADERS = {"nfe": "NFE", "t_star": "t*", "top_k": "top-k", "top_p": "top-p", "gen_ppl": "gen PPL",
           "bleu": "BLEU", "rougeL": "ROUGE-L", "bertscore_f1": "BERTScore F1", "pass": "Pass",
           "compiles": "Compiles"}
MISSING = "-"
FEW_STEP_NFE = 16  # the few-step table and plot cover NFE 1, 2, 4, 8, 16


# ----------------------------------------------------------------------------- collect

def _scalar(value: Any) -> Any:
    return json.dumps(value, sort_keys=True) if isinstance(value, (dict, list)) else value


def _metric_key(name: str) -> tuple:
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


def _flatten(record: dict, rel: str) -> dict[str, Any]:
    row: dict[str, Any] = {k: record.get(k) for k in ("run_id", *BASE, "seed")}
    row[PROTOCOL] = (record.get(PROTOCOL) or {}).get("name")
    for k, v in sorted((record.get("method_options") or {}).items()):
        row[f"opt.{k}"] = _scalar(v)
    sampler = record["sampler"]
    row["sampler"] = sampler.get("name")
    for k, v in sampler.items():
        if k != "name":
            row[k if k not in row else f"sampler_{k}"] = _scalar(v)
    for k in sorted(record["metrics"], key=_metric_key):
        if k in RAW:
            continue
        row[k if k not in row else f"metric_{k}"] = _scalar(record["metrics"][k])
    for k in sorted(record.get("reference") or {}, key=_metric_key):
        if k not in RAW:
            row[f"ref_{k}"] = _scalar(record["reference"][k])
    for k, v in (record.get("train") or {}).items():
        row[f"train_{k}"] = _scalar(v)
    row["path"] = rel
    return row


def _problem(record: Any) -> str | None:
    if not isinstance(record, dict):
        return "not a JSON object"
    missing = [k for k in REQUIRED if k not in record]
    if missing:
        return f"missing required key(s) {', '.join(missing)}"
    if record.get("status") != "complete":
        return f"status is {record.get('status')!r}, not 'complete' (unfinished or failed run)"
    if not isinstance(record["sampler"], dict) or not isinstance(record["metrics"], dict):
        return "'sampler' and 'metrics' must be JSON objects"
    return None


def _is_pathbench_folder(root: Path) -> bool:
    return any((root / d).is_dir() for d in ("runs", "train", "submitit")) or \
        next(root.rglob("kl_curve.csv"), None) is not None


def load(results_dir: str | Path, only: set[str] | None = None) -> tuple[pd.DataFrame, list[str], list[dict]]:
    """Like :func:`collect`, plus the list of the complete runs' raw records; ``only`` keeps
    the runs with those ids (one experiment's runs in a folder that several sweeps share)."""
    root = Path(results_dir)
    files = sorted(root.rglob("metrics.json")) if root.is_dir() else []
    if not files and not (root.is_dir() and _is_pathbench_folder(root)):
        raise ConfigError(f"{root} is not a pathbench results folder: no metrics.json under it")
    rows, problems, records, seen = [], [], [], {}
    for path in files:
        rel = path.relative_to(root).as_posix()
        try:
            record = json.loads(path.read_text(encoding="utf-8"))
        except (OSError, UnicodeDecodeError, ValueError) as err:
            problems.append(f"{rel}: not valid JSON ({type(err).__name__}: {err})")
            continue
        reason = _problem(record)
        if reason is None and only is not None and record["run_id"] not in only:
            continue
        if reason is None and record["run_id"] in seen:
            reason = f"duplicate run_id {record['run_id']} (also in {seen[record['run_id']]})"
        if reason:
            problems.append(f"{rel}: {reason}")
            continue
        seen[record["run_id"]] = rel
        rows.append(_flatten(record, rel))
        records.append(record)
    df = pd.DataFrame(rows)
    if df.empty:
        return pd.DataFrame(columns=["run_id", *BASE, "seed", "sampler", "path"]), problems, records
    return df[sorted(df.columns, key=_column_key)], problems, records


def _column_key(name: str) -> tuple:
    """Column order: ids and config, sampler fields, metrics, reference, train, path."""
    head = ["run_id", *BASE, PROTOCOL, "seed"]
    if name in head:
        return (0, head.index(name))
    if name.startswith("opt."):
        return (1, name)
    if name in SAMPLER_FIELDS or name.startswith("sampler_"):
        return (2, SAMPLER_FIELDS.index(name) if name in SAMPLER_FIELDS else 99, name)
    if name.startswith("ref_"):
        return (4, _metric_key(name[4:]))
    if name.startswith("train_"):
        return (5, name)
    return (6,) if name == "path" else (3, _metric_key(name))


def collect(results_dir: str | Path) -> tuple[pd.DataFrame, list[str]]:
    """One row per complete run under ``results_dir``, and the problems (``"path: reason"``)."""
    df, problems, _ = load(results_dir)
    return df, problems


# ----------------------------------------------------------------------------- aggregate

def config_columns(df: pd.DataFrame) -> list[str]:
    sampler = set(SAMPLER_FIELDS) | {c for c in df.columns if c.startswith("sampler_")}
    return [c for c in df.columns if c in BASE or c == PROTOCOL or c.startswith("opt.") or c in sampler]


def metric_columns(df: pd.DataFrame) -> list[str]:
    skip = {"run_id", "seed", "path", *config_columns(df)}
    return [c for c in df.columns if c not in skip and not c.startswith(("ref_", "train_"))
            and pd.api.types.is_numeric_dtype(df[c])]


def aggregate(df: pd.DataFrame, keys: list[str], metrics: list[str]) -> pd.DataFrame:
    """Mean, ``<metric>_std`` (sample std, NaN for one seed) and ``n`` (runs) per ``keys``."""
    out = []
    for key, part in df.groupby(keys, dropna=False, sort=False):
        row = dict(zip(keys, key))
        for m in metrics:
            row[m], row[f"{m}_std"] = part[m].mean(), part[m].std()
        row["n"] = len(part)
        out.append(row)
    return pd.DataFrame(out, columns=[*keys, *[x for m in metrics for x in (m, f"{m}_std")], "n"])


def _disambiguate(agg: pd.DataFrame, base: list[str], candidates: list[str]) -> list[str]:
    """The extra config columns that vary within a group of ``base`` (needed to tell rows apart)."""
    if agg.empty:
        return []
    groups = agg.groupby(base, dropna=False)
    return [c for c in candidates if c not in base and groups[c].nunique(dropna=False).gt(1).any()]


def references(df: pd.DataFrame) -> pd.DataFrame:
    """The real-text reference per scorer: distinct reference rows averaged (``n`` of them)."""
    ref = [c for c in ("ref_gen_ppl", "ref_entropy") if c in df.columns]
    if not ref or df[ref[0]].isna().all():
        return pd.DataFrame(columns=["scorer", "gen_ppl", "gen_ppl_std", "entropy", "entropy_std", "n"])
    distinct = df.dropna(subset=ref[:1]).drop_duplicates(["scorer", *[c for c in df if c.startswith("ref_")]])
    distinct = distinct[["scorer", *ref]].rename(columns={c: c[4:] for c in ref})
    agg = aggregate(distinct, ["scorer"], [c[4:] for c in ref])
    return agg.sort_values("scorer", na_position="last", kind="stable").reset_index(drop=True)


def _precision(name: str) -> int:
    return 2 if "ppl" in name or name.startswith("bleu") else 3


def _fmt_key(value: Any) -> str:
    if value is None or (isinstance(value, float) and math.isnan(value)):
        return MISSING
    if isinstance(value, float):
        return str(int(value)) if value.is_integer() and abs(value) >= 1 else f"{value:g}"
    return str(value)


def _fmt(mean: Any, std: Any, name: str) -> str:
    if mean is None or pd.isna(mean):
        return MISSING
    p = _precision(name)
    return f"{mean:.{p}f}" if std is None or pd.isna(std) else f"{mean:.{p}f} ± {std:.{p}f}"


def header(name: str) -> str:
    for family in FAMILIES:
        if name.startswith(family):
            rest = name[len(family):].lstrip("_")
            fam = HEADERS[family.rstrip("@")]
            if family.endswith("@"):
                return f"{fam}@{rest}"
            return fam if not rest else f"{fam} {'Avg' if rest == 'avg' else 'Top-' + rest[3:]}"
    return HEADERS.get(name, name)


def display(agg: pd.DataFrame, keys: list[str], metrics: list[str]) -> pd.DataFrame:
    """Strings for a table: key cells, ``mean ± std`` per metric, ``n``; headers prettified."""
    cols: dict[str, list[str]] = {header(k): [_fmt_key(v) for v in agg[k]] for k in keys}
    for m in metrics:
        cols[header(m)] = [_fmt(a, s, m) for a, s in zip(agg[m], agg[f"{m}_std"])]
    cols["n"] = [str(int(v)) for v in agg["n"]]
    return pd.DataFrame(cols)


def _sorted(agg: pd.DataFrame, by: list[str]) -> pd.DataFrame:
    return agg.sort_values(by, na_position="last", kind="stable").reset_index(drop=True)


def _nfe_pivot(unc: pd.DataFrame, config: list[str]) -> pd.DataFrame:
    """One row per method × sampler (× whatever else varies), one ``PPL / entropy`` column per NFE."""
    rows = ["method", "sampler"] + _disambiguate(unc, ["method", "sampler", "nfe"], config)
    pivot: dict[tuple, dict[str, str]] = {}
    for _, r in _sorted(unc, [*rows, "nfe"]).iterrows():
        cell = f"{_fmt(r['gen_ppl'], None, 'gen_ppl')} / {_fmt(r['entropy'], None, 'entropy')}"
        pivot.setdefault(tuple(_fmt_key(r[k]) for k in rows), {})[f"NFE {_fmt_key(r['nfe'])}"] = cell
    nfes = [f"NFE {_fmt_key(v)}" for v in sorted(unc["nfe"].dropna().unique())]
    return pd.DataFrame(
        [{**dict(zip(map(header, rows), k)), **{c: v.get(c, MISSING) for c in nfes}} for k, v in pivot.items()])


def tables(df: pd.DataFrame) -> dict[str, Any]:
    """Display tables (title -> DataFrame of strings), plus the numeric frames under ``_agg`` / ``_ref``."""
    df = df.reindex(columns=[*df.columns, *[k for k in LEADER_KEYS if k not in df.columns]])
    config, metrics = config_columns(df), metric_columns(df)
    agg = aggregate(df, config, metrics) if not df.empty else pd.DataFrame(columns=[*config, "n"])
    out: dict[str, Any] = {}
    unc = agg[agg["task"] == "unconditional"] if "gen_ppl" in agg else agg.iloc[0:0]
    ref = references(df[df["task"] == "unconditional"]) if not df.empty else references(df)
    pe = ["gen_ppl", "entropy"]
    if not unc.empty:
        keys = LEADER_KEYS + _disambiguate(unc, LEADER_KEYS, config)
        board = display(_sorted(unc, ["method", "nfe", *keys]), keys, pe)
        real = display(ref.assign(method="real text"), ["method", "scorer"], pe)
        out["Unconditional leaderboard"] = pd.concat([real, board], ignore_index=True).reindex(
            columns=board.columns).fillna(MISSING)
        out["Gen PPL / entropy vs NFE"] = _nfe_pivot(unc, config)
        few = unc[unc["nfe"] <= FEW_STEP_NFE]
        if few["nfe"].nunique() > 1 and few["nfe"].min() < FEW_STEP_NFE:
            out[f"Few-step regime (NFE ≤ {FEW_STEP_NFE}): gen PPL / entropy"] = _nfe_pivot(few, config)
        if unc.groupby("method")["sampler"].nunique().gt(1).any():
            keys = ["method", "nfe", "sampler"] + _disambiguate(unc, ["method", "nfe", "sampler"], config)
            out["Inference schemes"] = display(_sorted(unc, keys), keys, pe)
        hybrid = unc[(unc["sampler"] == "hybrid") & unc["t_star"].notna()] if "t_star" in unc else unc.iloc[0:0]
        if not hybrid.empty:
            keys = ["method", "nfe", "t_star"] + _disambiguate(hybrid, ["method", "nfe", "t_star"], config)
            out["t* sweep (hybrid)"] = display(_sorted(hybrid, keys), keys, pe)
    for title, families in (("Seq2seq", SEQ2SEQ), ("Code infilling", CODE)):
        cols = [m for m in metrics if m.startswith(tuple(families))]
        rows = agg[agg[cols].notna().any(axis=1)] if cols else agg.iloc[0:0]
        if not rows.empty:
            cols = [m for m in cols if rows[m].notna().any()]
            base = ["task", "method", "sampler", "nfe"]
            keys = base + _disambiguate(rows, base, config)
            out[title] = display(_sorted(rows, keys), keys, cols)
    out["_agg"], out["_ref"] = unc.reset_index(drop=True), ref
    return out


# ----------------------------------------------------------------------------- render

def markdown_table(table: pd.DataFrame) -> str:
    """A pipe table; text columns left-aligned, numeric ones right-aligned."""
    cells = [[str(c).replace("|", "\\|") for c in row] for row in table.astype(str).itertuples(index=False)]
    heads = [str(h).replace("|", "\\|") for h in table.columns]
    numeric = [bool(cells) and all(r[i] == MISSING or r[i][:1].isdigit() for r in cells) for i in range(len(heads))]
    widths = [max([len(heads[i]), 3, *(len(r[i]) for r in cells)]) for i in range(len(heads))]
    pad = lambda s, i: s.rjust(widths[i]) if numeric[i] else s.ljust(widths[i])  # noqa: E731
    lines = ["| " + " | ".join(pad(h, i) for i, h in enumerate(heads)) + " |",
             "|" + "|".join("-" * (w + 1) + ":" if numeric[i] else ":" + "-" * (w + 1)
                            for i, w in enumerate(widths)) + "|"]
    lines += ["| " + " | ".join(pad(c, i) for i, c in enumerate(r)) + " |" for r in cells]
    return "\n".join(lines) + "\n"


def _protocols(records: list[dict]) -> list[tuple[str, list[str], int]]:
    seen: dict[str, tuple[set, int]] = {}
    for r in records:
        text = json.dumps(r.get("protocol") or {}, sort_keys=True, indent=2, default=str)
        tasks, count = seen.get(text, (set(), 0))
        seen[text] = (tasks | {str(r.get("task"))}, count + 1)
    return [(text, sorted(tasks), count) for text, (tasks, count) in seen.items()]


def _shown(folder: Path) -> str:
    """A folder as a committed report may name it: relative to the working directory when it
    lies under it, else its own name — never an absolute path of the machine that made it."""
    folder = folder.resolve()
    try:
        return folder.relative_to(Path.cwd().resolve()).as_posix()
    except ValueError:
        return folder.name


def write_report(results_dir: str | Path, out_dir: str | Path, title: str | None = None,
                 kl_curve_csv: str | Path | None = None, only: set[str] | None = None) -> dict[str, Any]:
    """Write leaderboard.md/.csv, report.html and the PNG plots into ``out_dir``."""
    from harness.report_plots import load_kl_curves, make_plots

    results_dir, out_dir = Path(results_dir), Path(out_dir)
    if kl_curve_csv is not None and not Path(kl_curve_csv).is_file():
        raise ConfigError(f"KL curve CSV {kl_curve_csv} does not exist")
    df, problems, records = load(results_dir, only)
    title = title or f"pathbench report: {results_dir.resolve().name}"
    found = tables(df)
    agg, ref = found.pop("_agg"), found.pop("_ref")
    kl = load_kl_curves(results_dir, kl_curve_csv, problems)
    plots = make_plots(agg, ref, kl, out_dir)  # name -> (path, png bytes, caption)

    summary = f"{len(df)} complete run(s) from `{_shown(results_dir)}`; {len(problems)} problem(s)."
    md = [f"# {title}\n", summary + "\n", "PPL = generative perplexity; entropy in nats; "
          "values are mean ± std over seeds, `n` = number of runs averaged.\n"]
    verdict = verdict_sections(records)  # what a reader looks at first
    for name, table, text in verdict:
        md += [f"## {name}\n", text] + ([markdown_table(table)] if table is not None else [])
    for name, table in found.items():
        md += [f"## {name}\n", markdown_table(table)]
    md += [f"![{cap}]({path.name})\n" for path, _, cap in plots.values()]
    md += ["## Problems\n", "".join(f"- {p}\n" for p in problems) or "none\n"]
    atomic_write_text(out_dir / "leaderboard.md", "\n".join(md))
    atomic_write_text(out_dir / "leaderboard.csv", df.to_csv(index=False))

    esc = html.escape
    body = [f"<h1>{esc(title)}</h1>", f"<p>{esc(summary)}</p>"]
    for name, table, text in verdict:
        body += [f"<h2>{esc(name)}</h2>", f"<p>{esc(text)}</p>"]
        body += [table.to_html(index=False, escape=True, border=0)] if table is not None else []
    for name, table in found.items():
        body += [f"<h2>{esc(name)}</h2>", table.to_html(index=False, escape=True, border=0)]
    body.append("<h2>Plots</h2>")
    for path, png, cap in plots.values():
        data = base64.b64encode(png).decode("ascii")
        body.append(f'<figure><img alt="{esc(cap)}" src="data:image/png;base64,{data}">'
                    f"<figcaption>{esc(cap)}</figcaption></figure>")
    body += ["<h2>Problems</h2>", "<ul>" + "".join(f"<li>{esc(p)}</li>" for p in problems) + "</ul>"
             if problems else "<p>none</p>", "<h2>Metric protocol</h2>"]
    for text, tasks, count in _protocols(records):
        body.append(f"<p>tasks {esc(', '.join(tasks))} ({count} run(s)):</p><pre>{esc(text)}</pre>")
    style = ("body{font-family:sans-serif;margin:2em}table{border-collapse:collapse;margin-bottom:1em}"
             "th,td{border:1px solid #bbb;padding:2px 8px;text-align:right}img{max-width:100%}"
             "pre{background:#f4f4f4;padding:.5em}")
    page = (f'<!DOCTYPE html>\n<html><head><meta charset="utf-8"><title>{esc(title)}</title>'
            f"<style>{style}</style></head><body>\n" + "\n".join(body) + "\n</body></html>\n")
    atomic_write_text(out_dir / "report.html", page)
    return {"out_dir": out_dir, "leaderboard_md": out_dir / "leaderboard.md",
            "leaderboard_csv": out_dir / "leaderboard.csv", "report_html": out_dir / "report.html",
            "plots": {name: path for name, (path, _, _) in plots.items()}, "runs": len(df),
            "verdict": [name for name, _, _ in verdict],
            "problems": len(problems), "problem_list": problems, "tables": list(found)}
