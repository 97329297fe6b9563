"""The house as the README's "Layout" section describes it: harness/ in layer folders, the
import rule held by import-linter, and no import inside a function except to defer a heavy
library (torch, matplotlib, transformers, ...), never to dodge a cycle."""

import ast
import shutil
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).parents[1]
PROJECT = ("harness", "paths", "baselines", "tasks", "integrations")  # the folders of the one import package, pathbench
LAYERS = {"core", "data", "engine", "evaluation", "sweep", "report", "studies", "cli"}

# The in-function imports of project modules that are allowed, each because the module it
# loads imports torch and the importer is light without it: the CLI's command bodies (so
# `pathbench --help` does not wait for torch) and load_all (imported by the CLI's main).
DEFERRED = {("harness/engine/plugins.py", "pathbench.engine.methods")}


def test_harness_is_its_layers():
    entries = {p.name for p in (ROOT / "harness").iterdir() if p.name != "__pycache__"}
    assert entries == LAYERS | {"__init__.py"}
    for layer in LAYERS:
        doc = ast.get_docstring(ast.parse((ROOT / "harness" / layer / "__init__.py").read_text()))
        assert doc, f"harness/{layer}/__init__.py says what the layer holds and may import"


def test_the_import_rule_holds():
    exe = shutil.which("lint-imports", path=str(Path(sys.executable).parent)) or shutil.which("lint-imports")
    assert exe, "import-linter is a dev dependency (pip install -e '.[dev]')"
    proc = subprocess.run([exe, "--no-cache"], cwd=ROOT, capture_output=True, text=True)
    assert proc.returncode == 0, proc.stdout[-3000:] + proc.stderr[-2000:]
    assert "2 kept, 0 broken" in proc.stdout


def _function_imports(path: Path):
    tree = ast.parse(path.read_text())
    for node in ast.walk(tree):
        if isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef)):
            for inner in ast.walk(node):
                if isinstance(inner, ast.ImportFrom) and inner.module and inner.level == 0:
                    yield inner.module
                elif isinstance(inner, ast.Import):
                    yield from (alias.name for alias in inner.names)


def test_no_project_import_inside_a_function_except_to_defer_torch():
    found = set()
    for package in PROJECT:
        for path in (ROOT / package).rglob("*.py"):
            relative = path.relative_to(ROOT).as_posix()
            if relative.startswith("harness/cli/"):
                continue  # command bodies load their work when the command runs
            found |= {(relative, m) for m in _function_imports(path) if m.split(".")[0] == "pathbench"}
    assert found == DEFERRED


def test_no_task_is_special_cased_by_name_outside_tasks():
    """The evaluation hands a loaded run to every task alike: no harness module compares a task
    name (or builds a task) by a literal name; what a task needs it declares (takes_scorers)."""
    from pathbench.core.registry import TASKS
    from pathbench.engine.plugins import load_all

    load_all()
    registered = set(TASKS.names()) | {alias for name in TASKS.names() for alias in TASKS.aliases_of(name)}
    assert "unconditional" in registered
    found = []
    for path in (ROOT / "harness").rglob("*.py"):
        for node in ast.walk(ast.parse(path.read_text())):
            if isinstance(node, ast.Constant) and node.value in registered:
                found.append(f"{path.relative_to(ROOT)}:{node.lineno} {node.value!r}")
    assert found == []
