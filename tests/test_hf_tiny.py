"""The transformers backend on a tiny random Qwen2 built in the test: the real code path."""

from __future__ import annotations

import json

import pytest

from chimed_eval.models.resolve import ResolvedModel
from chimed_eval.engine.runner import RunSettings, evaluate
from chimed_eval.core.types import GenerationConfig, Request
from conftest import write_exam_csv

pytestmark = pytest.mark.slow


@pytest.fixture(scope="module")
def backend(tiny_model):
    from chimed_eval.backends.hf import HFBackend

    return HFBackend(ResolvedModel(name="tiny", path=str(tiny_model)), device="cpu", dtype="float32", batch_size=4)


def reference_logprob(backend, context_ids: list[int], cont_ids: list[int]) -> float:
    import torch

    ids = torch.tensor([context_ids + cont_ids])
    with torch.no_grad():
        logp = torch.log_softmax(backend.model(input_ids=ids).logits[0].float(), -1)
    return sum(float(logp[len(context_ids) - 1 + j, t]) for j, t in enumerate(cont_ids))


def test_partial_output_layer_is_used_and_exact(backend):
    assert backend._partial_ok


def test_loglikelihood_matches_a_full_forward(backend):
    ctx = "问题：女性生殖腺是？\nA. 卵巢\nB. 前庭大腺\n答案："
    conts = (" A", " B", " 卵巢 and more", "前庭大腺")
    [resp] = backend.loglikelihood([Request("loglikelihood", "k", ctx, conts)])
    for cont, lp, n in zip(conts, resp.logprobs, resp.n_tokens):
        c, k = backend.encode_pair(ctx, cont, None)
        assert n == len(k)
        assert lp == pytest.approx(reference_logprob(backend, c, k), abs=1e-4)


def test_trailing_space_moves_to_the_continuation(backend):
    c1, k1 = backend.encode_pair("答案： ", "A", None)
    c2, k2 = backend.encode_pair("答案：", " A", None)
    assert (c1, k1) == (c2, k2)


def test_next_token_matches_a_full_forward(backend):
    import torch

    ctx = "<human>:以下是关于解剖学的选择题\n答案：\n<bot>:"
    [resp] = backend.next_token([Request("next_token", "k", ctx, ("A", "B", "C", "D"), add_special_tokens=True)])
    ids = backend.tokenizer.encode(ctx)
    with torch.no_grad():
        logp = torch.log_softmax(backend.model(input_ids=torch.tensor([ids])).logits[0, -1].float(), -1)
    for letter, lp in zip("ABCD", resp.logprobs):
        assert lp == pytest.approx(float(logp[backend.tokenizer.encode(letter)[-1]]), abs=1e-4)


def test_full_logits_fallback_agrees(backend):
    reqs = [Request("loglikelihood", str(i), f"第{i}题 答案：", (" A", " B", " 卵巢")) for i in range(5)]
    fast = backend.loglikelihood(reqs)
    backend._partial_ok = False
    try:
        slow = backend.loglikelihood(reqs)
    finally:
        backend._partial_ok = True
    for a, b in zip(fast, slow):
        assert a.logprobs == pytest.approx(b.logprobs, abs=1e-4)


def test_batch_size_does_not_move_loglikelihoods(backend):
    reqs = [Request("loglikelihood", str(i), "以下是" * (i + 1) + "答案：", (" A", " B", " C 前庭")) for i in range(9)]
    one = [backend.loglikelihood([r])[0] for r in reqs]
    many = backend.loglikelihood(reqs)
    worst = max(abs(x - y) for a, b in zip(one, many) for x, y in zip(a.logprobs, b.logprobs))
    assert worst < 1e-4


def test_generation_greedy_stops_and_is_batch_independent(backend):
    g = GenerationConfig(max_new_tokens=12, stop=("\n",))
    reqs = [Request("generate", str(i), f"问题{i}：答案：", generation=g) for i in range(3)]
    batch = backend.generate(reqs)
    single = [backend.generate([r])[0] for r in reqs]
    assert [r.text for r in batch] == [r.text for r in single]
    assert all("\n" not in (r.text or "") for r in batch)


