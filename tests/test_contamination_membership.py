"""Membership scores (Min-K% Prob, Min-K%++) per item: the scores against hand computations, the
AUC and TPR at 5% FPR against scikit-learn, the task end to end on the fake backend (seen files,
text modes, rescoring, the response cache, the report), and the refusal of backends that cannot
return per-token log-probabilities."""

from __future__ import annotations

import hashlib
import json
import math
from pathlib import Path

import pytest

from chimed_eval.backends.base import Backend
from chimed_eval.backends.fake import FakeBackend
from chimed_eval.backends.cache import CachingBackend, ResponseCache, _decode, _encode
from chimed_eval.cli.app import main
from chimed_eval.core.errors import ConfigError
from chimed_eval.metrics.membership import (auc, auc_ci, lowest_count, membership_metrics, min_k_plus_plus,
                                            min_k_prob, tpr_at_fpr)
from chimed_eval.core.types import ModelInfo, Request, Response
from conftest import write_exam_csv

TASK = "membership-mcq"


# --- the scores, by hand -----------------------------------------------------------------------------


def test_min_k_prob_is_the_mean_of_the_lowest_k_percent():
    lps = [-1.0, -5.0, -2.0, -4.0, -3.0]
    assert min_k_prob(lps, 40) == pytest.approx((-5 - 4) / 2)  # floor(5 * 0.4) = 2 lowest
    assert min_k_prob(lps, 20) == pytest.approx(-5.0)  # floor(5 * 0.2) = 1
    assert min_k_prob(lps, 100) == pytest.approx(-3.0)  # the plain mean
    assert min_k_prob([-0.5, -7.0, -2.0], 20) == pytest.approx(-7.0)  # floor(0.6) = 0 -> at least one token
    assert lowest_count(100, 29) == 29 and lowest_count(10, 29) == 2 and lowest_count(3, 20) == 1


def test_min_k_plus_plus_normalises_each_token_by_the_vocabulary_moments():
    lps = [-1.0, -2.0, -4.0, -0.1]
    moments = [(-2.0, 1.0), (-3.0, 2.0), (-1.0, 0.5), (-0.1, 0.0)]
    # z = (-1+2)/1 = 1, (-2+3)/2 = 0.5, (-4+1)/0.5 = -6, sigma 0 -> 0; lowest 2 of 4 (k=50): -6, 0
    assert min_k_plus_plus(lps, moments, 50) == pytest.approx((-6.0 + 0.0) / 2)
    assert min_k_plus_plus(lps, moments, 25) == pytest.approx(-6.0)
    with pytest.raises(ValueError, match="moments"):
        min_k_plus_plus(lps, moments[:2], 20)


# --- AUC and TPR at 5% FPR against scikit-learn ------------------------------------------------------


@pytest.mark.parametrize("seed", [0, 1, 2, 3])
def test_auc_and_tpr_at_5_fpr_equal_scikit_learn(seed):
    np = pytest.importorskip("numpy")
    metrics = pytest.importorskip("sklearn.metrics")
    rng = np.random.default_rng(seed)
    n = 60 + 17 * seed
    y = rng.random(n) < 0.45
    s = np.round(rng.normal(size=n) + 0.8 * y, 1)  # rounded: many ties
    assert auc(s.tolist(), y.tolist()) == pytest.approx(metrics.roc_auc_score(y, s), abs=1e-12)
    fpr, tpr, _ = metrics.roc_curve(y, s, drop_intermediate=False)
    assert tpr_at_fpr(s.tolist(), y.tolist()) == pytest.approx(tpr[np.where(fpr < 0.05)[0][-1]], abs=1e-12)


def test_auc_counts_ties_as_half_and_its_interval_is_stratified_and_seeded():
    assert auc([1.0, 1.0], [True, False]) == 0.5
    assert auc([3.0, 2.0, 1.0, 0.0], [True, True, False, False]) == 1.0
    assert auc([0.0, 2.0, 1.0, 3.0], [True, True, False, False]) == pytest.approx(1 / 4)  # pairs won: (2>1)
    # perfectly separated groups stay separated in every stratified resample
    assert auc_ci([5, 6, 7, 1, 2, 3], [True] * 3 + [False] * 3, seed=1) == (1.0, 1.0)
    s, y = [0.1, 0.4, 0.35, 0.8, 0.7, 0.2, 0.55, 0.3], [False, False, True, True, True, False, True, False]
    lo, hi = auc_ci(s, y, seed=7)
    assert (lo, hi) == auc_ci(s, y, seed=7) and lo <= auc(s, y) <= hi and 0 <= lo < hi <= 1
    with pytest.raises(ValueError, match="both seen and unseen"):
        auc([1.0, 2.0], [True, True])


