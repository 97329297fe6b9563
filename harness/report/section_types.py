"""The records a report is built from and made of: a :class:`ReportInput` in, :class:`Section` s
(with their :class:`Figure` s) out (pathbench.report.sections lists the builders)."""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pandas as pd


@dataclass
class Figure:
    path: Path
    png: bytes
    caption: str


@dataclass
class Section:
    title: str
    text: str = ""                      # a paragraph before the table
    table: pd.DataFrame | None = None
    caption: str = ""                   # the table's own caption
    kind: str = "settings"              # "warning" | "verdict" | "settings" | "plots" | "problems" | "protocol"
    figures: list[Figure] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)      # one paragraph each (after the figures)
    folded: list[tuple[str, str]] = field(default_factory=list)  # (summary, preformatted text) in <details>


@dataclass
class ReportInput:
    """Everything the builders read: the runs (flat table and raw records), the problems, the
    tables of :func:`pathbench.report.tables.tables` and where the PNGs go."""

    df: pd.DataFrame
    records: list[dict]
    problems: list[str]
    tables: dict[str, pd.DataFrame]
    captions: dict[str, str]
    agg: pd.DataFrame                   # unconditional settings (numeric)
    ref: pd.DataFrame                   # real text per scorer
    task_aggs: dict[str, tuple[pd.DataFrame, list[str]]]
    kl: pd.DataFrame | None
    out_dir: Path
    scorer_order: list[str] | None = None
    extra: dict[str, Any] = field(default_factory=dict)  # for builders added later
