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
  :mod:`chimed_eval.secret_args`), never written to results, samples, the cache, logs or error
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
response cache (:mod:`chimed_eval.cache`) never stores it. Retried: 408/409/425/429/5xx,
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
"""

from __future__ import annotations

import base64
import ipaddress
import json
import logging
import math
import os
import random
import re
import threading
import time
import urllib.parse
from email.utils import parsedate_to_datetime
from pathlib import Path
from typing import Any, Callable, Iterable, Sequence

from ..errors import ChimedEvalError, ConfigError
from ..secret_args import refuse_secret_args
from ..types import ModelInfo, Request, Response, sha256_text
from .base import Backend

log = logging.getLogger(__name__)

DEFAULT_BASE_URL = "https://api.openai.com/v1"
ENDPOINTS = {"chat": "/chat/completions", "completions": "/completions"}
RETRY_STATUS = frozenset({408, 409, 425, 429})
TRANSPORT_ARGS = ("concurrency", "timeout", "request_deadline", "max_retries", "backoff", "max_backoff",
                  "api_key_env", "api_key_file", "allow_insecure_http")
RESULT_ARGS = ("base_url", "endpoint", "api_model", "system_prompt", "system_prompt_file", "temperature",
               "top_logprobs", "logprob_floor", "max_tokens_field")
IGNORED_ARGS = ("chat_format", "revision")  # model metadata: meaningless for a served model
DEFAULT_REQUEST_DEADLINE = 600.0
INSTALL_HINT = "pip install 'chimed-eval[api]'"
#: a run of this many characters of the key (or of its encodings) is redacted wherever it appears
REDACT_RUN = 8
#: a key shorter than this is not redacted on its own (it would blank ordinary text)
MIN_SECRET = 4
#: server bodies in messages are cut to this many characters (after redaction)
MAX_DETAIL = 200
#: a larger reply is refused (retried): no answer this backend asks for comes near it
MAX_BODY = 64 * 2**20
REDACTED = "<redacted>"
_ENV_NAME = re.compile(r"[A-Za-z_][A-Za-z0-9_]*\Z")
_ASCII_LOWER = str.maketrans("ABCDEFGHIJKLMNOPQRSTUVWXYZ", "abcdefghijklmnopqrstuvwxyz")


class APIError(ChimedEvalError):
    """The server failed for good (retries exhausted or a non-retryable error). Redacted."""


class _Secret:
    """Holds the API key; its repr and str never show it (tracebacks with locals, debuggers)."""

    __slots__ = ("_value",)

    def __init__(self, value: str) -> None:
        self._value = value

    def reveal(self) -> str:
        return self._value

    def __bool__(self) -> bool:
        return bool(self._value)

    def __repr__(self) -> str:
        return "<secret>"

    __str__ = __repr__


class _Transient(Exception):
    """A failure worth retrying; ``retry_after`` is the server's requested wait in seconds."""

    def __init__(self, message: str, retry_after: float | None = None) -> None:
        super().__init__(message)
        self.retry_after = retry_after


class _Malformed(_Transient):
    """A 200 reply whose shape is wrong (no choice, no text, broken logprobs): retried, never used."""


class _NoLogprobs(_Transient):
    """A well-formed reply without the log-probabilities asked for. Once is a glitch (retried);
    two attempts in a row mean the server lacks them, and ``advice`` becomes a ConfigError."""

    def __init__(self, message: str, advice: str) -> None:
        super().__init__(message)
        self.advice = advice


class _Interrupted(Exception):
    """The backend was interrupted (Ctrl-C) or closed while this request waited or ran."""


