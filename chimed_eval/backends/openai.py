"""OpenAI-compatible HTTP API backend (OpenAI, ``vllm serve``, any server that speaks the protocol).

Standard library only (urllib + a thread pool), so it needs no extra install.

Options (``--model-args k=v,...``):

* ``base_url``: default ``$OPENAI_BASE_URL`` or ``https://api.openai.com/v1``; it must not carry
  credentials (``user:pass@``), since model args are recorded in results.json.
* ``endpoint``: ``chat`` (``/chat/completions``, default) or ``completions``.
* ``api_model``: the model name sent to the server (default: the preset's API name or hub id, else
  ``--model`` as given; ``vllm serve`` names a model by its path unless ``--served-model-name``).
* ``api_key_env`` (default ``OPENAI_API_KEY``) or ``api_key_file``: where the key is read. A key is
  never accepted on the command line, never written to results, samples, the cache, logs or error
  messages (every message is redacted). No key: no ``Authorization`` header (local servers).
* ``concurrency`` (8), ``timeout`` (seconds per HTTP request, 120), ``max_retries`` (8),
  ``backoff`` (first back-off ceiling, 1 s), ``max_backoff`` (60 s): transport, not results.
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
  rule applies). This approximates the HF backend's exact next-token probability; a server that
  returns no logprobs is a ConfigError telling the user to run ``--variant generate``: the
  backend never silently changes the scoring, so ``settings.scoring`` in results.json is exact.
* ``loglikelihood``: ``completions`` with ``echo: true, logprobs: 1, max_tokens: 1`` (the prompt's
  token log-probabilities, as ``vllm serve`` returns them); the continuation's tokens are those
  whose text starts at or after the end of the context (a token that straddles the boundary is
  counted with the continuation). A server without echo logprobs (or the chat endpoint) is a
  ConfigError.
* The ``chat`` prompt variant of generation tasks renders its turns with :func:`messages_renderer`;
  the chat endpoint then sends them as messages (the server applies the model's template).

Reliability: every HTTP request is retried on 408/409/425/429/5xx, connection errors (refused,
reset, dropped without a response), timeouts, and malformed or incomplete JSON, up to
``max_retries`` times with exponential back-off and full jitter
(``uniform(0, min(max_backoff, backoff * 2**attempt))``); a ``Retry-After`` (or ``retry-after-ms``)
header sets the wait instead (plus up to 10% jitter). Other 4xx fail at once. When retries run
out the run stops with an :class:`APIError`; items already written stay written, and the response
cache (:mod:`chimed_eval.cache`) keeps every response that did arrive, so the same command resumes
where it stopped without asking for them again.
"""

from __future__ import annotations

import http.client
import ipaddress
import json
import logging
import math
import os
import random
import threading
import time
import urllib.error
import urllib.parse
import urllib.request
from concurrent.futures import FIRST_EXCEPTION, ThreadPoolExecutor, wait
from email.utils import parsedate_to_datetime
from pathlib import Path
from typing import Any, Callable, Sequence

from ..errors import ChimedEvalError, ConfigError
from ..types import ModelInfo, Request, Response, sha256_text
from .base import Backend

log = logging.getLogger(__name__)

DEFAULT_BASE_URL = "https://api.openai.com/v1"
ENDPOINTS = {"chat": "/chat/completions", "completions": "/completions"}
RETRY_STATUS = frozenset({408, 409, 425, 429})
MESSAGES_MARKER = "<<chimed-eval:openai-messages>>"
TRANSPORT_ARGS = ("concurrency", "timeout", "max_retries", "backoff", "max_backoff", "api_key_env", "api_key_file")
RESULT_ARGS = ("base_url", "endpoint", "api_model", "system_prompt", "system_prompt_file", "temperature",
               "top_logprobs", "logprob_floor", "max_tokens_field")
IGNORED_ARGS = ("chat_format", "revision")  # model metadata: meaningless for a served model


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


