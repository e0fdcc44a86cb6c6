"""OpenAI-compatible HTTP API backend (OpenAI, ``vllm serve``, any server that speaks the protocol).

Transport: one ``httpx.Client`` (keep-alive connection pool, redirects never followed: the key
would go with them); httpx is imported when the backend is built, so ``chimed-eval --help`` never
loads it, and a missing httpx is a ConfigError naming ``pip install 'chimed-eval[api]'``.

Options (``--model-args k=v,...``):

* ``base_url``: default ``$OPENAI_BASE_URL`` or ``https://api.openai.com/v1``; it must not carry
  credentials (``user:pass@``), since model args are recorded in results.json. A key is only sent
  over ``https://`` or to a loopback host (``localhost``, ``127.0.0.0/8``, ``::1``); plain
  ``http://`` to any other host with a key is refused before any request unless
  ``allow_insecure_http=true`` (a trusted network; the key then travels in clear text).
* ``endpoint``: ``chat`` (``/chat/completions``, default) or ``completions``.
* ``api_model``: the model name sent to the server (default: the preset's API name or hub id, else
  ``--model`` as given; ``vllm serve`` names a model by its path unless ``--served-model-name``).
* ``api_key_env`` (default ``OPENAI_API_KEY``) or ``api_key_file``: where the key is read. A key is
  never accepted on the command line (``api_key=``, ``token=``, ``Authorization=``... are refused,
  :mod:`chimed_eval.core.secrets`), never written to results, samples, the cache, logs or error
  messages: every message is redacted of the key, of any run of 8 or more of its characters, of
  its base64 and hex forms (an ``Authorization`` header echoed back), and server bodies are cut
  to 200 characters. No key: no ``Authorization`` header (local servers).
* ``concurrency`` (8); ``timeout`` (120 s): the whole of one HTTP attempt (connect, send, the
  complete response body; a server that drips bytes is cut at this limit, not per read);
  ``request_deadline`` (600 s): the whole of one request, every attempt and wait included, after
  which the item fails; ``max_retries`` (8), ``backoff`` (first back-off ceiling, 1 s),
  ``max_backoff`` (60 s, the cap of every wait, ``Retry-After`` included): transport, not results.
* ``system_prompt`` (chat only; ``none`` for none) or ``system_prompt_file``. The GPT presets
  default to the paper's system prompt.
* ``temperature``: overrides every ``generate`` request's temperature (the paper's API setting is
  0.2; recorded in ``settings.model_args``).
* ``top_logprobs`` (20; OpenAI's maximum; legacy completions allow 5), ``logprob_floor`` (-100).
* ``max_tokens_field``: ``max_tokens`` (default) or ``max_completion_tokens`` (newer OpenAI models).
* ``stream`` (false): ``generate`` requests ask for a streamed reply (server-sent events,
  :mod:`.openai_stream`), which records each request's time to first token; the answer is the
  same. ``stream_usage`` (true) asks for the token usage in the final chunk
  (``stream_options: {"include_usage": true}``; false for a server that refuses the field).
* ``tokenizer``: a ``tokenizer.json`` file (or a folder holding one) that counts the prompt and
  completion tokens of a reply whose server reports no ``usage``; without it, a streamed reply's
  completion tokens are its text chunks. Each usage line says which (``tokens_source``).

Request kinds:

* ``generate``: honours the request's GenerationConfig (``max_new_tokens``, ``temperature``,
  ``top_p``, ``stop`` (the first 4 go to the server; all are also cut client-side), ``seed``).
* ``next_token``: one generated token with ``logprobs``: a candidate's log-probability is the
  log-sum-exp of the first token's top-``top_logprobs`` entries that equal the candidate up to
  surrounding whitespace (``"A"`` and ``" A"``). A candidate absent from the top list gets
  ``logprob_floor`` (-100, below any real top-k entry; absent candidates tie and the task's tie
  rule applies). This approximates the HF backend's exact next-token probability. A server that
  lacks logprobs (it rejects the parameter with 400/422, or answers two attempts in a row with a
  well-formed reply without them) is a ConfigError telling the user to run ``--variant generate``:
  the backend never silently changes the scoring, so ``settings.scoring`` in results.json is exact.
* ``loglikelihood``: ``completions`` with ``echo: true, logprobs: 1, max_tokens: 1`` (the prompt's
  token log-probabilities, as ``vllm serve`` returns them); the continuation's tokens are those
  whose text starts at or after the end of the context (a token that straddles the boundary is
  counted with the continuation). A server without echo logprobs (or the chat endpoint) is a
  ConfigError.
* The ``chat`` prompt variant of generation tasks fills ``Request.messages``; the chat endpoint
  sends them as messages (the server applies the model's template), and the completions
  endpoint refuses them.

Reliability: every reply is validated before it is used (a choice, its text a string, logprobs of
the right shapes and finite); an invalid reply is retried like a 5xx and never returned, so the
response cache (:mod:`chimed_eval.backends.cache`) never stores it. Retried: 408/409/425/429/5xx,
connection errors (refused, reset, dropped without a response), timeouts, malformed or
incomplete JSON and invalid replies, up to ``max_retries`` times with exponential back-off and
full jitter (``uniform(0, min(max_backoff, backoff * 2**attempt))``); a ``Retry-After`` (or
``retry-after-ms``) header sets the wait instead (plus up to 10% jitter), never above
``max_backoff``; no wait goes past ``request_deadline``. Other 4xx fail at once. When retries run
out the run stops with an :class:`APIError`; items already written stay written, and the
response cache keeps every valid response that did arrive, so the same command resumes where it
stopped without asking for them again.

Interrupts: requests run on daemon worker threads; the first Ctrl-C (KeyboardInterrupt in the
main thread) stops scheduling, wakes every back-off wait at once and re-raises in the main
thread without waiting for requests in flight; the backend then refuses further work.

Code: this module holds the options and the requests of each kind; :mod:`.openai_transport` the
client, deadlines, retries and Ctrl-C; :mod:`.openai_secrets` the key, its redaction and the
``base_url`` checks; :mod:`.openai_replies` the validation and reading of replies.
"""

