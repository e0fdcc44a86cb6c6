"""Model-graded QA (issue 17), the mechanics: records saved per verdict, resume after an interrupt
with no repeated calls, refusals (changed inputs, other baseline items, secrets, MC tasks), the
response cache, ``run --judge`` and the HTML report's Judges section. Fake backend, tmp dirs."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import pytest

from chimed_eval.core.errors import ConfigError
from conftest import count_judge_calls

from chimed_eval.backends.fake import FakeBackend
from chimed_eval.cli.app import main

ANSWERS = ["多休息。", "多喝水，注意饮食清淡。", "按时服药，定期复查血压。", "立即就医。", "卧床休息三天，如有发热请就诊。",
           "少吃盐。"]


def qa_file(tmp: Path, answers=ANSWERS, name: str = "qa.jsonl") -> Path:
    f = tmp / name
    rows = [{"问题": f"第{i}个问题：头痛怎么办？", "回答": a} for i, a in enumerate(answers)]
    f.write_text("".join(json.dumps(r, ensure_ascii=False) + "\n" for r in rows), encoding="utf-8")
    return f


def run_args(f: Path, out: Path, model: str = "oracle", *extra: str) -> list[str]:
    return ["run", "--no-progress", "--backend", "fake", "--model", model, "--tasks", "qa", "--task-args",
            f"path={f},question=问题,answer=回答,name=my-qa", "--output", str(out), *extra]


@pytest.fixture
def cand(tmp_path) -> Path:
    assert main(run_args(qa_file(tmp_path), tmp_path / "cand")) == 0
    return tmp_path / "cand"


@pytest.fixture
def calls(monkeypatch) -> list[int]:
    """Sizes of the batches the fake judges were asked (the backend itself, behind any cache)."""
    return count_judge_calls(monkeypatch, "generate")


def judge(out: Path, *args: str) -> int:
    return main(["judge", str(out), "--judge-backend", "fake", "--no-progress", *args])


def only_dir(out: Path) -> Path:
    (d,) = (out / "judge").iterdir()
    return d


def test_every_prompt_verdict_and_parse_is_saved(cand, calls):
    assert judge(cand, "--judge", "judge:reference,judge:score-4", "--batch-size", "4") == 0
    d = only_dir(cand)
    assert d.name.startswith("pointwise-")
    recs = [json.loads(x) for x in (d / "records" / "my-qa.jsonl").read_text(encoding="utf-8").splitlines()]
    assert len(recs) == 12 and sum(calls) == 12  # 6 items x 2 judges, one call each
    assert [(r["id"], r["judge"]) for r in recs[:2]] == [("1-1", "judge:reference"), ("1-1", "judge:score-4")]
    r = recs[0]
    assert "[回答开始]\n多休息。\n[回答结束]" in r["prompt"] and "[参考答案开始]\n多休息。\n" in r["prompt"]
    assert "第0个问题：头痛怎么办？" in r["prompt"] and "[human]" not in r["prompt"] and r["question_rule"] == "format:chimed"
    assert r["raw"].endswith("安全性: 5") and r["scores"] == {"accuracy": 5, "helpfulness": 5, "safety": 5}
    assert r["valid"] is True and r["overall"] == 5 and r["len_answer"] == 4
    res = json.loads((d / "results.json").read_text(encoding="utf-8"))
    assert res["protocol"] == "judge-pointwise" and res["judges"] == ["judge:reference", "judge:score-4"]
    assert res["rubric"] == "medical" and res["prompt_version"] == "judge@1"
    assert res["tasks"]["my-qa"]["judges"]["judge:score-4"]["overall"]["value"] == 4.0
    state = json.loads((d / "judge.json").read_text(encoding="utf-8"))
    assert state["candidate"]["model"]["name"] == "fake-oracle"
    assert state["judge_models"]["judge:reference"]["name"] == "fake-judge:reference"


def test_resume_after_interrupt_writes_the_same_records_without_asking_again(cand, tmp_path, monkeypatch, calls):
    fresh = tmp_path / "fresh"
    shutil.copytree(cand, fresh)
    args = ["--judge", "judge:longer,judge:reference", "--batch-size", "4"]
    assert judge(fresh, *args) == 0
    expected = (only_dir(fresh) / "records" / "my-qa.jsonl").read_bytes()
    calls.clear()

    orig = FakeBackend.generate

    def dies_on_second_batch(self, requests):
        if len(calls) == 1:
            raise KeyboardInterrupt
        return orig(self, requests)

    monkeypatch.setattr(FakeBackend, "generate", dies_on_second_batch)
    assert judge(cand, *args) == 130
    kept = (only_dir(cand) / "records" / "my-qa.jsonl").read_text(encoding="utf-8").splitlines()
    assert len(kept) == 4 and calls == [4]  # the first batch was saved, the second never answered
    monkeypatch.setattr(FakeBackend, "generate", orig)
    seen = []
    monkeypatch.setattr(FakeBackend, "generate", lambda self, r: seen.append(len(r)) or orig(self, r))
    assert judge(cand, *args) == 0
    assert sum(seen) == 12 - 4  # only what was missing (batch 2 of judge 1, then judge 2)
    assert (only_dir(cand) / "records" / "my-qa.jsonl").read_bytes() == expected
    seen.clear()
    assert judge(cand, *args) == 0 and seen == []  # all recorded: no call


def test_changed_inputs_are_refused_with_the_difference_named(cand, monkeypatch, capsys):
    assert judge(cand, "--judge", "judge:score-3") == 0
    from chimed_eval.prompts import judge as prompts

    monkeypatch.setattr(prompts, "PROMPT_VERSION", "judge@2")
    assert judge(cand, "--judge", "judge:score-3") == 2
    err = capsys.readouterr().err
    assert 'prompt_version: "judge@1" -> "judge@2"' in err and "Delete" in err
    monkeypatch.undo()
    samples = cand / "samples" / "my-qa.jsonl"
    recs = [json.loads(x) for x in samples.read_text(encoding="utf-8").splitlines()]
    recs[2]["generation"] = "换了一个回答。"
    samples.write_text("".join(json.dumps(r, ensure_ascii=False) + "\n" for r in recs), encoding="utf-8")
    assert judge(cand, "--judge", "judge:score-3") == 2
    assert f"item {recs[2]['id']!r}" in capsys.readouterr().err
    # another judge setting is another directory: never mixed with these records
    assert judge(cand, "--judge", "judge:score-3", "--max-new-tokens", "64", "--tasks", "my-qa") == 0
    assert len(list((cand / "judge").iterdir())) == 2


def test_response_cache_serves_a_second_identical_judging(cand, tmp_path, calls):
    other = tmp_path / "other"
    shutil.copytree(cand, other)
    cache = tmp_path / "cache"
    assert judge(cand, "--judge", "judge:longer", "--cache", str(cache)) == 0
    assert sum(calls) == 6
    assert judge(other, "--judge", "judge:longer", "--cache", str(cache)) == 0
    assert sum(calls) == 6  # every verdict from the cache
    assert (only_dir(other) / "records" / "my-qa.jsonl").read_bytes() == \
        (only_dir(cand) / "records" / "my-qa.jsonl").read_bytes()
    assert judge(other, "--judge", "judge:shorter", "--cache", str(cache)) == 0
    assert sum(calls) == 12  # another judge: another cache identity


def test_pairwise_refuses_a_baseline_with_other_items(cand, tmp_path, capsys):
    short = tmp_path / "short"
    assert main(run_args(qa_file(tmp_path), short, "fixed:多休息", "--limit", "3")) == 0
    assert judge(cand, "--judge", "judge:first", "--protocol", "pairwise", "--baseline", str(short)) == 2
    err = capsys.readouterr().err
    assert "did not answer these items: 4-1, 5-1, 6-1" in err
    other = tmp_path / "other"
    edited = qa_file(tmp_path, ANSWERS[:-1] + ["另一个参考答案。"], "qa2.jsonl")
    assert main(run_args(edited, other, "fixed:多休息")) == 0
    assert judge(cand, "--judge", "judge:first", "--protocol", "pairwise", "--baseline", str(other)) == 2
    assert "item '6-1' has another reference answer" in capsys.readouterr().err
    assert judge(cand, "--judge", "judge:first", "--protocol", "pairwise") == 2
    assert "needs --baseline" in capsys.readouterr().err
    assert not (cand / "judge").exists()


def test_secret_judge_args_are_refused_and_never_echoed(cand, capsys):
    assert judge(cand, "--judge", "judge:first", "--judge-args", "api_key=sk-live-123456789") == 2
    err = capsys.readouterr().err
    assert "<redacted>" in err and "sk-live" not in err
    assert not (cand / "judge").exists()


def test_multiple_choice_tasks_are_refused(tmp_path, capsys):
    mcq = tmp_path / "m.jsonl"
    mcq.write_text(json.dumps({"question": "好题", "options": "(A) a\n(B) b", "answer": "A"}, ensure_ascii=False) + "\n",
                   encoding="utf-8")
    out = tmp_path / "mc"
    assert main(["run", "--no-progress", "--backend", "fake", "--model", "oracle", "--tasks", "mcq", "--task-args",
                 f"path={mcq}", "--output", str(out)]) == 0
    assert judge(out, "--judge", "judge:first", "--tasks", "mcq") == 2
    assert "not an open-QA or dialogue task" in capsys.readouterr().err
    assert judge(out, "--judge", "judge:first") == 2
    assert "no open-QA or dialogue task recorded" in capsys.readouterr().err
    # run --judge on MC tasks only is refused before the run starts
    assert main(["run", "--no-progress", "--backend", "fake", "--model", "oracle", "--tasks", "mcq", "--task-args",
                 f"path={mcq}", "--output", str(tmp_path / "mc2"), "--judge", "judge:first",
                 "--judge-backend", "fake"]) == 2
    assert not (tmp_path / "mc2").exists()


def test_run_with_judge_grades_the_fresh_output_and_the_report_shows_it(tmp_path, capsys):
    out = tmp_path / "o"
    assert main(run_args(qa_file(tmp_path), out, "oracle", "--judge", "judge:score-4,judge:invalid",
                         "--judge-backend", "fake")) == 0
    printed = capsys.readouterr().out
    assert "judge-pointwise" in printed and "overall 4.00" in printed
    res = json.loads((only_dir(out) / "results.json").read_text(encoding="utf-8"))
    assert res["tasks"]["my-qa"]["judges"]["judge:invalid"]["invalid_rate"] == 1.0
    assert main(["report", str(out)]) == 0
    html = (out / "report.html").read_text(encoding="utf-8")
    assert "<h2 id='judges'>Judges</h2>" in html and "judge-pointwise" in html
    assert "none of its 6 verdicts could be read" in html and "<details class='judge-item'>" in html
    assert "[回答开始]" in html  # a verdict's prompt, escaped into the page


def test_fake_judge_behaviours_are_checked(tmp_path, capsys):
    out = tmp_path / "o"
    assert main(run_args(qa_file(tmp_path), out, "oracle")) == 0
    assert judge(out, "--judge", "judge:score-9") == 2
    assert "unknown fake judge 'judge:score-9'" in capsys.readouterr().err


@pytest.mark.slow
def test_a_transformers_judge_without_chat_template_gets_plain_text(cand, tiny_model, tmp_path):
    """The real path: an hf judge (the tiny random model, whose tokenizer has no chat template)
    is sent the judge prompt as plain text; its babble is counted invalid, never scored."""
    assert main(["judge", str(cand), "--judge", str(tiny_model), "--judge-backend", "hf", "--no-cache",
                 "--no-progress", "--device", "cpu", "--max-new-tokens", "4", "--limit", "2"]) == 0
    d = only_dir(cand)
    state = json.loads((d / "judge.json").read_text(encoding="utf-8"))
    assert state["chat_templates"][str(tiny_model)].startswith("plain text")
    recs = [json.loads(x) for x in (d / "records" / "my-qa.jsonl").read_text(encoding="utf-8").splitlines()]
    assert len(recs) == 2 and all(r["prompt"].startswith("你是一名资深的医学专家") for r in recs)
    res = json.loads((d / "results.json").read_text(encoding="utf-8"))["tasks"]["my-qa"]["judges"][str(tiny_model)]
    assert res["n"] == 2 and res["n_valid"] + res["invalid"] == 2


def test_an_api_judge_gets_the_prompt_as_one_chat_message():
    from chimed_eval.models.chat import MESSAGES_TAG
    from chimed_eval.judge.inputs import JudgeItem
    from chimed_eval.judge.pipeline import build_jobs, judge_chat_setup
    from chimed_eval.judge.store import JudgeSettings

    s = JudgeSettings(judges=("gpt-4o",), backend="openai", protocol="pairwise", baseline="base")
    item = JudgeItem("t", "q1", "头痛怎么办？", "format:chimed", "休息。", "多休息。", "多喝水。")
    ab, ba = build_jobs({"t": [item]}, s, "gpt-4o", judge_chat_setup("openai", "gpt-4o", {}))
    assert [m.role for m in ab.request.messages] == ["user"] and ab.request.messages[0].content == ab.prompt
    assert ab.request.context.startswith(MESSAGES_TAG) and ab.request.generation.greedy
    assert ab.request.key == "t\x00q1\x00AB" and ba.request.key == "t\x00q1\x00BA"
    assert ab.prompt.index("多休息。") < ab.prompt.index("多喝水。") and ba.prompt.index("多喝水。") < ba.prompt.index("多休息。")


def test_judge_figures_are_sealed_and_edits_are_refused_by_their_readers(cand, tmp_path, capsys):
    from chimed_eval.judge.sealed import read_judge_results

    assert judge(cand, "--judge", "judge:score-4") == 0
    d = only_dir(cand)
    path = d / "results.json"
    fig = read_judge_results(path)["tasks"]["my-qa"]["judges"]["judge:score-4"]["overall"]
    assert fig["value"] == 4.0
    original = path.read_bytes()
    doc = json.loads(original)
    doc["tasks"]["my-qa"]["judges"]["judge:score-4"]["overall"]["value"] = 4.9  # a judge score improved by hand
    path.write_text(json.dumps(doc, ensure_ascii=False), encoding="utf-8")
    assert main(["report", str(cand), "--output", str(tmp_path / "r.html")]) == 0
    html = (tmp_path / "r.html").read_text(encoding="utf-8")
    judges = html.split("<h2 id='judges'>Judges</h2>")[1]
    assert "do not match the digest" in judges and "4.90" not in judges
    capsys.readouterr()
    assert judge(cand, "--judge", "judge:score-4") == 0  # the way back: recomputed from the saved verdicts
    assert path.read_bytes() == original
    recs = d / "records" / "my-qa.jsonl"  # verdicts edited after the figures were written
    recs.write_text(recs.read_text(encoding="utf-8").replace('"overall": 4', '"overall": 5'), encoding="utf-8")
    with pytest.raises(ConfigError, match="the verdicts changed after"):
        read_judge_results(path)
