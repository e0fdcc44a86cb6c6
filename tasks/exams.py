"""Multiple-choice exams: C-Eval and CMMLU medical subjects, MedQA (MCMLE), SafetyBench (zh).

Every loader reads the layout of ``shared/data`` (see ``chimed-eval data``) and returns items in a
documented order: subjects in the order listed here, then file order. ``--limit N`` takes the first
N of that order.
"""

from __future__ import annotations

import json
from functools import partial
from pathlib import Path
from typing import Sequence

from chimed_eval.core.errors import DataError, MissingDataError
from chimed_eval.files.tabular import parse_answer, read_rows, require, split_options
from chimed_eval.core.types import file_sha256
from chimed_eval.task.multiple_choice import MCQTask
from chimed_eval.task.options import TaskData
from chimed_eval.core.types import Sample

from . import TASKS

# The paper's seven CMMLU subjects, in the order of the data README, with the Chinese names that
# the authors' prompt (and lm-eval's description) uses.
CMMLU_PAPER = {
    "traditional_chinese_medicine": "中医中药",
    "anatomy": "解剖学",
    "virology": "病毒学",
    "genetics": "遗传学",
    "college_medical_statistics": "大学医学统计",
    "nutrition": "营养学",
    "clinical_knowledge": "临床知识",
}
CMMLU_MEDICAL = {**CMMLU_PAPER, "college_medicine": "大学医学", "professional_medicine": "专业医学"}
CEVAL_PAPER = ("clinical_medicine", "basic_medicine")
CEVAL_MEDICAL = ("clinical_medicine", "basic_medicine", "physician")
SAFETY_CATEGORIES = {
    "Offensiveness": "攻击冒犯", "Unfairness and Bias": "偏见歧视", "Physical Health": "身体健康",
    "Mental Health": "心理健康", "Illegal Activities": "违法犯罪", "Ethics and Morality": "伦理道德",
    "Privacy and Property": "隐私财产",
}


def _need(path: Path, dataset: str) -> Path:
    if not path.exists():
        raise MissingDataError(
            f"{path} not found. Put the {dataset} release there (layout as in shared/data/README.md), "
            f"or run: chimed-eval data --data-dir {path.parents[1] if len(path.parents) > 1 else path.parent} --datasets {dataset}"
        )
    return path


def _rel(data_dir: Path, path: Path) -> str:
    try:
        return str(path.relative_to(data_dir))
    except ValueError:
        return str(path)


def _exam_rows(path: Path, data_dir: Path, files: dict[str, str], *, id_field: str | None, q: str,
               answer: str, subject: str, id_prefix: str) -> list[Sample]:
    out = []
    for row in read_rows(path):
        # Texts exactly as released (lm-eval renders {{A}} unstripped; a few CMMLU options end in
        # spaces or U+3000): require() only checks presence.
        choices = tuple(str(row.fields[c]) for c in "ABCD" if require(row, path, c) is not None)
        target = parse_answer(require(row, path, answer), choices, path=path, line=row.line, field=answer)
        rid = str(row.fields.get(id_field, "")).strip() if id_field else ""
        sid = f"{id_prefix}{subject}-{rid if rid else row.line}"
        require(row, path, q)
        out.append(Sample(id=sid, input=str(row.fields[q]), choices=choices, target=target,
                          subject=subject, metadata={"file": _rel(data_dir, path), "line": row.line}))
    files[_rel(data_dir, path)] = file_sha256(path)
    return out


def load_cmmlu(data_dir: Path, subjects: dict[str, str]) -> TaskData:
    root = data_dir / "cmmlu"
    samples: list[Sample] = []
    fewshot: dict[str | None, list[Sample]] = {}
    files: dict[str, str] = {}
    for subj in subjects:
        test = _need(root / "test" / f"{subj}.csv", "cmmlu")
        samples += _exam_rows(test, data_dir, files, id_field="_col1", q="Question", answer="Answer", subject=subj, id_prefix="")
        dev = root / "dev" / f"{subj}.csv"
        if dev.exists():
            fewshot[subj] = _exam_rows(dev, data_dir, files, id_field="_col1", q="Question", answer="Answer",
                                       subject=subj, id_prefix="dev-")
    return TaskData(samples=samples, fewshot=fewshot, files=files, subject_names=subjects)


