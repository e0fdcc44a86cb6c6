"""Rows packed end to end without padding in the hf backend (issue 28), on the tiny random model:
the same log-probabilities as the padded batch and as full prompts (|ΔLL| <= 1e-4, same argmax),
with and without a cached few-shot prefix; no padded position reaches the decoder; off with
``packed=false``; a model the load-time check rejects keeps the padded path."""

from __future__ import annotations

import pytest

from chimed_eval.core.types import Request
from chimed_eval.models.resolve import ResolvedModel
from test_prefix_kv import _argmax, _requests


@pytest.fixture(scope="module")
def trio(tiny_model):
    from chimed_eval.backends.hf import HFBackend

    model = ResolvedModel(name="tiny", path=str(tiny_model))
    packed = HFBackend(model, device="cpu", dtype="float32", batch_size=4)
    padded = HFBackend(model, device="cpu", dtype="float32", batch_size=4, model_args={"packed": "false"})
    whole = HFBackend(model, device="cpu", dtype="float32", batch_size=4,
                      model_args={"packed": "false", "prefix_cache": "false"})
    assert packed._packed and not padded._packed and padded._split and not whole.prefix_cache
    return packed, padded, whole


def _zero_shot(n: int) -> list[Request]:
    """Contexts of varied length, no prefix; options of one and of several tokens."""
    out = []
    for i in range(n):
        ctx = "病人" * (1 + 3 * i) + "主诉头痛三天，" * (i % 3) + "答案："
        out.append(Request("loglikelihood", f"z{i}", ctx, (" A", " 偏头痛", " 紧张性头痛并发症")))
    return out


def _close(got, want) -> None:
    for a, b in zip(got, want, strict=True):
        assert max(abs(x - y) for x, y in zip(a.logprobs, b.logprobs)) <= 1e-4
        assert _argmax(a.logprobs) == _argmax(b.logprobs)
        assert a.greedy == b.greedy


@pytest.mark.parametrize("make", [lambda: _requests(5), lambda: _zero_shot(6)], ids=["5-shot prefix", "0-shot"])
def test_packed_rows_score_as_padded_rows_and_full_prompts(trio, make):
    packed, padded, whole = trio
    reqs = make()
    got = [x for k in range(0, len(reqs), 4) for x in packed.loglikelihood(reqs[k:k + 4])]
    _close(got, padded.loglikelihood(reqs))
    _close(got, whole.loglikelihood(reqs))


def test_next_token_reads_agree(trio):
    packed, _, whole = trio
    reqs = [Request("next_token", r.key, r.context, r.continuations, prefix=r.prefix) for r in _requests(3)]
    _close(packed.next_token(reqs), whole.next_token(reqs))


def test_no_padded_position_reaches_the_decoder(trio):
    packed, padded, _ = trio
    reqs = _zero_shot(4)  # lengths differ a lot: padding would add many positions
    rows = [row for r in reqs for row in packed._rows_loglikelihood(r)[0]]
    real = sum(len(r.tokens) for r in rows)
    widest = len(rows) * max(len(r.tokens) for r in rows)
    seen: list[int] = []

    def count(mod, args, kwargs):
        seen.append(int(kwargs["input_ids"].numel()))

    for backend, want in ((packed, real), (padded, widest)):
        seen.clear()
        hook = backend._decoder.register_forward_pre_hook(count, with_kwargs=True)
        try:
            backend.loglikelihood(reqs)
        finally:
            hook.remove()
        assert sum(seen) == want
    assert real < widest


def test_a_model_the_load_check_rejects_keeps_the_padded_path(tiny_model, monkeypatch):
    from chimed_eval.backends import packed_attention
    from chimed_eval.backends.hf import HFBackend

    real = packed_attention.packed_hidden
    monkeypatch.setattr(packed_attention, "packed_hidden", lambda *a, **k: real(*a, **k) * 1.5)  # a wrong kernel
    b = HFBackend(ResolvedModel(name="tiny", path=str(tiny_model)), device="cpu", dtype="float32")
    assert b.prefix_cache and not b._packed


def test_sliding_window_models_pack_only_rows_inside_the_window():
    from types import SimpleNamespace

    from chimed_eval.backends.packed_attention import fits

    assert fits(SimpleNamespace(sliding_window=None), 5000, 900)
    assert fits(SimpleNamespace(sliding_window=512), 400, 112)
    assert not fits(SimpleNamespace(sliding_window=512), 400, 113)
