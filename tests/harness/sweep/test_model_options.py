"""An experiment file's ``model:`` key: ModelConfig fields over the preset's, trained as given,
part of a unit's id only when given (every id made without one stays)."""

import json

import pytest
import yaml

from pathbench.cli import main
from pathbench.core.errors import ConfigError
from pathbench.engine.plugins import load_all
from pathbench.sweep.experiment import expand

load_all()


def spec(data_cache, tiny_lm, **extra):
    return {"name": "m", "preset": "tiny",
            "data": {"corpus": "bbc", "vocab_size": 512, "seq_len": 32, "cache_dir": str(data_cache)},
            "train": {"steps": 2, "batch_size": 4, "eval_every": 2, "ckpt_every": 2, "progress": False},
            "methods": ["kl"], "samplers": [{"name": "basic", "nfe": 2}], "seeds": [0],
            "tasks": [{"name": "unconditional", "n": 2, "scorers": [f"hf:{tiny_lm}"]}],
            "executor": {"kind": "local", "timeout_min": 20}, **extra}


def test_model_options_name_their_units_only_when_given(data_cache, tiny_lm):
    plain = expand(spec(data_cache, tiny_lm)).units[0]
    assert plain.model == {} and "model" not in plain.identity()
    small = expand(spec(data_cache, tiny_lm, model={"n_layer": 1, "d_model": 64})).units[0]
    assert small.identity()["model"] == {"n_layer": 1, "d_model": 64} and small.id != plain.id
    assert small.identity() == {**plain.identity(), "model": {"n_layer": 1, "d_model": 64}}  # nothing else moves


@pytest.mark.parametrize("model, message", [
    ({"layers": 2}, "unknown model option 'layers'; known: activation_checkpointing, causal"),
    ({"n_layer": "2"}, "model option n_layer = '2' must be an integer"),
    ({"d_model": 66, "n_head": 4}, "d_model = 66 must split into 4 heads of even width"),
    ([1, 2], "model"),
])
def test_a_bad_model_option_is_one_line(data_cache, tiny_lm, model, message):
    with pytest.raises(ConfigError, match=message):
        expand(spec(data_cache, tiny_lm, model=model))


def test_a_sweep_trains_the_model_the_file_asks_for(tmp_path, data_cache, tiny_lm, bbc_small):
    path, out = tmp_path / "m.yaml", tmp_path / "out"
    path.write_text(yaml.safe_dump(spec(data_cache, tiny_lm, model={"n_layer": 1, "d_model": 64})))
    assert main(["sweep", str(path), "--out", str(out)]) == 0
    (unit,) = (out / "train").iterdir()
    model = json.loads((unit / "meta.json").read_text())["model"]
    assert (model["n_layer"], model["d_model"], model["n_head"]) == (1, 64, 4)