from __future__ import annotations

import dataclasses
import os
import threading
import time
from typing import Any, Callable, Sequence

from chimed_eval.core.errors import ConfigError
from chimed_eval.core.secrets import refuse_secret_args
from chimed_eval.core.types import ModelInfo, Request, Response, Usage, sha256_text
from chimed_eval.backends.base import Backend
from chimed_eval.core.capabilities import Capabilities
from chimed_eval.backends.openai_replies import ReplyReader
from chimed_eval.backends.openai_options import arg_bool, arg_float, resolve_api_model, system_prompt_arg
from chimed_eval.backends.openai_stream import STREAM_META, StreamAssembler, TokenCounter, prompt_text, read_events
from chimed_eval.backends.openai_secrets import (Redactor, Secret, check_base_url, is_loopback, read_key, refuse_clear_text_key,
                             sanitise_url)
from chimed_eval.backends.openai_transport import (INSTALL_HINT, APIError, RetryPolicy, Transport, backoff_delay, map_concurrently,
                               parse_retry_after)

__all__ = ["APIError", "INSTALL_HINT", "OpenAIBackend", "Redactor", "backoff_delay", "parse_retry_after",
           "sanitise_url"]

DEFAULT_BASE_URL = "https://api.openai.com/v1"
ENDPOINTS = {"chat": "/chat/completions", "completions": "/completions"}
TRANSPORT_ARGS = ("concurrency", "timeout", "request_deadline", "max_retries", "backoff", "max_backoff",
                  "api_key_env", "api_key_file", "allow_insecure_http", "stream", "stream_usage", "tokenizer")
RESULT_ARGS = ("base_url", "endpoint", "api_model", "system_prompt", "system_prompt_file", "temperature",
               "top_logprobs", "logprob_floor", "max_tokens_field")
IGNORED_ARGS = ("chat_format", "revision")  # model metadata: meaningless for a served model
DEFAULT_REQUEST_DEADLINE = 600.0


