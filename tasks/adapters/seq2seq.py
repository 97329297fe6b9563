"""Seq2seq tasks scored with BLEU, ROUGE-L and BERTScore (see pathbench.tasks.metrics.text).

Each example is ``[prompt, N]``: the prompt is given text (one or more string parts, see
``prompt_parts``), N free positions hold the response.
The response budget is the option ``response_tokens`` (default 32). With the reference
tokenised by the model's tokenizer into t tokens, **N = min(response_tokens, t)** (the length
of the answer is given, as in NAR infilling benchmarks), and the reference scored against is
the text of those N tokens: ``decode(encode(reference)[:N])`` — the whole reference when it
fits, its first N tokens otherwise (``meta["truncated"]`` says which). An example whose
prompt + N does not fit ``seq_len`` is skipped, counted in ``skipped_too_long`` (returned by
``score`` and shown in the protocol) and warned about; if every example is skipped it is an error.

Tasks:

* ``headline_lead`` (embedded, offline): BBC News documents held out by
  ``pathbench.data.corpus.is_validation(doc, val_fraction=0.05)`` (the training split's complement for
  any run with ``data.val_fraction`` >= this one: the hash threshold is monotone), in corpus
  order, less those whose headline or lead a training document shares (BBC's near-duplicates,
  3 of 97; ``drop_seen=False`` keeps them). Prompt = headline + "\\n\\n" tokenised as inside the
  document (:func:`document_parts`: what ``data.given=headline`` trains on); reference = the lead: the first
  sentence (cut after the first '.', '!' or '?' that is followed by whitespace and an upper-case
  letter, digit or quote) of the first paragraph whose first sentence ends in terminal
  punctuation (skips picture captions such as "The shape of the UK's economy In graphics").
* ``wmt14_de_en``: ``datasets.load_dataset("wmt14", "de-en", split="test")`` rows
  ``{"translation": {"de", "en"}}``; prompt = ``template.format(source=de)``.
* ``lamini``: ``datasets.load_dataset("MBZUAI/LaMini-instruction", split="train")`` rows
  ``{"instruction", "response"}``; prompt = ``template.format(source=instruction)``.

Both hub tasks take ``data_files=<local .jsonl>`` in the same schema instead of the hub.

Metrics (``score``), with n candidates and ``top_k_list`` (default (1, n)): ``bleu`` = corpus
BLEU of candidate 0; ``bleu_top{k}``/``bleu_avg``, ``rougeL_top{k}``/``rougeL_avg``,
``bertscore_f1_top{k}``/``bertscore_f1_avg`` per pathbench.tasks.metrics.text.TABLE5. Each number is
followed by ``<name>_ci95``, a seeded percentile bootstrap 95 % interval over examples (a
prompt resampled with all its candidates; ``interval`` describes it, "none: a single example"
when there is one). ``per_example`` (last) holds the raw data every statistic is recomputed
from: ``sentence_bleu``, ``rougeL``, ``bertscore_f1`` as [example][candidate] values and
``corpus_bleu_stats`` [example] = candidate 0's sacrebleu statistics (corpus BLEU = the score
of their column sums; see pathbench.tasks.metrics.text.table5).
"""

from __future__ import annotations

import importlib.metadata
import os
import re
import warnings
from collections.abc import Iterator
from typing import Any

from pathbench.core.errors import ConfigError
from pathbench.core.registry import TASKS
from pathbench.data.corpus import is_validation, load_corpus
from pathbench.tasks.adapters.base import Example, ExampleTask, check_generations
from pathbench.tasks.metrics.text import (
    TABLE5,
    BertScoreF1,
    bleu_signatures,
    corpus_bleu_stats,
    rouge_l,
    rouge_protocol,
    sentence_bleu,
    table5,
)

_SENTENCE_END = re.compile(r"(?<=[.!?])\s+(?=[\"'‘“A-Z0-9])")


def lead_sentence(article: str) -> str:
    """First sentence of the first paragraph whose first sentence ends in . ! ? or a closing
    quote (paragraphs without one are captions such as "... In graphics"); else of the first one."""
    paras = [p.strip() for p in article.split("\n") if p.strip()]
    firsts = [_SENTENCE_END.split(p, maxsplit=1)[0].strip() for p in paras]
    return next((f for f in firsts if f[-1] in ".!?\"'’”"), firsts[0] if firsts else "")


