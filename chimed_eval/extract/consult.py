"""Reading a simulated consultation's model outputs (:mod:`chimed_eval.task.consult`): the doctor's
turns and the judge's three kinds of verdict. Pure functions of the text.

* :func:`doctor_action`: a turn holding ``诊断：`` (or ``诊断:``) ends the consultation: the
  diagnosis is the text after it up to ``计划：`` or the line's end, the plan the text after
  ``计划：`` (or what follows the diagnosis line); else a turn starting with (or holding)
  ``检查：`` orders tests; anything else is a question (``问：`` removed). Only the first line
  block up to an invented ``病人：`` / ``检查结果：`` line is read, so a model that writes the
  patient's part itself is not believed.
* :func:`diagnosis_verdict`: ``不一致`` (or 错误, incorrect, no) -> 0; ``一致`` (or 正确, correct,
  yes) -> 1; neither -> None (unreadable, scored wrong and counted).
* :func:`plan_scores`: ``<criterion>：N`` per criterion (N in 1..5), None for a criterion missing.
* :func:`audit_verdicts`: ``泄露/矛盾/编造：是|否`` -> True/False, None when missing; the example line.
"""

from __future__ import annotations

import re
from typing import Sequence

_CUT = re.compile(r"(?:^|\n)\s*(?:病人|患者|检查结果)\s*[：:]")


def own_turn(text: str) -> str:
    """The doctor's own words: the text up to a line the model wrote for the patient or the tests."""
    return _CUT.split(text or "", maxsplit=1)[0].strip()


def doctor_action(text: str) -> tuple[str, str, str]:
    """(kind, content, plan): kind ``diagnose`` (content: the diagnosis), ``tests`` (the order) or
    ``ask`` (the question); plan only for ``diagnose`` (see the module docstring)."""
    t = own_turn(text)
    m = re.search(r"诊断\s*[：:]\s*", t)
    if m:
        rest = t[m.end():]
        p = re.search(r"(?:诊疗)?计划\s*[：:]\s*|处理\s*[：:]\s*|治疗\s*[：:]\s*", rest)
        if p:
            return "diagnose", rest[:p.start()].strip(), rest[p.end():].strip()
        first, _, after = rest.partition("\n")
        return "diagnose", first.strip(), after.strip()
    m = re.search(r"检查\s*[：:]\s*", t)
    if m and (m.start() == 0 or t[:m.start()].strip() in ("", "请做", "需要做")):
        return "tests", t[m.end():].strip(), ""
    return "ask", re.sub(r"^问\s*[：:]\s*", "", t).strip(), ""


def diagnosis_verdict(text: str) -> int | None:
    """1 (consistent), 0 (not), None (unreadable): see the module docstring."""
    t = (text or "").strip().lower()
    if re.search(r"不一致|错误|不正确|incorrect|\bno\b", t):
        return 0
    if re.search(r"一致|正确|correct|\byes\b", t):
        return 1
    return None


def plan_scores(text: str, criteria: Sequence[str]) -> dict[str, int | None]:
    """Per criterion its 1-5 score read from ``<criterion>：N``, None when absent."""
    out: dict[str, int | None] = {}
    for c in criteria:
        m = re.search(re.escape(c) + r"\s*[：:]\s*([1-5])", text or "")
        out[c] = int(m.group(1)) if m else None
    return out


def audit_verdicts(text: str, questions: Sequence[str]) -> tuple[dict[str, bool | None], str]:
    """(per question True / False / None, the example quoted) of an audit reply."""
    out: dict[str, bool | None] = {}
    for q in questions:
        m = re.search(re.escape(q) + r"\s*[：:]\s*(是|否|有|无|yes|no)", text or "", re.IGNORECASE)
        out[q] = None if not m else m.group(1).lower() in ("是", "有", "yes")
    m = re.search(r"例子\s*[：:]\s*(.+)", text or "")
    example = m.group(1).strip() if m else ""
    return out, ("" if example in ("无", "没有", "none") else example[:300])
