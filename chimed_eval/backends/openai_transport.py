"""HTTP transport of the openai backend: one httpx client, per-attempt and per-request deadlines,
retries with back-off (``Retry-After`` honoured, every wait capped), and Ctrl-C cancellation.

httpx is imported by :func:`import_httpx` when a backend is built, never when this module is
imported, so ``chimed-eval --help`` does not load it. What a reply means is not decided here: the
caller's ``parse`` validates it and raises :class:`Malformed` (retried like a 5xx) or
:class:`NoLogprobs` (retried once, then a ConfigError) so an invalid reply is never returned.
"""

from __future__ import annotations

import json
import logging
import math
import random
import threading
import time
from dataclasses import dataclass
from email.utils import parsedate_to_datetime
from typing import Any, Callable, Iterable, Sequence, TypeVar

from chimed_eval.core.errors import ChimedEvalError, ConfigError
from chimed_eval.backends.openai_secrets import Redactor, Secret, sanitise_url

#: the logger of :mod:`chimed_eval.backends.openai`, whose transport this is (one name to configure)
log = logging.getLogger("chimed_eval.backends.openai")

RETRY_STATUS = frozenset({408, 409, 425, 429})
INSTALL_HINT = "pip install 'chimed-eval[api]'"
#: a larger reply is refused (retried): no answer this backend asks for comes near it
MAX_BODY = 64 * 2**20

T = TypeVar("T")
R = TypeVar("R")
#: reads a streamed reply: (its lines, a check called with each line's size) -> the reply dict
StreamReader = Callable[[Iterable[str], Callable[[int], None]], dict[str, Any]]


class APIError(ChimedEvalError):
    """The server failed for good (retries exhausted or a non-retryable error). Redacted."""


class Transient(Exception):
    """A failure worth retrying; ``retry_after`` is the server's requested wait in seconds."""

    def __init__(self, message: str, retry_after: float | None = None) -> None:
        super().__init__(message)
        self.retry_after = retry_after


class Malformed(Transient):
    """A 200 reply whose shape is wrong (no choice, no text, broken logprobs): retried, never used."""


class NoLogprobs(Transient):
    """A well-formed reply without the log-probabilities asked for. Once is a glitch (retried);
    two attempts in a row mean the server lacks them, and ``advice`` becomes a ConfigError."""

    def __init__(self, message: str, advice: str) -> None:
        super().__init__(message)
        self.advice = advice


class Interrupted(Exception):
    """The backend was interrupted (Ctrl-C) or closed while this request waited or ran."""


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


def import_httpx() -> Any:
    """httpx, imported only when an API backend is built (the CLI never loads it otherwise)."""
    try:
        import httpx
    except ImportError:
        raise ConfigError(f"the openai backend needs httpx: {INSTALL_HINT}") from None
    return httpx


@dataclass(frozen=True)
class RetryPolicy:
    """How long one attempt and one request may take, and how failures are retried (seconds)."""

    timeout: float
    request_deadline: float
    max_retries: int
    backoff: float
    max_backoff: float


