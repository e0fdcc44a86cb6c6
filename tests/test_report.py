"""`compare` (changed items side by side, paired test) and the one-file HTML report, rendered in
headless Chromium."""

from __future__ import annotations

import json
import math

import re
from pathlib import Path

import pytest

from chimed_eval.cli.app import main
from chimed_eval.reports.html import mcnemar_exact, paired_bootstrap, render_html
from conftest import write_exam_csv
from headless import dump_dom, need_browser



def run(tmp_path: Path, name: str, model: str, *extra: str, n: int = 20) -> Path:
    exam = write_exam_csv(tmp_path / "exam.csv", n)
    out = tmp_path / name
    assert main(["run", "--no-progress", "--backend", "fake", "--model", model, "--tasks", "mcq",
                 "--task-args", f"path={exam}", "--output", str(out), *extra]) == 0
    return out


def records(out: Path) -> dict[str, dict]:
    return {r["id"]: r for r in map(json.loads, (out / "samples" / "mcq.jsonl").read_text().splitlines())}


# --- paired tests -------------------------------------------------------------------------------------


@pytest.mark.parametrize("b,c", [(0, 0), (2, 4), (0, 5), (7, 7), (3, 20), (40, 61)])
def test_mcnemar_exact_is_the_two_sided_binomial_test(b, c):
    n = b + c
    if n == 0:
        assert mcnemar_exact(b, c) == 1.0
        return
    k = min(b, c)
    expected = min(1.0, 2 * sum(math.comb(n, i) * 0.5 ** n for i in range(k + 1)))
    assert mcnemar_exact(b, c) == pytest.approx(expected, rel=1e-12)
    assert mcnemar_exact(2, 4) == pytest.approx(0.6875)


def test_paired_bootstrap_sees_a_shift_and_not_noise():
    a = [0.1 * (i % 7) for i in range(200)]
    assert paired_bootstrap(a, a)[3] == 1.0
    mean, lo, hi, p = paired_bootstrap(a, [x + 0.2 for x in a])
    assert mean == pytest.approx(0.2) and lo <= 0.2 <= hi and p < 0.001
    mean, lo, hi, p = paired_bootstrap(a, [x + (0.05 if i % 2 else -0.05) for i, x in enumerate(a)])
    assert lo < 0 < hi and p > 0.05


# --- compare -------------------------------------------------------------------------------------------


def test_compare_lists_changed_items_side_by_side_with_mcnemar(tmp_path, capsys):
    a = run(tmp_path, "a", "random")
    b = run(tmp_path, "b", "fixed:A")
    ra, rb = records(a), records(b)
    changed = [i for i in ra if ra[i]["score"] != rb[i]["score"]]
    b_ct = sum(1 for i in changed if ra[i]["score"] == 1)
    c_ct = len(changed) - b_ct
    capsys.readouterr()
    assert main(["compare", str(a), str(b), "--prompt-chars", "40"]) == 0
    text = capsys.readouterr().out
    assert f"score changed on {len(changed)}" in text
    assert f"McNemar exact: A right/B wrong {b_ct}, A wrong/B right {c_ct}; p = {mcnemar_exact(b_ct, c_ct):.4g}" in text
    rows = [line for line in text.splitlines() if line.startswith("| exam-")]
    assert [r.split(" | ")[0][2:] for r in rows] == changed
    first = ra[changed[0]]
    cells = rows[0].split(" | ")
    assert cells[2] == first["prediction"] and cells[4] == records(b)[changed[0]]["prediction"]
    assert "(same prompt)" in rows[0] and "<bot>:" in rows[0]  # the prompt's end, shown once when equal


def test_compare_shows_both_prompts_when_they_differ_and_bootstraps_non_binary_scores(tmp_path, capsys):
    a = run(tmp_path, "a", "random")
    b = run(tmp_path, "b", "fixed:B", "--variant", "lm-eval")
    capsys.readouterr()
    main(["compare", str(a), str(b)])
    text = capsys.readouterr().out
    rows = [line for line in text.splitlines() if line.startswith("| exam-")]
    assert rows and all("(same prompt)" not in r and "答案：" in r for r in rows)

    # per-item scores that are not 0/1 (as NER and generation records carry) use the paired bootstrap
    for out in (a, b):
        path = out / "samples" / "mcq.jsonl"
        recs = [json.loads(x) for x in path.read_text().splitlines()]
        for i, r in enumerate(recs):
            r["score"] = 0.5 if i % 3 == 0 else r["score"]
        path.write_text("".join(json.dumps(r, ensure_ascii=False) + "\n" for r in recs))
        assert main(["score", str(out)]) == 0  # records changed: the figures are recomputed and sealed again
    main(["compare", str(a), str(b)])
    assert "paired bootstrap (10000 resamples, seed 1234)" in capsys.readouterr().out


