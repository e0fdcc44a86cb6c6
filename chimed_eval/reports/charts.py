"""What the charts of the viewer and of the single-run report show, computed from a run's records
and figures (JSON-ready dicts; the page's script draws them with Chart.js, :mod:`.assets`).

* :func:`subject_bars` — per subject, the mean per-item score in % with a 95% interval
  (:func:`chimed_eval.metrics.stats.figure_ci`: Wilson for right/wrong, else the bootstrap);
* :func:`reliability` — the reliability diagram's bins (count, mean confidence, accuracy), ECE
  and Brier (:func:`chimed_eval.metrics.calibration.calibration_metrics`);
* :func:`letter_shares` — position bias: per option letter, the share of gold answers, the share
  of predictions, and the accuracy on items whose gold is that letter;
* :func:`rule_counts` — records per answer-extraction rule (the ``extraction_rule_*_count``
  figures, else the rule each record carries);
* :func:`judge_summary` / :func:`judge_verdicts` — what ``chimed-eval judge`` left in
  ``OUT/judge/*``: each judge's figure and the agreement between judges; each item's verdicts.
"""

from __future__ import annotations

import json
import math
from collections import Counter, defaultdict
from pathlib import Path
from typing import Any, Mapping, Sequence

from chimed_eval.core.types import Metric, SampleScore
from chimed_eval.judge.sealed import read_judge_results
from chimed_eval.reports.judge import judge_results_files, kappa_text
from chimed_eval.reports.sections import SECTION_ERRORS, _n, calibration_inputs, extraction_rules

_LETTERS = "ABCDEFGHIJ"


def _pct(x: float | None) -> float | None:
    return None if x is None or (isinstance(x, float) and math.isnan(x)) else round(100.0 * float(x), 4)


def subject_bars(recs: Sequence[SampleScore], seed: int) -> list[dict[str, Any]]:
    """Per subject (records without one: ``-``), the mean per-item score in % with its 95%
    interval and record count; empty when no record names a subject."""
    from chimed_eval.metrics.stats import figure_ci, is_binary

    groups: dict[str, list[float]] = defaultdict(list)
    for r in recs:
        if r.score is not None:
            groups[r.subject or "-"].append(min(1.0, max(0.0, float(r.score))))
    if set(groups) <= {"-"}:  # no record names a subject
        return []
    out = []
    for subject in sorted(groups):
        v = groups[subject]
        lo, hi, method = figure_ci(v, seed, is_binary(v))
        out.append({"subject": subject, "value": _pct(sum(v) / len(v)), "ci_low": _pct(lo), "ci_high": _pct(hi),
                    "n": len(v), "ci_method": method})
    return out


def reliability(recs: Sequence[SampleScore], seed: int) -> dict[str, Any] | None:
    """The reliability diagram of records carrying option log-probabilities: equal-width bins of
    the top option's probability with count, mean confidence and accuracy (0..1); None without."""
    from chimed_eval.metrics.calibration import calibration_metrics

    lps, gold = calibration_inputs(recs)
    if not lps:
        return None
    metrics, bins = calibration_metrics(lps, gold, seed)
    by = {m.name: m for m in metrics}
    return {"n": len(lps), "ece": by["ece"].value, "brier": by["brier"].value, "brier_ci_low": by["brier"].ci_low,
            "brier_ci_high": by["brier"].ci_high,
            "bins": [{"lower": b.lower, "upper": b.upper, "count": b.count, "mean_confidence": b.mean_confidence,
                      "accuracy": b.accuracy} for b in bins]}


def reliability_html(rel: Mapping[str, Any] | None) -> list[str]:
    """The report's calibration figures of a task (:func:`reliability`): ECE, Brier score and the
    table of the reliability diagram's bins (the diagram itself is a chart drawn by the page);
    nothing when no record carries option log-probabilities."""
    if rel is None:
        return []
    bins = rel["bins"]
    out = [f"<h3>Calibration ({rel['n']} items with option log-probabilities)</h3>",
           f"<p class='calibration'>ECE (%, {len(bins)} equal-width bins of the top option's probability) "
           f"<span class='ece'>{_n(rel['ece'])}</span>; Brier score <span class='brier'>{_n(rel['brier'], 4)}</span> "
           f"[{_n(rel['brier_ci_low'], 4)}, {_n(rel['brier_ci_high'], 4)}] (sum over options, 0..2); the reliability "
           "diagram is drawn above</p>",
           "<table class='reliability-bins'><tr><th>confidence</th><th>n</th><th>mean confidence</th>"
           "<th>accuracy</th></tr>"]
    for b in bins:
        out.append(f"<tr><td>[{b['lower']:.1f}, {b['upper']:.1f}{']' if b['upper'] >= 1.0 else ')'}</td>"
                   f"<td class='num'>{b['count']}</td><td class='num'>{_n(b['mean_confidence'], 3)}</td>"
                   f"<td class='num'>{_n(b['accuracy'], 3)}</td></tr>")
    out.append("</table>")
    return out


def _letter(x: Any) -> str | None:
    return x if isinstance(x, str) and len(x) == 1 and x in _LETTERS else None


