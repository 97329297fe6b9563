"""Generative perplexity and entropy under the written protocol."""

import json
import math

import numpy as np
import pytest
import torch

from pathbench.cli import main
from pathbench.core.errors import ConfigError
from pathbench.tasks.adapters.unconditional import generative_perplexity, read_samples, score_texts, unigram_entropy
from pathbench.tasks.scorers import load_scorer
from pathbench.tasks.scorers.causal_lm import EOS_MARKER, SelfScorer

TEXTS = [
    "The prime minister said the economy grew faster than expected.",
    "Shares in the company fell sharply",
    "A new film about the band opened in London on Friday night to mixed reviews from critics.",
    "Sport",
    "The match ended in a draw.",
]


def hf_loss(folder, text):
    from transformers import AutoModelForCausalLM, AutoTokenizer

    tok = AutoTokenizer.from_pretrained(folder)
    model = AutoModelForCausalLM.from_pretrained(folder, dtype=torch.float64).eval()
    ids = torch.tensor([[tok.bos_token_id] + tok.encode(text, add_special_tokens=False)])
    with torch.no_grad():
        return model(input_ids=ids, labels=ids).loss.item(), ids.shape[1] - 1


def test_entropy_known_answers():
    assert unigram_entropy(list(range(1024))) == pytest.approx(math.log(1024))
    assert unigram_entropy([7] * 50) == 0.0
    assert unigram_entropy([1, 1, 2, 2]) == pytest.approx(math.log(2))


def test_gen_ppl_equals_exp_of_the_hf_loss(tiny_lm):
    scorer = load_scorer(f"hf:{tiny_lm}")
    text = TEXTS[4]  # short enough for one window of the 32-position model
    loss, count = hf_loss(tiny_lm, text)
    assert count < 32
    result = score_texts([text], scorer)
    assert result["scored_tokens"] == count
    assert result["gen_ppl"] == pytest.approx(math.exp(loss), rel=1e-4)


def test_batch_size_does_not_change_anything_and_every_sample_is_scored(tiny_lm):
    scorer = load_scorer(f"hf:{tiny_lm}")
    results = [score_texts(TEXTS, scorer, batch_size=b) for b in (1, 3, 8)]
    for other in results[1:]:
        assert other["gen_ppl"] == pytest.approx(results[0]["gen_ppl"], rel=1e-9)
        assert other["scored_tokens"] == results[0]["scored_tokens"]
    expected = sum(len(scorer.tokens_for(t)) for t in TEXTS)
    assert results[0]["scored_tokens"] == expected and results[0]["samples"] == 5


def test_per_sample_data_recomputes_every_number_and_intervals_bracket_them(tiny_lm):
    result = score_texts(TEXTS, load_scorer(f"hf:{tiny_lm}"))
    per = result["per_sample"]
    assert len(per["nll_sum"]) == len(per["tokens"]) == len(per["entropy"]) == len(TEXTS)
    assert sum(per["tokens"]) == result["scored_tokens"]
    assert math.exp(sum(per["nll_sum"]) / sum(per["tokens"])) == pytest.approx(result["gen_ppl"], rel=1e-12)
    assert np.mean(per["entropy"]) == pytest.approx(result["entropy"])
    low, high = result["gen_ppl_ci95"]
    assert low <= result["gen_ppl"] <= high and low < high
    low, high = result["entropy_ci95"]
    assert low <= result["entropy"] <= high
    assert "bootstrap" in result["interval"] and "2000 resamples" in result["interval"]


def test_long_texts_are_scored_in_windows(tiny_lm):
    scorer = load_scorer(f"hf:{tiny_lm}")
    nll = scorer.token_nll([TEXTS[2]])[0]
    assert len(nll) == len(scorer.tokens_for(TEXTS[2])) > scorer.max_length


