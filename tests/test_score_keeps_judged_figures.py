"""``chimed-eval score`` keeps every figure a run had: rubric figures (recomputed from the grading's
verdict records, with their ``grader_status``), CMB-Clin's judge figures and the consultation
figures; and the grader status as its own field (results.json, schema, console, export, evaluate())."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from chimed_eval.cli.app import main

ROOT = Path(__file__).resolve().parents[1]
ITEMS, LABELS = ROOT / "examples" / "rubric_zh.jsonl", ROOT / "examples" / "rubric_zh_labels.jsonl"
DATA = Path(__import__("os").environ.get("CHIMED_EVAL_SHARED_DATA", "/work/shared/data"))
HAS_CLIN = (DATA / "cmb-clin" / "CMB-Clin-qa.json").is_file()


def _figures(out: Path) -> dict:
    doc = json.loads((out / "results.json").read_text(encoding="utf-8"))
    return {t: v["metrics"] for t, v in doc["tasks"].items()}


def _graded_run(tmp_path: Path, *grade: str) -> Path:
    out = tmp_path / "rub"
    assert main(["run", "--backend", "fake", "--model", "oracle", "--tasks", "rubric", "--task-args", f"path={ITEMS}",
                 "--output", str(out), "--no-progress", "--judge", "judge:keyword", "--judge-backend", "fake", *grade]) == 0
    return out


def test_score_recomputes_the_rubric_figures_from_the_verdict_records(tmp_path, capsys):
    import jsonschema

    out = _graded_run(tmp_path, "--grader-labels", str(LABELS))
    before = _figures(out)
    names = {m["name"] for m in before["rubric"]}
    assert {"rubric_score", "rubric_met_rate[negative]", "grader_macro_f1"} <= names
    assert main(["score", str(out)]) == 0
    assert _figures(out) == before  # every figure, grader_status included
    schema = json.loads((ROOT / "chimed_eval" / "schema" / "results.schema.json").read_text(encoding="utf-8"))
    jsonschema.validate(json.loads((out / "results.json").read_text(encoding="utf-8")), schema)
    printed = capsys.readouterr().out
    assert "rubric_score" in printed and "withheld" in printed  # below-threshold grader: withheld on the console
    # recomputed, not copied: flip one verdict in the saved records and score again
    (jdir,) = (out / "judge").glob("rubric-*")
    recs = jdir / "records" / "rubric.jsonl"
    lines = [json.loads(ln) for ln in recs.read_text(encoding="utf-8").splitlines()]
    first = next(r for r in lines if r["order"] == "c0" and r["met"] is True)
    first["met"] = False
    recs.write_text("".join(json.dumps(r, ensure_ascii=False) + "\n" for r in lines), encoding="utf-8")
    assert main(["score", str(out)]) == 0
    score = lambda figs: next(m["value"] for m in figs["rubric"] if m["name"] == "rubric_score")  # noqa: E731
    assert score(_figures(out)) < score(before)


def test_score_refuses_a_verdict_given_on_another_response(tmp_path, capsys):
    out = _graded_run(tmp_path)
    samples = out / "samples" / "rubric.jsonl"
    lines = [json.loads(ln) for ln in samples.read_text(encoding="utf-8").splitlines()]
    lines[0]["generation"] = "另一个回答"
    samples.write_text("".join(json.dumps(r, ensure_ascii=False) + "\n" for r in lines), encoding="utf-8")
    assert main(["score", str(out)]) == 2
    err = capsys.readouterr().err
    assert "another response" in err and "rubric.jsonl" in err and len(err.strip().splitlines()) == 1


def test_grader_status_is_a_field_in_results_export_console_and_evaluate(tmp_path, capsys):
    import chimed_eval
    from chimed_eval.runs.reader import read_run

    out = _graded_run(tmp_path)
    ms = {m.name: m for m in read_run(out).tasks[0].metrics}
    gs = ms["rubric_score"].grader_status
    assert gs["status"] == "unvalidated" and gs["macro_f1"] is None and gs["min_f1"] == 0.7
    assert gs["grader"] == "judge:keyword" and (out / "judge" / gs["grading"]).is_dir()
    assert ms["response_rate"].grader_status is None
    assert "grader_status" not in next(m for m in _figures(out)["rubric"] if m["name"] == "response_rate")
    capsys.readouterr()
    assert main(["export", str(out)]) == 0
    rows = capsys.readouterr().out.splitlines()
    col = rows[0].split(",").index("grader_status")
    row = next(r.split(",") for r in rows if ",rubric_score," in r)
    assert row[col] == "unvalidated"
    assert main(["score", str(out), "--allow-unvalidated-grader"]) == 0
    assert "[UNVALIDATED GRADER]" in capsys.readouterr().out
    assert main(["report", str(out), "--output", str(tmp_path / "r.html")]) == 0
    assert "grader judge:keyword: unvalidated (threshold 0.7)" in (tmp_path / "r.html").read_text(encoding="utf-8")
    task = __import__("chimed_eval.tasks.factory", fromlist=["TASK_TYPES"]).TASK_TYPES.get("rubric").from_args(
        {"path": str(ITEMS)})
    run = chimed_eval.evaluate("oracle", task, backend="fake", output=str(tmp_path / "api"), progress=False,
                               judge="judge:keyword", judge_backend="fake", grader_labels=str(LABELS))
    got = {m.name: m for m in run.tasks[0].metrics}["rubric_score"].grader_status
    assert got["status"] == "below-threshold" and got["macro_f1"] == pytest.approx(0.645, abs=1e-3)
    assert run.to_pandas().set_index("metric").loc["rubric_score", "grader_status"] == "below-threshold"


@pytest.mark.skipif(not HAS_CLIN, reason="CMB-Clin not in the shared data")
def test_score_keeps_cmb_clin_judge_and_consultation_figures(tmp_path):
    clin = tmp_path / "clin"
    assert main(["run", "--backend", "fake", "--model", "oracle", "--tasks", "cmb-clin", "--limit", "8", "--output",
                 str(clin), "--judge", "judge:score-4", "--judge-backend", "fake", "--no-progress",
                 "--data-dir", str(DATA)]) == 0
    (judged,) = (clin / "judge").glob("pointwise-*/results.json")
    before, jbefore = _figures(clin), judged.read_text(encoding="utf-8")
    assert main(["score", str(clin)]) == 0
    assert _figures(clin) == before and judged.read_text(encoding="utf-8") == jbefore
    cons = tmp_path / "cons"
    assert main(["run", "--backend", "fake", "--model", "doctor:thorough", "--tasks", "consult-cmb-clin", "--limit", "2",
                 "--patient-backend", "fake", "--patient-model", "patient:leaky", "--max-turns", "6", "--output",
                 str(cons), "--no-progress", "--data-dir", str(DATA)]) == 0
    before = _figures(cons)
    assert {"diagnosis_acc", "coverage", "simulator_leak_rate"} <= {m["name"] for m in before["consult-cmb-clin"]}
    assert main(["score", str(cons)]) == 0
    assert _figures(cons) == before


@pytest.mark.skipif(not HAS_CLIN, reason="CMB-Clin not in the shared data")
def test_cmb_clin_judge_scores_per_case_and_question(tmp_path, capsys):
    """Per-case (and per-question) judge scores: in the verdict records, the judge's results, the
    console's lowest cases, the report's per-case table and `export --cases`."""
    out = tmp_path / "clin"
    assert main(["run", "--backend", "fake", "--model", "fixed:腹外疝，建议手术治疗", "--tasks", "cmb-clin", "--limit", "20",
                 "--output", str(out), "--judge", "judge:reference", "--judge-backend", "fake", "--no-progress",
                 "--data-dir", str(DATA)]) == 0
    printed = capsys.readouterr().out
    (jres,) = (out / "judge").glob("pointwise-*/results.json")
    recs = [json.loads(ln) for ln in (jres.parent / "records" / "cmb-clin.jsonl").read_text(encoding="utf-8").splitlines()]
    samples = {(r := json.loads(ln))["id"]: r["extra"] for ln in
               (out / "samples" / "cmb-clin.jsonl").read_text(encoding="utf-8").splitlines()}
    assert all((r["case"], r["question_index"]) == (samples[r["id"]]["case"], samples[r["id"]]["question_index"])
               for r in recs)
    cases = json.loads(jres.read_text(encoding="utf-8"))["tasks"]["cmb-clin"]["cases"]
    assert sum(c["n"] for c in cases.values()) == 20
    by_hand: dict[str, list[float]] = {}
    for r in recs:
        by_hand.setdefault(r["case"], []).append(r["overall"])
    for case, scores in by_hand.items():
        f = cases[case]["judges"]["judge:reference"]
        assert f["overall"] == pytest.approx(sum(scores) / len(scores)) and len(f["questions"]) == len(scores)
        assert f["criteria"]["proficiency"] == pytest.approx(sum(scores) / len(scores))  # the fake judge: same on all
    overall = {c: v["judges"]["judge:reference"]["overall"] for c, v in cases.items()}
    assert max(overall.values()) > min(overall.values())  # the cases differ: the table says which scored low
    low = min(overall, key=lambda c: (overall[c], list(overall).index(c)))
    assert f"lowest of {len(cases)} cases: case {low} " in printed
    assert main(["report", str(out), "--output", str(tmp_path / "r.html")]) == 0
    html = (tmp_path / "r.html").read_text(encoding="utf-8")
    assert "per case (" in html and f"cmb-clin-{low}-1" in html.split("per case (")[1]
    capsys.readouterr()
    assert main(["export", str(out), "--cases"]) == 0
    rows = capsys.readouterr().out.splitlines()
    head = rows[0].split(",")
    got = {(r[head.index("case")], r[head.index("criterion")]): float(r[head.index("value")])
           for r in (ln.split(",") for ln in rows[1:])}
    assert got[(low, "overall")] == pytest.approx(overall[low]) and len(got) == 5 * len(cases)


def test_score_uses_the_grading_results_json_named(tmp_path):
    """Two gradings in OUT: score recomputes from the one whose figures results.json held
    (grader_status.grading), not merely the newest directory."""
    import os

    out = _graded_run(tmp_path)  # judge:keyword
    assert main(["judge", str(out), "--judge", "judge:met", "--judge-backend", "fake", "--no-progress"]) == 0
    before = _figures(out)
    named = next(m["grader_status"] for m in before["rubric"] if m["name"] == "rubric_score")
    assert named["grader"] == "judge:met"
    for d in (out / "judge").glob("rubric-*"):
        if d.name != named["grading"]:
            os.utime(d / "grading.json", (2e9, 2e9))  # the other grading looks newer
    assert main(["score", str(out)]) == 0
    assert _figures(out) == before
