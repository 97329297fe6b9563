"""One import package, ``pathbench``: what the distribution installs, what ``import pathbench``
gives a fresh interpreter, and the one line a module imported by its old name fails with."""

import importlib.metadata
import subprocess
import sys
import zipfile
from pathlib import Path

import pathbench

ROOT = Path(__file__).parents[1]
OLD_NAMES = ("harness", "paths", "baselines", "tasks", "integrations")

FRESH = """
import sys, pathbench
from importlib.util import find_spec
print(pathbench.__name__)
if find_spec("lm_eval"):  # the [eval] extra: the import alone registered the lm-eval model (no torch)
    from lm_eval.api.registry import model_registry
    assert "pathbench" in model_registry and "torch" not in sys.modules
for kind, names in {"PATHS": ["linear", "fisher_rao", "kl", "euclidean"], "METHODS": ["kl", "dfm", "sedd", "ar"],
                    "TASKS": ["unconditional", "headline_lead"], "SCORERS": ["smollm2", "hf", "self", "oracle"],
                    "PROTOCOLS": ["kl-flow", "plain"], "RECIPES": ["adamw", "muon"], "LOGGERS": ["tensorboard"]}.items():
    missing = [n for n in names if n not in getattr(pathbench, kind)]
    assert not missing, (kind, missing)
assert callable(pathbench.load_run) and callable(pathbench.eval_run) and callable(pathbench.load_exported)
print(sorted(m for m in sys.modules if m.split(".")[0] in ("harness", "paths", "baselines", "tasks", "integrations")))
"""


def run_python(code: str, cwd: Path) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-c", code], cwd=cwd, capture_output=True, text=True, timeout=300)


def test_import_pathbench_in_an_empty_folder_registers_every_built_in(tmp_path):
    proc = run_python(FRESH, tmp_path)
    assert proc.returncode == 0, proc.stderr[-2000:]
    assert proc.stdout.splitlines() == ["pathbench", "[]"]  # and no module under an old top-level name


def test_a_module_by_its_old_name_fails_with_one_line_naming_the_new_one():
    for old, new in [("tasks.lmeval", "import pathbench.tasks, not tasks"),  # keep: old name
                     ("paths", "import pathbench.paths, not paths"),
                     ("baselines.dfm", "import pathbench.baselines, not baselines"),  # keep: old name
                     ("harness.engine.hub", "import pathbench.<module>, not harness.<module>"),  # keep: old name
                     ("integrations.lmeval", "import pathbench.integrations, not integrations"),  # keep: old name
                     # the modules' names before tasks/ was split by concern
                     ("pathbench.tasks.lmeval", "import pathbench.integrations.lmeval, not pathbench.tasks.lmeval"),
                     ("pathbench.tasks.base", "import pathbench.tasks.adapters.base, not pathbench.tasks.base"),
                     ("pathbench.tasks.oracle_scorer",
                      "import pathbench.tasks.scorers.oracle, not pathbench.tasks.oracle_scorer")]:
        proc = run_python(f"import {old}", ROOT)  # the repository's root is on sys.path, as in its tests
        assert proc.returncode == 1 and proc.stderr.strip().splitlines()[-1] == \
            f"ImportError: pathbench's modules moved: {new}", (old, proc.stderr[-500:])


def test_the_public_api_is_at_the_top():
    assert pathbench.METHODS is pathbench.core.registry.METHODS
    assert pathbench.core.registry.BASELINES is pathbench.METHODS  # the deprecated name, same registry  (keep: old name)
    for name in pathbench.LAZY:
        assert getattr(pathbench, name).__module__.startswith("pathbench."), name
    assert set(pathbench.LAZY) <= set(dir(pathbench))


def test_the_installed_distribution_has_one_top_level_package():
    dist = importlib.metadata.distribution("pathbench")
    assert (dist.read_text("top_level.txt") or "pathbench").split() == ["pathbench"]
    points = {(ep.group, ep.name): ep.value for ep in dist.entry_points}
    assert points[("console_scripts", "pathbench")] == "pathbench.cli:main"
    assert points[("lm_eval.models", "pathbench")] == "pathbench.integrations.lmeval:PathbenchLM"
    finders = [f for f in dist.files or [] if f.name.startswith("__editable__") and f.name.endswith("_finder.py")]
    for finder in finders:  # an editable install: its mapping names pathbench's parts only
        text = Path(finder.locate()).read_text()
        mapping = text.split("MAPPING: dict[str, str] = ", 1)[1].splitlines()[0]
        assert all(key.strip(" '{").startswith("pathbench") for key in eval(mapping))  # noqa: S307 (a dict literal)


def test_a_wheel_holds_pathbench_only(tmp_path):
    proc = subprocess.run([sys.executable, "-m", "pip", "wheel", "--no-deps", "--no-build-isolation", "-q",
                           "-w", str(tmp_path), str(ROOT)], capture_output=True, text=True, timeout=600,
                          cwd=tmp_path)
    assert proc.returncode == 0, proc.stderr[-2000:]
    (wheel,) = tmp_path.glob("pathbench-*.whl")
    names = zipfile.ZipFile(wheel).namelist()
    assert {n.split("/")[0] for n in names} == {"pathbench", next(n.split("/")[0] for n in names if ".dist-info/" in n)}
    for folder in OLD_NAMES:  # every module of the four folders is in it, under pathbench
        for path in (ROOT / folder).rglob("*.py"):
            rel = path.relative_to(ROOT / folder) if folder == "harness" else path.relative_to(ROOT)
            assert f"pathbench/{rel.as_posix()}" in names, rel


def test_the_tree_is_migrated_and_the_rename_is_idempotent():
    proc = subprocess.run([sys.executable, str(ROOT / "scripts" / "rename_to_pathbench.py"), "--check"],
                          capture_output=True, text=True, timeout=120)
    assert proc.returncode == 0, proc.stdout[-3000:]