class _NoRedirect(urllib.request.HTTPRedirectHandler):
    """Redirects are not followed: urllib would send the Authorization header to the new host."""

    def redirect_request(self, req, fp, code, msg, headers, newurl):  # noqa: D102
        return None


class _Transient(Exception):
    """A failure worth retrying; ``retry_after`` is the server's requested wait in seconds."""

    def __init__(self, message: str, retry_after: float | None = None) -> None:
        super().__init__(message)
        self.retry_after = retry_after


def messages_renderer(messages: list[dict[str, str]]) -> str:
    """Chat turns as a marked JSON string; the chat endpoint sends them as ``messages``."""
    return MESSAGES_MARKER + json.dumps(messages, ensure_ascii=False)


def sanitise_url(url: str) -> str:
    """The URL without user info, query or fragment (what may appear in records and messages)."""
    p = urllib.parse.urlsplit(url)
    host = p.hostname or ""
    if ":" in host:
        host = f"[{host}]"
    netloc = host + (f":{p.port}" if p.port else "")
    return urllib.parse.urlunsplit((p.scheme, netloc, p.path.rstrip("/"), "", ""))


def parse_retry_after(headers: Any) -> float | None:
    """Seconds to wait from ``retry-after-ms`` or ``Retry-After`` (seconds or an HTTP date)."""
    if headers is None:
        return None
    ms = headers.get("retry-after-ms")
    if ms:
        try:
            return max(0.0, float(ms) / 1000.0)
        except ValueError:
            pass
    value = headers.get("retry-after")
    if not value:
        return None
    try:
        return max(0.0, float(value))
    except ValueError:
        try:
            return max(0.0, parsedate_to_datetime(value).timestamp() - time.time())
        except (TypeError, ValueError, IndexError, OverflowError):
            return None


def backoff_delay(attempt: int, base: float, cap: float, retry_after: float | None,
                  rng: random.Random | None = None) -> float:
    """Full-jitter exponential back-off, or the server's Retry-After plus up to 10% jitter."""
    r = rng or random
    if retry_after is not None:
        return retry_after * (1.0 + 0.1 * r.random())
    return r.uniform(0.0, min(cap, base * (2 ** attempt)))


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


