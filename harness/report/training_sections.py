"""Report sections about how the models were trained: the paper's question (answered only from
models that learned), the learning check, and the tuning the recipes came from
(:mod:`pathbench.report.learning` computes them; :mod:`pathbench.report.sections` lists the builders)."""

from __future__ import annotations

from pathlib import Path

from pathbench.report.learning import (
    bayes_curves,
    held_out_plot,
    learning_summary,
    learning_table,
    paper_question,
    tuning_section,
)
from pathbench.report.section_types import Figure, ReportInput, Section
from pathbench.report.verdict_tables import primary_verdicts


def paper_question_first(data: ReportInput) -> list[Section]:
    """The report's first screen: the paper's question and its answer, and whether every model learned."""
    summary = learning_summary(data.records)
    found = primary_verdicts(data.records, data.scorer_order)
    if found is None:  # a conditional or code sweep: its own verdict opens the page, a 'learned' column in it
        return []
    scorer, verdicts = found
    _, failed = learning_table(data.records)
    answer = paper_question(verdicts, failed).rstrip() + f" (scorer: {scorer}.)\n"
    return [Section("The paper's question: KL vs Fisher-Rao vs linear at matched entropy", answer + "\n" + summary,
                    kind="verdict")]


def learning(data: ReportInput) -> list[Section]:
    table, _ = learning_table(data.records)
    if table is None:
        return []
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    figures = []
    png = held_out_plot(data.records, plt, bayes_curves(data.extra.get("denoiser_gap")))
    if png is not None:
        path = data.out_dir / "held_out_ce.png"
        path.write_bytes(png)
        figures.append(Figure(path, png, "held-out cross-entropy against t per method (mean over seeds), the "
                                         "data's marginal dashed" + (", the Bayes-optimal denoiser dotted"
                                                                     if data.extra.get("denoiser_gap") else "")))
    return [Section("Did every model learn?", "Each trained model's learning check: its best held-out cross-entropy "
                    "over t against the cross-entropy of the data's marginal (the unigram); 'learned' = at least "
                    "0.1 nats below it. A model that did not learn says nothing about its method.", table,
                    figures=figures)]


def tuning(data: ReportInput) -> list[Section]:
    out = []
    for folder in data.extra.get("tuning", []):
        text = tuning_section(Path(folder))
        if text is None:
            continue
        figures = []
        png_path = Path(folder) / "tuning.png"
        if png_path.is_file():
            png = png_path.read_bytes()
            target = data.out_dir / f"tuning_{Path(folder).name}.png"
            target.write_bytes(png)
            figures.append(Figure(target, png, "held-out loss against lr, per method and recipe (the sensitivity)"))
        out.append(Section(f"How each method was tuned ({Path(folder).name})", text, figures=figures))
    return out
