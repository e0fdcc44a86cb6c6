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

from chimed_eval.models.chat import ChatSetup
from chimed_eval.core.errors import ConfigError
from chimed_eval.evidence.kinds import CHOICE_CORPUS, CHOICE_SAMPLE, ChoiceEvidence, choice_figures
from chimed_eval.evidence import multi_choice
from chimed_eval.evidence.expand import expansion_extra, mc_generation_config
from chimed_eval.prompts.mcq import chat_or_cot_prompt, cot_extra, mc_budget, mc_generation_record, mc_special_tokens
from chimed_eval.extract.reasoning import strip_reasoning
from chimed_eval.prompts.variants import MCQ_VARIANTS, MCQPrompt, Shot, render_generate, render_lmeval, render_paper
from chimed_eval.core.types import Metric, Request, Response, Sample, SampleScore


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

    variants = ("paper", "lm-eval", "generate", "cot")
    default_variant = "paper"
    supports_chat_template = True  # --apply-chat-template (see prompt_for)

    def __init__(self, name: str, loader: Loader, description: str = "", lmeval_style: str = "cmmlu",
                 default_subject_name: str = "医学", multi_answer: bool = False,
                 default_variant: str | None = None) -> None:
        self.name = name
        self._loader = loader
        self.description = description
        self.lmeval_style = lmeval_style
        self.default_subject_name = default_subject_name
        # items may have several answers: exact-set figures, never `acc` (chimed_eval.evidence.multi_choice)
        self.multi_answer = multi_answer
        if default_variant is not None:
            self.default_variant = default_variant

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
        if variant == "cot":  # reasoning, then 答案：X (chimed_eval.prompts.mcq)
            return chat_or_cot_prompt(self.lmeval_style, subject_name, pool[:shots], sample, TaskRunOptions("cot"))[0]
        if variant == "generate" and any(multi_choice.is_multi(s.target) for s in (sample, *pool[:shots])):
            return multi_choice.render_multi_generate(subject_name, pool[:shots], sample.input, sample.choices,
                                                      multi_choice.is_multi(sample.target))
        shot_items = [Shot(s.input, s.choices, int(s.target)) for s in pool[:shots]]  # type: ignore[arg-type]
        if variant == "paper":
            return render_paper(subject_name, shot_items, sample.input, sample.choices)
        if variant == "lm-eval":
            return render_lmeval(self.lmeval_style, subject_name, shot_items, sample.input, sample.choices)
        return render_generate(subject_name, shot_items, sample.input, sample.choices)

    def prompt_for(self, data: TaskData, sample: Sample, options: TaskRunOptions) -> tuple[MCQPrompt, tuple]:
        """The item's prompt and, for a chat API, its messages: :meth:`render` for the plain
        variants; :func:`chimed_eval.prompts.mcq.chat_or_cot_prompt` for ``cot`` or a chat template."""
        if options.variant != "cot" and options.chat is None:
            return self.render(data, sample, options.variant, options.shots), ()
        pool = data.fewshot.get(sample.subject, data.fewshot.get(None, []))
        if options.shots > len(pool):
            return self.render(data, sample, "paper", options.shots), ()  # raises: too few shot items
        subject_name = data.subject_names.get(sample.subject or "", self.default_subject_name)
        return chat_or_cot_prompt(self.lmeval_style, subject_name, pool[: options.shots], sample, options)

    def generation_record(self, data: TaskData, samples: Sequence[Sample], requests: Sequence[Request],
                          options: TaskRunOptions) -> Mapping[str, Any] | None:
        """Budget, stops, chat template and think markers for ``cot``, chat-rendered or budget-
        overridden runs (:func:`chimed_eval.prompts.mcq.mc_generation_record`); None otherwise."""
        return mc_generation_record(options)

    def build_requests(self, data: TaskData, samples: Sequence[Sample], options: TaskRunOptions) -> list[Request]:
        variant = options.variant
        kind = MCQ_VARIANTS[variant][1]
        if kind != "generate":
            multi_choice.refuse_letter_scoring(self.name, samples, variant)
        out = []
        for s in samples:
            p, messages = self.prompt_for(data, s, options)  # cot and --apply-chat-template; else render()
            gen = mc_budget(options) if kind == "generate" else None
            gen = mc_generation_config(gen, options.decoding) if gen is not None else None  # --decoding
            out.append(Request(
                kind=kind, key=s.id, context=p.context, continuations=p.continuations, prefix=p.prefix,
                add_special_tokens=mc_special_tokens(options), generation=gen, messages=messages,
            ))
        return out

    def score(self, data: TaskData, sample: Sample, request: Request, response: Response,
              options: TaskRunOptions) -> SampleScore:
        n = len(sample.choices)
        if request.kind != "generate" and len(response.logprobs or ()) != n:
            raise ValueError(f"item {sample.id}: backend returned {len(response.logprobs or ())} "
                             f"log-probabilities for {n} options")
        answer, trace = strip_reasoning(response.text or "", options.think_markers)
        base = SampleScore(
            id=sample.id, subject=sample.subject, prompt=request.context, prompt_hash=request.prompt_hash,
            gold=multi_choice.target_letters(sample.target), prediction=None, score=0.0,
            logprobs=None if request.kind == "generate" else tuple(float(x) for x in response.logprobs or ()),
            generation=answer if request.kind == "generate" else None,
            extra={**ChoiceEvidence(n).to_extra(), **expansion_extra(sample),  # + --shuffle-choices/--repeats facts
                   **cot_extra(sample, options), **trace},  # + cot options, reasoning trace (chimed_eval.extract.reasoning)
        )
        return CHOICE_SAMPLE(base, ChoiceEvidence(n), options.variant)

    def oracle_output(self, sample: Sample, request: Request, options: TaskRunOptions) -> int | str | None:
        """The gold index, or for an item with several answers its letters stated as an answer
        (``答案：ABD``), which every generation variant reads back."""
        if multi_choice.is_multi(sample.target):
            return "答案：" + multi_choice.target_letters(sample.target)
        return super().oracle_output(sample, request, options)

    def rescore(self, record: Mapping[str, object], variant: str) -> SampleScore:
        """Recompute the prediction and score of a saved record (no model needed)."""
        from chimed_eval.core.types import record_to_score

        s = record_to_score(record)
        return CHOICE_SAMPLE(s, ChoiceEvidence.from_extra(s.extra), variant)

    def aggregate(self, scores: Sequence[SampleScore], variant: str, seed: int) -> tuple[list[Metric], dict[str, dict[str, float | int]]]:
        if self.multi_answer:  # exact-set figures even when no record at hand has several answers
            return choice_figures(scores, [ChoiceEvidence.from_extra(s.extra) for s in scores], variant, seed, multi=True)
        return CHOICE_CORPUS(scores, [ChoiceEvidence.from_extra(s.extra) for s in scores], variant, seed)

