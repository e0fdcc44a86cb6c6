"""The shared few-shot prefix cache of the hf backend (issue 28), on the tiny random model: one
prefix computation per subject shared by every batch as views, never written to, scoring equal to
full-prompt scoring (|ΔLL| <= 1e-4, same argmax), the output layer once per scored position."""

from __future__ import annotations

import pytest

from chimed_eval.core.types import Request
from chimed_eval.models.resolve import ResolvedModel

HEAD = "以下是关于解剖学的单项选择题，请直接给出正确答案的选项。\n\n"
SHOT = "女性生殖腺是\nA. 卵巢\nB. 乳腺\nC. 子宫\nD. 阴道\n答案： A\n\n"


def _requests(n: int, subjects: int = 2) -> list[Request]:
    """lm-eval-variant requests: per subject one prefix (head + 5 shots), items of varied length."""
    out = []
    for s in range(subjects):
        prefix = HEAD.replace("解剖学", "解剖学" * (s + 1)) + SHOT * 5
        for i in range(n):
            ctx = prefix + f"第{i}题" * (1 + i % 4) + "下列哪项正确\nA. 甲\nB. 乙\nC. 丙\nD. 丁\n答案："
            out.append(Request("loglikelihood", f"{s}-{i}", ctx, (" A", " B", " C", " D"), prefix=prefix))
    return out


@pytest.fixture(scope="module")
def backends(tiny_model):
    from chimed_eval.backends.hf import HFBackend

    model = ResolvedModel(name="tiny", path=str(tiny_model))
    cached = HFBackend(model, device="cpu", dtype="float32", batch_size=3)
    plain = HFBackend(model, device="cpu", dtype="float32", batch_size=3, model_args={"prefix_cache": "false"})
    assert cached.prefix_cache and not plain.prefix_cache
    cached._packed = False  # the padded paths on top of the prefix (packed rows: test_packed_rows.py)
    return cached, plain


def _argmax(xs) -> int:
    return max(range(len(xs)), key=lambda i: (xs[i], -i))


def test_cached_prefix_scoring_equals_full_prompt_scoring(backends):
    cached, plain = backends
    reqs = _requests(7)
    rows = [cached._rows_loglikelihood(r)[0][0] for r in reqs]
    assert all(r.prefix_len >= cached.min_prefix_tokens for r in rows)
    before = cached._prefix_kv.computed
    got = [x for k in range(0, len(reqs), 3) for x in cached.loglikelihood(reqs[k:k + 3])]  # batches of 3
    want = plain.loglikelihood(reqs)
    assert cached._prefix_kv.computed - before == 2  # one per subject, shared by all 5 batches
    for a, b in zip(got, want):
        assert max(abs(x - y) for x, y in zip(a.logprobs, b.logprobs)) <= 1e-4
        assert _argmax(a.logprobs) == _argmax(b.logprobs)


def test_the_prefix_is_shared_as_views_and_never_written(backends):
    import torch

    cached, _ = backends
    reqs = _requests(4, subjects=1)
    row = cached._rows_loglikelihood(reqs[0])[0][0]
    prefix = tuple(row.tokens[: row.prefix_len])
    stored = cached._prefix_kv.get(prefix)
    snapshot = [(layer.keys.clone(), layer.values.clone()) for layer in stored.layers]
    view = cached._prefix_kv.for_rows(prefix, 4)
    for mine, theirs in zip(view.layers, stored.layers):
        assert mine.keys.shape[0] == 4 and mine.keys.stride(0) == 0  # an expand() view, no copy
        assert mine.keys.data_ptr() == theirs.keys.data_ptr()
    cached.loglikelihood(reqs)
    for layer, (k, v) in zip(stored.layers, snapshot):
        assert layer.keys.shape[0] == 1 and torch.equal(layer.keys, k) and torch.equal(layer.values, v)


def test_the_cache_paths_give_the_same_figures(backends):
    # split attention (the default on CPU), the transformers cache as views, and as deep copies
    cached, plain = backends
    reqs = _requests(4)
    assert cached._split  # verified at load time on this model
    split = cached.loglikelihood(reqs)
    cached._split = False
    try:
        shared = cached.loglikelihood(reqs)
        cached._prefix_kv.share = False
        copied = cached.loglikelihood(reqs)
    finally:
        cached._split, cached._prefix_kv.share = True, True
    full = plain.loglikelihood(reqs)
    for a, b, c, d in zip(split, shared, copied, full):
        assert max(abs(x - y) for x, y in zip(b.logprobs, c.logprobs)) <= 1e-6
        for other in (b, d):
            assert max(abs(x - y) for x, y in zip(a.logprobs, other.logprobs)) <= 1e-4
            assert _argmax(a.logprobs) == _argmax(other.logprobs)


def test_split_attention_can_be_turned_off(tiny_model):
    from chimed_eval.backends.hf import HFBackend

    b = HFBackend(ResolvedModel(name="tiny", path=str(tiny_model)), device="cpu", dtype="float32",
                  model_args={"prefix_attention": "false"})
    assert b.prefix_cache and not b._split


def test_the_output_layer_runs_once_per_scored_position(backends):
    cached, _ = backends
    seen: list[int] = []
    hook = cached._head.register_forward_hook(lambda mod, inp, out: seen.append(inp[0].shape[0]))
    try:
        cached.loglikelihood(_requests(3, subjects=1))  # 3 contexts x 4 one-token options
    finally:
        hook.remove()
    assert sum(seen) == 3
