"""What a running sweep prints: one line per event on stderr, the same lines in ``sweep.log``.

The units run in child processes (submitit's local workers, or SLURM tasks on another
machine), so nothing here is told what they do: the dispatcher calls :meth:`Progress.poll`
every few seconds and the state is read back from the files every job writes anyway —
``train/<unit>/metrics.jsonl`` (training steps), ``train/<unit>/checkpoint.json`` (trained)
and ``runs/<run>/metrics.json`` (a run's status). A job evaluates its runs in order, so the
first incomplete run of a trained unit is the one being evaluated.

A line reads ``[elapsed] units done/total, runs done/total | event | rest ~estimate``; the
estimate is the mean wall time of the units finished in this invocation, per kind (method,
and whether it trains or only evaluates) where that kind has finished once, spread over the
units that run at a time. Units that start waiting in one round share one line. A unit's label
names its protocol only where the protocol applies (simplex paths, not dfm, sedd or ar).

Where stderr is a terminal the same state is drawn in place instead (rich): a bar over units
and runs with the elapsed time and the estimate, then one line per running unit (training
step, or which run it evaluates); the unit events (started, done, failed, waiting) print above
it. ``sweep.log`` always gets every line.
"""

from __future__ import annotations

import json
import sys
import time
from datetime import datetime
from pathlib import Path

from rich.console import Console, Group
from rich.live import Live
from rich.progress_bar import ProgressBar
from rich.table import Table
from rich.text import Text

#: seconds between two "training step" lines of one unit (a line per logged step would flood)
TRAIN_LINE_EVERY_S = 30.0


def run_complete(run_dir: Path) -> bool:
    path = run_dir / "metrics.json"
    try:
        return json.loads(path.read_text()).get("status") == "complete"
    except (OSError, ValueError):
        return False


def checkpoint_step(train_dir: Path) -> int:
    """The step of a unit's last complete checkpoint (0 when it has none): where training resumes."""
    try:
        return int(json.loads((train_dir / "checkpoint.json").read_text())["step"])
    except (OSError, ValueError, KeyError, TypeError):
        return 0


def train_complete(train_dir: Path, steps: int) -> bool:
    return (train_dir / "checkpoint.json").is_file() and checkpoint_step(train_dir) >= steps


def last_logged_step(train_dir: Path) -> int:
    """The step of the last line of ``metrics.jsonl`` (its tail only: the file grows long)."""
    try:
        with open(train_dir / "metrics.jsonl", "rb") as handle:
            handle.seek(0, 2)
            handle.seek(max(0, handle.tell() - 4096))
            lines = handle.read().decode("utf-8", "replace").splitlines()
    except OSError:
        return 0
    for line in reversed(lines):  # the last line may be half written
        try:
            return int(json.loads(line)["step"])
        except (ValueError, KeyError, TypeError):
            continue
    return 0


def duration(seconds: float) -> str:
    seconds = int(round(seconds))
    hours, rest = divmod(seconds, 3600)
    minutes, secs = divmod(rest, 60)
    if hours:
        return f"{hours}h{minutes:02d}m"
    return f"{minutes}m{secs:02d}s" if minutes else f"{secs}s"


def run_label(run) -> str:
    s = run.sampler
    parts = [s["name"], f"nfe {s['nfe']}"]
    if s["name"] == "hybrid":
        parts.append(f"t* {s['t_star']}")
    if s.get("top_k") not in (None, 1):
        parts.append(f"top-k {s['top_k']}")
    where = run.task if run.scorer is None else run.scorer  # a scorer task: which scorer
    return f"{' '.join(parts)}, {where}"


