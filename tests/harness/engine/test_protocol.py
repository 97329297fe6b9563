"""Generation protocols (kl-flow, plain): what each resolves to, overrides, records, legacy runs."""

import json

import pytest

from pathbench.cli import main
from pathbench.core.registry import METHODS
from pathbench.engine.plugins import load_all
from pathbench.engine.protocol import resolve_method_options, resolve_sampler, sampling_setup
from pathbench.engine.run import load_run
from pathbench.sweep.experiment import expand
from tests.conftest import SMALL

load_all()

KL_FLOW_SAMPLER = {"top_k": 1, "final": "argmax", "final_at": "t_max"}
PLAIN_SAMPLER = {"top_k": None, "final": "argmax", "final_at": "last_step"}


def data_args(cache):
    return [f"data.cache_dir={cache}", f"data.vocab_size={SMALL['vocab_size']}",
            f"data.seq_len={SMALL['seq_len']}", "batch_size=8", "eval_every=3", "log_every=1", "progress=false"]


def one_line_error(args, capsys):
    rc = main(args)
    err = capsys.readouterr().err.strip()
    assert rc == 2 and "\n" not in err and "Traceback" not in err, err
    return err


@pytest.mark.parametrize("method, protocol, expected", [
    ("kl", "kl-flow", {"t_max": 0.3, "grid": "log", "update": "tau_euler"}),
    ("kl", "plain", {"t_max": 1.0, "grid": "uniform", "update": "euler"}),
    ("linear", "kl-flow", {"t_max": 0.3, "grid": "log"}),        # linear takes no update
    ("linear", "plain", {"t_max": 1.0, "grid": "uniform"}),
    ("fisher_rao", "kl-flow", {"t_max": 0.3, "grid": "log"}),
    ("fisher_rao", "plain", {"t_max": 1.0, "grid": "uniform"}),
    ("euclidean", "kl-flow", {"t_max": 0.3, "grid": "log"}),
    ("euclidean", "plain", {"t_max": 1.0, "grid": "uniform"}),
    ("dfm", "kl-flow", {}),                                      # not a simplex path: untouched
    ("dfm", "plain", {}),
])
def test_resolved_method_options_under_each_protocol(method, protocol, expected):
    options, record = resolve_method_options(method, protocol, {})
    assert options == expected and record.name == protocol and record.method == expected
    built = METHODS.build(method, **options).options()
    assert {k: built[k] for k in expected} == expected
    if method == "dfm":
        assert record.sampler == {} and "not a simplex-path method" in record.not_applied["method"]
    else:
        assert record.sampler == (KL_FLOW_SAMPLER if protocol == "kl-flow" else PLAIN_SAMPLER)
    if method in ("linear", "fisher_rao", "euclidean"):
        assert record.not_applied == {"method.update": f"'{method}' takes no 'update'"}


def test_explicit_keys_override_and_the_record_says_so():
    options, record = resolve_method_options("kl", "kl-flow", {"t_max": 0.5, "beta": 0.05})
    assert options == {"t_max": 0.5, "grid": "log", "update": "tau_euler", "beta": 0.05}
    assert record.overridden == {"method.t_max": 0.5} and "t_max" not in record.method
    kl = METHODS.build("kl", **options)
    spec, record = resolve_sampler(kl, record, {"name": "hybrid", "nfe": 8, "top_k": 5})
    assert spec == {"name": "hybrid", "nfe": 8, "top_k": 5, "final": "argmax", "final_at": "t_max"}
    assert record.overridden == {"method.t_max": 0.5, "sampler.top_k": 5}
    assert record.sampler == {"final": "argmax", "final_at": "t_max"}


def test_baseline_samplers_keep_their_own_defaults():
    for name, sampler in (("ar", "ancestral"), ("dfm", "euler"), ("sedd", "tweedie")):
        _, record = resolve_method_options(name, "kl-flow", {})
        spec, record = resolve_sampler(METHODS.build(name), record, {"name": sampler, "nfe": 4})
        assert spec == {"name": sampler, "nfe": 4}  # no top-k 1 forced on ar, no final_at
        assert record.sampler == {} and "keeps its own defaults" in record.not_applied["sampler"]


