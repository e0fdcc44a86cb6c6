"""The ``generate`` variant's answer reading as a data table: text, valid letters, expected letter
(None = failure). It is the same letter reader as ``cot`` (issue 22 item 6):
``chimed_eval.extract.letters.extract_final_answer`` without option texts, through ``evidence.judge_choice``."""

import pytest

from chimed_eval.evidence.kinds import ChoiceEvidence, judge_choice
from chimed_eval.extract.letters import extract_final_answer
from chimed_eval.core.types import SampleScore

CASES = [
    ("答案：B", "ABCD", "B"),
    ("答案:C", "ABCD", "C"),
    ("答案： d", "ABCD", "D"),
    ("Ｃ", "ABCD", "C"),  # full-width letter
    ("答案：Ａ", "ABCD", "A"),
    ("我认为是A，不对，答案是C", "ABCD", "C"),  # the last stated option
    ("正确答案为（B）", "ABCD", "B"),
    ("选B", "ABCD", "B"),
    ("B. 卵巢", "ABCD", "B"),
    ("The answer: A", "ABCD", "A"),
    ("答案：E", "ABCD", None),  # not an option of this item
    ("答案：E", "ABCDE", "E"),
    ("我不知道", "ABCD", None),
    ("", "ABCD", None),
    ("ABC transporter", "ABCD", None),  # letters inside a word are not answers
    ("A和B都不对，应选D", "ABCD", "D"),
    # issue 22 item 6: several letters on a single-answer item, a copied option list
    ("A、B、C、D", "ABCD", None),  # was D
    ("答案：A、B、C、D", "ABCD", None),  # was A
    ("答案：AB", "ABCDE", None),
    ("AB", "ABCD", None),
    ("\nA.\nB.\nC.\nD.\nE.", "ABCDE", None),  # gemma3-270m: was E
    ("B超提示胆囊结石，考虑B", "ABCD", "B"),  # B超 names a term
]


@pytest.mark.parametrize("text,letters,expected", CASES)
def test_generate_reads_letters_like_cot(text, letters, expected):
    rec = SampleScore(id="q", subject=None, prompt="p", prompt_hash="h", gold="B", prediction=None, score=0.0,
                      generation=text)
    got = judge_choice(rec, ChoiceEvidence(len(letters)), "generate")
    assert (got.prediction, got.extraction_failed, got.score) == (expected, expected is None, float(expected == "B"))
    cot = extract_final_answer(text, len(letters), multi=False)
    assert (cot.letters, cot.rule) == (expected, got.extra["extraction_rule"])


@pytest.mark.parametrize("text,rule", [("A、B、C、D", "several"), ("答案：AB", "several"), ("\nA.\nB.\nC.\nD.", "none"),
                                       ("答案：B", "final"), ("B", "last_letter")])
def test_generate_records_the_rule_so_several_letters_are_counted(text, rule):
    rec = SampleScore(id="q", subject=None, prompt="p", prompt_hash="h", gold="B", prediction=None, score=0.0,
                      generation=text)
    assert judge_choice(rec, ChoiceEvidence(4), "generate").extra["extraction_rule"] == rule


@pytest.mark.parametrize("output", ["答案：AB", "A、B、C、D", "\nA.\nB.\nC.\nD."])
def test_generate_and_cot_read_one_output_alike_and_the_report_shows_the_reading(tmp_path, output):
    """A run of each variant on the fake model that always writes ``output``: the same failures
    (no letter chosen, every item wrong), counted by rule, and the worst-items table shows the
    extracted answer beside the raw output."""
    import json

    from chimed_eval.cli.app import main
    from chimed_eval.reports.html import render_html
    from conftest import write_exam_csv

    exam = write_exam_csv(tmp_path / "exam.csv", 4)
    rule = "none" if output.startswith("\n") else "several"
    for variant in ("generate", "cot"):
        out = tmp_path / variant
        assert main(["run", "--no-progress", "--backend", "fake", "--model", f"fixed:{output}", "--tasks", "mcq",
                     "--task-args", f"path={exam}", "--variant", variant, "--output", str(out)]) == 0
        task = json.loads((out / "results.json").read_text(encoding="utf-8"))["tasks"]["mcq"]
        m = {x["name"]: x["value"] for x in task["metrics"]}
        assert (m["acc"], m["extraction_failure_rate"], task["extraction_failures"]) == (0.0, 100.0, 4), variant
        assert m[f"extraction_rule_{rule}_count"] == 4
        recs = [json.loads(line) for line in (out / "samples" / "mcq.jsonl").read_text(encoding="utf-8").splitlines()]
        assert {(r["prediction"], r["extra"]["extraction_rule"]) for r in recs} == {(None, rule)}
        html = render_html(out)
        assert "<th>gold</th><th>extracted</th><th>output</th>" in html
        assert f"<td>{'none (several)' if rule == 'several' else 'none'}</td><td><pre>" in html


@pytest.mark.parametrize("prediction,failed,extra,generation,shown", [
    ("B", False, {"extraction_rule": "last_letter"}, "考虑B", "B (last_letter)"),
    (None, True, {"extraction_rule": "several"}, "A、B、C、D", "none (several)"),
    (None, True, {"extraction_rule": "none"}, "不知道", "none"),
    ("C", False, {}, None, "C"),  # letter-scored: the predicted option
    ([["华法林", "药物"]], False, {}, "华法林：药物", '[["华法林", "药物"]]'),  # entities
    (None, False, {}, "多休息", ""),  # free text, scored as it is
])
def test_worst_items_show_what_was_extracted(prediction, failed, extra, generation, shown):
    from chimed_eval.reports.sections import extracted_text

    rec = SampleScore(id="q", subject=None, prompt="p", prompt_hash="h", gold="A", prediction=prediction, score=0.0,
                      generation=generation, extraction_failed=failed, extra=extra)
    assert extracted_text(rec) == shown