class OpenAIBackend(Backend):
    name = "openai"

    def __init__(self, model: Any, device: str | None = None, dtype: str | None = None, batch_size: int = 8,
                 seed: int = 0, model_args: dict[str, str] | None = None, **_: object) -> None:
        args = dict(model_args or {})
        if "api_key" in args:
            raise ConfigError("--model-args api_key= is refused: model args are recorded in results.json. "
                              "Put the key in $OPENAI_API_KEY (or api_key_env=NAME) or a file (api_key_file=PATH)")
        unknown = sorted(set(args) - set(TRANSPORT_ARGS) - set(RESULT_ARGS) - set(IGNORED_ARGS))
        if unknown:
            raise ConfigError(f"openai backend: unknown --model-args {unknown}; known: "
                              f"{sorted(TRANSPORT_ARGS + RESULT_ARGS)}")
        self.preset_name, api_name, default_system, default_endpoint = _resolve(model)
        self.api_model = args.get("api_model") or api_name
        self.display_name = self.preset_name or self.api_model

        base_url = args.get("base_url") or os.environ.get("OPENAI_BASE_URL") or DEFAULT_BASE_URL
        parts = urllib.parse.urlsplit(base_url)
        if parts.scheme not in ("http", "https") or not parts.hostname:
            raise ConfigError(f"base_url {sanitise_url(base_url)!r} is not an http(s) URL")
        if parts.username or parts.password or parts.query or parts.fragment:
            raise ConfigError("base_url must be a plain URL without credentials, query or fragment (model args are "
                              "recorded in results.json); put the key in api_key_env or api_key_file")
        self.base_url = base_url.rstrip("/")
        self.safe_base_url = sanitise_url(base_url)
        self.endpoint = args.get("endpoint", default_endpoint)
        if self.endpoint not in ENDPOINTS:
            raise ConfigError(f"endpoint must be one of {sorted(ENDPOINTS)}, not {self.endpoint!r}")

        self._key = _Secret(_read_key(args))
        if not self._key and parts.hostname == "api.openai.com":
            raise ConfigError(f"no API key: set ${args.get('api_key_env', 'OPENAI_API_KEY')} "
                              "or pass --model-args api_key_file=PATH")

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
        self.timeout = _float(args, "timeout", 120.0)
        self.max_retries = max(0, int(_float(args, "max_retries", 8)))
        self.backoff = _float(args, "backoff", 1.0)
        self.max_backoff = _float(args, "max_backoff", 60.0)
        self.seed = seed

        handlers: list[Any] = [_NoRedirect()]
        if _is_loopback(parts.hostname):
            handlers.append(urllib.request.ProxyHandler({}))  # a local server: never through a proxy
        self._opener = urllib.request.build_opener(*handlers)
        self._pool = ThreadPoolExecutor(max_workers=self.concurrency, thread_name_prefix="openai")
        self._rng = random.Random()
        self._rng_lock = threading.Lock()
        #: Called with (request, response) as each response arrives (from worker threads): the
        #: response cache stores it at once, so a batch that fails half-way loses nothing.
        self.on_response: Callable[[Request, Response], None] | None = None
        self.http_calls = 0  # successful HTTP responses, for tests and logs

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
        self._pool.shutdown(wait=True, cancel_futures=True)

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
        """Run ``fn`` over the requests on the pool, in order; the first failure cancels the rest."""

        def task(r: Request) -> Response:
            resp = fn(r)
            if self.on_response is not None:
                self.on_response(r, resp)
            return resp

        futures = [self._pool.submit(task, r) for r in requests]
        done, pending = wait(futures, return_when=FIRST_EXCEPTION)
        for f in futures:
            if f.done() and f.exception() is not None:
                for p in pending:
                    p.cancel()
                wait(pending)
                raise f.exception()  # type: ignore[misc]
        return [f.result() for f in futures]

    # ------------------------------------------------------------------ payloads
    def _base_payload(self, r: Request, max_tokens: int) -> dict[str, Any]:
        payload: dict[str, Any] = {"model": self.api_model, self.max_tokens_field: max_tokens}
        if self.endpoint == "chat":
            payload["messages"] = self._messages(r.context)
        else:
            if r.context.startswith(MESSAGES_MARKER):
                raise ConfigError("the chat prompt variant needs --model-args endpoint=chat")
            payload["prompt"] = r.context
        return payload

    def _messages(self, context: str) -> list[dict[str, str]]:
        if context.startswith(MESSAGES_MARKER):
            msgs = list(json.loads(context[len(MESSAGES_MARKER):]))
        else:
            msgs = [{"role": "user", "content": context}]
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
            if g.stop:
                payload["stop"] = list(g.stop[:4])
            if g.seed is not None:
                payload["seed"] = int(g.seed)
        data = self._post(payload, r.key)
        choice = _first_choice(data)
        if self.endpoint == "chat":
            text = (choice.get("message") or {}).get("content") or ""
        else:
            text = choice.get("text") or ""
        for s in (g.stop if g else ()):
            if s and s in text:
                text = text[: text.index(s)]
        usage = data.get("usage") or {}
        n = usage.get("completion_tokens")
        return Response(key=r.key, text=text, n_tokens=(int(n),) if isinstance(n, int) else None)

    def _next_token_one(self, r: Request) -> Response:
        payload = self._base_payload(r, 1)
        payload["temperature"] = 0.0
        if self.endpoint == "chat":
            payload.update(logprobs=True, top_logprobs=self.top_logprobs)
        else:
            payload["logprobs"] = self.top_logprobs
        data = self._post(payload, r.key)
        first, pool = self._first_token_logprobs(_first_choice(data))
        lps, greedy = [], []
        for cand in r.continuations:
            target = cand.strip()
            hits = [lp for tok, lp in pool.items() if tok.strip() == target]
            lps.append(_logsumexp(hits) if hits else self.logprob_floor)
            greedy.append(first is not None and first.strip() == target)
        return Response(key=r.key, logprobs=tuple(lps), greedy=tuple(greedy), n_tokens=tuple(1 for _ in lps))

    def _first_token_logprobs(self, choice: dict[str, Any]) -> tuple[str | None, dict[str, float]]:
        """(the generated first token, {token: logprob} of its top alternatives)."""
        lp = choice.get("logprobs")
        pool: dict[str, float] = {}
        first = None
        if isinstance(lp, dict) and self.endpoint == "chat" and lp.get("content"):
            entry = lp["content"][0]
            first = entry.get("token")
            for alt in entry.get("top_logprobs") or []:
                pool[alt["token"]] = float(alt["logprob"])
            if first is not None and entry.get("logprob") is not None:
                pool.setdefault(first, float(entry["logprob"]))
        elif isinstance(lp, dict) and self.endpoint == "completions" and lp.get("top_logprobs"):
            tops = lp["top_logprobs"][0] or {}
            pool.update({t: float(v) for t, v in tops.items()})
            if lp.get("tokens"):
                first = lp["tokens"][0]
                if lp.get("token_logprobs") and lp["token_logprobs"][0] is not None:
                    pool.setdefault(first, float(lp["token_logprobs"][0]))
        if not pool:
            raise ConfigError(f"{self.safe_base_url} returned no token log-probabilities for model "
                              f"{self.api_model!r}: next-token scoring (--variant paper / next-token) needs "
                              "logprobs; run --variant generate instead")
        return first, pool

    def _loglikelihood_one(self, r: Request) -> Response:
        lps, greedy, counts = [], [], []
        ctx = r.context.rstrip() if r.context else ""
        boundary = len(ctx)  # trailing spaces of the context belong to the continuation (lm-eval)
        for cont in r.continuations:
            prompt = r.context + cont
            payload = {"model": self.api_model, "prompt": prompt, self.max_tokens_field: 1, "temperature": 0.0,
                       "logprobs": 1, "echo": True}
            lp = _first_choice(self._post(payload, r.key)).get("logprobs") or {}
            tokens, offsets, tlps = lp.get("tokens"), lp.get("text_offset"), lp.get("token_logprobs")
            tops = lp.get("top_logprobs") or []
            if not tokens or not offsets or tlps is None or offsets[0] != 0 or len(offsets) != len(tokens):
                raise ConfigError(f"{self.safe_base_url} returned no prompt log-probabilities (echo) for model "
                                  f"{self.api_model!r}: loglikelihood scoring (--variant lm-eval) needs a completions "
                                  "server that echoes them (vllm serve); use --variant paper or --variant generate")
            idx = [i for i in range(len(tokens)) if offsets[i] < len(prompt)
                   and (i + 1 >= len(offsets) or offsets[i + 1] > boundary)]
            if not idx or any(tlps[i] is None for i in idx):
                raise APIError(f"request {r.key}: cannot read the continuation {cont!r} from the echoed tokens")
            lps.append(float(sum(tlps[i] for i in idx)))
            counts.append(len(idx))
            # greedy: every continuation token is its position's top-1 alternative (False if unknown)
            greedy.append(all(i < len(tops) and tops[i] and tlps[i] >= max(tops[i].values()) - 1e-6 for i in idx))
        return Response(key=r.key, logprobs=tuple(lps), greedy=tuple(greedy), n_tokens=tuple(counts))

    # ------------------------------------------------------------------ transport
    def _redact(self, text: str) -> str:
        key = self._key.reveal()
        return text.replace(key, "<redacted>") if key else text

    def _post(self, payload: dict[str, Any], what: str) -> dict[str, Any]:
        """POST with retries; returns the decoded JSON object. Errors never show the key."""
        url = self.base_url + ENDPOINTS[self.endpoint]
        safe_url = sanitise_url(url)
        body = json.dumps(payload, ensure_ascii=False).encode("utf-8")
        headers = {"Content-Type": "application/json", "Accept": "application/json"}
        if self._key:
            headers["Authorization"] = "Bearer " + self._key.reveal()
        attempt = 0
        while True:
            try:
                return self._post_once(url, body, headers)
            except _Transient as exc:
                if attempt >= self.max_retries:
                    raise APIError(self._redact(f"POST {safe_url} failed after {attempt + 1} attempts "
                                                f"(request {what}): {exc}")) from None
                with self._rng_lock:
                    delay = backoff_delay(attempt, self.backoff, self.max_backoff, exc.retry_after, self._rng)
                log.warning("%s", self._redact(f"{safe_url}: {exc}; retry {attempt + 1}/{self.max_retries} "
                                               f"in {delay:.2f} s"))
                time.sleep(delay)
                attempt += 1

    def _post_once(self, url: str, body: bytes, headers: dict[str, str]) -> dict[str, Any]:
        req = urllib.request.Request(url, data=body, headers=headers, method="POST")
        try:
            with self._opener.open(req, timeout=self.timeout) as resp:
                raw = resp.read()
        except urllib.error.HTTPError as e:
            detail = _error_detail(e)
            if e.code in RETRY_STATUS or e.code >= 500:
                raise _Transient(f"HTTP {e.code}{detail}", parse_retry_after(e.headers)) from None
            msg = f"POST {sanitise_url(url)}: HTTP {e.code}{detail}"
            if 300 <= e.code < 400:
                msg += " (redirects are not followed, the key would go with them: set base_url to the final URL)"
            elif e.code in (401, 403):
                msg += " (check the API key in $OPENAI_API_KEY / api_key_env / api_key_file)"
            elif e.code in (400, 422) and "logprob" in detail.lower():
                raise ConfigError(self._redact(msg + "; this server does not offer log-probabilities: "
                                               "run --variant generate")) from None
            raise APIError(self._redact(msg)) from None
        except urllib.error.URLError as e:
            raise _Transient(f"connection error: {type(e.reason).__name__}: {e.reason}") from None
        except (http.client.HTTPException, OSError) as e:  # dropped, reset, timed out, incomplete
            raise _Transient(f"connection error: {type(e).__name__}: {e}") from None
        try:
            data = json.loads(raw.decode("utf-8"))
        except (UnicodeDecodeError, ValueError):
            raise _Transient(f"malformed JSON in the response ({len(raw)} bytes)") from None
        if not isinstance(data, dict) or not isinstance(data.get("choices"), list) or not data["choices"]:
            raise _Transient("response without choices")
        with self._rng_lock:
            self.http_calls += 1
        return data


