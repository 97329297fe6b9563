"""The oracle language: forward algorithm against enumeration, sampling against the exact law,
the spec's errors, the corpus on disk, and the same law at two vocabulary sizes."""

import itertools
import json
import math

import numpy as np
import pytest
import torch

from pathbench.cli import main
from pathbench.core.errors import ConfigError
from pathbench.data.corpus import prepare_data
from pathbench.data.oracle import HMM, OracleSpec, stationary
from pathbench.data.tokenizer import WordTokenizer, load_tokenizer
from pathbench.sweep.experiment import expand

TINY = "oracle:V=3,H=2,k=2,succ=2,floor=0.1,seed=1"


def brute_force(hmm: HMM, x: tuple[int, ...]) -> float:
    """p(x) summed over every hidden path (H^S terms)."""
    emit, total = hmm.emit, 0.0
    for z in itertools.product(range(hmm.spec.H), repeat=len(x)):
        p = hmm.start[z[0]] * emit[z[0], x[0]]
        for t in range(1, len(x)):
            p *= hmm.trans[z[t - 1], z[t]] * emit[z[t], x[t]]
        total += p
    return total


@pytest.fixture(scope="module")
def tiny():
    return HMM.build(OracleSpec.parse(TINY))


def test_forward_algorithm_equals_enumeration(tiny):
    sequences = list(itertools.product(range(3), repeat=4))  # V = 3, S = 4: all 81
    exact = np.array([brute_force(tiny, x) for x in sequences])
    forward = np.array([math.exp(-nll.sum()) for nll in tiny.token_nll([list(x) for x in sequences])])
    assert exact.sum() == pytest.approx(1.0, abs=1e-12)
    np.testing.assert_allclose(forward, exact, rtol=1e-12, atol=0)
    # prefixes are marginals: sequences of different lengths in one batch
    short = tiny.token_nll([[0, 2], [1, 1, 0, 2]])
    assert math.exp(-short[0].sum()) == pytest.approx(sum(brute_force(tiny, (0, 2, a, b))
                                                          for a in range(3) for b in range(3)), rel=1e-12)
    assert len(short[1]) == 4


def test_samples_follow_the_exact_law(tiny):
    """Mean NLL per token of the HMM's own samples = H(X_1..4)/4 by enumeration, within 3 SE."""
    sequences = list(itertools.product(range(3), repeat=4))
    p = np.array([brute_force(tiny, x) for x in sequences])
    exact_entropy = float(-(p * np.log(p)).sum()) / 4
    samples = tiny.sample(20000, 4, np.random.default_rng(0))
    per_sequence = np.stack(tiny.token_nll(samples.tolist())).mean(1)
    se = per_sequence.std(ddof=1) / math.sqrt(len(per_sequence))
    assert abs(per_sequence.mean() - exact_entropy) < 3 * se
    # and the empirical frequencies match p (chi-square-sized check on the 81 cells)
    counts = np.zeros(len(sequences))
    for row in samples:
        counts[int(row[0]) * 27 + int(row[1]) * 9 + int(row[2]) * 3 + int(row[3])] += 1
    assert np.abs(counts / len(samples) - p).max() < 5 * math.sqrt(p.max() / len(samples))


def test_an_impossible_token_has_infinite_nll():
    hmm = HMM.build(OracleSpec.parse("oracle:V=16,H=2,k=2,succ=2,floor=0"))
    unused = next(v for v in range(16) if v not in hmm.support)
    nll = hmm.token_nll([[int(hmm.support[0, 0]), unused], [99]])
    assert math.isfinite(nll[0][0]) and nll[0][1] == math.inf and nll[1][0] == math.inf


def test_structure_is_stationary_sparse_and_zipf():
    hmm = HMM.build(OracleSpec.parse("oracle:V=500,H=6,k=5,succ=2,zipf=1.5,seed=3"))
    np.testing.assert_allclose(hmm.start @ hmm.trans, hmm.start, atol=1e-12)
    assert ((hmm.trans > 0).sum(1) == 2).all() and np.allclose(hmm.trans.sum(1), 1)
    ranks = np.arange(1, 6) ** -1.5
    np.testing.assert_allclose(hmm.support_p[0], ranks / ranks.sum())
    assert len(set(hmm.support.ravel().tolist())) == 30  # pool = H·k: disjoint supports
    np.testing.assert_allclose(hmm.emit.sum(1), 1.0)
    np.testing.assert_allclose(stationary(np.array([[0.0, 1.0], [1.0, 0.0]])), [0.5, 0.5])


def test_the_same_law_at_two_vocabulary_sizes():
    small = HMM.build(OracleSpec.parse("oracle:V=64,H=8,k=8,floor=0"))
    large = HMM.build(OracleSpec.parse("oracle:V=8192,H=8,k=8,floor=0"))
    np.testing.assert_array_equal(small.trans, large.trans)
    np.testing.assert_array_equal(small.support_p, large.support_p)
    # the token names differ, the assignment of pool tokens to states does not
    rename = dict(zip(small.support.ravel().tolist(), large.support.ravel().tolist()))
    assert len(rename) == 64 and len(set(rename.values())) == 64 and max(large.support.ravel()) >= 64
    x = small.sample(50, 16, np.random.default_rng(0))
    renamed = np.vectorize(rename.get)(x)
    np.testing.assert_allclose(np.stack(small.token_nll(x.tolist())), np.stack(large.token_nll(renamed.tolist())),
                               rtol=1e-12)


