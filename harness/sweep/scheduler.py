"""The sweep's dispatch loop: which unit starts when.

Units start in the order the experiment lists them, ``parallel`` at a time (SLURM: all that
are ready, as one job array per round); a new one starts as soon as one finishes, not after
a whole wave. A unit that uses another unit's trained model — a flow-map student's
``teacher: "@kl"``, a ``self:@ar`` scorer — starts only once that unit's final checkpoint is
written, whatever the order or the parallelism; if that unit fails, the user is not run. The
parent process does all the waiting: it polls the jobs (and, through pathbench.sweep.progress, their
folders) every few seconds. A SLURM job that leaves the queue without a result (``scancel``, a
lost node) is reported as failed after a grace period instead of being waited for for ever.
"""

from __future__ import annotations

import os
import time
from pathlib import Path

from pathbench.core.errors import ConfigError
from pathbench.sweep.progress import Progress, train_complete
from pathbench.sweep.slurm import VANISH_GRACE_S, queued_jobs

#: seconds between two looks at the running jobs and their folders (SLURM: a shared filesystem)
POLL_S = {"local": 2.0, "slurm": float(os.environ.get("PATHBENCH_SLURM_POLL_S", "10")), "debug": 0.0}


def dependencies(job, out_dir: Path) -> set[str]:  # job: a pathbench.sweep.dispatch.UnitJob
    """The ids of the other units whose trained model ``job`` uses: its teacher, its scorers."""
    paths = [job.train_options.get("teacher")] + [s.get("scorer_resolved", "")[len("self:"):] for s in job.runs]
    train = Path(out_dir) / "train"
    return {Path(p).name for p in paths if isinstance(p, str) and p and Path(p).parent == train} - {job.unit_id}


def vanished(uid: str, handle, queue: set[str] | None, missing_since: dict[str, float]) -> bool:
    """Whether a SLURM job that is not done has left the queue for longer than the grace period.
    Without accounting (no sacct) submitit never learns that a cancelled job ended: it would be
    waited for for ever."""
    if queue is None or str(handle.job_id) in queue or str(handle.job_id).split("_")[0] in queue:
        missing_since.pop(uid, None)
        return False
    first = missing_since.setdefault(uid, time.monotonic())
    return time.monotonic() - first > VANISH_GRACE_S


def reason(err: BaseException) -> str:
    """One line for a failed job: the exception line of the child's trace, not the log paths
    submitit appends after it."""
    text = str(err).split("You can check full logs")[0]
    lines = [line.strip() for line in text.splitlines() if line.strip() and not line.strip().startswith("---")]
    return lines[-1] if lines else type(err).__name__


def run_units(ex, kind: str, jobs: list, out_dir: Path, parallel: int, progress: Progress) -> list[str]:
    """``jobs`` are pathbench.sweep.dispatch.UnitJob (not imported here: dispatch imports this module).

    Keep ``parallel`` units in flight, in the listed order, a unit only once every unit whose
    model it uses is trained; a unit whose dependency failed is not run. Returns the failures."""
    deps = {job.unit_id: dependencies(job, out_dir) for job in jobs}
    missing_since: dict[str, float] = {}  # slurm: units whose job left the queue without a result
    steps = {job.unit_id: job.unit["train"]["steps"] for job in jobs}
    waiting, running, failed = list(jobs), {}, []
    while waiting or running:
        ready, skipped = [], False
        for job in list(waiting):
            blockers = sorted(d for d in deps[job.unit_id] if not train_complete(out_dir / "train" / d, steps.get(d, 0)))
            # a unit started in this round is in ``ready``, not yet in ``running``: still coming
            queued = {j.unit_id for j in waiting} | set(running) | {j.unit_id for j in ready}
            if blockers and not any(d in queued for d in blockers):  # nothing left will train them
                waiting.remove(job)
                skipped = True
                failed.append(f"{job.unit_id}: not run, a unit it uses did not train ({', '.join(blockers)})")
                progress.skip(job.unit_id, blockers)
            elif blockers:
                progress.waiting(job.unit_id, blockers)
            elif len(running) + len(ready) < parallel:
                waiting.remove(job)
                ready.append(job)
        if kind == "slurm" and ready:  # one job array per round; each task's callable is checkpointable
            with ex.batch():
                submitted = [ex.submit(job) for job in ready]
        else:
            submitted = [ex.submit(job) for job in ready]
        for job, handle in zip(ready, submitted):
            running[job.unit_id] = handle
            progress.start(job.unit_id)
        if waiting and not (ready or running or skipped):  # cannot happen without a dependency cycle
            raise ConfigError(f"units wait on each other: {', '.join(j.unit_id for j in waiting)}")
        reaped = False
        queue = queued_jobs() if kind == "slurm" and running else None
        for uid, handle in list(running.items()):
            error = None
            if kind != "debug" and not handle.done():  # a debug job runs when its result is asked for
                if not vanished(uid, handle, queue, missing_since):
                    continue
                error = (f"job {handle.job_id} left the SLURM queue without a result (cancelled, or lost with "
                         "its node); run the same command again to resume it")
            else:
                try:
                    handle.result()
                except Exception as err:  # noqa: BLE001 - report every failed job, keep the others
                    error = reason(err)
            del running[uid]
            reaped = True
            if error is not None:
                failed.append(f"{handle.job_id}: {error}")
            progress.finish(uid, error=error)
        progress.poll()
        if running and not reaped:
            time.sleep(POLL_S.get(kind, 2.0))
    return failed
