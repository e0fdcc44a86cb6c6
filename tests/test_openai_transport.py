"""The OpenAI backend's transport: reply validation, redaction, plain-http refusal, capped waits
and deadlines, slow bodies, Ctrl-C, and httpx (keep-alive, no redirects, lazy import).

Every server here is a scripted ``http.server`` on 127.0.0.1: ``ScriptServer(reply)`` calls
``reply(handler, n, body)`` for the n-th request (0-based) it receives.
"""

from __future__ import annotations

import base64
import json
import logging
import os
import signal
import subprocess
import sys
import textwrap
import threading
import time
from email.utils import formatdate
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Callable

import pytest
from conftest import default_sigint

from chimed_eval.backends import open_backend
from chimed_eval.backends.openai import (INSTALL_HINT, APIError, OpenAIBackend, Redactor, backoff_delay,
                                         parse_retry_after)
from chimed_eval.backends.cache import ResponseCache
from chimed_eval.core.errors import ConfigError
from chimed_eval.core.types import GenerationConfig, Request

REPO = Path(__file__).resolve().parent.parent
SECRET = "sk-proj-Abc123XYZ987def456GHI"
CHAT_OK = {"choices": [{"index": 0, "message": {"role": "assistant", "content": "答案：B"}, "finish_reason": "stop"}]}
LOGPROBS_OK = {"choices": [{"index": 0, "message": {"role": "assistant", "content": "B"}, "logprobs": {
    "content": [{"token": "B", "logprob": -0.2, "top_logprobs": [{"token": "B", "logprob": -0.2},
                                                                 {"token": " A", "logprob": -1.9}]}]}}]}

Reply = Callable[[BaseHTTPRequestHandler, int, bytes], None]


def send(h: BaseHTTPRequestHandler, code: int, data: bytes | dict | list, headers: dict | None = None) -> None:
    raw = data if isinstance(data, bytes) else json.dumps(data, ensure_ascii=False).encode("utf-8")
    h.send_response(code)
    h.send_header("Content-Type", "application/json")
    h.send_header("Content-Length", str(len(raw)))
    for k, v in (headers or {}).items():
        h.send_header(k, v)
    h.end_headers()
    h.wfile.write(raw)


class ScriptServer:
    """A local server whose every answer is scripted; counts requests and client ports."""

    def __init__(self, reply: Reply, keep_alive: bool = False) -> None:
        self.reply = reply
        self.lock = threading.Lock()
        self.n = 0
        self.ports: list[int] = []
        server = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1" if keep_alive else "HTTP/1.0"

            def log_message(self, *a) -> None:
                pass

            def do_POST(self) -> None:  # noqa: N802
                body = self.rfile.read(int(self.headers.get("Content-Length") or 0))
                with server.lock:
                    n = server.n
                    server.n += 1
                    server.ports.append(self.client_address[1])
                try:
                    server.reply(self, n, body)
                except OSError:  # the client gave up (timeouts, Ctrl-C tests)
                    self.close_connection = True

        self.httpd = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.httpd.daemon_threads = True
        self.thread = threading.Thread(target=self.httpd.serve_forever, kwargs={"poll_interval": 0.01}, daemon=True)
        self.thread.start()

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.httpd.server_address[1]}/v1"

    def stop(self) -> None:
        self.httpd.shutdown()
        self.httpd.server_close()


@pytest.fixture(autouse=True)
def api_key(monkeypatch):
    monkeypatch.setenv("OPENAI_API_KEY", SECRET)
    monkeypatch.delenv("OPENAI_BASE_URL", raising=False)


@pytest.fixture
def serve():
    servers: list[ScriptServer] = []

    def start(reply: Reply, **kw) -> ScriptServer:
        servers.append(ScriptServer(reply, **kw))
        return servers[-1]

    yield start
    for s in servers:
        s.stop()


def fast(url: str, **extra: str) -> dict[str, str]:
    args = {"base_url": url, "concurrency": "2", "timeout": "2", "max_retries": "2", "backoff": "0.01",
            "max_backoff": "0.02"}
    args.update(extra)
    return args


def gen(key: str = "k") -> Request:
    return Request("generate", key, "问题", generation=GenerationConfig(max_new_tokens=8))


def mcq(key: str = "k") -> Request:
    return Request("next_token", key, "问题", continuations=("A", "B", "C", "D"))


# ------------------------------------------------------------------ 6: invalid replies are never kept

BAD_GENERATE = [{"choices": [{}]}, {"choices": []}, {"choices": [{"message": {"content": 5}}]},
                {"choices": [{"message": {"role": "assistant"}}]}, {"choices": [None]}, [1, 2], {"id": "x"}]
