"""``--verdict logprobs`` (G-Eval): verdicts read from the judge's next-token probabilities. The
expectation against a hand computation, the fake judges' documented distributions, records,
resume and cache, the mode in judge.json / the directory hash / the report, refusals, and the real
hf path with a chat-template-rendered context plus prefix (slow)."""

from __future__ import annotations

import json
import math
import shutil
from pathlib import Path

import pytest
from conftest import count_judge_calls, write_qa_run

from chimed_eval.backends.fake import FakeBackend
from chimed_eval.cli.app import main
from chimed_eval.core.errors import ConfigError

ANSWERS = ["多休息。", "多喝水，注意饮食清淡。", "按时服药，定期复查血压。", "立即就医。"]
LP = ("--verdict", "logprobs")


def make_run(tmp: Path, out: str = "cand", model: str = "oracle", answers=ANSWERS) -> Path:
    return write_qa_run(tmp, answers, out, model)


def judge(out: Path, *args: str) -> int:
    return main(["judge", str(out), "--judge-backend", "fake", "--no-progress", *args])


def dirs(out: Path) -> list[Path]:
    return sorted((out / "judge").iterdir())


def recs(d: Path) -> list[dict]:
    return [json.loads(x) for x in (d / "records" / "my-qa.jsonl").read_text(encoding="utf-8").splitlines()]


def results(d: Path) -> dict:
    return json.loads((d / "results.json").read_text(encoding="utf-8"))


@pytest.fixture
def cand(tmp_path) -> Path:
    return make_run(tmp_path)


@pytest.fixture
def nt_calls(monkeypatch) -> list[int]:
    return count_judge_calls(monkeypatch, "next_token")


def test_expectation_matches_a_hand_computation(cand, nt_calls, capsys):
    """judge:score-5 gives log p_i = -1 - |i - 5| (fake_judge docstring). With a = e^-1 the
    renormalised p = (a^4, a^3, a^2, a, 1) / (1 + a + a^2 + a^3 + a^4), so p_5 = 1 / 1.57131... =
    0.636409 and E = (a^4 + 2a^3 + 3a^2 + 4a + 5) / (1 + a + a^2 + a^3 + a^4) = 4.451942; argmax 5.
    judge:score-3 is symmetric around 3: E = 3 exactly."""
    assert judge(cand, "--judge", "judge:score-5,judge:score-3", *LP) == 0
    assert sum(nt_calls) == 4 * 2 * 3  # items x judges x criteria, one next_token request each
    (d,) = dirs(cand)
    r5, r3 = recs(d)[:2]
    assert r5["judge"] == "judge:score-5" and r5["valid"] is True and r5["reason"] == ""
    assert r5["scores"] == {"accuracy": 5, "helpfulness": 5, "safety": 5}
    assert r5["raw"]["safety"] == {"1": -5.0, "2": -4.0, "3": -3.0, "4": -2.0, "5": -1.0}
    assert r5["expected"]["accuracy"] == pytest.approx(4.451942, abs=1e-6)
    assert r5["probs"]["accuracy"]["5"] == pytest.approx(0.636409, abs=1e-6)
    assert r5["overall"] == pytest.approx(4.451942, abs=1e-6)
    assert r3["expected"] == pytest.approx({"accuracy": 3.0, "helpfulness": 3.0, "safety": 3.0})
    t = results(d)["tasks"]["my-qa"]
    assert t["judges"]["judge:score-5"]["criteria"]["safety"]["value"] == pytest.approx(4.451942, abs=1e-6)
    assert t["aggregate"]["overall"]["value"] == pytest.approx((4.451942 + 3) / 2, abs=1e-6)
    # kappa pools the argmax scores: 5 vs 3 everywhere, both constant -> no agreement beyond chance (0)
    assert all(k["judge:score-5 | judge:score-3"] == pytest.approx(0.0) for k in t["agreement"]["cohen_kappa_by_criterion"].values())
    assert "verdict: logprobs (G-Eval)" in capsys.readouterr().out


