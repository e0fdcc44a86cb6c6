"""How rubric-grading results read: the console table and the report's block.

Every figure carries its grader's validation status (:mod:`chimed_eval.judge.rubric`). The console
withholds the figures of a grader that is not validated (no labels, or a macro F1 below the
threshold) unless ``--allow-unvalidated-grader``, and then prints them marked; the HTML report
always shows them, marked, under a warning.
"""

from __future__ import annotations

from html import escape
from typing import Any, Mapping

MARK = {"validated": "", "below-threshold": " [GRADER BELOW THRESHOLD]", "unvalidated": " [UNVALIDATED GRADER]"}


def _pct(d: Mapping[str, Any] | None) -> str:
    if not d or d.get("value") is None:
        return "-"
    ci = f" [{100 * d['ci_low']:.1f}, {100 * d['ci_high']:.1f}]" if d.get("ci_low") is not None else ""
    return f"{100 * d['value']:.1f}{ci}"


def validation_line(res: Mapping[str, Any]) -> str:
    """The grader-validation sentence: agreement per grader (or panel) and the threshold."""
    v = res.get("validation") or {}
    if not v:
        return (f"grader validation: none (no --grader-labels); every figure is from an UNVALIDATED grader "
                f"(threshold macro F1 {res.get('min_f1')})")
    parts = [f"{g} macro F1 {a['macro_f1']:.3f} [{a['ci_low']:.3f}, {a['ci_high']:.3f}] on {a['n']} labels "
             f"({res['grader_validation'][g]})" for g, a in v.items()]
    return f"grader validation (threshold macro F1 {res.get('min_f1')}): " + "; ".join(parts)


def rubric_summary_lines(res: Mapping[str, Any], allow_unvalidated: bool) -> list[str]:
    """The console table: per task and grader the score, per-tag scores and met rates (module docstring)."""
    lines = [f"judge-rubric: graders {', '.join(res['judges'])}; verdict {res['verdict']}; reported: {res['reported']}",
             validation_line(res)]
    for task, t in res["tasks"].items():
        for g, f in t["graders"].items():
            status = f["grader_validation"]
            head = f"{task:22} {g:24} n {f['n_items']:>4}  criteria {f['n_criteria']:>4}"
            if status != "validated" and not allow_unvalidated:
                lines.append(f"{head}  score withheld: {status} grader (pass --allow-unvalidated-grader to print it; "
                             "the figures are in the results file, labelled)")
                continue
            lines.append(f"{head}  score {_pct(f['score'])}{MARK[status]}  invalid verdicts {f['invalid']}")
            lines.append(f"{'':22} met rate: positive criteria {_pct(f['met_rate']['positive'])}; negative "
                         f"(harmful) criteria {_pct(f['met_rate']['negative'])}{MARK[status]}")
            if f.get("tags"):
                lines.append(f"{'':22} by tag: " + "; ".join(f"{k} {_pct(v)}" for k, v in f["tags"].items())
                             + MARK[status])
    return lines


def rubric_html(res: Mapping[str, Any]) -> list[str]:
    """The report's block for one rubric grading: figures always shown, each marked with its status."""
    e = lambda x: escape(str(x))  # noqa: E731
    out = [f"<p class='judge-info'>graders {e(', '.join(res.get('judges', [])))}; verdict {e(res.get('verdict'))}; "
           f"reported {e(res.get('reported'))}</p>", f"<p>{e(validation_line(res))}</p>"]
    if res.get("reported_status") != "validated":
        out.append(f"<p class='judge-warning'><strong>warning:</strong> these rubric figures come from a grader that "
                   f"is {e(res.get('reported_status'))}: they are not trustworthy as they stand.</p>")
    for task, t in res.get("tasks", {}).items():
        out.append(f"<h4>{e(task)} (n = {e(t.get('n'))})</h4><table class='judge-figures'><tr><th>grader</th>"
                   "<th>status</th><th>score (95% CI)</th><th>positive met</th><th>negative met</th><th>by tag</th></tr>")
        for g, f in t.get("graders", {}).items():
            tags = "; ".join(f"{k} {_pct(v)}" for k, v in (f.get("tags") or {}).items())
            out.append(f"<tr><td>{e(g)}</td><td>{e(f['grader_validation'])}</td><td>{e(_pct(f['score']))}"
                       f"{e(MARK[f['grader_validation']])}</td><td>{e(_pct(f['met_rate']['positive']))}</td>"
                       f"<td>{e(_pct(f['met_rate']['negative']))}</td><td>{e(tags)}</td></tr>")
        out.append("</table>")
    return out
