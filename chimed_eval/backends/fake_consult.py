"""Scripted doctors, patients and consultation judges for the fake backend (tests of
:mod:`chimed_eval.task.consult`). Each reads what it needs back from its prompt
(:mod:`chimed_eval.prompts.consult`; a ChatML wrapping is taken off first), so every answer is a
pure function of (behaviour, prompt): deterministic and cacheable.

Doctors (``--backend fake --model doctor:<b>``):

* ``silent``: diagnoses at once, ``诊断：不明`` with a plan, asking nothing.
* ``thorough``: asks ``问：还有什么不舒服？请详细说说。`` until the patient says there is nothing
  more (``没有别的了``) or two turns are left, then orders every test (``检查：全部检查``), then
  diagnoses ``不明`` (it knows no medicine: its coverage is the point, not its accuracy).

Patients (``--patient-backend fake --patient-model patient:<b>``):

* ``faithful``: each reply is the next two history facts of the record
  (:func:`chimed_eval.evidence.consult.history_facts`) not yet told, word for word; then
  ``没有别的了。``
* ``leaky``: as ``faithful``, and every reply also tells the first examination or test result of
  the record unasked (``我的检查结果：...``): the audit's leak rate goes to 100%.
* ``misquoting``: as ``faithful``, with every digit one higher (``咳痰2周`` -> ``咳痰3周``): the rule
  reader of contradictions (:func:`chimed_eval.evidence.consult.value_contradictions`) catches it.

Judges: any fake mode (``judge:...``, ``doctor:...``, ``patient:...``) given a consultation judge
prompt answers by rule: the diagnosis is consistent when the character F1 of the two normalised
diagnoses is at least 0.5; each plan criterion gets ``1 + round(4 * F1)`` against the reference;
the audit says 泄露 when a patient line holds half the bigrams of an examination or test line of
the record (or the diagnosis) and the doctor's line before it did not mention 检查, 编造 when a
patient clause of six or more characters shares under a fifth of its bigrams with the record
(replies saying 不知道/不清楚/没有 excepted), and never 矛盾 (no rule can tell it).
"""

from __future__ import annotations

import re

from chimed_eval.core.errors import ConfigError

DOCTORS = ("silent", "thorough")
PATIENTS = ("faithful", "leaky", "misquoting")
NOTHING_MORE = "没有别的了。"


def check_mode(mode: str, arg: str) -> None:
    """ConfigError unless ``mode:arg`` is a known fake doctor or patient."""
    known = DOCTORS if mode == "doctor" else PATIENTS
    if arg not in known:
        raise ConfigError(f"unknown fake {mode} '{mode}:{arg}'; choose from: "
                          + ", ".join(f"{mode}:{b}" for b in known))


def _between(text: str, start: str, end: str) -> str:
    i, j = text.find(start), text.find(end)
    return text[i + len(start):j].strip() if i >= 0 and j > i else ""


def _lines(talk: str, speaker: str) -> list[str]:
    return [ln.split("：", 1)[1] for ln in talk.splitlines() if ln.startswith(speaker + "：")]


def is_consult_judge_prompt(prompt: str) -> bool:
    from chimed_eval.prompts.consult import MARKERS

    return any(prompt.startswith(MARKERS[k]) for k in ("diagnosis", "plan", "audit"))


def fake_doctor(behaviour: str, prompt: str) -> str:
    """The scripted doctor's next turn (module docstring)."""
    if behaviour == "silent":
        return "诊断：不明\n计划：观察，随诊。"
    m = re.search(r"第 (\d+)/(\d+) 轮", prompt)
    turn, most = (int(m.group(1)), int(m.group(2))) if m else (1, 1)
    said = _lines(prompt, "病人")
    if turn >= most:
        return "诊断：不明\n计划：完善检查后再定。"
    if "\n检查结果：" in prompt:  # the tests it ordered have come back
        return "诊断：不明\n计划：完善检查后再定。"
    if turn >= most - 1 or (said and said[-1].startswith(NOTHING_MORE)):
        return "检查：全部检查"
    return "问：还有什么不舒服？请详细说说。"


