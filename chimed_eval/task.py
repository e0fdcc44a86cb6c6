"""The task interface, and the multiple-choice task that every exam benchmark instantiates.

A task loads its items (``Sample``), turns each into one ``Request`` for the run's options,
scores a ``Response`` into a ``SampleScore`` and aggregates scores into metrics. It never sees a
backend, and it holds no run state: what a run asks (variant, shots, seed, generation overrides,
the chat rendering) reaches every method as one :class:`TaskRunOptions`, what the data defines
(items, shot pools, a label inventory) as the :class:`TaskData` its ``load`` returned, and what is
particular to one item (shots used, budgets, stop strings) travels on its ``Request`` and ends in
its ``SampleScore``. A task object is never modified after construction.
"""

from __future__ import annotations

import hashlib
from abc import ABC, abstractmethod
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable, Mapping, Sequence

from .chat import ChatSetup
from .errors import ConfigError
from .evidence import CHOICE_CORPUS, CHOICE_SAMPLE, ChoiceEvidence
from .prompts import LETTERS, MCQ_VARIANTS, MCQPrompt, Shot, render_generate, render_lmeval, render_paper
from .types import GenerationConfig, Metric, Request, Response, Sample, SampleScore


@dataclass(frozen=True)
class TaskRunOptions:
    """What one run asks of a task, resolved (``variant`` checked, ``shots`` defaulted).

    ``max_new_tokens`` (``--max-new-tokens``) and ``decoding`` (``--decoding``, None: the task's
    default) matter only to tasks that generate, each as its docstring says; ``chat`` is the
    ``chat`` variant's rendering for this model and backend (:mod:`chimed_eval.chat`), None for
    every other variant."""

    variant: str
    shots: int = 0
    seed: int = 1234
    max_new_tokens: int | None = None
    decoding: str | None = None
    chat: ChatSetup | None = None


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


def file_sha256(path: Path) -> str:
    h = hashlib.sha256()
    with open(path, "rb") as f:
        for chunk in iter(lambda: f.read(1 << 20), b""):
            h.update(chunk)
    return h.hexdigest()


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


Loader = Callable[[Path], TaskData]


class MCQTask(Task):
    """A multiple-choice exam task; the loader decides which files and items."""

    variants = ("paper", "lm-eval", "generate")
    default_variant = "paper"

    def __init__(self, name: str, loader: Loader, description: str = "", lmeval_style: str = "cmmlu",
                 default_subject_name: str = "医学") -> None:
        self.name = name
        self._loader = loader
        self.description = description
        self.lmeval_style = lmeval_style
        self.default_subject_name = default_subject_name

    def load(self, data_dir: Path) -> TaskData:
        return self._loader(data_dir)

    def render(self, data: TaskData, sample: Sample, variant: str, shots: int) -> MCQPrompt:
        subject_name = data.subject_names.get(sample.subject or "", self.default_subject_name)
        pool = data.fewshot.get(sample.subject, data.fewshot.get(None, []))
        if shots > len(pool):
            raise ConfigError(
                f"task {self.name!r}: {shots} shots requested but subject {sample.subject!r} has only "
                f"{len(pool)} few-shot items"
            )
        shot_items = [Shot(s.input, s.choices, int(s.target)) for s in pool[:shots]]  # type: ignore[arg-type]
        if variant == "paper":
            return render_paper(subject_name, shot_items, sample.input, sample.choices)
        if variant == "lm-eval":
            return render_lmeval(self.lmeval_style, subject_name, shot_items, sample.input, sample.choices)
        return render_generate(subject_name, shot_items, sample.input, sample.choices)

    def build_requests(self, data: TaskData, samples: Sequence[Sample], options: TaskRunOptions) -> list[Request]:
        variant = options.variant
        kind = MCQ_VARIANTS[variant][1]
        out = []
        for s in samples:
            p = self.render(data, s, variant, options.shots)
            gen = GenerationConfig(max_new_tokens=16, stop=("\n\n",)) if kind == "generate" else None
            out.append(Request(
                kind=kind, key=s.id, context=p.context, continuations=p.continuations, prefix=p.prefix,
                add_special_tokens=True if variant == "paper" else None, generation=gen,
            ))
        return out

    def score(self, data: TaskData, sample: Sample, request: Request, response: Response,
              options: TaskRunOptions) -> SampleScore:
        n = len(sample.choices)
        if request.kind != "generate" and len(response.logprobs or ()) != n:
            raise ValueError(f"item {sample.id}: backend returned {len(response.logprobs or ())} "
                             f"log-probabilities for {n} options")
        base = SampleScore(
            id=sample.id, subject=sample.subject, prompt=request.context, prompt_hash=request.prompt_hash,
            gold=LETTERS[int(sample.target)], prediction=None, score=0.0,  # type: ignore[arg-type]
            logprobs=None if request.kind == "generate" else tuple(float(x) for x in response.logprobs or ()),
            generation=(response.text or "") if request.kind == "generate" else None,
            extra=ChoiceEvidence(n).to_extra(),
        )
        return CHOICE_SAMPLE(base, ChoiceEvidence(n), options.variant)

    def rescore(self, record: Mapping[str, object], variant: str) -> SampleScore:
        """Recompute the prediction and score of a saved record (no model needed)."""
        from .records import record_to_score

        s = record_to_score(record)
        return CHOICE_SAMPLE(s, ChoiceEvidence.from_extra(s.extra), variant)

    def aggregate(self, scores: Sequence[SampleScore], variant: str, seed: int) -> tuple[list[Metric], dict[str, dict[str, float | int]]]:
        return CHOICE_CORPUS(scores, [ChoiceEvidence.from_extra(s.extra) for s in scores], variant, seed)

