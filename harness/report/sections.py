"""What a report shows, in order: a list of section builders, each a function of the gathered
results that returns its sections. ``report.html`` and ``leaderboard.md`` render the same list
(:mod:`pathbench.report.html`, :func:`markdown`), so the Markdown mirrors the page.

The order is the reading order: a warning when model-written code ran without some sandbox
defence (:mod:`pathbench.report.sandbox_section`; absent otherwise), the verdict first — the matched-entropy verdict under the
experiment's primary scorer for an unconditional sweep, the per-metric ranking of its own task
for a conditional or code sweep — then the tables, the plots (a plot whose every line would be
one point is said in words instead), the problems, and the metric protocol folded away. To add
a section (a tuning summary, a quality–speed frontier), write a builder and insert it into
:data:`SECTION_BUILDERS` where it should appear; a builder that has nothing to show returns [].
"""

from __future__ import annotations

import json
from collections.abc import Callable

from pathbench.report.frontier_section import quality_and_speed
from pathbench.report.html import markdown_table
from pathbench.report.plots import make_plots, single_point_notes
from pathbench.report.sandbox_section import sandbox_warnings
from pathbench.report.section_types import Figure, ReportInput, Section
from pathbench.report.task_verdict import task_verdict
from pathbench.report.training_sections import learning, paper_question_first, tuning
from pathbench.report.verdict_tables import learned_by_method, learned_for, scorer_rank, verdict_sections

#: protocol keys whose text depends on the machine (which optional packages it has), not on the
#: result: left out of the shown protocol so that a report's bytes do not vary with them (each
#: run's metrics.json records the fact)
MACHINE_DEPENDENT = {"sandbox": ("kind", "isolation_used")}


def unconditional_verdicts(data: ReportInput) -> list[Section]:
    found = verdict_sections(data.records, data.scorer_order)
    no_unconditional = not any("gen_ppl" in (r.get("metrics") or {}) for r in data.records)
    if no_unconditional and any(task_verdict(agg, metrics) is not None for agg, metrics in data.task_aggs.values()):
        return []  # a conditional or code sweep: its own verdict comes first, not a non-verdict
    return [Section(title, text, table, kind="verdict") for title, table, text in found]


def task_verdicts(data: ReportInput) -> list[Section]:
    out = []
    learned = learned_by_method(data.records)  # a model that did not learn is named in its row
    for title, (agg, metrics) in data.task_aggs.items():
        found = task_verdict(agg, metrics)
        if found is None:
            continue
        table, words = found
        if "method" in table:
            table = table.assign(learned=[learned_for(learned, str(m)) for m in table["method"]])
        what = "problems" if title.startswith("Code") else "prompts"
        out.append(Section(f"Verdict: {title}", f"Per metric, the methods ranked: cells value [95 % interval over "
                           f"{what}] (#rank); a rank is 1 + the methods whose interval lies wholly above, so methods "
                           f"whose intervals overlap are within noise and may share one. {words}", table,
                           kind="verdict"))
    return out


def leaderboards(data: ReportInput) -> list[Section]:
    rank = scorer_rank(data.scorer_order)

    def order(title: str) -> tuple:
        scorer = title.split("(scorer ", 1)[1].rstrip(")") if "(scorer " in title else None
        return (0, rank(scorer)) if scorer is not None and title.startswith("Unconditional") else (1, ())
    titles = sorted(data.tables, key=order)
    return [Section(t, table=data.tables[t], caption=data.captions[t]) for t in titles]


def plots(data: ReportInput) -> list[Section]:
    made = make_plots(data.agg, data.ref, data.kl, data.out_dir)
    notes = single_point_notes(data.agg) if not data.agg.empty else []
    if not made and not notes:
        return []
    data.extra["plots"] = {name: path for name, (path, _, _) in made.items()}
    return [Section("Plots", kind="plots", figures=[Figure(*made[name]) for name in made], notes=notes)]


def problems(data: ReportInput) -> list[Section]:
    text = "none" if not data.problems else ""
    return [Section("Problems", text, kind="problems", notes=list(data.problems))]


def shown_protocol(protocol: dict) -> dict:
    """A run's metric protocol without its machine-dependent keys (:data:`MACHINE_DEPENDENT`)."""
    out = dict(protocol)
    for key, dropped in MACHINE_DEPENDENT.items():
        if isinstance(out.get(key), dict):
            out[key] = {k: v for k, v in out[key].items() if k not in dropped}
    return out


def metric_protocol(data: ReportInput) -> list[Section]:
    seen: dict[str, tuple[set, int]] = {}
    for r in data.records:
        text = json.dumps(shown_protocol(r.get("protocol") or {}), sort_keys=True, indent=2, default=str)
        tasks, count = seen.get(text, (set(), 0))
        seen[text] = (tasks | {str(r.get("task"))}, count + 1)
    if not seen:
        return []
    folded = [(f"tasks {', '.join(sorted(tasks))} ({count} run(s))", text) for text, (tasks, count) in seen.items()]
    return [Section("Metric protocol", "How every number above was computed, as each run recorded it (the sandbox "
                    "a code run used is in its metrics.json).", kind="protocol", folded=folded)]


SECTION_BUILDERS: list[Callable[[ReportInput], list[Section]]] = [
    sandbox_warnings, paper_question_first, unconditional_verdicts, task_verdicts, learning, tuning, quality_and_speed, leaderboards,
    plots, problems, metric_protocol]

__all__ = ["SECTION_BUILDERS", "Figure", "ReportInput", "Section", "build_sections", "markdown"]


def build_sections(data: ReportInput) -> list[Section]:
    return [section for builder in SECTION_BUILDERS for section in builder(data)]


def markdown(title: str, summary: str, legend: str, sections: list[Section]) -> str:
    """``leaderboard.md``: the same sections as the page, in the same order."""
    md = [f"# {title}\n", summary + "\n", legend + "\n"]
    for s in sections:
        md.append(f"## {s.title}\n")
        md += [part.strip() + "\n" for part in (s.text, s.caption) if part]
        if s.table is not None:
            md.append(markdown_table(s.table))
        md += [f"![{f.caption}]({f.path.name})\n" for f in s.figures]
        md += [f"- {note}\n" if s.kind in ("problems", "warning") else f"{note}\n" for note in s.notes]
        md += [f"<details><summary>{summary}</summary>\n\n```json\n{text}\n```\n</details>\n"
               for summary, text in s.folded]
    return "\n".join(md)
