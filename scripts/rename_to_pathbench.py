#!/usr/bin/env python3
"""One import package, ``pathbench`` (issue 26): rewrite the tree's module names once.

The repository keeps its folders (harness/, paths/, baselines/, tasks/); installed, they are one
import package: ``pathbench.<layer>`` from harness/<layer>/, ``pathbench.paths``,
``pathbench.baselines`` and ``pathbench.tasks`` from the folders of those names. This script
rewrites every place that names a module the old way, and is idempotent (a second run changes
nothing)::

    python3 scripts/rename_to_pathbench.py            # rewrite the tree, list what changed
    python3 scripts/rename_to_pathbench.py --check    # exit 1 and list the files it would change

What it rewrites, in .py, .md, .toml, .yaml, .sh files and the Makefile (never results/ nor
tests/fixtures/: committed results keep their bytes):

* ``harness.X`` -> ``pathbench.X``; ``from harness import`` -> ``from pathbench import``;
* ``paths.M``, ``baselines.M``, ``tasks.M`` where M is a module of that folder (read from the
  disk, so a local variable ``paths.append`` or prose "tasks." is left alone), and the import
  statements of the bare packages -> ``pathbench.paths.M`` ...;
* ``BASELINES`` -> ``METHODS`` (the methods registry; the registry module keeps
  ``BASELINES = METHODS`` as a deprecated alias);
* the diagnostics' old top-level verbs: ``pathbench kl-curve`` -> ``pathbench study kl-curve``
  and ``main(["kl-curve", ...])`` -> ``main(["study", "kl-curve", ...])`` (a line holding
  ``keep: old name`` is left as it is: the tests of the aliases);
* pyproject.toml: the package-directory mapping (its ``packages`` list regenerated from the
  folders), ruff's first-party name, import-linter's root package and contracts;
* pathbench/: the links that make ``import pathbench`` work from the repository root (where a
  checkout's tests, import-linter and ``python -m pathbench.cli`` run) without an install.

File paths (``harness/engine/run.py``) and prose are not module names and stay. Afterwards it
prints the quoted bare names it cannot decide on (``"tasks"`` may be a YAML key or a package),
for a person to review.
"""

from __future__ import annotations

import argparse
import os
import re
import sys
from pathlib import Path

OLD_ROOT = "harness"
COMPONENTS = ("paths", "baselines", "tasks", "integrations")
NEW = "pathbench"
SUFFIXES = {".py", ".md", ".toml", ".yaml", ".yml", ".sh"}
NAMES = {"Makefile"}
SKIP_DIRS = {".git", "results", "fixtures", "__pycache__", ".venv", "venv", "build", "dist", NEW, ".cache",
             "runs", "node_modules"}
THIS = Path(__file__).resolve()
STUDIES = ("kl-curve", "posterior-gap", "denoiser-gap", "flowmap-gap", "reparam", "tune-tstar", "bench")
KEEP = "keep: old name"  # a line that must keep an old name (a test of the aliases)
ALIAS = "BASELINES = METHODS"


def modules_of(folder: Path) -> list[str]:
    """The importable names directly inside a package folder: modules and subpackages."""
    names = {p.stem for p in folder.glob("*.py") if p.stem != "__init__"}
    names |= {p.name for p in folder.iterdir() if p.is_dir() and (p / "__init__.py").exists()}
    return sorted(names, key=len, reverse=True)


def packages_under(root: Path, folder: str, name: str) -> list[str]:
    """Every package below ``root/folder`` by its new dotted name (``name`` for the folder)."""
    found = []
    for init in sorted((root / folder).rglob("__init__.py")):
        if "__pycache__" in init.parts:
            continue
        rel = init.parent.relative_to(root / folder).parts
        found.append(".".join((name, *rel)))
    return found


