"""What a run hands a task (:class:`TaskRunOptions`) and what a task's loader hands back
(:class:`TaskData`): the two records every :class:`chimed_eval.task.base.Task` method receives, so
that a task holds no run state."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Mapping

from chimed_eval.models.chat import ChatSetup
from chimed_eval.core.types import Sample


@dataclass(frozen=True)
class TaskRunOptions:
    """What one run asks of a task, resolved (``variant`` checked, ``shots`` defaulted).

    ``max_new_tokens`` (``--max-new-tokens``) and ``decoding`` (``--decoding``, None: the task's
    default) matter only to tasks that generate, each as its docstring says; ``chat`` is the
    ``chat`` variant's rendering for this model and backend (:mod:`chimed_eval.models.chat`), None for
    every other variant, or with ``--apply-chat-template`` the rendering every MC and generation
    task uses. ``system_prompt`` / ``fewshot_as_multiturn`` shape those chat messages;
    ``think_markers`` (None: off) split reasoning traces off generations
    (:mod:`chimed_eval.extract.reasoning`)."""

    variant: str
    shots: int = 0
    seed: int = 1234
    max_new_tokens: int | None = None
    decoding: str | None = None
    chat: ChatSetup | None = None
    system_prompt: str | None = None
    fewshot_as_multiturn: bool = False
    think_markers: tuple[str, str] | None = ("<think>", "</think>")
    max_turns: int | None = None  # --max-turns: the doctor's turn budget of a consultation (None: the task's)


@dataclass(frozen=True)
class TaskData:
    """What a task's loader returns.

    ``samples`` are in the task's documented item order (``--limit N`` takes the first N);
    ``fewshot`` maps a subject (or ``None``) to its pool of shot items in file order;
    ``files`` maps each data file read (relative to the data dir) to its sha256; ``labels`` is
    the label inventory the data defines, in report order (NER entity types), empty when the
    task's own definition fixes it or it has none.
    """

    samples: list[Sample]
    fewshot: Mapping[str | None, list[Sample]] = field(default_factory=dict)
    files: Mapping[str, str] = field(default_factory=dict)
    subject_names: Mapping[str, str] = field(default_factory=dict)
    labels: tuple[str, ...] = ()