def test_sampling_is_seeded_per_item(backend):
    g = GenerationConfig(max_new_tokens=8, temperature=1.0, top_p=0.85, seed=42)
    r = Request("generate", "a", "问题：", generation=g)
    other = Request("generate", "b", "别的问题：", generation=GenerationConfig(max_new_tokens=8, temperature=1.0, seed=7))
    alone = backend.generate([r])[0].text
    together = backend.generate([other, r])[1].text
    assert alone == together


class _Crash(Exception):
    pass


def test_resume_after_a_crash_is_identical(tiny_model, tmp_path):
    from chimed_eval.backends.hf import HFBackend
    from chimed_eval.tasks.mcq import McqSpec, make_mcq_task

    exam = write_exam_csv(tmp_path / "exam.csv", 23)
    task = make_mcq_task(McqSpec(path=str(exam), name="exam"))
    model = ResolvedModel(name="tiny", path=str(tiny_model))
    settings = RunSettings(model="tiny", backend="hf", variant="lm-eval", batch_size=4, data_dir=str(tmp_path))

    class Crashing(HFBackend):
        calls = 0

        def loglikelihood(self, requests):
            Crashing.calls += 1
            if Crashing.calls == 3:
                raise _Crash()
            return super().loglikelihood(requests)

    ref = tmp_path / "ref"
    evaluate([task], lambda: HFBackend(model, batch_size=4), settings, ref, progress=False)
    out = tmp_path / "out"
    with pytest.raises(_Crash):
        evaluate([task], lambda: Crashing(model, batch_size=4), settings, out, progress=False)
    assert len((out / "samples" / "exam.jsonl").read_text().splitlines()) == 8  # two batches kept
    evaluate([task], lambda: HFBackend(model, batch_size=4), settings, out, progress=False)
    assert (out / "samples" / "exam.jsonl").read_text() == (ref / "samples" / "exam.jsonl").read_text()
    a, b = (json.loads((d / "results.json").read_text()) for d in (ref, out))
    assert a["tasks"] == b["tasks"]


def test_cli_on_a_local_model_directory(tiny_model, tmp_path):
    from chimed_eval.cli.app import main

    exam = write_exam_csv(tmp_path / "exam.csv", 6)
    out = tmp_path / "o"
    assert main(["run", "--model", str(tiny_model), "--tasks", "mcq", "--task-args", f"path={exam}",
                 "--variant", "paper", "--output", str(out), "--no-progress", "--device", "cpu"]) == 0
    res = json.loads((out / "results.json").read_text())
    assert res["model"]["revision"] == "local" and len(res["model"]["weights_sha256"]) == 64
    assert res["settings"]["scoring"]["mcq"] == "next_token"
    rec = json.loads((out / "samples" / "mcq.jsonl").read_text().splitlines()[0])
    assert len(rec["logprobs"]) == 4 and all(lp < 0 for lp in rec["logprobs"])


def test_few_shot_prefix_cache_matches_full_forward(tiny_model):
    from chimed_eval.backends.hf import HFBackend

    model = ResolvedModel(name="tiny", path=str(tiny_model))
    cached = HFBackend(model, batch_size=4)
    plain = HFBackend(model, batch_size=4, model_args={"prefix_cache": "false"})
    assert cached.prefix_cache and not plain.prefix_cache
    prefix = "以下是关于解剖学的单项选择题，请直接给出正确答案的选项。\n\n" + "女性生殖腺是\nA. 卵巢\nB. 乳腺\n答案： A\n\n" * 5
    reqs = [Request("loglikelihood", str(i), prefix + f"第{i}题" * (i + 1) + "\n答案：", (" A", " B", " 卵巢"), prefix=prefix)
            for i in range(6)]
    nt = [Request("next_token", f"n{i}", prefix + f"问题{i}？\n<bot>:", ("A", "B"), prefix=prefix, add_special_tokens=True)
          for i in range(3)]
    assert all(cached._rows_loglikelihood(r)[0][0].prefix_len > 16 for r in reqs)
    for a, b in zip(cached.loglikelihood(reqs), plain.loglikelihood(reqs)):
        assert a.logprobs == pytest.approx(b.logprobs, abs=1e-4)
    for a, b in zip(cached.next_token(nt), plain.next_token(nt)):
        assert a.logprobs == pytest.approx(b.logprobs, abs=1e-4)