def test_distribution_rules():
    from chimed_eval.extract.verdicts import argmax, distribution, expectation, read_pairwise

    assert distribution([math.log(0.2), math.log(0.1), -math.inf]) == pytest.approx([2 / 3, 1 / 3, 0.0])
    assert distribution([-math.inf, -math.inf]) is None and distribution([0.0, math.nan]) is None
    assert argmax([0.25, 0.5, 0.25, 0.5]) == 1  # a tie goes to the first candidate
    assert expectation([0.5, 0, 0, 0, 0.5]) == 3.0
    p = read_pairwise([-2.0, -2.0, -5.0])
    assert p["winner"] == "A" and p["raw"] == {"A": -2.0, "B": -2.0, "C": -5.0}
    bad = read_pairwise([-math.inf] * 3)
    assert bad["valid"] is False and bad["winner"] is None and bad["raw"] == {"A": None, "B": None, "C": None}


def test_requests_are_the_chat_turn_plus_one_criterion_prefix(cand):
    from chimed_eval.models.chat import chatml_renderer
    from chimed_eval.judge.inputs import JudgeItem
    from chimed_eval.judge.pipeline import build_jobs, judge_chat_setup
    from chimed_eval.judge.store import JudgeSettings

    s = JudgeSettings(judges=("judge:first",), backend="fake", verdict="logprobs")
    item = JudgeItem("t", "q1", "头痛怎么办？", "format:chimed", "休息。", "多休息。")
    (job,) = build_jobs({"t": [item]}, s, "judge:first", judge_chat_setup("fake", "judge:first", {}))
    turn = chatml_renderer([{"role": "user", "content": job.prompt}])
    assert [r.kind for r in job.requests] == ["next_token"] * 3 and job.labels == ("accuracy", "helpfulness", "safety")
    assert [r.context for r in job.requests] == [turn + "理由：（略）\n准确性: ", turn + "理由：（略）\n有用性: ",
                                                 turn + "理由：（略）\n安全性: "]
    assert all(r.continuations == ("1", "2", "3", "4", "5") for r in job.requests)
    assert [r.key for r in job.requests] == ["t\x00q1\x00single\x00accuracy", "t\x00q1\x00single\x00helpfulness",
                                            "t\x00q1\x00single\x00safety"]
    p = JudgeSettings(judges=("judge:first",), backend="fake", verdict="logprobs", protocol="pairwise", baseline="b")
    ab, ba = build_jobs({"t": [item]}, p, "judge:first", judge_chat_setup("fake", "judge:first", {}))
    assert ab.request.context.endswith("<|im_start|>assistant\n最终裁决：[[") and ab.request.continuations == ("A", "B", "C")
    assert ab.request.key == "t\x00q1\x00AB" and len(ab.requests) == 1


def test_invalid_judge_is_uniform_in_logprobs_mode(tmp_path):
    cand = make_run(tmp_path)
    base = make_run(tmp_path, "base", "fixed:多休息")
    assert judge(cand, "--judge", "judge:invalid", *LP) == 0
    f = results(dirs(cand)[0])["tasks"]["my-qa"]["judges"]["judge:invalid"]
    assert f["invalid_rate"] == 0.0 and f["overall"]["value"] == pytest.approx(3.0)  # uniform: E = 3
    assert all(r["scores"] == {"accuracy": 1, "helpfulness": 1, "safety": 1} for r in recs(dirs(cand)[0]))  # tie -> 1
    assert judge(cand, "--judge", "judge:invalid", "--protocol", "pairwise", "--baseline", str(base), *LP) == 0
    (pw,) = [d for d in dirs(cand) if d.name.startswith("pairwise")]
    g = results(pw)["tasks"]["my-qa"]["judges"]["judge:invalid"]
    assert g["flip_rate"] == 1.0 and g["position_preference"] == 1.0 and g["invalid_comparisons"] == 0
    r = recs(pw)[0]
    assert r["winner"] == "A" and r["probs"] == pytest.approx({"A": 1 / 3, "B": 1 / 3, "C": 1 / 3})
    assert r["verdict_prefix"] == "最终裁决：[[" and r["raw"] == {"A": -1.0, "B": -1.0, "C": -1.0}


