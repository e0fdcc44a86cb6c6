"""``chimed-eval contamination`` end to end on your own exam, and ``score --exclude-contaminated``:
the report's figures, the clean figures equal to a run on the kept items alone, the refusals,
and an OUT with results.clean.json still working for check, leaderboard, resume, score and
report."""

from __future__ import annotations

import json
import math
import shutil
from pathlib import Path

import pytest

from chimed_eval.cli.app import main
from chimed_eval.metrics.stats import wilson

SCHEMA = Path(__file__).resolve().parents[1] / "chimed_eval" / "schema" / "results.schema.json"
QUESTIONS = ["患者男性五十岁反复上腹痛三年加重伴黑便两天最可能的诊断是", "女性患者二十八岁停经四十天阴道少量流血伴下腹隐痛应首先考虑",
             "慢性阻塞性肺疾病急性加重期最常见的诱因是下列哪一项呢", "糖尿病酮症酸中毒患者补液治疗时首选的液体是哪一种呢",
             "小儿高热惊厥首次发作多见于哪个年龄段的儿童比较常见", "急性心肌梗死后二十四小时内死亡的主要原因通常是什么",
             "缺铁性贫血患者口服铁剂治疗后最早出现的反应指标是", "头痛"]
ANSWERS = "ABACDABA"


def _exam(path: Path, questions=QUESTIONS, answers=ANSWERS, ids=None) -> Path:
    rows = [{"id": (ids or [f"q{i}" for i in range(len(questions))])[i], "question": q, "A": "是", "B": "否",
             "C": "不", "D": "无", "answer": answers[i]} for i, q in enumerate(questions)]
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text("".join(json.dumps(r, ensure_ascii=False) + "\n" for r in rows), encoding="utf-8")
    return path


def _args(exam: Path) -> list[str]:
    return ["--tasks", "mcq", "--task-args", f"path={exam},id=id,question=question,choices=A;B;C;D,answer=answer"]


@pytest.fixture()
def setup(tmp_path):
    exam = _exam(tmp_path / "exam.jsonl")
    corpus = tmp_path / "corpus.jsonl"
    corpus.write_text("\n".join(json.dumps(r, ensure_ascii=False) for r in [
        {"messages": [{"role": "user", "content": "，".join([QUESTIONS[1][:10], QUESTIONS[1][10:]]) + "？"},
                      {"role": "assistant", "content": "B"}]},
        {"text": "无关的医学文本：高血压患者应低盐饮食并规律服药，定期复查血压。"},
        {"text": "题目：" + QUESTIONS[4] + "\nA. 是"},
        {"text": "头痛 是否不无"}]) + "\n", encoding="utf-8")
    out = tmp_path / "out"
    assert main(["run", "--no-progress", "--backend", "fake", "--model", "fixed:A", *_args(exam), "--output", str(out)]) == 0
    report = tmp_path / "rep.json"
    return exam, corpus, out, report


