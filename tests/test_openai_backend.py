"""The OpenAI-compatible backend against a local fault-injecting server on 127.0.0.1.

The server answers deterministically from the prompt (no model), and injects on a request's first
attempt one of: a slow answer, a timeout, 429 with Retry-After, 500/503, a dropped connection,
malformed JSON, a truncated body. Every test asserts that each item is scored exactly once: the
server counts, per distinct request, the valid answers it delivered, and that count must be one.
"""

from __future__ import annotations

import hashlib
import json
import logging
import socket
import threading
import time
from collections import Counter, defaultdict
from email.utils import formatdate
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import pytest

from chimed_eval.backends.openai import APIError, OpenAIBackend, backoff_delay, parse_retry_after, sanitise_url
from chimed_eval.models.presets import PAPER_API_SYSTEM_PROMPT
from chimed_eval.cli.app import main
from chimed_eval.core.errors import ConfigError
from chimed_eval.core.types import GenerationConfig, Message, Request
from conftest import write_exam_csv

SECRET = "sk-test-SECRET123"
LETTERS = "ABCD"
FAULTS = ("ok", "slow", "timeout", "429", "500", "503", "drop", "malformed", "truncated", "ok")
CLIENT_TIMEOUT = 0.8  # generous: the test machine may be busy; a slow answer takes 0.1 s


def _h(text: str) -> int:
    return int(hashlib.sha256(text.encode("utf-8")).hexdigest()[:8], 16)


def answer_letter(prompt: str) -> str:
    return LETTERS[_h("answer\x00" + prompt) % 4]


def char_logprob(ch: str, i: int) -> float:
    return -round(0.5 + ((ord(ch) + 3 * i) % 17) / 10.0, 3)


class Stats:
    """Shared across server restarts: per request id, attempts, faults and valid answers."""

    def __init__(self) -> None:
        self.lock = threading.Lock()
        self.attempts: Counter[str] = Counter()
        self.good: Counter[str] = Counter()
        self.faults: Counter[str] = Counter()
        self.times: dict[str, list[float]] = defaultdict(list)
        self.fault_at: dict[str, tuple[str, float]] = {}
        self.auth: Counter[str] = Counter()
        self.bodies: list[dict] = []