def test_metrics_leave_min_kpp_out_when_moments_are_missing_never_zero():
    got = {m.name: m for m in membership_metrics([-3.0, -1.0, -2.0], [None, None, None], [True, False, None], 0)}
    assert "auc_min_kpp" not in got and "min_kpp_mean" not in got
    assert got["min_kpp_unavailable_count"].value == 3 and got["auc_min_k"].value == 0.0  # seen -3 < unseen -1
    assert got["seen_count"].value == 1 and got["unseen_count"].value == 1 and got["auc_min_k"].n == 2
    unlabelled = {m.name for m in membership_metrics([-3.0, -1.0], [-1.0, 0.0], [None, None], 0)}
    assert unlabelled == {"min_k_mean", "min_kpp_mean"}


# --- the task on the fake backend ---------------------------------------------------------------------


def _hand_values(seed: int, char: str) -> tuple[float, float, float]:
    """The fake backend's documented per-character values, computed here from the formula."""
    h = hashlib.sha256(f"{seed}\x00token\x00{char}".encode("utf-8")).digest()
    u0, u1, u2 = (int.from_bytes(h[i:i + 8], "big") / 2.0 ** 64 for i in (0, 8, 16))
    return -0.05 - 9.95 * u0, -0.5 - 4.5 * u1, 0.25 + 2.75 * u2


def _run(tmp_path: Path, extra_args: str = "", out: str = "out", *more: str) -> Path:
    exam = tmp_path / "exam.csv"
    if not exam.exists():
        write_exam_csv(exam, 12)
    code = main(["run", "--backend", "fake", "--model", "random", "--tasks", "membership", "--task-args",
                 f"task=mcq,path={exam}" + extra_args, "--data-dir", str(tmp_path), "--output",
                 str(tmp_path / out), "--no-progress", "--seed", "5", *more])
    assert code == 0
    return tmp_path / out


def _records(out: Path) -> list[dict]:
    return [json.loads(x) for x in (out / "samples" / f"{TASK}.jsonl").read_text(encoding="utf-8").splitlines()]


def _results(out: Path) -> dict[str, dict]:
    res = json.loads((out / "results.json").read_text(encoding="utf-8"))
    return {m["name"]: m for m in res["tasks"][TASK]["metrics"]}


def test_fake_backend_scores_equal_a_hand_computation_on_the_documented_text(tmp_path):
    out = _run(tmp_path, ",k=30")
    recs = _records(out)
    assert len(recs) == 12
    r0 = recs[0]
    # item 0 of write_exam_csv: answer A; the text is the question, its options, the correct option's text
    assert r0["prompt"] == "第0题：下列哪项正确\nA. 选项甲0\nB. 选项乙0\nC. 选项丙0\nD. 选项丁0\n选项甲0"
    for r in recs:
        vals = [_hand_values(5, c) for c in r["prompt"]]  # the fake backend's tokens: characters
        n = len(vals)
        m = max(1, math.floor(n * 30 / 100))
        assert r["extra"]["n_tokens"] == n and r["extra"]["k"] == 30 and r["extra"]["seen"] is None
        assert r["extra"]["min_k"] == pytest.approx(sum(sorted(v[0] for v in vals)[:m]) / m, abs=1e-12)
        z = sorted((lp - mu) / sd for lp, mu, sd in vals)
        assert r["extra"]["min_kpp"] == pytest.approx(sum(z[:m]) / m, abs=1e-12)
        assert r["score"] == r["extra"]["min_k"] and r["gold"] is None
    res = _results(out)
    assert "auc_min_k" not in res
    assert res["min_k_mean"]["value"] == pytest.approx(sum(r["extra"]["min_k"] for r in recs) / 12)


def test_text_modes_input_and_target(tmp_path):
    out = _run(tmp_path, ",text=target", "t")
    r0 = _records(out)[0]
    assert r0["prompt"] == "第0题：下列哪项正确\nA. 选项甲0\nB. 选项乙0\nC. 选项丙0\nD. 选项丁0\n选项甲0"
    assert r0["extra"]["n_tokens"] == len("选项甲0")  # only the reference is scored
    r0 = _records(_run(tmp_path, ",text=input", "i"))[0]
    assert r0["prompt"].endswith("D. 选项丁0") and r0["extra"]["text"] == "input"


