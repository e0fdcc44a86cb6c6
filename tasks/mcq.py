"""The generic ``mcq`` task: evaluate on your own multiple-choice exam files, no Python needed.

Point it at a CSV/TSV/JSONL/JSON/XLSX file (or a directory, or a glob; several files are read in
sorted order and concatenated) and say which columns hold what, or let it find them::

    chimed-eval run --tasks mcq --task-args "path=exam.xlsx;answer_index_base=1"

or describe one or more tasks in a TOML/JSON config (see :func:`load_task_config`)::

    [[tasks]]
    name = "hospital-exam"
    path = "exam/*.csv"          # relative to this config file
    question = "题干"
    choices = ["A", "B", "C", "D", "E"]
    answer = "答案"
    fewshot = "dev.csv"

Defaults: ``question`` is the first of question/Question/题目/问题/题干 present; the options are
the single-letter columns A..J present in the header (or one options/选项 field); ``answer`` is
the first of answer/Answer/答案/anwer.  Rows may have 2 to 10 options; empty trailing option cells
are dropped, so a file with columns A..E can mix 4- and 5-option items.  The answer rules are
those of :func:`chimed_eval.files.tabular.parse_answers`: one answer (a letter, a number, an option's
text) or several (``ABD``, ``(BCDE)``, ``A、B、D``, texts separated by ``|`` or ``;``, a JSON list);
numeric answers need ``answer_index_base`` unless the file itself proves the base (a 0 anywhere:
0-based; an answer equal to its item's option count: 1-based).  A file with several-answer items
is scored by exact set match and option F1 (:mod:`chimed_eval.evidence.multi_choice`); those items need a
generation variant (``--variant generate``).  ``option_sep`` is the literal separator between the
options of one cell (CMExam's layout: ``option_sep=\\n``, the two characters backslash and n).
An answer may also name the option column (``opb`` with ``choices=opa;opb;opc;opd``).

``on_invalid=skip`` leaves out rows that cannot be read (an unsplittable options field, a bad
answer, a missing cell) instead of stopping; they are counted and listed (file, line, reason) in
results.json under the task's ``skipped``.  Few-shot items that share the question text with a
test item are refused (ids are per file: C-Eval-style splits restart them at 0).  The prompt names
``subject_name`` (default 医学); a subject column's own values (file names, category codes) are only
rendered with ``subject_in_prompt=true``.  ``subject=@file`` makes each file one subject, named by
the file (a one-file-per-subject exam gets its ``acc_macro``); ``where=column=value`` keeps only
the test rows whose cells match (several conditions joined by ``;``).

Every sample keeps the source text its options were read from (``metadata["source"]``), so
:mod:`chimed_eval.files.option_checks` and the fake oracle can check each option against it.  Finding the
files and the columns (and refusing shared few-shot items) is :mod:`chimed_eval.tasks.mcq_items`.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any, Mapping, Sequence

from chimed_eval.core.errors import ConfigError, DataError
from chimed_eval.files.tabular import (
    LETTERS, Row, cell_text, infer_index_base, is_empty, keep_rows, parse_answers, parse_where, read_rows, require,
    split_options, where_text,
)
from chimed_eval.core.types import Request, Sample, file_sha256
from chimed_eval.task.multiple_choice import MCQTask
from chimed_eval.task.options import TaskData, TaskRunOptions
from chimed_eval.files.option_checks import gold_mismatch

from .config import (
    Converter, coerce_settings, config_entries, entry_type, flag_converter, resolve_paths, split_list,
    text_value,
)
from .mcq_spec import SPEC_KEYS, McqSpec
from .mcq_items import (
    ANSWER_COLUMNS, FILE_SUBJECT, OPTIONS_FIELDS, QUESTION_COLUMNS, _answer_value, _Layout, _layout, _refuse_shared_shots,
    _rel_names, file_subject, resolve_files,
)

__all__ = ["ANSWER_COLUMNS", "OPTIONS_FIELDS", "QUESTION_COLUMNS", "SPEC_KEYS", "McqData", "McqSpec", "UserMCQTask",
           "load_mcq", "load_task_config", "make_mcq_task", "resolve_files", "spec_from_args"]


_PATH_KEYS = ("path", "fewshot")


def _choices(v: Any, where: str) -> list[str]:
    if isinstance(v, str):
        v = split_list(v)
    elif isinstance(v, (list, tuple)) and all(isinstance(c, (str, int)) for c in v):
        v = [str(c).strip() for c in v]
    else:
        raise ConfigError(f"{where}key 'choices': expected a list of column names, got {v!r}")
    return v


def _index_base(v: Any, where: str) -> int:
    if isinstance(v, str) and v.strip() in ("0", "1"):
        v = int(v.strip())
    if isinstance(v, bool) or v not in (0, 1):
        raise ConfigError(f"{where}key 'answer_index_base': expected 0 or 1, got {v!r}")
    return int(v)


def _column(key: str) -> Converter:
    """A column name: a number in a TOML/JSON file means the column of that name."""
    def convert(v: Any, where: str) -> str:
        return text_value(key, str(v) if isinstance(v, (int, float)) and not isinstance(v, bool) else v, where)
    return convert


_CONVERTERS: dict[str, Converter] = {"choices": _choices, "answer_index_base": _index_base, "where": parse_where,
                                     "subject_in_prompt": flag_converter("subject_in_prompt"),
                                     "option_sep": lambda v, where: text_value("option_sep", v, where, strip=False),
                                     **{k: _column(k) for k in ("id", "question", "answer", "subject", "sheet")}}


def _coerce(values: Mapping[str, Any], where: str) -> dict[str, Any]:
    return coerce_settings(values, where, SPEC_KEYS, _CONVERTERS,
                           need_path="the mcq task needs path=<file, directory or glob of your items>")


def spec_from_args(args: Mapping[str, str]) -> McqSpec:
    """A spec from ``--task-args`` style ``key=value`` pairs (lists separated by ``;`` or ``|``)."""
    return McqSpec(**_coerce(args, "--task-args: "))


def load_task_config(path: Path) -> list[McqSpec]:
    """Task specs from a JSON or TOML file: one task, or ``{"tasks": [...]}``.

    With ``tasks``, the other top-level keys are defaults for every task.  Relative ``path`` and
    ``fewshot`` are resolved against the config file's folder.  Errors name the file and key.
    """
    path = Path(path)
    defaults, entries = config_entries(path)
    specs = []
    for where, entry in _mcq_entries([(where, {**defaults, **e}) for where, e in entries]):
        values = resolve_paths(_coerce(entry, where), _PATH_KEYS, path.parent)
        try:
            specs.append(McqSpec(**values))
        except ConfigError as e:
            raise ConfigError(f"{where}{e}") from None
    names = [s.name for s in specs]
    dup = sorted({n for n in names if names.count(n) > 1})
    if dup:
        raise ConfigError(f"{path}: several tasks are named {dup[0]!r}; give each task its own name=")
    return specs


def _mcq_entries(labelled: list[tuple[str, dict[str, Any]]]) -> list[tuple[str, dict[str, Any]]]:
    """The entries of ``type = "mcq"`` (the default), without that key; the other kinds' entries
    (:data:`chimed_eval.tasks.config.CONFIG_TYPES`) are read by their own modules."""
    out = []
    for where, entry in labelled:
        if entry_type(entry, where) == "mcq":
            out.append((where, {k: v for k, v in entry.items() if k != "type"}))
    return out


# --- loading -------------------------------------------------------------------------------------


def _row_choices(path: Path, row: Row, lay: _Layout, sep: str | None = None) -> tuple[tuple[str, ...], dict[str, Any]]:
    """The item's option texts, and where they were read from (``metadata["source"]``)."""
    if lay.options is not None:
        value = require(row, path, lay.options)
        texts = split_options(value, path=path, line=row.line, field=lay.options, sep=sep)
        cols = [lay.options] * len(texts)
        source: dict[str, Any] = {"field": lay.options, "value": value}
        if sep:
            source["sep"] = sep
    else:
        # a JSON item may leave out trailing option keys, as a CSV row leaves trailing cells empty
        texts = [cell_text(row.fields.get(c)) for c in lay.choices or ()]
        cols = list(lay.choices or ())
        source = {"columns": {c: cell_text(row.fields.get(c)) for c in cols}}
    while texts and not texts[-1]:
        texts.pop()
    for i, t in enumerate(texts):
        if not t:
            raise DataError(path, row.line, cols[i], f"option {LETTERS[i]} is empty but later options are not")
    if len(texts) < 2:
        raise DataError(path, row.line, lay.options or (cols[0] if cols else None),
                        f"the item has {len(texts)} option{'s' if len(texts) != 1 else ''}; need at least 2")
    if len(texts) > len(LETTERS):
        raise DataError(path, row.line, lay.options, f"the item has {len(texts)} options; at most {len(LETTERS)} are supported")
    return tuple(texts), source


