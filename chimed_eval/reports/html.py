"""Reading runs back: ``compare`` two runs item by item, and a one-file HTML report of a run.

Both read only a run's output directory (results.json and samples/<task>.jsonl), never data or a
model.

Paired significance test (``compare``), on the per-item ``score`` of the items both runs share:

* when every score of both runs is 0 or 1 (accuracy-type metrics: multiple choice), **McNemar's
  exact test**: under H0 the discordant items (right in one run, wrong in the other) split 50/50,
  two-sided p = min(1, 2 * P[Binomial(b + c, 1/2) <= min(b, c)]);
* otherwise (per-record NER F1, per-item ROUGE-L of generations), a **paired bootstrap** of the
  mean difference: items resampled with replacement (10,000 seeded resamples), a 95% percentile
  interval, and two-sided p = min(1, 2 * min(P*(Δ <= 0), P*(Δ >= 0))).

Corpus-level figures (BLEU, micro F1) are not decomposable per item; the test is on the per-item
score the records carry, and says so.
"""

from __future__ import annotations

import dataclasses
import json
import math
from dataclasses import dataclass, field
from pathlib import Path
from typing import Mapping, Sequence

from chimed_eval.core.errors import ConfigError
from chimed_eval.reports.sections import (  # noqa: F401 (re-exported: the report's public names)
    RULE_PREFIX, RULE_SUFFIX, _e, _n, calibration_inputs, extracted_text, extraction_rules, extraction_rules_html,
)
from chimed_eval.reports.charts import judge_summary, reliability_html, task_charts
from chimed_eval.reports.sections import ERROR_TRAP, FONT_STACK, asset, finite
from chimed_eval.reports.sections import guarded_section, headline, inline_json, usage_html
from chimed_eval.reports.membership import membership_html
from chimed_eval.reports.notes import figure_warnings
from chimed_eval.reports.contamination import contamination_html
from chimed_eval.runs.reader import iter_samples, read_run_if_any, results_json, sample_tasks, samples_dir
from chimed_eval.reports.judge import judge_html
from chimed_eval.core.types import Metric, SampleScore

N_BOOT = 10_000


# --- loading --------------------------------------------------------------------------------------


def run_dir(path: Path) -> Path:
    path = Path(path)
    d = path.parent if path.is_file() else path
    if not results_json(d).exists() and not samples_dir(d).is_dir():
        raise ConfigError(f"{path}: not a chimed-eval output directory (no results.json or samples/)")
    return d


def load_samples(d: Path, task: str) -> dict[str, SampleScore]:
    """A task's records by item id (a later record of an id replaces an earlier one)."""
    return {s.id: s for s in iter_samples(d, task)}


# --- paired tests ---------------------------------------------------------------------------------


def mcnemar_exact(b: int, c: int) -> float:
    """Two-sided exact McNemar p-value from the discordant counts b and c."""
    n = b + c
    if n == 0:
        return 1.0
    k = min(b, c)
    tail = sum(math.comb(n, i) for i in range(k + 1))
    return min(1.0, 2 * tail / 2 ** n)


def paired_bootstrap(a: Sequence[float], b: Sequence[float], seed: int = 1234, n_boot: int = N_BOOT) -> tuple[float, float, float, float]:
    """(mean of b - a, ci_low, ci_high, two-sided p) over paired items; the differences are sorted
    before resampling, so the figures do not depend on the order the pairs come in."""
    import numpy as np

    d = np.sort(np.asarray(b, dtype=np.float64) - np.asarray(a, dtype=np.float64))
    if d.size == 0:
        return (0.0, 0.0, 0.0, 1.0)
    mean = float(d.mean())
    if not np.any(d):
        return (0.0, 0.0, 0.0, 1.0)
    rng = np.random.default_rng(seed)
    boots = d[rng.integers(0, d.size, size=(n_boot, d.size))].mean(axis=1)
    lo, hi = (float(x) for x in np.quantile(boots, [0.025, 0.975]))
    p = min(1.0, 2 * min(float(np.mean(boots <= 0)), float(np.mean(boots >= 0))))
    return mean, lo, hi, p