BAD_NEXT_TOKEN = [
    {"choices": [{}]},
    {"choices": [{"message": {"content": "B"}, "logprobs": {"content": []}}]},
    {"choices": [{"message": {"content": "B"}, "logprobs": {"content": [{"token": "B", "logprob": "x"}]}}]},
    {"choices": [{"message": {"content": "B"}, "logprobs": {"content": [
        {"token": "B", "logprob": -0.2, "top_logprobs": [{"token": "B", "logprob": float("nan")}]}]}}]},
    {"choices": [{"message": {"content": "B"}, "logprobs": {"content": [
        {"token": 7, "logprob": -0.2, "top_logprobs": []}]}}]},
    {"choices": [{"message": {"content": "B"}, "logprobs": "yes"}]},
]


@pytest.mark.parametrize("kind,bad", [("generate", b) for b in BAD_GENERATE] + [("next_token", b) for b in BAD_NEXT_TOKEN])
def test_invalid_reply_is_retried_and_never_cached(serve, tmp_path, kind, bad):
    good = CHAT_OK if kind == "generate" else LOGPROBS_OK
    s = serve(lambda h, n, body: send(h, 200, bad if n == 0 else good))
    b = open_backend("openai", "m", model_args=fast(s.url), cache=tmp_path / "c")
    req = gen() if kind == "generate" else mcq()
    [resp] = b.run(kind, [req])
    b.close()
    assert s.n == 2  # the invalid reply was retried once
    if kind == "generate":
        assert resp.text == "答案：B"
    else:
        assert resp.logprobs[1] == pytest.approx(-0.2) and resp.greedy == (False, True, False, False)
    again = open_backend("openai", "m", model_args=fast(s.url), cache=tmp_path / "c")
    assert again.run(kind, [req]) == [resp] and s.n == 2  # the cache holds the valid answer only
    again.close()


@pytest.mark.parametrize("kind", ["generate", "next_token"])
def test_always_invalid_reply_fails_with_api_error_and_caches_nothing(serve, tmp_path, kind):
    s = serve(lambda h, n, body: send(h, 200, {"choices": [{}]}))
    b = open_backend("openai", "m", model_args=fast(s.url), cache=tmp_path / "c")
    with pytest.raises(APIError) as e:
        b.run(kind, [gen() if kind == "generate" else mcq()])
    b.close()
    assert "failed after 3 attempts" in str(e.value) and "generate instead" not in str(e.value)
    assert s.n == 3 and len(ResponseCache(tmp_path / "c")) == 0


def test_logprobs_missing_once_is_retried_and_twice_is_the_generate_advice(serve):
    no_lp = {"choices": [{"message": {"role": "assistant", "content": "B"}, "logprobs": None}]}
    s = serve(lambda h, n, body: send(h, 200, no_lp if n == 0 else LOGPROBS_OK))
    b = OpenAIBackend("m", model_args=fast(s.url))
    assert b.next_token([mcq()])[0].logprobs[1] == pytest.approx(-0.2)  # a glitch is no advice
    b.close()

    never = serve(lambda h, n, body: send(h, 200, no_lp))
    b = OpenAIBackend("m", model_args=fast(never.url, max_retries="5"))
    with pytest.raises(ConfigError, match="run --variant generate instead"):
        b.next_token([mcq()])
    b.close()
    assert never.n == 2  # confirmed by a second well-formed reply, without using up the retries


# ------------------------------------------------------------------ 9 and 11: redaction


def key_fragments() -> list[str]:
    return [SECRET, SECRET[:-3], SECRET[3:], SECRET[5:15], SECRET.upper(),
            base64.b64encode(f"Bearer {SECRET}".encode()).decode(), base64.b64encode(SECRET.encode()).decode(),
            base64.b64encode(f"user:{SECRET}".encode()).decode()[4:20], SECRET.encode().hex()]


def leaks(text: str) -> list[str]:
    return [f for f in key_fragments() if f in text or f.lower() in text.lower()]


def test_echoed_key_fragments_and_long_bodies_are_redacted(serve, caplog):
    echo = " ".join(key_fragments()) + " " + "x" * 5000

    def reply(h, n, body):
        if n == 0:  # a retried error: its body goes to the log
            send(h, 503, {"error": {"message": "overloaded " + echo}})
        else:
            send(h, 400, {"error": {"message": "bad request " + echo + " " + h.headers["Authorization"]}})

    caplog.set_level(logging.DEBUG)
    s = serve(reply)
    b = OpenAIBackend("m", model_args=fast(s.url))
    with pytest.raises(APIError) as e:
        b.generate([gen()])
    b.close()
    msg = str(e.value)
    assert "HTTP 400" in msg and "<redacted>" in msg and not leaks(msg) and not leaks(repr(e.value))
    assert len(msg) < 400  # the 5000-character body is cut
    assert "overloaded" in caplog.text and not leaks(caplog.text)
    assert all(len(r.getMessage()) < 400 for r in caplog.records)


