"""The task interface.

A task loads its items (``Sample``), turns each into one ``Request`` for the run's options,
scores a ``Response`` into a ``SampleScore`` and aggregates scores into metrics. It never sees a
backend, and it holds no run state: what a run asks (variant, shots, seed, generation overrides,
the chat rendering) reaches every method as one :class:`~chimed_eval.task.options.TaskRunOptions`,
what the data defines (items, shot pools, a label inventory) as the
:class:`~chimed_eval.task.options.TaskData` its ``load`` returned, and what is particular to one
item (shots used, budgets, stop strings) travels on its ``Request`` and ends in its
``SampleScore``. A task object is never modified after construction. The multiple-choice task
that every exam benchmark instantiates is :class:`chimed_eval.task.multiple_choice.MCQTask`.
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from pathlib import Path
from typing import Any, Mapping, Sequence

from chimed_eval.core.errors import ConfigError
from chimed_eval.core.types import Metric, Request, Response, Sample, SampleScore
from chimed_eval.prompts.variants import MCQ_VARIANTS
from chimed_eval.task.options import TaskData, TaskRunOptions


class Task(ABC):
    """A benchmark: immutable after construction (see the module docstring)."""

    name: str
    description: str = ""
    variants: tuple[str, ...] = ()
    default_variant: str = ""
    default_shots: int = 0

    @abstractmethod
    def load(self, data_dir: Path) -> TaskData: ...

    @abstractmethod
    def build_requests(self, data: TaskData, samples: Sequence[Sample], options: TaskRunOptions) -> list[Request]: ...

    @abstractmethod
    def score(self, data: TaskData, sample: Sample, request: Request, response: Response,
              options: TaskRunOptions) -> SampleScore: ...

    @abstractmethod
    def aggregate(self, scores: Sequence[SampleScore], variant: str, seed: int) -> tuple[list[Metric], dict[str, dict[str, float | int]]]: ...

    @abstractmethod
    def rescore(self, record: Mapping[str, object], variant: str) -> SampleScore:
        """Rebuild a SampleScore from a saved per-sample record, recomputing everything that can
        be recomputed without the model (used by ``chimed-eval score``)."""

    def scoring_mode(self, variant: str) -> str:
        """The request kind a variant uses (recorded in results.json)."""
        return MCQ_VARIANTS[variant][1]

    def check_variant(self, variant: str | None) -> str:
        v = variant or self.default_variant
        if v not in self.variants:
            raise ConfigError(f"task {self.name!r} has no prompt variant {v!r}; choose from {list(self.variants)}")
        return v

    def check_options(self, options: TaskRunOptions) -> None:
        """Refuse options this task cannot honour, before any data loads (default: all fine;
        generation overrides that a task does not use are ignored)."""

    def generation_record(self, data: TaskData, samples: Sequence[Sample], requests: Sequence[Request],
                          options: TaskRunOptions) -> Mapping[str, Any] | None:
        """What results.json records under ``settings.generation.<task>`` (decoding, budgets),
        from the whole item list's requests; None for tasks that do not generate."""
        return None

    def oracle_output(self, sample: Sample, request: Request, options: TaskRunOptions) -> int | str | None:
        """What a perfect model answers (the fake backend's ``oracle`` script): the gold option
        index for choice requests, the reference text for generations."""
        return sample.target