@pytest.mark.parametrize("spec, named", [
    ("oracle:V=1", "V = 1"), ("oracle:H=0", "H = 0"), ("oracle:zipf=0", "zipf = 0.0"),
    ("oracle:zipf=-1", "zipf = -1.0"), ("oracle:k=0", "k = 0"), ("oracle:succ=9,H=4", "succ = 9"),
    ("oracle:floor=1", "floor = 1.0"), ("oracle:pool=5,k=8", "pool = 5"), ("oracle:n=1", "n = 1"),
    ("oracle:V=ten", "V = 'ten'"), ("oracle:states=4", "unknown parameter 'states=4'"),
])
def test_bad_parameters_are_one_line_errors_naming_them(spec, named):
    with pytest.raises(ConfigError, match=f"oracle corpus: {named}") as err:
        OracleSpec.parse(spec)
    assert "\n" not in str(err.value)


def test_spec_round_trips_and_its_law_ignores_the_corpus_size():
    spec = OracleSpec.parse("oracle:V=64,seed=4,n=300")
    assert OracleSpec.parse(spec.canonical()) == spec
    assert spec.law() == OracleSpec.parse("oracle:V=64,seed=4,n=999999").law()
    assert "n=" not in spec.law() and "seed=4" in spec.law()


def test_prepared_corpus_splits_by_index_and_writes_the_hmm(tmp_path):
    data = prepare_data("oracle:V=64,n=200", "oracle", 12, tmp_path, val_fraction=0.1)
    spec = OracleSpec.parse("oracle:V=64,n=200").for_length(12)
    hmm = HMM.build(spec)
    every = hmm.sequences(0, 200, 12)
    np.testing.assert_array_equal(np.asarray(data.val), every[9::10])
    assert data.train.shape == (180, 12) and data.val.shape == (20, 12)
    assert data.info["tokenizer"] == "oracle:64" and data.tokenizer.vocab_size == 65 and data.tokenizer.eos_id == 64
    assert not (np.asarray(data.train) == 64).any()  # EOS never occurs in the data
    # the HMM beside the data recomputes the same likelihood
    again = HMM.read(data.folder, spec)
    np.testing.assert_array_equal(again.token_nll(every[:3].tolist()), hmm.token_nll(every[:3].tolist()))
    info = json.loads((data.folder / "hmm.json").read_text())
    assert info["spec"] == spec.canonical() and info["entropy_nats"]["rate"] > 0
    # prefix-stable: a larger corpus keeps the first sequences (blocks of 1,024 have their own stream)
    np.testing.assert_array_equal(hmm.sequences(0, 50, 12), HMM.build(spec).sequences(0, 2000, 12)[:50])
    np.testing.assert_array_equal(hmm.sequences(1020, 1030, 12), hmm.sequences(0, 1030, 12)[1020:])


def test_oracle_data_errors(tmp_path):
    with pytest.raises(ConfigError, match="set data.tokenizer=oracle"):
        prepare_data("oracle:V=64", "bpe", 12, tmp_path)
    with pytest.raises(ConfigError, match="len = 64 is longer than the model's seq_len = 12"):
        prepare_data("oracle:V=64,len=64", "oracle", 12, tmp_path)
    with pytest.raises(ConfigError, match="n = 5 sequences leave no validation sequence"):
        prepare_data("oracle:V=64,n=5", "oracle", 12, tmp_path, val_fraction=0.1)


def test_word_tokenizer_round_trips_and_refuses_other_text(tmp_path):
    tok = WordTokenizer(8192)
    ids = [0, 1, 79, 80, 8191, 8192, 5]
    text = tok.decode(ids)
    assert tok.encode(text) == ids and text.split()[0] == "bababa" and "<|endoftext|>" in text
    assert len(set(tok.words)) == 8192
    tok.save(tmp_path / "tok")
    assert load_tokenizer(tmp_path / "tok").decode(ids) == text
    with pytest.raises(ConfigError, match="'Quarterly' is not a word of the oracle tokenizer with V = 8192"):
        tok.encode("Quarterly profits")
    assert WordTokenizer(64).decode([0, 1, 5]) == "ba be da"  # one syllable a word where 80 cover V


def test_token_posterior_is_the_exact_bayes_posterior(tiny):
    """Forward–backward against p(x | y) ∝ p(x) Π_j p(y^j | x^j) summed over all 81 sequences."""
    lik = torch.rand(2, 4, 4, generator=torch.Generator().manual_seed(0), dtype=torch.float64)  # V' = V + EOS
    post = tiny.token_posterior(lik.log())
    for row in range(2):
        marginal = np.zeros((4, 3))
        for x in itertools.product(range(3), repeat=4):
            weight = brute_force(tiny, x) * np.prod([lik[row, j, x[j]].item() for j in range(4)])
            for j in range(4):
                marginal[j, x[j]] += weight
        np.testing.assert_allclose(post[row, :, :3].exp().numpy(), marginal / marginal.sum(1, keepdims=True),
                                   atol=1e-14)
    assert torch.isinf(post[..., 3]).all()  # EOS: never emitted


def test_a_bad_oracle_spec_fails_before_a_sweep_or_a_run_starts(tmp_path):
    raw = {"methods": ["ar"], "samplers": [{"name": "ancestral"}],
           "tasks": [{"name": "unconditional", "scorers": ["oracle"]}],
           "data": {"corpus": "oracle:V=16,H=2", "tokenizer": "oracle", "seq_len": 8}}
    with pytest.raises(ConfigError, match=r"oracle corpus: succ = 3 \(successors per state\) must be in \[1, H = 2\]"):
        expand(raw)
    assert main(["train", "--method", "ar", "--steps", "1", "--out", str(tmp_path / "r"),
                 "data.corpus=oracle:V=1", "data.tokenizer=oracle"]) == 2
    assert not (tmp_path / "r").exists()  # nothing was created