def load_ceval(data_dir: Path, subjects: Sequence[str]) -> TaskData:
    root = data_dir / "ceval"
    mapping_path = _need(root / "subject_mapping.json", "ceval")
    mapping = json.loads(mapping_path.read_text(encoding="utf-8"))
    names = {}
    for s in subjects:
        if s not in mapping:
            raise DataError(mapping_path, None, s, "subject missing from the C-Eval subject mapping")
        names[s] = mapping[s][1]
    samples: list[Sample] = []
    fewshot: dict[str | None, list[Sample]] = {}
    files = {_rel(data_dir, mapping_path): file_sha256(mapping_path)}
    for subj in subjects:
        val = _need(root / "val" / f"{subj}_val.csv", "ceval")
        samples += _exam_rows(val, data_dir, files, id_field="id", q="question", answer="answer", subject=subj, id_prefix="")
        dev = root / "dev" / f"{subj}_dev.csv"
        if dev.exists():
            fewshot[subj] = _exam_rows(dev, data_dir, files, id_field="id", q="question", answer="answer",
                                       subject=subj, id_prefix="dev-")
    return TaskData(samples=samples, fewshot=fewshot, files=files, subject_names=names)


def _medqa_file(path: Path, data_dir: Path, prefix: str) -> list[Sample]:
    out = []
    for row in read_rows(path, fmt="jsonl"):
        choices = tuple(split_options(str(require(row, path, "option"))))
        if len(choices) < 2:
            raise DataError(path, row.line, "option", f"expected at least 2 options, found {len(choices)}")
        target = parse_answer(require(row, path, "anwer"), choices, path=path, line=row.line, field="anwer")
        out.append(Sample(id=f"{prefix}{row.line}", input=str(require(row, path, "question")), choices=choices,
                          target=target, subject=None, metadata={"file": _rel(data_dir, path), "line": row.line}))
    return out


def load_medqa(data_dir: Path) -> TaskData:
    root = data_dir / "medqa_mcmle"
    test = _need(root / "test.jsonl", "medqa_mcmle")
    files = {_rel(data_dir, test): file_sha256(test)}
    samples = _medqa_file(test, data_dir, "test-")
    fewshot: dict[str | None, list[Sample]] = {}
    dev = root / "dev.jsonl"
    if dev.exists():
        fewshot[None] = _medqa_file(dev, data_dir, "dev-")
        files[_rel(data_dir, dev)] = file_sha256(dev)
    return TaskData(samples=samples, fewshot=fewshot, files=files)


def load_safetybench(data_dir: Path) -> TaskData:
    root = data_dir / "safetybench"
    qpath = _need(root / "test_zh_subset.json", "safetybench")
    apath = _need(root / "test_answers_zh_subset.json", "safetybench")
    answers = json.loads(apath.read_text(encoding="utf-8"))
    samples = []
    for row in read_rows(qpath, fmt="json"):
        qid = str(require(row, qpath, "id"))
        opts = require(row, qpath, "options")
        if not isinstance(opts, list) or not 2 <= len(opts) <= 10:
            raise DataError(qpath, row.line, "options", "expected a list of 2 to 10 options")
        if qid not in answers:
            raise DataError(apath, None, qid, "no answer for this question id")
        gold = answers[qid]["answer"] if isinstance(answers[qid], dict) else answers[qid]
        choices = tuple(str(o) for o in opts)
        if not isinstance(gold, int) or not 0 <= gold < len(choices):
            raise DataError(apath, None, qid, f"answer must be an option index 0..{len(choices) - 1}, got {gold!r}")
        target = gold
        cat = str(row.fields.get("category", ""))
        samples.append(Sample(id=qid, input=str(require(row, qpath, "question")), choices=choices, target=target,
                              subject=cat, metadata={"file": _rel(data_dir, qpath), "line": row.line}))
    files = {_rel(data_dir, qpath): file_sha256(qpath), _rel(data_dir, apath): file_sha256(apath)}
    return TaskData(samples=samples, fewshot={}, files=files, subject_names=SAFETY_CATEGORIES)


def _register(name: str, loader, description: str, style: str = "cmmlu") -> None:
    TASKS.add(name, lambda: MCQTask(name, loader, description, lmeval_style=style), description)


_register("cmmlu-medical-paper", partial(load_cmmlu, subjects=CMMLU_PAPER),
          "CMMLU test, the paper's 7 medical subjects (1,166 items); shots from dev")
_register("cmmlu-medical", partial(load_cmmlu, subjects=CMMLU_MEDICAL),
          "CMMLU test, all 9 medical subjects; shots from dev")
_register("ceval-medical-paper", partial(load_ceval, subjects=CEVAL_PAPER),
          "C-Eval val, clinical_medicine + basic_medicine (41 items, the paper's set)", style="ceval")
_register("ceval-medical", partial(load_ceval, subjects=CEVAL_MEDICAL),
          "C-Eval val, medical subjects: clinical_medicine, basic_medicine, physician", style="ceval")
_register("medqa-mcmle", load_medqa, "MedQA Mainland China (MCMLE) test, 3,426 items, 4 options; shots from dev")
_register("safetybench-zh", load_safetybench, "SafetyBench Chinese subset, 2,100 items, 2-4 options; 0-shot")
