"""Which prompt format the ``chat`` variant of the generation tasks uses for a run.

The runner asks :func:`run_chat_setup` once per run (``chimed-eval run --variant chat`` asks it
first, so that a model without a format is refused before any data loads) and hands the answer to
the tasks in their ``TaskRunOptions.chat``. The format is decided by the model, never silently
replaced by another one:

* a backend that sends chat messages (``Capabilities.chat_messages``: ``--backend openai``): the
  turns go to the server as ``Request.messages``; its own chat template applies. The request's
  context holds the messages' stored text (:func:`messages_context`).
* a preset (or ``--model-args chat_format=NAME``) whose format is in
  :data:`chimed_eval.prompts.variants.CHAT_FORMATS` (ziya, baichuan, chimed, ...): that format, as its model
  card documents it, with its turn markers as stop strings. This holds on every local backend,
  the fake one included (so the rendered prompts can be checked without the weights).
* a format that is neither in that table nor ``none``/``api``: refused (ConfigError), since any
  rendering would be a guess.
* ``none`` (a hub id, a local directory, the small GGUF presets): the tokenizer's own chat
  template on a backend that renders it (``chat_template``: hf, vllm); a tokenizer without one is
  refused. A backend with no model to get wrong (``chat_stand_in``: the fake one) uses a ChatML
  stand-in and says so in the label. Which backend can do what: :mod:`chimed_eval.core.capabilities`.

What was used is recorded in results.json (``settings.generation.<task>.chat_template``).

``--apply-chat-template`` (lm-eval's flag) uses the same setup for every multiple-choice and
generation task: :func:`mcq_chat_messages` turns a multiple-choice prompt into messages
(``--system-prompt`` first; ``--fewshot-as-multiturn``: each shot a user question and an assistant
answer, as lm-eval does), :func:`render_messages` renders them with the setup's template, ending in
the open assistant turn; letter-scored variants then score the option letters as continuations.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from functools import lru_cache
from typing import Callable, Mapping

from chimed_eval.core.capabilities import Capabilities
from chimed_eval.core.errors import ConfigError
from chimed_eval.prompts.variants import CHAT_FORMATS, TEMPLATE_FORMATS, ChatFormat, MCQParts, chat_format

Renderer = Callable[[list[dict[str, str]]], str]

#: Stop strings of the ChatML stand-in (the fake backend's renderer).
CHATML_STOP = ("<|im_end|>", "<|im_start|>")
#: How a messages request's context reads in the records: the messages as JSON behind this tag.
#: Byte-identical to what earlier releases stored, so the prompt hashes of existing runs do not
#: move; no backend parses it (the openai backend sends ``Request.messages``).
MESSAGES_TAG = "<<chimed-eval:openai-messages>>"


@dataclass(frozen=True)
class ChatSetup:
    """What a generation task needs for its ``chat`` variant.

    ``add_special_tokens``: passed with each request; ``None`` is the tokenizer's default (what a
    model card's ``tokenizer(prompt)`` does), ``False`` where the template or format already
    holds every special token (tokenizer chat templates, Baichuan's and Taiyi's token lists).
    ``messages``: the turns go to a chat API as ``Request.messages`` (``render`` then gives the
    stored text of the context)."""

    render: Renderer
    label: str
    stop: tuple[str, ...] = ()
    add_special_tokens: bool | None = False
    messages: bool = False


def messages_context(messages: list[dict[str, str]]) -> str:
    """The stored text of a messages request's context (see :data:`MESSAGES_TAG`)."""
    return MESSAGES_TAG + json.dumps(messages, ensure_ascii=False)


def chatml_renderer(messages: list[dict[str, str]]) -> str:
    """A generic ChatML rendering, used only where no model tokenizer exists (the fake backend)."""
    return "".join(f"<|im_start|>{m['role']}\n{m['content']}<|im_end|>\n" for m in messages) + "<|im_start|>assistant\n"


