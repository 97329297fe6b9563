"""``pathbench.report.leaderboard``: metrics.json files -> one table per scorer / task (seeds pooled), plots, leaderboard files."""

import html
import json
import shutil
from pathlib import Path

import pytest

from pathbench.core.errors import ConfigError
from pathbench.report.leaderboard import collect, markdown_table, tables, write_report

FIXTURE = Path(__file__).parents[2] / "fixtures" / "results"

BOARD = "Unconditional leaderboard (scorer smollm2)"
LEADERBOARD = """\
| method    | sampler   | NFE |   t* | top-k | seeds |                 gen PPL |              entropy |
|:----------|:----------|----:|-----:|------:|------:|------------------------:|---------------------:|
| real text | -         |   - |    - |     - |     - |                   35.20 |                4.520 |
| kl        | hybrid    |  64 | 0.28 |     5 |     2 | 200.20 [190.10, 210.30] | 4.300 [4.290, 4.310] |
| kl        | hybrid    | 128 | 0.28 |     5 |     1 |                  150.50 |                4.350 |
| linear    | ancestral |  64 |    - |     - |     1 |                  320.75 |                4.410 |
| linear    | ancestral | 128 |    - |     - |     1 |                  250.00 |                4.450 |
"""


@pytest.fixture(scope="module")
def report(tmp_path_factory):
    out = tmp_path_factory.mktemp("report")
    return write_report(FIXTURE, out, title="fixture <report>")


def test_collect_rows_and_problems():
    df, problems = collect(FIXTURE)
    assert len(df) == 6 and df["run_id"].is_unique
    assert sorted(df["path"]) == sorted(f"runs/{name}/metrics.json" for name in (
        "kl-headline-64-s0", "kl-hybrid-128-s0", "kl-hybrid-64-s0", "kl-hybrid-64-s1",
        "linear-ancestral-128-s0", "linear-ancestral-64-s0"))
    for column in ("opt.beta", "sampler", "nfe", "t_star", "top_k", "gen_ppl", "entropy", "bleu_top4",
                   "ref_gen_ppl", "ref_entropy", "train_val_loss", "scorer", "seed", "run_id"):
        assert column in df.columns, column
    columns = list(df.columns)
    assert columns.index("entropy") == columns.index("gen_ppl") + 1
    assert columns.index("ref_entropy") == columns.index("ref_gen_ppl") + 1
    assert len(problems) == 2
    corrupt, partial = sorted(problems, key=lambda p: "partial" in p)
    assert corrupt.startswith("runs/linear-ancestral-256-corrupt/metrics.json: not valid JSON")
    assert partial.startswith("runs/kl-hybrid-256-partial/metrics.json: status is 'running'")
    assert not df["path"].str.contains("corrupt|partial").any()


def test_seed_average_and_pinned_leaderboard():
    """Without per-sample data (old results) two seeds are one row: mean [lowest, highest] over them
    (the one interval notation of the report)."""
    df, _ = collect(FIXTURE)
    seeds = df[(df["method"] == "kl") & (df["nfe"] == 64) & (df["task"] == "unconditional")]
    assert sorted(seeds["seed"]) == [0, 1]
    found = tables(df)
    agg = found["_agg"]
    row = agg[(agg["method"] == "kl") & (agg["nfe"] == 64)].iloc[0]
    assert row["seeds"] == 2
    assert row["gen_ppl"] == pytest.approx(seeds["gen_ppl"].mean()) == pytest.approx((210.3 + 190.1) / 2)
    assert row["entropy"] == pytest.approx((4.31 + 4.29) / 2)
    assert markdown_table(found[BOARD]) == LEADERBOARD
    assert "several seeds without per-sample data to pool: mean [lowest, highest] over the seeds" in \
        found["_captions"][BOARD]
    seq = found["Seq2seq (headline_lead)"]
    assert seq[["method", "seeds"]].iloc[0].tolist() == ["kl", "1"]
    assert seq[["BLEU Top-1", "BLEU Avg", "ROUGE-L Top-4"]].iloc[0].tolist() == ["11.75", "10.50", "0.402"]
    # one table per scorer / task, nothing repeated: the old NFE pivot, inference-scheme and t* tables are plots
    assert [t for t in found if not t.startswith("_")] == [BOARD, "Seq2seq (headline_lead)"]