class Transport:
    """POSTs JSON to one URL over a shared keep-alive client, retrying until a reply parses.

    ``abort`` is set by the first Ctrl-C or by :meth:`close`: every back-off wait wakes at once
    and nothing new is sent. Errors never show the key: every message passes ``redact``."""

    def __init__(self, url: str, policy: RetryPolicy, concurrency: int, loopback: bool, key: Secret,
                 redact: Redactor) -> None:
        self.url = url
        self.safe_url = sanitise_url(url)
        self.policy = policy
        self.concurrency = concurrency
        self.loopback = loopback
        self._key = key
        self._redact = redact
        self._httpx = import_httpx()
        self._client: Any = None
        self._client_lock = threading.Lock()
        self.abort = threading.Event()
        self._rng = random.Random()
        self._rng_lock = threading.Lock()
        self.http_calls = 0  # valid HTTP responses, for tests and logs

    def close(self) -> None:
        """Stops every wait and request not yet sent, and closes the connection pool."""
        self.abort.set()
        with self._client_lock:
            client, self._client = self._client, None
        if client is not None:
            client.close()

    def _http(self) -> Any:
        """The shared httpx.Client (created on first use): keep-alive pool sized to the
        concurrency, no redirects, and no proxy or environment settings for a loopback server."""
        httpx = self._httpx
        with self._client_lock:
            if self.abort.is_set():
                raise Interrupted()
            if self._client is None:
                self._client = httpx.Client(
                    follow_redirects=False, trust_env=not self.loopback, timeout=httpx.Timeout(self.policy.timeout),
                    limits=httpx.Limits(max_connections=self.concurrency, max_keepalive_connections=self.concurrency))
            return self._client

    def post(self, payload: dict[str, Any], what: str, parse: Callable[[dict[str, Any]], T],
             stream: StreamReader | None = None) -> T:
        """POST with retries until ``parse`` accepts a reply; returns what it returns. Invalid
        replies are retried like a 5xx; every wait is capped by ``max_backoff`` and none goes past
        ``request_deadline``. Errors never show the key. ``stream``: the payload asks for a
        streamed reply, and ``stream(lines, tick)`` reads its server-sent events into a reply
        dict (:func:`chimed_eval.backends.openai_stream.read_events`); a 200 that is not an event
        stream is read as a plain JSON reply (a server that ignores ``stream``)."""
        p, safe_url = self.policy, self.safe_url
        body = json.dumps(payload, ensure_ascii=False).encode("utf-8")
        headers = {"Content-Type": "application/json",
                   "Accept": "text/event-stream" if stream is not None else "application/json"}
        if self._key:
            headers["Authorization"] = "Bearer " + self._key.reveal()
        deadline = time.monotonic() + p.request_deadline
        attempt = 0
        no_logprobs_in_a_row = 0
        while True:
            if self.abort.is_set():
                raise Interrupted()
            try:
                budget = min(p.timeout, deadline - time.monotonic())
                result = parse(self._post_once(body, headers, budget, stream))
            except NoLogprobs as exc:
                no_logprobs_in_a_row += 1
                if no_logprobs_in_a_row >= 2:
                    raise ConfigError(self._redact(exc.advice)) from None
                failure: Transient = exc
            except Transient as exc:
                no_logprobs_in_a_row = 0
                failure = exc
            else:
                with self._rng_lock:
                    self.http_calls += 1
                return result
            reason = self._redact.clip(str(failure))
            if attempt >= p.max_retries:
                raise APIError(self._redact(f"POST {safe_url} failed after {attempt + 1} attempts "
                                            f"(request {what}): {reason}")) from None
            with self._rng_lock:
                delay = backoff_delay(attempt, p.backoff, p.max_backoff, failure.retry_after, self._rng)
            if time.monotonic() + delay >= deadline:
                raise APIError(self._redact(
                    f"POST {safe_url} failed after {attempt + 1} attempts (request {what}): {reason}; the request "
                    f"deadline ({p.request_deadline:g} s, --model-args request_deadline=) leaves no time "
                    "for another")) from None
            log.warning("%s", self._redact(f"{safe_url}: {reason}; retry {attempt + 1}/{p.max_retries} "
                                           f"in {delay:.2f} s"))
            if self.abort.wait(delay):  # Ctrl-C or close(): wake at once
                raise Interrupted()
            attempt += 1

    def _post_once(self, body: bytes, headers: dict[str, str], budget: float,
                   stream: StreamReader | None = None) -> dict[str, Any]:
        """One attempt, complete within ``budget`` seconds (connect, send and the whole body:
        httpx's own timeout applies per read, so the body is streamed against the clock)."""
        httpx = self._httpx
        if budget <= 0:
            raise Transient("no time left before the request deadline")
        end = time.monotonic() + budget
        try:
            with self._http().stream("POST", self.url, content=body, headers=headers,
                                     timeout=httpx.Timeout(budget)) as resp:
                if resp.status_code != 200:
                    self._fail_status(resp.status_code, resp.headers, self._read(resp, end, budget, 4096))
                if stream is not None and resp.headers.get("content-type", "").startswith("text/event-stream"):
                    return stream(resp.iter_lines(), self._ticker(end, budget))
                raw = self._read(resp, end, budget)
        except (httpx.TransportError, httpx.DecodingError, httpx.StreamError) as e:
            if self.abort.is_set():  # close() or Ctrl-C shut the connection under a read
                raise Interrupted() from None
            if isinstance(e, httpx.TimeoutException):
                raise Transient(f"timed out after {budget:g} s ({type(e).__name__})") from None
            raise Transient(f"connection error: {type(e).__name__}: {e}") from None
        except RuntimeError:  # the client was closed under this request (close(), Ctrl-C)
            if self.abort.is_set():
                raise Interrupted() from None
            raise
        try:
            data = json.loads(raw.decode("utf-8"))
        except (UnicodeDecodeError, ValueError):
            raise Malformed(f"malformed JSON in the response ({len(raw)} bytes)") from None
        if not isinstance(data, dict):
            raise Malformed("the response is not a JSON object")
        return data

    def _ticker(self, end: float, budget: float) -> Callable[[int], None]:
        """The checks of :meth:`_read` for a stream read line by line: the whole-attempt clock,
        Ctrl-C or close(), and the size limit (called with each line's size)."""
        size = [0]

        def tick(n: int) -> None:
            size[0] += n
            if time.monotonic() > end:
                raise Transient(f"timed out: the stream was not complete within {budget:g} s")
            if self.abort.is_set():
                raise Interrupted()
            if size[0] > MAX_BODY:
                raise Transient(f"the stream exceeds {MAX_BODY // 2**20} MiB")

        return tick

    def _read(self, resp: Any, end: float, budget: float, limit: int | None = None) -> bytes:
        """The body (its first ``limit`` bytes), checking the whole-attempt clock after each chunk."""
        chunks: list[bytes] = []
        size = 0
        for chunk in resp.iter_bytes():
            chunks.append(chunk)
            size += len(chunk)
            if time.monotonic() > end:
                raise Transient(f"timed out: the response was not complete within {budget:g} s")
            if self.abort.is_set():
                raise Interrupted()
            if limit is not None and size >= limit:
                break
            if size > MAX_BODY:
                raise Transient(f"the response exceeds {MAX_BODY // 2**20} MiB")
        return b"".join(chunks)

    def _fail_status(self, code: int, headers: Any, raw: bytes) -> None:
        """Raises for a non-200 reply: Transient (retried) or APIError/ConfigError (at once)."""
        detail = _error_detail(raw)
        detail = f": {self._redact.clip(detail)}" if detail else ""
        if code in RETRY_STATUS or code >= 500:
            raise Transient(f"HTTP {code}{detail}", parse_retry_after(headers))
        msg = f"POST {self.safe_url}: HTTP {code}{detail}"
        if 300 <= code < 400:
            msg += " (redirects are not followed, the key would go with them: set base_url to the final URL)"
        elif code in (401, 403):
            msg += " (check the API key in $OPENAI_API_KEY / api_key_env / api_key_file)"
        elif code in (400, 422) and "logprob" in detail.lower():
            raise ConfigError(self._redact(msg) + "; the server refused the log-probability request: lower "
                              "--model-args top_logprobs= (legacy completions allow 5), or, if it offers none, "
                              "run --variant generate")
        elif 200 <= code < 300:
            raise Malformed(f"HTTP {code} instead of 200")
        raise APIError(self._redact(msg))


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


