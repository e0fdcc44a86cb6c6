"""The built-in configurable task types (``mcq``, ``ner``, ``scale``), registered in
:data:`chimed_eval.tasks.factory.TASK_TYPES` when it is first used."""

from __future__ import annotations

import dataclasses
from pathlib import Path

from chimed_eval.task.base import Task
from chimed_eval.task.multiple_choice import MCQTask
from chimed_eval.tasks import mcq, ner, scale
from chimed_eval.tasks.factory import TaskArg, TaskType, args_of, register_type

_MCQ_HELP = {
    "path": "file, folder or glob of your items (CSV, TSV, JSONL, JSON, XLSX)",
    "format": "csv | tsv | jsonl | json | xlsx (default: from the file extension)",
    "encoding": "the files' encoding (default: detected; UTF-8, GB18030 ...)",
    "id": "column holding a stable item id, unique within its file (several files: <file stem>-<id>; default: "
          "file:row)",
    "question": "column holding the question (default: detected, e.g. Question, question, 题干)",
    "choices": "one column per option, in letter order: A;B;C;D",
    "options": "one field holding all options ('(A) ...\\n(B) ...', a JSON list or object); split only on the labels "
               "A, B, C ... in order, in option A's form (a skipped or repeated label is an error)",
    "answer": "column holding the answer: a letter, a 0/1-based index or the option text; several answers as "
              "ABD, (BCDE), A、B、D or texts joined by | (scored by exact set match and option F1); or the option's column "
              "name (opb with choices=opa;opb;...)",
    "answer_index_base": "0 or 1, for numeric answers when it cannot be inferred",
    "subject": "column holding a subject (per-subject accuracy, few-shot pools); @file: each file is one subject, "
               "named by the file without extension and split suffix (anatomy_test.csv: anatomy)",
    "where": "keep only test rows whose column holds value: column=value (several joined by ;)",
    "subject_name": "the subject named in the prompt (以下是关于{subject_name}的单项选择题; default 医学), "
                    "whatever the subject column holds",
    "subject_in_prompt": "true: name each item's subject column value in the prompt instead of subject_name "
                         "(default false: the column only groups results and few-shot pools)",
    "on_invalid": "error (default): stop at the first row that cannot be read; skip: leave it out, counted and "
                  "listed (file, line, reason) in results.json",
    "fewshot": "a file of solved items (dev split) for --shots; a shot sharing the question text with a test item "
               "is refused (ids are compared within a file only: splits may restart them)",
    "name": "the task name in results",
    "sheet": "the XLSX sheet (default: the first)",
    "option_sep": "the literal separator between the options of one options cell, labels A/(A)/A. dropped "
                  "(CMExam: \\n, the two characters backslash and n)",
}

_NER_HELP = {
    "path": "your records: JSONL or a JSON array (text + spans), or BIO",
    "name": "the task name in results",
    "format": "json | jsonl | bio (default: .json -> a JSON array, or JSONL when it does not start with [; "
              ".jsonl -> jsonl; else bio)",
    "encoding": "the files' encoding (default: detected)",
    "types": "the type inventory, A;B;C (default: the gold types in order of first appearance)",
    "aliases": "other names accepted in answers, alias:type;... (检查:影像检查)",
    "fewshot": "a file of shot records",
    "shots": "default shot count (5 with a fewshot file, else 0)",
    "token_sep": "separator between BIO tokens when the text is rebuilt ('' for Chinese)",
    "max_prompt_tokens": "shots are dropped until the prompt fits",
    "shot_max_chars": "longer shot records are skipped",
    "domain": "the text domain named in the instruction",
    "text_field": "the key of a record's text (default: text / originalText / sentence)",
    "entities_field": "the key of a record's entity list (default: entities / spans / labels)",
    "start_field": "the key of an entity's start offset (default: start / start_pos / start_offset)",
    "end_field": "the key of an entity's end offset (default: end / end_pos / end_offset)",
    "type_field": "the key of an entity's type (default: type / label / label_type / category)",
    "end_inclusive": "true when the end offset is the entity's last character (CMeEE's end_idx); default false",
    "check_ends": "false accepts spans that mostly stop one character before punctuation or end on it "
                  "(default true: such files are refused as read with the wrong end_inclusive)",
}


def mcq_rescoring(name: str, _out: Path) -> Task:
    """A user's mcq task rescored from its records (which hold every option's log-probability)."""
    return MCQTask(name, loader=lambda _d: None)  # type: ignore[arg-type, return-value]


def mcq_config(path: Path) -> list[Task]:
    return [mcq.make_mcq_task(spec) for spec in mcq.load_task_config(path)]


def ner_config(path: Path) -> list[Task]:
    return [ner.make_ner_task(spec) for spec in ner.load_ner_specs(path)]


register_type(TaskType(
    "mcq", "your own multiple-choice file (CSV, TSV, JSONL, JSON, XLSX)", args_of(mcq.McqSpec, _MCQ_HELP),
    lambda a: mcq.make_mcq_task(mcq.spec_from_args(a)), mcq_rescoring, mcq_config,
    example="--tasks mcq --task-args path=exam.jsonl,question=题干,options=选项,answer=正确答案"))
register_type(TaskType(
    "ner", "your own span-NER file (JSONL or BIO)", args_of(ner.NerSpec, _NER_HELP),
    ner.make_ner_task_from_args, ner.rescoring_task, ner_config,
    example="--tasks ner --task-args path=notes.jsonl,types=疾病;药物"))
register_type(TaskType(
    "scale", "your own attitude scale (JSON/TOML: Likert items, reverse scoring)",
    (TaskArg("path", "str", dataclasses.MISSING, "the scale file (JSON or TOML; its format: tasks/scale.py)"),
     TaskArg("name", "str | None", None, "the task name (default: the file's name key, else 'scale')")),
    scale.make_scale_task_from_args, scale.rescoring_task, None,
    example="--tasks scale --task-args path=cami.json"))
