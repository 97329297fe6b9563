"""The ``oracle`` scorer: exact likelihood of samples, the HMM's own samples at exp(entropy),
a trained AR model approaching it, and the refusals."""

import json
import math

import numpy as np
import pytest
import torch

from pathbench.cli import main
from pathbench.core.errors import ConfigError
from pathbench.data.corpus import prepare_data
from pathbench.data.oracle import HMM, OracleSpec
from pathbench.tasks.adapters.unconditional import score_file, score_texts
from pathbench.tasks.scorers import load_scorer, scorer_for_data

LAW = "oracle:V=64,H=4,k=8,succ=2,seed=2"
CORPUS = LAW + ",n=3000"


def test_the_hmms_own_samples_score_exp_of_their_entropy():
    """Gen-PPL of the HMM's samples = exp(H(X_1..S)/S) within 3 standard errors (both Monte Carlo)."""
    scorer = load_scorer(LAW)
    hmm = scorer.hmm
    samples = hmm.sample(2000, 16, np.random.default_rng(11))
    result = score_texts([scorer.tokenizer.decode(row) for row in samples.tolist()], scorer)
    truth = hmm.entropy(16, count=4000, seed=5)
    per_sample = np.array(result["per_sample"]["nll_sum"]) / 16
    se = math.hypot(per_sample.std(ddof=1) / math.sqrt(len(per_sample)), truth["per_token_se"])
    assert result["scored_tokens"] == 2000 * 16
    assert abs(result["nll_per_token"] - truth["per_token"]) < 3 * se
    assert result["gen_ppl_ci95"][0] < math.exp(truth["per_token"]) < result["gen_ppl_ci95"][1]
    assert truth["rate"] <= truth["per_token"] + 3 * truth["per_token_se"]  # the start costs a little extra


def test_scores_are_the_forward_algorithm_and_logits_agree():
    scorer = load_scorer(LAW)
    ids = scorer.hmm.sample(3, 10, np.random.default_rng(0))
    nll = scorer.nll_of_tokens(ids.tolist())
    np.testing.assert_array_equal(np.stack(nll), np.stack(scorer.hmm.token_nll(ids.tolist())))
    logp = scorer.logits(torch.as_tensor(ids), torch.ones_like(torch.as_tensor(ids)))  # (B, L, V + 1)
    nxt = -logp[:, :-1].gather(-1, torch.as_tensor(ids[:, 1:, None])).squeeze(-1).numpy()
    np.testing.assert_allclose(nxt, np.stack(nll)[:, 1:], rtol=1e-10)
    assert torch.allclose(logp[..., :-1].exp().sum(-1), torch.ones(3, 10, dtype=torch.float64))
    # EOS cuts the sample and is not scored; leading EOS is a start
    text = scorer.tokenizer.decode([64, *ids[0, :4].tolist(), 64, *ids[0, 4:].tolist()])
    assert scorer.tokens_for(text) == ids[0, :4].tolist()


def test_refusals(tmp_path):
    with pytest.raises(ConfigError, match="this run was trained on corpus 'bbc'"):
        scorer_for_data("oracle", {"corpus": "bbc"})
    with pytest.raises(ConfigError, match="another HMM than the one this run was trained on"):
        scorer_for_data("oracle:V=64,seed=9", {"corpus": CORPUS})
    assert scorer_for_data("oracle", {"corpus": CORPUS}) == OracleSpec.parse(LAW).law()
    assert scorer_for_data(LAW + ",n=5", {"corpus": CORPUS}) == OracleSpec.parse(LAW).law()  # n is not the law
    with pytest.raises(ConfigError, match="name the HMM in full"):
        load_scorer("oracle")
    text = tmp_path / "bbc.txt"
    text.write_text("Quarterly profits at US media giant TimeWarner jumped\n")
    with pytest.raises(ConfigError, match="'Quarterly' is not a word of the oracle tokenizer"):
        score_file(text, LAW)


@pytest.fixture(scope="module")
def oracle_ar(tmp_path_factory):
    """An AR model on the oracle corpus, evaluated after 5 steps and again after 200."""
    root = tmp_path_factory.mktemp("oracle-ar")
    common = ["--method", "ar", "--out", str(root / "ar"), f"data.corpus={CORPUS}", "data.tokenizer=oracle",
              f"data.cache_dir={root / 'cache'}", "data.seq_len=16", "batch_size=32", "lr=3e-3", "warmup=5",
              "eval_every=100", "ckpt_every=100", "model.n_layer=2", "model.d_model=64", "progress=false"]
    evals = {}
    for steps in (5, 200):
        assert main(["train", "--steps", str(steps), *common, *(["--resume"] if steps > 5 else [])]) == 0
        out = root / f"eval-{steps}"
        assert main(["eval", "--ckpt", str(root / "ar"), "--task", "unconditional", "--n", "96", "--top-k", "none",
                     "--out", str(out), "scorer=oracle"]) == 0
        evals[steps] = json.loads((out / "metrics.json").read_text())
    return evals


def test_ar_gen_ppl_approaches_the_entropy_as_it_trains(oracle_ar):
    early, late = oracle_ar[5], oracle_ar[200]
    reference = late["reference"]
    assert late["scorer"] == OracleSpec.parse(LAW).law()
    assert late["protocol"]["scorer"] == late["scorer"] and "forward algorithm" in late["protocol"]["nll"]
    entropy = reference["entropy_per_token"]
    assert reference["entropy_rate"] == pytest.approx(entropy, abs=0.1)
    # the HMM's held-out samples (the reference row) sit at the truth
    ref_se = math.sqrt(np.var(np.array(reference["per_sample"]["nll_sum"]) / 16, ddof=1) / 96)
    assert abs(reference["nll_per_token"] - entropy) < 3 * math.hypot(ref_se, reference["entropy_per_token_se"])
    gap_early = early["metrics"]["nll_per_token"] - entropy
    gap_late = late["metrics"]["nll_per_token"] - entropy
    assert gap_early > 1.0  # 5 steps: far from the law
    assert gap_late < 0.25 * gap_early and gap_late < 0.3  # 200 steps: near it (in nats per token)


def test_a_run_of_another_corpus_is_refused_by_eval(kl_run, tmp_path, capsys):
    assert main(["eval", "--ckpt", str(kl_run), "--task", "unconditional", "--n", "2", "--out", str(tmp_path / "e"),
                 "scorer=oracle"]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and "trained on corpus 'bbc'" in err[0] and not (tmp_path / "e").exists()


def test_score_file_of_the_held_out_split_is_its_exact_likelihood(tmp_path):
    """`pathbench score --scorer oracle:...` of the HMM's own validation sequences as plain text."""
    data = prepare_data(CORPUS, "oracle", 16, tmp_path / "cache")
    sample_file = tmp_path / "val.txt"
    sample_file.write_text("\n".join(data.tokenizer.decode(row) for row in np.asarray(data.val)[:96].tolist()))
    hmm = HMM.build(OracleSpec.parse(CORPUS).for_length(16))
    result = score_file(sample_file, LAW)
    nll = np.concatenate(hmm.token_nll(np.asarray(data.val)[:96].tolist()))
    assert result["samples"]["nll_per_token"] == pytest.approx(nll.mean(), rel=1e-12)
