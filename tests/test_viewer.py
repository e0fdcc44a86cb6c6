"""``chimed-eval view``: the page comparing runs (issue 25): its data (paired differences with
their interval and test), its escaping, ``--serve`` on 127.0.0.1, and the page in headless
Chromium (no console error, a filter changes the rows shown, the paired difference is shown)."""

from __future__ import annotations

import json
import re
import threading
import urllib.error
import urllib.request
from pathlib import Path

import pytest

from chimed_eval.cli.app import main
from chimed_eval.core.errors import ConfigError
from chimed_eval.reports.html import compare_task, load_samples, paired_bootstrap
from chimed_eval.reports.sections import asset
from chimed_eval.reports.viewer import make_server, render_view, view_data
from conftest import write_exam_csv, write_mcq_run
from headless import browser, dump_dom, need_browser


def run(tmp_path: Path, name: str, model: str, n: int = 16) -> Path:
    exam = tmp_path / "exam.csv"
    if not exam.exists():
        write_exam_csv(exam, n)
        text = exam.read_text(encoding="utf-8").replace("第3题", "第3题</script><b>粗</b>")  # markup in a prompt
        exam.write_text(text, encoding="utf-8")
    return write_mcq_run(tmp_path, name, model, exam=exam)


@pytest.fixture()
def runs(tmp_path):
    return run(tmp_path, "a", "random"), run(tmp_path, "b", "oracle")


def test_the_paired_difference_is_the_bootstrap_interval_and_the_compare_test(runs):
    a, b = runs
    data = view_data([a, b])
    (p,) = data["paired"]
    ra, rb = load_samples(a, "mcq"), load_samples(b, "mcq")
    c = compare_task("mcq", ra, rb)
    mean, lo, hi, _ = paired_bootstrap([ra[i].score for i in ra], [rb[i].score for i in ra])
    assert (p["task"], p["a"], p["b"], p["n_common"]) == ("mcq", 0, 1, 16)
    assert p["diff"] == pytest.approx(100 * mean) and (p["ci_low"], p["ci_high"]) == pytest.approx((100 * lo, 100 * hi))
    assert p["ci_low"] <= p["diff"] <= p["ci_high"] and p["diff"] > 0  # the oracle is better
    assert p["test"] == "McNemar exact" and p["p"] == pytest.approx(c.p_value)
    # each run's headline figure, and the items side by side
    assert [t["runs"][1]["headline"]["value"] for t in data["tasks"]] == [100.0]
    assert len(data["items"]) == 16 and all(len(it["runs"]) == 2 for it in data["items"])
    assert {it["runs"][1]["score"] for it in data["items"]} == {1.0}


def test_everything_from_a_run_is_escaped_on_the_page(runs):
    page = render_view(list(runs))
    assert "</script><b>" not in page and "<b>粗</b>" not in page  # only as escaped JSON text
    data = re.search(r"<script id='viewer-data' type='application/json'>(.*?)</script>", page, re.S).group(1)
    assert any("</script><b>粗</b>" in it["prompt"] for it in json.loads(data)["items"])
    code = re.sub(r"/\*!.*?\*/", "", page, flags=re.S)  # licence headers name the libraries' sites
    assert "http://" not in code and "https://" not in code and "<script src" not in code  # offline
    assert "Noto Sans CJK SC" in page and "Microsoft YaHei" in page  # a CJK font stack
    for name in ("charts.js", "viewer.js", "report.js"):  # our scripts put run text in as text, never as markup
        assert "innerHTML" not in asset(name) and "insertAdjacentHTML" not in asset(name)


def test_view_writes_one_page_and_refuses_a_non_run(runs, tmp_path, capsys):
    out = tmp_path / "v" / "page.html"
    assert main(["view", *map(str, runs), "--output", str(out)]) == 0
    assert out.is_file() and f"wrote {out}" in capsys.readouterr().out
    assert out.stat().st_size < 1_000_000
    assert main(["view", str(tmp_path / "nothing"), "--output", str(out)]) == 2
    assert "not a chimed-eval output directory" in capsys.readouterr().err


def test_serve_binds_loopback_only_and_serves_the_page_alone(runs, tmp_path):
    page = tmp_path / "p.html"
    page.write_text(render_view(list(runs)), encoding="utf-8")
    with pytest.raises(ConfigError, match="127.0.0.1 only"):
        make_server(page, 0, "0.0.0.0")
    server = make_server(page, 0)
    assert server.server_address[0] == "127.0.0.1"
    threading.Thread(target=server.serve_forever, daemon=True).start()
    try:
        base = f"http://127.0.0.1:{server.server_address[1]}"
        with urllib.request.urlopen(base + "/", timeout=10) as r:
            assert r.read() == page.read_bytes()
        with pytest.raises(urllib.error.HTTPError) as e:
            urllib.request.urlopen(base + "/../results.json", timeout=10)
        assert e.value.code == 404
    finally:
        server.shutdown()
        server.server_close()


