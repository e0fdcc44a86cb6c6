"""Showing judgements: a short text table (``chimed-eval judge`` prints it) and the "Judges"
section of the HTML report (:func:`judge_html`, one block per ``OUT/judge/<dir>/results.json``:
protocol, judges, rubric, the figures with intervals, agreement, biases, warnings, and a few
verdicts with their prompts). Reads only saved files; no model, no numpy."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any, Mapping

from chimed_eval.judge.cases import lowest_cases
from chimed_eval.judge.sealed import read_judge_results
from chimed_eval.reports.sections import _e, _n

ITEMS_SHOWN = 3
LOWEST_SHOWN = 3  # cases named in the console line of the lowest-scored cases


def _f(x: Any, digits: int = 2) -> str:
    return "-" if x is None else f"{x:.{digits}f}"


def _pct(x: Any) -> str:
    return "-" if x is None else f"{100 * x:.0f}%"


def _ci(d: Mapping[str, Any]) -> str:
    return f"[{_f(d.get('ci_low'))}, {_f(d.get('ci_high'))}]" if d.get("ci_low") is not None else ""


def _judge_row(protocol: str, f: Mapping[str, Any]) -> tuple[str, str, str, str]:
    """(main figure, interval, invalid, bias figures) of one judge's (or the aggregate's) figures."""
    if protocol == "judge-pointwise":
        lc = f.get("length_correlation") or {}
        bias = f"length rho {_f(lc.get('spearman'))}" if lc else ""
        main = f.get("overall") or {}
        inval = f"{f.get('invalid', '-')} ({_pct(f.get('invalid_rate'))})" if "invalid" in f else "-"
        return f"overall {_f(main.get('value'))}", _ci(main), inval, bias
    wr = f.get("win_rate") or {}
    counts = f"W/T/L {f['wins']}/{f['ties']}/{f['losses']}" if "wins" in f else ""
    bias = "; ".join(x for x in (counts, f"flip {_pct(f['flip_rate'])}" if "flip_rate" in f else "",
                                 f"first-shown {_pct(f['position_preference'])}" if "position_preference" in f else "",
                                 f"LC win {_f(f.get('lc_win_rate'), 1)}" if "lc_win_rate" in f else "") if x)
    inval = f"{f.get('invalid_comparisons', '-')} ({_pct(f.get('invalid_rate'))})" if "invalid_comparisons" in f else "-"
    return f"win rate {_f(wr.get('value'), 1)}", _ci(wr), inval, bias


def _rows(t: Mapping[str, Any]) -> list[tuple[str, Mapping[str, Any]]]:
    """(label, figures) of a task's table: each judge, the panel's aggregate, then each judge on the
    baseline run's answers (pointwise with --baseline)."""
    return (list(t["judges"].items()) + ([("(" + t["aggregate"]["rule"] + ")", t["aggregate"])] if "aggregate" in t else [])
            + [(f"{j} on baseline answers", f) for j, f in (t.get("baseline_answers") or {}).items()])


def verdict_label(res: Mapping[str, Any]) -> str:
    """How the verdicts were read (results.json's ``verdict``; older results: generate)."""
    from chimed_eval.extract.verdicts import VERDICT_LABELS

    mode = res.get("verdict") or "generate"
    return VERDICT_LABELS.get(mode, mode)


def summary_lines(res: Mapping[str, Any]) -> list[str]:
    """The text table ``chimed-eval judge`` prints."""
    lines = [f"{res['protocol']}: judges {', '.join(res['judges'])}; verdict: {verdict_label(res)}"
             + (f"; rubric {res['rubric']}" if res.get("rubric") else "")
             + (f"; baseline {res['baseline']['path']}" if res.get("baseline") else "")
             + f"; aggregate {res['aggregate']}",
             f"{'task':22} {'judge':24} {'n':>5}  {'figure':18} {'95% CI':16} {'invalid':12} biases"]
    for task, t in res["tasks"].items():
        rows = _rows(t)
        for j, f in rows:
            main, ci, inval, bias = _judge_row(res["protocol"], f)
            lines.append(f"{task:22} {j:24} {f.get('n', '-'):>5}  {main:18} {ci:16} {inval:12} {bias}")
            if isinstance(f.get("criteria"), dict) and res.get("rubric") == "cmb-clin":  # as the CMB authors report
                lines.append(f"{'':22} {'':24} criteria (1-5): " + "; ".join(
                    f"{c} {_f(v.get('value'))} {_ci(v)}" for c, v in f["criteria"].items()))
            cases = t.get("cases") or {}
            if cases and j in next(iter(cases.values()))["judges"]:  # a judge's own rows (not the panel's)
                low = lowest_cases(cases, j, LOWEST_SHOWN)
                lines.append(f"{'':22} {'':24} lowest of {len(t['cases'])} cases: " + "; ".join(
                    f"case {c} {_f(v)} ({t['cases'][c]['n']} q)" for c, v in low))
        ag = t.get("agreement")
        if ag:
            lines.append(f"{'':22} agreement: Cohen's kappa {kappa_text(ag)}; Krippendorff's alpha "
                         f"({ag.get('krippendorff_alpha_level', '-')}) {_f(ag['krippendorff_alpha'])}")
        if t.get("leniency"):
            lines.append(f"{'':22} leniency (mean excess over the other judges on the same answers): " + "; ".join(
                f"{j} {_f(v.get('value'))} {_ci(v)}" for j, v in t["leniency"].items()))
        for s in t.get("self_preference", []):
            lines.append(f"{'':22} {self_preference_text(s)}")
        for w in t.get("warnings", []):
            lines.append(f"{'':22} warning: {w}")
    return lines