def declared_format(model: str, model_args: Mapping[str, str]) -> str | None:
    """``--model-args chat_format=`` if given, else the preset's format, else None (not a preset).
    Needs no weights: a preset declares its format."""
    if model_args.get("chat_format"):
        return str(model_args["chat_format"])
    from chimed_eval.models.resolve import MODELS

    return MODELS.get(model).chat_format if model in MODELS else None


def format_setup(fmt: ChatFormat) -> ChatSetup:
    """The setup for a documented text format."""
    return ChatSetup(render=fmt.render, label=f"{fmt.name} ({fmt.source})", stop=fmt.stop,
                     add_special_tokens=fmt.add_special_tokens)


def chat_setup(backend: str, caps: Capabilities, model: str, model_args: Mapping[str, str]) -> ChatSetup:
    """The chat-variant setup for ``model`` on ``backend`` (see the module docstring), decided by
    what the backend can do (``caps``, :func:`chimed_eval.backends.backend_capabilities`); the
    name only labels the ChatML stand-in and the messages."""
    if caps.chat_messages:
        return ChatSetup(messages_context, f"the server's chat template ({backend} chat endpoint, messages)",
                         messages=True)
    fmt = declared_format(model, model_args)
    if fmt in CHAT_FORMATS:
        return format_setup(chat_format(fmt))
    if fmt is not None and fmt not in TEMPLATE_FORMATS:
        raise ConfigError(f"model {model!r}: its chat format {fmt!r} is not a documented format "
                          f"(known: {', '.join(sorted(CHAT_FORMATS))}); the chat variant would render a guess. "
                          "Use --variant paper, or --model-args chat_format=NAME with one of those")
    if caps.chat_stand_in:
        return ChatSetup(chatml_renderer, f"chatml ({backend} backend)", CHATML_STOP)
    if fmt == "api":
        raise ConfigError(f"model {model!r} is an API model: its chat variant needs a backend that sends chat "
                          "messages (--backend openai)")
    if not caps.chat_template:
        raise ConfigError(f"the {backend} backend renders no tokenizer chat template: for model {model!r} use "
                          "--variant paper, or --model-args chat_format=NAME "
                          f"(one of {', '.join(sorted(CHAT_FORMATS))})")
    return _tokenizer_setup(model, model_args)


def _tokenizer_setup(model: str, model_args: Mapping[str, str]) -> ChatSetup:
    """The tokenizer's own chat template (hub ids, local directories, GGUF presets)."""
    from transformers import AutoTokenizer

    from chimed_eval.models.resolve import resolve_model
    from chimed_eval.core.types import sha256_text

    resolved = resolve_model(model, dict(model_args))
    trust = str(model_args.get("trust_remote_code", "")).lower() in ("1", "true", "yes") or resolved.trust_remote_code
    tok = AutoTokenizer.from_pretrained(resolved.tokenizer_path or resolved.path, revision=resolved.revision,
                                        trust_remote_code=trust)
    if not getattr(tok, "chat_template", None):
        raise ConfigError(f"model {model!r} has no chat template and no documented chat format; use --variant paper "
                          f"or --model-args chat_format=NAME (one of {', '.join(sorted(CHAT_FORMATS))})")

    def render(messages: list[dict[str, str]]) -> str:
        return tok.apply_chat_template(messages, tokenize=False, add_generation_prompt=True)

    label = f"{resolved.name} tokenizer chat template sha256:{sha256_text(str(tok.chat_template))[:16]}"
    return ChatSetup(render, label)


def run_chat_setup(backend: str, caps: Capabilities, model: str, model_args: Mapping[str, str]) -> ChatSetup:
    """:func:`chat_setup`, computed once per (backend, model, model args) in a process: a run with
    several chat tasks loads the tokenizer once."""
    return _cached_setup(backend, caps, model, tuple(sorted((str(k), str(v)) for k, v in model_args.items())))


@lru_cache(maxsize=8)
def _cached_setup(backend: str, caps: Capabilities, model: str, model_args: tuple[tuple[str, str], ...]) -> ChatSetup:
    return chat_setup(backend, caps, model, dict(model_args))


