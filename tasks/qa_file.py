"""``qa``: your own open-QA file (CSV, TSV, JSONL, JSON, XLSX), answered by free generation and
scored like ``cmd-qa``: BLEU/ROUGE in the standard protocol (sacreBLEU, rouge-score) and the paper's.

``chimed-eval run --tasks qa --task-args path=qa.jsonl,question=问题,answer=回答``. Several reference
columns (``answer=a1;a2``) make one item per reference, as the paper scored two answers."""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass
from pathlib import Path
from typing import Mapping

from chimed_eval.errors import DataError, MissingDataError
from chimed_eval.tabular import cell_text, read_rows
from chimed_eval.task import TaskData, file_sha256
from chimed_eval.types import Sample
from tasks.config import check_task_name, coerce_settings
from tasks.factory import TaskType, args_of, register_type
from tasks.generation import GenerationTask


@dataclass(frozen=True)
class QaSpec:
    path: str
    question: str = "question"
    answer: str = "answer"
    id: str | None = None
    encoding: str | None = None
    name: str = "qa"


HELP = {"path": "your questions and reference answers", "question": "the question column",
        "answer": "the reference column(s), a1;a2", "id": "a stable id column (default: the line)",
        "encoding": "the file's encoding (default: detected)", "name": "the task name in results"}


def load(spec: QaSpec) -> TaskData:
    path = Path(spec.path).expanduser()
    if not path.is_file():
        raise MissingDataError(f"{path}: no such file (the qa task's path=)")
    answers = [a.strip() for a in spec.answer.split(";") if a.strip()]
    samples = []
    for row in read_rows(path, None, spec.encoding):
        q = cell_text(row.fields.get(spec.question))
        if not q:
            raise DataError(path, row.line, spec.question, "the question is missing or empty")
        refs = [cell_text(row.fields.get(a)) for a in answers]
        if not any(refs):
            raise DataError(path, row.line, answers[0], "no reference answer")
        rid = cell_text(row.fields.get(spec.id)) if spec.id else str(row.line)
        samples += [Sample(id=f"{rid}-{k}", input=q, target=r, metadata={"file": path.name, "line": row.line})
                    for k, r in enumerate(refs, 1) if r]
    return TaskData(samples=samples, files={path.name: file_sha256(path)})


def from_args(args: Mapping[str, str]) -> GenerationTask:
    keys = [f.name for f in dataclasses.fields(QaSpec)]
    spec = QaSpec(**coerce_settings(args, "--task-args: ", keys, {}, need_path="the qa task needs path=<your file>"))
    check_task_name(spec.name)
    return GenerationTask(spec.name, lambda _d: load(spec), f"your open-QA items from {spec.path}")


register_type(TaskType("qa", "your own open-QA file, scored with BLEU/ROUGE (standard and paper protocols)",
                       args_of(QaSpec, HELP), from_args, lambda name, _out: GenerationTask(name, lambda _d: TaskData([])),
                       example="--tasks qa --task-args path=qa.jsonl,question=问题,answer=回答"))