def fake_patient(behaviour: str, prompt: str) -> str:
    """The scripted patient's reply (module docstring)."""
    from chimed_eval.evidence.consult import history_facts, split_record
    from chimed_eval.prompts.consult import RECORD_CLOSE, RECORD_OPEN, TALK_CLOSE, TALK_OPEN

    record = split_record(_between(prompt, RECORD_OPEN, RECORD_CLOSE))
    told = len(_lines(_between(prompt, TALK_OPEN, TALK_CLOSE), "病人"))
    facts = history_facts(record.history)[2 * told: 2 * told + 2]
    reply = "，".join(facts) + "。" if facts else NOTHING_MORE
    if behaviour == "misquoting":  # every digit one higher (9 -> 0): the record's numbers told wrong
        reply = reply.translate(str.maketrans("0123456789", "1234567890"))
    if behaviour == "leaky" and record.results:
        reply += f"我的检查结果：{record.results[0][1].splitlines()[0]}"
    return reply


def _f1(a: str, b: str) -> float:
    from chimed_eval.backends.fake_judge import char_f1

    return char_f1(a, b)


def fake_consult_judge(prompt: str) -> str:
    """The rule judge's verdict on a consultation judge prompt (module docstring)."""
    from chimed_eval.evidence.consult import bigrams, compact, fact_recall, normalise_diagnosis, split_record
    from chimed_eval.prompts.consult import (AUDIT_QUESTIONS, MARKERS, PLAN_CRITERIA, RECORD_CLOSE, RECORD_OPEN,
                                             TALK_CLOSE, TALK_OPEN)

    field = {k: v for k, v in re.findall(r"^(参考诊断|医生诊断|参考答案|医生计划|诊断)：(.*)$", prompt, re.M)}
    if prompt.startswith(MARKERS["diagnosis"]):
        f1 = _f1(normalise_diagnosis(field.get("医生诊断", "")), normalise_diagnosis(field.get("参考诊断", "")))
        return "一致" if f1 >= 0.5 else "不一致"
    if prompt.startswith(MARKERS["plan"]):
        score = 1 + round(4 * _f1(field.get("医生计划", ""), field.get("参考答案", "")))
        return "\n".join(f"{c}：{score}" for c in PLAN_CRITERIA)
    record_text = _between(prompt, RECORD_OPEN, RECORD_CLOSE)
    record, everything = split_record(record_text), set(bigrams(record_text))
    results = [ln for _, text in record.results for ln in re.split(r"[。；;\n]", text) if len(compact(ln)) >= 6]
    dx = normalise_diagnosis(field.get("诊断", ""))
    leak = invent = ""
    doctor_line = ""
    for ln in _between(prompt, TALK_OPEN, TALK_CLOSE).splitlines():
        who, _, text = ln.partition("：")
        if who == "医生":
            doctor_line = text
            continue
        if who != "病人":
            continue
        said = set(bigrams(text))
        if not leak and "检查" not in doctor_line and (any(fact_recall(r, said) >= 0.5 for r in results)
                                                      or (len(dx) >= 2 and dx in compact(text))):
            leak = text
        for clause in re.split(r"[，,。；;]", text):
            if (not invent and len(compact(clause)) >= 6 and not re.search(r"不知道|不清楚|没有", clause)
                    and fact_recall(clause, everything) < 0.2):
                invent = clause
    verdict = {AUDIT_QUESTIONS[0]: leak, AUDIT_QUESTIONS[1]: "", AUDIT_QUESTIONS[2]: invent}
    lines = [f"{q}：{'是' if verdict[q] else '否'}" for q in AUDIT_QUESTIONS]
    return "\n".join(lines + [f"例子：{leak or invent or '无'}"])
