"""The README's tour, run as written but at a reduced size (fewer steps, a smaller packing, fewer
samples): its commands must keep working, and the README must give the tour's measured time."""

import json
import re
import shlex
from pathlib import Path

from pathbench.cli import main
from tests.conftest import SMALL

README = (Path(__file__).parents[1] / "README.md").read_text()
#: what the test shrinks: flag or override -> the reduced value
REDUCED = {"--steps": "3", "--nfe": "2", "--n": "2", "data.seq_len": str(SMALL["seq_len"]),
           "data.vocab_size": str(SMALL["vocab_size"]), "batch_size": "8"}


def tour_commands() -> list[list[str]]:
    rest = README.split("A 2-minute tour", 1)[1].split("```bash\n", 1)[1]
    return [shlex.split(line) for line in rest.split("```", 1)[0].splitlines() if line.startswith("pathbench ")]


def reduced(argv: list[str]) -> list[str]:
    out = []
    for i, arg in enumerate(argv):
        key = arg.split("=", 1)[0]
        if "=" in arg and key in REDUCED:
            out.append(f"{key}={REDUCED[key]}")
        elif i and argv[i - 1] in REDUCED:
            out.append(REDUCED[argv[i - 1]])
        else:
            out.append(arg)
    return out


def test_the_readme_gives_the_tours_measured_time_and_how_to_get_pathbench_on_path():
    intro = README.split("A 2-minute tour", 1)[1].split("```bash", 1)[0]
    seconds = re.search(r"\*\*(\d+) s\*\*", intro)
    assert seconds and int(seconds.group(1)) <= 120, "the tour must be measured and take at most 2 minutes"
    assert "source .venv/bin/activate" in intro


def test_the_tour_runs_at_a_reduced_size(tmp_path, monkeypatch, data_cache, bbc_small, capsys):
    commands = tour_commands()
    assert [argv[:2] for argv in commands] == [["pathbench", "train"], ["pathbench", "sample"]]
    monkeypatch.chdir(tmp_path)
    for argv in commands:
        extra = [f"data.cache_dir={data_cache}", "progress=false"] if argv[1] == "train" else []
        assert main(reduced(argv)[1:] + extra) == 0, capsys.readouterr().err[-2000:]
    samples = [json.loads(line) for line in (tmp_path / "runs" / "kl" / "samples.jsonl").read_text().splitlines()]
    assert len(samples) == 2 and all(len(s["ids"]) == SMALL["seq_len"] for s in samples)
    assert json.loads((tmp_path / "runs" / "kl" / "checkpoint.json").read_text())["step"] == 3