def with_system(messages: list[dict[str, str]], system_prompt: str | None) -> list[dict[str, str]]:
    """``messages`` behind a system message holding ``system_prompt`` (``--system-prompt``), if any."""
    return ([{"role": "system", "content": system_prompt}] if system_prompt else []) + list(messages)


def mcq_chat_messages(parts: MCQParts, system_prompt: str | None = None,
                      fewshot_as_multiturn: bool = False) -> list[dict[str, str]]:
    """A multiple-choice prompt as chat messages.

    Default: one user message holding the whole prompt (instruction, shots, question:
    ``parts.single_turn()``). ``fewshot_as_multiturn`` (with shots): each shot is a user turn (its
    question, the instruction before the first) and an assistant turn (its answer), then the test
    question as the last user turn. Message texts lose trailing whitespace (the template separates
    turns); ``system_prompt`` comes first as a system message."""
    if fewshot_as_multiturn and parts.shots:
        msgs: list[dict[str, str]] = []
        for i, (q, a) in enumerate(parts.shots):
            msgs.append({"role": "user", "content": ((parts.instruction if i == 0 else "") + q).rstrip()})
            msgs.append({"role": "assistant", "content": a.strip()})
        msgs.append({"role": "user", "content": parts.question.rstrip()})
    else:
        msgs = [{"role": "user", "content": parts.single_turn().rstrip()}]
    return with_system(msgs, system_prompt)


def render_messages(setup: ChatSetup, messages: list[dict[str, str]]) -> tuple[str, tuple]:
    """(context, messages to send): the rendered prompt ending in the open assistant turn, and for a
    chat API (``setup.messages``) the turns as :class:`~chimed_eval.core.types.Message` (the context is
    then their stored text, :func:`messages_context`)."""
    from chimed_eval.core.types import Message

    sent = tuple(Message(m["role"], m["content"]) for m in messages) if setup.messages else ()  # type: ignore[arg-type]
    return setup.render(messages), sent


def template_run_options(task: object, settings: object, variant: str,
                         caps: Capabilities) -> tuple[str, dict[str, object]]:
    """The variant and the chat/think fields of a task's run options (``runner.run_options``);
    ``caps``: what the run's backend can do (its chat rendering).

    ``--apply-chat-template`` renders every multiple-choice task through the model's chat setup
    (:func:`run_chat_setup`) and puts generation tasks on their ``chat`` variant (an explicit other
    variant is refused: ``paper`` is itself a documented format); a task with neither (NER,
    scales) is refused. ``--system-prompt`` and ``--fewshot-as-multiturn`` need a chat rendering
    (``--apply-chat-template`` or ``--variant chat``). ``--think-markers`` is parsed here."""
    from chimed_eval.extract.reasoning import parse_think_markers

    name = getattr(task, "name", "?")
    variants = tuple(getattr(task, "variants", ()))
    apply = bool(getattr(settings, "apply_chat_template", False))
    if apply:
        if "chat" in variants:
            if getattr(settings, "variant", None) not in (None, "chat"):
                raise ConfigError(f"task {name!r}: --apply-chat-template renders its chat variant; "
                                  f"--variant {getattr(settings, 'variant')} is a prompt format of its own (leave one out)")
            variant = "chat"
        elif not getattr(task, "supports_chat_template", False):
            raise ConfigError(f"task {name!r} has no chat rendering: --apply-chat-template is for multiple-choice, "
                              "open-QA and dialogue tasks")
    system_prompt = getattr(settings, "system_prompt", None)
    multiturn = bool(getattr(settings, "fewshot_as_multiturn", False))
    if (system_prompt or multiturn) and not (apply or variant == "chat"):
        raise ConfigError("--system-prompt and --fewshot-as-multiturn shape chat messages: add --apply-chat-template")
    chat = None
    if apply or variant == "chat":
        chat = run_chat_setup(str(getattr(settings, "backend")), caps, str(getattr(settings, "model")),
                              dict(getattr(settings, "model_args", {}) or {}))
    return variant, {"chat": chat, "system_prompt": system_prompt or None, "fewshot_as_multiturn": multiturn,
                     "think_markers": parse_think_markers(getattr(settings, "think_markers", None))}