def test_redactor_catches_runs_and_encodings_of_the_key():
    r = Redactor([SECRET])
    for frag in key_fragments():
        assert SECRET[:8] not in r(f"<{frag}>") and not leaks(r(f"<{frag}>"))
    assert r("nothing secret here: sk-other") == "nothing secret here: sk-other"
    assert Redactor(["abcde"])("x abcde y") == "x <redacted> y"  # a short secret is matched whole
    assert Redactor(["1"])("127.0.0.1, Bearer 1") == "127.0.0.1, <redacted>"  # not a secret on its own


@pytest.mark.parametrize("args", [{"token": SECRET}, {"API_KEY": SECRET}, {"apikey": SECRET}, {"key": SECRET},
                                  {"Authorization": f"Bearer {SECRET}"}, {"openai_api_key": SECRET},
                                  {"api_key_env": SECRET}, {"timeout": SECRET}, {"max_backoff": SECRET},
                                  {"allow_insecure_http": SECRET}])
def test_model_args_are_never_echoed(args):
    base = {} if "api_key_env" in args else {"base_url": "http://127.0.0.1:9/v1"}
    with pytest.raises(ConfigError) as e:
        OpenAIBackend("m", model_args={**base, **args})
    assert not leaks(str(e.value)), str(e.value)


# ------------------------------------------------------------------ 10: no key over plain http


@pytest.mark.parametrize("url", ["http://10.1.2.3:8000/v1", "http://api.example.com/v1", "http://[2001:db8::1]/v1"])
def test_key_over_plain_http_to_a_remote_host_is_refused(url, monkeypatch):
    with pytest.raises(ConfigError, match="allow_insecure_http=true") as e:
        OpenAIBackend("m", model_args={"base_url": url})
    assert "clear text" in str(e.value) and not leaks(str(e.value))
    OpenAIBackend("m", model_args={"base_url": url, "allow_insecure_http": "true"}).close()
    OpenAIBackend("m", model_args={"base_url": url.replace("http://", "https://")}).close()
    for local in ("http://localhost:8000/v1", "http://127.0.0.5:8000/v1", "http://[::1]:8000/v1"):
        OpenAIBackend("m", model_args={"base_url": local}).close()
    monkeypatch.delenv("OPENAI_API_KEY")
    OpenAIBackend("m", model_args={"base_url": url}).close()  # no key, nothing to leak


# ------------------------------------------------------------------ 12: capped waits, request deadline


def test_retry_after_waits_are_capped_by_max_backoff():
    assert backoff_delay(0, 0.01, 0.2, 3600.0) <= 0.2
    tomorrow = parse_retry_after({"retry-after": formatdate(time.time() + 86400, usegmt=True)})
    assert tomorrow > 80000 and backoff_delay(3, 0.01, 0.2, tomorrow) <= 0.2
    assert parse_retry_after({"retry-after": "inf"}) is None and parse_retry_after({"retry-after": "nan"}) is None


def test_request_deadline_fails_the_item(serve):
    s = serve(lambda h, n, body: send(h, 503, {"error": {"message": "busy"}}, {"Retry-After": "3600"}))
    b = OpenAIBackend("m", model_args=fast(s.url, max_retries="100000", max_backoff="0.2", request_deadline="2"))
    t0 = time.monotonic()
    with pytest.raises(APIError, match="request_deadline") as e:
        b.generate([gen()])
    b.close()
    # bounds loose enough for a loaded CI machine; without the cap the first wait alone is an hour
    assert time.monotonic() - t0 < 20 and "HTTP 503" in str(e.value)
    assert s.n >= 2  # the hour-long Retry-After was waited for at most max_backoff each time


# ------------------------------------------------------------------ 13: whole-request timeout


def test_slow_drip_body_is_cut_at_the_whole_request_timeout(serve):
    payload = json.dumps(CHAT_OK).encode()

    def drip(h, n, body):
        h.send_response(200)
        h.send_header("Content-Type", "application/json")
        h.send_header("Content-Length", str(len(payload)))
        h.end_headers()
        for i in range(len(payload)):  # a byte every 0.1 s: each read is quick, the whole is not
            h.wfile.write(payload[i:i + 1])
            h.wfile.flush()
            time.sleep(0.1)

    s = serve(drip)
    b = OpenAIBackend("m", model_args=fast(s.url, timeout="1", max_retries="0"))
    t0 = time.monotonic()
    with pytest.raises(APIError, match="timed out"):
        b.generate([gen()])
    assert time.monotonic() - t0 < 5  # the whole body takes 12 s
    b.close()


# ------------------------------------------------------------------ 14: Ctrl-C