def test_mode_is_pinned_and_a_mode_change_is_another_directory(cand, capsys):
    from chimed_eval.judge.store import JudgeSettings

    assert judge(cand, "--judge", "judge:score-4") == 0
    (gen,) = dirs(cand)
    assert gen.name == JudgeSettings(judges=("judge:score-4",), backend="fake").dir_name()
    assert "verdict" not in JudgeSettings(judges=("judge:score-4",), backend="fake").key()  # old hashes kept
    assert "verdict: generate" in capsys.readouterr().out
    assert judge(cand, "--judge", "judge:score-4", *LP) == 0
    (lp,) = [d for d in dirs(cand) if d != gen]
    state = json.loads((lp / "judge.json").read_text(encoding="utf-8"))
    assert state["verdict"] == "logprobs" and state["settings"]["verdict"] == "logprobs"
    assert "max_new_tokens" not in state["settings"]
    assert json.loads((gen / "judge.json").read_text(encoding="utf-8"))["verdict"] == "generate"
    assert results(lp)["verdict"] == "logprobs" and "expected" in recs(lp)[0] and "expected" not in recs(gen)[0]
    assert judge(cand, "--judge", "judge:score-4", *LP, "--max-new-tokens", "8") == 0  # unused: same directory
    assert len(dirs(cand)) == 2
    assert main(["report", str(cand)]) == 0
    html = (cand / "report.html").read_text(encoding="utf-8")
    assert "logprobs (G-Eval)" in html and "generate (parsed text)" in html and "理由：（略）" in html


def test_resume_and_cache_in_logprobs_mode(cand, tmp_path, monkeypatch, nt_calls):
    fresh = tmp_path / "fresh"
    shutil.copytree(cand, fresh)
    cache = tmp_path / "cache"
    args = ["--judge", "judge:longer", "--batch-size", "2", *LP]
    assert judge(fresh, *args, "--cache", str(cache)) == 0
    expected = (dirs(fresh)[0] / "records" / "my-qa.jsonl").read_bytes()
    assert nt_calls == [6, 6]  # two batches of two items, three criteria each
    nt_calls.clear()
    orig = FakeBackend.next_token  # counts into nt_calls

    def dies_on_second_batch(self, requests):
        if len(nt_calls) == 1:
            raise KeyboardInterrupt
        return orig(self, requests)

    monkeypatch.setattr(FakeBackend, "next_token", dies_on_second_batch)
    assert judge(cand, *args) == 130
    assert len(recs(dirs(cand)[0])) == 2
    monkeypatch.setattr(FakeBackend, "next_token", orig)
    nt_calls.clear()
    assert judge(cand, *args) == 0 and nt_calls == [6]  # only the missing batch
    assert (dirs(cand)[0] / "records" / "my-qa.jsonl").read_bytes() == expected
    other = tmp_path / "other"
    shutil.copytree(fresh, other)
    shutil.rmtree(other / "judge")
    nt_calls.clear()
    assert judge(other, *args, "--cache", str(cache)) == 0 and nt_calls == []  # every verdict from the cache
    assert (dirs(other)[0] / "records" / "my-qa.jsonl").read_bytes() == expected


def test_backends_without_next_token_logprobs_are_refused(cand, monkeypatch, capsys):
    assert main(["judge", str(cand), "--judge", "gpt-4o", "--judge-backend", "openai", "--no-progress", *LP]) == 2
    assert "use --verdict generate" in capsys.readouterr().err and not (cand / "judge").exists()

    def no_logprobs(self, requests):
        raise ConfigError("this server returned no logprobs")

    monkeypatch.setattr(FakeBackend, "next_token", no_logprobs)
    assert judge(cand, "--judge", "judge:first", *LP) == 2
    err = capsys.readouterr().err
    assert "cannot return next-token log-probabilities (this server returned no logprobs)" in err
    assert "use --verdict generate" in err


