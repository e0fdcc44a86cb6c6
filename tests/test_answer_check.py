"""``--answer-check MODEL`` (issue 26 item 4): a model reads the letters only where the extraction
rules found none; its readings are counted (rule ``model``) and reported apart from ``acc``."""

from __future__ import annotations

import json

import pytest

import chimed_eval
from chimed_eval.backends.fake import FakeBackend
from chimed_eval.cli.app import main
from chimed_eval.core.types import Response
from conftest import write_exam_csv


class HalfUnread(FakeBackend):
    """Answers B to items with an odd id (rows 3, 5, ...: items 1, 3, ...) and something no rule can
    read to the others."""

    def __init__(self) -> None:
        super().__init__(model="fixed:B")

    def generate(self, requests):
        return [Response(key=r.key, text="答案：B" if int(r.key.split("-")[-1]) % 2 == 1 else "这题我不太确定")
                for r in requests]


def figures(result) -> dict[str, float]:
    return {m.name: m.value for m in result.tasks[0].metrics}


@pytest.mark.parametrize("variant", ["generate", "cot"])
def test_the_checker_reads_only_what_the_rules_could_not(tmp_path, variant):
    exam = write_exam_csv(tmp_path / "exam.csv", 8, "ABCD")  # gold: A B C D A B C D
    opts = dict(task_args={"path": str(exam)}, variant=variant, progress=False)
    plain = chimed_eval.evaluate(HalfUnread(), ["mcq"], **opts)
    checked = chimed_eval.evaluate(HalfUnread(), ["mcq"], answer_check="fixed:A", answer_check_backend="fake", **opts)
    f, g = figures(plain), figures(checked)
    assert g["acc"] == f["acc"] == 25.0  # rule readings only, unchanged (B right on items 1 and 5 of 8)
    assert g["extraction_rule_model_count"] == 4 and g["extraction_rule_none_count"] == 0
    assert f["extraction_rule_none_count"] == 4 and "extraction_rule_model_count" not in f
    assert g["acc_with_answer_check"] == 50.0  # + A read by the checker, right on items 0 and 4
    recs = {s.id: s for s in checked.samples("mcq")}
    read_by_rules = [s for s in recs.values() if s.generation == "答案：B"]
    assert read_by_rules and all("answer_check" not in s.extra for s in read_by_rules)  # never sent to the checker
    unread = [s for s in recs.values() if s.generation != "答案：B"]
    assert all(s.extra["extraction_rule"] == "model" and s.prediction is None and s.score == 0.0 for s in unread)
    assert {s.extra["prediction_with_answer_check"] for s in unread} == {"A"}
    assert all(s.extra["answer_check"]["model"] == "fixed:A" for s in unread)


def test_a_checker_that_reads_nothing_leaves_rule_none(tmp_path):
    exam = write_exam_csv(tmp_path / "exam.csv", 4)
    r = chimed_eval.evaluate(HalfUnread(), ["mcq"], task_args={"path": str(exam)}, variant="generate",
                             answer_check="fixed:无", answer_check_backend="fake", progress=False)
    f = figures(r)
    assert f["extraction_rule_model_count"] == 0 and f["extraction_rule_none_count"] == 2
    assert f["acc_with_answer_check"] == f["acc"]


def test_checked_records_are_kept_on_resume_and_rescoring(tmp_path, monkeypatch):
    exam = write_exam_csv(tmp_path / "exam.csv", 6)
    out, cache = tmp_path / "out", tmp_path / "cache"
    args = ["run", "--no-progress", "--backend", "fake", "--model", "fixed:不知道", "--tasks", "mcq", "--task-args",
            f"path={exam}", "--variant", "generate", "--answer-check", "fixed:A", "--answer-check-backend", "fake",
            "--cache", str(cache), "--output", str(out)]
    assert main(args) == 0
    first = json.loads((out / "results.json").read_text())["tasks"]["mcq"]["metrics"]
    assert any(cache.iterdir())  # the checker's calls went through the response cache

    import chimed_eval.engine.consult as consult

    def refuse(*a, **k):
        raise AssertionError("the checker was opened again")

    monkeypatch.setattr(consult, "open_helper_backend", refuse)
    assert main(args) == 0  # every record already checked: no checker call
    assert main(["score", str(out)]) == 0  # rescoring reads the saved replies, no model
    again = json.loads((out / "results.json").read_text())["tasks"]["mcq"]["metrics"]
    assert [(m["name"], m["value"]) for m in again] == [(m["name"], m["value"]) for m in first]
    assert {m["name"]: m["value"] for m in first}["extraction_rule_model_count"] == 6


@pytest.mark.parametrize("flags, message", [
    (["--answer-check", "fixed:A", "--answer-check-backend", "fake"], "--variant generate"),
    (["--variant", "generate", "--answer-check-args", "x=1"], "--answer-check-args given without"),
    (["--variant", "generate", "--answer-check", "fixed:A", "--answer-check-backend", "nope"], "nope"),
])
def test_bad_answer_check_flags_exit_2(tmp_path, capsys, flags, message):
    exam = write_exam_csv(tmp_path / "exam.csv", 4)
    code = main(["run", "--backend", "fake", "--model", "fixed:A", "--tasks", "mcq", "--task-args", f"path={exam}",
                 "--output", str(tmp_path / "o"), *flags])
    assert code == 2 and message in capsys.readouterr().err