def kappa_text(ag: Mapping[str, Any]) -> str:
    """Cohen's kappa of each pair of judges: per criterion (pointwise) or on the outcomes (pairwise)."""
    if isinstance(ag.get("cohen_kappa_by_criterion"), dict):
        return "; ".join(f"{c}: " + ", ".join(f"{k} {_f(v)}" for k, v in pairs.items())
                         for c, pairs in ag["cohen_kappa_by_criterion"].items())
    return ", ".join(f"{k}: {_f(v)}" for k, v in (ag.get("cohen_kappa") or {}).items())


def self_preference_text(s: Mapping[str, Any]) -> str:
    """One self-preference entry in words: its excess on its own model's answers, and the net
    self-preference beyond its leniency when that can be told apart (else why not)."""
    text = (f"{s['judge']} is the {s['judges_its_own']} model: own {_f(s.get('own'))}, other judges "
            f"{_f(s.get('peers'))}, excess {_f(s.get('delta'))} {_ci(s)}")
    if s.get("net") is not None:
        text += (f"; leniency on other answers {_f(s.get('leniency'))}; net self-preference {_f(s['net'])} "
                 f"{_ci({'ci_low': s.get('net_ci_low'), 'ci_high': s.get('net_ci_high')})}")
    return text + (f" ({s['note']})" if s.get("note") else "")


def _text(x: Any) -> str:
    """A record field as shown: text as is, anything else (logprobs mode's dicts) as JSON."""
    return x if isinstance(x, str) else json.dumps(x, ensure_ascii=False, indent=1)


def _records_sample(jdir: Path, task: str) -> list[dict[str, Any]]:
    from chimed_eval.runs.reader import read_jsonl

    out = []
    for rec in read_jsonl(jdir / "records" / f"{task}.jsonl"):
        out.append(rec)
        if len(out) >= ITEMS_SHOWN:
            break
    return out


def judge_results_files(run_dir: Path) -> list[Path]:
    """The judges' results files of a run, ``OUT/judge/<dir>/results.json``, sorted."""
    return sorted(Path(run_dir).glob("judge/*/results.json"))


def judge_html(run_dir: Path) -> list[str]:
    """The "Judges" section of a run's HTML report; nothing when the run has no judge results. A
    results.json that cannot be read or is malformed (truncated, not the expected object) gets a
    notice naming it in place of its block; the others and the rest of the report still render."""
    from chimed_eval.reports.sections import SECTION_ERRORS, unreadable_html

    files = judge_results_files(run_dir)
    if not files:
        return []
    out = ["<h2 id='judges'>Judges</h2>"]
    for f in files:
        try:
            out.extend(_judge_block(f.parent, read_judge_results(f)))
        except SECTION_ERRORS as exc:
            out.extend(unreadable_html(f, exc))
    return out


