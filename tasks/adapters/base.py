"""The task contract: how a loaded run is evaluated for a task and scored.

Every task implements :meth:`Task.evaluate`: generate from the run (loaded once by the
caller, shared by all the runs of a sweep unit), write what was generated into the result
folder, and return the metrics. Most tasks are :class:`ExampleTask`s: they turn a tokenizer and
a length into :class:`Example` requests — lists of parts where a ``str`` is given text and an
``int`` a number of free positions (see pathbench.engine.generate) — and score the filled slots
against references; ``generations[e][c][s]`` is the text of slot ``s`` of candidate ``c`` for
example ``e``. Every task writes its metric protocol (library versions, signatures, model
names) into the result, so numbers say how they were made.
"""

from __future__ import annotations

import json
from abc import ABC, abstractmethod
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, ClassVar

from pathbench.core.errors import ConfigError
from pathbench.core.io import atomic_open
from pathbench.engine.generate import generate
from pathbench.engine.protocol import GenerationProtocol
from pathbench.engine.run import LoadedRun
from pathbench.engine.sampling import SamplerConfig


@dataclass
class Example:
    parts: list[str | int]
    references: list[str]                    # what the free slots should hold (one per slot)
    meta: dict[str, Any] = field(default_factory=dict)


@dataclass(frozen=True)
class EvalSettings:
    """What one evaluation asks of a task besides the run: the resolved sampler and the
    generation protocol it was resolved under, sizes, the seed, the device, and where rows shared
    by a sweep's units are kept (``reference_store``, e.g. the real-text row)."""

    sampler: SamplerConfig
    protocol: GenerationProtocol
    n: int = 32
    candidates: int = 1
    limit: int | None = None
    seed: int = 0
    batch_size: int = 16
    device: str = "cpu"
    reference_store: Path | None = None
    #: "batch" (one random stream per batch) or "row" (one per sample: independent of the batch)
    seeding: str = "batch"
    #: the sampler's memory budget in GB ("auto": 90 % of a CUDA device's free memory; see
    #: pathbench.engine.memory), which may cut the batch
    memory_gb: float | str | None = None


class Task(ABC):
    """A registered evaluation task (``TASKS.register(name)``)."""

    #: candidates per example the task's metrics need at least (e.g. n for Pass@k, Top-k)
    min_candidates: ClassVar[int] = 1
    #: an experiment file gives this task ``scorers: [...]``: one run per scorer
    takes_scorers: ClassVar[bool] = False

    def bind(self, data: dict) -> Task:
        """This task for the runs of one data spec (a run's meta.json ``data``): the evaluation calls
        it once before sampling and evaluates what it returns. A task whose scoring depends on the
        data (a scorer bound to an oracle corpus's HMM) returns a new task with that bound and what
        it needs loaded, so a mistake fails before anything is sampled; it never changes ``self``.
        A task that depends on nothing of the data is its own binding."""
        return self

    @abstractmethod
    def evaluate(self, run: LoadedRun, settings: EvalSettings, out: Path) -> dict[str, Any]:
        """Generate from ``run``, write the generations into ``out``, and return the result's
        task part: ``{"metrics": {...}}`` and any other section (e.g. ``"reference"``). Called on
        the task :meth:`bind` returned for the run's data."""

    def protocol(self) -> dict[str, Any]:
        """How the metrics are computed (written beside them)."""
        return {}


class ExampleTask(Task):
    """A task of requests with references: generations.jsonl holds every candidate."""

    @abstractmethod
    def examples(self, tokenizer, seq_len: int, limit: int | None = None) -> list[Example]:
        """The requests, in a fixed order; ``limit`` keeps the first ones."""

    @abstractmethod
    def score(self, examples: list[Example], generations: list[list[list[str]]]) -> dict[str, float]:
        """Metrics over all examples; never a mean over a silently partial set."""

    def evaluate(self, run: LoadedRun, settings: EvalSettings, out: Path) -> dict[str, Any]:
        seq_len = run.meta["data"]["seq_len"]
        examples = self.examples(run.tokenizer, seq_len, settings.limit)
        generations = generate(run.method, run.model, run.tokenizer, [e.parts for e in examples], settings.sampler,
                               seq_len=seq_len, candidates=settings.candidates, batch_size=settings.batch_size,
                               seed=settings.seed, seeding=settings.seeding, memory_gb=settings.memory_gb)
        with atomic_open(out / "generations.jsonl", "w", encoding="utf-8") as handle:
            for example, cands in zip(examples, generations):
                handle.write(json.dumps({"references": example.references, "candidates": cands,
                                         "meta": example.meta}, ensure_ascii=False) + "\n")
        return {"metrics": self.score(examples, generations)}


def check_generations(examples: list[Example], generations: list[list[list[str]]]) -> int:
    """Validate shapes; returns the number of candidates per example."""
    if len(examples) != len(generations):
        raise ConfigError(f"{len(generations)} generations for {len(examples)} examples: "
                          "references and hypotheses must pair up")
    if not examples:
        raise ConfigError("no examples to score")
    counts = {len(g) for g in generations}
    if len(counts) != 1:
        raise ConfigError(f"examples have different numbers of candidates: {sorted(counts)}")
    return counts.pop()