def test_view_in_headless_chromium_filters_rows_and_shows_the_paired_difference(runs, tmp_path):
    need_browser()
    a, b = runs
    page = tmp_path / "view.html"
    assert main(["view", str(a), str(b), "--output", str(page)]) == 0
    dom, console = dump_dom(page, tmp_path, "#selftest")
    assert console == [], console
    m = re.search(r'<pre id="selftest-result">(.*?)</pre>', dom, re.S)
    assert m, dom[-3000:]
    got = json.loads(m.group(1).replace("&quot;", '"').replace("&amp;", "&").replace("&lt;", "<").replace("&gt;", ">"))
    assert got["errors"] == []
    # the charts were drawn: headline, paired difference, reliability, letter shares, position
    assert got["charts"] >= 5 and 'class="chart paired-chart" data-rendered="true"' in dom
    # a filter changes the rows shown: all 16 items, then the one whose id was typed, then the wrong ones
    data = view_data([a, b])
    wrong = sum(1 for it in data["items"] if any(r["score"] < 1 for r in it["runs"]))
    assert got["rows_all"] == 16 and got["rows_filtered"] == 1 and got["rows_filtered_ids"] == [got["filter"]]
    assert got["rows_wrong"] == wrong and 0 < wrong < 16
    # the paired difference between the two runs, with its interval
    (p,) = data["paired"]
    assert got["paired"] == [{"task": "mcq", "diff": f"+{p['diff']:.2f}", "ci": f"[{p['ci_low']:.2f}, {p['ci_high']:.2f}]",
                              "p": f"{p['p']:.4f}" if p["p"] >= 0.001 else f"{p['p']:.2e}".replace("e-0", "e-")}]


def test_judges_figures_agreement_and_verdicts_reach_the_viewer_and_the_report(tmp_path):
    from chimed_eval.reports.charts import judge_summary, judge_verdicts
    from chimed_eval.reports.html import render_html
    from chimed_eval.reports.judge import kappa_text
    from conftest import write_qa_run

    out = write_qa_run(tmp_path, ["多休息。", "多喝水。", "按时服药。"], "q")
    assert main(["judge", str(out), "--judge-backend", "fake", "--no-progress", "--judge", "judge:longer,judge:score-1"]) == 0
    res = json.loads(next((out / "judge").glob("*/results.json")).read_text(encoding="utf-8"))
    t = res["tasks"]["my-qa"]
    (s,) = judge_summary(out)
    assert s["task"] == "my-qa" and [j["judge"] for j in s["judges"]] == ["judge:longer", "judge:score-1"]
    assert [j["value"] for j in s["judges"]] == [t["judges"][j]["overall"]["value"] for j in ("judge:longer", "judge:score-1")]
    assert s["kappa"] == kappa_text(t["agreement"]) and "judge:longer" in s["kappa"]
    assert s["alpha"] == t["agreement"]["krippendorff_alpha"]
    verdicts = judge_verdicts(out)["my-qa"]
    assert len(verdicts) == 3 and all(len(v) == 2 and v[0].startswith("judge:longer") for v in verdicts.values())
    data = view_data([out])
    assert data["judges"] == [[s]]
    assert all(it["runs"][0]["verdicts"] == verdicts[it["id"]] for it in data["items"])
    page = render_html(out)
    assert "<div id='judge-charts'></div>" in page and '"kappa"' in page
    if browser() is not None:  # both pages draw the judges' chart and table without a console error
        for name, text in (("report.html", page), ("view.html", render_view([out]))):
            (tmp_path / name).write_text(text, encoding="utf-8")
            dom, console = dump_dom(tmp_path / name, tmp_path)
            assert console == [] and 'data-ready="true"' in dom, (name, console)
        assert "judge:score-1" in dom and "class=\"judges\"" in dom


def test_max_items_caps_the_browser_not_the_figures(runs):
    data = view_data(list(runs), max_items=5)
    assert len(data["items"]) == 5 and data["tasks"][0]["items_total"] == 16
    assert data["paired"][0]["n_common"] == 16  # the paired test counts every shared item


def test_a_task_the_first_run_lacks_is_paired_against_the_first_run_that_has_it(runs, tmp_path):
    from conftest import write_qa_run

    qa = [write_qa_run(tmp_path, ["多休息。", "多喝水。"], name, model=m) for name, m in (("q1", "oracle"), ("q2", "fixed:多喝水。"))]
    data = view_data([runs[0], qa[0], runs[1], qa[1]])
    assert sorted((p["task"], p["a"], p["b"]) for p in data["paired"]) == [("mcq", 0, 2), ("my-qa", 1, 3)]


def test_a_task_whose_records_name_no_subject_shows_its_own_breakdown(tmp_path):
    from chimed_eval.reports.charts import breakdown_bars, subject_bars
    from chimed_eval.runs.reader import read_run

    out = tmp_path / "o"  # CCKS-2019 NER: records name no subject; results.json breaks F1 down by entity type
    assert main(["run", "--no-progress", "--backend", "fake", "--model", "oracle", "--tasks", "ccks2019-ner-paper",
                 "--limit", "4", "--output", str(out)]) == 0
    t = read_run(out).tasks[0]
    assert subject_bars(list(load_samples(out, t.task).values()), 0) == []
    bars = breakdown_bars(t.subjects, t.metrics)
    assert {b["subject"]: b["value"] for b in bars} == {k: v["f1"] for k, v in t.subjects.items()} and len(bars) > 1
    assert all(b["metric"] == "f1" for b in bars)
    assert view_data([out])["tasks"][0]["runs"][0]["subjects"] == bars