def test_first_eos_kept_and_the_rest_dropped(tiny_lm):
    scorer = load_scorer(f"hf:{tiny_lm}")
    ids = scorer.tokens_for(f"{EOS_MARKER}Hello world{EOS_MARKER} garbage after the end")
    assert ids == scorer.encode("Hello world") + [scorer.eos_id]


def test_pooled_and_per_sample_means():
    nlls = [np.array([1.0, 1.0]), np.array([3.0])]
    result = generative_perplexity(nlls)
    assert result["gen_ppl"] == pytest.approx(math.exp(5 / 3))
    assert result["gen_ppl_sample_mean"] == pytest.approx((math.exp(1) + math.exp(3)) / 2)


def test_smollm2_prefers_fluent_text():
    scorer = load_scorer("smollm2")
    fluent = "The government said on Monday that it would raise taxes on fuel next year."
    shuffled = " ".join(reversed(fluent.split()))
    ppl = [score_texts([t], scorer)["gen_ppl"] for t in (fluent, shuffled)]
    assert ppl[0] < 100 < ppl[1] and ppl[1] > 10 * ppl[0]


def test_smollm2_from_its_cache_scores_exactly_like_the_gguf(tmp_path):
    """The de-quantised cache holds the same float32 tensors: the same tokens, the same NLLs."""
    from pathbench.tasks.scorers.smollm2 import SMOLLM2_GGUF, smollm2_cache_dir, smollm2_folder, smollm2_scorer

    fresh = smollm2_scorer(root=tmp_path)  # an empty cache: de-quantised from the GGUF file, then saved
    folder = smollm2_cache_dir(smollm2_folder() / SMOLLM2_GGUF, tmp_path)
    assert fresh.source == str(smollm2_folder()) and (folder / "source.json").is_file()
    assert not [p for p in folder.parent.iterdir() if p.name.startswith(".building-")]
    cached = smollm2_scorer(root=tmp_path)
    assert cached.source == str(folder) and cached.model is not fresh.model
    assert [cached.tokens_for(t) for t in TEXTS] == [fresh.tokens_for(t) for t in TEXTS]
    for a, b in zip(cached.token_nll(TEXTS), fresh.token_nll(TEXTS)):
        assert a.dtype == np.float64 and np.array_equal(a, b)
    assert cached.protocol() == fresh.protocol() and cached.spec == "smollm2"


def test_bad_input(tiny_lm, tmp_path):
    scorer = load_scorer(f"hf:{tiny_lm}")
    with pytest.raises(ConfigError, match="sample 1 is empty"):
        score_texts(["fine", ""], scorer)
    blank = score_texts(["fine", "\n\n\n\n"], scorer)  # a collapsed sample is scored, not refused
    assert blank["samples"] == 2 and blank["scored_tokens"] > 2
    with pytest.raises(ConfigError, match="sample 0 has token id 300, outside the vocabulary of 300"):
        score_texts(["fine"], scorer, ids=[[1, 300]], vocab_size=300)
    with pytest.raises(ConfigError, match="is not available offline .* hf:/path/to/model"):
        load_scorer(f"hf:{tmp_path / 'no-model'}")
    with pytest.raises(ConfigError, match="unknown scorer 'gpt5'; known: smollm2, hf:"):
        load_scorer("gpt5")
    (tmp_path / "s.jsonl").write_text(json.dumps({"txt": "x"}) + "\n")
    with pytest.raises(ConfigError, match="s.jsonl:1 has no 'text' field"):
        read_samples(tmp_path / "s.jsonl")


def test_score_command_on_a_plain_text_file(tiny_lm, tmp_path, capsys):

    (tmp_path / "samples.txt").write_text("\n".join(TEXTS) + "\n")
    assert main(["score", str(tmp_path / "samples.txt"), "--scorer", f"hf:{tiny_lm}",
                 "--out", str(tmp_path / "r.json")]) == 0
    result = json.loads((tmp_path / "r.json").read_text())
    assert result["samples"]["samples"] == 5 and "rules" in result["protocol"]
    assert "entropy" in capsys.readouterr().out


