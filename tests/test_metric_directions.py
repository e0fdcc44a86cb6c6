"""Each metric declares its direction beside its definition; ``check`` reads it from there
(issue 23, item 4)."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from chimed_eval.cli.app import main
from chimed_eval.metrics import DEFAULT_DIRECTION, declaration_for, declared_directions, metric_direction
from chimed_eval.metrics import calibration, choice, text
from conftest import write_exam_csv

GOLDEN = Path(__file__).resolve().parent / "golden"


@pytest.fixture
def checked(tmp_path, capsys):
    """A fake run of a 12-item exam, its baseline, and ``check(edits)``: the check's row per
    metric after moving the named figures by the given amounts."""
    exam = write_exam_csv(tmp_path / "exam.csv", 12, "ABCD")
    out = tmp_path / "out"
    assert main(["run", "--no-progress", "--backend", "fake", "--model", "fixed:A", "--tasks", "mcq",
                 "--task-args", f"path={exam}", "--output", str(out)]) == 0
    baseline = tmp_path / "b.json"
    assert main(["check", str(out), "--save-baseline", str(baseline)]) == 0
    original = (out / "results.json").read_text()

    def check(moves: dict[str, float]) -> dict[str, str]:
        doc = json.loads(original)
        doc.pop("integrity", None)  # a hand-edited results file: compared as it is
        for m in doc["tasks"]["mcq"]["metrics"]:
            m["value"] += moves.get(m["name"], 0.0)
        (out / "results.json").write_text(json.dumps(doc))
        capsys.readouterr()
        main(["check", str(out), "--baseline", str(baseline), "--all"])
        rows = [line for line in capsys.readouterr().out.splitlines() if line.startswith("mcq")]
        return {name: next(r for r in rows if f" {name} (" in r) for name in moves}

    return check


def test_check_reads_each_direction_from_the_metric_module(checked, monkeypatch):
    rows = checked({"ece": 1.0, "acc": 1.0})
    assert "+1.0000 (worse)" in rows["ece"]  # calibration.DIRECTIONS: ece lower-is-better
    assert "+1.0000 (better)" in rows["acc"]  # choice.DIRECTIONS: acc higher-is-better

    monkeypatch.delitem(calibration.DIRECTIONS, "ece")  # undeclared: the default rule, higher
    monkeypatch.setitem(choice.DIRECTIONS, "acc", "lower")
    rows = checked({"ece": 1.0, "acc": 1.0})
    assert "+1.0000 (better)" in rows["ece"] and "+1.0000 (worse)" in rows["acc"]

    monkeypatch.setitem(calibration.DIRECTIONS, "ece", None)  # no better side: the move alone
    row = checked({"ece": 1.0})["ece"]
    assert "+1.0000" in row and "better" not in row and "worse" not in row


def test_names_built_from_parts_take_the_most_specific_pattern(monkeypatch):
    assert declaration_for("f1_span_all") == "f1*" and metric_direction("f1_span_all") == "higher"
    assert declaration_for("f1_count") == "*_count" and metric_direction("f1_count") is None
    assert declaration_for("truncated_generation_rate") == "*_rate" and metric_direction("pass@5") == "higher"
    assert metric_direction("pred_share_C") is None and metric_direction("rougeL_jieba") == "higher"
    assert declaration_for("no_such_figure") is None and metric_direction("no_such_figure") == DEFAULT_DIRECTION
    monkeypatch.delitem(text.DIRECTIONS, "*_rate")
    assert metric_direction("truncated_generation_rate") == DEFAULT_DIRECTION
    assert metric_direction("extraction_failure_rate") == "lower"  # declared by name in choice and ner


def test_conflicting_declarations_are_refused(monkeypatch):
    monkeypatch.setitem(choice.DIRECTIONS, "ece", "higher")
    with pytest.raises(ValueError, match="metric 'ece'.*declares"):
        metric_direction("acc")
    monkeypatch.delitem(choice.DIRECTIONS, "ece")
    monkeypatch.setitem(choice.DIRECTIONS, "empty*", "higher")  # five letters, as text's ``*_rate``
    with pytest.raises(ValueError, match="equally specific declarations disagree"):
        metric_direction("empty_generation_rate")
    monkeypatch.setitem(choice.DIRECTIONS, "empty*", "sideways")
    with pytest.raises(ValueError, match="expected higher, lower or None"):
        declared_directions()


def test_every_figure_of_the_golden_runs_is_declared():
    names = {m["name"] for f in GOLDEN.glob("*.baseline.json")
             for t in json.loads(f.read_text(encoding="utf-8"))["tasks"].values() for m in t["metrics"]}
    assert {"acc", "ece", "f1_span", "sacrebleu4_cum", "truncated_generation_rate"} <= names
    assert [n for n in sorted(names) if declaration_for(n) is None] == []