def _first_choice(data: dict[str, Any]) -> dict[str, Any]:
    c = data["choices"][0]
    return c if isinstance(c, dict) else {}


def _error_detail(e: urllib.error.HTTPError) -> str:
    try:
        raw = e.read(2000).decode("utf-8", "replace")
    except Exception:  # noqa: BLE001 - the body is only a hint
        return ""
    try:
        err = json.loads(raw).get("error")
        raw = err.get("message", "") if isinstance(err, dict) else str(err or raw)
    except (ValueError, AttributeError):
        pass
    raw = " ".join(raw.split())[:300]
    return f": {raw}" if raw else ""


def _float(args: dict[str, str], key: str, default: Any) -> Any:
    if key not in args:
        return default
    try:
        return float(args[key])
    except ValueError:
        raise ConfigError(f"--model-args {key}= expects a number, got {args[key]!r}") from None


def _read_key(args: dict[str, str]) -> str:
    if "api_key_file" in args:
        p = Path(args["api_key_file"]).expanduser()
        try:
            return p.read_text(encoding="utf-8").strip()
        except OSError as e:
            raise ConfigError(f"cannot read api_key_file {str(p)!r}: {e.strerror}") from None
    return os.environ.get(args.get("api_key_env", "OPENAI_API_KEY"), "").strip()


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
