"""Rubric grading (HealthBench's layout): the rubric task, per-criterion verdicts from fake graders
(generate and logprobs), item and run scores, per-tag scores, met rates, grader validation against
human labels, the unvalidated-grader label and refusal to print, resume, evaluate()."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from chimed_eval.cli.app import main
from chimed_eval.core.errors import DataError
from chimed_eval.judge.rubric_figures import grader_figures, item_score, label_agreement, macro_f1, majority

ROOT = Path(__file__).resolve().parents[1]
ITEMS, LABELS = ROOT / "examples" / "rubric_zh.jsonl", ROOT / "examples" / "rubric_zh_labels.jsonl"


def _run(tmp: Path, *extra: str, model: str = "oracle") -> Path:
    out = tmp / "run"
    assert main(["run", "--backend", "fake", "--model", model, "--tasks", "rubric", "--task-args", f"path={ITEMS}",
                 "--output", str(out), "--no-progress", *extra]) == 0
    return out


def _grade(out: Path, *args: str) -> dict:
    assert main(["judge", str(out), "--judge-backend", "fake", "--no-progress", *args]) == 0
    found = sorted((out / "judge").glob("rubric-*/results.json"), key=lambda p: p.stat().st_mtime)
    return json.loads(found[-1].read_text(encoding="utf-8"))


# --- the scoring rule, by hand ----------------------------------------------------------------

@pytest.mark.parametrize("points, met, expected", [
    ([10, 4, 5, -10, 3], [True, True, True, False, True], 1.0),
    ([10, 4, 5, -10, 3], [False, True, False, True, False], 0.0),  # 4 - 10 < 0: clipped
    ([8, -8, 6, 3], [True, False, False, True], 11 / 17),
    ([8, -8, 6, 3], [True, True, True, True], 9 / 17),
    ([5, 5], [None, True], 0.5),  # no verdict: not met
])
def test_item_score_is_met_points_over_positive_points_clipped(points, met, expected):
    assert item_score(points, met) == pytest.approx(expected)


def test_macro_f1_and_majority():
    y = [True, True, False, False]
    assert macro_f1(y, y) == 1.0
    assert macro_f1(y, [True, True, True, True]) == pytest.approx((2 * 2 / (2 * 2 + 2) + 0.0) / 2)
    assert macro_f1(y, [True, False, False, True]) == pytest.approx(0.5)
    a = label_agreement(y * 10, (y * 10)[:-1] + [True], seed=1)
    assert a["n"] == 40 and a["ci_low"] <= a["macro_f1"] <= a["ci_high"] < 1.0 + 1e-9
    assert majority([True, True, False]) and not majority([True, False]) and not majority([None, None, True])


def test_tags_and_met_rates_by_hand():
    items = [{"id": "a", "example_tags": ["theme:x"], "rubrics": [
        {"criterion": "c1", "points": 6, "tags": ["axis:accuracy"]}, {"criterion": "c2", "points": 4, "tags": ["axis:completeness"]},
        {"criterion": "c3", "points": -5, "tags": ["axis:accuracy"]}]},
        {"id": "b", "example_tags": [], "rubrics": [{"criterion": "d1", "points": 2, "tags": ["axis:completeness"]}]}]
    f = grader_figures(items, {"a": [True, False, True], "b": [True]}, seed=0)
    assert f["item_scores"] == {"a": pytest.approx(0.1), "b": 1.0}
    assert f["score"]["value"] == pytest.approx(0.55) and f["n_criteria"] == 4
    assert f["tags"]["axis:accuracy"]["value"] == pytest.approx(1 / 6)  # (6 - 5) / 6, item a only
    assert f["tags"]["axis:completeness"]["value"] == pytest.approx(0.5)  # a: 0, b: 1
    assert f["tags"]["theme:x"]["value"] == pytest.approx(0.1)
    assert f["met_rate"]["positive"]["value"] == pytest.approx(2 / 3) and f["met_rate"]["negative"]["value"] == 1.0


# --- the example set and the labels ------------------------------------------------------------

def test_example_set_and_labels_are_as_promised():
    items = [json.loads(x) for x in ITEMS.read_text(encoding="utf-8").splitlines()]
    labels = [json.loads(x) for x in LABELS.read_text(encoding="utf-8").splitlines()]
    assert len(items) >= 10 and len(labels) >= 50
    crits = [r for it in items for r in it["rubrics"]]
    assert sum(r["points"] < 0 for r in crits) >= 10 and all("harm" in r["tags"] for r in crits if r["points"] < 0)
    tags = {t for r in crits for t in r["tags"]}
    assert {"theme:emergency", "axis:accuracy", "axis:completeness", "axis:communication"} <= tags
    assert {lab["met"] for lab in labels} == {True, False}


def test_malformed_items_name_line_and_field(tmp_path):
    from chimed_eval.tasks.rubric import RubricSpec, load

    bad = tmp_path / "bad.jsonl"
    good = ITEMS.read_text(encoding="utf-8").splitlines()[0]
    doc = json.loads(good)
    doc["rubrics"][1]["points"] = 0
    bad.write_text(good + "\n" + json.dumps(doc, ensure_ascii=False) + "\n", encoding="utf-8")
    with pytest.raises(DataError) as e:
        load(RubricSpec(str(bad)))
    assert (e.value.line, e.value.field) == (2, "rubrics[1].points")
    doc = json.loads(good)
    doc["rubrics"] = [r for r in doc["rubrics"] if r["points"] < 0]
    bad.write_text(json.dumps(doc, ensure_ascii=False) + "\n", encoding="utf-8")
    with pytest.raises(DataError, match="no criterion with positive points"):
        load(RubricSpec(str(bad)))


# --- grading end to end with fake graders ------------------------------------------------------

def test_always_met_and_never_met_graders(tmp_path):
    out = _run(tmp_path)
    met = _grade(out, "--judge", "judge:met", "--allow-unvalidated-grader")["tasks"]["rubric"]["graders"]["judge:met"]
    items = [json.loads(x) for x in ITEMS.read_text(encoding="utf-8").splitlines()]
    want = [item_score([r["points"] for r in it["rubrics"]], [True] * len(it["rubrics"])) for it in items]
    assert met["score"]["value"] == pytest.approx(sum(want) / len(want))
    assert met["met_rate"]["negative"]["value"] == 1.0 and met["n_criteria"] == 49
    never = _grade(out, "--judge", "judge:unmet")["tasks"]["rubric"]["graders"]["judge:unmet"]
    assert never["score"]["value"] == 0.0 and never["met_rate"]["positive"]["value"] == 0.0


def test_unvalidated_grader_is_labelled_and_withheld(tmp_path, capsys):
    out = _run(tmp_path)
    capsys.readouterr()
    res = _grade(out, "--judge", "judge:keyword")
    printed = capsys.readouterr().out
    assert res["reported_status"] == "unvalidated" and res["grader_validation"] == {"judge:keyword": "unvalidated"}
    assert res["tasks"]["rubric"]["graders"]["judge:keyword"]["grader_validation"] == "unvalidated"
    assert "score withheld: unvalidated grader" in printed and "score 7" not in printed
    _grade(out, "--judge", "judge:keyword", "--allow-unvalidated-grader")
    assert "[UNVALIDATED GRADER]" in capsys.readouterr().out


def test_grader_validation_against_labels_with_threshold(tmp_path, capsys):
    out = _run(tmp_path)
    res = _grade(out, "--judge", "judge:keyword", "--grader-labels", str(LABELS))
    v = res["validation"]["judge:keyword"]
    assert v["n"] == 82 and v["ci_low"] <= v["macro_f1"] <= v["ci_high"]
    assert res["reported_status"] == ("validated" if v["macro_f1"] >= 0.7 else "below-threshold")
    assert "below-threshold grader" in capsys.readouterr().out
    lower = _grade(out, "--judge", "judge:keyword", "--grader-labels", str(LABELS), "--grader-min-f1", "0.6")
    assert lower["reported_status"] == "validated" and lower["min_f1"] == 0.6
    printed = capsys.readouterr().out
    assert "score withheld" not in printed and "by tag: axis:accuracy" in printed
    # an always-met grader agrees poorly with the labels: macro F1 well below the threshold
    assert _grade(out, "--judge", "judge:met", "--grader-labels", str(LABELS))["validation"]["judge:met"]["macro_f1"] < 0.5


def test_logprobs_verdicts_and_a_panel(tmp_path):
    out = _run(tmp_path)
    gen = _grade(out, "--judge", "judge:keyword", "--allow-unvalidated-grader")
    lp = _grade(out, "--judge", "judge:keyword", "--verdict", "logprobs", "--allow-unvalidated-grader")
    g, p = (r["tasks"]["rubric"]["graders"]["judge:keyword"] for r in (gen, lp))
    assert g["item_scores"] == p["item_scores"] and lp["verdict"] == "logprobs"
    panel = _grade(out, "--judge", "judge:keyword,judge:met,judge:unmet", "--grader-labels", str(LABELS))
    t = panel["tasks"]["rubric"]
    assert t["reported"] == "panel" and t["graders"]["panel"]["item_scores"] == g["item_scores"]  # met/unmet cancel
    assert set(panel["validation"]) == {"judge:keyword", "judge:met", "judge:unmet", "panel"}


def test_bad_labels_name_line_and_field(tmp_path, capsys):
    out = _run(tmp_path)
    bad = tmp_path / "labels.jsonl"
    rows = LABELS.read_text(encoding="utf-8").splitlines()[:3]
    r = json.loads(rows[2])
    r["criterion"] = "不存在的评分项"
    bad.write_text("\n".join([*rows[:2], json.dumps(r, ensure_ascii=False)]) + "\n", encoding="utf-8")
    assert main(["judge", str(out), "--judge", "judge:met", "--judge-backend", "fake", "--grader-labels", str(bad),
                 "--no-progress"]) == 2
    assert f"{bad}:3" in capsys.readouterr().err


def test_resume_grades_only_what_is_missing(tmp_path):
    out = _run(tmp_path)
    first = _grade(out, "--judge", "judge:keyword", "--grader-labels", str(LABELS))
    rec = next((out / "judge").glob("rubric-*/records/rubric.jsonl"))
    full = rec.read_text(encoding="utf-8")
    rec.write_text("".join(full.splitlines(keepends=True)[:17]), encoding="utf-8")
    again = _grade(out, "--judge", "judge:keyword", "--grader-labels", str(LABELS))
    assert rec.read_text(encoding="utf-8") == full
    assert {k: v for k, v in again.items()} == first


def test_run_judge_grades_rubric_tasks_and_evaluate_reaches_it(tmp_path, capsys):
    out = _run(tmp_path, "--judge", "judge:keyword", "--judge-backend", "fake", "--grader-labels", str(LABELS),
               "--grader-min-f1", "0.6")
    assert "judge-rubric" in capsys.readouterr().out
    assert next((out / "judge").glob("rubric-*/results.json")).is_file()
    import chimed_eval

    from chimed_eval.tasks.factory import TASK_TYPES

    task = TASK_TYPES.get("rubric").from_args({"path": str(ITEMS)})
    run = chimed_eval.evaluate("oracle", task, backend="fake", output=tmp_path / "api", progress=False,
                               judge="judge:keyword", judge_backend="fake", grader_labels=LABELS, grader_min_f1=0.6)
    (res,) = run.judgements.values()
    assert res["reported_status"] == "validated" and res["tasks"]["rubric"]["n"] == 12


def test_report_marks_unvalidated_figures(tmp_path):
    out = _run(tmp_path)
    _grade(out, "--judge", "judge:met")
    from chimed_eval.reports.judge import judge_html

    html = "\n".join(judge_html(out))
    assert "[UNVALIDATED GRADER]" in html and "not trustworthy" in html


def test_unreadable_verdicts_count_as_invalid_and_not_met(tmp_path):
    out = _run(tmp_path)
    f = _grade(out, "--judge", "judge:invalid", "--allow-unvalidated-grader")["tasks"]["rubric"]["graders"]["judge:invalid"]
    assert (f["invalid"], f["invalid_rate"], f["score"]["value"]) == (49, 1.0, 0.0)


def test_grader_flags_need_a_rubric_grading(tmp_path, capsys):
    out = _run(tmp_path)
    assert main(["run", "--backend", "fake", "--model", "oracle", "--tasks", "rubric", "--task-args", f"path={ITEMS}",
                 "--output", str(tmp_path / "o2"), "--no-progress", "--grader-labels", str(LABELS)]) == 2
    assert "need --judge" in capsys.readouterr().err
    assert main(["judge", str(out), "--judge", "judge:met", "--judge-backend", "fake", "--protocol", "pointwise",
                 "--grader-labels", str(LABELS), "--no-progress"]) == 2
    assert "rubric tasks" in capsys.readouterr().err


def test_rubric_figures_reach_results_json_labelled_and_the_export_table(tmp_path, capsys):
    """The run's own results.json (sealed, schema-valid) carries the rubric score with its grader's
    status; the export table shows the label; labels turn it to validated or below-threshold."""
    import jsonschema

    from chimed_eval.runs.reader import read_run

    schema = json.loads((ROOT / "chimed_eval" / "schema" / "results.schema.json").read_text(encoding="utf-8"))
    out = _run(tmp_path)
    before = json.loads((out / "results.json").read_text(encoding="utf-8"))
    assert not any(m["name"] == "rubric_score" for m in before["tasks"]["rubric"]["metrics"])
    res = _grade(out, "--judge", "judge:keyword")
    doc = json.loads((out / "results.json").read_text(encoding="utf-8"))
    jsonschema.validate(doc, schema)
    ms = {m.name: m for m in read_run(out).tasks[0].metrics}  # read back through the verifying reader
    score = ms["rubric_score"]
    assert score.value == pytest.approx(res["tasks"]["rubric"]["graders"]["judge:keyword"]["score"]["value"])
    assert score.ci_low <= score.value <= score.ci_high and score.protocol == "judge-rubric (unvalidated grader)"
    assert any(n.startswith("rubric_score[axis:") for n in ms) and "rubric_met_rate[negative]" in ms
    assert "grader_macro_f1" not in ms
    capsys.readouterr()
    assert main(["export", str(out)]) == 0
    row = [ln for ln in capsys.readouterr().out.splitlines() if ",rubric,rubric_score," in ln]
    assert len(row) == 1 and "unvalidated grader" in row[0]
    assert main(["leaderboard", str(out), "--tasks", "rubric", "--metric", "rubric_score", "--no-write"]) == 0
    assert "n=12 (unvalidated grader)" in capsys.readouterr().out
    _grade(out, "--judge", "judge:keyword", "--grader-labels", str(LABELS))
    ms = {m.name: m for m in read_run(out).tasks[0].metrics}
    f1 = ms["grader_macro_f1"]
    assert f1.ci_low <= f1.value <= f1.ci_high
    want = "validated grader, macro F1 >= 0.7" if f1.value >= 0.7 else "below-threshold grader, macro F1 < 0.7"
    assert want in ms["rubric_score"].protocol
    assert sum(1 for m in read_run(out).tasks[0].metrics if m.name == "rubric_score") == 1  # replaced, not added
