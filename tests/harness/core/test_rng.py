"""Row streams: each row of a draw comes from its own generator, a batch stream is torch's own."""

import pytest
import torch

from pathbench.core.errors import ConfigError
from pathbench.core.rng import RowGenerators, check_seeding, normal_, rand, row_generators, row_seed, uniform_


def test_row_r_of_a_draw_is_what_generator_r_alone_draws():
    seeds = [3, 11, 5]
    drawn = rand((3, 4, 7), RowGenerators.seeded(seeds), dtype=torch.float64)
    for row, seed in enumerate(seeds):
        alone = torch.rand((4, 7), generator=torch.Generator().manual_seed(seed), dtype=torch.float64)
        assert torch.equal(drawn[row], alone)
    out = normal_(torch.empty(3, 5), 0.0, 2.0, RowGenerators.seeded(seeds))
    assert torch.equal(out[1], torch.empty(5).normal_(0.0, 2.0, generator=torch.Generator().manual_seed(11)))


def test_a_batch_generator_draws_exactly_as_torch_does():
    ours = uniform_(torch.empty(4, 9), torch.Generator().manual_seed(7))
    assert torch.equal(ours, torch.empty(4, 9).uniform_(generator=torch.Generator().manual_seed(7)))
    assert torch.equal(rand((2, 3), torch.Generator().manual_seed(1)),
                       torch.rand((2, 3), generator=torch.Generator().manual_seed(1)))


def test_a_draw_whose_first_axis_is_not_the_rows_is_refused():
    with pytest.raises(ValueError, match="first axis"):
        uniform_(torch.empty(2, 5), RowGenerators.seeded([1, 2, 3]))


def test_slices_keep_the_streams_of_their_rows():
    gens = row_generators(0, range(4))
    assert torch.equal(rand((2, 6), gens[2:]), rand((2, 6), row_generators(0, [2, 3])))


def test_row_seeds_depend_on_seed_index_and_stream_only_and_never_collide():
    seeds = {row_seed(s, i, c) for s in range(3) for i in range(200) for c in range(5)}
    assert len(seeds) == 3 * 200 * 5
    assert all(0 <= s < 2**63 for s in seeds)
    assert row_seed(1, 17, 2) == row_seed(1, 17, 2)


def test_an_unknown_seeding_names_the_valid_ones():
    with pytest.raises(ConfigError, match="unknown seeding 'rows'; known: batch, row"):
        check_seeding("rows")