def test_seen_file_labels_items_and_gives_the_auc(tmp_path, capsys):
    ids = [r["id"] for r in _records(_run(tmp_path, "", "plain"))]
    seen = tmp_path / "seen.txt"
    seen.write_text("# items in the training data\n" + "\n".join(ids[:5]) + "\n\n", encoding="utf-8")
    out = _run(tmp_path, f",seen={seen}", "labelled")
    recs = _records(out)
    assert [r["extra"]["seen"] for r in recs] == [True] * 5 + [False] * 7
    res = _results(out)
    y = [r["extra"]["seen"] for r in recs]
    for name in ("min_k", "min_kpp"):
        s = [r["extra"][name] for r in recs]
        assert res[f"auc_{name}"]["value"] == pytest.approx(100 * auc(s, y))
        assert res[f"auc_{name}"]["ci_low"] <= res[f"auc_{name}"]["value"] <= res[f"auc_{name}"]["ci_high"]
    assert res["seen_count"]["value"] == 5 and res["unseen_count"]["value"] == 7
    # the seen file is part of the task's data: another list into the same OUT is refused
    seen.write_text("\n".join(ids[:6]) + "\n", encoding="utf-8")
    assert main(["run", "--backend", "fake", "--model", "random", "--tasks", "membership", "--task-args",
                 f"task=mcq,path={tmp_path / 'exam.csv'},seen={seen}", "--data-dir", str(tmp_path), "--output",
                 str(out), "--no-progress", "--seed", "5"]) == 2
    assert "other settings, data or task definitions" in capsys.readouterr().err


def test_seen_file_errors_name_the_file_and_line(tmp_path, capsys):
    seen = tmp_path / "seen.txt"
    _run(tmp_path, "", "plain")
    ids = [r["id"] for r in _records(tmp_path / "plain")]
    seen.write_text(f"{ids[0]}\n\nnot-an-item\n", encoding="utf-8")
    exam = tmp_path / "exam.csv"
    argv = ["run", "--backend", "fake", "--model", "random", "--tasks", "membership", "--data-dir", str(tmp_path),
            "--output", str(tmp_path / "bad"), "--no-progress", "--task-args"]
    import re

    for args, message in [
            (f"task=mcq,path={exam},seen={seen}", f"{seen}:3: 'not-an-item' is not an item id of task 'mcq'"),
            (f"task=mcq,path={exam},seen={tmp_path / 'missing.txt'}", f"seen={tmp_path / 'missing.txt'}: file not found"),
            (f"task=mcq,path={exam},k=0", "k=0: expected a whole percentage from 1 to 100"),
            (f"task=mcq,path={exam},text=all", "text=all: choose one of both, input, target"),
            ("task=cmd-qa,path=x.csv", "unknown key(s) path for membership of task 'cmd-qa'"),
            ("k=20", "needs --task-args task=")]:
        capsys.readouterr()
        assert main(argv + [args]) == 2, args
        err = capsys.readouterr().err
        assert err.startswith("chimed-eval: error: ") and re.search(re.escape(message), err), (args, err)


def test_rescore_recomputes_the_scores_from_the_per_token_values(tmp_path):
    out = _run(tmp_path, ",k=25")
    before = (out / "results.json").read_text(encoding="utf-8")
    path = out / "samples" / f"{TASK}.jsonl"
    recs = _records(out)
    for r in recs:  # spoil every stored score: `score` must recompute them from the token values
        r["extra"]["min_k"], r["extra"]["min_kpp"], r["score"] = 0.0, 0.0, 0.0
    path.write_text("".join(json.dumps(r, ensure_ascii=False) + "\n" for r in recs), encoding="utf-8")
    assert main(["score", str(out)]) == 0
    after = json.loads((out / "results.json").read_text(encoding="utf-8"))
    assert after["tasks"][TASK]["metrics"] == json.loads(before)["tasks"][TASK]["metrics"]


def test_response_cache_stores_and_serves_the_new_fields(tmp_path):
    resp = Response(key="a", n_tokens=(3,), token_logprobs=(-1.5, float("-inf"), -0.25),
                    token_moments=((-2.0, 1.5), (-3.0, 0.5), (-0.5, 0.0)))
    assert _decode(_encode(resp)) == resp
    old_kind = Response(key="b", logprobs=(-1.0, -2.0), greedy=(True, False), n_tokens=(1, 1))
    assert json.loads(_encode(old_kind)) == {"key": "b", "logprobs": [-1.0, -2.0], "greedy": [True, False],
                                             "n_tokens": [1, 1], "text": None}  # stored exactly as before
    assert _decode(_encode(old_kind)) == old_kind
    cache = ResponseCache(tmp_path / "c")
    cache.put_many([("k1", "token_logprobs", resp)])
    assert cache.get_many(["k1"])["k1"] == resp

    class Counting(FakeBackend):
        computed = 0

        def run(self, kind, requests):
            Counting.computed += len(requests)
            return super().run(kind, requests)

    req = [Request("token_logprobs", f"i{i}", "", (f"文本{i}",), add_special_tokens=True) for i in range(3)]
    first = CachingBackend(Counting(seed=3), tmp_path / "c2").run("token_logprobs", req)
    again = CachingBackend(Counting(seed=3), tmp_path / "c2").run("token_logprobs", req)
    assert first == again and Counting.computed == 3 and first[0].token_moments is not None


