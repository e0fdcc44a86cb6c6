"""Streamed replies of the openai backend (issue 27, ``--model-args stream=true``) against a local
stub server that speaks server-sent events: each request's time to first token is recorded in the
usage lines and reported as p50/p95 per task beside the latency; bad streams (a 200 with garbage,
a stream cut before ``[DONE]``, an error event, 429 with Retry-After) are retried as bad non-streamed
replies are, every item is answered once, and the records equal those of a non-streamed run. The
token counts come from the final usage chunk, else a ``tokenizer=``, else the text chunks; each
usage line says which."""

from __future__ import annotations

import json
import threading
import time
from pathlib import Path

import pytest

from chimed_eval.backends.openai import APIError, OpenAIBackend
from chimed_eval.backends.openai_stream import StreamAssembler, read_events
from chimed_eval.backends.openai_transport import Malformed, Transient
from chimed_eval.cli.app import main
from chimed_eval.core.errors import ConfigError
from chimed_eval.core.types import GenerationConfig, Request
from conftest import write_exam_csv
from test_openai_backend import FaultServer, margs

#: what a request's first attempt meets, in the order requests arrive (every kind appears)
STREAM_FAULTS = ("ok", "garbage", "cut", "429", "error_event", "not_json", "ok")
FIRST_DELAY = 0.03  # seconds before the first chunk: the time to first token is at least this


class StreamServer(FaultServer):
    """FaultServer's answers, streamed as server-sent events (one chunk per character) when the
    request asks for ``stream``; ``mode``: ``faults`` (STREAM_FAULTS on first attempts), ``ok``,
    ``cut_after:K`` (K good streams, then every stream is cut), ``drip`` (a chunk per 0.2 s);
    ``usage``: the final usage chunk is sent when asked for."""

    def __init__(self, mode: str = "faults", usage: bool = True) -> None:
        super().__init__(faults=False)
        self.mode, self.send_usage = mode, usage
        self.first_attempts = 0
        self.fault_seen: list[str] = []

    def handle(self, h) -> None:
        try:
            self._stream(h)
        except OSError:  # the client closed the connection (close(), a cut it caused): nothing to answer
            pass

    def _stream(self, h) -> None:
        body, rid, attempt = self.receive(h)
        st = self.stats
        with st.lock:
            fault = "ok"
            if self.mode == "faults" and attempt == 0:
                fault = STREAM_FAULTS[self.first_attempts % len(STREAM_FAULTS)]
                self.first_attempts += 1
            elif self.mode.startswith("cut_after:") and sum(st.good.values()) >= int(self.mode.split(":")[1]):
                fault = "cut"
            self.fault_seen.append(fault)
        if fault == "429":
            self._send(h, 429, b'{"error": {"message": "rate limited"}}', {"Retry-After": "0.05"})
            return
        answer = self.answer(h.path, body)
        if not body.get("stream"):
            self._send(h, 200, json.dumps(answer, ensure_ascii=False).encode("utf-8"))
            with st.lock:
                st.good[rid] += 1
            return
        chat = h.path.endswith("/chat/completions")
        choice = answer["choices"][0]
        text = choice["message"]["content"] if chat else choice["text"]
        h.send_response(200)
        h.send_header("Content-Type", "text/event-stream")
        h.end_headers()  # no length: the stream ends when the connection closes (HTTP/1.0)

        def event(obj) -> None:
            h.wfile.write(b"data: " + (obj if isinstance(obj, bytes) else json.dumps(obj, ensure_ascii=False)
                                       .encode("utf-8")) + b"\n\n")
            h.wfile.flush()

        if fault == "garbage":
            h.wfile.write(b"<html>502 bad gateway</html>\n")
            return
        if fault == "not_json":
            event(b'{"choices": [{"delta": {"content": "A')
            return
        if fault == "error_event":
            event({"error": {"message": "the model is overloaded"}})
            return
        h.wfile.write(b": keep-alive\n\n")
        time.sleep(FIRST_DELAY)
        for i, ch in enumerate(text):
            if fault == "cut" and i == 2:
                return  # the connection closes in the middle of the answer
            event({"choices": [{"index": 0, "delta": {"content": ch}}]} if chat else {"choices": [{"index": 0, "text": ch}]})
            if self.mode == "drip":
                time.sleep(0.2)
        event({"choices": [{"index": 0, "delta": {}, "finish_reason": "stop"}]})
        if self.send_usage and (body.get("stream_options") or {}).get("include_usage"):
            event({"choices": [], "usage": answer["usage"]})
        event(b"[DONE]")
        with st.lock:
            st.good[rid] += 1


@pytest.fixture(autouse=True)
def no_env_key(monkeypatch):
    monkeypatch.delenv("OPENAI_API_KEY", raising=False)
    monkeypatch.delenv("OPENAI_BASE_URL", raising=False)


