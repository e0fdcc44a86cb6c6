"""Simulated consultations (issue 26 item 3): record sections and facts, the doctor's turns, the
fake doctors and patients, the simulator audit, per-turn resume, the CLI and ``evaluate()``."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

import chimed_eval
from chimed_eval.backends.fake import FakeBackend
from chimed_eval.cli.app import main
from chimed_eval.evidence.consult import (answer_test_order, elicited, history_facts, normalise_diagnosis,
                                          reference_diagnosis, split_record)
from chimed_eval.extract.consult import audit_verdicts, diagnosis_verdict, doctor_action, plan_scores

CASE = ("现病史\n（1）病史摘要\n     病人，男，49岁，3小时前解大便后出现右下腹疼痛，右下腹可触及一包块，既往体健。\n"
        "（2）主诉\n     右下腹痛并自扪及包块3小时。\n\n体格检查\n体温： T 37.8℃，P 101次／分，腹软，于右侧腹股沟区可扪及"
        "一圆形肿块，约4cm×4cm大小，有压痛。\n\n辅助检查\n（1）实验室检查\n     血常规：WBC 5.0×109／L，N 78％。\n"
        "（2）多普勒超声检查\n     沿腹股沟纵切可见一多层分布的混合回声区，远端膨大。\n（3）腹部X线检查\n     可见阶梯状液气平。")
CASE2 = ("现病史\n病史摘要\n女，30岁，反复咳嗽咳痰2周，伴低热，夜间加重，无咯血。\n"
         "查体：体温38.1℃，右下肺可闻及湿啰音。\n辅助检查：胸片示右下肺片状阴影，血常规白细胞12×109/L。")


def write_cases(path: Path) -> Path:
    doc = [{"id": "0", "title": "腹股沟疝", "description": CASE, "QA_pairs": [
               {"question": "简述该病人的诊断及诊断依据。", "answer": "诊断：嵌顿性腹股沟斜疝合并肠梗阻。\n诊断依据：……"},
               {"question": "简述治疗原则。", "answer": "急诊手术，疝囊高位结扎，必要时切除坏死肠管。"}]},
           {"id": "1", "title": "肺炎", "description": CASE2, "QA_pairs": [
               {"question": "该病人的诊断是什么？", "answer": "社区获得性肺炎。"}]}]
    path.write_text(json.dumps(doc, ensure_ascii=False), encoding="utf-8")
    return path


def run(tmp_path: Path, doctor: str, patient: str, *extra: str, out: str = "out") -> dict:
    cases = write_cases(tmp_path / "cases.json")
    assert main(["run", "--no-progress", "--backend", "fake", "--model", doctor, "--tasks", "consult",
                 "--task-args", f"path={cases}", "--patient-backend", "fake", "--patient-model", patient,
                 "--output", str(tmp_path / out), *extra]) == 0
    doc = json.loads((tmp_path / out / "results.json").read_text(encoding="utf-8"))
    return {m["name"]: m for m in doc["tasks"]["consult"]["metrics"]}


def test_record_splits_into_history_examination_and_tests():
    s = split_record(CASE)
    assert "3小时前解大便后出现右下腹疼痛" in s.history and "体温" not in s.history
    assert [h for h, _ in s.examination] == ["体格检查"]
    assert [h for h, _ in s.tests] == ["实验室检查", "多普勒超声检查", "腹部X线检查"]
    inline = split_record(CASE2)  # 查体：... / 辅助检查：... on one line each
    assert inline.examination[0][0] == "查体" and "胸片" in inline.tests[0][1]
    facts = history_facts(s.history)
    assert facts[:3] == ["病人", "男", "49岁"] or "3小时前解大便后出现右下腹疼痛" in facts
    assert len(facts) == len(set(facts))
    assert [h for h, _ in answer_test_order("血常规", s)] == ["实验室检查"]
    assert [h for h, _ in answer_test_order("体格检查", s)] == ["体格检查"]
    assert len(answer_test_order("全部检查", s)) == 4
    assert answer_test_order("心电图", s) == []


def test_coverage_rule_is_half_the_bigrams():
    fact = "右下腹可触及一包块"
    assert elicited([fact], ["右下腹可以摸到一包块"]) == [True]  # 右下 下腹 腹可 一包 包块: 5 of 8 bigrams
    assert elicited([fact], ["我右下腹能摸到一个包块"]) == [False]  # 右下 下腹 包块: 3 of 8
    assert elicited([fact], ["我肚子疼"]) == [False]


def test_reference_diagnosis_and_normalisation():
    qa = [("简述该病人的诊断及诊断依据。", "（1）诊断：胃食管反流病；反流性哮喘\n（2）诊断依据：…")]
    assert reference_diagnosis(qa) == ("胃食管反流病；反流性哮喘", "diagnosis-line")
    assert reference_diagnosis([("该病人的诊断是什么？", "社区获得性肺炎。\n解析")]) == ("社区获得性肺炎", "first-sentence")
    assert reference_diagnosis([("哪项检查优先\nA. CT\nB. 超声", "答案：B"), ("诊断？", "诊断为：阑尾炎")])[0] == "阑尾炎"
    assert normalise_diagnosis(" 初步诊断： 1. 急性 阑尾炎。") == "急性阑尾炎"
    assert reference_diagnosis([("诊断？", "诊断：左胫骨平台骨折。左胫骨平台骨折会出现…")])[0] == "左胫骨平台骨折"


@pytest.mark.parametrize("text, expected", [
    ("问：哪里不舒服？", ("ask", "哪里不舒服？", "")),
    ("检查：血常规、腹部超声", ("tests", "血常规、腹部超声", "")),
    ("诊断：急性阑尾炎\n计划：急诊手术", ("diagnose", "急性阑尾炎", "急诊手术")),
    ("好的。诊断：肺炎 计划：抗感染", ("diagnose", "肺炎", "抗感染")),
    ("问：疼多久了？\n病人：诊断：我编的", ("ask", "疼多久了？", "")),  # the model's invented patient line is cut
])
def test_doctor_turns(text, expected):
    assert doctor_action(text) == expected


def test_verdict_parsing():
    assert diagnosis_verdict("一致") == 1 and diagnosis_verdict("不一致") == 0 and diagnosis_verdict("嗯") is None
    assert plan_scores("检查合理性：4\n治疗正确性：2", ("检查合理性", "治疗正确性", "安全性")) == {
        "检查合理性": 4, "治疗正确性": 2, "安全性": None}
    assert audit_verdicts("泄露：是\n矛盾：否\n例子：血常规正常", ("泄露", "矛盾", "编造")) == (
        {"泄露": True, "矛盾": False, "编造": None}, "血常规正常")


def test_done_when_fake_consultation_gives_accuracy_coverage_turns_and_leak_rate(tmp_path):
    faithful = run(tmp_path, "doctor:thorough", "patient:faithful", "--max-turns", "8", out="a")
    assert faithful["coverage"]["value"] == pytest.approx(100.0)  # every history fact told and asked for
    assert faithful["turns_mean"]["value"] > 2
    assert faithful["diagnosis_acc"]["value"] == 0.0 and faithful["diagnosis_acc"]["ci_method"] == "wilson"
    assert faithful["simulator_leak_rate"]["value"] == 0.0 and faithful["simulator_leak_flagged"]["value"] == 0.0
    assert faithful["simulator_invention_rate"]["value"] == 0.0

    leaky = run(tmp_path, "doctor:thorough", "patient:leaky", "--max-turns", "8", out="b")
    assert leaky["simulator_leak_rate"]["value"] == 100.0  # the leaking patient drives it to 100
    assert leaky["simulator_leak_rate"]["ci_low"] < 100.0 and leaky["simulator_leak_flagged"]["value"] == 1.0

    silent = run(tmp_path, "doctor:silent", "patient:faithful", out="c")
    assert silent["coverage"]["value"] == 0.0 and silent["turns_mean"]["value"] == 1.0

    oracle = run(tmp_path, "oracle", "patient:faithful", out="d")  # the reference diagnosis at once
    assert oracle["diagnosis_acc"]["value"] == 100.0 and oracle["plan_score"]["value"] > 50


def test_transcripts_are_saved_and_the_budget_ends_a_case(tmp_path):
    metrics = run(tmp_path, "fixed:问：哪里不舒服？", "patient:faithful", "--max-turns", "2")  # never diagnoses
    assert metrics["budget_exhausted_rate"]["value"] == 100.0 and metrics["diagnosis_acc"]["value"] == 0.0
    recs = [json.loads(x) for x in (tmp_path / "out" / "samples" / "consult.jsonl").read_text().splitlines()]
    assert [t["role"] for t in recs[0]["extra"]["transcript"]] == ["doctor", "patient", "doctor"]
    assert recs[0]["extra"]["transcript"][1]["text"] == "3小时前解大便后出现右下腹疼痛，右下腹可触及一包块。"  # two facts
    assert set(recs[0]["extra"]["verdicts"]) == {"diagnosis", "plan", "audit"}
    states = list((tmp_path / "out" / "consult" / "consult").glob("*.json"))
    assert len(states) == 2 and all(json.loads(p.read_text())["ended"] == "budget" for p in states)


class Stops(FakeBackend):
    """A fake doctor that is interrupted at its ``stop_at``-th call (a killed run)."""

    calls_made = 0

    def __init__(self, stop_at: int | None, **kw) -> None:
        super().__init__(model="doctor:thorough", **kw)
        self.stop_at = stop_at

    def generate(self, requests):
        Stops.calls_made += 1
        if self.stop_at is not None and Stops.calls_made >= self.stop_at:
            raise KeyboardInterrupt
        return super().generate(requests)


def test_a_killed_consultation_resumes_at_the_turn_it_reached(tmp_path):
    cases = write_cases(tmp_path / "cases.json")
    opts = dict(task_args={"path": str(cases)}, patient_model="patient:faithful", patient_backend="fake",
                max_turns=8, progress=False)
    whole = chimed_eval.evaluate(Stops(None), ["consult"], output=tmp_path / "whole", **opts)
    Stops.calls_made = 0
    with pytest.raises(KeyboardInterrupt):
        chimed_eval.evaluate(Stops(3), ["consult"], output=tmp_path / "cut", **opts)
    saved = [json.loads(p.read_text()) for p in (tmp_path / "cut" / "consult" / "consult").glob("*.json")]
    assert saved and all(sum(t["role"] == "doctor" for t in s["turns"]) == 2 for s in saved)
    Stops.calls_made = 0
    resumed = chimed_eval.evaluate(Stops(None), ["consult"], output=tmp_path / "cut", **opts)
    total = Stops.calls_made
    Stops.calls_made = 0
    chimed_eval.evaluate(Stops(None), ["consult"], output=tmp_path / "again", **opts)
    assert total < Stops.calls_made  # the two turns already saved were not asked again
    assert [(s.id, s.extra["transcript"]) for s in resumed.samples("consult")] == \
        [(s.id, s.extra["transcript"]) for s in whole.samples("consult")]
    assert [m.value for m in resumed.tasks[0].metrics] == [m.value for m in whole.tasks[0].metrics]


def test_rescoring_a_consultation_needs_no_model(tmp_path):
    run(tmp_path, "doctor:thorough", "patient:leaky", "--max-turns", "6")
    before = json.loads((tmp_path / "out" / "results.json").read_text())["tasks"]["consult"]["metrics"]
    assert main(["score", str(tmp_path / "out")]) == 0
    after = json.loads((tmp_path / "out" / "results.json").read_text())["tasks"]["consult"]["metrics"]
    assert [(m["name"], m["value"]) for m in after] == [(m["name"], m["value"]) for m in before]


@pytest.mark.parametrize("flags, message", [
    ([], "--patient-model"),
    (["--patient-model", "patient:faithful", "--patient-backend", "fake", "--max-turns", "0"], "--max-turns"),
    (["--patient-model", "patient:sneaky", "--patient-backend", "fake"], "patient:faithful"),
])
def test_bad_consultation_flags_exit_2(tmp_path, capsys, flags, message):
    cases = write_cases(tmp_path / "cases.json")
    code = main(["run", "--no-progress", "--backend", "fake", "--model", "doctor:silent", "--tasks", "consult",
                 "--task-args", f"path={cases}", "--output", str(tmp_path / "o"), *flags])
    assert code == 2 and message in capsys.readouterr().err


def test_patient_flags_without_a_consultation_task_are_refused(tmp_path, capsys):
    from conftest import write_exam_csv

    exam = write_exam_csv(tmp_path / "e.csv", 4)
    code = main(["run", "--backend", "fake", "--model", "fixed:A", "--tasks", "mcq", "--task-args", f"path={exam}",
                 "--patient-model", "x", "--output", str(tmp_path / "o")])
    assert code == 2 and "consultation" in capsys.readouterr().err


def test_a_leaking_simulator_is_flagged_in_console_and_report(tmp_path, capsys):
    run(tmp_path, "doctor:thorough", "patient:leaky", "--max-turns", "6")
    assert "FLAGGED: the patient simulator gave away" in capsys.readouterr().out
    assert main(["report", str(tmp_path / "out"), "--output", str(tmp_path / "r.html")]) == 0
    html = (tmp_path / "r.html").read_text(encoding="utf-8")
    assert "Simulator audit (examples)" in html and "我的检查结果：" in html and "FLAGGED" in html
    run(tmp_path, "doctor:thorough", "patient:faithful", "--max-turns", "6", out="ok")
    assert "FLAGGED" not in capsys.readouterr().out


def test_a_doctor_writing_the_patient_part_keeps_only_its_own_words(tmp_path):
    run(tmp_path, "fixed:问：疼吗？\n病人：不疼。诊断：阑尾炎", "patient:faithful", "--max-turns", "1")
    rec = json.loads((tmp_path / "out" / "samples" / "consult.jsonl").read_text().splitlines()[0])
    turn = rec["extra"]["transcript"][0]
    assert turn["text"] == "问：疼吗？" and turn["raw"].endswith("诊断：阑尾炎")  # its invented lines are not believed
    assert rec["extra"]["ended"] == "budget" and rec["prediction"] == ""


def test_value_contradictions_by_rule():
    """The rule reader of 矛盾: a value under the same key and unit as the record's, another number."""
    from chimed_eval.evidence.consult import quantities, value_contradictions

    rec = quantities("女，30岁，反复咳嗽咳痰2周，伴低热。查体：体温38.1℃，血压120/80mmHg。腹痛约3天。", "record")
    assert ("咳痰", "2", "周") in rec and ("体温", "38.1", "℃") in rec and ("年龄", "30", "岁") in rec
    assert ("腹痛", "3", "天") in rec  # filler 约 skipped
    said = ["我今年31岁，咳嗽咳痰3周了", "体温38.1℃，血压130/80mmHg", "腹痛3.0天，咳痰两周，头痛5天"]
    assert value_contradictions(rec, said) == ["咳痰3周（病历：咳痰2周）", "年龄31岁（病历：年龄30岁）",
                                               "血压130/80mmHg（病历：血压120/80mmHg）"]
    assert value_contradictions(rec, ["咳痰2周，腹痛3天，我30岁，发热2天"]) == []  # same values; key not in record
    child = quantities("患儿，男，5岁，发热2天。", "record")
    assert not any(k == "年龄" for k, _, _ in child)  # a parent may speak for a child: age not compared


