"""``pathbench --help`` lists the workflow first and the research diagnostics under one verb,
``study``; a diagnostic's old top-level name still runs it and says where it moved."""

import re

from pathbench.cli import main
from pathbench.cli.main import build_parser

WORKFLOW = ["train", "sample", "eval", "score", "sweep", "report", "export", "lm-eval", "list", "prepare"]
STUDIES = {"kl-curve", "posterior-gap", "denoiser-gap", "flowmap-gap", "reparam", "tune-tstar", "bench", "speeds"}


def listed_commands(help_text: str) -> list[str]:
    """The command names of a --help listing, in their order (argparse indents them by 4)."""
    return re.findall(r"^ {4}(\S+)", help_text, flags=re.MULTILINE)


def test_the_workflow_comes_first_and_the_diagnostics_are_one_verb():
    listed = listed_commands(build_parser().format_help())
    assert listed[:len(WORKFLOW)] == WORKFLOW
    assert "study" in listed and not STUDIES & set(listed)  # the old names are not listed


def test_study_lists_every_diagnostic(capsys):
    try:
        main(["study", "--help"])
    except SystemExit as stop:
        assert stop.code == 0
    assert set(listed_commands(capsys.readouterr().out)) == STUDIES


def test_an_old_name_runs_the_study_and_says_where_it_moved(tmp_path, capsys):
    args = ["--vocab", "10", "--samples", "4", "--points", "5", "--paths", "linear"]
    assert main(["kl-curve", *args, "--out", str(tmp_path / "old")]) == 0  # keep: old name
    moved = capsys.readouterr().err.strip().splitlines()[0]
    assert moved == "pathbench kl-curve: moved to 'pathbench study kl-curve' (the old name still works)"  # keep: old name
    assert main(["study", "kl-curve", *args, "--out", str(tmp_path / "new")]) == 0
    assert "moved" not in capsys.readouterr().err
    assert (tmp_path / "old" / "kl_curve.csv").read_bytes() == (tmp_path / "new" / "kl_curve.csv").read_bytes()


def test_a_bad_value_under_study_names_the_study(tmp_path, capsys):
    rc = main(["study", "kl-curve", "--paths", "kll", "--vocab", "10", "--out", str(tmp_path / "x")])
    err = capsys.readouterr().err.strip()
    assert rc == 2 and "\n" not in err  # the known names may include a plugin's a test registered
    assert err.startswith("pathbench study kl-curve: error: unknown path 'kll'; known: euclidean, fisher_rao, ")