def test_write_report_files(report):
    out = report["out_dir"]
    assert report["runs"] == 6 and report["problems"] == 2
    # every hybrid setting has the one t* 0.28: no t* plot of single points, said in words instead
    assert set(report["plots"]) == {"ppl_vs_nfe", "ppl_entropy_frontier", "kl_curves"}
    for path in [report["leaderboard_md"], report["leaderboard_csv"], report["report_html"], *report["plots"].values()]:
        assert Path(path).is_file() and Path(path).stat().st_size > 0
    assert not list(out.glob(".*.tmp"))
    md = (out / "leaderboard.md").read_text()
    assert LEADERBOARD in md and "runs/kl-hybrid-256-partial/metrics.json" in md
    assert (out / "leaderboard.csv").read_text().count("\n") == 7  # header + 6 runs
    page = (out / "report.html").read_text()
    assert page.count("data:image/png;base64,") == 3
    assert "No t* plot: each hybrid setting was sampled at one t* only (0.28" in md and "No t* plot" in page
    assert 'src="http' not in page and "<link" not in page and "<script src" not in page and "http" not in page
    assert page.count("<script>") == 1 and 'class="sortable settings"' in page  # the inline sort script
    assert "fixture &lt;report&gt;" in page
    assert "runs/linear-ancestral-256-corrupt/metrics.json" in page
    assert "exp(total NLL / scored tokens)" in page and "sacrebleu" in page  # the unique protocols
    assert "200.20 [190.10, 210.30]" in page and "±" not in page + md  # one interval notation


def test_code_rows_and_empty_pathbench_folder(tmp_path):
    run = tmp_path / "runs" / "x"
    run.mkdir(parents=True)
    record = json.loads((FIXTURE / "runs" / "kl-headline-64-s0" / "metrics.json").read_text())
    record.update(task="mbpp_infill", run_id="c0de", metrics={"pass@1": 0.25, "compiles@1": 0.75, "examples": 4})
    (run / "metrics.json").write_text(json.dumps(record))
    found = tables(collect(tmp_path)[0])
    assert found["Code infilling (mbpp_infill)"][["Pass@1", "Compiles@1"]].iloc[0].tolist() == ["0.250", "0.750"]
    assert not any(t.startswith("Unconditional") for t in found)
    result = write_report(tmp_path, tmp_path / "out")
    assert result["runs"] == 1 and result["plots"] == {}
    (run / "metrics.json").unlink()
    empty = write_report(tmp_path, tmp_path / "out2")  # a sweep folder with no finished run yet
    assert empty["runs"] == 0 and empty["tables"] == []


def test_not_a_results_folder(tmp_path):
    (tmp_path / "notes.txt").write_text("hello")
    with pytest.raises(ConfigError, match="is not a pathbench results folder: no metrics.json under it"):
        collect(tmp_path)
    with pytest.raises(ConfigError, match="not a pathbench results folder"):
        write_report(tmp_path / "missing", tmp_path / "out")


def test_missing_keys_and_duplicates_are_problems(tmp_path):
    shutil.copytree(FIXTURE / "runs" / "kl-hybrid-64-s0", tmp_path / "runs" / "a")
    shutil.copytree(FIXTURE / "runs" / "kl-hybrid-64-s0", tmp_path / "runs" / "b")
    bad = tmp_path / "runs" / "c"
    bad.mkdir()
    (bad / "metrics.json").write_text(json.dumps({"status": "complete", "method": "kl", "metrics": {}}))
    df, problems = collect(tmp_path)
    assert len(df) == 1
    assert problems == ["runs/b/metrics.json: duplicate run_id a1b2c3d4e5f6 (also in runs/a/metrics.json)",
                        "runs/c/metrics.json: missing required key(s) run_id, task, sampler"]