def test_run_with_judge_verdict_logprobs(tmp_path, capsys):
    f = tmp_path / "qa.jsonl"
    f.write_text(json.dumps({"问题": "头痛怎么办？", "回答": "多休息。"}, ensure_ascii=False) + "\n", encoding="utf-8")
    out = tmp_path / "o"
    assert main(["run", "--no-progress", "--backend", "fake", "--model", "oracle", "--tasks", "qa", "--task-args",
                 f"path={f},question=问题,answer=回答,name=my-qa", "--output", str(out), "--judge", "judge:score-3",
                 "--judge-backend", "fake", "--judge-verdict", "logprobs"]) == 0
    assert "verdict: logprobs (G-Eval)" in capsys.readouterr().out
    assert results(dirs(out)[0])["verdict"] == "logprobs"
    assert main(["run", "--no-progress", "--backend", "fake", "--model", "oracle", "--tasks", "qa", "--task-args",
                 f"path={f},question=问题,answer=回答,name=my-qa", "--output", str(tmp_path / "o2"),
                 "--judge-verdict", "logprobs"]) == 2
    assert "need --judge MODEL" in capsys.readouterr().err


CHATML = ("{{ bos_token }}{% for m in messages %}<|im_start|>{{ m['role'] }}\n{{ m['content'] }}<|im_end|>\n"
          "{% endfor %}{% if add_generation_prompt %}<|im_start|>assistant\n{% endif %}")


@pytest.mark.slow
def test_hf_judge_with_a_chat_template_scores_the_rendered_turn_plus_prefix(cand, tiny_model, tmp_path):
    """The real path: the tiny model with a chat template (its bos_token in the template). The
    request context is encoded with add_special_tokens=False as generate mode does: one BOS, the
    rendered turn's tokens unchanged by the prefix, and each candidate's log-probability equal to
    transformers' own log-softmax at the last position."""
    import torch
    from transformers import AutoModelForCausalLM, AutoTokenizer

    model_dir = tmp_path / "tiny-chat"
    shutil.copytree(tiny_model, model_dir)
    cfg_path = model_dir / "tokenizer_config.json"
    cfg = json.loads(cfg_path.read_text(encoding="utf-8"))
    cfg["chat_template"] = CHATML
    cfg_path.write_text(json.dumps(cfg), encoding="utf-8")
    assert main(["judge", str(cand), "--judge", str(model_dir), "--judge-backend", "hf", "--no-cache", "--no-progress",
                 "--device", "cpu", "--limit", "2", *LP]) == 0
    (d,) = dirs(cand)
    assert "chat template" in json.loads((d / "judge.json").read_text(encoding="utf-8"))["chat_templates"][str(model_dir)]
    rows = recs(d)
    assert len(rows) == 2 and all(r["valid"] for r in rows)
    assert all(sum(r["probs"]["safety"].values()) == pytest.approx(1.0) for r in rows)
    tok = AutoTokenizer.from_pretrained(model_dir)
    model = AutoModelForCausalLM.from_pretrained(model_dir).eval()
    r = rows[0]
    turn = tok.apply_chat_template([{"role": "user", "content": r["prompt"]}], tokenize=False, add_generation_prompt=True)
    ids_turn = tok.encode(turn, add_special_tokens=False)
    ids = tok.encode(turn + r["verdict_prefix"]["accuracy"], add_special_tokens=False)
    assert ids[:len(ids_turn)] == ids_turn and ids.count(tok.bos_token_id) == 1 and ids[0] == tok.bos_token_id
    with torch.no_grad():
        lp = torch.log_softmax(model(torch.tensor([ids])).logits[0, -1].float(), -1)
    for c in "12345":
        assert r["raw"]["accuracy"][c] == pytest.approx(lp[tok.encode(c)[-1]].item(), abs=1e-4)


@pytest.mark.slow
def test_hf_judge_without_chat_template_in_logprobs_mode(cand, tiny_model):
    assert main(["judge", str(cand), "--judge", str(tiny_model), "--judge-backend", "hf", "--no-cache",
                 "--no-progress", "--device", "cpu", "--limit", "2", "--protocol", "pointwise", *LP]) == 0
    res = results(dirs(cand)[0])["tasks"]["my-qa"]["judges"][str(tiny_model)]
    assert res["n"] == 2 and res["n_valid"] == 2 and 1.0 <= res["overall"]["value"] <= 5.0