def _read_items(spec: McqSpec, files: Sequence[Path], names: Mapping[Path, str], id_prefix: str,
                skipped: list[dict[str, Any]] | None = None) -> list[Sample]:
    """The items of ``files``; with ``skipped`` (on_invalid=skip) a row that cannot be read is
    listed there ({file, line, reason}) instead of stopping the run."""
    samples: list[Sample] = []
    first_seen: dict[str, tuple[Path, int]] = {}

    def skip_or_raise(e: DataError, path: Path, row: Row) -> None:
        if skipped is None:
            raise e
        skipped.append({"file": names[path], "line": row.line, "reason": str(e)})

    for path in files:
        rows = read_rows(path, spec.format, spec.encoding, sheet=spec.sheet)
        if spec.where and not id_prefix:  # where= filters the test items, not the few-shot pool
            rows = keep_rows(path, rows, spec.where)
            if not rows:
                continue
        lay = _layout(spec, path, rows, fewshot=bool(id_prefix))
        parsed = []
        for row in rows:
            try:
                choices, source = _row_choices(path, row, lay, spec.option_sep)
                if lay.answer not in row.fields or is_empty(row.fields[lay.answer]):
                    require(row, path, lay.answer)
            except DataError as e:
                skip_or_raise(e, path, row)
                continue
            parsed.append((row, choices, source))
        base = spec.answer_index_base
        if base is None:
            base = infer_index_base((r.fields[lay.answer], len(c)) for r, c, _ in parsed)
        for row, choices, source in parsed:
            try:
                answer = _answer_value(row.fields[lay.answer], lay, choices, path, row.line)
                target = parse_answers(answer, choices, path=path, line=row.line, field=lay.answer, index_base=base)
                question = cell_text(require(row, path, lay.question))
                if spec.id is not None:  # an id names an item within its file: several files, several namespaces
                    sid = cell_text(require(row, path, spec.id))
                    sid = f"{path.stem}-{sid}" if len(files) > 1 else sid
                else:
                    sid = f"{path.stem}-{row.line}"
                sid = id_prefix + sid
                if sid in first_seen:
                    p0, l0 = first_seen[sid]
                    where = f"line {l0}" if p0 == path else f"{p0}:{l0}"
                    raise DataError(path, row.line, spec.id, f"duplicate item id {sid!r} (first at {where}); "
                                                            "ids must be unique: set id=<column> to a unique column")
                subject = file_subject(path) if lay.subject == FILE_SUBJECT else \
                    cell_text(require(row, path, lay.subject)) if lay.subject else None
            except DataError as e:
                skip_or_raise(e, path, row)
                continue
            first_seen[sid] = (path, row.line)
            samples.append(Sample(id=sid, input=question, choices=choices, target=target, subject=subject,
                                  metadata={"file": names[path], "line": row.line, "source": source}))
    return samples


