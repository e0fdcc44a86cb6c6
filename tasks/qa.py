"""``qa``: your own open-QA file (CSV, TSV, JSONL, JSON, XLSX), answered by free generation and
scored like ``cmd-qa``: BLEU/ROUGE in the standard protocol (sacreBLEU, rouge-score) and the paper's.

``chimed-eval run --tasks qa --task-args path=qa.jsonl,question=问题,answer=回答``, or a
``type = "qa"`` entry of a ``--task-config`` file (the same keys).

References: several reference columns (``answer=a1;a2``) make one item per reference, as the paper
scored two answers. A cell holding a JSON list (``["低盐低脂饮食", "限制钠盐"]``) is one item with
several references: multi-reference BLEU in both protocols (n-grams clipped by the best reference,
the closest reference length) and, for ROUGE, the best score over the references (rouge-score's
``score_multi``; the paper protocol's ``rouge`` package knows one reference, so the same max).
The record's ``gold`` is the first reference and ``extra.references`` lists them all.

``where=column=value`` (several joined by ``;``) keeps only the rows whose cells match. Item ids
are ``<id column or line>-<k>``; an id column that repeats a value is refused at the repeating
row, naming the first.
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Callable, Mapping

from chimed_eval.core.errors import DataError, MissingDataError
from chimed_eval.files.tabular import cell_text, keep_rows, parse_where, read_rows, where_text
from chimed_eval.core.types import file_sha256
from chimed_eval.task.options import TaskData
from chimed_eval.core.types import Sample
from chimed_eval.tasks.config import Converter, check_task_name, coerce_settings, typed_entries
from chimed_eval.tasks.factory import TaskType, args_of, register_type
from chimed_eval.tasks.generation import GenerationTask


@dataclass(frozen=True)
class QaSpec:
    path: str
    question: str = "question"
    answer: str = "answer"
    id: str | None = None
    format: str | None = None
    encoding: str | None = None
    where: tuple[tuple[str, str], ...] | None = None
    name: str = "qa"


HELP = {"path": "your questions and reference answers", "question": "the question column",
        "answer": "the reference column(s), a1;a2 (one item per column); a cell holding a JSON list is one item "
                  "with several references",
        "id": "a stable id column (default: the line)", "format": "csv | tsv | jsonl | json | xlsx (default: from "
        "the file extension)", "encoding": "the file's encoding (default: detected)",
        "where": "keep only rows whose column holds value: column=value (several joined by ;)",
        "name": "the task name in results"}


def references(path: Path, line: int, field: str, value: Any) -> list[str]:
    """The reference texts of one cell: a text, or a JSON list of texts (several references)."""
    if isinstance(value, list):
        if not all(isinstance(v, (str, int, float)) and not isinstance(v, bool) for v in value):
            raise DataError(path, line, field, "a list of references must hold texts only")
        return [t for t in (cell_text(v) for v in value) if t]
    if isinstance(value, dict):
        raise DataError(path, line, field, "expected a reference text or a list of them, got an object")
    text = cell_text(value)
    return [text] if text else []


def load(spec: QaSpec) -> TaskData:
    path = Path(spec.path).expanduser()
    if not path.is_file():
        raise MissingDataError(f"{path}: no such file (the qa task's path=)")
    answers = [a.strip() for a in spec.answer.split(";") if a.strip()]
    rows = read_rows(path, spec.format, spec.encoding)
    if spec.where:
        rows = keep_rows(path, rows, spec.where)
        if not rows:
            raise DataError(path, None, spec.where[0][0], f"no row matches where={where_text(spec.where)}")
    samples: list[Sample] = []
    first: dict[str, int] = {}
    for row in rows:
        q = cell_text(row.fields.get(spec.question))
        if not q:
            raise DataError(path, row.line, spec.question, "the question is missing or empty")
        refs = [references(path, row.line, a, row.fields.get(a)) for a in answers]
        if not any(refs):
            raise DataError(path, row.line, answers[0], "no reference answer")
        rid = cell_text(row.fields.get(spec.id)) if spec.id else str(row.line)
        if spec.id and not rid:
            raise DataError(path, row.line, spec.id, "the id is missing or empty")
        if rid in first:
            raise DataError(path, row.line, spec.id, f"duplicate item id {rid!r} (first at line {first[rid]}); "
                                                     "ids must be unique: set id=<column> to a unique column")
        first[rid] = row.line
        meta = {"file": path.name, "line": row.line}
        samples += [Sample(id=f"{rid}-{k}", input=q, target=r[0],
                           metadata={**meta, "references": r} if len(r) > 1 else meta)
                    for k, r in enumerate(refs, 1) if r]
    return TaskData(samples=samples, files={path.name: file_sha256(path)})


def rescoring(name: str, _out: Path) -> GenerationTask:
    """A user's generation task rescored from its records (which hold the texts and references)."""
    return GenerationTask(name, lambda _d: TaskData([]))


def register_generation_type(kind: str, help: str, spec_class: type, arg_help: Mapping[str, str],
                             converters: Mapping[str, Converter], loader: Callable[[Any], TaskData],
                             description: Callable[[Any], str], example: str) -> TaskType:
    """Register a task type over a user's own file whose items are answered by generation and
    scored as open QA (``qa``, ``dialogue``): built from ``--task-args`` or from the ``type = kind``
    entries of a ``--task-config`` file, re-scored from its records."""
    keys = tuple(f.name for f in dataclasses.fields(spec_class))
    need = f"the {kind} task needs path=<your file>"

    def make(spec: Any) -> GenerationTask:
        check_task_name(spec.name)
        return GenerationTask(spec.name, lambda _d: loader(spec), description(spec))

    def from_args(args: Mapping[str, str]) -> GenerationTask:
        return make(spec_class(**coerce_settings(args, "--task-args: ", keys, converters, need_path=need)))

    def from_config(path: Path) -> list[GenerationTask]:
        return [make(spec_class(**values)) for values in typed_entries(path, kind, keys, converters, need_path=need)]

    return register_type(TaskType(kind, help, args_of(spec_class, arg_help), from_args, rescoring, from_config,
                                  example=example))


register_generation_type("qa", "your own open-QA file, scored with BLEU/ROUGE (standard and paper protocols)", QaSpec,
                         HELP, {"where": parse_where}, load, lambda spec: f"your open-QA items from {spec.path}",
                         "--tasks qa --task-args path=qa.jsonl,question=问题,answer=回答")
