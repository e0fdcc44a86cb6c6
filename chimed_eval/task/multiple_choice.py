"""The multiple-choice task that every exam benchmark instantiates (and a user's ``mcq`` file):
the plain variants (``paper``, ``lm-eval``, ``generate``) rendered by
:mod:`chimed_eval.prompts.variants`, ``cot`` and chat rendering by
:mod:`chimed_eval.task.mcq_prompt`, items with several answers by
:mod:`chimed_eval.evidence.multi_choice`."""

from __future__ import annotations

from pathlib import Path
from typing import Any, Callable, Mapping, Sequence

from chimed_eval.core.errors import ConfigError
from chimed_eval.core.types import Metric, Request, Response, Sample, SampleScore
from chimed_eval.evidence import multi_choice
from chimed_eval.evidence.expand import expansion_extra, mc_generation_config
from chimed_eval.evidence.kinds import CHOICE_CORPUS, CHOICE_SAMPLE, ChoiceEvidence, choice_figures
from chimed_eval.extract.reasoning import strip_reasoning
from chimed_eval.prompts.variants import MCQ_VARIANTS, MCQPrompt, Shot, render_generate, render_lmeval, render_paper
from chimed_eval.task.base import Task
from chimed_eval.task.mcq_prompt import chat_or_cot_prompt, cot_extra, mc_budget, mc_generation_record, mc_special_tokens
from chimed_eval.task.options import TaskData, TaskRunOptions

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
        if variant == "cot":  # reasoning, then 答案：X (chimed_eval.task.mcq_prompt)
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
        variants; :func:`chimed_eval.task.mcq_prompt.chat_or_cot_prompt` for ``cot`` or a chat template."""
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
        overridden runs (:func:`chimed_eval.task.mcq_prompt.mc_generation_record`); None otherwise."""
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
