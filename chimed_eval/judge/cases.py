"""A pointwise judge's scores per case, for tasks whose items are the questions of a case (CMB-Clin:
each case record is followed by 1-4 questions). The task's figures average over every question;
these say which cases scored low.

Per case (in the order the cases first appear), from the verdict records of the candidate's answers
(``--baseline`` answers left out): ``n`` questions and their item ids in asked order, and per judge
``n_valid`` (readable verdicts), ``overall`` (the mean over the case's valid verdicts of their
overall score, None when it has none), ``criteria`` (each criterion's mean over them) and
``questions`` (each question's overall score, None for an unreadable verdict). Plain means, no
intervals: a case has at most a handful of questions. A pure function of the records.
"""

from __future__ import annotations

from typing import Any, Mapping, Sequence

from chimed_eval.judge.inputs import JudgeItem
from chimed_eval.judge.store import BASELINE_ORDER


def _mean(values: Sequence[float]) -> float | None:
    return sum(values) / len(values) if values else None


def case_figures(items: Sequence[JudgeItem], recs_by_judge: Mapping[str, Sequence[dict]],
                 criteria: Sequence[str]) -> dict[str, Any] | None:
    """Per case the judges' scores (module docstring); None when no item belongs to a case."""
    if not any(i.case is not None for i in items):
        return None
    by_id = {j: {str(r["id"]): r for r in recs if r.get("order") != BASELINE_ORDER} for j, recs in recs_by_judge.items()}
    cases: dict[str, list[JudgeItem]] = {}
    for i in items:
        if i.case is not None:
            cases.setdefault(i.case, []).append(i)
    out: dict[str, Any] = {}
    for case, qs in cases.items():
        qs = sorted(qs, key=lambda i: (i.question_index is None, i.question_index or 0))
        judges = {}
        for j, recs in by_id.items():
            got = [recs.get(q.id) or {} for q in qs]
            valid = [r for r in got if r.get("valid")]
            judges[j] = {"n_valid": len(valid), "overall": _mean([float(r["overall"]) for r in valid]),
                         "criteria": {c: _mean([float((r.get("expected") or r["scores"])[c]) for r in valid])
                                      for c in criteria},
                         "questions": {q.id: (float(r["overall"]) if r.get("valid") else None) for q, r in zip(qs, got)}}
        out[case] = {"n": len(qs), "questions": [q.id for q in qs], "judges": judges}
    return out


def lowest_cases(cases: Mapping[str, Any], judge: str, k: int) -> list[tuple[str, float]]:
    """The ``k`` cases ``judge`` scored lowest overall (ties: in case order), as (case, overall)."""
    scored = [(c, v["judges"][judge]["overall"]) for c, v in cases.items()
              if judge in v["judges"] and v["judges"][judge]["overall"] is not None]
    return sorted(scored, key=lambda cv: cv[1])[:k]
