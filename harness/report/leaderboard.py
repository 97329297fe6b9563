"""``pathbench report DIR``: gather every run's ``metrics.json`` into tables, plots and a leaderboard.

:func:`collect` reads every ``metrics.json`` under a results folder (recursively) into one flat
pandas table (one row per complete run); files that are not valid JSON, lack the required keys
or are not ``status: complete`` are left out and listed as problems, never averaged in.
:func:`tables` makes, after the verdict (:mod:`pathbench.report.verdict_tables`), one table per scorer for
the unconditional task and one per other task, each number once: runs that differ only in seed
are one row (gen-PPL and entropy pooled over the seeds' samples with their interval,
:func:`pathbench.core.stats.seed_pooled`); the other views (PPL vs NFE, t* sweep, few-step) are plots.
:func:`write_report` writes ``leaderboard.md``, ``leaderboard.csv``, ``report.html`` (one
self-contained file with sortable tables and base64 plots, :mod:`pathbench.report.html`) and the PNGs;
what they show, in which order, is :mod:`pathbench.report.sections`' list of section builders.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pandas as pd

from pathbench.core.errors import ConfigError
from pathbench.core.io import atomic_write_text
from pathbench.report.html import markdown_table, page
from pathbench.report.plots import load_kl_curves
from pathbench.report.sections import ReportInput, build_sections, markdown
from pathbench.report.tables import BASE, PROTOCOL, SAMPLER_FIELDS, metric_key, tables
from pathbench.report.verdict_tables import distilled_from

__all__ = ["collect", "load", "markdown_table", "tables", "write_report"]

REQUIRED = ("run_id", "method", "task", "sampler", "metrics")
#: raw per-sample data kept in a result for recomputing statistics, not a table column
RAW = ("per_sample", "per_example")


# ----------------------------------------------------------------------------- collect

def _scalar(value: Any) -> Any:
    return json.dumps(value, sort_keys=True) if isinstance(value, (dict, list)) else value


def model_name(record: dict) -> str:
    """The name a run's model is reported under: its method, and for a distilled student its
    teacher's path too (``flowmap@kl``, as the sweep tunes and pins it): two students of one method
    are two models, never two seeds of one."""
    teacher_path = distilled_from(record)
    return f"{record['method']}@{teacher_path}" if teacher_path else record["method"]


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
    for k in sorted(record["metrics"], key=metric_key):
        if k in RAW:
            continue
        row[k if k not in row else f"metric_{k}"] = _scalar(record["metrics"][k])
    for k in sorted(record.get("reference") or {}, key=metric_key):
        if k not in RAW:
            row[f"ref_{k}"] = _scalar(record["reference"][k])
    for k, v in (record.get("train") or {}).items():
        row[f"train_{k}"] = _scalar(v)
    # how the model was trained and whether it learned, so that every row of the CSV can be read
    # on its own (pathbench.engine.recipes, pathbench.engine.learning)
    recipe, check = record.get("training_recipe") or {}, record.get("learning_check") or {}
    name = recipe.get("name")
    row["recipe"] = f"{name} (recorded before recipes)" if name and recipe.get("legacy") else name
    row["lr"] = recipe.get("lr")
    row["learned"] = check.get("learned")
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
        record = {**record, "method": model_name(record)}  # every table, check and plot keys on it
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
        return (4, metric_key(name[4:]))
    if name.startswith("train_"):
        return (5, name)
    return (6,) if name == "path" else (3, metric_key(name))


def collect(results_dir: str | Path) -> tuple[pd.DataFrame, list[str]]:
    """One row per complete run under ``results_dir``, and the problems (``"path: reason"``)."""
    df, problems, _ = load(results_dir)
    return df, problems


# ----------------------------------------------------------------------------- render


def _shown(folder: Path) -> str:
    """A folder as a committed report may name it: relative to the working directory when it
    lies under it, else its own name — never an absolute path of the machine that made it."""
    folder = folder.resolve()
    try:
        return folder.relative_to(Path.cwd().resolve()).as_posix()
    except ValueError:
        return folder.name


def write_report(results_dir: str | Path, out_dir: str | Path, title: str | None = None,
                 kl_curve_csv: str | Path | None = None, only: set[str] | None = None,
                 scorer_order: list[str] | None = None, tuning: list[Path] | None = None,
                 denoiser_gap: Path | None = None, speeds: dict | None = None) -> dict[str, Any]:
    """Write leaderboard.md/.csv, report.html and the PNG plots into ``out_dir``; the sections
    are those of :data:`pathbench.report.sections.SECTION_BUILDERS`; ``scorer_order``: the experiment's
    scorers as listed (its first is the primary scorer, shown first; default SmolLM2); ``tuning``: folders
    holding a tuning result (pathbench.sweep.tuning) the runs' recipes came from; ``denoiser_gap``: a
    denoiser_gap.json whose Bayes-optimal curve is drawn beside the held-out cross-entropy; ``speeds``: a
    speeds file's contents (``pathbench study speeds``), whose re-measured generation cost replaces each
    run's own timing in the quality–speed section (a run it does not name counts as not measured)."""
    results_dir, out_dir = Path(results_dir), Path(out_dir)
    if kl_curve_csv is not None and not Path(kl_curve_csv).is_file():
        raise ConfigError(f"KL curve CSV {kl_curve_csv} does not exist")
    df, problems, records = load(results_dir, only)
    if speeds is not None:  # one measurement on a quiet machine instead of the sweep's timings
        records = [{**r, "generation": speeds["runs"].get(r.get("run_id"))} for r in records]
    title = title or f"pathbench report: {results_dir.resolve().name}"
    found = tables(df, records)
    captions, agg, ref, task_aggs = found.pop("_captions"), found.pop("_agg"), found.pop("_ref"), found.pop("_tasks")
    kl = load_kl_curves(results_dir, kl_curve_csv, problems)
    out_dir.mkdir(parents=True, exist_ok=True)
    data = ReportInput(df, records, problems, found, captions, agg, ref, task_aggs, kl, out_dir, scorer_order,
                       extra={"tuning": list(tuning or []), "denoiser_gap": denoiser_gap,
                             "speeds": (speeds or {}).get("measured")})
    sections = build_sections(data)

    summary = f"{len(df)} complete run(s) from `{_shown(results_dir)}`; {len(problems)} problem(s)."
    legend = ("PPL = generative perplexity; entropy in nats; `value [low, high]`: the value with its interval "
              "(each table's caption says which); `seeds`: runs pooled into a row.")
    atomic_write_text(out_dir / "leaderboard.md", markdown(title, summary, legend, sections))
    atomic_write_text(out_dir / "leaderboard.csv", df.to_csv(index=False))
    atomic_write_text(out_dir / "report.html", page(title, summary, legend, sections))
    return {"out_dir": out_dir, "leaderboard_md": out_dir / "leaderboard.md",
            "leaderboard_csv": out_dir / "leaderboard.csv", "report_html": out_dir / "report.html",
            "plots": data.extra.get("plots", {}), "runs": len(df),
            "verdict": [s.title for s in sections if s.kind == "verdict"],
            "sections": [s.title for s in sections],
            "problems": len(problems), "problem_list": problems, "tables": list(found)}