class Redactor:
    """Removes a secret from text in every form a server or library may echo it.

    Exact forms first (the key, ``Bearer <key>``, their base64), then any run of
    :data:`REDACT_RUN` or more characters (ASCII case ignored) of the key, of its hex, or of its
    base64 at any of the three byte alignments (so ``base64("user:" + key)`` or a key with its
    last characters cut off is caught too). A secret shorter than the run is matched whole (from
    :data:`MIN_SECRET` characters; shorter ones only as ``Bearer <secret>``)."""

    def __init__(self, secrets: Iterable[str], run: int = REDACT_RUN) -> None:
        self.run = run
        self.exact: list[str] = []
        self.grams: set[str] = set()
        for s in secrets:
            if s:
                self._add(s)
        self.exact.sort(key=len, reverse=True)

    def _add(self, secret: str) -> None:
        raw = secret.encode("utf-8")
        forms = [secret, raw.hex()]
        self.exact.append("Bearer " + secret)
        if len(secret) >= MIN_SECRET:  # "1" is no secret, and would blank every digit 1
            self.exact.append(secret)
        for data in (raw, b"Bearer " + raw):
            for enc in (base64.b64encode, base64.urlsafe_b64encode):
                self.exact.append(enc(data).decode("ascii"))
        for pad in (0, 1, 2):  # base64 of the key after 0, 1 or 2 other bytes: the part only it decides
            for enc in (base64.b64encode, base64.urlsafe_b64encode):
                text = enc(b"\0" * pad + raw).decode("ascii").rstrip("=")
                forms.append(text[(4 if pad else 0): -4 if len(raw) % 3 or pad else None])
        for form in forms:
            low = form.translate(_ASCII_LOWER)
            if len(form) >= self.run:  # shorter: only the exact forms are matched
                self.grams.update(low[i: i + self.run] for i in range(len(low) - self.run + 1))

    def __call__(self, text: str) -> str:
        for e in self.exact:
            if e in text:
                text = text.replace(e, REDACTED)
        if not self.grams or len(text) < self.run:
            return text
        low = text.translate(_ASCII_LOWER)
        n = self.run
        hit = bytearray(len(text))
        for i in range(len(text) - n + 1):
            if low[i: i + n] in self.grams:
                hit[i: i + n] = b"\x01" * n
        if not any(hit):
            return text
        out, i = [], 0
        while i < len(text):
            if hit[i]:
                while i < len(text) and hit[i]:
                    i += 1
                out.append(REDACTED)
            else:
                j = i
                while j < len(text) and not hit[j]:
                    j += 1
                out.append(text[i:j])
                i = j
        return "".join(out)


def sanitise_url(url: str) -> str:
    """The URL without user info, query or fragment (what may appear in records and messages)."""
    p = urllib.parse.urlsplit(url)
    host = p.hostname or ""
    if ":" in host:
        host = f"[{host}]"
    try:
        port = p.port
    except ValueError:
        port = None
    netloc = host + (f":{port}" if port else "")
    return urllib.parse.urlunsplit((p.scheme, netloc, p.path.rstrip("/"), "", ""))


def parse_retry_after(headers: Any) -> float | None:
    """Seconds to wait from ``retry-after-ms`` or ``Retry-After`` (seconds or an HTTP date)."""
    if headers is None:
        return None
    ms = headers.get("retry-after-ms")
    if ms:
        try:
            return _finite_wait(float(ms) / 1000.0)
        except ValueError:
            pass
    value = headers.get("retry-after")
    if not value:
        return None
    try:
        return _finite_wait(float(value))
    except ValueError:
        try:
            return _finite_wait(parsedate_to_datetime(value).timestamp() - time.time())
        except (TypeError, ValueError, IndexError, OverflowError):
            return None


def _finite_wait(seconds: float) -> float | None:
    return max(0.0, seconds) if math.isfinite(seconds) else None


def backoff_delay(attempt: int, base: float, cap: float, retry_after: float | None,
                  rng: random.Random | None = None) -> float:
    """Full-jitter exponential back-off, or the server's Retry-After plus up to 10% jitter; never
    above ``cap`` (a server asking for an hour, or a date a day ahead, does not stall the run)."""
    r = rng or random
    if retry_after is not None:
        return min(cap, retry_after * (1.0 + 0.1 * r.random()))
    return r.uniform(0.0, min(cap, base * (2 ** min(attempt, 64))))


def _logsumexp(xs: Sequence[float]) -> float:
    m = max(xs)
    return m + math.log(sum(math.exp(x - m) for x in xs))


def _is_loopback(host: str | None) -> bool:
    if not host:
        return False
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


def _import_httpx() -> Any:
    """httpx, imported only when an API backend is built (the CLI never loads it otherwise)."""
    try:
        import httpx
    except ImportError:
        raise ConfigError(f"the openai backend needs httpx: {INSTALL_HINT}") from None
    return httpx