def letter_shares(recs: Sequence[SampleScore]) -> dict[str, Any] | None:
    """Position bias of single-answer multiple choice: per letter (A.. up to the last one seen),
    the % of records whose gold is it, the % whose prediction is it, and the accuracy (%) on the
    records whose gold is it; None when no record has a single-letter gold and prediction."""
    pairs = [(g, _letter(r.prediction)) for r in recs if (g := _letter(r.gold)) is not None and not r.extraction_failed]
    pairs = [(g, p) for g, p in pairs if p is not None]
    if not pairs:
        return None
    last = max(_LETTERS.index(x) for pair in pairs for x in pair)
    letters = list(_LETTERS[: last + 1])
    gold, pred = Counter(g for g, _ in pairs), Counter(p for _, p in pairs)
    right = Counter(g for g, p in pairs if g == p)
    n = len(pairs)
    return {"n": n, "letters": letters, "gold_share": [_pct(gold[x] / n) for x in letters],
            "pred_share": [_pct(pred[x] / n) for x in letters],
            "acc_by_gold": [_pct(right[x] / gold[x]) if gold[x] else None for x in letters]}


def rule_counts(metrics: Sequence[Metric], recs: Sequence[SampleScore]) -> dict[str, int]:
    """Records per extraction rule: the task's ``extraction_rule_<rule>_count`` figures, else
    the ``extraction_rule`` each record carries (``none`` for a failure); empty when neither."""
    rules = extraction_rules(metrics)
    if rules:
        return rules
    got = Counter("none" if r.extraction_failed else str(r.extra.get("extraction_rule"))
                  for r in recs if r.extra.get("extraction_rule") is not None or r.extraction_failed)
    return dict(got) if any(k != "none" for k in got) else {}


def breakdown_bars(subjects: Mapping[str, Mapping[str, Any]], metrics: Sequence[Metric]) -> list[dict[str, Any]]:
    """The task's own per-group figures (results.json ``subjects``: NER's per-type breakdown, a
    user task's groups) as bars without intervals, for tasks whose records name no subject: the
    group's value of the task's primary figure (``f1``, ``acc``), else of its ``f1`` or ``acc``."""
    from chimed_eval.metrics import primary_metric

    head = primary_metric(metrics)
    keys = [k for k in ([head.name] if head is not None else []) + ["f1", "acc"]
            if any(isinstance(v.get(k), (int, float)) and not isinstance(v.get(k), bool) for v in subjects.values())]
    if not keys:
        return []
    key = keys[0]
    return [{"subject": str(g), "value": float(v[key]), "ci_low": None, "ci_high": None, "n": v.get("n"),
             "ci_method": None, "metric": key}
            for g, v in subjects.items() if isinstance(v.get(key), (int, float)) and not isinstance(v.get(key), bool)]


def task_charts(recs: Sequence[SampleScore], metrics: Sequence[Metric], seed: int,
                subjects: Mapping[str, Mapping[str, Any]] | None = None) -> dict[str, Any]:
    """Every chart of one task of one run; per subject from the records, else from the task's
    own breakdown (``subjects`` of results.json)."""
    bars = subject_bars(recs, seed) or (breakdown_bars(subjects, metrics) if subjects else [])
    return {"subjects": bars, "reliability": reliability(recs, seed),
            "letters": letter_shares(recs), "rules": rule_counts(metrics, recs)}


def judge_summary(run_dir: Path) -> list[dict[str, Any]]:
    """Per judge directory and task: each judge's main figure (pointwise overall score, pairwise
    win rate) with its interval, and the agreement between judges where there are several (Cohen's
    kappa of each pair, as text: :func:`~chimed_eval.reports.judge.kappa_text`; Krippendorff's
    alpha); unreadable files are left out."""
    out = []
    for f in judge_results_files(run_dir):
        try:
            res = read_judge_results(f)
            for task, t in (res.get("tasks") or {}).items():
                judges = []
                for j, fig in (t.get("judges") or {}).items():
                    main = fig.get("overall") or fig.get("win_rate") or {}
                    judges.append({"judge": j, "value": main.get("value"), "ci_low": main.get("ci_low"),
                                   "ci_high": main.get("ci_high"), "n": fig.get("n")})
                ag = t.get("agreement") or {}
                out.append({"dir": f.parent.name, "protocol": res.get("protocol"), "task": task, "judges": judges,
                            "kappa": kappa_text(ag) if ag else None, "alpha": ag.get("krippendorff_alpha")})
        except SECTION_ERRORS + (AttributeError,):
            continue
    return out


def judge_verdicts(run_dir: Path) -> dict[str, dict[str, list[str]]]:
    """Per task and item id, each judge's verdict as a short text (``judge (order): verdict``)."""
    from chimed_eval.runs.reader import read_jsonl

    out: dict[str, dict[str, list[str]]] = defaultdict(lambda: defaultdict(list))
    for f in judge_results_files(run_dir):
        for rec_file in sorted((f.parent / "records").glob("*.jsonl")):
            try:
                for rec in read_jsonl(rec_file):
                    verdict = rec.get("scores") if "scores" in rec else rec.get("winner")
                    text = verdict if isinstance(verdict, str) else json.dumps(verdict, ensure_ascii=False)
                    out[rec_file.stem][str(rec.get("id"))].append(
                        f"{rec.get('judge')} ({rec.get('order')}): {text}" + ("" if rec.get("valid", True) else " [invalid]"))
            except SECTION_ERRORS:
                continue
    return {t: dict(v) for t, v in out.items()}


def headline_of(metrics: Sequence[Metric]) -> Mapping[str, Any] | None:
    """The figure a task is compared by, as a dict (name, value, interval, n); None without one."""
    from chimed_eval.reports.sections import headline

    h = headline(metrics)
    if h is None or h.value is None or math.isnan(float(h.value)):
        return None
    return {"metric": h.name, "value": float(h.value), "ci_low": h.ci_low, "ci_high": h.ci_high, "n": h.n}