def test_eval_unconditional_writes_metrics_with_reference_and_protocol(tiny_lm, tmp_path, data_cache, bbc_small):

    run = tmp_path / "ar"
    assert main(["train", "--method", "ar", "--steps", "2", "--out", str(run), f"data.cache_dir={data_cache}",
                 "data.vocab_size=512", "data.seq_len=32", "batch_size=8", "progress=false"]) == 0
    out = tmp_path / "eval"
    assert main(["eval", "--ckpt", str(run), "--task", "unconditional", "--n", "5", "--batch-size", "2",
                 "--out", str(out), f"scorer=hf:{tiny_lm}"]) == 0
    result = json.loads((out / "metrics.json").read_text())
    assert result["metrics"]["samples"] == 5 and result["reference"]["samples"] == 5
    for row in (result["metrics"], result["reference"]):
        assert row["gen_ppl"] > 1 and row["entropy"] > 0  # entropy always beside perplexity
    assert "entropy_generator_ids" in result["metrics"]
    assert result["protocol"]["scorer"] == f"hf:{tiny_lm}" and result["sampler"]["name"] == "ancestral"
    assert len((out / "samples.jsonl").read_text().splitlines()) == 5


def test_runs_that_differ_only_in_scorer_share_one_draw(tiny_lm, tmp_path, data_cache, bbc_small, monkeypatch):
    import pathbench.evaluation.evaluate as evaluate
    import pathbench.tasks.adapters.unconditional as unconditional
    from pathbench.engine.run import draw_samples

    run = tmp_path / "kl"
    assert main(["train", "--method", "kl", "--steps", "2", "--out", str(run), f"data.cache_dir={data_cache}",
                 "data.vocab_size=512", "data.seq_len=32", "batch_size=8", "progress=false"]) == 0
    calls = []
    monkeypatch.setattr(unconditional, "draw_samples", lambda *a, **k: calls.append(a[-2]) or draw_samples(*a, **k))
    sampler = {"name": "sampling", "nfe": 3, "top_k": 5}
    first = evaluate.eval_run(run, "unconditional", tmp_path / "a", sampler, n=3,
                              task_options={"scorer": f"hf:{tiny_lm}"})
    second = evaluate.eval_run(run, "unconditional", tmp_path / "b", sampler, n=3,
                               task_options={"scorer": f"hf:{tiny_lm}", "batch_size": 1})
    assert len(calls) == 1  # the second run (another scorer setting) reused the draw
    cost = first["generation"]  # measured: the sampler's own time, scoring excluded
    assert cost["samples"] == 3 and cost["tokens"] == 3 * 32 and cost["nfe"] == 3 and cost["model_calls"] == 3
    assert cost["seconds"] > 0 and cost["samples_per_s"] == pytest.approx(3 / cost["seconds"])
    assert cost["tokens_per_s"] == pytest.approx(96 / cost["seconds"]) and cost["batch_size"] == 3
    assert cost["device"] == "cpu" and cost["precision"] == "float32" and cost["threads"] >= 1
    assert second["generation"]["reused_draw"] and second["generation"]["seconds"] == cost["seconds"]
    assert json.loads((tmp_path / "a" / "metrics.json").read_text())["generation"] == cost
    assert (tmp_path / "a" / "samples.jsonl").read_text() == (tmp_path / "b" / "samples.jsonl").read_text()
    assert first["metrics"]["gen_ppl"] == pytest.approx(second["metrics"]["gen_ppl"], rel=1e-9)
    evaluate.eval_run(run, "unconditional", tmp_path / "c", {**sampler, "nfe": 4}, n=3,
                      task_options={"scorer": f"hf:{tiny_lm}"})
    assert len(calls) == 2  # another sampler draws anew


