"""The report's learning section and the paper's question, on records made by hand."""

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402

from pathbench.report.learning import held_out_plot, learning_summary, learning_table, paper_question  # noqa: E402
from pathbench.report.verdict import MethodVerdict  # noqa: E402


def record(method, seed, learned, ckpt):
    check = {"kind": "denoiser", "learned": learned, "marginal_ce": 3.36, "best_ce": 3.36 if not learned else 1.2,
             "best_t": 0.28, "times": [0.1, 0.2], "held_out_ce": [3.4, 3.36 if not learned else 1.2]}
    return {"method": method, "seed": seed, "checkpoint": ckpt, "learning_check": check,
            "training_recipe": {"name": "kl-flow-muon", "lr": 0.02},
            "generation_protocol": {"name": "kl-flow", "not_applied": {}}}


def test_a_model_that_did_not_learn_is_named_on_the_first_screen():
    records = [record("kl", 0, False, "a"), record("kl", 0, False, "a"), record("kl", 1, True, "b"),
               record("linear", 0, True, "c")]
    table, failed = learning_table(records)
    assert len(table) == 3 and failed == ["kl [kl-flow] (1 of 2 seeds)"]
    assert list(table["learned"]) == ["NO: did not learn to read x_t", "yes", "yes"]
    summary = learning_summary(records)
    assert summary.startswith("**Did not learn** — kl [kl-flow] (1 of 2 seeds)")
    assert held_out_plot(records, plt)[:4] == b"\x89PNG"
    assert learning_summary([record("linear", 0, True, "c")]).startswith("Every checked model learned")


def verdict(method, ppl, lo, hi):
    return MethodVerdict(method, ppl, [lo, hi] if lo else None, 1.0, "s")


def test_the_papers_question_is_answered_with_intervals_or_says_why_not():
    both = [verdict("kl", 100, 90, 110), verdict("fisher_rao", 200, 180, 220), verdict("linear", 300, 250, 350)]
    assert "Answer on this grid: yes, beyond noise" in paper_question(both, [])
    close = [verdict("kl", 100, 90, 210), verdict("fisher_rao", 200, 180, 220), verdict("linear", 300, 250, 350)]
    assert "not beyond noise" in paper_question(close, [])
    worse = [verdict("kl", 400, 390, 410), verdict("fisher_rao", 200, 180, 220), verdict("linear", 300, 250, 350)]
    assert "no: fisher_rao, linear beats KL beyond noise" in paper_question(worse, [])
    assert "cannot answer it: kl (3 of 3 seeds) did not learn" in paper_question(both, ["kl (3 of 3 seeds)"])
    unreached = [verdict("kl", None, None, None), *both[1:]]
    assert "kl never reach(es) real text's entropy" in paper_question(unreached, [])
    assert "it has no linear run" in paper_question(both[:2], [])