class OpenAIBackend(Backend):
    name = "openai"

    def __init__(self, model: Any, device: str | None = None, dtype: str | None = None, batch_size: int = 8,
                 seed: int = 0, model_args: dict[str, str] | None = None, **_: object) -> None:
        args = dict(model_args or {})
        refuse_secret_args(args)  # names them, never their values
        self._key = _Secret("")
        self._redact = Redactor([])
        try:
            self._configure(model, args)
        except ConfigError as e:  # a message may quote a value: never the key, whatever the field
            raise ConfigError(self._redact(str(e))) from None
        self.seed = seed
        self._httpx = _import_httpx()
        self._client: Any = None
        self._client_lock = threading.Lock()
        #: set by the first Ctrl-C or by close(): waits wake at once, nothing new starts
        self._abort = threading.Event()
        self._rng = random.Random()
        self._rng_lock = threading.Lock()
        #: Called with (request, response) as each valid response arrives (from worker threads):
        #: the response cache stores it at once, so a batch that fails half-way loses nothing.
        self.on_response: Callable[[Request, Response], None] | None = None
        self.http_calls = 0  # valid HTTP responses, for tests and logs

    def _configure(self, model: Any, args: dict[str, str]) -> None:
        """Reads and checks every option; ConfigErrors raised here are redacted by the caller."""
        unknown = sorted(set(args) - set(TRANSPORT_ARGS) - set(RESULT_ARGS) - set(IGNORED_ARGS))
        if unknown:
            raise ConfigError(f"openai backend: unknown --model-args {unknown}; known: "
                              f"{sorted(TRANSPORT_ARGS + RESULT_ARGS)}")
        self._key = _Secret(_read_key(args))
        self._redact = Redactor([self._key.reveal()])
        self.preset_name, api_name, default_system, default_endpoint = _resolve(model)
        self.api_model = args.get("api_model") or api_name
        self.display_name = self.preset_name or self.api_model

        base_url = args.get("base_url") or os.environ.get("OPENAI_BASE_URL") or DEFAULT_BASE_URL
        parts = urllib.parse.urlsplit(base_url)
        try:
            parts.port
        except ValueError:
            raise ConfigError(f"base_url {sanitise_url(base_url)!r} has an invalid port") from None
        if parts.scheme not in ("http", "https") or not parts.hostname:
            raise ConfigError(f"base_url {sanitise_url(base_url)!r} is not an http(s) URL")
        if parts.username or parts.password or parts.query or parts.fragment:
            raise ConfigError("base_url must be a plain URL without credentials, query or fragment (model args are "
                              "recorded in results.json); put the key in api_key_env or api_key_file")
        key = self._key.reveal()
        if len(key) >= REDACT_RUN and self._redact(base_url) != base_url:  # recorded in results.json
            raise ConfigError("base_url must not contain the API key: send it through api_key_env or api_key_file")
        self.base_url = base_url.rstrip("/")
        self.safe_base_url = sanitise_url(base_url)
        self.loopback = _is_loopback(parts.hostname)
        self.endpoint = args.get("endpoint", default_endpoint)
        if self.endpoint not in ENDPOINTS:
            raise ConfigError(f"endpoint must be one of {sorted(ENDPOINTS)}, not {self.endpoint!r}")
        if not self._key and parts.hostname == "api.openai.com":
            raise ConfigError(f"no API key: set ${args.get('api_key_env', 'OPENAI_API_KEY')} "
                              "or pass --model-args api_key_file=PATH")
        self.allow_insecure_http = _bool(args, "allow_insecure_http", False)
        if self._key and parts.scheme == "http" and not self.loopback and not self.allow_insecure_http:
            raise ConfigError(f"base_url {self.safe_base_url!r} is plain http:// to a host that is not loopback: the "
                              "API key would be sent there in clear text. Use https://, or pass --model-args "
                              "allow_insecure_http=true if the network is trusted (no key, no refusal)")

        self.system_prompt = _system_prompt(args, default_system)
        if self.system_prompt and self.endpoint != "chat" and ("system_prompt" in args or "system_prompt_file" in args):
            raise ConfigError("system_prompt needs endpoint=chat")
        if self.endpoint != "chat":
            self.system_prompt = None
        self.temperature = _float(args, "temperature", None)
        self.top_logprobs = int(_float(args, "top_logprobs", 20))
        self.logprob_floor = _float(args, "logprob_floor", -100.0)
        self.max_tokens_field = args.get("max_tokens_field", "max_tokens")
        if self.max_tokens_field not in ("max_tokens", "max_completion_tokens"):
            raise ConfigError("max_tokens_field must be max_tokens or max_completion_tokens")
        self.concurrency = max(1, int(_float(args, "concurrency", 8)))
        self.timeout = _float(args, "timeout", 120.0, positive=True)
        self.request_deadline = _float(args, "request_deadline", DEFAULT_REQUEST_DEADLINE, positive=True)
        self.max_retries = max(0, int(_float(args, "max_retries", 8)))
        self.backoff = max(0.0, _float(args, "backoff", 1.0))
        self.max_backoff = max(0.0, _float(args, "max_backoff", 60.0))

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
        self._abort.set()
        with self._client_lock:
            client, self._client = self._client, None
        if client is not None:
            client.close()

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
        """Run ``fn`` over the requests on up to ``concurrency`` daemon worker threads; answers in
        order. The first failure stops scheduling (requests already running finish, so their
        answers reach the cache) and is raised. A KeyboardInterrupt while waiting aborts at once:
        waits wake, nothing new starts, and it is re-raised without waiting for requests in flight
        (daemon threads never hold up the interpreter's exit)."""
        if self._abort.is_set():
            raise APIError("the openai backend was interrupted or closed")
        if not requests:
            return []
        results: list[Response | None] = [None] * len(requests)
        errors: dict[int, BaseException] = {}
        lock = threading.Lock()
        todo = iter(range(len(requests)))
        n_workers = min(self.concurrency, len(requests))
        running = [n_workers]
        finished = threading.Event()

        def worker() -> None:
            try:
                while True:
                    with lock:
                        i = None if errors or self._abort.is_set() else next(todo, None)
                    if i is None:
                        return
                    try:
                        resp = fn(requests[i])
                        if self.on_response is not None:
                            self.on_response(requests[i], resp)
                        results[i] = resp
                    except BaseException as exc:  # noqa: BLE001 - handed to the main thread
                        with lock:
                            errors[i] = exc
            finally:
                with lock:
                    running[0] -= 1
                    if running[0] == 0:
                        finished.set()

        for k in range(n_workers):
            threading.Thread(target=worker, name=f"openai-{k}", daemon=True).start()
        try:
            while not finished.wait(0.25):  # short waits: signals reach the main thread on every OS
                pass
        except BaseException:  # KeyboardInterrupt (Ctrl-C): stop everything, do not wait
            self._abort.set()
            raise
        if errors:
            first = errors[min(errors)]
            if isinstance(first, _Interrupted):
                raise APIError("the openai backend was interrupted or closed")
            raise first
        return results  # type: ignore[return-value]

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

    def _choice_text(self, data: dict[str, Any]) -> tuple[dict[str, Any], str]:
        """(the first choice, its text); raises _Malformed unless both have the right shape."""
        choices = data.get("choices")
        if not isinstance(choices, list) or not choices or not isinstance(choices[0], dict):
            raise _Malformed("reply without a choice")
        choice = choices[0]
        if self.endpoint == "chat":
            msg = choice.get("message")
            text = msg.get("content") if isinstance(msg, dict) else None
            if not isinstance(text, str):
                raise _Malformed("reply without a message content string")
        else:
            text = choice.get("text")
            if not isinstance(text, str):
                raise _Malformed("reply without a text string")
        return choice, text

    def _generate_one(self, r: Request) -> Response:
        g = r.generation
        max_new = g.max_new_tokens if g else 256
        payload = self._base_payload(r, max_new)
        temperature = self.temperature if self.temperature is not None else (g.temperature if g else 0.0)
        payload["temperature"] = temperature
        if g is not None:
            if g.top_p < 1.0:
                payload["top_p"] = g.top_p
            if g.stop:
                payload["stop"] = list(g.stop[:4])
            if g.seed is not None:
                payload["seed"] = int(g.seed)

        def parse(data: dict[str, Any]) -> Response:
            text = self._choice_text(data)[1]
            for s in (g.stop if g else ()):
                if s and s in text:
                    text = text[: text.index(s)]
            usage = data.get("usage")
            n = usage.get("completion_tokens") if isinstance(usage, dict) else None
            ok = isinstance(n, int) and not isinstance(n, bool) and n >= 0
            return Response(key=r.key, text=text, n_tokens=(n,) if ok else None)

        return self._post(payload, r.key, parse)

    def _next_token_one(self, r: Request) -> Response:
        payload = self._base_payload(r, 1)
        payload["temperature"] = 0.0
        if self.endpoint == "chat":
            payload.update(logprobs=True, top_logprobs=self.top_logprobs)
        else:
            payload["logprobs"] = self.top_logprobs

        def parse(data: dict[str, Any]) -> Response:
            first, pool = self._first_token_logprobs(self._choice_text(data)[0])
            lps, greedy = [], []
            for cand in r.continuations:
                target = cand.strip()
                hits = [lp for tok, lp in pool.items() if tok.strip() == target]
                lps.append(_logsumexp(hits) if hits else self.logprob_floor)
                greedy.append(first is not None and first.strip() == target)
            return Response(key=r.key, logprobs=tuple(lps), greedy=tuple(greedy), n_tokens=tuple(1 for _ in lps))

        return self._post(payload, r.key, parse)

    def _no_logprobs(self) -> _NoLogprobs:
        return _NoLogprobs("reply without token log-probabilities",
                           f"{self.safe_base_url} returned no token log-probabilities for model {self.api_model!r} "
                           "(two attempts in a row): next-token scoring (--variant paper / next-token) needs "
                           "logprobs; run --variant generate instead")

    def _first_token_logprobs(self, choice: dict[str, Any]) -> tuple[str | None, dict[str, float]]:
        """(the generated first token, {token: logprob} of its top alternatives). No logprobs at
        all: _NoLogprobs; logprobs of a wrong shape or not finite: _Malformed."""
        lp = choice.get("logprobs")
        pool: dict[str, float] = {}
        first = None
        if lp is None:
            raise self._no_logprobs()
        if not isinstance(lp, dict):
            raise _Malformed("logprobs is not an object")
        if self.endpoint == "chat":
            content = lp.get("content")
            if content is None:
                raise self._no_logprobs()
            if not isinstance(content, list) or not content or not isinstance(content[0], dict):
                raise _Malformed("logprobs.content is not a non-empty list of objects")
            entry = content[0]
            first = _token(entry.get("token"), "logprobs.content[0].token")
            alts = entry.get("top_logprobs") or []
            if not isinstance(alts, list):
                raise _Malformed("logprobs.content[0].top_logprobs is not a list")
            for alt in alts:
                if not isinstance(alt, dict):
                    raise _Malformed("a top_logprobs entry is not an object")
                pool[_token(alt.get("token"), "top_logprobs[].token")] = self._logprob(alt.get("logprob"))
            if entry.get("logprob") is not None:
                pool.setdefault(first, self._logprob(entry["logprob"]))
        else:
            tops = lp.get("top_logprobs")
            if tops is None:
                raise self._no_logprobs()
            if not isinstance(tops, list) or not tops or not isinstance(tops[0], dict):
                raise _Malformed("logprobs.top_logprobs is not a non-empty list of objects")
            pool.update({_token(t, "top_logprobs key"): self._logprob(v) for t, v in tops[0].items()})
            tokens, tlps = lp.get("tokens"), lp.get("token_logprobs")
            if tokens is not None:
                if not isinstance(tokens, list) or not tokens:
                    raise _Malformed("logprobs.tokens is not a non-empty list")
                first = _token(tokens[0], "logprobs.tokens[0]")
                if tlps is not None:
                    if not isinstance(tlps, list) or not tlps:
                        raise _Malformed("logprobs.token_logprobs is not a non-empty list")
                    if tlps[0] is not None:
                        pool.setdefault(first, self._logprob(tlps[0]))
        if not pool:
            raise _Malformed("logprobs without any token log-probability")
        return first, pool

    def _logprob(self, value: Any) -> float:
        """A log-probability from a reply: a number, finite or -inf (scored as ``logprob_floor``)."""
        if isinstance(value, bool) or not isinstance(value, (int, float)) or math.isnan(value) or value > 1e-6:
            raise _Malformed(f"invalid log-probability {str(value)[:20]!r}")
        return self.logprob_floor if value == -math.inf else float(value)

    def _loglikelihood_one(self, r: Request) -> Response:
        lps, greedy, counts = [], [], []
        ctx = r.context.rstrip() if r.context else ""
        boundary = len(ctx)  # trailing spaces of the context belong to the continuation (lm-eval)
        for cont in r.continuations:
            prompt = r.context + cont
            payload = {"model": self.api_model, "prompt": prompt, self.max_tokens_field: 1, "temperature": 0.0,
                       "logprobs": 1, "echo": True}
            lp, n, g = self._post(payload, r.key, lambda data: self._continuation(data, prompt, boundary, r.key, cont))
            lps.append(lp)
            counts.append(n)
            greedy.append(g)
        return Response(key=r.key, logprobs=tuple(lps), greedy=tuple(greedy), n_tokens=tuple(counts))

    def _continuation(self, data: dict[str, Any], prompt: str, boundary: int, key: str,
                      cont: str) -> tuple[float, int, bool]:
        """(log-probability, token count, greedy) of the continuation from an echo reply."""
        lp = self._choice_text(data)[0].get("logprobs")
        no_echo = _NoLogprobs(
            "reply without prompt log-probabilities (echo)",
            f"{self.safe_base_url} returned no prompt log-probabilities (echo) for model {self.api_model!r} (two "
            "attempts in a row): loglikelihood scoring (--variant lm-eval) needs a completions server that echoes "
            "them (vllm serve); use --variant paper or --variant generate")
        if lp is None:
            raise no_echo
        if not isinstance(lp, dict):
            raise _Malformed("logprobs is not an object")
        tokens, offsets, tlps = lp.get("tokens"), lp.get("text_offset"), lp.get("token_logprobs")
        tops = lp.get("top_logprobs") or []
        if tokens is None or offsets is None or tlps is None:
            raise no_echo
        if not all(isinstance(x, list) for x in (tokens, offsets, tlps, tops)) or not (
                len(tokens) == len(offsets) == len(tlps)):
            raise _Malformed("echo logprobs lists of different lengths")
        if any(isinstance(o, bool) or not isinstance(o, int) for o in offsets):
            raise _Malformed("echo logprobs text_offset holds a non-integer")
        if not tokens or offsets[0] != 0:
            raise no_echo  # only the generated token: the prompt was not echoed
        idx = [i for i in range(len(tokens)) if offsets[i] < len(prompt)
               and (i + 1 >= len(offsets) or offsets[i + 1] > boundary)]
        if not idx or any(tlps[i] is None for i in idx):
            raise APIError(f"request {key}: cannot read the continuation {cont!r} from the echoed tokens")
        vals = {i: self._logprob(tlps[i]) for i in idx}
        # greedy: every continuation token is its position's top-1 alternative (False if unknown)
        greedy = True
        for i in idx:
            top = tops[i] if i < len(tops) else None
            if top is not None and not isinstance(top, dict):
                raise _Malformed("echo logprobs top_logprobs holds a non-object")
            best = [self._logprob(v) for v in top.values()] if top else []
            greedy = greedy and bool(best) and vals[i] >= max(best) - 1e-6
        return float(sum(vals.values())), len(idx), greedy

    # ------------------------------------------------------------------ transport
    def _http(self) -> Any:
        """The shared httpx.Client (created on first use): keep-alive pool sized to the
        concurrency, no redirects, and no proxy or environment settings for a loopback server."""
        httpx = self._httpx
        with self._client_lock:
            if self._abort.is_set():
                raise _Interrupted()
            if self._client is None:
                self._client = httpx.Client(
                    follow_redirects=False, trust_env=not self.loopback, timeout=httpx.Timeout(self.timeout),
                    limits=httpx.Limits(max_connections=self.concurrency, max_keepalive_connections=self.concurrency))
            return self._client

    def _post(self, payload: dict[str, Any], what: str, parse: Callable[[dict[str, Any]], Any]) -> Any:
        """POST with retries until ``parse`` accepts a reply; returns what it returns. Invalid
        replies are retried like a 5xx; every wait is capped by ``max_backoff`` and none goes past
        ``request_deadline``. Errors never show the key."""
        url = self.base_url + ENDPOINTS[self.endpoint]
        safe_url = sanitise_url(url)
        body = json.dumps(payload, ensure_ascii=False).encode("utf-8")
        headers = {"Content-Type": "application/json", "Accept": "application/json"}
        if self._key:
            headers["Authorization"] = "Bearer " + self._key.reveal()
        deadline = time.monotonic() + self.request_deadline
        attempt = 0
        no_logprobs_in_a_row = 0
        while True:
            if self._abort.is_set():
                raise _Interrupted()
            try:
                budget = min(self.timeout, deadline - time.monotonic())
                result = parse(self._post_once(url, body, headers, budget))
            except _NoLogprobs as exc:
                no_logprobs_in_a_row += 1
                if no_logprobs_in_a_row >= 2:
                    raise ConfigError(self._redact(exc.advice)) from None
                failure: _Transient = exc
            except _Transient as exc:
                no_logprobs_in_a_row = 0
                failure = exc
            else:
                with self._rng_lock:
                    self.http_calls += 1
                return result
            reason = self._clip(str(failure))
            if attempt >= self.max_retries:
                raise APIError(self._redact(f"POST {safe_url} failed after {attempt + 1} attempts "
                                            f"(request {what}): {reason}")) from None
            with self._rng_lock:
                delay = backoff_delay(attempt, self.backoff, self.max_backoff, failure.retry_after, self._rng)
            if time.monotonic() + delay >= deadline:
                raise APIError(self._redact(
                    f"POST {safe_url} failed after {attempt + 1} attempts (request {what}): {reason}; the request "
                    f"deadline ({self.request_deadline:g} s, --model-args request_deadline=) leaves no time "
                    "for another")) from None
            log.warning("%s", self._redact(f"{safe_url}: {reason}; retry {attempt + 1}/{self.max_retries} "
                                           f"in {delay:.2f} s"))
            if self._abort.wait(delay):  # Ctrl-C or close(): wake at once
                raise _Interrupted()
            attempt += 1

    def _clip(self, text: str, limit: int = MAX_DETAIL) -> str:
        """Redacted, on one line, at most ``limit`` characters (what a server says is only a hint)."""
        text = self._redact(" ".join(text.split()))
        return text if len(text) <= limit else text[:limit] + "…"

    def _post_once(self, url: str, body: bytes, headers: dict[str, str], budget: float) -> dict[str, Any]:
        """One attempt, complete within ``budget`` seconds (connect, send and the whole body:
        httpx's own timeout applies per read, so the body is streamed against the clock)."""
        httpx = self._httpx
        if budget <= 0:
            raise _Transient("no time left before the request deadline")
        end = time.monotonic() + budget
        try:
            with self._http().stream("POST", url, content=body, headers=headers,
                                     timeout=httpx.Timeout(budget)) as resp:
                if resp.status_code != 200:
                    self._fail_status(url, resp.status_code, resp.headers, self._read(resp, end, budget, 4096))
                raw = self._read(resp, end, budget)
        except httpx.TimeoutException as e:
            raise _Transient(f"timed out after {budget:g} s ({type(e).__name__})") from None
        except (httpx.TransportError, httpx.DecodingError, httpx.StreamError) as e:
            raise _Transient(f"connection error: {type(e).__name__}: {e}") from None
        except RuntimeError as e:  # the client was closed under this request (close(), Ctrl-C)
            if self._abort.is_set():
                raise _Interrupted() from None
            raise
        try:
            data = json.loads(raw.decode("utf-8"))
        except (UnicodeDecodeError, ValueError):
            raise _Malformed(f"malformed JSON in the response ({len(raw)} bytes)") from None
        if not isinstance(data, dict):
            raise _Malformed("the response is not a JSON object")
        return data

    def _read(self, resp: Any, end: float, budget: float, limit: int | None = None) -> bytes:
        """The body (its first ``limit`` bytes), checking the whole-attempt clock after each chunk."""
        chunks: list[bytes] = []
        size = 0
        for chunk in resp.iter_bytes():
            chunks.append(chunk)
            size += len(chunk)
            if time.monotonic() > end:
                raise _Transient(f"timed out: the response was not complete within {budget:g} s")
            if self._abort.is_set():
                raise _Interrupted()
            if limit is not None and size >= limit:
                break
            if size > MAX_BODY:
                raise _Transient(f"the response exceeds {MAX_BODY // 2**20} MiB")
        return b"".join(chunks)

    def _fail_status(self, url: str, code: int, headers: Any, raw: bytes) -> None:
        """Raises for a non-200 reply: _Transient (retried) or APIError/ConfigError (at once)."""
        detail = _error_detail(raw)
        detail = f": {self._clip(detail)}" if detail else ""
        if code in RETRY_STATUS or code >= 500:
            raise _Transient(f"HTTP {code}{detail}", parse_retry_after(headers))
        msg = f"POST {sanitise_url(url)}: HTTP {code}{detail}"
        if 300 <= code < 400:
            msg += " (redirects are not followed, the key would go with them: set base_url to the final URL)"
        elif code in (401, 403):
            msg += " (check the API key in $OPENAI_API_KEY / api_key_env / api_key_file)"
        elif code in (400, 422) and "logprob" in detail.lower():
            raise ConfigError(self._redact(msg) + "; the server refused the log-probability request: lower "
                              "--model-args top_logprobs= (legacy completions allow 5), or, if it offers none, "
                              "run --variant generate")
        elif 200 <= code < 300:
            raise _Malformed(f"HTTP {code} instead of 200")
        raise APIError(self._redact(msg))


