"""A sweep's progress: waiting lines collapsed, protocol labels only where they apply, and in a
terminal a bar with one line per running unit drawn in place (every line still in sweep.log)."""

import io

from rich.console import Console

from pathbench.sweep import scheduler
from pathbench.sweep.dispatch import jobs_for
from pathbench.sweep.experiment import expand
from pathbench.sweep.progress import Progress
from tests.harness.sweep.test_sweep import FakeExecutor

# every method is scored by the sweep's own ar model of its seed: they all wait for the ar units
RAW = {"methods": ["ar", "kl", "linear", "dfm"], "seeds": [0, 1], "samplers": [{"name": "basic", "nfe": 4}],
       "tasks": [{"name": "unconditional", "scorers": ["self:@ar"]}]}


def run(tmp_path, console=None, polls=None):
    exp, out = expand(RAW), tmp_path / "out"
    out.mkdir()  # dispatch makes it before the first line
    jobs = jobs_for(exp, out, threads=1)
    ex = FakeExecutor(out, polls or {"ar": 3, "kl": 1, "linear": 1, "dfm": 1})
    progress = Progress(exp, out, [job.unit_id for job in jobs], 2, console=console)
    scheduler.POLL_S["fake"] = 0.0
    progress.begin()
    failed = scheduler.run_units(ex, "fake", jobs, out, 2, progress)
    progress.end(failed)
    return out, failed


def test_units_that_start_waiting_together_share_one_line_and_baselines_carry_no_protocol(tmp_path, capsys):
    out, failed = run(tmp_path)
    assert not failed
    lines = capsys.readouterr().err.strip().splitlines()
    waits = [line for line in lines if " | " in line and "wait" in line.split(" | ")[1]]
    assert len(waits) == 1, waits
    assert ("6 units wait for the models they use to finish training: kl seed 0 kl-flow, linear seed 0 kl-flow, "
            "dfm seed 0 for ar seed 0; kl seed 1 kl-flow, linear seed 1 kl-flow, dfm seed 1 for ar seed 1") in waits[0]
    started = [line.split("| ")[1].split(":")[0] for line in lines if ": started, " in line]
    assert started[:2] == ["ar seed 0", "ar seed 1"]  # the protocol does not apply to ar or dfm: no label
    assert "dfm seed 0" in started and "kl seed 0 kl-flow" in started
    logged = [line.split(" ", 1)[1] for line in (out / "sweep.log").read_text().splitlines()]
    assert logged == lines


def test_a_terminal_gets_a_live_bar_and_one_line_per_running_unit(tmp_path, capsys):
    screen = io.StringIO()
    console = Console(file=screen, force_terminal=True, width=160, color_system=None)
    out, failed = run(tmp_path, console=console, polls={"ar": 4, "kl": 2, "linear": 2, "dfm": 2})
    assert not failed and capsys.readouterr().err == ""  # nothing printed outside the console
    drawn = screen.getvalue()
    assert "sweep" in drawn and "units 0/8, runs 0/8" in drawn and "units 8/8, runs 8/8" in drawn
    assert "━" in drawn  # the bar
    assert "  ar seed 0: trains" in drawn and "  ar seed 1: trains" in drawn  # one line per running unit
    assert "ar seed 0: done in" in drawn and "6 units wait for" in drawn  # the events print above it
    assert "\x1b[" in drawn  # redrawn in place (cursor movement), not appended
    logged = (out / "sweep.log").read_text()
    assert "ar seed 0: started" in logged and "all done: 8/8 units" in logged
