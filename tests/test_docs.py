"""The documentation holds: the README is a front door (≤ 200 lines, one results-summary block),
`mkdocs build --strict` passes with the API pages rendered from the docstrings, the command
reference is the parser's own help, the path-contract table is the code's, and every command
shown in a ``bash`` block of the README or of docs/ is run here — at a reduced size where it
trains — or named in ``ELSEWHERE`` with the test that runs its reduced form."""

import importlib.util
import inspect
import json
import os
import re
import shlex
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).parents[1]
DOCS = ROOT / "docs"
PLUGINS = ROOT / "tests" / "plugins"
PAGES = [ROOT / "README.md", *sorted(DOCS.rglob("*.md"))]

# Commands too costly for this file, each with the test that runs its reduced form.
ELSEWHERE = {
    "make main": "tests/test_docs.py::test_make_main_runs_the_shipped_sweeps_that_dry_run_here",
    "make test": "tests/test_docs.py::test_make_test_is_lint_imports_and_pytest",
    "pathbench sweep experiments/tiny_sweep.yaml --executor local":
        "tests/harness/sweep/test_sweep.py::test_two_by_two_sweep_runs_locally_end_to_end",
    "pathbench report runs/tiny-sweep": "tests/harness/sweep/test_sweep.py::test_two_by_two_sweep_runs_locally_end_to_end",
    "pathbench sweep experiments/gpu/geodesic_ablation_gpu_10min.yaml":
        "tests/harness/sweep/test_gpu_10min.py::test_its_grid_runs_end_to_end_on_the_cpu_at_a_tiny_size",
    "torchrun --nproc_per_node 8 -m pathbench.cli train":
        "tests/harness/cli/test_cli_run.py::test_torchrun_ddp_on_two_cpu_processes",
    "pathbench study bench sample --method kl,sedd,dfm,flowmap":
        "tests/harness/studies/test_bench.py::test_bench_sample_reports_model_share_floor_and_memory",
    "pathbench study speeds SWEEP_DIR": "tests/harness/studies/test_speeds.py::test_every_evaluation_is_re_timed_with_its_spread",
    "make speeds": "tests/harness/studies/test_speeds.py::test_every_evaluation_is_re_timed_with_its_spread",
    "pathbench lm-eval --ckpt runs/kl": "tests/integrations/test_lmeval.py::test_pathbench_lm_eval_passes_lm_eval_flags_through",
    "pathbench export --ckpt runs/kl --out hf/kl --force --push-to-hub":  # before the plain export: first match wins
        "tests/harness/engine/test_hub.py::test_push_to_hub_uploads_the_folder_with_huggingface_hub",
    "pathbench export --ckpt runs/kl": "tests/harness/engine/test_hub.py::test_export_round_trip_samples_identically",
}
# What a run here must print (page, command prefix, text in its stdout): a known answer where there is one.
EXPECT = [
    ("README.md", "pathbench list", "fisher_rao"),
    ("README.md", "pathbench sweep experiments/tiny_sweep.yaml --dry-run", "2 training units, 4 runs"),  # 2 paths x 2 NFE
    ("docs/guides/add-a-path.md", "pathbench list", "power"),
    ("docs/guides/add-a-path.md", "pathbench study kl-curve", "power"),
    ("docs/guides/add-a-baseline.md", "pathbench list", "unigram"),
    ("docs/guides/add-a-task.md", "pathbench eval", "exact_match"),
    ("docs/guides/add-a-scorer.md", "pathbench score", "gen-PPL     257.00"),
]


def shown_commands(page: Path) -> list[str]:
    """The commands of a page's ```bash blocks: continuation lines joined, comments dropped."""
    out = []
    for block in re.findall(r"^```bash\n(.*?)^```", page.read_text(), re.S | re.M):
        for line in block.replace("\\\n", " ").splitlines():
            line = re.sub(r"\s+#\s.*$", "", line).strip()
            if line and not line.startswith("#"):
                out.append(re.sub(r"\s+", " ", line))
    return out


def elsewhere(command: str) -> str | None:
    return next((test for prefix, test in ELSEWHERE.items() if command.startswith(prefix)), None)


def runnable(command: str) -> bool:
    return command.split()[0] in ("pathbench", "printf") and elsewhere(command) is None


def relative(page: Path) -> str:
    return str(page.relative_to(ROOT))


# --- the README -----------------------------------------------------------------------------