def test_report_figures_and_exit_codes(setup, capsys):
    exam, corpus, out, report = setup
    assert main(["contamination", "--corpus", str(corpus), *_args(exam), "--output", str(report)]) == 0
    printed = capsys.readouterr().out
    assert "mcq" in printed and "q1" in printed and str(report) in printed
    doc = json.loads(report.read_text(encoding="utf-8"))
    t = doc["tasks"]["mcq"]
    assert (doc["format"], doc["format_version"], doc["n"]) == ("chimed-eval-contamination", 2, 13)
    assert (t["items"], t["checked"], t["too_short"], t["contaminated"], t["option_only"]) == (8, 7, 1, 2, 0)
    assert t["rate"] == pytest.approx(2 / 7)
    # Wilson 95% interval of 2/7 worked by hand: centre (p + z²/2n)/(1 + z²/n), z = 1.959964
    z, n, p = 1.959964, 7, 2 / 7
    half = z * math.sqrt(p * (1 - p) / n + z * z / (4 * n * n)) / (1 + z * z / n)
    centre = (p + z * z / (2 * n)) / (1 + z * z / n)
    assert t["rate_ci95"] == pytest.approx([centre - half, centre + half])
    recs = {r["id"]: r for r in t["records"]}
    assert {i for i, r in recs.items() if r["contaminated"]} == {"q1", "q4"}
    assert recs["q7"]["contaminated"] is None and recs["q7"]["too_short"] is True  # 头痛 + 是否不无: 10 tokens
    assert recs["q1"]["corpus_location"] == f"{corpus}:1" and recs["q1"]["match"] == "question"
    assert recs["q1"]["overlap_ratio"] == 1.0  # its L - 12 n-grams, none reaching into "A 是 B 否 C 不 D 无"
    assert recs["q4"]["corpus_location"] == f"{corpus}:3" and "input" in recs["q4"]["matched_fields"]
    f = doc["corpus"]["files"][0]
    assert f["sha256"] == __import__("hashlib").sha256(corpus.read_bytes()).hexdigest() and f["bytes"] == corpus.stat().st_size
    assert main(["contamination", "--corpus", str(corpus), *_args(exam), "--fail-on-contamination"]) == 1
    clean_corpus = corpus.parent / "clean.txt"
    clean_corpus.write_text("完全无关的一段文字，不含任何考题。\n", encoding="utf-8")
    assert main(["contamination", "--corpus", str(clean_corpus), *_args(exam), "--fail-on-contamination"]) == 0
    assert main(["contamination", "--corpus", str(corpus), *_args(exam), "--n", "0"]) == 2


def test_clean_rescore_equals_a_run_on_the_kept_items(setup, tmp_path, capsys):
    exam, corpus, out, report = setup
    assert main(["contamination", "--corpus", str(corpus), *_args(exam), "--output", str(report)]) == 0
    before = (out / "results.json").read_bytes()
    assert main(["score", str(out), "--exclude-contaminated", str(report)]) == 0
    printed = capsys.readouterr().out
    assert "results.clean.json" in printed and "acc" in printed
    assert (out / "results.json").read_bytes() == before  # never overwritten with a subset
    clean = json.loads((out / "results.clean.json").read_text(encoding="utf-8"))
    block = clean["settings"]["contamination"]
    assert block["tasks"]["mcq"]["excluded_ids"] == ["q1", "q4"] and block["tasks"]["mcq"]["excluded_items"] == 2
    assert block["tasks"]["mcq"]["too_short_items"] == 1 and block["report"] == str(report)
    # the same figures as a run on the kept items alone (same ids, same order)
    kept = [i for i in range(8) if i not in (1, 4)]
    alone = _exam(tmp_path / "kept" / "exam.jsonl",
                  [QUESTIONS[i] for i in kept], "".join(ANSWERS[i] for i in kept), [f"q{i}" for i in kept])
    out2 = tmp_path / "out2"
    assert main(["run", "--no-progress", "--backend", "fake", "--model", "fixed:A", *_args(alone), "--output", str(out2)]) == 0
    ref = json.loads((out2 / "results.json").read_text(encoding="utf-8"))["tasks"]["mcq"]
    got = clean["tasks"]["mcq"]
    assert got["metrics"] == ref["metrics"] and got["n"] == ref["n"] == 6
    assert got["items_sha256"] == ref["items_sha256"]
    acc = next(m for m in got["metrics"] if m["name"] == "acc")
    assert acc["value"] == pytest.approx(100 * sum(ANSWERS[i] == "A" for i in kept) / 6)  # fixed:A right on A
    full = {m["name"]: m["value"] for m in block["tasks"]["mcq"]["full_metrics"]}
    assert full["acc"] == pytest.approx(100 * ANSWERS.count("A") / 8)
    jsonschema = pytest.importorskip("jsonschema")
    jsonschema.validate(clean, json.loads(SCHEMA.read_text()))