def test_few_step_plot_and_every_nfe_once_in_the_table(tmp_path):
    """Runs at NFE 1..16 get the few-step plot; their numbers stand once, in the scorer's table."""
    base = json.loads((FIXTURE / "runs" / "linear-ancestral-64-s0" / "metrics.json").read_text())
    for method, sampler in (("flowmap", "flowmap"), ("kl", "basic")):
        for nfe in (1, 2, 4, 8, 16, 64):
            run = tmp_path / "runs" / f"{method}-{nfe}"
            run.mkdir(parents=True)
            record = {**base, "method": method, "run_id": f"{method}{nfe}",
                      "sampler": {**base["sampler"], "name": sampler, "nfe": nfe},
                      "metrics": {**base["metrics"], "gen_ppl": 1000.0 / nfe, "entropy": 3.0 + nfe / 100}}
            (run / "metrics.json").write_text(json.dumps(record))
    result = write_report(tmp_path, tmp_path / "out")
    assert result["tables"] == [BOARD] and "few_step" in result["plots"]
    board = (tmp_path / "out" / "leaderboard.md").read_text()
    assert board.count("| flowmap   | flowmap |   1 |") == 1 and board.count("1000.00") == 2  # flowmap, kl
    assert "t*" not in board.split(f"## {BOARD}", 1)[1]  # neither sampler switches at t*


def test_two_students_of_one_method_are_two_models_named_by_their_teachers(tmp_path):
    """flowmap distilled from kl and from euclidean: two rows and two checks, never two seeds of one."""
    base = json.loads((FIXTURE / "runs" / "linear-ancestral-64-s0" / "metrics.json").read_text())
    for path in ("kl", "euclidean"):
        run = tmp_path / "runs" / f"flowmap-{path}"
        run.mkdir(parents=True)
        record = {**base, "method": "flowmap", "run_id": f"fm-{path}", "checkpoint": f"train/fm-{path}",
                  "method_options": {"teacher": f"train/{path}", "path": path},
                  "sampler": {**base["sampler"], "name": "flowmap", "nfe": 2},
                  "learning_check": {"kind": "denoiser", "learned": path == "kl", "best_ce": 1.0 if path == "kl" else 7.0,
                                     "best_t": 0.5, "marginal_ce": 7.0, "margin": 0.1, "times": [0.5],
                                     "held_out_ce": [1.0 if path == "kl" else 7.0], "tokens": 64, "reason": "",
                                     "verdict": ""}}
        (run / "metrics.json").write_text(json.dumps(record))
    df, problems = collect(tmp_path)
    assert problems == [] and sorted(df["method"]) == ["flowmap@euclidean", "flowmap@kl"]
    write_report(tmp_path, tmp_path / "out")
    board = (tmp_path / "out" / "leaderboard.md").read_text()
    checks = {line.split("|")[1].strip(): line.split("|")[-2].strip() for line in board.splitlines()
              if line.startswith("| flowmap@") and "at t = 0.500" in line}  # the learning table: one row a model
    assert checks == {"flowmap@euclidean": "NO: did not learn to read x_t", "flowmap@kl": "yes"}


def test_plot_lines_keep_runs_apart_that_differ_only_in_an_option_or_final():
    """Two flow-map students (teacher kl vs euclidean) at two final steps are four lines, not one
    zig-zag; a setting is named in a label only for the method where it varies."""
    import pandas as pd

    from pathbench.report.plots import SETTING_KEYS, _lines

    rows = [{"method": "flowmap", "sampler": "flowmap", "nfe": nfe, "final": final, "opt.path": path,
             "opt.teacher": f"runs/a/very/long/run/folder/{path}"}
            for path in ("kl", "euclidean") for final in ("argmax", "sample") for nfe in (1, 2, 4)]
    rows += [{"method": "kl", "sampler": "basic", "nfe": nfe, "final": "argmax"} for nfe in (1, 2, 4)]
    lines = dict(_lines(pd.DataFrame(rows), ["method", *SETTING_KEYS]))
    assert sorted(lines) == ["flowmap, flowmap, final=argmax, path=euclidean", "flowmap, flowmap, final=argmax, path=kl",
                             "flowmap, flowmap, final=sample, path=euclidean", "flowmap, flowmap, final=sample, path=kl",
                             "kl, basic"]
    assert all(len(rows) == 3 and rows["nfe"].is_unique for rows in lines.values())