def test_the_readme_is_a_front_door_with_one_marked_results_summary():
    text = (ROOT / "README.md").read_text()
    assert len(text.splitlines()) <= 200
    assert text.count("<!-- results-summary:start -->") == 1 and text.count("<!-- results-summary:end -->") == 1
    summary = text.split("<!-- results-summary:start -->")[1].split("<!-- results-summary:end -->")[0]
    assert 0 < len(summary.strip().splitlines()) <= 25
    for command in ("make main", "make test"):
        assert f"```bash\n{command}\n```" in text
    for page in re.findall(r"\]\((docs/[^)#]+)", text):  # every docs link of the README resolves
        assert (ROOT / page).is_file(), page


# --- the site ---------------------------------------------------------------------------------

def test_mkdocs_build_strict_renders_every_page_and_the_api_from_docstrings(tmp_path):
    assert importlib.util.find_spec("mkdocs"), "mkdocs is a dev dependency: pip install -e '.[dev]'"
    site = tmp_path / "site"
    proc = subprocess.run([sys.executable, "-m", "mkdocs", "build", "--strict", "-f", str(ROOT / "mkdocs.yml"),
                           "-d", str(site)], cwd=ROOT, capture_output=True, text=True, timeout=600,
                          env={**os.environ, "PYTHONPATH": str(ROOT), "NO_MKDOCS_2_WARNING": "1"})
    assert proc.returncode == 0, proc.stderr[-4000:]
    api = (site / "reference" / "api" / "paths" / "index.html").read_text()
    # mkdocstrings rendered the class and a method's docstring, not the bare ::: line
    assert "SimplexPath" in api and "z0 ~ p0 of shape" in api and ":::" not in api
    assert "pathbench sweep" in (site / "reference" / "cli" / "index.html").read_text()
    for page in ("training", "sandbox", "results", "guides/add-a-task"):
        assert (site / page / "index.html").is_file()