CTRL_C_SCRIPT = textwrap.dedent("""
    import sys
    from chimed_eval.backends.openai import OpenAIBackend
    from chimed_eval.core.types import GenerationConfig, Request

    b = OpenAIBackend("m", model_args={{"base_url": {url!r}, "concurrency": "4", "max_retries": "1000",
                                        "backoff": "5", "max_backoff": "30"}})
    print("ready", flush=True)
    try:
        b.generate([Request("generate", f"k{{i}}", f"q{{i}}", generation=GenerationConfig()) for i in range(40)])
    except KeyboardInterrupt:
        print("interrupted", flush=True)
        b.close()  # what the runner does on its way out: it must not wait either
        sys.exit(130)
""")


@pytest.mark.skipif(sys.platform == "win32", reason="SIGINT to a child process")
def test_ctrl_c_stops_requests_against_a_failing_server_within_seconds(serve):
    s = serve(lambda h, n, body: send(h, 503, {"error": {"message": "down"}}, {"Retry-After": "20"}))
    env = {k: v for k, v in os.environ.items() if k not in ("OPENAI_API_KEY", "OPENAI_BASE_URL")}
    proc = subprocess.Popen([sys.executable, "-c", CTRL_C_SCRIPT.format(url=s.url)], cwd=REPO, env=env,
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
                            preexec_fn=default_sigint)  # Ctrl-C reaches it even when pytest runs in the background
    try:
        assert proc.stdout.readline().strip() == "ready"
        for _ in range(1500):  # every worker has failed once and is waiting to retry (20 s)
            if s.n >= 4:
                break
            time.sleep(0.02)
        assert s.n == 4
        time.sleep(1.5)
        proc.send_signal(signal.SIGINT)
        t0 = time.monotonic()
        try:
            out, err = proc.communicate(timeout=5)
        except subprocess.TimeoutExpired:
            pytest.fail("still running 5 s after Ctrl-C")
        assert time.monotonic() - t0 < 5
        assert proc.returncode == 130 and "interrupted" in out, err
        assert s.n == 4  # nothing new was sent after the interrupt, no retry either
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.communicate()


# ------------------------------------------------------------------ 15: httpx transport


def test_connections_are_kept_alive(serve):
    s = serve(lambda h, n, body: send(h, 200, CHAT_OK), keep_alive=True)
    b = OpenAIBackend("m", model_args=fast(s.url, concurrency="1"))
    out = b.generate([gen(f"k{i}") for i in range(6)])
    b.close()
    assert [r.text for r in out] == ["答案：B"] * 6 and s.n == 6
    assert len(set(s.ports)) == 1  # one pooled connection served every request


def test_redirects_are_not_followed(serve):
    target = serve(lambda h, n, body: send(h, 200, CHAT_OK))
    s = serve(lambda h, n, body: send(h, 307, b"", {"Location": target.url + "/chat/completions"}))
    b = OpenAIBackend("m", model_args=fast(s.url))
    with pytest.raises(APIError, match="redirects are not followed"):
        b.generate([gen()])
    b.close()
    assert s.n == 1 and target.n == 0  # not retried, and the key never went to the new host


def test_missing_httpx_is_a_config_error_with_the_install_hint(monkeypatch):
    monkeypatch.setitem(sys.modules, "httpx", None)  # `import httpx` raises ImportError
    with pytest.raises(ConfigError) as e:
        OpenAIBackend("m", model_args={"base_url": "http://127.0.0.1:9/v1"})
    assert INSTALL_HINT in str(e.value) and INSTALL_HINT == "pip install 'chimed-eval[api]'"


def test_httpx_is_imported_only_when_the_backend_is_built():
    probe = ("import sys\nimport chimed_eval.backends.openai\nfrom chimed_eval.cli.app import main\n"
             "try:\n    main(['--help'])\nexcept SystemExit:\n    pass\nprint('httpx' in sys.modules)")
    out = subprocess.run([sys.executable, "-c", probe], cwd=REPO, capture_output=True, text=True, check=True)
    assert out.stdout.strip().splitlines()[-1] == "False"


def test_base_url_holding_the_key_is_refused_and_a_placeholder_key_is_no_secret(monkeypatch):
    with pytest.raises(ConfigError, match="must not contain the API key") as e:
        OpenAIBackend("m", model_args={"base_url": f"https://proxy.example.com/{SECRET}/v1"})
    assert not leaks(str(e.value))
    monkeypatch.setenv("OPENAI_API_KEY", "1")  # vllm serve placeholders: nothing to hide in "127.0.0.1"
    b = OpenAIBackend("m", model_args={"base_url": "http://127.0.0.1:9/v1"})
    assert b.model_info().revision == "api chat http://127.0.0.1:9/v1"
    b.close()