def test_a_second_run_is_served_by_the_cache_and_a_resumed_run_completes(tmp_path):
    from chimed_eval.engine.runner import RunSettings, evaluate
    from chimed_eval.tasks.membership import make_membership_task

    exam = write_exam_csv(tmp_path / "exam.csv", 12)
    computed = []

    class Counting(FakeBackend):
        def run(self, kind, requests):
            computed.append(len(requests))
            return super().run(kind, requests)

    def factory():
        return CachingBackend(Counting(model="random", seed=5), tmp_path / "cache")

    def run(out: str, limit: int | None = None):
        settings = RunSettings(model="random", backend="fake", batch_size=4, seed=5, data_dir=str(tmp_path), limit=limit)
        return evaluate([make_membership_task({"task": "mcq", "path": str(exam)})], factory, settings, tmp_path / out,
                        progress=False)

    run("a")
    assert sum(computed) == 12
    run("b")
    assert sum(computed) == 12  # every response from the cache
    assert _records(tmp_path / "a") == _records(tmp_path / "b")
    # a run cut short (its first 4 records only) completes to the same records
    part = tmp_path / "c" / "samples" / f"{TASK}.jsonl"
    run("c")
    part.write_text("".join(json.dumps(r, ensure_ascii=False) + "\n" for r in _records(tmp_path / "a")[:4]),
                    encoding="utf-8")
    run("c")
    assert _records(tmp_path / "c") == _records(tmp_path / "a")


class _NoTokens(Backend):
    name = "api"

    def model_info(self) -> ModelInfo:
        return ModelInfo("x", "x", None, None, None)

    def loglikelihood(self, requests):
        raise AssertionError

    next_token = generate = loglikelihood


def test_backends_without_per_token_logprobs_refuse_with_the_way_out():
    from chimed_eval.backends.openai import OpenAIBackend

    assert OpenAIBackend.token_logprobs is Backend.token_logprobs
    with pytest.raises(ConfigError, match=r"backend api cannot return per-token log-probabilities; use --backend hf "
                                          r"\(or vllm for Min-K% without Min-K%\+\+\)"):
        _NoTokens().run("token_logprobs", [Request("token_logprobs", "a", "", ("text",))])


def test_token_logprobs_requests_score_one_text_and_hash_it():
    with pytest.raises(ValueError, match="exactly one continuation"):
        Request("token_logprobs", "a", "", ("x", "y"))
    a, b = Request("token_logprobs", "a", "", ("甲",)), Request("token_logprobs", "a", "", ("乙",))
    assert a.prompt_hash != b.prompt_hash  # the text is the prompt


def test_report_draws_the_score_histograms_with_the_auc(tmp_path):
    from chimed_eval.core.types import record_to_score
    from chimed_eval.reports.membership import histogram, membership_html

    ids = [r["id"] for r in _records(_run(tmp_path, "", "plain"))]
    seen = tmp_path / "seen.txt"
    seen.write_text("\n".join(ids[::2]) + "\n", encoding="utf-8")
    out = _run(tmp_path, f",seen={seen}", "lab")
    recs = [record_to_score(r) for r in _records(out)]
    html = "\n".join(membership_html(recs))
    assert html.count("<svg class='membership-hist'") == 2 and "data-group='seen'" in html
    y = [r.extra["seen"] for r in recs]
    want = 100 * auc([r.extra["min_k"] for r in recs], y)
    assert f"data-score='min_k'>{want:.2f}</span>" in html
    no_moments = [type(r)(**{**r.__dict__, "extra": {**r.extra, "min_kpp": None}}) for r in recs]
    assert "Min-K%++ unavailable" in "\n".join(membership_html(no_moments))
    assert membership_html([]) == [] and histogram([0.0, 0.5, 1.0], 0.0, 1.0, 2) == [1, 2]
    assert main(["report", str(out)]) == 0
    assert "membership-hist" in (out / "report.html").read_text(encoding="utf-8")