def test_compare_without_shared_tasks_is_a_usage_error(tmp_path, capsys):
    a = run(tmp_path, "a", "random")
    (tmp_path / "empty").mkdir()
    (tmp_path / "empty" / "results.json").write_text('{"model": {}, "tasks": {}}')
    assert main(["compare", str(a), str(tmp_path / "empty")]) == 2
    assert "share no task" in capsys.readouterr().err


# --- the HTML report -----------------------------------------------------------------------------------


def _report_run(tmp_path: Path) -> tuple[Path, dict]:
    out = run(tmp_path, "r", "random", n=40)
    res = json.loads((out / "results.json").read_text())
    return out, res


def test_report_is_one_self_contained_escaped_file(tmp_path, capsys):
    out, res = _report_run(tmp_path)
    assert main(["report", str(out)]) == 0
    html = (out / "report.html").read_text(encoding="utf-8")
    assert "<human>" not in html and "&lt;human&gt;" in html  # prompts are escaped, not markup
    code = re.sub(r"/\*!.*?\*/", "", html, flags=re.S)  # the vendored libraries' licence headers name their sites
    assert "http://" not in code and "https://" not in code and "<script src" not in code
    acc = next(m for m in res["tasks"]["mcq"]["metrics"] if m["name"] == "acc")
    assert f">{acc['value']:.2f}</td>" in html
    wrong = sum(1 for r in records(out).values() if r["score"] == 0)
    assert f"Worst items ({min(10, wrong)} shown)" in html


def test_report_renders_in_headless_chromium_with_its_figures(tmp_path):
    need_browser()
    out, res = _report_run(tmp_path)
    page = tmp_path / "page.html"
    page.write_text(render_html(out), encoding="utf-8")
    dom, console = dump_dom(page, tmp_path)
    assert console == [] and 'data-ready="true"' in dom
    t = res["tasks"]["mcq"]
    acc = next(m for m in t["metrics"] if m["name"] == "acc")
    # the charts were drawn by the page's script (Chart.js): headline, per subject, reliability, letters
    assert 'id="chart" data-rendered="true"' in dom
    for chart in ("headline-chart", "reliability-chart", "letters-chart", "position-chart"):
        assert f'class="chart {chart}" data-rendered="true"' in dom, chart
    # the tables show the figure, its interval and the per-subject breakdown
    assert f'data-task="mcq">{acc["value"]:.2f}</td>' in dom
    assert f"[{acc['ci_low']:.2f}, {acc['ci_high']:.2f}]" in dom
    subj, vals = next(iter(t["subjects"].items()))
    assert f"<td>{subj}</td>" in dom and f"{vals['acc']:.2f}" in dom


# --- reliability diagram ---------------------------------------------------------------------------------


def test_report_draws_the_reliability_diagram_from_the_records_option_logprobs(tmp_path):
    import re

    from chimed_eval.metrics.calibration import calibration_metrics
    from chimed_eval.reports.html import calibration_inputs, load_samples

    out, res = _report_run(tmp_path)
    html = render_html(out)
    lps, gold = calibration_inputs(list(load_samples(out, "mcq").values()))
    recs = records(out)
    assert len(lps) == len(recs) == 40
    assert gold == [ord(r["gold"]) - ord("A") for r in recs.values()]
    metrics, bins = calibration_metrics(lps, gold, res["settings"]["seed"])
    ece = next(m for m in metrics if m.name == "ece")
    assert "<h3>Calibration (40 items with option log-probabilities)</h3>" in html
    assert f"<span class='ece'>{ece.value:.2f}</span>" in html
    # the chart's data: every bin with its count (drawn above each bar); the table lists all 10 bins
    data = json.loads(re.search(r"<script id='report-data' type='application/json'>(.*?)</script>", html).group(1))
    rel = data["tasks"]["mcq"]["reliability"]
    assert [b["count"] for b in rel["bins"]] == [b.count for b in bins] and rel["n"] == 40
    assert sum(b["count"] for b in rel["bins"]) == 40
    assert html.count("<tr><td>[0.") == 10 and "<tr><td>[0.9, 1.0]</td>" in html


def test_report_has_no_reliability_diagram_for_generations(tmp_path):
    out = run(tmp_path, "g", "fixed:A", "--variant", "generate", n=8)
    html = render_html(out)
    assert "Calibration" not in html and '"reliability": null' in html