def test_an_out_with_clean_results_still_works(setup, tmp_path):
    exam, corpus, out, report = setup
    assert main(["contamination", "--corpus", str(corpus), *_args(exam), "--output", str(report)]) == 0
    assert main(["score", str(out), "--exclude-contaminated", str(report)]) == 0
    assert main(["check", str(out), "--baseline", str(out)]) == 0
    assert main(["leaderboard", str(out), "--no-write"]) == 0
    assert main(["leaderboard", str(out / "results.clean.json"), "--no-write"]) == 0
    assert main(["run", "--no-progress", "--backend", "fake", "--model", "fixed:A", *_args(exam), "--output", str(out)]) == 0
    assert main(["score", str(out)]) == 0
    assert json.loads((out / "results.json").read_text(encoding="utf-8"))["tasks"]["mcq"]["n"] == 8
    assert main(["validate", *_args(exam), "--show", "0"]) == 0
    assert main(["report", str(out), "--output", str(tmp_path / "r.html")]) == 0
    html = (tmp_path / "r.html").read_text(encoding="utf-8")
    assert "<h2 id='contamination'>Contamination</h2>" in html
    row = html.split("<table id='contamination-table'>")[1].split("</table>")[0]
    assert "2 / 8" in row and "28.6%" in row and ">50.00<" in row and ">66.67<" in row  # acc: 4/8, then 4/6
    (out / "samples" / "mcq.jsonl").write_text((out / "samples" / "mcq.jsonl").read_text(encoding="utf-8")
                                                + "\n", encoding="utf-8")
    assert main(["report", str(out), "--output", str(tmp_path / "r2.html")]) == 2  # results.json no longer fits
    assert main(["score", str(out)]) == 0  # results.json recomputed; results.clean.json is now stale
    assert main(["report", str(out), "--output", str(tmp_path / "r2.html")]) == 0
    assert "records changed since" in (tmp_path / "r2.html").read_text(encoding="utf-8")


def test_a_report_that_does_not_fit_the_run_is_refused(setup, tmp_path, capsys):
    exam, corpus, out, report = setup
    other = _exam(tmp_path / "o" / "exam.jsonl",
                  ids=[f"x{i}" for i in range(8)])
    assert main(["contamination", "--corpus", str(corpus), *_args(other), "--output", str(report)]) == 0
    capsys.readouterr()
    assert main(["score", str(out), "--exclude-contaminated", str(report)]) == 2
    err = capsys.readouterr().err
    assert "8 of the run's items are not in the report, e.g. q0, q1, q2" in err
    assert not (out / "results.clean.json").exists()
    # the same ids, another text: the data file differs
    edited = _exam(tmp_path / "e" / "exam.jsonl",
                   [q + "呢" for q in QUESTIONS])
    assert main(["contamination", "--corpus", str(corpus), *_args(edited), "--output", str(report)]) == 0
    capsys.readouterr()
    assert main(["score", str(out), "--exclude-contaminated", str(report)]) == 2
    assert "data file exam.jsonl differs" in capsys.readouterr().err
    # a report of another task, and a file that is no report
    doc = json.loads(report.read_text(encoding="utf-8"))
    doc["tasks"] = {"cmd-qa": doc["tasks"]["mcq"]}
    report.write_text(json.dumps(doc), encoding="utf-8")
    assert main(["score", str(out), "--exclude-contaminated", str(report)]) == 2
    assert "task mcq is not in the report (it has: cmd-qa)" in capsys.readouterr().err
    shutil.copy(out / "results.json", report)
    assert main(["score", str(out), "--exclude-contaminated", str(report)]) == 2
    assert "not a contamination report" in capsys.readouterr().err


def test_wilson_interval_known_values():
    lo, hi = wilson(50, 100)  # 0.5 ± 1.96·sqrt(.25/100 + 1.96²/40000)/(1 + 1.96²/100)
    assert (round(lo, 4), round(hi, 4)) == (0.4038, 0.5962)
    lo, hi = wilson(0, 10)  # the "rule of three"-like upper bound of the Wilson interval: 0.2775
    assert lo == 0.0 and round(hi, 4) == 0.2775
    assert wilson(0, 0) is None