def _run_with_samples(root, run_id, method, sampler, entropy, ppl, seed):
    import numpy as np

    rng = np.random.default_rng(seed)
    tokens = [60] * 24
    nll = list(np.log(ppl) * 60 * (1 + 0.05 * rng.standard_normal(24)))
    ent = list(entropy + 0.05 * rng.standard_normal(24))
    record = {"run_id": run_id, "method": method, "task": "unconditional", "status": "complete",
              "scorer": "smollm2", "seed": 0, "sampler": sampler,
              "metrics": {"gen_ppl": ppl, "entropy": entropy,
                          "per_sample": {"nll_sum": nll, "tokens": tokens, "entropy": ent}},
              "reference": {"gen_ppl": 36.0, "entropy": 3.5}}
    (root / "runs" / run_id).mkdir(parents=True)
    (root / "runs" / run_id / "metrics.json").write_text(json.dumps(record))


def test_the_report_opens_with_the_matched_entropy_verdict(tmp_path):
    for i, (method, h, ppl) in enumerate([("kl", 3.0, 100), ("kl", 4.0, 300), ("linear", 3.0, 400),
                                          ("linear", 4.0, 1200), ("euclidean", 0.5, 20)]):
        _run_with_samples(tmp_path / "res", f"r{i}", method, {"name": "sampling", "nfe": 16 + i, "top_k": 1},
                          h, ppl, i)
    result = write_report(tmp_path / "res", tmp_path / "out")
    md = (tmp_path / "out" / "leaderboard.md").read_text()
    sections = [line for line in md.splitlines() if line.startswith("## ")]
    # first the paper's question, answered from the verdict below (here: no fisher_rao run to compare)
    assert sections[0] == "## The paper's question: KL vs Fisher-Rao vs linear at matched entropy"
    assert "cannot answer it: it has no fisher_rao run" in md.split(sections[1])[0]
    assert sections[1] == "## Verdict: gen-PPL at matched entropy (smollm2)"
    assert sections[2].startswith("## Pairwise")
    verdict = md.split("## Verdict")[1].split("## Pairwise")[0]
    rows = [line for line in verdict.splitlines() if line.startswith("| ") and "method" not in line]
    assert [r.split("|")[2].strip() for r in rows] == ["kl", "linear", "euclidean"]  # rank order
    assert "not reached" in rows[2] and "173." in rows[0]  # √(100·300) at H* = 3.5
    assert "No two methods that reach the target are within noise" in verdict
    assert result["verdict"][0].startswith("The paper's question") and result["verdict"][1].startswith("Verdict")
    html = (tmp_path / "out" / "report.html").read_text()
    assert html.index("Verdict: gen-PPL at matched entropy") < html.index("Unconditional leaderboard")
    assert html.index('<table class="sortable verdict">') < html.index('<table class="sortable settings">')


def test_results_without_per_sample_data_say_there_is_no_verdict(report):
    md = report["leaderboard_md"].read_text()
    assert md.split("\n## ")[1].startswith("Verdict\n\nNo verdict: no unconditional run here carries per-sample data")


def test_a_report_never_names_an_absolute_path(tmp_path, monkeypatch):
    src = tmp_path / "elsewhere" / "res"
    shutil.copytree(FIXTURE, src)
    monkeypatch.chdir(tmp_path)
    write_report(src.resolve(), tmp_path / "out")
    md = (tmp_path / "out" / "leaderboard.md").read_text()
    assert "from `elsewhere/res`" in md and str(tmp_path) not in md
    (tmp_path / "other").mkdir()
    monkeypatch.chdir(tmp_path / "other")  # the results lie outside the working directory
    write_report(src.resolve(), tmp_path / "out2")
    md = (tmp_path / "out2" / "leaderboard.md").read_text()
    assert "from `res`" in md and str(tmp_path) not in md


# ----------------------------------------------------------------------------- seeds, intervals, plots

REF_INTERVAL = "percentile bootstrap over samples, 2000 resamples, seed 0, 95 %"
SETTINGS = [("kl", {"name": "hybrid", "nfe": 16, "t_star": 0.1, "top_k": 1}, 3.0, 100.0),
            ("kl", {"name": "hybrid", "nfe": 16, "t_star": 0.28, "top_k": 1}, 3.4, 200.0),
            ("kl", {"name": "basic", "nfe": 16, "t_star": 0.28, "top_k": 1}, 4.0, 300.0),
            ("linear", {"name": "sampling", "nfe": 16, "t_star": 0.28, "top_k": 1}, 3.0, 400.0),
            ("linear", {"name": "basic", "nfe": 32, "t_star": 0.28, "top_k": 1}, 4.0, 1200.0),
            ("dfm", {"name": "euler", "nfe": 16, "t_star": 0.28, "top_k": None}, 3.6, 900.0)]


