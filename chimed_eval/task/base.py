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

    # -- multi-turn tasks (the runner asks them round by round)
    #: True for a task whose later items' prompts hold the model's own answers to earlier items
    #: (a case's questions asked in order, ``cmb-clin``): the runner then builds and runs the
    #: requests round by round (:meth:`round_of`, :meth:`round_requests`), never all at once.
    multi_turn: bool = False

    def round_of(self, sample: Sample) -> int:
        """The round in which ``sample`` is asked (0 first); a multi-turn task's item of round k
        may use the kept answers of items of rounds below k only."""
        return 0

    def round_requests(self, data: TaskData, samples: Sequence[Sample], options: TaskRunOptions,
                       answers: Mapping[str, str]) -> list[Request]:
        """The requests of ``samples`` (all of one round), given ``answers`` (item id -> the kept
        answer, :meth:`kept_answer`, of every item of the earlier rounds). Default: build_requests."""
        return self.build_requests(data, samples, options)

    def kept_answer(self, record: Mapping[str, Any]) -> str:
        """What a later round's prompt keeps of an item's saved record: its generation, as scored
        (stop strings and reasoning traces cut), so a resumed run rebuilds the same prompts."""
        return str(record.get("generation") or "")

    def oracle_output(self, sample: Sample, request: Request, options: TaskRunOptions) -> int | str | None:
        """What a perfect model answers (the fake backend's ``oracle`` script): the gold option
        index for choice requests, the reference text for generations."""
        return sample.target