def _rewrite(report: Path, edit) -> dict:
    doc = json.loads(report.read_text(encoding="utf-8"))
    edit(doc["tasks"]["mcq"])
    report.write_text(json.dumps(doc, ensure_ascii=False, indent=2) + "\n", encoding="utf-8")
    return doc


def _line_of(report: Path, needle: str, nth: int = 1) -> int:
    lines = report.read_text(encoding="utf-8").splitlines()
    return [i for i, t in enumerate(lines, 1) if needle in t][nth - 1]


def _resummarise(t: dict) -> None:
    """The summary of a task's records, recomputed as the contamination command writes it."""
    from chimed_eval.core.types import sha256_text

    recs = t["records"]
    t["items"], t["checked"] = len(recs), sum(r["contaminated"] is not None for r in recs)
    t["too_short"], t["contaminated"] = t["items"] - t["checked"], sum(r["contaminated"] is True for r in recs)
    t["rate"] = t["contaminated"] / t["checked"]
    t["ids_sha256"] = sha256_text("\n".join(r["id"] for r in recs))


def test_an_inconsistent_report_is_refused_naming_its_line(setup, tmp_path, capsys):
    exam, corpus, out, report = setup
    assert main(["contamination", "--corpus", str(corpus), *_args(exam), "--output", str(report)]) == 0
    good = report.read_text(encoding="utf-8")
    # a duplicated record with contaminated=false after the flagged one would un-flag q1
    def dup(t):
        t["records"].append({**next(r for r in t["records"] if r["id"] == "q1"), "contaminated": False, "match": None})
    _rewrite(report, dup)
    capsys.readouterr()
    assert main(["score", str(out), "--exclude-contaminated", str(report)]) == 2
    err = capsys.readouterr().err
    line = _line_of(report, '"id": "q1"', 2) - 1  # the record's "{" is on the line above its id
    assert f"{report}:{line}: task 'mcq': item 'q1' is listed twice (first at {report}:" in err
    assert not (out / "results.clean.json").exists()
    # a summary saying 3 contaminated where the records say 2
    report.write_text(good, encoding="utf-8")
    _rewrite(report, lambda t: t.update(contaminated=3))
    assert main(["score", str(out), "--exclude-contaminated", str(report)]) == 2
    line = _line_of(report, '"contaminated": 3')
    assert f"{report}:{line}: task 'mcq': contaminated is 3 but its records give 2" in capsys.readouterr().err
    # records saying 0 contaminated (every flag dropped) under the summary's 2
    report.write_text(good, encoding="utf-8")
    _rewrite(report, lambda t: [r.update(contaminated=False, match=None) for r in t["records"] if r["contaminated"]])
    assert main(["score", str(out), "--exclude-contaminated", str(report)]) == 2
    assert "contaminated is 2 but its records give 0" in capsys.readouterr().err
    # a flag without its match kind
    report.write_text(good, encoding="utf-8")
    _rewrite(report, lambda t: next(r for r in t["records"] if r["id"] == "q1").update(match=None))
    assert main(["score", str(out), "--exclude-contaminated", str(report)]) == 2
    assert "item 'q1': match None disagrees with contaminated=true" in capsys.readouterr().err
    # items of the report that the run does not have, the summary made to agree
    report.write_text(good, encoding="utf-8")
    def extra(t):
        t["records"].append({**t["records"][0], "id": "zz9", "contaminated": True, "match": "question"})
        _resummarise(t)
    _rewrite(report, extra)
    assert main(["score", str(out), "--exclude-contaminated", str(report)]) == 2
    err = capsys.readouterr().err
    assert f"1 of the report's items are not in the run, e.g. zz9 (at {report}:{_line_of(report, 'zz9') - 1};" in err
    assert not (out / "results.clean.json").exists()
    # ... which a run declaring a subset (--limit) expects
    part = tmp_path / "part"
    assert main(["run", "--no-progress", "--backend", "fake", "--model", "fixed:A", *_args(exam), "--limit", "4",
                 "--output", str(part)]) == 0
    report.write_text(good, encoding="utf-8")
    assert main(["score", str(part), "--exclude-contaminated", str(report)]) == 0
    block = json.loads((part / "results.clean.json").read_text(encoding="utf-8"))["settings"]["contamination"]
    assert block["tasks"]["mcq"]["excluded_ids"] == ["q1"] and block["tasks"]["mcq"]["items"] == 4