def _samples(ppl, entropy, seed, n=12):
    import numpy as np

    rng = np.random.default_rng(seed)
    return {"nll_sum": list(np.log(ppl) * 60 * (1 + 0.05 * rng.standard_normal(n))), "tokens": [60] * n,
            "entropy": list(entropy + 0.05 * rng.standard_normal(n))}


def write_runs(root, seeds=(0, 1, 2), scorers=("smollm2", "self:@ar")):
    """Run folders of a small sweep: six unconditional settings x seeds x scorers with per-sample
    data and a reference row, plus a seq2seq and a code task whose metrics carry ``*_ci95``."""
    import numpy as np

    def write(record):
        (root / "runs" / record["run_id"]).mkdir(parents=True)
        (root / "runs" / record["run_id"] / "metrics.json").write_text(json.dumps(record))

    ref = {"gen_ppl": 36.0, "entropy": 3.5, "gen_ppl_ci95": [30.0, 42.0], "entropy_ci95": [3.4, 3.6],
           "interval": REF_INTERVAL, "per_sample": _samples(36.0, 3.5, 99)}
    for i, (method, sampler, entropy, ppl) in enumerate(SETTINGS):
        for seed in seeds:
            for k, scorer in enumerate(scorers):
                per = _samples(ppl * (1 + 0.1 * seed + 0.5 * k), entropy + 0.05 * seed, 10 * i + seed + 100 * k)
                write({"run_id": f"u{i}-s{seed}-{scorer[:4]}", "method": method, "task": "unconditional",
                       "status": "complete", "scorer": scorer, "seed": seed, "sampler": sampler,
                       "metrics": {"gen_ppl": float(np.exp(sum(per["nll_sum"]) / sum(per["tokens"]))),
                                   "entropy": float(np.mean(per["entropy"])), "per_sample": per},
                       "reference": ref})
    for method in ("kl", "linear"):
        write({"run_id": f"h-{method}", "method": method, "task": "headline_lead", "status": "complete",
               "scorer": None, "seed": 0, "sampler": {"name": "hybrid", "nfe": 16, "t_star": 0.28, "top_k": 1},
               "metrics": {"bleu_top1": 11.5, "bleu_top1_ci95": [9.0, 14.25], "bleu_avg": 10.0,
                           "bleu_avg_ci95": [8.5, 12.0], "rougeL_top1": 0.3, "rougeL_top1_ci95": [0.25, 0.35],
                           "bertscore_f1_top1": 0.81, "bertscore_f1_top1_ci95": [0.8, 0.82], "candidates": 4,
                           "interval": REF_INTERVAL, "per_example": {"bleu": [1.0, 2.0, 3.0]}}})
        write({"run_id": f"c-{method}", "method": method, "task": "humaneval_infill", "status": "complete",
               "scorer": None, "seed": 0, "sampler": {"name": "basic", "nfe": 16, "t_star": 0.28, "top_k": 1},
               "metrics": {"pass@1": 0.25, "pass@1_ci95": [0.1, 0.4], "compiles@1": 0.75,
                           "compiles@1_ci95": [0.6, 0.9], "per_example": {"passed": [1, 0]}}})
    return root


@pytest.fixture(scope="module")
def sweep(tmp_path_factory):
    root = write_runs(tmp_path_factory.mktemp("sweep"))
    return root, write_report(root, root / "out", title="sweep")


def _section(md, title):
    return md.split(f"## {title}\n", 1)[1].split("\n## ", 1)[0]


def _rows(section):
    lines = [line for line in section.splitlines() if line.startswith("| ")]
    head = [c.strip() for c in lines[0].strip("|").split("|")]
    return [dict(zip(head, (c.strip() for c in line.strip("|").split("|")))) for line in lines[1:]]