class OpenAIBackend(Backend):
    name = "openai"
    #: letters from the top log-probabilities; the prompt's log-probabilities with
    #: ``endpoint=completions`` only (refused otherwise, :meth:`loglikelihood`); the turns as messages
    capabilities = Capabilities(letter_logprobs=True, prompt_logprobs=True, chat_messages=True)
    accepted_args = frozenset(TRANSPORT_ARGS + RESULT_ARGS + IGNORED_ARGS)
    requires = ("httpx",)  # a base dependency; absent only where installed with --no-deps
    install_hint = INSTALL_HINT

    def __init__(self, model: Any, device: str | None = None, dtype: str | None = None, batch_size: int = 8,
                 seed: int = 0, model_args: dict[str, str] | None = None, **_: object) -> None:
        args = dict(model_args or {})
        refuse_secret_args(args)  # names them, never their values
        self._key = Secret("")
        self._redact = Redactor([])
        try:
            self._configure(model, args)
        except ConfigError as e:  # a message may quote a value: never the key, whatever the field
            raise ConfigError(self._redact(str(e))) from None
        self.seed = seed
        policy = RetryPolicy(timeout=self.timeout, request_deadline=self.request_deadline,
                             max_retries=self.max_retries, backoff=self.backoff, max_backoff=self.max_backoff)
        self._transport = Transport(self.base_url + ENDPOINTS[self.endpoint], policy, self.concurrency,
                                    self.loopback, self._key, self._redact)  # imports httpx
        self._replies = ReplyReader(chat=self.endpoint == "chat", logprob_floor=self.logprob_floor,
                                    server=self.safe_base_url, api_model=self.api_model)
        self._usage_sink = threading.local()  # the token counts of the request each worker thread answers
        #: Called with (request, response) as each valid response arrives (from worker threads):
        #: the response cache stores it at once, so a batch that fails half-way loses nothing.
        self.on_response: Callable[[Request, Response], None] | None = None

    @property
    def http_calls(self) -> int:
        """Valid HTTP responses, for tests and logs."""
        return self._transport.http_calls

    def _configure(self, model: Any, args: dict[str, str]) -> None:
        """Reads and checks every option; ConfigErrors raised here are redacted by the caller."""
        unknown = sorted(set(args) - set(TRANSPORT_ARGS) - set(RESULT_ARGS) - set(IGNORED_ARGS))
        if unknown:
            raise ConfigError(f"openai backend: unknown --model-args {unknown}; known: "
                              f"{sorted(TRANSPORT_ARGS + RESULT_ARGS)}")
        self._key = Secret(read_key(args))
        self._redact = Redactor([self._key.reveal()])
        self.preset_name, api_name, default_system, default_endpoint = resolve_api_model(model)
        self.api_model = args.get("api_model") or api_name
        self.display_name = self.preset_name or self.api_model

        base_url = args.get("base_url") or os.environ.get("OPENAI_BASE_URL") or DEFAULT_BASE_URL
        parts = check_base_url(base_url, self._key.reveal(), self._redact)
        self.base_url = base_url.rstrip("/")
        self.safe_base_url = sanitise_url(base_url)
        self.loopback = is_loopback(parts.hostname)
        self.endpoint = args.get("endpoint", default_endpoint)
        if self.endpoint not in ENDPOINTS:
            raise ConfigError(f"endpoint must be one of {sorted(ENDPOINTS)}, not {self.endpoint!r}")
        if not self._key and parts.hostname == "api.openai.com":
            raise ConfigError(f"no API key: set ${args.get('api_key_env', 'OPENAI_API_KEY')} "
                              "or pass --model-args api_key_file=PATH")
        self.allow_insecure_http = arg_bool(args, "allow_insecure_http", False)
        refuse_clear_text_key(parts, self.safe_base_url, bool(self._key), self.allow_insecure_http)

        self.system_prompt = system_prompt_arg(args, default_system)
        if self.system_prompt and self.endpoint != "chat" and ("system_prompt" in args or "system_prompt_file" in args):
            raise ConfigError("system_prompt needs endpoint=chat")
        if self.endpoint != "chat":
            self.system_prompt = None
        self.temperature = arg_float(args, "temperature", None)
        self.top_logprobs = int(arg_float(args, "top_logprobs", 20))
        self.logprob_floor = arg_float(args, "logprob_floor", -100.0)
        self.max_tokens_field = args.get("max_tokens_field", "max_tokens")
        if self.max_tokens_field not in ("max_tokens", "max_completion_tokens"):
            raise ConfigError("max_tokens_field must be max_tokens or max_completion_tokens")
        self.concurrency = max(1, int(arg_float(args, "concurrency", 8)))
        self.timeout = arg_float(args, "timeout", 120.0, positive=True)
        self.request_deadline = arg_float(args, "request_deadline", DEFAULT_REQUEST_DEADLINE, positive=True)
        self.max_retries = max(0, int(arg_float(args, "max_retries", 8)))
        self.backoff = max(0.0, arg_float(args, "backoff", 1.0))
        self.max_backoff = max(0.0, arg_float(args, "max_backoff", 60.0))
        self.stream = arg_bool(args, "stream", False)
        self.stream_usage = arg_bool(args, "stream_usage", True)
        self._tokenizer = TokenCounter.load(args["tokenizer"]) if args.get("tokenizer") else None

    # ------------------------------------------------------------------ identity
    def model_info(self) -> ModelInfo:
        """name: the preset (leaderboard row) or the API model; path: the API model name;
        revision: the endpoint and a hash of the system prompt. Never the key."""
        rev = f"api {self.endpoint} {self.safe_base_url}"
        if self.system_prompt:
            rev += f" system_prompt=sha256:{sha256_text(self.system_prompt)[:16]}"
        return ModelInfo(name=self.display_name, path=self.api_model, revision=rev, weights_sha256=None, dtype=None)

    def cache_identity(self) -> dict[str, Any]:
        """What, besides the request, determines a response (used by the response cache)."""
        return {"api_model": self.api_model, "base_url": self.safe_base_url, "endpoint": self.endpoint,
                "system_prompt": self.system_prompt, "temperature_override": self.temperature,
                "top_logprobs": self.top_logprobs, "logprob_floor": self.logprob_floor,
                "max_tokens_field": self.max_tokens_field}

    def close(self) -> None:
        """Stops every wait and request not yet sent, and closes the connection pool."""
        self._transport.close()

    # ------------------------------------------------------------------ kinds
    def generate(self, requests: Sequence[Request]) -> list[Response]:
        return self._map(self._generate_one, requests)

    def next_token(self, requests: Sequence[Request]) -> list[Response]:
        return self._map(self._next_token_one, requests)

    def loglikelihood(self, requests: Sequence[Request]) -> list[Response]:
        if self.endpoint != "completions":
            raise ConfigError("loglikelihood scoring (--variant lm-eval) needs the prompt's log-probabilities: "
                              "use --model-args endpoint=completions with a server that echoes them (vllm serve), "
                              "or --variant paper (next-token logprobs) or --variant generate")
        return self._map(self._loglikelihood_one, requests)

    def _map(self, fn: Callable[[Request], Response], requests: Sequence[Request]) -> list[Response]:
        """Run ``fn`` over the requests on up to ``concurrency`` daemon worker threads, in order,
        handing each response to ``on_response`` as it arrives; the first failure, or a Ctrl-C,
        stops the batch (:func:`~.openai_transport.map_concurrently`). Each response carries its
        wall latency (every attempt and back-off included) and the server's token ``usage``
        summed over the request's calls (where they come from: ``tokens_source``) and, streamed,
        the time from the start of the request to its first token (retries included, as in the
        latency)."""
        def one(r: Request) -> Response:
            started = time.perf_counter()
            sink = self._usage_sink
            sink.counts, sink.sources, sink.first = [], [], None
            resp = fn(r)
            sources = sorted({x for x in sink.sources if x is not None})
            resp = dataclasses.replace(resp, usage=Usage(
                *_sum_counts(sink.counts), latency_s=time.perf_counter() - started,
                ttft_s=None if sink.first is None else sink.first - started,
                tokens_source="+".join(sources) or None))
            if self.on_response is not None:
                self.on_response(r, resp)
            return resp

        return map_concurrently(one, requests, self.concurrency, self._transport.abort)

    # ------------------------------------------------------------------ payloads
    def _base_payload(self, r: Request, max_tokens: int) -> dict[str, Any]:
        payload: dict[str, Any] = {"model": self.api_model, self.max_tokens_field: max_tokens}
        if self.endpoint == "chat":
            payload["messages"] = self._messages(r)
        else:
            if r.messages:
                raise ConfigError("the chat prompt variant needs --model-args endpoint=chat")
            payload["prompt"] = r.context
        return payload

    def _messages(self, r: Request) -> list[dict[str, str]]:
        """The request's chat turns, or its context as one user message."""
        if r.messages:
            msgs = [{"role": m.role, "content": m.content} for m in r.messages]
        else:
            msgs = [{"role": "user", "content": r.context}]
        if self.system_prompt and not any(m.get("role") == "system" for m in msgs):
            msgs.insert(0, {"role": "system", "content": self.system_prompt})
        return msgs

    def _generate_one(self, r: Request) -> Response:
        g = r.generation
        max_new = g.max_new_tokens if g else 256
        payload = self._base_payload(r, max_new)
        temperature = self.temperature if self.temperature is not None else (g.temperature if g else 0.0)
        payload["temperature"] = temperature
        if g is not None:
            if g.top_p < 1.0:
                payload["top_p"] = g.top_p
            if g.top_k is not None:  # --gen_kwargs top_k: vLLM's and most compatible servers read it
                payload["top_k"] = g.top_k
            if g.stop:
                payload["stop"] = list(g.stop[:4])
            if g.seed is not None:
                payload["seed"] = int(g.seed)

        stream = None
        if self.stream:
            payload["stream"] = True
            if self.stream_usage:
                payload["stream_options"] = {"include_usage": True}
            chat = self.endpoint == "chat"
            stream = lambda lines, tick: read_events(lines, StreamAssembler(chat), tick)  # noqa: E731

        def parse(data: dict[str, Any]) -> Response:
            text, n = self._replies.generation(data, g.stop if g else ())
            return Response(key=r.key, text=text, n_tokens=(n,) if n is not None else None)

        return self._transport.post(payload, r.key, self._counted(parse, payload), stream=stream)

    def _counted(self, parse: Callable[[dict[str, Any]], Any],
                 payload: dict[str, Any] | None = None) -> Callable[[dict[str, Any]], Any]:
        """``parse`` that also notes, for the request being answered (on this worker thread), the
        reply's token counts and where they come from (the server's ``usage``; else the
        ``tokenizer``'s count of the ``payload``'s prompt and the reply's text; else a stream's
        text chunks) and a stream's first-token time; only a reply that ``parse`` accepts is
        noted (one that fails validation is retried and noted then)."""
        sink = self._usage_sink

        def wrapped(data: dict[str, Any]) -> Any:
            out = parse(data)
            counts = self._replies.usage(data)
            source = "server" if counts[0] is not None or counts[1] is not None else None
            meta = data.get(STREAM_META)
            if source is None and self._tokenizer is not None and payload is not None:
                text = meta.text if meta is not None else self._replies.choice_text(data)[1]
                counts, source = (self._tokenizer.count(prompt_text(payload)), self._tokenizer.count(text), None), \
                    "tokenizer"
            elif source is None and meta is not None:
                counts, source = (None, meta.chunks, None), "stream_chunks"
            getattr(sink, "counts", []).append(counts)
            getattr(sink, "sources", []).append(source)
            if meta is not None and meta.first_token_at is not None:
                sink.first = meta.first_token_at
            return out

        return wrapped

    def _next_token_one(self, r: Request) -> Response:
        payload = self._base_payload(r, 1)
        payload["temperature"] = 0.0
        if self.endpoint == "chat":
            payload.update(logprobs=True, top_logprobs=self.top_logprobs)
        else:
            payload["logprobs"] = self.top_logprobs

        def parse(data: dict[str, Any]) -> Response:
            lps, greedy = self._replies.candidates(data, r.continuations)
            return Response(key=r.key, logprobs=tuple(lps), greedy=tuple(greedy), n_tokens=tuple(1 for _ in lps))

        return self._transport.post(payload, r.key, self._counted(parse, payload))

    def _loglikelihood_one(self, r: Request) -> Response:
        lps, greedy, counts = [], [], []
        ctx = r.context.rstrip() if r.context else ""
        boundary = len(ctx)  # trailing spaces of the context belong to the continuation (lm-eval)
        for cont in r.continuations:
            prompt = r.context + cont
            payload = {"model": self.api_model, "prompt": prompt, self.max_tokens_field: 1, "temperature": 0.0,
                       "logprobs": 1, "echo": True}
            lp, n, g = self._transport.post(payload, r.key, self._counted(
                lambda data: self._replies.continuation(data, prompt, boundary, r.key, cont)))
            lps.append(lp)
            counts.append(n)
            greedy.append(g)
        return Response(key=r.key, logprobs=tuple(lps), greedy=tuple(greedy), n_tokens=tuple(counts))


def _sum_counts(counts: Sequence[tuple[int | None, int | None, int | None]]) -> tuple[int | None, ...]:
    """(prompt, completion, reasoning) summed over a request's calls; None where no call reported it."""
    return tuple(None if all(c[i] is None for c in counts) else sum(c[i] or 0 for c in counts) for i in range(3))