@dataclass
class TaskComparison:
    task: str
    n_common: int
    only_a: list[str]
    only_b: list[str]
    mean_a: float
    mean_b: float
    test: str
    p_value: float
    detail: str
    changed: list[tuple[SampleScore, SampleScore]] = field(default_factory=list)


def compare_task(task: str, recs_a: Mapping[str, SampleScore], recs_b: Mapping[str, SampleScore],
                 seed: int = 1234) -> TaskComparison:
    common = [i for i in recs_a if i in recs_b]
    only_a = [i for i in recs_a if i not in recs_b]
    only_b = [i for i in recs_b if i not in recs_a]
    sa = [float(recs_a[i].score) for i in common]
    sb = [float(recs_b[i].score) for i in common]
    mean_a = sum(sa) / len(sa) if sa else float("nan")
    mean_b = sum(sb) / len(sb) if sb else float("nan")
    if all(x in (0.0, 1.0) for x in (*sa, *sb)):
        b = sum(1 for x, y in zip(sa, sb) if x == 1.0 and y == 0.0)
        c = sum(1 for x, y in zip(sa, sb) if x == 0.0 and y == 1.0)
        test, p = "McNemar exact", mcnemar_exact(b, c)
        detail = f"A right/B wrong {b}, A wrong/B right {c}"
    else:
        mean, lo, hi, p = paired_bootstrap(sa, sb, seed)
        test = f"paired bootstrap ({N_BOOT} resamples, seed {seed})"
        detail = f"mean per-item score difference B-A {mean:+.4f}, 95% CI [{lo:+.4f}, {hi:+.4f}]"
    changed = [(recs_a[i], recs_b[i]) for i in common if float(recs_a[i].score) != float(recs_b[i].score)]
    return TaskComparison(task, len(common), only_a, only_b, mean_a, mean_b, test, p, detail, changed)


def output_of(rec: SampleScore) -> str:
    """What the model answered: the generation when there is one, else the prediction."""
    if rec.generation is not None:
        return str(rec.generation)
    p = rec.prediction
    return p if isinstance(p, str) else json.dumps(p, ensure_ascii=False)


def _gold_text(rec: SampleScore) -> str:
    return rec.gold if isinstance(rec.gold, str) else json.dumps(rec.gold, ensure_ascii=False)


def _tail(text: str, n: int) -> str:
    return text if len(text) <= n else "…" + text[-n:]


def _md(s: str) -> str:
    return s.replace("|", "\\|").replace("\r", "").replace("\n", "⏎")


def compare_runs(a: Path, b: Path, tasks: Sequence[str] | None = None, max_items: int = 50, prompt_chars: int = 300,
            seed: int = 1234) -> tuple[str, list[TaskComparison]]:
    """Markdown: per shared task, the paired test and the items whose score changed, with the
    prompts and outputs of both runs side by side."""
    da, db = run_dir(a), run_dir(b)
    ra, rb = read_run_if_any(da), read_run_if_any(db)
    shared = [t for t in sample_tasks(da) if t in set(sample_tasks(db))]
    if tasks:
        missing = [t for t in tasks if t not in shared]
        if missing:
            raise ConfigError(f"task(s) {missing} not recorded in both runs; shared: {shared}")
        shared = list(tasks)
    if not shared:
        raise ConfigError(f"{da} and {db} share no task with per-sample records (samples/<task>.jsonl)")
    name_a = ra.model.name if ra is not None else "A"
    name_b = rb.model.name if rb is not None else "B"
    lines = [f"# compare: A = {name_a} ({da}) vs B = {name_b} ({db})", ""]
    comps = []
    for t in shared:
        c = compare_task(t, load_samples(da, t), load_samples(db, t), seed)
        comps.append(c)
        lines += [f"## {t}", "",
                  f"- items in both: {c.n_common} (only in A: {len(c.only_a)}, only in B: {len(c.only_b)}); "
                  f"score changed on {len(c.changed)}",
                  f"- mean per-item score: A {c.mean_a:.4f}, B {c.mean_b:.4f} (B-A {c.mean_b - c.mean_a:+.4f})",
                  f"- paired test: {c.test}: {c.detail}; p = {c.p_value:.4g}", ""]
        if not c.changed:
            lines += ["No item changed its score.", ""]
            continue
        lines += ["| id | gold | A output | A score | B output | B score | prompt A | prompt B |",
                  "|---|---|---|---|---|---|---|---|"]
        for ra_, rb_ in c.changed[:max_items]:
            pa = _tail(str(ra_.prompt), prompt_chars)
            pb = "(same prompt)" if ra_.prompt_hash == rb_.prompt_hash else _tail(str(rb_.prompt), prompt_chars)
            lines.append("| " + " | ".join(_md(x) for x in (
                str(ra_.id), _tail(_gold_text(ra_), 120), _tail(output_of(ra_), 200), f"{float(ra_.score):.3g}",
                _tail(output_of(rb_), 200), f"{float(rb_.score):.3g}", pa, pb)) + " |")
        if len(c.changed) > max_items:
            lines.append(f"\n({len(c.changed) - max_items} more changed items not shown; --max-items)")
        lines.append("")
    return "\n".join(lines), comps


