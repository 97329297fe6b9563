"""Render the ``pathbench`` parser's help into docs/reference/cli.md.

The command reference is generated, never written by hand, so it cannot drift from the
parser: ``tests/test_docs.py`` renders it again and compares. After changing a command's
flags or help, regenerate it from the repository root:

    python docs/tools/cli_reference.py
"""

from __future__ import annotations

import argparse
import os
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
PAGE = ROOT / "docs" / "reference" / "cli.md"
# argparse wraps help to the terminal's width; a fixed width makes the page the same everywhere
WIDTH = "100"

HEADER = """# Command reference

Generated from the parser (`pathbench.cli.main.build_parser`) by `python docs/tools/cli_reference.py`;
`tests/test_docs.py` fails when this page and the parser disagree. Every command also takes
`--plugin some.module` (repeatable) to register third-party components first; bad input is one
line naming the value and the valid choices, exit code 2.
"""


def _subcommands(parser: argparse.ArgumentParser) -> list[tuple[str, argparse.ArgumentParser]]:
    """(name, parser) of every sub-command in the order they were added, aliases once."""
    action = next((a for a in parser._actions if isinstance(a, argparse._SubParsersAction)), None)
    if action is None:
        return []
    seen, out = set(), []
    for name, sub in action.choices.items():
        if sub.get_default("moved_to"):  # an old name kept as an alias: documented under its new one
            continue
        if id(sub) not in seen:
            seen.add(id(sub))
            out.append((name, sub))
    return out


def render() -> str:
    """The whole page, as Markdown."""
    old = os.environ.get("COLUMNS")
    os.environ["COLUMNS"] = WIDTH
    try:
        sys.path.insert(0, str(ROOT))
        from pathbench.cli.main import build_parser

        parser = build_parser()
        parts = [HEADER, "## pathbench\n", "```text\n" + parser.format_help().rstrip() + "\n```\n"]
        for name, sub in _subcommands(parser):
            parts.append(f"## pathbench {name}\n")
            parts.append("```text\n" + sub.format_help().rstrip() + "\n```\n")
            for child, inner in _subcommands(sub):  # pathbench study NAME
                parts.append(f"## pathbench {name} {child}\n")
                parts.append("```text\n" + inner.format_help().rstrip() + "\n```\n")
        return "\n".join(parts)
    finally:
        sys.path.remove(str(ROOT))
        if old is None:
            os.environ.pop("COLUMNS", None)
        else:
            os.environ["COLUMNS"] = old


if __name__ == "__main__":
    PAGE.parent.mkdir(parents=True, exist_ok=True)
    PAGE.write_text(render())
    print(f"wrote {PAGE.relative_to(ROOT)}")