def test_a_misquoting_simulator_is_caught_by_the_rule_reader(tmp_path):
    faithful = run(tmp_path, "doctor:thorough", "patient:faithful", "--max-turns", "8", out="a")
    assert faithful["simulator_contradiction_rule_rate"]["value"] == 0.0
    wrong = run(tmp_path, "doctor:thorough", "patient:misquoting", "--max-turns", "8", out="b")
    rule = wrong["simulator_contradiction_rule_rate"]
    assert rule["value"] == 100.0 and rule["n"] == 2 and rule["ci_method"] == "wilson"
    assert wrong["simulator_contradiction_rate"]["value"] == 0.0  # the fake judge never says 矛盾: two readers apart
    recs = [json.loads(x) for x in (tmp_path / "b" / "samples" / "consult.jsonl").read_text().splitlines()]
    assert any("咳痰3周（病历：咳痰2周）" in r["extra"]["audit_rule"]["examples"] for r in recs)
    assert main(["score", str(tmp_path / "b")]) == 0  # recomputed from the record alone
    doc = json.loads((tmp_path / "b" / "results.json").read_text(encoding="utf-8"))
    assert {m["name"]: m for m in doc["tasks"]["consult"]["metrics"]}["simulator_contradiction_rule_rate"] == rule
    assert main(["report", str(tmp_path / "b"), "--output", str(tmp_path / "b.html")]) == 0
    assert "rule reader" in (tmp_path / "b.html").read_text(encoding="utf-8")


def test_units_are_whole_words():
    from chimed_eval.evidence.consult import quantities

    got = quantities("血钙3.1mmol/L，指数24kg/m2，肿物大小3cm，脉搏80次/分。", "record")
    assert got == [("大小", "3", "cm"), ("脉搏", "80", "次/分")]