def _token(value: Any, where: str) -> str:
    if not isinstance(value, str):
        raise _Malformed(f"{where} is not a string")
    return value


def _error_detail(raw: bytes) -> str:
    """The server's error message (``error.message`` of a JSON body, else the body); the caller
    redacts and cuts it."""
    text = raw.decode("utf-8", "replace")
    try:
        err = json.loads(text).get("error")
        text = err.get("message", "") if isinstance(err, dict) else str(err or text)
    except (ValueError, AttributeError):
        pass
    return " ".join(str(text).split())


def _float(args: dict[str, str], key: str, default: Any, positive: bool = False) -> Any:
    if key not in args:
        return default
    try:
        value = float(args[key])
    except ValueError:
        raise ConfigError(f"--model-args {key}= expects a number, got {args[key][:40]!r}") from None
    if math.isnan(value) or (positive and not value > 0):
        raise ConfigError(f"--model-args {key}= expects a {'positive ' if positive else ''}number, "
                          f"got {args[key][:40]!r}")
    return value


def _bool(args: dict[str, str], key: str, default: bool) -> bool:
    if key not in args:
        return default
    value = args[key].strip().lower()
    if value in ("1", "true", "yes", "on"):
        return True
    if value in ("0", "false", "no", "off"):
        return False
    raise ConfigError(f"--model-args {key}= expects true or false, got {args[key][:40]!r}")