def load_mcq(spec: McqSpec) -> TaskData:
    """Read the spec's items (and few-shot pool) into TaskData; paths are absolute or cwd-relative."""
    shot_files = resolve_files(spec.fewshot) if spec.fewshot is not None else []
    files = resolve_files(spec.path, exclude=shot_files)
    names = _rel_names([*files, *shot_files])
    skipped: list[dict[str, Any]] | None = [] if spec.on_invalid == "skip" else None
    samples = _read_items(spec, files, names, "", skipped)
    if not samples and spec.where and not skipped:
        raise DataError(files[0], None, spec.where[0][0], f"no row of {len(files)} file{'s' if len(files) > 1 else ''} "
                                                          f"matches where={where_text(spec.where)}")
    if not samples:
        raise DataError(files[0], None, None, f"no item could be read ({len(skipped or [])} rows skipped); the "
                                              f"first: {(skipped or [{}])[0].get('reason')}")
    fewshot: dict[str | None, list[Sample]] = {}
    if shot_files:
        shots = _read_items(spec, shot_files, names, "dev-")
        _refuse_shared_shots(samples, shots)
        for s in shots:
            fewshot.setdefault(s.subject, []).append(s)
    # the prompt names subject_name; a subject column's values (file names, codes) only on request
    name = spec.subject_name or "医学"
    subject_names: dict[str, str] = {"": name}
    for s in [*samples, *(x for pool in fewshot.values() for x in pool)]:
        if s.subject is not None:
            subject_names.setdefault(s.subject, s.subject if spec.subject_in_prompt else name)
    return McqData(samples=samples, fewshot=fewshot,
                   files={names[f]: file_sha256(f) for f in [*files, *shot_files]},
                   subject_names=subject_names,
                   skipped=None if skipped is None else {"count": len(skipped), "rows": skipped})


@dataclass(frozen=True)
class McqData(TaskData):
    """TaskData with the rows ``on_invalid=skip`` left out: ``{"count": n, "rows": [{file, line,
    reason}]}`` (None with on_invalid=error); the runner puts it in results.json."""

    skipped: Mapping[str, Any] | None = None


class UserMCQTask(MCQTask):
    """The ``mcq`` task: an MCQTask whose oracle answers only what the source supports."""

    def oracle_output(self, sample: Sample, request: Request, options: TaskRunOptions) -> int | str | None:
        """The gold answer, unless the gold option's text in the prompt is not the source's text
        for that option (a misread options field): then a wrong answer, so an oracle run cannot
        report 100 on a misread prompt."""
        if gold_mismatch(sample):
            t = sample.target
            return (t + 1) % len(sample.choices) if isinstance(t, int) else ""
        return super().oracle_output(sample, request, options)


def make_mcq_task(spec: McqSpec) -> MCQTask:
    """An MCQTask over the spec's files; the loader ignores the data dir (spec paths stand alone)."""
    return UserMCQTask(
        spec.name,
        lambda data_dir: load_mcq(spec),
        description=f"your multiple-choice items from {spec.path}",
        default_subject_name=spec.subject_name or "医学",
    )
