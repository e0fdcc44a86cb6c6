"""The figures of a simulated consultation (:mod:`chimed_eval.task.consult`), from its per-case
records' ``extra``: pure functions, one Metric list per task. Shares and scores are percentages
(0-100, as ``acc`` everywhere); turns, tokens, characters and counts are plain numbers.

* ``diagnosis_acc``: share of cases whose diagnosis the judge found consistent with the reference
  (an unreadable verdict or no diagnosis counts wrong; ``diagnosis_unreadable_count``), Wilson.
* ``coverage``: mean over cases of the share of history facts elicited (the rule of
  :mod:`chimed_eval.evidence.consult`), bootstrap (Wilson at the edges).
* ``turns_mean``, ``doctor_tokens_mean`` (only when the backend reports token counts),
  ``doctor_chars_mean``, ``budget_exhausted_rate`` (no diagnosis within ``--max-turns``).
* ``plan_score``: mean over cases of the plan rubric, each case's criteria mean rescaled from 1..5
  to 0..1 (a case with no readable score is left out: ``plan_unreadable_count``).
* ``simulator_leak_rate``, ``simulator_contradiction_rate``, ``simulator_invention_rate``: share
  of audited cases where the judge said yes (cases whose answer is unreadable left out,
  ``simulator_audit_unreadable_count``), Wilson.
* ``simulator_contradiction_rule_rate``: share of cases where the rule reader found a value the
  patient stated against the record's (:func:`chimed_eval.evidence.consult.value_contradictions`:
  same key and unit, another number); a second reader of 矛盾 beside the judge's, reported apart.
* ``simulator_leak_flagged``: 1 when the leak rate's point value exceeds :data:`LEAK_THRESHOLD`
  (10%): the consultation figures of that run rest on a simulator that gave answers away.
"""

from __future__ import annotations

from typing import Any, Mapping, Sequence

from chimed_eval.core.types import Metric
from chimed_eval.metrics.stats import WILSON, mean_ci, wilson

LEAK_THRESHOLD = 10.0
RULE_CONTRADICTION = "simulator_contradiction_rule_rate"
AUDIT_FIGURES = {"泄露": "simulator_leak_rate", "矛盾": "simulator_contradiction_rate",
                 "编造": "simulator_invention_rate"}
DIRECTIONS = {"diagnosis_acc": "higher", "coverage": "higher", "plan_score": "higher", "turns_mean": None,
              "doctor_tokens_mean": None, "doctor_chars_mean": None, "budget_exhausted_rate": "lower",
              "diagnosis_unreadable_count": "lower", "plan_unreadable_count": "lower",
              "simulator_*_rate": "lower", "simulator_leak_flagged": "lower",
              "simulator_audit_unreadable_count": "lower"}


def _rate(name: str, flags: Sequence[bool]) -> Metric:
    """A percentage of cases with its Wilson interval."""
    n = len(flags)
    k = sum(1 for f in flags if f)
    ci = wilson(k, n)
    return Metric(name, 100.0 * k / n if n else 0.0, 100 * ci[0] if ci else None, 100 * ci[1] if ci else None, n,
                  "cases", ci_method=WILSON if ci else None)


def _mean(name: str, values: Sequence[float], seed: int, ci: bool = True) -> Metric:
    """A mean over cases; with ``ci`` of scores in [0, 1], as a percentage with its interval."""
    n = len(values)
    if not n:
        return Metric(name, 0.0, n=0)
    if not ci:
        return Metric(name, sum(values) / n, n=n, averaging="cases")
    lo, hi, method = mean_ci(values, seed)
    return Metric(name, 100.0 * sum(values) / n, 100 * lo, 100 * hi, n, "cases", ci_method=method)


def _count(name: str, k: int, n: int) -> Metric:
    return Metric(name, float(k), n=n)


def consult_figures(extras: Sequence[Mapping[str, Any]], seed: int) -> list[Metric]:
    """The task's figures (module docstring) from its records' ``extra`` dicts."""
    n = len(extras)
    out = [_rate("diagnosis_acc", [e.get("diagnosis_correct") == 1 for e in extras]),
           _count("diagnosis_unreadable_count", sum(1 for e in extras if e.get("diagnosis_correct") is None), n),
           _mean("coverage", [float(e.get("coverage", 0.0)) for e in extras], seed),
           _mean("turns_mean", [float(e.get("turns", 0)) for e in extras], seed, ci=False),
           _mean("doctor_chars_mean", [float(e.get("doctor_chars", 0)) for e in extras], seed, ci=False),
           _rate("budget_exhausted_rate", [e.get("ended") == "budget" for e in extras])]
    tokens = [e.get("doctor_tokens") for e in extras]
    if tokens and all(t is not None for t in tokens):
        out.append(_mean("doctor_tokens_mean", [float(t) for t in tokens], seed, ci=False))  # type: ignore[arg-type]
    plans = [e.get("plan_score") for e in extras]
    out += [_mean("plan_score", [float(p) for p in plans if p is not None], seed),
            _count("plan_unreadable_count", sum(1 for p in plans if p is None), n)]
    audits = [e.get("audit") or {} for e in extras]
    for q, name in AUDIT_FIGURES.items():
        out.append(_rate(name, [bool(a.get(q)) for a in audits if a.get(q) is not None]))
    out.append(_count("simulator_audit_unreadable_count",
                      sum(1 for a in audits if any(a.get(q) is None for q in AUDIT_FIGURES)), n))
    rule = [bool(e["audit_rule"]["矛盾"]) for e in extras if isinstance(e.get("audit_rule"), Mapping)]
    if rule:  # the second reader of 矛盾, by rule: labelled apart, never merged with the judge's
        out.append(_rate(RULE_CONTRADICTION, rule))
    leak = next(m for m in out if m.name == "simulator_leak_rate")
    out.append(Metric("simulator_leak_flagged", float(bool(leak.n) and leak.value > LEAK_THRESHOLD), n=leak.n))
    return out