def _read_key(args: dict[str, str]) -> str:
    if "api_key_file" in args:
        p = Path(args["api_key_file"]).expanduser()
        try:
            return p.read_text(encoding="utf-8").strip()
        except OSError as e:
            raise ConfigError(f"cannot read api_key_file {str(p)!r}: {e.strerror}") from None
    env = args.get("api_key_env", "OPENAI_API_KEY")
    if not _ENV_NAME.match(env):  # perhaps the key itself, pasted in the wrong place: never echoed
        raise ConfigError("--model-args api_key_env= must name an environment variable (letters, digits, _) "
                          "that holds the key, not the key itself")
    return os.environ.get(env, "").strip()


def _system_prompt(args: dict[str, str], default: str | None) -> str | None:
    if "system_prompt_file" in args:
        p = Path(args["system_prompt_file"]).expanduser()
        try:
            return p.read_text(encoding="utf-8").strip() or None
        except OSError as e:
            raise ConfigError(f"cannot read system_prompt_file {str(p)!r}: {e.strerror}") from None
    if "system_prompt" in args:
        v = args["system_prompt"]
        return None if v.strip().lower() in ("", "none") else v
    return default


def _resolve(model: Any) -> tuple[str | None, str, str | None, str]:
    """(preset name or None, API model name, default system prompt, default endpoint) for a
    preset name, a ResolvedModel, or a plain API model name."""
    from ..baselines import BASELINES

    name = model if isinstance(model, str) else getattr(model, "name", None)
    if name in BASELINES:
        b = BASELINES[name]
        return name, b.source, b.system_prompt, "chat"
    if isinstance(model, str):
        return None, model, None, "chat"
    path = getattr(model, "path", None) or name
    return (name if name != path else None), str(path), None, "chat"
