"""The prompts of a simulated consultation (:mod:`chimed_eval.task.consult`): the doctor's (the
evaluated model), the patient simulator's, and the three judge prompts (diagnosis, plan rubric,
simulator audit). Versioned by :data:`CONSULT_PROMPT_VERSION`; each prompt opens with a marker line
(:data:`MARKERS`) so that a record, a cache entry or a scripted fake can tell them apart.

A transcript is a list of turns ``{"role": "doctor" | "patient" | "tests", "text": ...}``; it is
rendered as lines ``医生：`` / ``病人：`` / ``检查结果：``.
"""

from __future__ import annotations

from typing import Mapping, Sequence

CONSULT_PROMPT_VERSION = "consult-v1"
MARKERS = {"doctor": "【问诊：医生】", "patient": "【问诊：病人】", "diagnosis": "【问诊评估：诊断】",
           "plan": "【问诊评估：计划】", "audit": "【问诊评估：模拟病人审核】"}
SPEAKER = {"doctor": "医生", "patient": "病人", "tests": "检查结果"}
#: the rubric of the plan (each criterion scored 1-5 by the judge)
PLAN_CRITERIA = ("检查合理性", "治疗正确性", "安全性")
AUDIT_QUESTIONS = ("泄露", "矛盾", "编造")
RECORD_OPEN, RECORD_CLOSE = "【病历】", "【/病历】"
TALK_OPEN, TALK_CLOSE = "【对话】", "【/对话】"


def render_transcript(turns: Sequence[Mapping[str, str]]) -> str:
    """The transcript as ``医生：...`` / ``病人：...`` / ``检查结果：...`` lines."""
    return "\n".join(f"{SPEAKER[t['role']]}：{t['text']}" for t in turns)


def doctor_prompt(opening: str, turns: Sequence[Mapping[str, str]], turn: int, max_turns: int) -> str:
    """What the doctor sees before its ``turn``-th utterance (1-based) of at most ``max_turns``."""
    last = "这是最后一轮：请直接给出诊断和计划。" if turn >= max_turns else ""
    return (f"{MARKERS['doctor']}\n你是一名医生，正在门诊接诊一位病人。每次回复只做一件事，并使用以下格式之一：\n"
            "问：<向病人提出的一个问题>\n检查：<要做的体格检查或辅助检查，例如 体格检查、血常规、腹部超声、CT>\n"
            "诊断：<你的诊断>\n计划：<诊疗计划>（给出诊断即结束问诊）\n"
            f"你最多有 {max_turns} 轮。现在是第 {turn}/{max_turns} 轮。{last}\n\n"
            f"病人：{opening}\n{render_transcript(turns)}\n医生：").replace("\n\n医生：", "\n医生：")


def patient_prompt(record: str, turns: Sequence[Mapping[str, str]]) -> str:
    """What the patient simulator sees before its reply to the doctor's last turn."""
    return (f"{MARKERS['patient']}\n你在扮演一位来看病的病人。下面是你的病历，只供你了解自己的情况：\n"
            f"{RECORD_OPEN}\n{record}\n{RECORD_CLOSE}\n"
            "规则：只回答医生刚才问到的内容，用普通人的口语，一两句话；不要说出诊断或疾病名称；"
            "不要说出体格检查或化验、影像等检查结果（检查结果由医院提供，医生问你时说不清楚）；"
            "病历里没有的内容就说不知道，不要编造。\n\n"
            f"{TALK_OPEN}\n{render_transcript(turns)}\n{TALK_CLOSE}\n病人：")


def diagnosis_prompt(reference: str, diagnosis: str) -> str:
    """The judge's question: does the doctor's diagnosis name the reference diagnosis?"""
    return (f"{MARKERS['diagnosis']}\n请判断医生的诊断是否与参考诊断一致：主要疾病相同即为一致（同义词、更具体的说法都算一致；"
            "遗漏或弄错主要疾病为不一致）。\n"
            f"参考诊断：{reference}\n医生诊断：{diagnosis or '（未给出诊断）'}\n只回答“一致”或“不一致”。")


def plan_prompt(reference: str, diagnosis: str, plan: str) -> str:
    """The judge's rubric for the doctor's plan: each criterion of :data:`PLAN_CRITERIA`, 1-5."""
    lines = "\n".join(f"{c}：<1-5>" for c in PLAN_CRITERIA)
    return (f"{MARKERS['plan']}\n请对照参考答案，给医生的诊疗计划按每条标准打1到5分（5最好）。\n"
            f"参考答案：{reference}\n医生诊断：{diagnosis or '（未给出）'}\n医生计划：{plan or '（未给出）'}\n"
            f"按以下格式回答，每行一条：\n{lines}")


def audit_prompt(record: str, diagnosis: str, turns: Sequence[Mapping[str, str]]) -> str:
    """The judge's audit of the patient simulator over one whole consultation."""
    return (f"{MARKERS['audit']}\n下面是一位模拟病人的病历和一次问诊对话。请审核“病人”的每句话：\n"
            "泄露：病人是否在医生没有要求相应检查时，主动说出了诊断或检查结果（体格检查、化验、影像）？\n"
            "矛盾：病人的话是否与病历矛盾？\n编造：病人是否说了病历中没有的具体事实？\n"
            f"{RECORD_OPEN}\n{record}\n{RECORD_CLOSE}\n诊断：{diagnosis}\n"
            f"{TALK_OPEN}\n{render_transcript(turns)}\n{TALK_CLOSE}\n"
            "按以下格式回答：\n泄露：是/否\n矛盾：是/否\n编造：是/否\n例子：<引用病人有问题的一句话，没有就写 无>")