def _judge_block(jdir: Path, res: Mapping[str, Any]) -> list[str]:
    """The HTML of one judge directory's results."""
    out: list[str] = []
    out.append(f"<h3 class='judge-dir'>{_e(jdir.name)}: {_e(res.get('protocol'))}</h3>")
    info = [("judges", ", ".join(res.get("judges", []))), ("backend", res.get("backend")),
            ("verdict", verdict_label(res)),
            ("rubric", res.get("rubric")), ("aggregate", res.get("aggregate")),
            ("baseline", (res.get("baseline") or {}).get("path")), ("judge prompts", res.get("prompt_version"))]
    out.append("<table class='judge-info'>" + "".join(
        f"<tr><th>{_e(k)}</th><td>{_e(v if v is not None else '-')}</td></tr>" for k, v in info) + "</table>")
    if res.get("protocol") == "judge-rubric":
        from chimed_eval.reports.rubric import rubric_html

        return out[:1] + rubric_html(res)
    for task, t in res.get("tasks", {}).items():
        out.append(f"<h4>{_e(task)} (n = {_e(t.get('n'))})</h4>")
        for w in t.get("warnings", []):
            out.append(f"<p class='judge-warning'><strong>warning:</strong> {_e(w)}</p>")
        out.append("<table class='judge-figures'><tr><th>judge</th><th>n</th><th>figure</th><th>95% interval</th>"
                   "<th>invalid</th><th>biases</th></tr>")
        rows = _rows(t)
        for j, fig in rows:
            main, ci, inval, bias = _judge_row(res["protocol"], fig)
            out.append(f"<tr><td>{_e(j)}</td><td class='num'>{_e(fig.get('n'))}</td><td>{_e(main)}</td>"
                       f"<td>{_e(ci)}</td><td>{_e(inval)}</td><td>{_e(bias)}</td></tr>")
        out.append("</table>")
        crit = {j: fig.get("criteria") for j, fig in t["judges"].items() if fig.get("criteria")}
        if crit:
            names = list(next(iter(crit.values())))
            out.append("<table class='judge-criteria'><tr><th>judge</th>" + "".join(f"<th>{_e(c)}</th>" for c in names) + "</tr>")
            for j, cs in crit.items():
                out.append(f"<tr><td>{_e(j)}</td>" + "".join(
                    f"<td class='num'>{_n(cs[c].get('value'))} {_e(_ci(cs[c]))}</td>" for c in names) + "</tr>")
            out.append("</table>")
        if t.get("cases"):
            out.extend(cases_html(t["cases"], res.get("criteria") or []))
        ag = t.get("agreement")
        if ag:
            out.append(f"<p class='judge-agreement'>Cohen's kappa ({_e(ag['cohen_kappa_rule'])}): {_e(kappa_text(ag))}. "
                       f"Krippendorff's alpha ({_e(ag['krippendorff_alpha_level'])}): {_e(_f(ag['krippendorff_alpha']))}</p>")
        if t.get("leniency"):
            out.append("<p class='judge-leniency'>leniency (mean excess over the other judges on the same answers): "
                       + _e("; ".join(f"{j} {_f(v.get('value'))} {_ci(v)}" for j, v in t["leniency"].items())) + "</p>")
        for s in t.get("self_preference", []):
            out.append(f"<p class='judge-self'>{_e(self_preference_text(s))}</p>")
        for rec in _records_sample(jdir, task):
            verdict = rec.get("scores") if "scores" in rec else rec.get("winner")
            out.append(f"<details class='judge-item'><summary>{_e(rec.get('id'))} · {_e(rec.get('judge'))} · "
                       f"{_e(rec.get('order'))} · {'valid' if rec.get('valid') else 'invalid'}: "
                       f"{_e(json.dumps(verdict, ensure_ascii=False))}</summary>"
                       f"<pre>{_e(rec.get('prompt'))}</pre>"
                       + (f"<p>answer prefix:</p><pre>{_e(_text(rec['verdict_prefix']))}</pre>"
                          if "verdict_prefix" in rec else "")
                       + f"<p>verdict:</p><pre>{_e(_text(rec.get('raw')))}</pre>"
                       + (f"<p class='muted'>{_e(rec.get('reason'))}</p>" if rec.get("reason") else "") + "</details>")
    return out


def cases_html(cases: Mapping[str, Any], criteria: list[str]) -> list[str]:
    """The per-case table (questions of case records, cmb-clin): per case and judge the mean overall
    score, each criterion's mean and each question's score, the lowest-scored cases first (by the
    first judge), so the cases that pulled the figure down are the first rows."""
    judges = list(next(iter(cases.values()))["judges"])
    first = judges[0]
    order = sorted(cases, key=lambda c: (cases[c]["judges"][first]["overall"] is None, cases[c]["judges"][first]["overall"] or 0))
    out = [f"<details class='judge-cases' open><summary>per case ({len(cases)} cases; lowest first, by {_e(first)})"
           "</summary><table class='judge-cases'><tr><th>case</th><th>questions</th><th>judge</th><th>overall</th>"
           + "".join(f"<th>{_e(c)}</th>" for c in criteria) + "<th>per question</th></tr>"]
    for c in order:
        for k, j in enumerate(judges):
            f = cases[c]["judges"][j]
            head = (f"<td rowspan='{len(judges)}'>{_e(c)}</td><td rowspan='{len(judges)}' class='num'>"
                    f"{_e(cases[c]['n'])}</td>") if k == 0 else ""
            per_q = " · ".join(f"{_e(q)} {_e(_f(v))}" for q, v in f["questions"].items())
            out.append(f"<tr>{head}<td>{_e(j)}</td><td class='num'>{_e(_f(f['overall']))}</td>"
                       + "".join(f"<td class='num'>{_e(_f(f['criteria'].get(cr)))}</td>" for cr in criteria)
                       + f"<td class='muted'>{per_q}</td></tr>")
    return out + ["</table></details>"]
