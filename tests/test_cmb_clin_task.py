"""The cmb-clin task: 208 questions in 74 cases asked round by round with the model's own earlier
answers in the prompt, BLEU/ROUGE and a judge's four criteria, option questions as multiple choice,
resume per request."""

from __future__ import annotations

import json
import os
from pathlib import Path

import pytest

from chimed_eval.cli.app import main

DATA = Path(os.environ.get("CHIMED_EVAL_SHARED_DATA", "/work/shared/data"))
pytestmark = pytest.mark.skipif(not (DATA / "cmb-clin" / "CMB-Clin-qa.json").is_file(),
                                reason="CMB-Clin not in the shared data")


def _records(out: Path) -> list[dict]:
    return [json.loads(x) for x in (out / "samples" / "cmb-clin.jsonl").read_text(encoding="utf-8").splitlines()]


def _metrics(out: Path) -> dict[str, dict]:
    res = json.loads((out / "results.json").read_text(encoding="utf-8"))
    task = res["tasks"]["cmb-clin"]
    return {m["name"]: m for m in task["metrics"]} | {"_subjects": task.get("subjects")}


def test_done_when_oracle_with_fake_judge_covers_208_questions_74_cases(tmp_path, capsys):
    out = tmp_path / "run"
    assert main(["run", "--backend", "fake", "--model", "oracle", "--tasks", "cmb-clin", "--data-dir", str(DATA),
                 "--output", str(out), "--no-progress", "--judge", "judge:score-4", "--judge-backend", "fake"]) == 0
    m = _metrics(out)
    assert m["case_count"]["value"] == 74 and m["rougeL_char"]["n"] == 208
    assert m["rougeL_char"]["value"] == pytest.approx(100) and m["sacrebleu4_cum"]["value"] == pytest.approx(100)
    assert m["paper_bleu1_cum"]["value"] == pytest.approx(100)
    assert (m["choice_acc"]["value"], m["choice_acc"]["n"]) == (100.0, 7)
    assert len(m["_subjects"]) == 74 and sum(v["questions"] for v in m["_subjects"].values()) == 208
    assert m["_subjects"]["6"] == {"questions": 3, "rougeL_char": pytest.approx(100)}
    (jres,) = (out / "judge").glob("*/results.json")
    j = json.loads(jres.read_text(encoding="utf-8"))
    assert j["rubric"] == "cmb-clin"  # the authors' four criteria by default for this task
    f = j["tasks"]["cmb-clin"]["judges"]["judge:score-4"]
    assert f["n"] == 208 and f["overall"]["value"] == 4.0
    assert {c: v["value"] for c, v in f["criteria"].items()} == {
        "fluency": 4.0, "relevance": 4.0, "completeness": 4.0, "proficiency": 4.0}
    printed = capsys.readouterr().out
    assert "criteria (1-5): fluency 4.00" in printed and "choice_acc" in printed


def test_later_questions_hold_the_models_own_earlier_answers(tmp_path):
    out = tmp_path / "run"
    assert main(["run", "--backend", "fake", "--model", "fixed:我的回答甲", "--tasks", "cmb-clin", "--data-dir",
                 str(DATA), "--output", str(out), "--no-progress", "--limit", "7"]) == 0
    recs = {r["id"]: r for r in _records(out)}
    first, second, third = recs["cmb-clin-0-1"], recs["cmb-clin-0-2"], recs["cmb-clin-0-3"]
    assert "我的回答甲" not in first["prompt"] and "腹外疝" not in first["prompt"]  # no title leak
    assert "右下腹痛并自扪及包块3小时" in first["prompt"]  # the case record
    assert second["prompt"].count("[bot]:我的回答甲") == 1 and third["prompt"].count("[bot]:我的回答甲") == 2
    assert second["prompt"].startswith(first["prompt"][:-len("[bot]:")])  # the same conversation, continued
    assert "诊断及诊断依据" in third["prompt"] and "鉴别诊断" in third["prompt"]
    assert (second["extra"]["case"], second["extra"]["question_index"]) == ("0", 1)


def test_option_questions_are_read_as_multiple_choice(tmp_path):
    out = tmp_path / "run"
    assert main(["run", "--backend", "fake", "--model", "fixed:答案是A", "--tasks", "cmb-clin", "--data-dir",
                 str(DATA), "--output", str(out), "--no-progress"]) == 0
    choice = {r["id"]: r["extra"]["choice"] for r in _records(out) if "choice" in r["extra"]}
    assert len(choice) == 7 and {c["gold"] for c in choice.values()} == {"A", "B", "C", "D"}
    assert all(c["pred"] == "A" for c in choice.values())
    m = _metrics(out)["choice_acc"]
    assert m["n"] == 7 and m["value"] == pytest.approx(100 * 3 / 7)  # 6-2, 71-1, 71-2 are A


def test_resume_rebuilds_later_rounds_from_saved_answers(tmp_path):
    out = tmp_path / "run"
    args = ["run", "--backend", "fake", "--model", "oracle", "--tasks", "cmb-clin", "--data-dir", str(DATA),
            "--output", str(out), "--no-progress", "--limit", "20"]
    assert main(args) == 0
    full = (out / "samples" / "cmb-clin.jsonl").read_text(encoding="utf-8")
    results = json.loads((out / "results.json").read_text(encoding="utf-8"))
    # as if killed during round 2: round 1 and part of round 2 recorded (append order), the rest not
    lines = [json.loads(x) for x in full.splitlines()]
    kept = [r for r in lines if r["extra"]["question_index"] == 0][:5]
    (out / "samples" / "cmb-clin.jsonl").write_text("".join(json.dumps(r, ensure_ascii=False) + "\n" for r in kept),
                                                     encoding="utf-8")
    (out / "results.json").unlink()
    assert main(args) == 0
    assert (out / "samples" / "cmb-clin.jsonl").read_text(encoding="utf-8") == full
    again = json.loads((out / "results.json").read_text(encoding="utf-8"))
    assert again["tasks"] == results["tasks"]


def test_a_changed_earlier_answer_is_refused_on_resume(tmp_path, capsys):
    out = tmp_path / "run"
    args = ["run", "--backend", "fake", "--model", "oracle", "--tasks", "cmb-clin", "--data-dir", str(DATA),
            "--output", str(out), "--no-progress", "--limit", "3"]
    assert main(args) == 0
    lines = [json.loads(x) for x in (out / "samples" / "cmb-clin.jsonl").read_text(encoding="utf-8").splitlines()]
    lines[0]["generation"] = "另一个回答"  # question 1's saved answer no longer matches question 2's prompt
    (out / "samples" / "cmb-clin.jsonl").write_text("".join(json.dumps(r, ensure_ascii=False) + "\n" for r in lines),
                                                     encoding="utf-8")
    assert main(args) == 2
    assert "cmb-clin-0-2" in capsys.readouterr().err


def test_multi_turn_refuses_sharding(tmp_path, capsys):
    assert main(["run", "--backend", "fake", "--model", "oracle", "--tasks", "cmb-clin", "--data-dir", str(DATA),
                 "--output", str(tmp_path / "o"), "--no-progress", "--shard", "0/2"]) == 2
    assert "multi-turn" in capsys.readouterr().err


def test_reachable_from_evaluate_in_memory():
    import chimed_eval

    run = chimed_eval.evaluate("oracle", "cmb-clin", backend="fake", data_dir=DATA, limit=10, progress=False)
    (t,) = run.tasks
    assert t.task == "cmb-clin" and t.n == 10
    assert {m.name: m.value for m in t.metrics}["rougeL_char"] == pytest.approx(100)
