#!/usr/bin/env python3
"""Pin a sweep's tuning choices into its experiment file (``tune.chosen`` + ``tune.from``) and copy
the tuning table beside the committed results, so that `make` uses committed choices.

    scripts/pin_tuning.py EXPERIMENT.yaml SWEEP_DIR RESULTS_DIR

Copies SWEEP_DIR/tuning/<name>/ to RESULTS_DIR/tuning/<name>/ and writes, under the file's
``tune:`` block, ``chosen:`` (each method's train keys; a flow-map student's under ``name@teacher``,
e.g. ``flowmap@kl``) and ``from:`` (the copied tuning.json).
The file's comments are kept; a file already pinned is refused.
"""

from __future__ import annotations

import json
import shutil
import sys
from pathlib import Path

import yaml


def main(experiment: Path, sweep_dir: Path, results_dir: Path) -> None:
    text = experiment.read_text()
    raw = yaml.safe_load(text)
    name = str(raw.get("name", experiment.stem))
    slug = "".join(c if c.isalnum() or c in "-_." else "-" for c in name)
    source = sweep_dir / "tuning" / slug
    record = json.loads((source / "tuning.json").read_text())
    if "chosen" in (raw.get("tune") or {}):
        sys.exit(f"{experiment} already pins its choices (tune.chosen); remove them to pin new ones")
    target = results_dir / "tuning" / slug
    if target.exists():
        shutil.rmtree(target)
    shutil.copytree(source, target)
    lines = ["  chosen:   # pinned from the tuning table below (scripts/pin_tuning.py)"]
    for method, choice in record["chosen"].items():
        keys = ", ".join(f"{k}: {json.dumps(v)}" for k, v in sorted(choice["keys"].items()))
        lines.append(f"    {method}: {{{keys}}}")
    lines.append(f"  from: {target / 'tuning.json'}")
    anchor = "  select: val_loss\n"
    if anchor not in text:
        sys.exit(f"{experiment}: no '  select: val_loss' line in its tune block to pin under")
    experiment.write_text(text.replace(anchor, anchor + "\n".join(lines) + "\n", 1))
    print(f"pinned {len(record['chosen'])} choices into {experiment}; table in {target}")


if __name__ == "__main__":
    if len(sys.argv) != 4:
        sys.exit(__doc__)
    main(Path(sys.argv[1]), Path(sys.argv[2]), Path(sys.argv[3]))
