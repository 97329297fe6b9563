"""The written result of a sweep's tuning stage (pathbench.sweep.tuning): ``tuning.json``,
``tuning.csv``, ``tuning.md`` and the sensitivity plot ``tuning.png`` in ``tuning/<experiment>/``."""

from __future__ import annotations

import csv
import io
import math
from pathlib import Path

from pathbench.core.io import atomic_write_json, atomic_write_text
from pathbench.sweep.tuning import TuneSpec


def write_tuning(folder: Path, rows: list[dict], chosen: dict[str, dict], spec: TuneSpec) -> dict:
    """tuning.json / .csv / .md and the sensitivity plot into ``folder``; returns the record."""
    folder.mkdir(parents=True, exist_ok=True)
    record = {"grid": spec.grid, "steps": spec.steps, "seed": spec.seed, "select": spec.select,
              "rule": "lowest held-out loss of the method's own objective at the final step (within a method)",
              "rows": rows, "chosen": chosen}
    atomic_write_json(folder / "tuning.json", record)
    buffer = io.StringIO()
    columns = ["method", *sorted(spec.grid), "val_loss", "learned", "status", "unit"]
    writer = csv.DictWriter(buffer, columns, extrasaction="ignore", lineterminator="\n")
    writer.writeheader()
    writer.writerows(rows)
    atomic_write_text(folder / "tuning.csv", buffer.getvalue())
    atomic_write_text(folder / "tuning.md", tuning_markdown(record))
    plot_sensitivity(record, folder / "tuning.png")
    return record


def tuning_markdown(record: dict) -> str:
    keys = sorted(record["grid"])
    lines = [f"Each method's recipe and learning rate were searched on the same grid ({', '.join(keys)}), "
             f"{record['steps']} steps, seed {record['seed']}; chosen by {record['rule']}. Held-out losses are "
             "comparable within a method only.", "",
             "| method | " + " | ".join(keys) + " | held-out loss | learned | chosen |",
             "|---|" + "---|" * len(keys) + "---|---|---|"]
    if any("teacher" in row for row in record["rows"]):
        lines[0] += (" Flow-map students (name@teacher) were tuned after their teachers: each candidate distils "
                     "its teacher's chosen candidate.")
    for row in record["rows"]:
        pick = record["chosen"].get(row["method"], {})
        is_best = pick.get("unit") == row["unit"]
        loss = "diverged" if row["val_loss"] is None or not math.isfinite(row["val_loss"]) else f"{row['val_loss']:.3f}"
        learned = {True: "yes", False: "**no**"}.get(row.get("learned"), "not checked")
        flag = ("**yes**" + (" (at the grid's edge)" if pick.get("at_edge") else "")) if is_best else ""
        lines.append(f"| {row['method']} | " + " | ".join(str(row[k]) for k in keys) + f" | {loss} | {learned} | {flag} |")
    edges = [m for m, c in record["chosen"].items() if c.get("at_edge")]
    if edges:
        lines += ["", f"At the edge of the grid ({', '.join(edges)}): the best learning rate may lie outside it."]
    return "\n".join(lines) + "\n"


def plot_sensitivity(record: dict, path: Path) -> None:
    """Held-out loss against lr, one panel per method, one line per recipe."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    methods = list(dict.fromkeys(r["method"] for r in record["rows"]))
    fig, axes = plt.subplots(1, len(methods), figsize=(3.2 * len(methods), 3.0), squeeze=False)
    for ax, method in zip(axes[0], methods):
        rows = [r for r in record["rows"] if r["method"] == method]
        for recipe in dict.fromkeys(r.get("optimizer", "") for r in rows):
            pts = sorted((r["lr"], r["val_loss"]) for r in rows if r.get("optimizer", "") == recipe
                         and r["val_loss"] is not None and math.isfinite(r["val_loss"]))
            if pts:
                ax.plot(*zip(*pts), marker="o", label=recipe or "default")
        ax.set_xscale("log")
        ax.set_title(method)
        ax.set_xlabel("lr")
        ax.grid(alpha=0.3)
        ax.legend(fontsize=7)
    axes[0][0].set_ylabel("held-out loss (own objective)")
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)
