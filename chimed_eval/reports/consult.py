"""The simulator audit of a consultation task in the HTML report: per audit question, the cases the
judge said yes to and the patient's words it quoted (``extra["audit"]`` of the records written by
:mod:`chimed_eval.task.consult`), so a reader sees what the leak, contradiction and invention rates
count."""

from __future__ import annotations

from html import escape as _e
from typing import Sequence

from chimed_eval.core.types import SampleScore

QUESTIONS = {"泄露": "leaked the diagnosis or test results unasked", "矛盾": "contradicted the record",
             "编造": "invented facts"}
RULE_QUESTION = "stated a value against the record's (rule reader: same key and unit, another number)"


def audit_examples(recs: Sequence[SampleScore], shown: int = 3) -> dict[str, list[tuple[str, str]]]:
    """Per audit question, up to ``shown`` (case id, quoted example) of the cases judged yes."""
    out: dict[str, list[tuple[str, str]]] = {q: [] for q in QUESTIONS}
    for r in recs:
        audit = r.extra.get("audit") or {}
        for q in QUESTIONS:
            if audit.get(q) and len(out[q]) < shown:
                out[q].append((r.id, str(audit.get("example") or "")))
    return out


def audit_html(recs: Sequence[SampleScore]) -> list[str]:
    """The section; nothing for records that carry no audit (every task but a consultation)."""
    if not any("audit" in r.extra for r in recs):
        return []
    out = ["<h3>Simulator audit (examples)</h3><table class='audit'><tr><th>the patient simulator</th>"
           "<th>case</th><th>example quoted by the judge</th></tr>"]
    for q, cases in audit_examples(recs).items():
        for cid, example in cases or [("", "none")]:
            out.append(f"<tr><td>{_e(QUESTIONS[q])}</td><td>{_e(cid)}</td><td>{_e(example)}</td></tr>")
    ruled = [(r.id, "; ".join(r.extra["audit_rule"]["examples"])) for r in recs
             if (r.extra.get("audit_rule") or {}).get("矛盾")][:3]
    if any(isinstance(r.extra.get("audit_rule"), dict) for r in recs):
        for cid, example in ruled or [("", "none")]:
            out.append(f"<tr><td>{_e(RULE_QUESTION)}</td><td>{_e(cid)}</td><td>{_e(example)}</td></tr>")
    out.append("</table>")
    return out