# --- HTML report ----------------------------------------------------------------------------------


def worst_items(recs: Sequence[SampleScore], k: int) -> list[SampleScore]:
    """The k lowest-scoring items below the top score 1 (per-item scores are 0..1: right/wrong,
    record F1, ROUGE-L); among equal scores, those where the model was most confident
    in a wrong answer (largest gap between its chosen and the gold option's log-probability)."""
    def confidence(r: SampleScore) -> float:
        lps, gold = r.logprobs, r.gold
        if lps and isinstance(gold, str) and len(gold) == 1 and "A" <= gold <= "J":
            gi = ord(gold) - ord("A")
            if gi < len(lps):
                return max(lps) - lps[gi]
        return 0.0

    bad = [r for r in recs if r.score is not None and float(r.score) < 1.0]  # scores are 0..1
    return sorted(bad, key=lambda r: (float(r.score), -confidence(r)))[:k]


_CSS = """
body{font-family:var(--font);margin:2em;max-width:1200px;color:#222}
table{border-collapse:collapse;margin:0.5em 0 1.5em}td,th{border:1px solid #ccc;padding:3px 8px;vertical-align:top}
th{background:#f2f2f2}td.num{text-align:right;font-variant-numeric:tabular-nums}
pre{white-space:pre-wrap;max-width:60em;margin:0;font-size:13px;font-family:var(--font)}.muted{color:#777}
.warn{color:#a40;font-weight:bold}figure.chart{margin:0.5em 0 1.2em;max-width:820px}
figcaption{font-weight:bold;margin-bottom:4px}.chart-box{position:relative;width:100%}
"""


def metric_value(m: Metric) -> str:
    """A metric's value as shown: a count (``*_count``, e.g. ``empty_generation_count``) as a
    whole number, so that it never reads as a percentage; any other figure with 2 decimals."""
    v = m.value
    if m.name.endswith("_count") and isinstance(v, (int, float)) and float(v).is_integer():
        return str(int(v))
    return _n(None if v is None else float(v))


def _grader_html(m: Metric) -> str:
    """A rubric grader's figure: its grader's status (``grader_status``), marked when not validated."""
    gs = m.grader_status
    if not gs:
        return ""
    f1 = f", macro F1 {gs['macro_f1']:.3f}" if isinstance(gs.get("macro_f1"), (int, float)) else ""
    cls = "" if gs.get("status") == "validated" else " class='judge-warning'"
    return (f"<br><span{cls}>grader {_e(gs.get('grader'))}: {_e(gs.get('status'))}{_e(f1)} "
            f"(threshold {_e(gs.get('min_f1'))})</span>")


