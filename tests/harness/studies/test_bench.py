"""`pathbench study bench` runs end to end on a tiny size and reports what it promises (no timing asserts)."""

import math

from pathbench.engine.plugins import load_all
from pathbench.studies.bench import bench_train
from pathbench.studies.bench_sample import bench_sample

load_all()


def test_bench_sample_reports_model_share_floor_and_memory(capsys):
    rows = bench_sample("kl,dfm", vocab=64, seq_len=16, batch_size=2, nfes=(3,), samplers=("basic", "sampling"),
                        top_ks=(1, None))
    kl = [r for r in rows if r["method"] == "kl"]
    assert [(r["sampler"], r["top_k"]) for r in kl][1:] == [("sampling", 1), ("sampling", None)]
    assert kl[0]["sampler"] == "basic"  # once: the ODE ignores top-k
    for r in kl:
        assert r["denoiser_calls"] == 3 and 0 < r["model_share"] <= 1
        assert math.isfinite(r["outside_per_step"]) and r["floor_per_step"] > 0
        assert math.isfinite(r["peak_beyond_call_bsv"])
    assert {r["method"] for r in rows} == {"kl", "dfm", "ar"}  # the AR KV-cache decode beside them
    out = capsys.readouterr().out
    assert "protocol=kl-flow" in out and "outside/step" in out and "without KV cache" in out


def test_bench_train_reports_the_noising_share(capsys):
    rows = bench_train("kl,sedd", vocab=64, seq_len=16, batch_size=2, steps=2)
    kl, sedd = rows
    assert 0 < kl["noising_share"] < 1 and sedd["noising_share"] == 0
    assert kl["tokens_per_s_bare"] > 0 and math.isfinite(kl["peak_memory_bsv"])
    assert "of a step (target <= 20%)" in capsys.readouterr().out