def test_eval_refuses_to_overwrite_and_a_failed_eval_leaves_no_folder(tiny_lm, tmp_path, data_cache, bbc_small,
                                                                      capsys):

    run = tmp_path / "kl"
    assert main(["train", "--method", "kl", "--steps", "2", "--out", str(run), f"data.cache_dir={data_cache}",
                 "data.vocab_size=512", "data.seq_len=32", "batch_size=8", "progress=false"]) == 0
    out = tmp_path / "ev"
    args = ["eval", "--ckpt", str(run), "--task", "unconditional", "--n", "2", "--nfe", "2", "--out", str(out),
            f"scorer=hf:{tiny_lm}"]
    assert main(args) == 0
    before = {name: (out / name).read_bytes() for name in ("metrics.json", "samples.jsonl")}
    capsys.readouterr()
    assert main([*args[:-1], "--seed", "1", "scorer=hf:/nonexistent"]) == 2
    err = capsys.readouterr().err.strip()
    assert len(err.splitlines()) == 1 and "already holds an evaluation" in err and "--overwrite" in err
    assert {name: (out / name).read_bytes() for name in before} == before  # nothing was overwritten
    assert main([*args, "--overwrite", "--seed", "1"]) == 0
    assert (out / "samples.jsonl").read_bytes() != before["samples.jsonl"]
    fresh = tmp_path / "never"
    assert main([*args[:-3], "--out", str(fresh), "scorer=hf:/nonexistent"]) == 2
    assert not fresh.exists()  # a failed evaluation leaves no folder behind


def test_a_self_scorer_that_is_not_trained_to_the_end_is_refused(tmp_path, data_cache, bbc_small):
    """A sibling AR unit preempted mid-training (its meta asks for more steps than its checkpoint
    holds) cannot score anyone: a half-trained scorer would give silently wrong gen-PPLs."""
    folder = tmp_path / "ar"
    assert main(["train", "--method", "ar", "--steps", "2", "--out", str(folder), f"data.cache_dir={data_cache}",
                 "data.vocab_size=512", "data.seq_len=32", "progress=false"]) == 0
    assert SelfScorer(str(folder)).protocol()["checkpoint_step"] == 2
    meta = json.loads((folder / "meta.json").read_text())
    meta["train"]["steps"] = 4  # what a run asked for 4 steps and stopped at its step-2 checkpoint looks like
    (folder / "meta.json").write_text(json.dumps(meta))
    with pytest.raises(ConfigError, match="not trained to the end: its checkpoint is at step 2 of 4"):
        SelfScorer(str(folder))


def test_a_scorer_loaded_in_bf16_is_recorded_and_scores_close_to_float32(tiny_lm):
    from pathbench.tasks.adapters.unconditional import Unconditional

    texts = ["The market rose sharply today.", "Ministers met in London to agree the budget."]
    full = Unconditional(scorer=f"hf:{tiny_lm}")
    half = Unconditional(scorer=f"hf:{tiny_lm}", scorer_dtype="bfloat16")
    assert half.scorer() is not full.scorer()  # one loaded model per placement, not the first one
    assert next(half.scorer().model.parameters()).dtype == torch.bfloat16
    a, b = full.score_samples(texts), half.score_samples(texts)
    assert a["gen_ppl"] != b["gen_ppl"] and b["gen_ppl"] == pytest.approx(a["gen_ppl"], rel=0.05)
    assert half.protocol()["dtype"] == "bfloat16" and "dtype" not in full.protocol()
    assert half.protocol()["nll_dtype"] == "float64"


def test_bad_scorer_placements_name_the_valid_ones(tiny_lm):
    from pathbench.tasks.adapters.unconditional import Unconditional

    with pytest.raises(ConfigError, match="unknown scorer dtype 'bf16'; known: float32, bfloat16, float16"):
        Unconditional(scorer=f"hf:{tiny_lm}", scorer_dtype="bf16")
    with pytest.raises(ConfigError, match="unknown scorer device_map 'everywhere'; known: auto"):
        Unconditional(scorer=f"hf:{tiny_lm}", scorer_device_map="everywhere")