def split_headline(doc: str) -> tuple[str, str]:
    """(headline, body) of a BBC document: first line, then the rest."""
    head, _, body = doc.strip().partition("\n")
    return head.strip(), body.strip()


def document_parts(tokenizer, prompt: str, continuation: str) -> list[str] | None:
    """Given-text parts whose separate encodings concatenate to the tokens ``prompt`` has inside
    ``prompt + continuation`` (a training document), or None when no split does.

    The prompt's trailing whitespace w is tried whole, then as head + w[:j] followed by the
    single characters of w[j:] (j = len(w)-1 .. 0): "h\\n\\n" inside "h\\n\\nBody" is
    [h, "\\n", "\\n"] for a byte-level BPE, which ``encode("h\\n\\n")`` alone writes as [h, "\\n\\n"]."""
    ids = tokenizer.encode(prompt + continuation)
    inside = next((ids[:k] for k in range(1, len(ids) + 1) if tokenizer.decode(ids[:k]) == prompt), None)
    if inside is None:
        return None
    head = prompt.rstrip()
    sep = prompt[len(head):]
    splits = [[prompt]] + [[head + sep[:j], *sep[j:]] for j in range(len(sep) - 1, -1, -1)]
    for parts in splits:
        parts = [p for p in parts if p]
        if [t for p in parts for t in tokenizer.encode(p)] == inside:
            return parts
    return None


