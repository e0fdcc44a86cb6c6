"""Streamed replies of an OpenAI-compatible server (``--model-args stream=true``): server-sent
events read as they arrive, the time of the first token noted, and the chunks put back together
into the shape of a non-streamed reply, so the same :class:`~.openai_replies.ReplyReader` validates
and reads both.

A stream is used only once it is whole: it must end with ``data: [DONE]``. A stream cut before it
(the connection dropped, the server died), an event that is not JSON, or an ``error`` event raises
:class:`~.openai_transport.Transient` / :class:`~.openai_transport.Malformed`, which the transport
retries like a 5xx; a partial answer never reaches a result or the response cache. The usage comes
from the final chunk when the server sends it (``stream_options: {"include_usage": true}``);
:class:`StreamMeta` keeps what the backend needs to count tokens itself otherwise.
"""

from __future__ import annotations

import json
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Callable, Iterable

from chimed_eval.core.errors import ConfigError
from chimed_eval.backends.openai_transport import Malformed, Transient

#: where the assembled reply carries its :class:`StreamMeta` (no server field can be named so)
STREAM_META = "\x00stream"


@dataclass(frozen=True)
class StreamMeta:
    """How a streamed reply arrived: ``first_token_at`` (``time.perf_counter()`` when the first
    chunk with generated text, or reasoning, came; None when none did), ``chunks`` (chunks that
    carried generated text: one per token on vLLM and OpenAI), ``text`` (the text as received,
    before any client-side stop cut)."""

    first_token_at: float | None
    chunks: int
    text: str


class StreamAssembler:
    """Reads the events of one streamed reply (``chat``: ``choices[0].delta.content``; completions:
    ``choices[0].text``) into a reply dict of the non-streamed shape."""

    def __init__(self, chat: bool) -> None:
        self.chat = chat
        self.parts: list[str] = []
        self.first_token_at: float | None = None
        self.chunks = 0
        self.events = 0
        self.usage: dict[str, Any] | None = None
        self.finish_reason: Any = None
        self.saw_choice = False
        self.done = False

    def feed(self, data: str) -> None:
        """One event's data (its ``data:`` lines joined)."""
        if self.done:
            raise Malformed("an event after data: [DONE]")
        if data.strip() == "[DONE]":
            self.done = True
            return
        self.events += 1
        try:
            event = json.loads(data)
        except ValueError:
            raise Malformed(f"stream event {self.events} is not JSON ({len(data)} characters)") from None
        if not isinstance(event, dict):
            raise Malformed(f"stream event {self.events} is not a JSON object")
        if event.get("error") is not None:
            err = event["error"]
            message = err.get("message") if isinstance(err, dict) else err
            raise Transient(f"the server reported an error in the stream: {' '.join(str(message).split())[:200]}")
        usage = event.get("usage")
        if isinstance(usage, dict):
            self.usage = usage
        choices = event.get("choices")
        if choices is None:
            return
        if not isinstance(choices, list):
            raise Malformed(f"stream event {self.events}: choices is not a list")
        if not choices:  # the usage chunk
            return
        choice = choices[0]
        if not isinstance(choice, dict):
            raise Malformed(f"stream event {self.events}: a choice is not an object")
        self.saw_choice = True
        if choice.get("finish_reason") is not None:
            self.finish_reason = choice["finish_reason"]
        if self.chat:
            delta = choice.get("delta")
            if delta is None:
                return
            if not isinstance(delta, dict):
                raise Malformed(f"stream event {self.events}: delta is not an object")
            text, reasoning = delta.get("content"), delta.get("reasoning_content") or delta.get("reasoning")
        else:
            text, reasoning = choice.get("text"), None
        if text is not None and not isinstance(text, str):
            raise Malformed(f"stream event {self.events}: the generated text is not a string")
        if (text or (isinstance(reasoning, str) and reasoning)) and self.first_token_at is None:
            self.first_token_at = time.perf_counter()
        if text:
            self.parts.append(text)
            self.chunks += 1

    def reply(self) -> dict[str, Any]:
        """The reply as a non-streamed server would have sent it, with its :class:`StreamMeta`
        under :data:`STREAM_META`; a stream that did not end with ``[DONE]`` is Transient."""
        if not self.done:
            raise Transient(f"the stream ended before data: [DONE] ({self.events} events received)")
        text = "".join(self.parts)
        choices: list[dict[str, Any]] = []
        if self.saw_choice:
            body = {"message": {"role": "assistant", "content": text}} if self.chat else {"text": text}
            choices = [{"index": 0, **body, "finish_reason": self.finish_reason}]
        out: dict[str, Any] = {"choices": choices, STREAM_META: StreamMeta(self.first_token_at, self.chunks, text)}
        if self.usage is not None:
            out["usage"] = self.usage
        return out


def read_events(lines: Iterable[str], assembler: StreamAssembler, tick: Callable[[int], None]) -> dict[str, Any]:
    """Feed the server-sent events of ``lines`` to ``assembler`` and return its reply. ``tick(n)``
    is called after each line with its size (the caller's clock, size and Ctrl-C checks). Lines
    starting with ``:`` are comments (keep-alives); ``event:``, ``id:`` and ``retry:`` are ignored;
    an event's ``data:`` lines are joined with newlines, as the SSE format says."""
    data: list[str] = []
    for line in lines:
        tick(len(line) + 1)
        if line == "":
            if data:
                assembler.feed("\n".join(data))
                data = []
            continue
        if line.startswith(":"):
            continue
        field, _, value = line.partition(":")
        if field == "data":
            data.append(value[1:] if value.startswith(" ") else value)
        elif field not in ("event", "id", "retry"):
            raise Malformed(f"not a server-sent event stream (a line starts {line[:20]!r})")
    if data:
        assembler.feed("\n".join(data))
    return assembler.reply()


def prompt_text(payload: dict[str, Any]) -> str:
    """The text a request sends: its messages' contents, one per line, or its prompt."""
    messages = payload.get("messages")
    if isinstance(messages, list):
        return "\n".join(str(m.get("content", "")) for m in messages if isinstance(m, dict))
    return str(payload.get("prompt", ""))


class TokenCounter:
    """A Hugging Face ``tokenizer.json`` (the ``tokenizers`` library, no transformers) that counts
    the tokens of a text: what ``--model-args tokenizer=`` counts a reply with when the server
    reports no usage. Special tokens are not added (the server's chat template is not known)."""

    def __init__(self, tokenizer: Any, where: str) -> None:
        self._tokenizer, self.where = tokenizer, where

    @classmethod
    def load(cls, where: str) -> "TokenCounter":
        path = Path(where).expanduser()
        file = path / "tokenizer.json" if path.is_dir() else path
        if not file.is_file():
            raise ConfigError(f"--model-args tokenizer={where}: no tokenizer.json there (a tokenizer.json file, "
                              "or a folder holding one)")
        try:
            from tokenizers import Tokenizer
        except ImportError:
            raise ConfigError("--model-args tokenizer= needs the tokenizers library: pip install tokenizers") from None
        try:
            return cls(Tokenizer.from_file(str(file)), str(file))
        except Exception as exc:  # noqa: BLE001 -- the library raises its own exception types
            raise ConfigError(f"--model-args tokenizer={where}: {file} is not a tokenizer.json "
                              f"({str(exc)[:200]})") from None

    def count(self, text: str) -> int:
        return len(self._tokenizer.encode(text, add_special_tokens=False).ids)
