"""The measured cost of generation: only the sampler's calls are timed, their model calls and
filled positions counted, in every open meter."""

import time

import pytest
import torch

from pathbench.baselines.dfm import DFM
from pathbench.engine.generate import generate
from pathbench.engine.generation_cost import measure_generation, timed_sample
from pathbench.engine.sampling import SamplerConfig
from tests.baselines.test_fast_samplers import TokenToy, V


class Letters:
    """A tokenizer of the toy's V data tokens: id i is the letter 'a' + i."""

    vocab_size, eos_id = V, V - 1

    def encode(self, text):
        return [ord(c) - ord("a") for c in text]

    def decode(self, ids):
        return "".join(chr(ord("a") + i) for i in ids)


def test_generate_records_its_sampler_calls_model_calls_and_filled_positions():
    requests = [["ab", 3]] * 5  # 2 given tokens, 3 free positions, 5 requests in batches of 2
    with measure_generation() as cost:
        generate(DFM(), TokenToy(), Letters(), requests, SamplerConfig("euler", nfe=4), seq_len=5, batch_size=2)
    assert (cost.samples, cost.batches, cost.batch_sizes) == (5, 3, {2, 1})
    assert cost.calls == 3 * 4 and cost.tokens == 5 * 3  # NFE 4 a batch; the given positions are not counted
    record = cost.record(TokenToy(), "cpu")
    assert record["nfe"] == 4 and record["batch_size"] == 2 and record["precision"] == "float32"
    assert record["samples_per_s"] == pytest.approx(5 / cost.seconds) and record["threads"] == torch.get_num_threads()


def test_only_the_sampler_is_timed_and_every_open_meter_counts_it():
    model = TokenToy()
    x, t = torch.zeros(1, 2, dtype=torch.long), torch.zeros(1)
    with measure_generation() as outer:
        time.sleep(0.05)  # e.g. scoring: not generation
        with measure_generation() as inner, timed_sample(model, 1, 2):
            model(x, t), model(x, t)
            time.sleep(0.02)
        time.sleep(0.05)
    assert outer.calls == inner.calls == 2 and outer.seconds == inner.seconds
    assert 0.02 <= outer.seconds < 0.09
    with timed_sample(model, 1, 2):  # no meter open: nothing is hooked or counted
        model(x, t)
    assert not model._forward_hooks and outer.calls == 2