class Progress:
    """Counts, events and the estimate of one ``pathbench sweep`` invocation."""

    def __init__(self, exp, out_dir: Path, pending: list[str], parallel: int, note: str = "",
                 clock=time.monotonic, console: Console | None = None) -> None:
        self.exp, self.out, self.parallel, self.clock = exp, Path(out_dir), max(1, parallel), clock
        self.units = {u.id: u for u in exp.units}
        self.runs = {u.id: [r for r in exp.runs if r.unit.id == u.id] for u in exp.units}
        self.done_runs = {r.id for r in exp.runs if run_complete(self.out / "runs" / r.id)}
        self.pending = [uid for uid in pending if uid in self.units]
        self.done_units = {uid for uid in self.units if uid not in self.pending}
        self.trains = {uid: not train_complete(self._train(uid), self.units[uid].train["steps"])
                       for uid in self.pending}
        self.labels = self._labels()
        self.started: dict[str, float] = {}
        self.phase: dict[str, tuple] = {}      # what the last line said a running unit does
        self.said_at: dict[str, float] = {}    # when the last training line of a unit was printed
        self.said_waiting: set[str] = set()
        self.gone: set[str] = set()            # failed or not run: no longer in the estimate
        self.durations: list[tuple[tuple, float]] = []
        self.note, self.t0 = note, clock()
        self.log_path = self.out / "sweep.log"
        self.queued_waits: dict[tuple[str, ...], list[str]] = {}  # this round's new waiters, by blockers
        self.doing: dict[str, str] = {}        # what each running unit does now (the live lines)
        # a terminal gets the live view; a log (a pipe, a file, a test's capture) the event lines
        self.console = console if console is not None else (Console(stderr=True) if sys.stderr.isatty() else None)
        self.live: Live | None = None

    def _train(self, uid: str) -> Path:
        return self.out / "train" / uid

    def _labels(self) -> dict[str, str]:
        labels = {}
        for uid, unit in self.units.items():
            # dfm, sedd, ar: the protocol does not reach them
            protocol = unit.protocol_name if unit.protocol is not None and unit.protocol.applies_to_method else None
            labels[uid] = f"{unit.method} seed {unit.seed}" + (f" {protocol}" if protocol else "")
        seen = list(labels.values())
        # two students of one method (other teachers) would read alike: the id tells them apart
        return {uid: label if seen.count(label) == 1 else f"{label} [{uid[:6]}]" for uid, label in labels.items()}

    def label(self, uid: str) -> str:
        return self.labels[uid]

    # -- lines --------------------------------------------------------------------------------
    def say(self, message: str, *, live_too: bool = True) -> None:
        """One line to stderr and sweep.log; in the live view only where ``live_too`` (the
        phase lines are drawn in place there instead)."""
        if self.console is None:
            print(message, file=sys.stderr, flush=True)  # looked up per line: a test's capture replaces it
        elif live_too:
            self.console.print(message, markup=False, highlight=False, soft_wrap=True)
        try:
            with open(self.log_path, "a", encoding="utf-8") as handle:
                handle.write(f"{datetime.now().isoformat(timespec='seconds')} {message}\n")
        except OSError:  # a log that cannot be written must not stop the sweep
            pass

    def event(self, message: str, *, live_too: bool = True) -> None:
        head = (f"[{duration(self.clock() - self.t0)}] units {len(self.done_units)}/{len(self.units)}, "
                f"runs {len(self.done_runs)}/{len(self.exp.runs)}")
        self.say(f"{head} | {message} | {self.estimate()}", live_too=live_too)
        self.redraw()

    # -- the live view (a terminal only) ------------------------------------------------------
    def view(self) -> Group:
        units, runs = len(self.units), len(self.exp.runs)
        bar = Table.grid(padding=(0, 1))
        bar.add_row(Text("sweep"), ProgressBar(total=max(1, units), completed=len(self.done_units), width=30),
                    Text(f"units {len(self.done_units)}/{units}, runs {len(self.done_runs)}/{runs}, "
                         f"elapsed {duration(self.clock() - self.t0)}, {self.estimate()}"))
        lines = [Text(f"  {self.label(uid)}: {self.doing.get(uid, 'starting')}") for uid in self.started]
        return Group(bar, *lines)

    def redraw(self) -> None:
        if self.live is not None:
            self.live.update(self.view(), refresh=True)

    def begin(self) -> None:
        units, runs = len(self.units), len(self.exp.runs)
        head = f"sweep {self.exp.name}: {units} units, {runs} runs -> {self.out}"
        if not self.pending:
            self.say(f"{head}; all {units} units and {runs} runs already complete, nothing to do")
            return
        partly = sum(1 for uid in self.pending if self.trains[uid] and checkpoint_step(self._train(uid)) > 0)
        if self.done_units or self.done_runs or partly:
            state = (f"{len(self.done_units)} of {units} units already complete ({len(self.done_runs)} of "
                     f"{runs} runs), resuming" + (f"; {partly} unit(s) partly trained" if partly else ""))
        else:
            state = "starting"
        self.say(f"{head}; {state}{'; ' + self.note if self.note else ''}")
        if self.console is not None:
            self.live = Live(self.view(), console=self.console, auto_refresh=False, transient=True)
            self.live.start()

    def end(self, failed: list[str]) -> None:
        self.flush_waits()
        if self.live is not None:
            self.live.stop()
            self.live = None
        counts = (f"{len(self.done_units)}/{len(self.units)} units, {len(self.done_runs)}/{len(self.exp.runs)} "
                  f"runs complete in {duration(self.clock() - self.t0)}")
        if not self.pending:
            return
        if failed:
            self.say(f"finished with {len(failed)} failed unit(s): {counts}; run the same command again to resume")
        else:
            self.say(f"all done: {counts}")

    # -- unit events --------------------------------------------------------------------------
    def waiting(self, uid: str, blockers: list[str]) -> None:
        """Noted now, said with the round's other new waiters (:meth:`flush_waits`)."""
        if uid not in self.said_waiting:
            self.said_waiting.add(uid)
            self.queued_waits.setdefault(tuple(blockers), []).append(uid)

    def flush_waits(self) -> None:
        """One line for the units that began waiting in this round (12 'waits for ar seed N'
        lines read as one fact)."""
        groups, self.queued_waits = self.queued_waits, {}
        if not groups:
            return
        if len(groups) == 1 and len(next(iter(groups.values()))) == 1:
            [(blockers, [uid])] = groups.items()
            names = ", ".join(self.label(b) for b in blockers)
            self.event(f"{self.label(uid)}: waits for {names} to finish training (it uses that model)")
            return
        parts = [f"{', '.join(self.label(u) for u in uids)} for {', '.join(self.label(b) for b in blockers)}"
                 for blockers, uids in groups.items()]
        count = sum(len(uids) for uids in groups.values())
        self.event(f"{count} units wait for the models they use to finish training: {'; '.join(parts)}")

    def start(self, uid: str) -> None:
        self.flush_waits()
        self.started[uid] = self.clock()
        unit, runs = self.units[uid], self.runs[uid]
        todo = sum(r.id not in self.done_runs for r in runs)
        if self.trains[uid]:
            step = checkpoint_step(self._train(uid))
            what = (f"resumes training at step {step}/{unit.train['steps']}" if step
                    else f"trains {unit.train['steps']} steps") + f", then evaluates {todo} of {len(runs)} runs"
        else:
            what = f"trained; evaluates {todo} of {len(runs)} runs"
        self.phase[uid] = ("start",)
        self.said_at[uid] = self.clock()
        self.doing[uid] = what
        self.event(f"{self.label(uid)}: started, {what}")

    def finish(self, uid: str, error: str | None = None) -> None:
        self.flush_waits()
        self._look(uid, final=True)
        took = self.clock() - self.started.pop(uid, self.clock())
        self.phase.pop(uid, None)
        self.doing.pop(uid, None)
        if error is None:
            self.done_units.add(uid)
            self.durations.append((self._kind(uid), took))
            self.event(f"{self.label(uid)}: done in {duration(took)}")
        else:
            self.gone.add(uid)
            self.event(f"{self.label(uid)}: FAILED after {duration(took)}: {error}")

    def skip(self, uid: str, blockers: list[str]) -> None:
        self.flush_waits()
        self.gone.add(uid)
        names = ", ".join(self.label(b) for b in blockers)
        self.event(f"{self.label(uid)}: not run, {names} did not finish training")

    def poll(self) -> None:
        self.flush_waits()
        for uid in list(self.started):
            self._look(uid)
        self.redraw()  # the elapsed time and the running units' lines move even without an event

    def _look(self, uid: str, final: bool = False) -> None:
        """Read one running unit's files; print a line when its phase moved on."""
        runs = self.runs[uid]
        newly = [r for r in runs if r.id not in self.done_runs and run_complete(self.out / "runs" / r.id)]
        self.done_runs.update(r.id for r in newly)
        unit = self.units[uid]
        if not train_complete(self._train(uid), unit.train["steps"]):
            step = last_logged_step(self._train(uid))
            if step and not final:
                self.doing[uid] = f"training step {step}/{unit.train['steps']}"
            due = self.clock() - self.said_at.get(uid, 0.0) >= TRAIN_LINE_EVERY_S
            if step and due and self.phase.get(uid) != ("train", step) and not final:
                self.phase[uid], self.said_at[uid] = ("train", step), self.clock()
                self.event(f"{self.label(uid)}: training step {step}/{unit.train['steps']}", live_too=False)
            return
        pending = [i for i, r in enumerate(runs) if r.id not in self.done_runs]
        if final or not pending:
            return
        index = pending[0]
        if self.phase.get(uid) != ("eval", index):
            self.phase[uid] = ("eval", index)
            self.doing[uid] = f"evaluating run {index + 1} of {len(runs)} ({run_label(runs[index])})"
            self.event(f"{self.label(uid)}: {self.doing[uid]}", live_too=False)

    # -- the estimate -------------------------------------------------------------------------
    def _kind(self, uid: str) -> tuple:
        return self.units[uid].method, self.trains.get(uid, False)

    def _expected(self, uid: str) -> float:
        own = [t for kind, t in self.durations if kind == self._kind(uid)]
        pool = own or [t for _, t in self.durations]
        return sum(pool) / len(pool)

    def estimate(self) -> str:
        left = [uid for uid in self.pending if uid not in self.done_units and uid not in self.gone]
        if not left:
            return "rest 0s"
        if not self.durations:
            return "rest: estimate after the first unit"
        now = self.clock()
        work = sum(max(0.0, self._expected(uid) - (now - self.started.get(uid, now))) for uid in left)
        return f"rest ~{duration(work / min(self.parallel, len(left)))}"