def test_seeds_are_one_row_pooled_with_the_two_stage_interval(sweep):
    from pathbench.core import stats

    root, result = sweep
    md = result["leaderboard_md"].read_text()
    assert [t for t in result["tables"]] == [f"Unconditional leaderboard (scorer {s})" for s in ("self:@ar", "smollm2")] + \
        ["Seq2seq (headline_lead)", "Code infilling (humaneval_infill)"]  # tasks by name
    section = _section(md, "Unconditional leaderboard (scorer smollm2)")
    rows = _rows(section)
    assert len(rows) == 1 + len(SETTINGS)  # real text + one row per setting, 3 seeds each
    assert rows[0]["method"] == "real text" and rows[0]["gen PPL"] == "36.00 [30.00, 42.00]"
    assert {r["seeds"] for r in rows[1:]} == {"3"}
    per_seed = [json.loads((root / "runs" / f"u1-s{s}-smol" / "metrics.json").read_text())["metrics"]["per_sample"]
                for s in (0, 1, 2)]
    pooled = stats.seed_pooled(per_seed)
    assert pooled["seeds"] == 3 and "two-stage" in pooled["interval"]
    (row,) = [r for r in rows if r["sampler"] == "hybrid" and r["t*"] == "0.28"]
    lo, hi = pooled["gen_ppl_ci95"]
    assert row["gen PPL"] == f"{pooled['gen_ppl']:.2f} [{lo:.2f}, {hi:.2f}]"
    lo, hi = pooled["entropy_ci95"]
    assert row["entropy"] == f"{pooled['entropy']:.3f} [{lo:.3f}, {hi:.3f}]"
    assert f"interval: {pooled['interval']}" in section  # the caption names the interval shown


def test_one_seed_shows_the_interval_over_samples(tmp_path):
    root = write_runs(tmp_path / "res", seeds=(0,), scorers=("smollm2",))
    result = write_report(root, tmp_path / "out")
    section = _section(result["leaderboard_md"].read_text(), "Unconditional leaderboard (scorer smollm2)")
    assert "interval: percentile bootstrap over samples, 2000 resamples" in section and "two-stage" not in section
    assert {r["seeds"] for r in _rows(section)[1:]} == {"1"}


def test_t_star_only_where_the_sampler_uses_it(sweep):
    _, result = sweep
    md = result["leaderboard_md"].read_text()
    for title in result["tables"]:
        for row in _rows(_section(md, title)):
            if "t*" in row:
                assert (row["t*"] != "-") == (row["sampler"] == "hybrid"), (title, row)
    code = _rows(_section(md, "Code infilling (humaneval_infill)"))
    assert "t*" not in code[0]  # basic only: no t* column at all


def test_no_number_repeats_across_the_tables(sweep):
    """Each setting's numbers stand once: one table per scorer or task, no pivots of the same runs."""
    _, result = sweep
    md = result["leaderboard_md"].read_text()
    after_verdict = md.split("## Unconditional leaderboard", 1)[1]
    for title in result["tables"]:
        for row in _rows(_section(md, title)):
            for key, cell in row.items():
                if "[" in cell:
                    assert after_verdict.count(cell) == (2 if row["method"] == "real text" or "Seq2seq" in title
                                                         or "Code" in title else 1), (title, key, cell)


def test_task_metrics_with_intervals_render(sweep):
    root, result = sweep
    md = result["leaderboard_md"].read_text()
    seq = _rows(_section(md, "Seq2seq (headline_lead)"))
    assert [r["method"] for r in seq] == ["kl", "linear"]
    assert seq[0]["BLEU Top-1"] == "11.50 [9.00, 14.25]" and seq[0]["ROUGE-L Top-1"] == "0.300 [0.250, 0.350]"
    assert seq[0]["BERTScore F1 Top-1"] == "0.810 [0.800, 0.820]" and seq[0]["t*"] == "0.28"
    assert "candidates" not in seq[0]
    code = _rows(_section(md, "Code infilling (humaneval_infill)"))
    assert code[0]["Pass@1"] == "0.250 [0.100, 0.400]" and code[0]["Compiles@1"] == "0.750 [0.600, 0.900]"
    header = (root / "out" / "leaderboard.csv").read_text().splitlines()[0].split(",")
    assert not any("per_sample" in c or "per_example" in c for c in header)