def rules(root: Path) -> list[tuple[re.Pattern, str]]:
    out = [
        # harness.X (a module or attribute path), never a file path (harness/), "lm-evaluation-harness"
        # or the prose word at a sentence's end ("the harness. It")
        (re.compile(rf"(?<![\w./-]){OLD_ROOT}(?=\.[A-Za-z_])"), NEW),
        (re.compile(rf"^(\s*)from {OLD_ROOT} import ", re.M), rf"\1from {NEW} import "),
        (re.compile(rf"^(\s*)import {OLD_ROOT}(\s*(?:#.*)?)$", re.M), rf"\1import {NEW}\2"),
    ]
    for package in COMPONENTS:
        mods = "|".join(re.escape(m) for m in modules_of(root / package))
        if mods:
            out.append((re.compile(rf"(?<![\w./-]){package}\.(?=(?:{mods})\b)"), f"{NEW}.{package}."))
        out.append((re.compile(rf"^(\s*)from {package} import ", re.M), rf"\1from {NEW}.{package} import "))
        out.append((re.compile(rf"^(\s*)import {package}(\s*(?:#.*)?)$", re.M), rf"\1import {NEW}.{package}\2"))
    verbs = "|".join(re.escape(v) for v in STUDIES)
    out.append((re.compile(rf"(?<![\w-])pathbench (?=(?:{verbs})\b(?!-))"), "pathbench study "))
    out.append((re.compile(rf'main\(\["(?=(?:{verbs})")'), 'main(["study", "'))
    return out


def rewrite_text(text: str, compiled: list[tuple[re.Pattern, str]]) -> str:
    lines = text.splitlines(keepends=True)
    kept = {i: line for i, line in enumerate(lines) if KEEP in line}
    for pattern, replacement in compiled:
        text = pattern.sub(replacement, text)
    # the registry's name, in code and in prose alike (its alias line stays)
    text = re.sub(r"\bBASELINES\b(?! = METHODS)", "METHODS", text)
    if kept:  # restore the lines that keep an old name
        new_lines = text.splitlines(keepends=True)
        if len(new_lines) == len(lines):
            for i, line in kept.items():
                new_lines[i] = line
            text = "".join(new_lines)
    return text


def keep_registry_alias(text: str) -> str:
    """The registry module defines METHODS and keeps BASELINES as its deprecated alias."""
    if ALIAS in text or "METHODS: Registry" not in text:
        return text
    match = re.search(r"^METHODS: Registry = .*?\n(?=\S)", text, flags=re.M | re.S)
    assert match, "the registry module defines METHODS"
    alias = f"#: deprecated: the methods registry's old name (it holds every method, not only baselines)\n{ALIAS}\n"
    return text[:match.end()] + alias + text[match.end():]


def rewrite_pyproject(text: str, root: Path) -> str:
    packages = packages_under(root, OLD_ROOT, NEW)
    for package in COMPONENTS:
        packages += packages_under(root, package, f"{NEW}.{package}")
    mapping = ", ".join(f'"{NEW}{"." + p if p else ""}" = "{p or OLD_ROOT}"' for p in ("", *COMPONENTS))
    listed = "".join(f'    "{p}",\n' for p in packages)
    block = ("[tool.setuptools]\n"
             "# one import package, pathbench, from the repository's folders: its layers from harness/,\n"
             "# pathbench.paths / .baselines / .tasks / .integrations from the folders of those names\n"
             "# (scripts/rename_to_pathbench.py regenerates the list from the folders)\n"
             f"package-dir = {{ {mapping} }}\n"
             f"packages = [\n{listed}]\n")
    text = re.sub(r"^\[tool\.setuptools\]\n.*?(?=^\[|\Z)", lambda _: block + "\n", text, count=1, flags=re.M | re.S)
    text = re.sub(r"^known-first-party = \[.*?\]", f'known-first-party = ["{NEW}", "tests"]', text, flags=re.M)
    text = re.sub(r"^root_packages = \[.*?\]", f'root_packages = ["{NEW}"]', text, flags=re.M)

    def bare(match: re.Match) -> str:  # "tasks | baselines", "paths" items of a contract
        return re.sub(rf'(?<=["| ])({"|".join(COMPONENTS)}|{OLD_ROOT})(?=["| ])',
                      lambda m: NEW if m.group(1) == OLD_ROOT else f"{NEW}.{m.group(1)}", match.group(0))

    return re.sub(r"^(?:layers|ancestors) = \[.*?\]", bare, text, flags=re.M | re.S)


