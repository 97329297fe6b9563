"""The task contract: what to generate, and how to score what was generated.

A task turns a tokenizer and a length into :class:`Example` requests — lists of parts where a
``str`` is given text and an ``int`` a number of free positions (see harness.engine.generate) — and
scores the filled slots against references. ``generations[e][c][s]`` is the text of slot
``s`` of candidate ``c`` for example ``e``. Every task writes its metric protocol (library
versions, signatures, model names) into the result, so numbers say how they were made.
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from dataclasses import dataclass, field
from typing import Any, ClassVar

from harness.core.errors import ConfigError


@dataclass
class Example:
    parts: list[str | int]
    references: list[str]                    # what the free slots should hold (one per slot)
    meta: dict[str, Any] = field(default_factory=dict)


class Task(ABC):
    """A registered evaluation task (``TASKS.register(name)``)."""

    #: candidates per example the task's metrics need at least (e.g. n for Pass@k, Top-k)
    min_candidates: ClassVar[int] = 1

    @abstractmethod
    def examples(self, tokenizer, seq_len: int, limit: int | None = None) -> list[Example]:
        """The requests, in a fixed order; ``limit`` keeps the first ones."""

    @abstractmethod
    def score(self, examples: list[Example], generations: list[list[list[str]]]) -> dict[str, float]:
        """Metrics over all examples; never a mean over a silently partial set."""

    def protocol(self) -> dict[str, Any]:
        """How the metrics are computed (written beside them)."""
        return {}


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