def api_run(out: Path, exam: Path, url: str, *extra: str, stream: bool = True, **args: str) -> int:
    more = {"stream": "true"} if stream else {}
    return main(["run", "--no-progress", "--backend", "openai", "--model", "test-model", "--tasks", "mcq",
                 "--task-args", f"path={exam}", "--variant", "generate", "--batch-size", "4", "--output", str(out),
                 "--no-cache", "--model-args", margs(url, **more, **args), "--price", "in=2,out=10", *extra])


def comparable(out: Path) -> tuple[dict, bytes]:
    res = json.loads((out / "results.json").read_text(encoding="utf-8"))
    res.pop("created")
    res.pop("settings")  # model_args: stream=true, and the stub server's port
    res["model"].pop("revision")  # the stub server's port
    res.pop("integrity")  # digests of the settings above
    return res, (out / "samples" / "mcq.jsonl").read_bytes()


def usage_lines(out: Path) -> list[dict]:
    return [json.loads(x) for x in (out / "usage" / "mcq.jsonl").read_text(encoding="utf-8").splitlines()]


def test_streamed_run_records_ttft_survives_bad_streams_and_equals_the_plain_run(tmp_path, capsys):
    exam = write_exam_csv(tmp_path / "exam.csv", 10)
    plain = FaultServer(faults=False)
    server = StreamServer("faults")
    try:
        assert api_run(tmp_path / "plain", exam, plain.url, stream=False) == 0
        capsys.readouterr()
        assert api_run(tmp_path / "s", exam, server.url) == 0
    finally:
        plain.stop()
        server.stop()
    printed = capsys.readouterr().out
    assert set(STREAM_FAULTS) <= set(server.fault_seen)  # every kind of bad stream was met and retried
    assert sorted(server.stats.good.values()) == [1] * 10  # each item answered once
    assert all(b.get("stream") and b["stream_options"] == {"include_usage": True} for b in server.stats.bodies)
    assert comparable(tmp_path / "s") == comparable(tmp_path / "plain")  # the same records and figures
    lines, recs = usage_lines(tmp_path / "s"), {r["id"]: r for r in map(json.loads, (tmp_path / "s" / "samples" / "mcq.jsonl").read_text().splitlines())}
    assert len(lines) == 10
    for x in lines:
        assert FIRST_DELAY * 0.5 <= x["ttft_s"] <= x["latency_s"], x
        assert x["tokens_source"] == "server"  # from the final usage chunk
        assert (x["prompt_tokens"], x["completion_tokens"]) == (len(recs[x["id"]]["prompt"]), len(recs[x["id"]]["generation"]))
    assert {x["tokens_source"] for x in usage_lines(tmp_path / "plain")} == {"server"}
    assert all(x["ttft_s"] is None for x in usage_lines(tmp_path / "plain"))
    doc = json.loads((tmp_path / "s" / "usage.json").read_text(encoding="utf-8"))
    task = doc["tasks"]["mcq"]
    ttft = sorted(x["ttft_s"] for x in lines)
    assert doc["streamed"] is True and task["streamed"] == 10 and task["tokens_source"] == {"server": 10}
    assert task["ttft_p50_s"] == pytest.approx((ttft[4] + ttft[5]) / 2, abs=1e-6) and ttft[0] <= task["ttft_p95_s"] <= ttft[-1]
    assert task["ttft_p50_s"] <= task["latency_p50_s"]
    assert "TTFT p50" in printed and f"{task['ttft_p50_s']:.3f}" in printed  # the run's table, beside latency
    from chimed_eval.reports.html import render_html

    page = render_html(tmp_path / "s")
    assert "p50 TTFT (s)" in page and "server (10)" in page
    assert "p50 TTFT" not in render_html(tmp_path / "plain")


def test_stream_without_usage_counts_with_the_tokenizer_else_the_chunks(tmp_path):
    tokenizers = pytest.importorskip("tokenizers")
    tok = tokenizers.Tokenizer(tokenizers.models.WordLevel({"[UNK]": 0}, unk_token="[UNK]"))
    tok.pre_tokenizer = tokenizers.pre_tokenizers.Whitespace()
    tok.save(str(tmp_path / "tokenizer.json"))
    exam = write_exam_csv(tmp_path / "exam.csv", 6)
    server = StreamServer("ok", usage=False)
    try:
        assert api_run(tmp_path / "tok", exam, server.url, tokenizer=str(tmp_path)) == 0
        assert api_run(tmp_path / "chunks", exam, server.url) == 0
        assert api_run(tmp_path / "bad", exam, server.url, tokenizer=str(tmp_path / "nope")) == 2
    finally:
        server.stop()
    recs = {r["id"]: r for r in map(json.loads, (tmp_path / "tok" / "samples" / "mcq.jsonl").read_text().splitlines())}
    count = lambda text: len(tok.encode(text, add_special_tokens=False).ids)  # noqa: E731
    for x in usage_lines(tmp_path / "tok"):
        assert x["tokens_source"] == "tokenizer" and x["ttft_s"] is not None
        assert (x["prompt_tokens"], x["completion_tokens"]) == (count(recs[x["id"]]["prompt"]),
                                                                count(recs[x["id"]]["generation"]))
    for x in usage_lines(tmp_path / "chunks"):  # one chunk per character on this server
        assert x["tokens_source"] == "stream_chunks" and x["prompt_tokens"] is None
        assert x["completion_tokens"] == len(recs[x["id"]]["generation"])
    doc = json.loads((tmp_path / "chunks" / "usage.json").read_text(encoding="utf-8"))
    assert doc["run"]["tokens_source"] == {"stream_chunks": 6}
    assert not (tmp_path / "bad" / "samples").exists()  # refused when the backend opens: nothing asked or scored