def link_farm(root: Path, dry: bool) -> list[str]:
    """pathbench/ at the root: links to harness/__init__.py, harness/<layer>/ and the component
    folders, so the root's ``pathbench`` is the installed package's files under the same names."""
    farm = root / NEW
    wanted = {"__init__.py": Path("..", OLD_ROOT, "__init__.py")}
    for entry in sorted((root / OLD_ROOT).iterdir()):
        if entry.name not in ("__init__.py", "__pycache__") and (entry.is_dir() or entry.suffix == ".py"):
            wanted[entry.name] = Path("..", OLD_ROOT, entry.name)
    for package in COMPONENTS:
        wanted[package] = Path("..", package)
    changed = []
    if not dry:
        farm.mkdir(exist_ok=True)
    for name, target in wanted.items():
        link = farm / name
        if link.is_symlink() and Path(os.readlink(link)) == target:
            continue
        changed.append(f"{NEW}/{name} -> {target}")
        if not dry:
            if link.is_symlink() or link.exists():
                link.unlink()
            link.symlink_to(target)
    return changed


def candidates(root: Path):
    for dirpath, dirs, files in os.walk(root):
        dirs[:] = sorted(d for d in dirs if d not in SKIP_DIRS and not d.startswith("."))
        for name in sorted(files):
            path = Path(dirpath, name)
            if (path.suffix in SUFFIXES or name in NAMES) and not path.is_symlink() and path.resolve() != THIS:
                yield path


def review(root: Path) -> list[str]:
    """Quoted bare old names in Python code: a package name or a plain word? a person decides."""
    hits = []
    pattern = re.compile(rf"""["']({OLD_ROOT}|{"|".join(COMPONENTS)})["']""")
    for path in candidates(root):
        if path.suffix != ".py":
            continue
        for number, line in enumerate(path.read_text().splitlines(), 1):
            if pattern.search(line) and not re.search(r"""["'](tasks|paths)["']\s*[:\]]""", line):
                hits.append(f"{path.relative_to(root)}:{number}: {line.strip()}")
    return hits


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--root", type=Path, default=THIS.parents[1], help="the repository (default: this one)")
    parser.add_argument("--check", action="store_true", help="change nothing; exit 1 if something would change")
    args = parser.parse_args(argv)
    root = args.root.resolve()
    if not (root / OLD_ROOT / "__init__.py").exists():
        print(f"rename_to_pathbench: {root} has no {OLD_ROOT}/__init__.py; pass the repository with --root",
              file=sys.stderr)
        return 2
    compiled = rules(root)
    changed = []
    for path in candidates(root):
        text = path.read_text()
        new = rewrite_text(text, compiled)
        if path.name == "pyproject.toml" and path.parent == root:
            new = rewrite_pyproject(new, root)
        if path == root / OLD_ROOT / "core" / "registry.py":
            new = keep_registry_alias(new)
        if new != text:
            changed.append(str(path.relative_to(root)))
            if not args.check:
                path.write_text(new)
    changed += link_farm(root, dry=args.check)
    for line in changed:
        print(("would change " if args.check else "changed ") + line)
    print(f"{len(changed)} file(s) {'to change' if args.check else 'changed'}", file=sys.stderr)
    if not args.check:
        for hit in review(root):
            print(f"review: {hit}", file=sys.stderr)
    return 1 if args.check and changed else 0


if __name__ == "__main__":
    sys.exit(main())