class FaultServer:
    """``/v1/chat/completions`` and ``/v1/completions``, answers derived from the prompt hash."""

    def __init__(self, stats: Stats | None = None, faults: bool = True, port: int = 0, logprobs: bool = True,
                 die_after: int | None = None, echo_auth_on_400: bool = False) -> None:
        self.stats = stats or Stats()
        self.faults, self.logprobs, self.die_after = faults, logprobs, die_after
        self.echo_auth_on_400 = echo_auth_on_400
        self.dead = False
        server = self

        class Handler(BaseHTTPRequestHandler):
            def log_message(self, *a) -> None:  # quiet
                pass

            def do_POST(self) -> None:  # noqa: N802
                server.handle(self)

        self.httpd = ThreadingHTTPServer(("127.0.0.1", port), Handler)
        self.httpd.daemon_threads = True
        self.port = self.httpd.server_address[1]
        self.thread = threading.Thread(target=self.httpd.serve_forever, kwargs={"poll_interval": 0.01}, daemon=True)
        self.thread.start()

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}/v1"

    def stop(self) -> None:
        self.dead = True
        self.httpd.shutdown()
        self.httpd.server_close()

    # -- protocol
    def receive(self, h: BaseHTTPRequestHandler) -> tuple[dict, str, int]:
        """(the request's JSON body, its id, which attempt at it this is), counted in the stats."""
        raw = h.rfile.read(int(h.headers.get("Content-Length") or 0))
        body = json.loads(raw)
        rid = hashlib.sha256(h.path.encode() + b"\x00" + raw).hexdigest()
        st = self.stats
        with st.lock:
            attempt = st.attempts[rid]
            st.attempts[rid] += 1
            st.times[rid].append(time.monotonic())
            st.auth[h.headers.get("Authorization", "")] += 1
            st.bodies.append(body)
        return body, rid, attempt

    def handle(self, h: BaseHTTPRequestHandler) -> None:
        body, rid, attempt = self.receive(h)
        st = self.stats
        if self.dead:
            return  # connection closed without an answer
        if self.echo_auth_on_400:
            self._send(h, 400, json.dumps({"error": {"message": "bad request from " + h.headers.get("Authorization", "")}}).encode())
            return
        fault = "ok"
        if self.faults and attempt == 0:
            fault = FAULTS[_h(rid) % len(FAULTS)]
        elif self.faults and attempt == 1 and _h(rid) % 7 == 0:
            fault = "500"  # some requests fail twice
        with st.lock:
            st.faults[fault] += 1
        if fault == "timeout":
            time.sleep(CLIENT_TIMEOUT + 0.2)
            return
        if fault == "slow":
            time.sleep(0.1)
        if fault == "429":
            with st.lock:
                st.fault_at[rid] = ("429", time.monotonic())
            self._send(h, 429, b'{"error": {"message": "rate limited"}}', {"Retry-After": "0.1"})
            return
        if fault in ("500", "503"):
            self._send(h, int(fault), b"<html>upstream error</html>", ctype="text/html")
            return
        if fault == "drop":
            h.close_connection = True
            try:
                h.connection.shutdown(socket.SHUT_RDWR)
            except OSError:
                pass
            return
        payload = json.dumps(self.answer(h.path, body), ensure_ascii=False).encode("utf-8")
        if fault == "malformed":
            self._send(h, 200, payload[: len(payload) // 2])
            return
        if fault == "truncated":
            h.send_response(200)
            h.send_header("Content-Type", "application/json")
            h.send_header("Content-Length", str(len(payload) + 50))
            h.end_headers()
            h.wfile.write(payload[:-5])
            h.wfile.flush()
            h.close_connection = True
            return
        if self.dead:
            return
        self._send(h, 200, payload)
        with st.lock:
            st.good[rid] += 1
            total = sum(st.good.values())
        if self.die_after is not None and total >= self.die_after and not self.dead:
            self.dead = True
            threading.Thread(target=self.stop, daemon=True).start()

    @staticmethod
    def _send(h, code: int, data: bytes, headers: dict | None = None, ctype: str = "application/json") -> None:
        h.send_response(code)
        h.send_header("Content-Type", ctype)
        h.send_header("Content-Length", str(len(data)))
        for k, v in (headers or {}).items():
            h.send_header(k, v)
        h.end_headers()
        h.wfile.write(data)

    def answer(self, path: str, body: dict) -> dict:
        chat = path.endswith("/chat/completions")
        if chat:
            prompt = "\n".join(m["content"] for m in body["messages"] if m["role"] != "system")
        else:
            prompt = body["prompt"]
        letter = answer_letter(prompt)
        others = [x for x in LETTERS if x != letter]
        # the top list: the answer, two other letters (one with a leading space), a non-letter;
        # the fourth letter is absent (the backend's floor)
        tops = [(letter, -0.1), (others[0], -2.5), (" " + others[1], -3.0), ("答", -4.0)]
        if not chat and body.get("echo"):
            toks = list(prompt)
            lps = [None] + [char_logprob(c, i) for i, c in enumerate(toks)][1:]
            return {"choices": [{"index": 0, "text": prompt + "。", "logprobs": {
                "tokens": toks + ["。"], "token_logprobs": lps + [-1.0],
                "text_offset": list(range(len(toks))) + [len(prompt)],
                "top_logprobs": [None] + [{t: lp} for t, lp in zip(toks[1:], lps[1:])] + [{"。": -1.0}]}}]}
        n_top = body.get("top_logprobs") if chat else body.get("logprobs")
        if n_top is not None and body.get("max_tokens") == 1:
            if not self.logprobs:
                lp = None
            elif chat:
                lp = {"content": [{"token": letter, "logprob": -0.1,
                                   "top_logprobs": [{"token": t, "logprob": v} for t, v in tops[:n_top]]}]}
            else:
                lp = {"tokens": [letter], "token_logprobs": [-0.1], "top_logprobs": [dict(tops[:n_top])],
                      "text_offset": [len(prompt)]}
            msg = {"message": {"role": "assistant", "content": letter}} if chat else {"text": letter}
            return {"choices": [{"index": 0, **msg, "logprobs": lp, "finish_reason": "length"}]}
        text = f"答案：{letter}。解释{_h(prompt) % 97}"
        stop = body.get("stop") or []
        for s in stop:
            if s in text:
                text = text[: text.index(s)]
        text = text[: body.get("max_tokens") or len(text)]
        msg = {"message": {"role": "assistant", "content": text}} if chat else {"text": text}
        return {"choices": [{"index": 0, **msg, "finish_reason": "stop"}],
                "usage": {"prompt_tokens": len(prompt), "completion_tokens": len(text)}}


@pytest.fixture
def server():
    s = FaultServer()
    yield s
    s.stop()


@pytest.fixture(autouse=True)
def api_key(monkeypatch):
    monkeypatch.setenv("OPENAI_API_KEY", SECRET)
    monkeypatch.delenv("OPENAI_BASE_URL", raising=False)


def margs(url: str, **extra: str) -> str:
    base = {"base_url": url, "concurrency": "4", "timeout": str(CLIENT_TIMEOUT), "max_retries": "5",
            "backoff": "0.01", "max_backoff": "0.05"}
    base.update(extra)
    return ",".join(f"{k}={v}" for k, v in base.items())


def run(out: Path, exam: Path, url: str, *, variant: str, cache: Path, model: str = "test-model", **extra: str) -> int:
    return main(["run", "--no-progress", "--backend", "openai", "--model", model, "--tasks", "mcq",
                 "--task-args", f"path={exam}", "--variant", variant, "--batch-size", "8", "--output", str(out),
                 "--cache", str(cache), "--model-args", margs(url, **extra)])


def samples(out: Path) -> list[dict]:
    return [json.loads(x) for x in (out / "samples" / "mcq.jsonl").read_text(encoding="utf-8").splitlines()]


# ---------------------------------------------------------------------------------------------- units


def test_retry_after_forms():
    assert parse_retry_after({"retry-after": "0.25"}) == 0.25
    assert parse_retry_after({"retry-after-ms": "150", "retry-after": "9"}) == pytest.approx(0.15)
    assert 1.0 <= parse_retry_after({"retry-after": formatdate(time.time() + 3, usegmt=True)}) <= 3.01
    assert parse_retry_after({"retry-after": "soon"}) is None and parse_retry_after({}) is None


def test_backoff_is_exponential_full_jitter_and_honours_retry_after():
    import random

    rng = random.Random(0)
    for attempt in range(8):
        d = [backoff_delay(attempt, 0.5, 4.0, None, rng) for _ in range(200)]
        assert 0 <= min(d) and max(d) <= min(4.0, 0.5 * 2 ** attempt)
    assert all(2.0 <= backoff_delay(0, 0.5, 4.0, 2.0, rng) <= 2.2 for _ in range(50))


def test_urls_never_carry_credentials():
    assert sanitise_url("https://u:pw@host:8443/v1/?key=abc#x") == "https://host:8443/v1"
    for url in ("http://user:pw@127.0.0.1:1/v1", "http://127.0.0.1:1/v1?api-key=" + SECRET):
        with pytest.raises(ConfigError, match="credentials") as e:
            OpenAIBackend("m", model_args={"base_url": url})
        assert SECRET not in str(e.value) and "pw" not in str(e.value)
    with pytest.raises(ConfigError) as e:
        OpenAIBackend("m", model_args={"api_key": SECRET})
    assert SECRET not in str(e.value)


def test_chat_messages_and_system_prompt():
    b = OpenAIBackend("gpt-4", model_args={"base_url": "http://127.0.0.1:9/v1"})
    assert b.system_prompt == PAPER_API_SYSTEM_PROMPT  # the GPT presets' default
    turns = (Message("user", "头痛怎么办"), Message("assistant", "多久了？"), Message("user", "两天"))
    r = Request("generate", "k", "the stored text", generation=GenerationConfig(), messages=turns)
    assert b._messages(r) == [{"role": "system", "content": PAPER_API_SYSTEM_PROMPT},
                              *({"role": m.role, "content": m.content} for m in turns)]
    # a plain request's context is one user message; the completions endpoint refuses messages
    assert b._messages(Request("generate", "k", "头痛怎么办")) == [
        {"role": "system", "content": PAPER_API_SYSTEM_PROMPT}, {"role": "user", "content": "头痛怎么办"}]
    completions = OpenAIBackend("m", model_args={"base_url": "http://127.0.0.1:9/v1", "endpoint": "completions"})
    with pytest.raises(ConfigError, match="endpoint=chat"):
        completions._base_payload(r, 8)
    completions.close()
    info = b.model_info()
    assert (info.name, info.path, info.weights_sha256) == ("gpt-4", "gpt-4", None)
    assert SECRET not in repr(vars(b)) and SECRET not in str(info)
    assert OpenAIBackend("gpt-4", model_args={"base_url": "http://127.0.0.1:9/v1", "system_prompt": "none"}).system_prompt is None
    b.close()


# ------------------------------------------------------------------------------ faults, all kinds


@pytest.mark.parametrize("variant,endpoint", [("paper", "chat"), ("paper", "completions"),
                                              ("lm-eval", "completions"), ("generate", "chat")])
def test_faults_every_item_scored_exactly_once(server, tmp_path, variant, endpoint):
    n = 12 if variant == "lm-eval" else 24  # lm-eval: four requests per item
    exam = write_exam_csv(tmp_path / "exam.csv", n)
    out = tmp_path / "o"
    assert run(out, exam, server.url, variant=variant, cache=tmp_path / "c", endpoint=endpoint) == 0
    recs = samples(out)
    ids = [r["id"] for r in recs]
    assert len(ids) == n and len(set(ids)) == n
    st = server.stats
    per_item = 4 if variant == "lm-eval" else 1
    assert len(st.attempts) == n * per_item
    assert set(st.good) == set(st.attempts) and set(st.good.values()) == {1}  # none lost, none twice
    assert st.faults["ok"] and sum(v for k, v in st.faults.items() if k != "ok") >= 10
    assert len(set(st.faults) - {"ok"}) >= 5  # most kinds of fault were injected
    for r in recs:  # the server's answer is what was scored
        if variant == "paper":
            assert r["prediction"] == answer_letter(r["prompt"])
            assert max(r["logprobs"]) == pytest.approx(-0.1) and min(r["logprobs"]) == -100.0
        elif variant == "generate":
            assert r["prediction"] == answer_letter(r["prompt"])
    if variant == "lm-eval":
        r = recs[0]
        expected = [sum(char_logprob(c, len(r["prompt"]) + i) for i, c in enumerate(" " + x)) for x in LETTERS]
        assert r["logprobs"] == pytest.approx(expected)
    res = json.loads((out / "results.json").read_text())
    assert res["settings"]["scoring"]["mcq"] == {"paper": "next_token", "lm-eval": "loglikelihood",
                                                 "generate": "generate"}[variant]
    assert res["model"]["path"] == "test-model" and res["model"]["revision"].startswith(f"api {endpoint}")


def test_retry_after_is_honoured(server, tmp_path):
    exam = write_exam_csv(tmp_path / "exam.csv", 24)
    # Retry-After (0.1 s) is honoured up to max_backoff, which caps every wait
    assert run(tmp_path / "o", exam, server.url, variant="paper", cache=tmp_path / "c", max_backoff="0.5") == 0
    st = server.stats
    assert st.fault_at, "no 429 was injected"
    for rid, (_, t) in st.fault_at.items():
        nxt = [x for x in st.times[rid] if x > t]
        assert nxt and nxt[0] - t >= 0.1 - 0.005


def test_second_identical_run_makes_no_server_calls(server, tmp_path):
    exam = write_exam_csv(tmp_path / "exam.csv", 16)
    assert run(tmp_path / "a", exam, server.url, variant="generate", cache=tmp_path / "c") == 0
    before = sum(server.stats.attempts.values())
    assert run(tmp_path / "b", exam, server.url, variant="generate", cache=tmp_path / "c") == 0
    assert sum(server.stats.attempts.values()) == before
    assert (tmp_path / "a" / "samples" / "mcq.jsonl").read_text() == (tmp_path / "b" / "samples" / "mcq.jsonl").read_text()


def test_server_dies_mid_run_and_the_run_resumes(tmp_path, capsys):
    exam = write_exam_csv(tmp_path / "exam.csv", 40)
    ref_server = FaultServer(faults=False)
    try:
        assert run(tmp_path / "ref", exam, ref_server.url, variant="paper", cache=tmp_path / "c-ref") == 0
    finally:
        ref_server.stop()

    stats = Stats()
    dying = FaultServer(stats, die_after=19)  # dies in the middle of the third batch of 8
    port = dying.port
    out = tmp_path / "out"
    assert run(out, exam, dying.url, variant="paper", cache=tmp_path / "c", max_retries="2") == 2
    assert "failed after 3 attempts" in capsys.readouterr().err
    written = len(samples(out))
    assert 0 < written < 40 and written % 8 == 0 and not (out / "results.json").exists()
    assert sum(stats.good.values()) > written  # answers of the failed batch arrived: the cache kept them

    dying.thread.join(5)
    for _ in range(100):  # the same server comes back on the same port: the same command resumes
        try:
            back = FaultServer(stats, port=port)
            break
        except OSError:
            time.sleep(0.02)
    try:
        assert run(out, exam, back.url, variant="paper", cache=tmp_path / "c", max_retries="2") == 0
    finally:
        back.stop()
    assert set(stats.good.values()) == {1} and len(stats.good) == 40  # each item answered once in all
    assert (out / "samples" / "mcq.jsonl").read_text() == (tmp_path / "ref" / "samples" / "mcq.jsonl").read_text()
    a, b = (json.loads((d / "results.json").read_text()) for d in (tmp_path / "ref", out))
    assert a["tasks"] == b["tasks"]


# ------------------------------------------------------------------------------ errors and secrets


def test_server_without_logprobs_says_use_generate(tmp_path, capsys):
    s = FaultServer(faults=False, logprobs=False)
    try:
        exam = write_exam_csv(tmp_path / "exam.csv", 4)
        assert run(tmp_path / "o", exam, s.url, variant="paper", cache=tmp_path / "c") == 2
        assert "--variant generate" in capsys.readouterr().err
        assert run(tmp_path / "o2", exam, s.url, variant="lm-eval", cache=tmp_path / "c") == 2
        assert "endpoint=completions" in capsys.readouterr().err
    finally:
        s.stop()


def test_api_key_never_appears_anywhere(server, tmp_path, capsys, caplog, monkeypatch):
    caplog.set_level(logging.DEBUG)
    exam = write_exam_csv(tmp_path / "exam.csv", 16)
    out = tmp_path / "o"
    assert run(out, exam, server.url, variant="generate", cache=tmp_path / "c") == 0
    assert server.stats.auth == Counter({f"Bearer {SECRET}": sum(server.stats.attempts.values())})
    assert any("retry" in r.getMessage() for r in caplog.records)  # the retries were logged

    # a key from a file; an echoing server's error message is redacted
    monkeypatch.delenv("OPENAI_API_KEY")
    (tmp_path / "key").write_text(SECRET + "\n")
    echo = FaultServer(faults=False, echo_auth_on_400=True)
    try:
        b = OpenAIBackend("m", model_args={"base_url": echo.url, "api_key_file": str(tmp_path / "key"), "max_retries": "0"})
        with pytest.raises(APIError) as e:
            b.generate([Request("generate", "k", "问题", generation=GenerationConfig())])
        assert "<redacted>" in str(e.value) and SECRET not in str(e.value) and SECRET not in repr(e.value)
        b.close()
        rc = main(["run", "--no-progress", "--backend", "openai", "--model", "m", "--tasks", "mcq", "--task-args",
                   f"path={exam}", "--variant", "generate", "--output", str(tmp_path / "o2"), "--cache",
                   str(tmp_path / "c2"), "--model-args", margs(echo.url, api_key_file=str(tmp_path / "key"))])
        assert rc == 2
    finally:
        echo.stop()

    captured = capsys.readouterr()
    texts = [captured.out, captured.err, caplog.text]
    for d in (out, tmp_path / "o2", tmp_path / "c", tmp_path / "c2"):
        for f in d.rglob("*"):
            if f.is_file():
                texts.append(f.read_bytes().decode("utf-8", "replace"))
    assert all(SECRET not in t for t in texts)
    assert "<redacted>" in captured.err


# ------------------------------------------------------------------------------ presets


def test_api_presets_resolve_to_the_openai_backend(server, tmp_path, capsys):
    exam = write_exam_csv(tmp_path / "exam.csv", 4)
    rc = main(["run", "--no-progress", "--model", "gpt-4", "--tasks", "mcq", "--task-args", f"path={exam}",
               "--output", str(tmp_path / "x")])
    assert rc == 2 and "--backend openai" in capsys.readouterr().err
    assert run(tmp_path / "o", exam, server.url, variant="generate", cache=tmp_path / "c", model="gpt-4") == 0
    res = json.loads((tmp_path / "o" / "results.json").read_text())
    assert res["model"]["name"] == "gpt-4" and res["model"]["path"] == "gpt-4"
    first = server.stats.bodies[0]
    assert first["model"] == "gpt-4" and first["messages"][0] == {"role": "system", "content": PAPER_API_SYSTEM_PROMPT}


def test_baseline_presets_cover_every_published_row():
    """Every published row has a preset that resolves (a hub model to its hub id, an API model to
    the openai backend), and the paper decoding a preset documents is what the tasks run."""
    from chimed_eval.models.resolve import MODELS, resolve_model
    from chimed_eval.models.presets import BASELINES, PUBLISHED_ROWS
    from chimed_eval.leaderboards.paper import MODELS as PUBLISHED
    from chimed_eval.tasks.generation import DECODING

    assert sorted(PUBLISHED_ROWS.values()) == sorted(PUBLISHED)
    for name, b in BASELINES.items():
        assert name in MODELS
        if b.backend == "openai":
            continue
        r = resolve_model(name)
        assert r.name == name and r.path == b.source and r.chat_format == b.chat_format
        run = DECODING[b.decoding["cli"].split()[-1]]  # --decoding paper-sampling
        assert {k: run[k] for k in ("temperature", "top_p", "max_new_tokens")} == \
            {k: b.decoding[k] for k in ("temperature", "top_p", "max_new_tokens")}


HETMC = ("id\t00001\tapartment\t内科\tdisease\t胃炎\nP\t胃胀半年\t1\nD\t你好，做过胃镜吗？\t2\nP\t做过，慢性胃炎\t0\n"
         "D\t建议服用抑酸药物\t0\nSUM1\t胃胀半年\n")


def test_chat_variant_sends_the_turns_as_messages(tmp_path):
    pytest.importorskip("jieba")
    data = tmp_path / "data" / "dialogue" / "hetmc"
    data.mkdir(parents=True)
    (data / "test.dialog").write_text(HETMC, encoding="utf-8")
    s = FaultServer(faults=False)
    try:
        rc = main(["run", "--no-progress", "--backend", "openai", "--model", "gpt-4", "--tasks", "mc-dialogue",
                   "--variant", "chat", "--max-new-tokens", "256", "--data-dir", str(tmp_path / "data"),
                   "--output", str(tmp_path / "o"), "--cache", str(tmp_path / "c"),
                   "--model-args", margs(s.url, temperature="0.2")])
        assert rc == 0
        body = s.stats.bodies[0]
    finally:
        s.stop()
    assert [m["role"] for m in body["messages"]] == ["system", "user", "assistant", "user"]
    assert body["messages"][0]["content"] == PAPER_API_SYSTEM_PROMPT and body["messages"][1]["content"] == "胃胀半年"
    assert body["temperature"] == 0.2 and body["max_tokens"] == 256
    res = json.loads((tmp_path / "o" / "results.json").read_text())
    assert "server's chat template" in res["settings"]["generation"]["mc-dialogue"]["chat_template"]