def test_bad_protocols_and_keys_are_one_line_errors(tmp_path, capsys):
    base = ["train", "--steps", "1", "--out", str(tmp_path / "r")]
    err = one_line_error([*base, "--method", "kl", "--protocol", "klflow"], capsys)
    assert "unknown protocol 'klflow'; known: kl-flow, plain" in err
    err = one_line_error([*base, "--method", "linear", "method.update=tau_euler"], capsys)
    assert "method 'linear': refuses key 'update'" in err and "its keys: beta, grid, t_max" in err
    err = one_line_error([*base, "--method", "kl", "method.t_max=1.0"], capsys)  # the protocol's log grid
    assert "needs t_max < 1" in err and "protocol 'kl-flow' set grid=log" in err
    with pytest.raises(Exception, match="unknown protocol 'klflow'; known: kl-flow, plain"):
        expand({"protocol": "klflow", "methods": ["kl"], "samplers": [{"name": "basic"}], "tasks": ["unconditional"]})
    assert not (tmp_path / "r").exists()


def test_list_shows_the_protocols(capsys):
    assert main(["list"]) == 0
    out = capsys.readouterr().out
    assert "protocols:\n  kl-flow  the KL-flow reference code" in out and "\n  plain  the paper's text" in out


@pytest.fixture(scope="module")
def kl_flow_run(tmp_path_factory, data_cache, bbc_small):
    out = tmp_path_factory.mktemp("protocol") / "kl"
    assert main(["train", "--method", "kl", "--protocol", "kl-flow", "--steps", "3", "--out", str(out),
                 *data_args(data_cache)]) == 0
    return out


def test_train_sample_eval_record_the_kl_flow_protocol(kl_flow_run, tiny_lm, tmp_path, capsys):
    meta = json.loads((kl_flow_run / "meta.json").read_text())
    assert meta["generation_protocol"]["name"] == "kl-flow"
    assert {k: meta["method_options"][k] for k in ("t_max", "grid", "update")} == {
        "t_max": 0.3, "grid": "log", "update": "tau_euler"}
    assert main(["sample", "--ckpt", str(kl_flow_run), "--sampler", "sampling", "--nfe", "3", "--n", "2",
                 "--out", str(tmp_path / "s.jsonl")]) == 0
    for line in (tmp_path / "s.jsonl").read_text().splitlines():
        record = json.loads(line)
        assert record["generation_protocol"]["name"] == "kl-flow"
        assert record["generation_protocol"]["sampler"] == KL_FLOW_SAMPLER
        assert (record["sampler"]["top_k"], record["sampler"]["final_at"]) == (1, "t_max")
    out = tmp_path / "eval"
    assert main(["eval", "--ckpt", str(kl_flow_run), "--task", "unconditional", "--nfe", "3", "--n", "2",
                 "--top-k", "5", "--out", str(out), f"scorer=hf:{tiny_lm}"]) == 0
    result = json.loads((out / "metrics.json").read_text())
    protocol = result["generation_protocol"]
    assert protocol["name"] == "kl-flow" and protocol["overridden"] == {"sampler.top_k": 5}
    assert protocol["sampler"] == {"final": "argmax", "final_at": "t_max"} and "rules" in result["protocol"]
    assert (result["sampler"]["top_k"], result["sampler"]["final_at"]) == (5, "t_max")
    assert main(["sample", "--ckpt", str(kl_flow_run), "--nfe", "2", "--n", "1", "--top-k", "none",
                 "--out", str(tmp_path / "full.jsonl")]) == 0
    record = json.loads((tmp_path / "full.jsonl").read_text())
    assert record["sampler"]["top_k"] is None and record["generation_protocol"]["overridden"] == {"sampler.top_k": None}
    capsys.readouterr()  # the progress bars so far
    assert "unknown protocol 'klflow'; known: kl-flow, plain" in one_line_error(
        ["sample", "--ckpt", str(kl_flow_run), "--protocol", "klflow", "--out", str(tmp_path / "x.jsonl")], capsys)