def render_html(path: Path, worst: int = 10, prompt_chars: int = 600) -> str:
    """One self-contained HTML page (inline CSS, JS and data; no network) of one run: per-task
    figures with intervals, per-subject breakdown, a reliability diagram where the records carry
    option log-probabilities, and the worst items."""
    d = run_dir(path)
    res = read_run_if_any(d)
    model = dataclasses.asdict(res.model) if res is not None else {}
    settings = res.settings if res is not None else {}
    tasks = {t.task: t for t in res.tasks} if res is not None else {}
    heads = []
    for name, t in tasks.items():
        h = headline(t.metrics)
        if h is not None and h.value is not None and not math.isnan(float(h.value)):
            heads.append({"task": name, "metric": h.name, "value": float(h.value), "ci_low": h.ci_low,
                          "ci_high": h.ci_high, "n": t.n})
    title = f"chimed-eval report: {model.get('name', d.name)}"
    out = ["<!DOCTYPE html>", '<html lang="en"><head><meta charset="utf-8">', f"<title>{_e(title)}</title>",
           f"<script>{ERROR_TRAP}</script>", f"<style>:root{{--font:{FONT_STACK}}}\n{_CSS}</style></head><body>",
           f"<h1>{_e(title)}</h1>"]
    seed = int(settings.get("seed", 1234)) if isinstance(settings.get("seed", 1234), int) else 1234
    charts: dict[str, object] = {}
    if res is not None and res.unverified:  # edited figures are refused by read_run; these cannot be checked
        out.append(f"<p id='unverified' class='warn'>Unverified: these figures were not checked against the "
                   f"records ({_e(res.unverified)}); `chimed-eval score {_e(str(d))}` recomputes and seals them.</p>")
    out.append("<table id='run-info'>")
    for k, v in (("model", model.get("name")), ("path", model.get("path")), ("revision", model.get("revision")),
                 ("weights sha256", model.get("weights_sha256")), ("dtype", model.get("dtype")),
                 ("backend", settings.get("backend")), ("seed", settings.get("seed")), ("limit", settings.get("limit")),
                 ("created", res.created if res is not None else None), ("directory", str(d))):
        out.append(f"<tr><th>{_e(k)}</th><td>{_e(v if v is not None else '-')}</td></tr>")
    out.append("</table>")

    out.append("<h2>Summary</h2><table id='summary'><tr><th>task</th><th>n</th><th>variant</th><th>shots</th>"
               "<th>metric</th><th>value</th><th>95% interval</th></tr>")
    for h in heads:
        t = tasks[h["task"]]
        ci = f"[{_n(h['ci_low'])}, {_n(h['ci_high'])}]" if h["ci_low"] is not None else ""
        out.append(f"<tr><td>{_e(h['task'])}</td><td class='num'>{_e(t.n)}</td><td>{_e(t.variant)}</td>"
                   f"<td class='num'>{_e(t.shots)}</td><td>{_e(h['metric'])}</td>"
                   f"<td class='num figure' data-task='{_e(h['task'])}'>{_n(h['value'])}</td><td>{ci}</td></tr>")
    out.append("</table>")
    out.extend(usage_html(res.usage if res is not None else None))
    out.extend(guarded_section("Contamination", d / "results.clean.json", lambda: contamination_html(d)))
    out.append("<div id='chart' data-rendered='false'><noscript>(the charts need JavaScript; the figures are in the "
               "tables)</noscript></div>")

    for name, t in tasks.items():
        out.append(f"<h2 id='task-{_e(name)}'>{_e(name)}</h2>")
        out.append(f"<p class='muted'>n = {_e(t.n)}, variant {_e(t.variant)}, {_e(t.shots)}-shot, "
                   f"items sha256 {_e(t.items_sha256[:16])}…, prompts sha256 {_e(t.prompts_sha256[:16])}…"
                   + (f", extraction failures {_e(t.extraction_failures)}" if t.extraction_failures is not None else "")
                   + "</p>")
        out.append("<table class='metrics'><tr><th>metric</th><th>value</th><th>95% interval</th><th>interval method</th>"
                   "<th>n</th><th>averaging</th><th>protocol</th><th>tokenization</th></tr>")
        for m in t.metrics:
            ci = f"[{_n(m.ci_low)}, {_n(m.ci_high)}]" if m.ci_low is not None else ""
            out.append(f"<tr><td>{_e(m.name)}</td><td class='num'>{metric_value(m)}</td><td>{ci}</td>"
                       f"<td>{_e(m.ci_method or '')}</td><td class='num'>{_e(m.n)}</td><td>{_e(m.averaging)}</td>"
                       f"<td>{_e(m.protocol)}{_grader_html(m)}</td><td>{_e(m.tokenization)}</td></tr>")
        out.append("</table>")
        out.extend(f"<p class='figure-warning'><strong>warning:</strong> {_e(w)}</p>" for w in figure_warnings(t))
        recs = list(load_samples(d, name).values())
        charts[name] = task_charts(recs, t.metrics, seed, t.subjects)  # drawn by report.js into the div below
        out.append(f"<div class='task-charts' data-task='{_e(name)}'></div>")
        out.extend(extraction_rules_html(t.metrics))  # cot: records per extraction rule
        subjects = t.subjects
        if subjects:
            keys = sorted({k for v in subjects.values() for k in v}, key=lambda k: (k != "n", k))
            out.append("<h3>Per subject</h3><table class='subjects'><tr><th>subject</th>"
                       + "".join(f"<th>{_e(k)}</th>" for k in keys) + "</tr>")
            for s, v in subjects.items():
                out.append(f"<tr><td>{_e(s)}</td>" + "".join(
                    f"<td class='num'>{_n(v.get(k)) if isinstance(v.get(k), float) else _e(v.get(k, ''))}</td>" for k in keys)
                    + "</tr>")
            out.append("</table>")
        out.extend(reliability_html(charts[name]["reliability"]))
        out.extend(membership_html(recs))
        from chimed_eval.reports.consult import audit_html

        out.extend(audit_html(recs))  # consultations: what the simulator audit counted
        bad = worst_items(recs, worst)
        out.append(f"<h3>Worst items ({len(bad)} shown)</h3>")
        if not bad:
            out.append("<p class='muted'>no per-sample records, or every item scored 1</p>")
            continue
        out.append("<table class='worst'><tr><th>id</th><th>subject</th><th>score</th><th>gold</th><th>extracted</th>"
                   "<th>output</th><th>prompt (end)</th></tr>")
        for r in bad:
            out.append(f"<tr><td>{_e(r.id)}</td><td>{_e(r.subject)}</td>"
                       f"<td class='num'>{_n(float(r.score), 3)}</td><td><pre>{_e(_tail(_gold_text(r), 400))}</pre></td>"
                       f"<td>{_e(_tail(extracted_text(r), 200))}</td><td><pre>{_e(_tail(output_of(r), 400))}</pre></td>"
                       f"<td><details><summary>prompt</summary><pre>{_e(_tail(str(r.prompt), prompt_chars))}"
                       f"</pre></details></td></tr>")
        out.append("</table>")
    out.extend(judge_html(d))  # OUT/judge/*: model-graded figures (chimed_eval/reports/judge.py)
    judges = judge_summary(d)
    if judges:
        out.append("<div id='judge-charts'></div>")
    data = inline_json(finite({"headline": heads, "tasks": charts, "judges": judges, "model": model.get("name")}))
    out.append(f"<script id='report-data' type='application/json'>{data}</script>")
    out.extend(f"<script>{asset(name)}</script>" for name in ("chart.umd.min.js", "charts.js", "report.js"))
    out.append("</body></html>")
    return "\n".join(out) + "\n"


def write_html(path: Path, out: Path | None = None, worst: int = 10) -> Path:
    d = run_dir(path)
    out = Path(out) if out is not None else d / "report.html"
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(render_html(d, worst), encoding="utf-8")
    return out
