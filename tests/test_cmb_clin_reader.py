"""The CMB-Clin reader: typed cases, embedded options and answer letters, errors naming the field."""

from __future__ import annotations

import json
import os
from pathlib import Path

import pytest

from chimed_eval.core.errors import DataError, MissingDataError
from chimed_eval.tasks.cmb_clin import read_cases

SHARED = Path(os.environ.get("CHIMED_EVAL_SHARED_DATA", "/work/shared/data")) / "cmb-clin"


def _write(tmp_path: Path, doc: object) -> Path:
    p = tmp_path / "CMB-Clin-qa.json"
    p.write_text(json.dumps(doc, ensure_ascii=False), encoding="utf-8")
    return p


def test_reads_cases_options_and_letters(tmp_path):
    p = _write(tmp_path, [{"id": "7", "title": "案例", "description": "病人，男，49岁。", "QA_pairs": [
        {"question": "简述诊断。", "answer": "嵌顿疝。"},
        {"question": "最可能的诊断是\n   A. 脾破裂\n   B. 肝破裂\n   C. 胃穿孔", "answer": "析：……所以答案是B。"},
        {"question": "预防措施是\nA.清洗\nB.环切", "answer": "答案： A\n解析：……"}]}])
    (case,) = read_cases(p)
    assert (case.id, case.title, len(case.questions)) == ("7", "案例", 3)
    q0, q1, q2 = case.questions
    assert (q0.options, q0.answer_letter, q0.is_choice) == ((), None, False)
    assert (q1.options, q1.answer_letter, q1.is_choice) == (("脾破裂", "肝破裂", "胃穿孔"), "B", True)
    assert (q2.options, q2.answer_letter, q2.index) == (("清洗", "环切"), "A", 2)


@pytest.mark.parametrize("doc, field", [
    ({"a": 1}, None),
    ([{"id": "1", "description": "", "QA_pairs": [{"question": "q", "answer": "a"}]}], "[0].description"),
    ([{"id": "1", "description": "d", "QA_pairs": []}], "[0].QA_pairs"),
    ([{"id": "1", "description": "d", "QA_pairs": [{"question": "q", "answer": " "}]}], "[0].QA_pairs[0].answer"),
    ([{"id": "1", "description": "d", "QA_pairs": [{"question": "q", "answer": "a"}]},
      {"id": "1", "description": "d", "QA_pairs": [{"question": "q", "answer": "a"}]}], "[1].id"),
    ([{"id": "1", "description": "d", "QA_pairs": [{"question": "x\nA. a\nB. b", "answer": "所以答案是D"}]}],
     "[0].QA_pairs[0].answer"),
])
def test_malformed_cases_name_the_field(tmp_path, doc, field):
    with pytest.raises(DataError) as e:
        read_cases(_write(tmp_path, doc))
    assert e.value.field == field


def test_missing_file_says_where(tmp_path):
    with pytest.raises(MissingDataError, match="CMB-Clin-qa.json"):
        read_cases(tmp_path)


@pytest.mark.skipif(not (SHARED / "CMB-Clin-qa.json").is_file(), reason="CMB-Clin not in the shared data")
def test_release_has_74_cases_208_questions_7_choice():
    cases = read_cases(SHARED)
    assert (len(cases), sum(len(c.questions) for c in cases)) == (74, 208)
    assert sum(q.is_choice for c in cases for q in c.questions) == 7


def test_errors_name_the_line_the_case_starts_on(tmp_path):
    """One JSON-array reader (files.tabular.read_json_array) for CMB-Clin and CMB-Exam: a bad case
    names its file, the line its object starts on and the field."""
    good = {"id": "1", "description": "d", "QA_pairs": [{"question": "q", "answer": "a"}]}
    bad = {"id": "2", "description": "d", "QA_pairs": [{"question": "q", "answer": ""}]}
    p = tmp_path / "CMB-Clin-qa.json"
    p.write_text(json.dumps([good, bad], ensure_ascii=False, indent=1), encoding="utf-8")
    start = [k for k, ln in enumerate(p.read_text(encoding="utf-8").splitlines(), 1) if ln == " {"][1]  # 2nd case
    with pytest.raises(DataError) as e:
        read_cases(p)
    assert (e.value.line, e.value.field) == (start, "[1].QA_pairs[0].answer")
    assert f"CMB-Clin-qa.json:{start}:" in str(e.value)
    p.write_text('{"cases": []}', encoding="utf-8")
    with pytest.raises(DataError, match="expected a JSON list of cases"):
        read_cases(p)


def test_cmb_exam_answer_file_errors_name_line_and_field(tmp_path):
    from chimed_eval.tasks.cmb import _answers

    p = tmp_path / "CMB-test-choice-answer.json"
    p.write_text('[\n{"id": 1, "answer": "A"},\n{"id": 1, "answer": "B"}\n]', encoding="utf-8")
    with pytest.raises(DataError) as e:
        _answers(p)
    assert (e.value.line, e.value.field) == (3, "id 1")
    p.write_text('[\n{"id": 1, "answer": "A"},\n{"id": 2}\n]', encoding="utf-8")
    with pytest.raises(DataError) as e:
        _answers(p)
    assert (e.value.line, e.value.field) == (3, "[1]")
    p.write_text('[\n{"id": 1, "answer": "A"},\n7\n]', encoding="utf-8")
    with pytest.raises(DataError) as e:
        _answers(p)
    assert (e.value.line, e.value.field) == (3, "[1]")