def map_concurrently(fn: Callable[[T], R], items: Sequence[T], workers: int, abort: threading.Event) -> list[R]:
    """Run ``fn`` over the items on up to ``workers`` daemon threads; answers in order. The first
    failure stops scheduling (items already running finish, so their answers reach the cache) and
    is raised. A KeyboardInterrupt while waiting sets ``abort`` at once: waits wake, nothing new
    starts, and it is re-raised without waiting for requests in flight (daemon threads never hold
    up the interpreter's exit)."""
    if abort.is_set():
        raise APIError("the openai backend was interrupted or closed")
    if not items:
        return []
    results: list[R | None] = [None] * len(items)
    errors: dict[int, BaseException] = {}
    lock = threading.Lock()
    todo = iter(range(len(items)))
    n_workers = min(workers, len(items))
    running = [n_workers]
    finished = threading.Event()

    def worker() -> None:
        try:
            while True:
                with lock:
                    i = None if errors or abort.is_set() else next(todo, None)
                if i is None:
                    return
                try:
                    results[i] = fn(items[i])
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
        abort.set()
        raise
    if errors:
        first = errors[min(errors)]
        if isinstance(first, Interrupted):
            raise APIError("the openai backend was interrupted or closed")
        raise first
    return results  # type: ignore[return-value]