def test_sampling_under_another_protocol_rebuilds_the_path(kl_flow_run, tmp_path):
    assert main(["sample", "--ckpt", str(kl_flow_run), "--protocol", "plain", "--nfe", "2", "--n", "1",
                 "--out", str(tmp_path / "s.jsonl")]) == 0
    record = json.loads((tmp_path / "s.jsonl").read_text())
    protocol = record["generation_protocol"]
    assert protocol["name"] == "plain" and protocol["trained_with"] == "kl-flow"
    assert {k: record["method_options"][k] for k in ("t_max", "grid", "update")} == {
        "t_max": 1.0, "grid": "uniform", "update": "euler"}
    assert (record["sampler"]["top_k"], record["sampler"]["final_at"]) == (None, "last_step")


def test_an_old_run_without_a_protocol_resumes_and_samples_as_plain(tmp_path, data_cache, bbc_small):
    out = tmp_path / "old"
    args = ["train", "--method", "linear", "--out", str(out), *data_args(data_cache)]
    assert main([*args, "--protocol", "plain", "--steps", "2"]) == 0
    meta = json.loads((out / "meta.json").read_text())
    del meta["generation_protocol"]  # as written before protocols existed
    (out / "meta.json").write_text(json.dumps(meta))
    method, _, _, meta, _, _ = load_run(out)
    _, cfg, record = sampling_setup(method, meta, None, {"nfe": 2})
    assert record.name == "plain" and record.legacy and (cfg.top_k, cfg.final_at) == (None, "last_step")
    assert main([*args, "--steps", "4", "--resume"]) == 0  # no --protocol: the run's own, plain
    meta = json.loads((out / "meta.json").read_text())
    assert meta["generation_protocol"]["name"] == "plain" and meta["method_options"]["t_max"] == 1.0
    assert json.loads((out / "checkpoint.json").read_text())["step"] == 4
    assert main(["sample", "--ckpt", str(out), "--nfe", "2", "--n", "1", "--out", str(tmp_path / "s.jsonl")]) == 0
    record = json.loads((tmp_path / "s.jsonl").read_text())
    assert record["generation_protocol"]["sampler"] == PLAIN_SAMPLER and record["sampler"]["final_at"] == "last_step"


def test_an_experiment_with_both_protocols_doubles_the_path_units():
    raw = {"methods": ["kl", "linear", "dfm"], "samplers": [{"name": "sampling", "nfe": 16, "top_k": 5},
                                                            {"name": "basic", "nfe": 16}],
           "tasks": [{"name": "unconditional", "scorers": ["smollm2"]}]}
    one = expand(raw)
    assert {u.protocol.name for u in one.units} == {"kl-flow"}  # the default
    both = expand({**raw, "protocol": ["kl-flow", "plain"]})
    paths = [u for u in both.units if u.method != "dfm"]
    assert len(paths) == 2 * 2 and len({u.id for u in paths}) == 4
    assert {u.id for u in one.units} <= {u.id for u in both.units}
    assert len([u for u in both.units if u.method == "dfm"]) == 1  # a protocol does not change dfm
    kl_flow = [r for r in both.runs if r.unit.method == "kl" and r.protocol.name == "kl-flow"]
    sampling = next(r for r in kl_flow if r.sampler["name"] == "sampling")
    assert sampling.sampler["top_k"] == 5 and sampling.protocol.overridden == {"sampler.top_k": 5}
    basic = next(r for r in kl_flow if r.sampler["name"] == "basic")
    assert (basic.sampler["top_k"], basic.sampler["final_at"]) == (1, "t_max")
    plain = next(r for r in both.runs if r.unit.method == "kl" and r.protocol.name == "plain"
                 and r.sampler["name"] == "basic")
    assert (plain.sampler["top_k"], plain.sampler["final_at"]) == (None, "last_step")
    assert plain.unit.options["t_max"] == 1.0 and basic.unit.options["t_max"] == 0.3
    assert len({r.id for r in both.runs}) == len(both.runs)
