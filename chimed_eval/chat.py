"""Which prompt format the ``chat`` variant of the generation tasks uses for a run.

``chimed-eval run --variant chat`` calls :func:`configure_chat_tasks`. The format is decided by
the model, never silently replaced by another one:

* ``--backend openai``: the turns go to the server as messages; its own chat template applies.
* a preset (or ``--model-args chat_format=NAME``) whose format is in
  :data:`chimed_eval.prompts.CHAT_FORMATS` (ziya, baichuan, chimed, ...): that format, as its model
  card documents it, with its turn markers as stop strings. This holds on every local backend,
  the fake one included (so the rendered prompts can be checked without the weights).
* a format that is neither in that table nor ``none``/``api``: refused (ConfigError), since any
  rendering would be a guess.
* ``none`` (a hub id, a local directory, the small GGUF presets): the tokenizer's own chat
  template; a tokenizer without one is refused. The fake backend, which has no tokenizer, uses a
  ChatML stand-in and says so in the label.

What was used is recorded in results.json (``settings.generation.<task>.chat_template``).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Callable, Iterable, Mapping

from .errors import ConfigError
from .prompts import CHAT_FORMATS, TEMPLATE_FORMATS, ChatFormat, chat_format

Renderer = Callable[[list[dict[str, str]]], str]

#: Stop strings of the ChatML stand-in (the fake backend's renderer).
CHATML_STOP = ("<|im_end|>", "<|im_start|>")


@dataclass(frozen=True)
class ChatSetup:
    """What a generation task needs for its ``chat`` variant.

    ``add_special_tokens``: passed with each request; ``None`` is the tokenizer's default (what a
    model card's ``tokenizer(prompt)`` does), ``False`` where the template or format already
    holds every special token (tokenizer chat templates, Baichuan's and Taiyi's token lists)."""

    render: Renderer
    label: str
    stop: tuple[str, ...] = ()
    add_special_tokens: bool | None = False


def chatml_renderer(messages: list[dict[str, str]]) -> str:
    """A generic ChatML rendering, used only where no model tokenizer exists (the fake backend)."""
    return "".join(f"<|im_start|>{m['role']}\n{m['content']}<|im_end|>\n" for m in messages) + "<|im_start|>assistant\n"


def declared_format(model: str, model_args: Mapping[str, str]) -> str | None:
    """``--model-args chat_format=`` if given, else the preset's format, else None (not a preset).
    Needs no weights: a preset declares its format."""
    if model_args.get("chat_format"):
        return str(model_args["chat_format"])
    from .models import MODELS

    return MODELS.get(model).chat_format if model in MODELS else None


def format_setup(fmt: ChatFormat) -> ChatSetup:
    """The setup for a documented text format."""
    return ChatSetup(render=fmt.render, label=f"{fmt.name} ({fmt.source})", stop=fmt.stop,
                     add_special_tokens=fmt.add_special_tokens)


def chat_setup(backend: str, model: str, model_args: Mapping[str, str]) -> ChatSetup:
    """The chat-variant setup for ``model`` on ``backend`` (see the module docstring)."""
    if backend == "openai":
        from .backends.openai import messages_renderer

        return ChatSetup(messages_renderer, "the server's chat template (openai chat endpoint, messages)")
    fmt = declared_format(model, model_args)
    if fmt in CHAT_FORMATS:
        return format_setup(chat_format(fmt))
    if fmt is not None and fmt not in TEMPLATE_FORMATS:
        raise ConfigError(f"model {model!r}: its chat format {fmt!r} is not a documented format "
                          f"(known: {', '.join(sorted(CHAT_FORMATS))}); the chat variant would render a guess. "
                          "Use --variant paper, or --model-args chat_format=NAME with one of those")
    if backend == "fake":
        return ChatSetup(chatml_renderer, "chatml (fake backend)", CHATML_STOP)
    if fmt == "api":
        raise ConfigError(f"model {model!r} is an API model: its chat variant needs --backend openai")
    return _tokenizer_setup(model, model_args)


def _tokenizer_setup(model: str, model_args: Mapping[str, str]) -> ChatSetup:
    """The tokenizer's own chat template (hub ids, local directories, GGUF presets)."""
    from transformers import AutoTokenizer

    from .models import resolve_model
    from .types import sha256_text

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


def configure_chat_tasks(tasks: Iterable[Any], backend: str, model: str, model_args: Mapping[str, str]) -> None:
    """Give every task with a chat variant (a ``configure_chat`` method) the run's setup. Nothing
    is loaded when no such task is selected."""
    targets = [t for t in tasks if hasattr(t, "configure_chat")]
    if not targets:
        return
    setup = chat_setup(backend, model, model_args)
    for t in targets:
        t.configure_chat(setup)
