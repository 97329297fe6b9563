"""The report's warning when model-written code ran without some sandbox defence.

Every code task's metrics.json records ``sandbox: {isolation, absent_defences}`` as a fact of
the machine it ran on (:func:`pathbench.tasks.sandbox.absent_defences`; docs/sandbox.md). When
any run lacked a defence, the report opens with a warning that names the defences and the
runs, above the code task's verdict; when none did, there is no such section, and a report
made under bubblewrap keeps its bytes.
"""

from __future__ import annotations

from pathbench.report.section_types import ReportInput, Section

TITLE = "Warning: model-written code ran without some sandbox defences"


def absent_by_runs(records: list[dict]) -> list[tuple[str, tuple[str, ...], list[str], list[str]]]:
    """(isolation, absent defences, tasks, run ids) per distinct lack, in the order first met."""
    groups: dict[tuple[str, tuple[str, ...]], tuple[set[str], list[str]]] = {}
    for record in records:
        sandbox = (record.get("metrics") or {}).get("sandbox")
        if not isinstance(sandbox, dict) or not sandbox.get("absent_defences"):
            continue
        key = (str(sandbox.get("isolation") or "unknown"), tuple(str(d) for d in sandbox["absent_defences"]))
        tasks, runs = groups.setdefault(key, (set(), []))
        tasks.add(str(record.get("task")))
        runs.append(str(record.get("run_id")))
    return [(isolation, absent, sorted(tasks), sorted(runs)) for (isolation, absent), (tasks, runs) in groups.items()]


def sandbox_warnings(data: ReportInput) -> list[Section]:
    found = absent_by_runs(data.records)
    if not found:
        return []
    notes = [f"{len(runs)} run(s) of {', '.join(tasks)} ran the model's code under isolation '{isolation}' "
             f"without: {'; '.join(absent)}. Runs: {', '.join(runs)}."
             for isolation, absent, tasks, runs in found]
    return [Section(TITLE, "Each line names what the sandbox lacked in those runs (their metrics.json, "
                    "sandbox.absent_defences; the threat model is docs/sandbox.md). A candidate that set out to "
                    "could use what was missing, so these runs' Pass@k holds only for code that did not try.",
                    kind="warning", notes=notes)]