class Seq2SeqTask(ExampleTask):
    """Prompt -> response examples with Table-5 scoring; subclasses yield (prompt, reference, meta)."""

    def __init__(self, response_tokens: int = 32, top_k_list: list[int] | tuple[int, ...] | None = None,
                 bertscore: bool = True, bertscore_model: str | None = None, bertscore_layers: int | None = None,
                 bertscore_lang: str | None = None, rescale_with_baseline: bool = False,
                 bertscore_batch_size: int = 64, device: str = "cpu") -> None:
        if not isinstance(response_tokens, int) or response_tokens < 1:
            raise ConfigError(f"response_tokens = {response_tokens!r} must be a positive int")
        if top_k_list is not None and (not top_k_list or not all(isinstance(k, int) and k >= 1 for k in top_k_list)):
            raise ConfigError(f"top_k_list = {top_k_list!r} must be a non-empty list of positive ints")
        self.response_tokens = response_tokens
        self.top_k_list = tuple(top_k_list) if top_k_list is not None else None
        if self.top_k_list:  # Top-k of k candidates: eval refuses fewer before any model loads
            self.min_candidates = max(self.top_k_list)
            self.candidates_reason = f"top_k_list = {list(self.top_k_list)}"
        self.bertscore = bool(bertscore)
        self._bert_options = dict(model=bertscore_model, num_layers=bertscore_layers, lang=bertscore_lang,
                                  rescale_with_baseline=rescale_with_baseline, batch_size=bertscore_batch_size,
                                  device=device)
        self._bert: BertScoreF1 | None = None
        self.skipped_too_long = 0
        if rescale_with_baseline and self.bertscore:
            self._scorer()  # fail at construction, not after generation

    def pairs(self) -> Iterator[tuple[str, str, dict[str, Any]]]:
        raise NotImplementedError

    def prompt_parts(self, tokenizer, prompt: str, reference: str) -> list[str]:
        """The given parts of a prompt (one string; HeadlineLead tokenises it as in a document)."""
        return [prompt]

    def _scorer(self) -> BertScoreF1:
        if self._bert is None:
            self._bert = BertScoreF1(**self._bert_options)
        return self._bert

    def examples(self, tokenizer, seq_len: int, limit: int | None = None) -> list[Example]:
        if limit is not None and limit < 1:
            raise ConfigError(f"limit = {limit} must be >= 1")
        out: list[Example] = []
        self.skipped_too_long = 0
        for prompt, reference, meta in self.pairs():
            if limit is not None and len(out) >= limit:
                break
            ref_ids = tokenizer.encode(reference)
            if not ref_ids:
                continue  # nothing to generate; never happens for non-empty references
            n = min(self.response_tokens, len(ref_ids))
            parts = self.prompt_parts(tokenizer, prompt, reference)
            prompt_len = sum(len(tokenizer.encode(p)) for p in parts)
            if prompt_len + n > seq_len:
                self.skipped_too_long += 1
                continue
            target = reference if n == len(ref_ids) else tokenizer.decode(ref_ids[:n])
            out.append(Example([*parts, n], [target], {**meta, "reference_full": reference,
                                                       "reference_tokens": len(ref_ids), "response_tokens": n,
                                                       "prompt_tokens": prompt_len,
                                                       "truncated": n < len(ref_ids)}))
        if self.skipped_too_long:
            warnings.warn(f"{type(self).__name__}: skipped {self.skipped_too_long} examples whose prompt + "
                          f"response does not fit seq_len = {seq_len}", stacklevel=2)
        if not out:
            raise ConfigError(f"no example fits seq_len = {seq_len} ({self.skipped_too_long} too long); "
                              "raise seq_len or lower response_tokens")
        return out

    def score(self, examples: list[Example], generations: list[list[list[str]]]) -> dict[str, Any]:
        n = check_generations(examples, generations)
        for e, (example, cands) in enumerate(zip(examples, generations)):
            for c, slots in enumerate(cands):
                if len(slots) != len(example.references):
                    raise ConfigError(f"example {e} candidate {c} has {len(slots)} slots, expected "
                                      f"{len(example.references)}")
        ks = self.top_k_list or tuple(sorted({1, n}))
        refs = [ex.references[0] for ex in examples]
        flat_h = [cands[c][0] for cands in generations for c in range(n)]
        flat_r = [r for r in refs for _ in range(n)]

        def grid(values: list[float]) -> list[list[float]]:
            return [values[i * n:(i + 1) * n] for i in range(len(examples))]

        per_example: dict[str, list] = {"sentence_bleu": grid(sentence_bleu(flat_h, flat_r)),
                                        "rougeL": grid(rouge_l(flat_h, flat_r))}
        if self.bertscore:
            per_example["bertscore_f1"] = grid(self._scorer()(flat_h, flat_r))
        per_example["corpus_bleu_stats"] = corpus_bleu_stats([cands[0][0] for cands in generations], refs)
        result = table5(per_example, ks)
        result.update(n_examples=len(examples), candidates=n, skipped_too_long=self.skipped_too_long)
        result["per_example"] = per_example  # raw data last: what every statistic is recomputed from
        return result

    def protocol(self) -> dict[str, Any]:
        proto: dict[str, Any] = {
            "task": type(self).__name__, "response_tokens": self.response_tokens,
            "response_rule": "N = min(response_tokens, reference tokens); reference = text of its first N tokens",
            "skipped_too_long": self.skipped_too_long,
            "sacrebleu": {"version": importlib.metadata.version("sacrebleu"), **bleu_signatures()},
            "rouge": rouge_protocol(), "aggregation": TABLE5,
            "top_k_list": list(self.top_k_list) if self.top_k_list else "(1, n)",
        }
        proto["bertscore"] = self._scorer().protocol() if self.bertscore else "off (bertscore=False)"
        return proto