def test_frontier_draws_interval_bars_and_the_target_entropy(sweep):
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    from pathbench.report.leaderboard import load
    from pathbench.report.plots import frontier

    root, _ = sweep
    df, _, records = load(root)
    found = tables(df, records)
    agg, ref = found["_agg"], found["_ref"]
    fig = frontier(agg, ref, plt)
    try:
        assert len(fig.axes) == 2  # one panel per scorer
        for ax, scorer in zip(fig.axes, ("self:@ar", "smollm2")):
            assert scorer in ax.get_title()
            verticals = [line for line in ax.lines if len(set(line.get_xdata())) == 1 and line.get_linestyle() == ":"]
            assert [v.get_xdata()[0] for v in verticals] == [pytest.approx(3.5)]
            labels = ax.get_legend_handles_labels()[1]
            assert "target entropy 3.500 nats (real text)" in labels
            bars = [c for c in ax.containers if type(c).__name__ == "ErrorbarContainer"]
            assert len(bars) == 3 and all(c.has_xerr and c.has_yerr for c in bars)
            mine = agg[agg["scorer"] == scorer]
            kl = mine[mine["method"] == "kl"].sort_values("entropy")
            segments = bars[[c.get_label() for c in bars].index("kl")].lines[2][1].get_segments()  # the y bars
            lows = sorted(s[0][1] for s in segments)
            assert lows == pytest.approx(sorted(kl["gen_ppl_lo"]))
    finally:
        plt.close(fig)


def test_report_is_byte_for_byte_reproducible(sweep, tmp_path):
    root, first = sweep
    again = write_report(root, tmp_path / "again", title="sweep")
    for name in ("leaderboard.md", "leaderboard.csv", "report.html", *[p.name for p in first["plots"].values()]):
        assert (first["out_dir"] / name).read_bytes() == (again["out_dir"] / name).read_bytes(), name
    png = (first["out_dir"] / "ppl_entropy_frontier.png").read_bytes()
    assert b"Software" not in png and b"matplotlib" not in png.lower()


def test_html_tables_are_sortable_offline(sweep):
    _, result = sweep
    page = result["report_html"].read_text()
    assert page.count('<table class="sortable') == page.count("<table")
    assert page.count("<caption>") == len(result["tables"]) and "two-stage percentile bootstrap" in page
    assert page.count('<th scope="col" tabindex="0">') > 10 and "addEventListener(\"click\"" in page
    assert "http" not in page and "<link" not in page and "<script src" not in page


# ----------------------------------------------------------------------------- task verdicts, reading order

def test_a_task_verdict_ranks_by_intervals_and_says_ties_in_words():
    import pandas as pd

    from pathbench.report.task_verdict import task_verdict

    agg = pd.DataFrame({"method": ["a", "b", "c"], "sampler": ["basic"] * 3, "nfe": [8] * 3,
                        "pass@1": [0.1, 0.5, 0.45], "pass@1_lo": [0.0, 0.4, 0.35], "pass@1_hi": [0.2, 0.6, 0.55],
                        "compiles@1": [0.9, 0.9, 0.9], "compiles@1_lo": [0.8] * 3, "compiles@1_hi": [1.0] * 3})
    table, words = task_verdict(agg, ["pass@1", "compiles@1"])
    # b and c overlap (both #1); a's interval lies wholly below both: #3
    assert table["method"].tolist() == ["b", "c", "a"]
    assert table["Pass@1"].tolist() == ["0.500 [0.400, 0.600] (#1)", "0.450 [0.350, 0.550] (#1)",
                                        "0.100 [0.000, 0.200] (#3)"]
    assert words == "Pass@1: b #1, c #1, a #3; within noise: b and c; Compiles@1: all 3 within noise of one another."


def test_conditional_and_code_reports_open_with_their_own_verdict(tmp_path):
    root = write_runs(tmp_path / "res")
    for run in (root / "runs").glob("u*"):
        shutil.rmtree(run)  # only the seq2seq and code runs: no unconditional sample
    result = write_report(root, tmp_path / "out")
    assert result["sections"][:2] == ["Verdict: Seq2seq (headline_lead)", "Verdict: Code infilling (humaneval_infill)"]
    md = (tmp_path / "out" / "leaderboard.md").read_text()
    assert "No matched-entropy verdict" not in md and "## Plots" not in md  # no non-verdict, no empty heading
    assert md.split("\n## ")[-1].startswith("Metric protocol") and "<details>" in md  # folded, last


