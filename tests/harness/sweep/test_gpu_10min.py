"""experiments/gpu/geodesic_ablation_gpu_10min.yaml: its dry run, and the same grid at a tiny
size run end to end on the CPU (the code path a lent GPU will take, minus the device)."""

import json
from pathlib import Path

import yaml

from pathbench.cli import main
from pathbench.sweep.experiment import load_experiment

FILE = Path(__file__).resolve().parents[3] / "experiments" / "gpu" / "geodesic_ablation_gpu_10min.yaml"
METHODS = {"ar", "kl", "fisher_rao", "linear", "euclidean", "dfm", "sedd"}


def test_dry_run_lists_the_seven_methods_under_the_kl_flow_protocol(tmp_path, capsys):
    out = tmp_path / "gpu10"
    assert main(["sweep", str(FILE), "--out", str(out), "--dry-run"]) == 0
    text = capsys.readouterr().out
    exp = load_experiment(FILE)
    assert {u.method for u in exp.units} == METHODS and len(exp.units) == 7
    assert f"7 training units, {len(exp.runs)} runs" in text and text.count("[pending]") == len(exp.runs)
    assert all(r.protocol.name == "kl-flow" for r in exp.runs)
    assert {r.scorer for r in exp.runs} == {"smollm2", "self:@ar"}
    assert not out.exists()  # a dry run writes nothing


def test_its_grid_runs_end_to_end_on_the_cpu_at_a_tiny_size(tmp_path, data_cache, tiny_lm, bbc_small):
    raw = yaml.safe_load(FILE.read_text())
    raw.update(preset="tiny", data={**raw["data"], "vocab_size": 512, "seq_len": 32, "cache_dir": str(data_cache)},
               train={**raw["train"], "steps": 2, "batch_size": 8, "warmup": 1, "eval_every": 2, "ckpt_every": 2,
                      "precision": "auto"},
               samplers=[{**s, **({"nfe": 2} if "nfe" in s else {})} for s in raw["samplers"]],
               tasks=[{**raw["tasks"][0], "n": 2, "batch_size": 2, "scorers": [f"hf:{tiny_lm}", "self:@ar"]}])
    path, out = tmp_path / "tiny.yaml", tmp_path / "out"
    path.write_text(yaml.safe_dump(raw))
    assert main(["sweep", str(path), "--out", str(out), "--device", "cpu", "--executor", "debug"]) == 0
    results = [json.loads(p.read_text()) for p in (out / "runs").glob("*/metrics.json")]
    assert len(results) == len(load_experiment(path).runs) and {r["method"] for r in results} == METHODS
    for result in results:  # every result carries quality and the measured cost of its generation
        assert result["status"] == "complete" and result["metrics"]["gen_ppl"] > 1
        assert result["generation"]["samples"] == 2 and result["generation"]["samples_per_s"] > 0
