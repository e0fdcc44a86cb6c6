"""CMB-Exam (FreedomIntelligence/CMB), test split, read from the official release layout.

Files, under ``<data-dir>/cmb/`` (the question file may also sit at its place in the release zip,
``CMB-Exam/CMB-test/``):

* ``CMB-test-choice-question-merge.json``: a JSON list of questions ``{"id", "exam_type",
  "exam_class", "exam_subject", "question", "question_type", "option": {"A": ..., ...}}``;
  ``question_type`` is 单项选择题 (one answer) or 多项选择题 (several).
* ``CMB-test-choice-answer.json``: a JSON list ``{"id", "exam_type", "exam_class", "exam_subject",
  "question_type", "answer": "ABD"}``, matched to the questions by ``id`` (a question without an
  ``id`` is the n-th question, id n, as the official scorer indexes them).

The official scorer (``src/score_test.py``) reports accuracy per ``exam_type`` and per
``exam_class``; the leaderboard's figure is the unweighted mean over sub-categories. Here an item's
subject is ``<exam_type>/<exam_class>`` (28 sub-categories, 400 items each, in the release), so
``acc_exact_set_macro`` is the official figure and ``acc_exact_set`` the pooled one; both are
reported, with option F1 beside them (:mod:`chimed_eval.evidence.multi_choice`). Items keep the question
file's order. 0-shot; default variant ``generate`` (letter scoring refuses 多项选择题 items).

A question file that leaves some of the answer file's questions out is refused, with the counts of
questions and sub-categories it covers: a macro over the sub-categories present is not the
official figure (``--limit N`` runs part of the test set on purpose).
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from chimed_eval.data.sets import data_location
from chimed_eval.core.errors import DataError, MissingDataError
from chimed_eval.files.tabular import parse_answers, read_json_array, read_rows, require, split_options
from chimed_eval.core.types import file_sha256
from chimed_eval.task.multiple_choice import MCQTask
from chimed_eval.task.options import TaskData
from chimed_eval.core.types import Sample

from . import TASKS

FOLDER = data_location("cmb")  # its folder under the data dir
QUESTIONS = "CMB-test-choice-question-merge.json"
ANSWERS = "CMB-test-choice-answer.json"
SINGLE, MULTI = "单项选择题", "多项选择题"


def _find(root: Path, name: str, *places: str) -> Path:
    for p in (root / name, *(root / d / name for d in places)):
        if p.exists():
            return p
    raise MissingDataError(f"{root / name} not found. Put the CMB-Exam release there (test questions "
                           f"{QUESTIONS} and answers {ANSWERS}, from github.com/FreedomIntelligence/CMB)")


def _answers(path: Path) -> dict[str, dict[str, Any]]:
    out: dict[str, dict[str, Any]] = {}
    for i, row in enumerate(read_json_array(path, "answers {id, answer, ...}")):
        a = row.fields
        if "id" not in a or "answer" not in a:
            raise DataError(path, row.line, f"[{i}]", "expected an object with 'id' and 'answer'")
        key = str(a["id"])
        if key in out:
            raise DataError(path, row.line, f"id {key}", "answer given twice")
        out[key] = a
    return out


def _refuse_partial(qpath: Path, apath: Path, answers: dict[str, dict[str, Any]], asked: set[str],
                    subjects: set[str]) -> None:
    """A DataError, with the counts, when the questions cover only part of the answered ones."""
    left = [k for k in answers if k not in asked]
    if not left:
        return
    every = {f"{a.get('exam_type')}/{a.get('exam_class')}" for a in answers.values()}
    raise DataError(qpath, None, None, f"covers {len(asked)} of the {len(answers)} questions answered in {apath.name} "
                                       f"({len(subjects & every)} of {len(every)} sub-categories; {len(left)} answered "
                                       f"questions are missing, the first id {left[0]}): the official figure, "
                                       "acc_exact_set_macro, averages every sub-category; put the whole question file "
                                       "there (--limit N runs part of it)")


def load_cmb_exam(data_dir: Path) -> TaskData:
    """The test questions in file order, each with its answer from the answer file."""
    root = Path(data_dir) / FOLDER
    qpath = _find(root, QUESTIONS, "CMB-Exam/CMB-test", "CMB-test")
    apath = _find(root, ANSWERS)
    answers = _answers(apath)
    samples, names = [], {}
    for n, row in enumerate(read_rows(qpath, fmt="json"), 1):
        qid = str(row.fields.get("id", n))
        if qid not in answers:
            raise DataError(apath, None, f"id {qid}", f"no answer for question id {qid} ({qpath.name} line {row.line})")
        gold = answers[qid]
        qtype = str(require(row, qpath, "question_type"))
        if str(gold.get("question_type", qtype)) != qtype:
            raise DataError(apath, None, f"id {qid}", f"question_type {gold.get('question_type')!r} differs from the "
                                                      f"question's {qtype!r}")
        choices = tuple(split_options(require(row, qpath, "option"), path=qpath, line=row.line, field="option"))
        target = parse_answers(str(gold["answer"]), choices, path=apath, line=None, field=f"id {qid}")
        if (qtype == SINGLE) != isinstance(target, int):
            raise DataError(apath, None, f"id {qid}", f"answer {gold['answer']!r} does not fit a {qtype}")
        exam_type, exam_class = str(require(row, qpath, "exam_type")), str(require(row, qpath, "exam_class"))
        subject = f"{exam_type}/{exam_class}"
        names.setdefault(subject, exam_class)
        samples.append(Sample(id=f"test-{qid}", input=str(require(row, qpath, "question")), choices=choices,
                              target=target, subject=subject,
                              metadata={"file": f"{FOLDER}/{qpath.relative_to(root).as_posix()}", "line": row.line,
                                        "exam_subject": row.fields.get("exam_subject"), "question_type": qtype}))
    _refuse_partial(qpath, apath, answers, {s.id[len("test-"):] for s in samples}, set(names))
    files = {f"{FOLDER}/{p.relative_to(root).as_posix()}": file_sha256(p) for p in (qpath, apath)}
    return TaskData(samples=samples, files=files, subject_names=names)


TASKS.add("cmb-exam", lambda: MCQTask("cmb-exam", load_cmb_exam, "CMB-Exam test (official layout); exact set match, "
                                      "macro over sub-categories is the official figure", multi_answer=True,
                                      default_variant="generate"),
          "CMB-Exam test, official release layout (questions + CMB-test-choice-answer.json): acc_exact_set_macro "
          "over the 28 sub-categories (official) and pooled; --variant generate or cot")
