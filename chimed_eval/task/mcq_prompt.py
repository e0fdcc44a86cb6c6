"""Exam prompts beyond the plain variants: the chain-of-thought variant (``cot``) and chat
rendering (``--apply-chat-template``, ``--system-prompt``, ``--fewshot-as-multiturn``), with the
generation budgets and the ``settings.generation`` record they need. Called from
:class:`chimed_eval.task.multiple_choice.MCQTask`; pure functions of a rendered item and the run options.

* ``cot``: the instruction asks for step-by-step reasoning, then a final line ``答案：X``
  (:func:`chimed_eval.prompts.variants.render_cot`); it generates up to :data:`~chimed_eval.prompts.variants.COT_MAX_NEW_TOKENS`
  new tokens (``--max-new-tokens`` overrides, recorded), with no stop string but the chat
  template's turn markers; the option texts go to the record (``extra["options"]``) for the
  extraction cascade's option-text rule.
* chat: the variant's prompt cut into turns (:func:`chimed_eval.prompts.variants.mcq_parts`) becomes
  messages (:func:`chimed_eval.models.chat.mcq_chat_messages`), rendered by the run's chat setup (the
  tokenizer's template; the ChatML stand-in on the fake backend; the messages themselves on the
  openai backend) ending in the open assistant turn. Letter-scored variants (``paper``,
  ``lm-eval``) then score the bare option letters as continuations; the openai chat endpoint
  cannot score continuations, so they are refused there.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any, Sequence

from chimed_eval.core.errors import ConfigError
from chimed_eval.prompts.variants import COT_MAX_NEW_TOKENS, COT_VERSION, LETTERS, MCQ_VARIANTS, MCQPrompt, Shot, mcq_parts
from chimed_eval.core.types import GenerationConfig, Message, Sample

if TYPE_CHECKING:
    from chimed_eval.task.options import TaskRunOptions

GENERATE_MAX_NEW_TOKENS = 16  # the generate variant's budget: one letter, and room for "答案：" before it


def mc_budget(options: "TaskRunOptions") -> GenerationConfig:
    """The generation config of an exam variant that generates (before ``--decoding``): the
    ``generate`` variant's 16 tokens stopping at a blank line, or ``cot``'s reasoning budget with no
    stop; ``--max-new-tokens`` overrides either; the chat template's turn markers stop both."""
    chat_stop = tuple(options.chat.stop) if options.chat is not None else ()
    if options.variant == "cot":
        return GenerationConfig(max_new_tokens=options.max_new_tokens or COT_MAX_NEW_TOKENS, stop=chat_stop)
    return GenerationConfig(max_new_tokens=options.max_new_tokens or GENERATE_MAX_NEW_TOKENS,
                            stop=("\n\n",) + chat_stop)


def mc_special_tokens(options: "TaskRunOptions") -> bool | None:
    """``add_special_tokens`` of an exam request: the chat setup's when chat-rendered (a template
    holds its own special tokens), else True for ``paper`` (the authors' tokenization), else None."""
    if options.chat is not None:
        return options.chat.add_special_tokens
    return True if options.variant == "paper" else None


def cot_extra(sample: Sample, options: "TaskRunOptions") -> dict[str, Any]:
    """A ``cot`` record's option texts (the cascade's option-text rule reads them); nothing for
    other variants, whose records stay as they were."""
    return {"options": list(sample.choices)} if options.variant == "cot" else {}


def chat_or_cot_prompt(style: str, subject_name: str, shots: Sequence[Sample], sample: Sample,
                       options: "TaskRunOptions") -> tuple[MCQPrompt, tuple[Message, ...]]:
    """The prompt (and, for a chat API, the messages) of ``sample`` under ``cot`` and/or a chat
    template; see the module docstring. ``shots`` are the item's shot items, already checked."""
    from chimed_eval.models.chat import mcq_chat_messages, render_messages
    from chimed_eval.prompts.variants import render_cot

    multi = isinstance(sample.target, tuple) and len(sample.target) > 1
    shot_items = [Shot(s.input, s.choices, s.target) for s in shots]  # type: ignore[arg-type]
    n = len(sample.choices)
    if options.chat is None:  # plain cot
        return render_cot(subject_name, shot_items, sample.input, sample.choices, multi), ()
    kind = MCQ_VARIANTS[options.variant][1]
    if options.chat.messages and kind != "generate":
        raise ConfigError(f"--variant {options.variant} scores option letters by their log-probabilities, which a "
                          "chat API's messages cannot give: use --variant generate or cot with "
                          "--apply-chat-template on --backend openai")
    parts = mcq_parts(options.variant, style, subject_name, shot_items, sample.input, sample.choices, multi)
    msgs = mcq_chat_messages(parts, options.system_prompt, options.fewshot_as_multiturn)
    context, sent = render_messages(options.chat, msgs)
    conts = () if kind == "generate" else tuple(LETTERS[:n])
    return MCQPrompt(prefix="", context=context, continuations=conts), sent


def mc_generation_record(options: "TaskRunOptions") -> dict[str, Any] | None:
    """``settings.generation.<task>`` of an exam run: budget, stop strings, chat template, system
    prompt, think markers, for ``cot`` or a chat-rendered run or an overridden budget; None
    otherwise (what plain exam runs always recorded)."""
    kind = MCQ_VARIANTS[options.variant][1]
    if options.variant != "cot" and options.chat is None and not (kind == "generate" and options.max_new_tokens):
        return None
    out: dict[str, Any] = {"prompt_version": COT_VERSION if options.variant == "cot" else MCQ_VARIANTS[options.variant][0]}
    if kind == "generate":
        g = mc_budget(options)
        out.update(max_new_tokens=g.max_new_tokens, max_new_tokens_overridden=options.max_new_tokens is not None,
                   stop=list(g.stop), decoding=options.decoding or "greedy",
                   think_markers=None if options.think_markers is None else list(options.think_markers))
    if options.chat is not None:
        out.update(chat_template=options.chat.label, system_prompt=options.system_prompt,
                   fewshot_as_multiturn=options.fewshot_as_multiturn)
    return out