def test_the_shown_protocol_does_not_depend_on_the_sandbox_the_machine_had(tmp_path):
    pages = []
    for kind in ("bwrap", "guard"):
        (tmp_path / kind).mkdir()
        root = write_runs(tmp_path / kind / "res", seeds=(0,), scorers=("smollm2",))  # one folder name: the page names it
        for path in (root / "runs").glob("c-*/metrics.json"):
            record = json.loads(path.read_text())
            record["protocol"] = {"task": "humaneval_infill", "sandbox": {"timeout_s": 5.0, "isolation_used": kind,
                                                                         "kind": f"{kind} prose"}}
            path.write_text(json.dumps(record))
        write_report(root, tmp_path / f"out-{kind}", title="t")
        pages.append([(tmp_path / f"out-{kind}" / name).read_bytes() for name in ("report.html", "leaderboard.md")])
    assert pages[0] == pages[1] and b"prose" not in pages[0][0] and b'timeout_s' in pages[0][0]


def test_the_report_names_absent_sandbox_defences_and_only_then(tmp_path):
    """A code run whose metrics.json lists absent sandbox defences is named, with them, in a
    warning above the code verdict, on the page and in the Markdown alike; runs that lacked none
    give no such text (a report made under bubblewrap keeps its bytes)."""
    absent = ["kernel isolation (bubblewrap)", "seccomp filter (memfd, System V shared memory, user namespaces)"]
    outputs = {}
    for case in ("none", "absent"):
        (tmp_path / case).mkdir()
        root = write_runs(tmp_path / case / "res", seeds=(0,), scorers=("smollm2",))  # one folder name
        for path in sorted((root / "runs").glob("c-*/metrics.json")):
            record = json.loads(path.read_text())
            lacking = absent if case == "absent" and record["run_id"] == "c-kl" else []
            record["metrics"]["sandbox"] = {"isolation": "guard" if lacking else "bwrap", "absent_defences": lacking}
            path.write_text(json.dumps(record))
        result = write_report(root, tmp_path / f"out-{case}", title="t")
        outputs[case] = (result, *((tmp_path / f"out-{case}" / n).read_text() for n in ("leaderboard.md", "report.html")))
    result, md, page = outputs["none"]
    assert "Warning" not in md and "Warning" not in page and "absent" not in md and "role=\"alert\"" not in page
    assert not any(t.startswith("Warning") for t in result["sections"])
    result, md, page = outputs["absent"]
    title = "Warning: model-written code ran without some sandbox defences"
    assert result["sections"][0] == title  # above every verdict, the code task's included
    assert md.index(f"## {title}") < md.index("## Verdict: Code infilling")
    warning = _section(md, title)
    line = [n for n in warning.splitlines() if n.startswith("- ")]
    assert line == ["- 1 run(s) of humaneval_infill ran the model's code under isolation 'guard' without: "
                    f"{'; '.join(absent)}. Runs: c-kl."]
    assert "c-linear" not in warning
    assert page.index(title) < page.index("Verdict: Code infilling") and 'role="alert"' in page
    assert all(html.escape(d) in page for d in absent) and "Runs: c-kl." in page


def test_every_csv_row_says_how_its_model_was_trained_and_whether_it_learned(tmp_path):
    root = tmp_path / "results"
    shutil.copytree(FIXTURE, root)
    tuned = root / "runs" / "kl-hybrid-64-s0" / "metrics.json"
    record = json.loads(tuned.read_text())
    record["training_recipe"] = {"name": "kl-flow-muon", "lr": 0.03, "learning_rates": {"muon": 0.03}}
    record["learning_check"] = {"kind": "denoiser", "learned": False}
    tuned.write_text(json.dumps(record))
    old = root / "runs" / "linear-ancestral-64-s0" / "metrics.json"
    record = json.loads(old.read_text())
    record["training_recipe"] = {"name": "adamw", "lr": 0.003, "legacy": True}
    old.write_text(json.dumps(record))
    df, _ = collect(root)
    rows = df.set_index("run_id")
    kl, linear = rows.loc[json.loads(tuned.read_text())["run_id"]], rows.loc[record["run_id"]]
    assert (kl["recipe"], kl["lr"], kl["learned"]) == ("kl-flow-muon", 0.03, False)
    assert (linear["recipe"], linear["lr"]) == ("adamw (recorded before recipes)", 0.003)
    assert df["learned"].isna().sum() == len(df) - 1  # no check recorded: blank, not False