def test_option_only_matches_are_counted_apart_and_kept(tmp_path, capsys):
    long_option = "急性心肌梗死后二十四小时内死亡的主要原因"
    exam = tmp_path / "exam.jsonl"
    rows = [{"id": f"q{i}", "question": q, "A": long_option if i == 2 else "是", "B": "否", "C": "不", "D": "无",
             "answer": "A"} for i, q in enumerate(QUESTIONS[:4])]
    exam.write_text("".join(json.dumps(r, ensure_ascii=False) + "\n" for r in rows), encoding="utf-8")
    corpus = tmp_path / "c.txt"
    corpus.write_text(f"讲义：{long_option}是心室颤动。\n\n{QUESTIONS[0]}\n", encoding="utf-8")
    report, out = tmp_path / "rep.json", tmp_path / "out"
    assert main(["contamination", "--corpus", str(corpus), *_args(exam), "--output", str(report)]) == 0
    printed = capsys.readouterr().out
    assert "mcq: 1 matched only inside an option (not counted as contaminated), e.g." in printed
    t = json.loads(report.read_text(encoding="utf-8"))["tasks"]["mcq"]
    assert (t["contaminated"], t["option_only"], t["checked"]) == (1, 1, 4)
    assert [r["match"] for r in t["records"]] == ["question", None, "option-only", None]
    assert main(["run", "--no-progress", "--backend", "fake", "--model", "fixed:A", *_args(exam), "--output", str(out)]) == 0
    assert main(["score", str(out), "--exclude-contaminated", str(report)]) == 0
    b = json.loads((out / "results.clean.json").read_text(encoding="utf-8"))["settings"]["contamination"]["tasks"]["mcq"]
    assert (b["excluded_ids"], b["option_only_items"]) == (["q0"], 1)
    assert main(["report", str(out), "--output", str(tmp_path / "r.html")]) == 0
    html = (tmp_path / "r.html").read_text(encoding="utf-8")
    assert "<th>option-only matches (kept)</th>" in html and "<td class='num option-only'>1</td>" in html


def test_clean_results_are_sealed_and_a_hand_edit_is_refused(setup, tmp_path, capsys):
    from chimed_eval.runs.reader import read_run

    exam, corpus, out, report = setup
    assert main(["contamination", "--corpus", str(corpus), *_args(exam), "--output", str(report)]) == 0
    assert main(["score", str(out), "--exclude-contaminated", str(report)]) == 0
    path = out / "results.clean.json"
    assert read_run(path).integrity == "verified"
    doc = json.loads(path.read_text(encoding="utf-8"))
    acc = next(m for m in doc["tasks"]["mcq"]["metrics"] if m["name"] == "acc")
    acc["value"] += 10  # a clean figure improved by hand
    path.write_text(json.dumps(doc, ensure_ascii=False), encoding="utf-8")
    capsys.readouterr()
    assert main(["leaderboard", str(path), "--no-write"]) == 2
    assert "results.clean.json: the figures do not match the digest" in capsys.readouterr().err
    assert main(["report", str(out), "--output", str(tmp_path / "r.html")]) == 0
    html = (tmp_path / "r.html").read_text(encoding="utf-8")
    section = html.split("Contamination</h2>")[1]
    assert "do not match the digest" in section and "contamination-table" not in section
    assert main(["score", str(out), "--exclude-contaminated", str(report)]) == 0  # the way back
    assert read_run(path).integrity == "verified"