def test_prefix_cache_uses_only_the_tokens_the_context_shares(backend):
    # A prefix whose last tokens merge differently inside the full context: only the shared run of
    # the context's own tokens comes from the cache.
    ctx = "以下是关于解剖学的单项选择题请直接给出正确答案的选项" * 2 + "abc"
    r = Request("loglikelihood", "k", ctx, (" A",), prefix=ctx[:-1])
    rows, _ = backend._rows_loglikelihood(r)
    toks, pre = backend.encode(r.context), backend.encode(r.prefix)
    shared = next((i for i, (a, b) in enumerate(zip(toks, pre)) if a != b), min(len(toks), len(pre)))
    expected = min(shared, len(rows[0].tokens) - 1)
    assert rows[0].prefix_len == (expected if expected >= backend.min_prefix_tokens else 0)
    assert tuple(rows[0].tokens[: rows[0].prefix_len]) == tuple(toks[: rows[0].prefix_len])


def test_generation_on_a_cached_prefix_equals_plain_generation(tiny_model):
    from chimed_eval.backends.hf import HFBackend

    model = ResolvedModel(name="tiny", path=str(tiny_model))
    cached = HFBackend(model, batch_size=4)
    plain = HFBackend(model, batch_size=4, model_args={"prefix_cache": "0"})
    prefix = "以下是一些病历，请找出其中的实体。\n\n" + "文本：高血压 糖尿病\n实体：高血压 疾病和诊断\n\n" * 4
    g = GenerationConfig(max_new_tokens=10, stop=("\n\n",))
    reqs = [Request("generate", str(i), prefix + f"文本：第{i}例 肝硬化\n实体：", prefix=prefix, generation=g)
            for i in range(3)]
    assert cached._gen_prefix_len(reqs[0]) > 0
    assert [r.text for r in cached.generate(reqs)] == [r.text for r in plain.generate(reqs)]


def test_generation_reports_its_token_count(backend):
    g = GenerationConfig(max_new_tokens=5)
    [resp] = backend.generate([Request("generate", "t", "问题：", generation=g)])
    assert resp.n_tokens is not None and 0 <= resp.n_tokens[0] <= 5


def test_every_request_records_the_tokenizers_counts(backend):
    """Issue 27: prompt and completion tokens are the tokenizer's (the tokens the model read and wrote)."""
    g = GenerationConfig(max_new_tokens=5)
    [gen] = backend.generate([Request("generate", "t", "问题：", generation=g)])
    assert gen.usage.prompt_tokens == len(backend.generation_ids(Request("generate", "t", "问题：", generation=g)))
    assert gen.usage.completion_tokens == gen.n_tokens[0]
    r = Request("loglikelihood", "s", "问题：答案是", continuations=("甲", "乙"))
    [scored] = backend.loglikelihood([r])
    read = sum(len(full) - 1 for full, _ in backend.continuation_tokens(r))  # the inputs forwarded
    assert scored.usage.completion_tokens == 0 and 0 < scored.usage.prompt_tokens <= read


def test_stop_strings_stop_generation_as_transformers_does(backend):
    """The backend builds the stop-string criterion once per stop set; the texts equal those of
    transformers' own generate(stop_strings=...)."""
    import torch

    g = GenerationConfig(max_new_tokens=24, stop=("项", "\n"))
    reqs = [Request("generate", f"s{i}", f"文本：第{i}例 肝硬化\n实体：", generation=g) for i in range(3)]
    got = [r.text for r in backend.generate(reqs)]
    for r, text in zip(reqs, got):
        ids = torch.tensor([backend.encode(r.context, None)])
        out = backend.model.generate(input_ids=ids, attention_mask=torch.ones_like(ids), max_new_tokens=24,
                                     do_sample=False, stop_strings=list(g.stop), tokenizer=backend.tokenizer,
                                     pad_token_id=backend.pad_id)
        ref = backend.tokenizer.decode(out[0, ids.shape[1]:].tolist(), skip_special_tokens=True)
        for s in g.stop:
            ref = ref.split(s)[0]
        assert text == ref
    assert len(backend._stop_cache) >= 1
