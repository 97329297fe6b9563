"""``harness.report``: metrics.json files -> seed-averaged tables, plots, leaderboard files."""

import json
import shutil
from pathlib import Path

import pytest

from harness.errors import ConfigError
from harness.report import collect, markdown_table, tables, write_report

FIXTURE = Path(__file__).parent.parent / "fixtures" / "results"

LEADERBOARD = """\
| method    | sampler   | NFE |   t* | top-k | scorer  |        gen PPL |       entropy |   n |
|:----------|:----------|----:|-----:|------:|:--------|---------------:|--------------:|----:|
| real text | -         |   - |    - |     - | smollm2 |          35.20 |         4.520 |   1 |
| kl        | hybrid    |  64 | 0.28 |     5 | smollm2 | 200.20 ± 14.28 | 4.300 ± 0.014 |   2 |
| kl        | hybrid    | 128 | 0.28 |     5 | smollm2 |         150.50 |         4.350 |   1 |
| linear    | ancestral |  64 |    - |     - | smollm2 |         320.75 |         4.410 |   1 |
| linear    | ancestral | 128 |    - |     - | smollm2 |         250.00 |         4.450 |   1 |
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
    df, _ = collect(FIXTURE)
    seeds = df[(df["method"] == "kl") & (df["nfe"] == 64) & (df["task"] == "unconditional")]
    assert sorted(seeds["seed"]) == [0, 1]
    found = tables(df)
    agg = found["_agg"]
    row = agg[(agg["method"] == "kl") & (agg["nfe"] == 64)].iloc[0]
    assert row["n"] == 2
    assert row["gen_ppl"] == pytest.approx(seeds["gen_ppl"].mean()) == pytest.approx((210.3 + 190.1) / 2)
    assert row["entropy"] == pytest.approx((4.31 + 4.29) / 2)
    assert markdown_table(found["Unconditional leaderboard"]) == LEADERBOARD
    assert list(found["Gen PPL / entropy vs NFE"].columns) == ["method", "sampler", "NFE 64", "NFE 128"]
    assert found["Gen PPL / entropy vs NFE"].iloc[0].tolist() == ["kl", "hybrid", "200.20 / 4.300", "150.50 / 4.350"]
    assert found["t* sweep (hybrid)"]["t*"].tolist() == ["0.28", "0.28"]
    seq = found["Seq2seq"]
    assert seq["task"].tolist() == ["headline_lead"]
    assert seq[["BLEU Top-1", "BLEU Avg", "ROUGE-L Top-4"]].iloc[0].tolist() == ["11.75", "10.50", "0.402"]
    assert "Code infilling" not in found and "Inference schemes" not in found


def test_write_report_files(report):
    out = report["out_dir"]
    assert report["runs"] == 6 and report["problems"] == 2
    assert set(report["plots"]) == {"ppl_vs_nfe", "ppl_entropy_frontier", "t_star_sweep", "kl_curves"}
    for path in [report["leaderboard_md"], report["leaderboard_csv"], report["report_html"], *report["plots"].values()]:
        assert Path(path).is_file() and Path(path).stat().st_size > 0
    assert not list(out.glob(".*.tmp"))
    md = (out / "leaderboard.md").read_text()
    assert LEADERBOARD in md and "runs/kl-hybrid-256-partial/metrics.json" in md
    assert (out / "leaderboard.csv").read_text().count("\n") == 7  # header + 6 runs
    page = (out / "report.html").read_text()
    assert page.count("data:image/png;base64,") == 4
    assert 'src="http' not in page and "<link" not in page and "<script" not in page
    assert "fixture &lt;report&gt;" in page
    assert "runs/linear-ancestral-256-corrupt/metrics.json" in page
    assert "exp(total NLL / scored tokens)" in page and "sacrebleu" in page  # the unique protocols
    assert "200.20 ± 14.28" in page


def test_code_rows_and_empty_pathbench_folder(tmp_path):
    run = tmp_path / "runs" / "x"
    run.mkdir(parents=True)
    record = json.loads((FIXTURE / "runs" / "kl-headline-64-s0" / "metrics.json").read_text())
    record.update(task="mbpp_infill", run_id="c0de", metrics={"pass@1": 0.25, "compiles@1": 0.75, "examples": 4})
    (run / "metrics.json").write_text(json.dumps(record))
    found = tables(collect(tmp_path)[0])
    assert found["Code infilling"][["Pass@1", "Compiles@1"]].iloc[0].tolist() == ["0.250", "0.750"]
    assert "Unconditional leaderboard" not in found
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


def test_few_step_table_and_plot(tmp_path):
    """Runs at NFE 1..16 get their own table (one PPL / entropy cell per NFE) and plot."""
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
    title = "Few-step regime (NFE ≤ 16): gen PPL / entropy"
    assert title in result["tables"] and "few_step" in result["plots"]
    board = (tmp_path / "out" / "leaderboard.md").read_text()
    section = board.split(f"## {title}", 1)[1].split("\n## ", 1)[0]
    assert "NFE 64" not in section and "| flowmap | flowmap | 1000.00 / 3.010 |" in section
    assert section.splitlines()[2].count("NFE ") == 5  # the header row: NFE 1, 2, 4, 8, 16


def test_plot_lines_keep_runs_apart_that_differ_only_in_an_option_or_final():
    """Two flow-map students (teacher kl vs euclidean) at two final steps are four lines, not one
    zig-zag; a setting is named in a label only for the method where it varies."""
    import pandas as pd

    from harness.report_plots import SETTING_KEYS, _lines

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
    assert sections[0] == "## Verdict: gen-PPL at matched entropy (smollm2)"
    assert sections[1].startswith("## Pairwise")
    verdict = md.split("## Verdict")[1].split("## Pairwise")[0]
    rows = [line for line in verdict.splitlines() if line.startswith("| ") and "method" not in line]
    assert [r.split("|")[2].strip() for r in rows] == ["kl", "linear", "euclidean"]  # rank order
    assert "not reached" in rows[2] and "173." in rows[0]  # √(100·300) at H* = 3.5
    assert "No two methods that reach the target are within noise" in verdict
    assert result["verdict"][0].startswith("Verdict")
    html = (tmp_path / "out" / "report.html").read_text()
    assert html.index("Verdict: gen-PPL at matched entropy") < html.index("Unconditional leaderboard")


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
