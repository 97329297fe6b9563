"""Resolve once, at the edge: a generation protocol becomes a frozen record that every later step
takes as it is (no second look-up by name, no dict-or-name parameters), a task is bound to a
run's data by a step that returns a new task, and the command line's "not given" is one sentinel
whose defaults are the engine's."""

import copy
import dataclasses
import inspect
import re
from pathlib import Path

import pytest

import pathbench.tasks  # noqa: F401  (registers the tasks)
from pathbench.cli.args import NOT_GIVEN, SAMPLER_FLAGS, explicit_sampler
from pathbench.cli.main import build_parser
from pathbench.core.errors import ConfigError
from pathbench.core.registry import METHODS, PROTOCOLS
from pathbench.engine import protocol as protocol_module
from pathbench.engine.protocol import GenerationProtocol, resolve_method_options, resolve_sampler, resolve_train_options
from pathbench.engine.run import train_run
from pathbench.engine.sampling import SamplerConfig
from pathbench.evaluation.evaluate import eval_resolved
from pathbench.tasks.adapters.base import Task
from pathbench.tasks.adapters.unconditional import Unconditional

ROOT = Path(__file__).parents[3]


def test_a_resolved_protocol_is_a_frozen_record_written_as_its_json_form():
    _, record = resolve_method_options("kl", "kl-flow", {"t_max": 0.5})
    with pytest.raises(dataclasses.FrozenInstanceError):
        record.method = {}
    written = record.record()
    assert written == {"name": "kl-flow", "method": {"grid": "log", "update": "tau_euler"},
                       "sampler": {"top_k": 1, "final": "argmax", "final_at": "t_max"},
                       "overridden": {"method.t_max": 0.5}}
    written["method"]["grid"] = "uniform"  # the JSON form is a copy: the record stays as resolved
    assert record.method == {"grid": "log", "update": "tau_euler"}
    assert GenerationProtocol.from_record(record.record()) == record  # read back from meta.json: the same record
    with pytest.raises(ConfigError, match="unknown keys"):
        GenerationProtocol.from_record({**record.record(), "bogus": 1})


def test_later_steps_read_the_record_and_never_look_the_protocol_up_by_name(monkeypatch):
    _, record = resolve_method_options("kl", "kl-flow", {})
    before = copy.deepcopy(record)

    def refuse(name):
        raise AssertionError(f"looked protocol '{name}' up by name again")

    monkeypatch.setattr(PROTOCOLS, "get", refuse)
    train, trained = resolve_train_options(record, {})
    spec, sampled = resolve_sampler(METHODS.build("kl"), trained, {"name": "basic", "nfe": 4})
    assert train == {"optimizer": "kl-flow-muon"} and spec["top_k"] == 1 and sampled.name == "kl-flow"
    assert record == before  # each step returned a new record


def test_no_engine_or_evaluation_code_branches_on_a_protocol_given_as_a_dict():
    sources = [p for folder in ("harness", "tasks") for p in (ROOT / folder).rglob("*.py")]
    offenders = [str(p) for p in sources if re.search(r"isinstance\(\s*protocol\s*,\s*dict", p.read_text())]
    assert not offenders
    # the engine's entry points take the resolved record, not a name or a dict
    assert inspect.signature(train_run).parameters["protocol"].annotation == "GenerationProtocol"
    assert inspect.signature(eval_resolved).parameters["sampling"].annotation == "Sampling"
    assert "PROTOCOLS.get" not in inspect.getsource(protocol_module.resolve_sampler)
    assert "PROTOCOLS.get" not in inspect.getsource(protocol_module.resolve_train_options)


def test_binding_a_task_returns_a_new_task_and_never_changes_the_one_bound(tiny_lm):
    task = Unconditional(scorer=f"hf:{tiny_lm}")
    before = copy.deepcopy(vars(task))
    data = {"corpus": "bbc", "tokenizer": "bpe", "seq_len": 16}
    bound = task.bind(data)
    assert bound is not task and vars(task) == before
    assert bound.data == data and bound.given_scorer == task.scorer_spec == bound.scorer_spec
    data["seq_len"] = 99  # the bound task holds its own copy of the data spec
    assert bound.data["seq_len"] == 16
    run = type("Run", (), {"meta": {"data": {"corpus": "other"}}})()
    with pytest.raises(ConfigError, match="not bound to this run's data"):
        task.evaluate(run, None, Path("unused"))


def test_a_task_that_depends_on_nothing_of_the_data_is_its_own_binding():
    class Plain(Task):
        def evaluate(self, run, settings, out):
            return {"metrics": {}}

    plain = Plain()
    assert plain.bind({"corpus": "bbc"}) is plain


def test_the_command_lines_sampler_defaults_are_sampler_configs():
    args = build_parser().parse_args(["sample", "--ckpt", "r", "--out", "s.jsonl"])
    assert all(getattr(args, flag) is NOT_GIVEN for flag in SAMPLER_FLAGS)  # nothing written twice
    assert explicit_sampler(args) == {}  # so SamplerConfig's (and the protocol's) defaults apply
    assert set(SAMPLER_FLAGS.values()) == {f.name for f in dataclasses.fields(SamplerConfig)}
    given = build_parser().parse_args(["eval", "--ckpt", "r", "--task", "unconditional", "--out", "o",
                                       "--top-k", "none", "--nfe", "8"])
    # "none" is the full vocabulary (SamplerConfig's None), told apart from not given
    assert explicit_sampler(given) == {"top_k": None, "nfe": 8}
    assert SamplerConfig(**explicit_sampler(args)) == SamplerConfig()