def test_streams_failing_for_good_stop_clearly_keep_the_done_batches_and_resume(tmp_path, capsys):
    exam = write_exam_csv(tmp_path / "exam.csv", 10)
    server = StreamServer("cut_after:4")  # the first batch of 4 streams whole, then every stream is cut
    try:
        assert api_run(tmp_path / "s", exam, server.url) == 2
        err = capsys.readouterr().err
        assert "the stream ended before data: [DONE]" in err and "failed after 6 attempts" in err
        assert len((tmp_path / "s" / "samples" / "mcq.jsonl").read_text().splitlines()) == 4  # kept
        assert len(usage_lines(tmp_path / "s")) == 4
        server.mode = "ok"
        assert api_run(tmp_path / "s", exam, server.url) == 0
    finally:
        server.stop()
    assert sorted(server.stats.good.values()) == [1] * 10  # the 4 kept were not asked again
    plain = FaultServer(faults=False)
    try:
        assert api_run(tmp_path / "plain", exam, plain.url, stream=False) == 0
    finally:
        plain.stop()
    assert comparable(tmp_path / "s") == comparable(tmp_path / "plain")
    assert len(usage_lines(tmp_path / "s")) == 10


def test_close_interrupts_a_stream_in_flight_and_a_server_ignoring_stream_is_read(tmp_path):
    server = StreamServer("drip")
    try:
        backend = OpenAIBackend("test-model", model_args={"base_url": server.url, "stream": "true", "timeout": "30",
                                                          "max_retries": "0"})
        req = Request(key="k1", kind="generate", context="问题：第1题", generation=GenerationConfig(max_new_tokens=64))
        threading.Timer(0.3, backend.close).start()  # as Ctrl-C does: abort set, client closed
        with pytest.raises(APIError, match="interrupted or closed"):
            backend.generate([req])
        assert sum(server.stats.good.values()) == 0  # stopped mid-stream, nothing used
        plain = FaultServer(faults=False)  # answers stream=true with one JSON body
        backend = OpenAIBackend("test-model", model_args={"base_url": plain.url, "stream": "true"})
        resp = backend.generate([req])[0]
        backend.close()
        plain.stop()
        assert resp.text and resp.usage.ttft_s is None and resp.usage.tokens_source == "server"
    finally:
        server.stop()
    with pytest.raises(ConfigError, match="stream= expects true or false"):
        OpenAIBackend("test-model", model_args={"base_url": server.url, "stream": "maybe"})


def test_read_events_follows_the_sse_format_and_refuses_bad_streams():
    def read(text: str, chat: bool = True) -> dict:
        return read_events(text.split("\n"), StreamAssembler(chat), lambda n: None)

    ok = read(': hi\nevent: message\nid: 1\ndata: {"choices": [{"delta": {"role": "assistant"}}]}\n\n'
              'data: {"choices": [{"delta": {"reasoning_content": "想"}}]}\n\n'
              'data: {"choices": [{"delta":\ndata:  {"content": "答案"}}]}\n\n'
              'data: {"choices": [], "usage": {"prompt_tokens": 3, "completion_tokens": 2}}\n\ndata: [DONE]\n\n')
    meta = ok.pop("\x00stream")
    assert ok == {"choices": [{"index": 0, "message": {"role": "assistant", "content": "答案"}, "finish_reason": None}],
                  "usage": {"prompt_tokens": 3, "completion_tokens": 2}}
    assert meta.chunks == 1 and meta.text == "答案" and meta.first_token_at is not None  # the reasoning came first
    assert read('data: {"choices": [{"text": "B"}]}\n\ndata: [DONE]\n', chat=False)["choices"][0]["text"] == "B"
    with pytest.raises(Transient, match="ended before"):
        read('data: {"choices": [{"delta": {"content": "A"}}]}\n\n')
    with pytest.raises(Malformed, match="not JSON"):
        read('data: {"choices": [\n\ndata: [DONE]\n\n')
    with pytest.raises(Malformed, match="not a server-sent event stream"):
        read("<html>bad gateway</html>\n")
    with pytest.raises(Transient, match="overloaded"):
        read('data: {"error": {"message": "overloaded"}}\n\n')
    with pytest.raises(Malformed, match="not a string"):
        read('data: {"choices": [{"delta": {"content": 5}}]}\n\ndata: [DONE]\n\n')
