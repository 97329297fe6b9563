"""Scorer kinds are looked up in ``SCORERS`` only: a kind a plugin registers loads like a built-in."""

import pytest

from pathbench.core.errors import ConfigError
from pathbench.core.registry import SCORERS
from pathbench.tasks.scorers import load_scorer
from pathbench.tasks.scorers.causal_lm import CausalScorer, HFScorer, SelfScorer
from pathbench.tasks.scorers.oracle import OracleScorer
from pathbench.tasks.scorers.smollm2 import SmolLM2Scorer


class EchoScorer(CausalScorer):
    """A scorer kind as a plugin would register it: it keeps what it was asked for."""

    def __init__(self, spec, device="cpu"):
        self.spec, self.device = spec, device

    def encode(self, text):
        return [len(text)]

    def logits(self, ids, attention):
        raise NotImplementedError


@pytest.fixture
def echo_kind():
    SCORERS.add("echo", EchoScorer)
    yield
    SCORERS._entries.pop("echo")  # the registry has no unregister: a test must leave it as it found it


def test_every_scorer_kind_is_a_registered_class():
    assert {name: SCORERS.get(name) for name in ("smollm2", "hf", "self", "oracle")} == {
        "smollm2": SmolLM2Scorer, "hf": HFScorer, "self": SelfScorer, "oracle": OracleScorer}


def test_a_registered_kind_is_loaded_through_the_registry(echo_kind):
    scorer = load_scorer("echo:abc", device="cpu")
    assert isinstance(scorer, EchoScorer) and scorer.spec == "echo:abc"
    assert load_scorer("echo:abc", device="cpu") is scorer  # cached per spec and placement


def test_an_unregistered_kind_names_the_known_ones():
    with pytest.raises(ConfigError, match="unknown scorer 'nope:x'; known: smollm2"):
        load_scorer("nope:x")