def _cli_reference():
    spec = importlib.util.spec_from_file_location("cli_reference", DOCS / "tools" / "cli_reference.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_the_command_reference_is_the_parsers_help():
    module = _cli_reference()
    assert module.PAGE.read_text() == module.render(), "run `python docs/tools/cli_reference.py` and commit"
    from pathbench.cli.main import build_parser

    action = next(a for a in build_parser()._actions if a.__class__.__name__ == "_SubParsersAction")
    for name, sub in action.choices.items():  # an old name kept as an alias is documented under its new one
        assert f"pathbench {sub.get_default('moved_to') or name}" in module.PAGE.read_text()


def test_the_path_contract_table_is_the_code():
    from pathbench.paths.base import SimplexPath

    text = (DOCS / "concepts" / "paths.md").read_text()
    section = text.split("## The path contract")[1]
    rows = re.findall(r"^\| `(\w+)\(([^)]*)\)` \|", section, re.M)
    public = [name for name, member in vars(SimplexPath).items()
              if callable(member) and not name.startswith("_")]
    assert [name for name, _ in rows] == public
    for name, shown in rows:
        params = [p for p in inspect.signature(getattr(SimplexPath, name)).parameters.values() if p.name != "self"]
        shown_params = [s.strip() for s in shown.split(",") if s.strip()]
        assert shown_params == [p.name + ("=" if p.default is not inspect.Parameter.empty else "") for p in params], name
        abstract = getattr(getattr(SimplexPath, name), "__isabstractmethod__", False)
        row = next(line for line in section.splitlines() if line.startswith(f"| `{name}("))
        assert row.rstrip(" |").endswith("abstract") == abstract, name


# --- every command shown ------------------------------------------------------------------------

def test_every_shown_command_is_run_here_or_named_with_its_test():
    uncovered = [(relative(page), c) for page in PAGES for c in shown_commands(page)
                 if not runnable(c) and elsewhere(c) is None]
    assert not uncovered, f"add these to ELSEWHERE with the test that runs them, or make them runnable: {uncovered}"
    assert sum(len(shown_commands(p)) for p in PAGES) >= 20


def test_every_named_test_exists_and_every_entry_is_shown():
    shown = [c for page in PAGES for c in shown_commands(page)]
    for prefix, test in ELSEWHERE.items():
        assert any(c.startswith(prefix) for c in shown), f"stale ELSEWHERE entry: {prefix}"
        path, name = test.split("::")
        assert re.search(rf"^def {name}\(", (ROOT / path).read_text(), re.M), test
    for page, prefix, _ in EXPECT:
        assert any(c.startswith(prefix) for c in shown_commands(ROOT / page)), (page, prefix)


def make_dry_run(target):
    """`make -n TARGET` as a top-level make prints it: run from inside `make test` (CI), a
    sub-make inherits MAKELEVEL/MAKEFLAGS and adds "make[1]: Entering/Leaving directory" lines."""
    env = {k: v for k, v in os.environ.items() if k not in ("MAKELEVEL", "MAKEFLAGS", "MFLAGS")}
    return subprocess.run(["make", "--no-print-directory", "-n", target, "VENV=/nonexistent"], cwd=ROOT,
                          capture_output=True, text=True, env=env)


def test_make_test_is_lint_imports_and_pytest():
    proc = make_dry_run("test")
    lines = proc.stdout.splitlines()
    assert [line.split()[0].rsplit("/", 1)[-1] for line in lines[-3:]] == ["ruff", "lint-imports", "python"]
    assert lines[-1].endswith("-m pytest")


def test_make_main_runs_the_shipped_sweeps_that_dry_run_here(tmp_path, capsys):
    from pathbench.cli import main

    proc = make_dry_run("main")
    sweeps = re.findall(r"pathbench sweep (experiments/\S+\.yaml)", proc.stdout)
    assert len(sweeps) == 3 and "pathbench study kl-curve" in proc.stdout and proc.stdout.count("pathbench report") == 3
    for experiment in sweeps:
        assert main(["sweep", str(ROOT / experiment), "--dry-run", "--out", str(tmp_path / Path(experiment).stem)]) == 0
        assert "runs" in capsys.readouterr().out


def reduced(command: str, data_cache: Path, scorer: Path) -> str:
    """The command at a test's size: 2 training steps on the small BBC packing, 2 samples, 2 steps."""
    if not command.startswith("pathbench "):
        return command  # a shell line (printf ... > file): as shown
    for flag, value in (("--steps", 2), ("--n", 2), ("--nfe", 2), ("--samples", 4)):
        command = re.sub(rf"{flag} \d+", f"{flag} {value}", command)
    words = shlex.split(command)
    if words[:2] == ["pathbench", "train"]:
        if not any(w.startswith("data.corpus=") for w in words):
            words = [w for w in words if not w.startswith(("data.seq_len=", "data.vocab_size="))]
            words += ["data.vocab_size=512", "data.seq_len=32"]
        words += [f"data.cache_dir={data_cache}", "batch_size=4", "progress=false"]
    if words[:2] == ["pathbench", "eval"] and "unconditional" in words:
        words += [f"scorer=hf:{scorer}"]  # a tiny local LM instead of loading SmolLM2
    return shlex.join(words)


PAGES_TO_RUN = [page for page in PAGES if any(runnable(c) for c in shown_commands(page))]


@pytest.mark.parametrize("page", PAGES_TO_RUN, ids=relative)
def test_the_commands_a_page_shows_run(page, tmp_path, data_cache, bbc_small, tiny_lm):
    """A page's commands in order, in one fresh folder (later ones use what earlier ones wrote);
    the modules its ```python blocks name (``# my_paths.py``) are written there first."""
    for name, code in re.findall(r"^```python\n# (\w+\.py)\n(.*?)^```", page.read_text(), re.S | re.M):
        (tmp_path / name).write_text(code)
    (tmp_path / "experiments").symlink_to(ROOT / "experiments")
    bin_dir = tmp_path / "bin"
    bin_dir.mkdir()
    (bin_dir / "pathbench").write_text(f'#!/bin/sh\nexec "{sys.executable}" -m pathbench.cli "$@"\n')
    (bin_dir / "pathbench").chmod(0o755)
    env = {**os.environ, "PATH": f"{bin_dir}{os.pathsep}{os.environ['PATH']}", "OMP_NUM_THREADS": "1",
           "PYTHONPATH": os.pathsep.join([str(tmp_path), str(ROOT), str(PLUGINS)])}
    for command in [c for c in shown_commands(page) if runnable(c)]:
        small = reduced(command, data_cache, tiny_lm)
        proc = subprocess.run(["bash", "-c", small], cwd=tmp_path, env=env, capture_output=True, text=True,
                              timeout=600)
        assert proc.returncode == 0, f"{small}\n{proc.stdout[-2000:]}{proc.stderr[-3000:]}"
        for where, prefix, text in EXPECT:
            if where == relative(page) and command.startswith(prefix):
                assert text in proc.stdout, f"{small}: expected {text!r} in\n{proc.stdout[-2000:]}"
    if relative(page) == "docs/guides/add-a-task.md":
        metrics = json.loads((tmp_path / "runs" / "linear-echo" / "metrics.json").read_text())
        assert metrics["task"] == "echo" and 0.0 <= metrics["metrics"]["exact_match"] <= 1.0
    shutil.rmtree(tmp_path / "runs", ignore_errors=True)