@TASKS.register("headline_lead", "bbc_headline_lead")
class HeadlineLead(Seq2SeqTask):
    """BBC headline -> lead sentence, on held-out documents only (offline, embedded)."""

    def __init__(self, val_fraction: float = 0.05, drop_seen: bool = True, **options: Any) -> None:
        if not 0 < val_fraction < 1:
            raise ConfigError(f"val_fraction = {val_fraction} is outside (0, 1)")
        self.val_fraction, self.drop_seen, self.dropped_seen = val_fraction, bool(drop_seen), 0
        super().__init__(**options)

    def pairs(self) -> Iterator[tuple[str, str, dict[str, Any]]]:
        docs = load_corpus("bbc")
        held = [is_validation(doc, self.val_fraction) for doc in docs]
        seen: set[str] = set()  # headlines and leads of training documents (near-duplicates)
        if self.drop_seen:
            for doc, h in zip(docs, held):
                if not h:
                    headline, body = split_headline(doc)
                    seen.update((headline, lead_sentence(body)))
        self.dropped_seen = 0
        for index, (doc, h) in enumerate(zip(docs, held)):
            if not h:
                continue
            headline, body = split_headline(doc)
            lead = lead_sentence(body)
            if headline in seen or lead in seen:
                self.dropped_seen += 1
                continue
            if headline and lead:
                yield headline + "\n\n", lead, {"doc_index": index, "headline": headline}

    def prompt_parts(self, tokenizer, prompt: str, reference: str) -> list[str]:
        return document_parts(tokenizer, prompt, reference) or [prompt]

    def protocol(self) -> dict[str, Any]:
        return {**super().protocol(), "data": f"bbc held-out documents, is_validation(doc, {self.val_fraction})",
                "dropped_seen": (f"{self.dropped_seen} held-out documents whose headline or lead a training "
                                 "document has" if self.drop_seen else "off (drop_seen=False)"),
                "prompt": "headline + '\\n\\n', tokenised as inside the document (document_parts)",
                "reference": "first sentence of the first paragraph that ends in . ! ? or a quote"}


class HubPairs(Seq2SeqTask):
    """Pairs from a hub dataset or a local JSONL file of the same schema."""

    hub: tuple[str, str | None] = ("", None)
    schema = ""
    default_split = "train"
    default_template = "{source}\n"

    def __init__(self, data_files: str | None = None, split: str | None = None, template: str | None = None,
                 **options: Any) -> None:
        if data_files is not None and not os.path.isfile(data_files):
            raise ConfigError(f"data_files = {data_files} does not exist; pass a local JSONL file with rows {self.schema}")
        self.data_files, self.split = data_files, split or self.default_split
        self.template = template or self.default_template
        if "{source}" not in self.template:
            raise ConfigError(f"template = {self.template!r} must contain '{{source}}'")
        super().__init__(**options)

    def _rows(self):
        import datasets

        name, config = self.hub
        try:
            if self.data_files:
                return datasets.load_dataset("json", data_files=self.data_files, split="train")
            return datasets.load_dataset(name, config, split=self.split)
        except Exception as err:  # noqa: BLE001 - datasets raises many types offline
            detail = " ".join(str(err).split())[:160]
            raise ConfigError(f"cannot load {name}{':' + config if config else ''} ({type(err).__name__}: {detail}); "
                              f"offline, pass data_files=<local .jsonl> with rows {self.schema}") from err

    def source_target(self, row: dict[str, Any]) -> tuple[str, str]:
        raise NotImplementedError

    def pairs(self) -> Iterator[tuple[str, str, dict[str, Any]]]:
        for index, row in enumerate(self._rows()):
            try:
                source, target = self.source_target(row)
            except (KeyError, TypeError) as err:
                raise ConfigError(f"row {index} does not match the schema {self.schema}: missing {err}") from err
            if not isinstance(source, str) or not isinstance(target, str):
                raise ConfigError(f"row {index}: source and target must be strings (schema {self.schema})")
            if source.strip() and target.strip():
                yield self.template.format(source=source.strip()), target.strip(), {"row": index}

    def protocol(self) -> dict[str, Any]:
        data = self.data_files or f"{self.hub[0]}:{self.hub[1] or ''}@{self.split}"
        return {**super().protocol(), "data": data, "prompt": self.template}


@TASKS.register("wmt14_de_en", "wmt14")
class WMT14DeEn(HubPairs):
    """WMT14 German -> English translation (hub ``wmt14``/de-en, or data_files=<jsonl>)."""

    hub = ("wmt14", "de-en")
    schema = '{"translation": {"de": ..., "en": ...}}'
    default_split = "test"
    default_template = "German: {source}\nEnglish:"

    def source_target(self, row):
        return row["translation"]["de"], row["translation"]["en"]


@TASKS.register("lamini", "lamini_instruction")
class LaMini(HubPairs):
    """LaMini instruction -> response (hub MBZUAI/LaMini-instruction, or data_files=<jsonl>)."""

    hub = ("MBZUAI/LaMini-instruction", None)
    schema = '{"instruction": ..., "response": ...}'
    default_split = "train"
    default_template = "Instruction: {source}\nResponse:"

    def source_target(self, row):
        return row["instruction"], row["response"]
