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


def test_two_protocols_are_answered_each_from_its_own_paths_and_failures():
    """A protocols report (methods named 'kl [plain]') answers once per protocol: a failure under
    one protocol does not block the other's answer, and neither reads the other's paths."""
    flow = [verdict("kl [kl-flow]", 100, 90, 110), verdict("fisher_rao [kl-flow]", 200, 180, 220),
            verdict("linear [kl-flow]", 300, 250, 350)]
    plain = [verdict("kl [plain]", 400, 390, 410), verdict("fisher_rao [plain]", 200, 180, 220),
             verdict("linear [plain]", 300, 250, 350)]
    text = paper_question(flow + plain + [verdict("ar", 20, 18, 22)], [])
    assert "Under kl-flow: the answer is yes, beyond noise" in text
    assert "Under plain: the answer is no: fisher_rao [plain], linear [plain] beats KL beyond noise" in text
    assert text.index("Under kl-flow") < text.index("Under plain") and text.endswith(".\n")
    blocked = paper_question(flow + plain, ["kl [plain] (2 of 3 seeds)"])
    assert "Under kl-flow: the answer is yes, beyond noise" in blocked
    assert "Under plain: this grid cannot answer it: kl [plain] (2 of 3 seeds) did not learn" in blocked
    assert "it has no linear run" in paper_question(flow + plain[:2], []).split("Under plain")[1]


def test_the_learning_table_and_the_verdict_column_count_the_same_seeds():
    from pathbench.report.verdict_tables import learned_by_method

    plain = dict(record("kl", 2, False, "p"), generation_protocol={"name": "plain", "not_applied": {}})
    records = [record("kl", 0, False, "a"), record("kl", 0, False, "a"), record("kl", 1, True, "b"), plain]
    _, failed = learning_table(records)
    assert failed == ["kl [kl-flow] (1 of 2 seeds)", "kl [plain] (1 of 1 seeds)"]
    assert learned_by_method(records) == {"kl [kl-flow]": "NO: did not learn to read x_t (1 of 2 seeds)",
                                          "kl [plain]": "NO: did not learn to read x_t (1 of 1 seeds)"}


def test_a_task_rows_setting_does_not_hide_its_models_learning_check():
    from pathbench.report.verdict_tables import learned_by_method, learned_for

    learned = learned_by_method([record("kl", 0, True, "a"), record("linear", 0, False, "b")])
    assert learned_for(learned, "kl (NFE 16)") == "yes" and learned_for(learned, "kl") == "yes"
    assert learned_for(learned, "linear (NFE 8)").startswith("NO: did not learn")
    assert learned_for(learned, "dfm (NFE 8)") == "not checked"


def test_a_student_follows_its_teachers_protocol_so_two_protocols_students_are_two_models():
    """flowmap is a baseline (a protocol sets none of its keys), but a student samples its
    teacher's path on the teacher's time range: under kl-flow and under plain it is two models."""
    from pathbench.report.verdict_tables import _groups, applied_protocol, learned_by_method

    def student(protocol, learned, ckpt):
        return dict(record("flowmap@kl", 0, learned, ckpt), method_options={"teacher": "train/kl", "path": "kl"},
                    generation_protocol={"name": protocol, "not_applied": {"method": "a baseline"}})

    flow, plain = student("kl-flow", True, "s1"), student("plain", False, "s2")
    dfm = dict(record("dfm", 0, True, "d"), generation_protocol={"name": "plain", "not_applied": {"method": "x"}})
    assert [applied_protocol(r) for r in (flow, plain, dfm)] == ["kl-flow", "plain", None]
    assert learned_by_method([flow, plain]) == {"flowmap@kl [kl-flow]": "yes",
                                                "flowmap@kl [plain]": "NO: did not learn to read x_t (1 of 1 seeds)"}
    scored = [dict(r, scorer="smollm2", reference={"entropy": 3.0}, sampler={"name": "flowmap", "nfe": 2},
                   metrics={"per_sample": {"nll_sum": [5.0, 6.0], "tokens": [2, 2], "entropy": [3.0, 3.1]}})
              for r in (flow, plain)]
    (_, (_, methods)), = _groups(scored).items()
    assert sorted(methods) == ["flowmap@kl [kl-flow]", "flowmap@kl [plain]"]
