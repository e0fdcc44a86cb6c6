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
those of :func:`chimed_eval.tabular.parse_answers`: one answer (a letter, a number, an option's
text) or several (``ABD``, ``(BCDE)``, ``A、B、D``, texts separated by ``|`` or ``;``, a JSON list);
numeric answers need ``answer_index_base`` unless the file itself proves the base (a 0 anywhere:
0-based; an answer equal to its item's option count: 1-based).  A file with several-answer items
is scored by exact set match and option F1 (:mod:`chimed_eval.multi_choice`); those items need a
generation variant (``--variant generate``).  ``option_sep`` is the literal separator between the
options of one cell (CMExam's layout: ``option_sep=\\n``, the two characters backslash and n).
An answer may also name the option column (``opb`` with ``choices=opa;opb;opc;opd``).

``on_invalid=skip`` leaves out rows that cannot be read (an unsplittable options field, a bad
answer, a missing cell) instead of stopping; they are counted and listed (file, line, reason) in
results.json under the task's ``skipped``.  Few-shot items that share an id, or the question and
answer text, with a test item are refused.  The prompt names ``subject_name`` (default 医学); a subject
column's own values (file names, category codes) are only rendered with ``subject_in_prompt=true``.

Every sample keeps the source text its options were read from (``metadata["source"]``), so
:mod:`chimed_eval.validate` and the fake oracle can check each option against it.
"""

from __future__ import annotations

import dataclasses
import difflib
import glob as globmod
import os
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Mapping, Sequence

from chimed_eval.errors import ConfigError, DataError, MissingDataError
from chimed_eval.tabular import (
    EXTENSIONS, LETTERS, Row, cell_text, infer_format, infer_index_base, is_empty, parse_answers, read_rows,
    require, split_options,
)
from chimed_eval.task import MCQTask, TaskData, TaskRunOptions, file_sha256
from chimed_eval.types import Request, Sample
from chimed_eval.validate import gold_mismatch

from .config import Converter, check_task_name, flag_converter, coerce_settings, config_entries, resolve_paths, split_list, text_value

QUESTION_COLUMNS = ("question", "Question", "题目", "问题", "题干")
ANSWER_COLUMNS = ("answer", "Answer", "答案", "anwer")
OPTIONS_FIELDS = ("options", "Options", "option", "choices", "选项")


@dataclass
class McqSpec:
    """Where a user's exam items are and which columns hold what (None: detect)."""

    path: str | Path
    format: str | None = None
    encoding: str | None = None
    id: str | None = None
    question: str | None = None
    choices: list[str] | None = None
    options: str | None = None
    answer: str | None = None
    answer_index_base: int | None = None
    subject: str | None = None
    subject_name: str | None = None
    fewshot: str | Path | None = None
    name: str = "mcq"
    sheet: str | None = None
    option_sep: str | None = None
    on_invalid: str = "error"
    subject_in_prompt: bool = False

    def __post_init__(self) -> None:
        if self.choices is not None and self.options is not None:
            raise ConfigError(f"task {self.name!r}: give either choices= (one column per option) or options= "
                              "(one field holding all options), not both")
        if self.answer_index_base not in (None, 0, 1):
            raise ConfigError(f"task {self.name!r}: answer_index_base must be 0 or 1, not {self.answer_index_base!r}")
        if self.option_sep is not None and self.choices is not None:
            raise ConfigError(f"task {self.name!r}: option_sep= splits one options field; it does not apply to "
                              "choices= (one column per option)")
        if self.on_invalid not in ("error", "skip"):
            raise ConfigError(f"task {self.name!r}: on_invalid must be error or skip, not {self.on_invalid!r}")
        if self.subject_in_prompt and self.subject_name is not None:
            raise ConfigError(f"task {self.name!r}: subject_name= names the subject in the prompt; "
                              "subject_in_prompt=true would use the subject column's values instead: give one")
        if self.subject_in_prompt and self.subject is None:
            raise ConfigError(f"task {self.name!r}: subject_in_prompt=true needs subject=<column>")
        if self.option_sep == "":
            raise ConfigError(f"task {self.name!r}: option_sep= is empty")
        check_task_name(self.name)
        if self.choices is not None:
            if not 2 <= len(self.choices) <= len(LETTERS):
                raise ConfigError(f"task {self.name!r}: choices= must name 2 to {len(LETTERS)} columns, "
                                  f"got {len(self.choices)}")
            if len(set(self.choices)) != len(self.choices):
                raise ConfigError(f"task {self.name!r}: choices= names a column twice: {self.choices}")


SPEC_KEYS = tuple(f.name for f in dataclasses.fields(McqSpec))
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


_CONVERTERS: dict[str, Converter] = {"choices": _choices, "answer_index_base": _index_base,
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
    """The entries of ``type = "mcq"`` (the default), without that key; ``type = "ner"`` entries
    are read by :func:`tasks.ner.load_ner_specs`."""
    out = []
    for where, entry in labelled:
        kind = str(entry.get("type", "mcq")).strip().lower()
        if kind not in ("mcq", "ner"):
            raise ConfigError(f"{where}key 'type': expected \"mcq\" or \"ner\", got {entry['type']!r}")
        if kind == "mcq":
            out.append((where, {k: v for k, v in entry.items() if k != "type"}))
    return out


# --- loading -------------------------------------------------------------------------------------


def _is_data_file(p: Path) -> bool:
    return p.is_file() and p.suffix.lower() in EXTENSIONS and not p.name.startswith((".", "~$"))


def resolve_files(path: str | Path, exclude: Sequence[Path] = ()) -> list[Path]:
    """The data files named by a file, a directory (its item files) or a glob, sorted."""
    s = os.path.expanduser(str(path))
    skip = {p.resolve() for p in exclude}
    if globmod.has_magic(s) and not Path(s).exists():
        files = [Path(m) for m in sorted(globmod.glob(s, recursive=True))]
        files = [f for f in files if _is_data_file(f) and f.resolve() not in skip]
        if not files:
            raise MissingDataError(f"no data files match {s!r} (looked for {', '.join(sorted(EXTENSIONS))})")
        return files
    p = Path(s)
    if p.is_dir():
        files = sorted((f for f in p.iterdir() if _is_data_file(f) and f.resolve() not in skip), key=str)
        if not files:
            raise MissingDataError(f"{p} has no data files ({', '.join(sorted(EXTENSIONS))})")
        return files
    if not p.exists():
        raise MissingDataError(f"{p}: no such file or directory")
    return [p]


def _pick(have: Sequence[str], candidates: Sequence[str]) -> str | None:
    for c in candidates:
        if c in have:
            return c
    low = {h.lower(): h for h in have}
    for c in candidates:
        if c.lower() in low:
            return low[c.lower()]
    return None


def _columns(rows: list[Row]) -> list[str]:
    seen: dict[str, None] = {}
    for r in rows:
        for k in r.fields:
            seen.setdefault(k, None)
    return list(seen)


@dataclass
class _Layout:
    question: str
    answer: str
    choices: list[str] | None
    options: str | None
    subject: str | None


def _layout(spec: McqSpec, path: Path, rows: list[Row], *, fewshot: bool = False) -> _Layout:
    """Which columns hold what in this file (explicit names checked, the rest detected)."""
    have = _columns(rows)
    tabular = infer_format(path, spec.format) in ("csv", "tsv", "xlsx")
    line = max(1, rows[0].line - 1) if tabular else rows[0].line  # the header, or the first item
    have_s = ", ".join(map(repr, have))

    def find(key: str, given: str | None, candidates: Sequence[str], what: str) -> str:
        if given is not None:
            if given not in have:
                close = difflib.get_close_matches(given, have, n=1, cutoff=0.5)
                hint = f" Did you mean {close[0]!r}?" if close else ""
                raise DataError(path, line, given, f"missing column/field {given!r} named by {key}= (have: {have_s}).{hint}")
            return given
        found = _pick(have, candidates)
        if found is None:
            raise DataError(path, line, None, f"no {what} column: looked for {', '.join(candidates)} (have: {have_s}); "
                                              f"name it with {key}=<column>")
        return found

    question = find("question", spec.question, QUESTION_COLUMNS, "question")
    answer = find("answer", spec.answer, ANSWER_COLUMNS, "answer")
    subject = None
    if spec.subject is not None and (not fewshot or spec.subject in have):
        subject = find("subject", spec.subject, (), "subject")  # a few-shot file may pool all subjects
    if spec.options is not None:
        return _Layout(question, answer, None, find("options", spec.options, (), "options"), subject)
    if spec.choices is not None:
        for c in spec.choices:
            find("choices", c, (), "option")
        return _Layout(question, answer, list(spec.choices), None, subject)
    letters = [c for c in LETTERS if c in have] or [c for c in LETTERS.lower() if c in have]
    if letters:
        expected = (LETTERS if letters[0].isupper() else LETTERS.lower())[: len(letters)]
        missing = [c for c in expected if c not in letters]
        if missing:
            raise DataError(path, line, None, f"option columns {', '.join(letters)} skip column {missing[0]!r}; "
                                              "name the option columns with choices=A;B;...")
        if len(letters) < 2:
            raise DataError(path, line, None, f"only one option column ({letters[0]}); need at least 2")
        return _Layout(question, answer, letters, None, subject)
    opt = _pick(have, OPTIONS_FIELDS)
    if opt is None:
        raise DataError(path, line, None, f"no option columns: looked for single-letter columns A, B, C, ... or one "
                                          f"field named {', '.join(OPTIONS_FIELDS)} (have: {have_s}); "
                                          "set choices=<col>;<col>;... or options=<field>")
    return _Layout(question, answer, None, opt, subject)


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


def _answer_value(value: Any, lay: _Layout, choices: Sequence[str], path: Path, line: int) -> Any:
    """An answer naming the option column (``opb`` with ``choices=opa;opb;...``) as its letter."""
    if not lay.choices or not isinstance(value, str) or value.strip() not in lay.choices[: len(choices)]:
        return value
    i = lay.choices.index(value.strip())
    other = [j for j, t in enumerate(choices) if t.strip() == value.strip() and j != i]
    if other:
        raise DataError(path, line, lay.answer, f"answer {value!r} is ambiguous: it names the column of option "
                                                f"{LETTERS[i]} but is also the text of option {LETTERS[other[0]]}")
    return LETTERS[i]


def _rel_names(files: Sequence[Path]) -> dict[Path, str]:
    """Portable names for the files read: relative to their common folder."""
    absf = [f.resolve() for f in files]
    if len(absf) == 1:
        return {files[0]: absf[0].name}
    root = Path(os.path.commonpath([str(a.parent) for a in absf]))
    return {f: a.relative_to(root).as_posix() for f, a in zip(files, absf)}


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
                if spec.id is not None:
                    sid = cell_text(require(row, path, spec.id))
                else:
                    sid = f"{path.stem}-{row.line}"
                sid = id_prefix + sid
                if sid in first_seen:
                    p0, l0 = first_seen[sid]
                    where = f"line {l0}" if p0 == path else f"{p0}:{l0}"
                    raise DataError(path, row.line, spec.id, f"duplicate item id {sid!r} (first at {where}); "
                                                            "ids must be unique: set id=<column> to a unique column")
                subject = cell_text(require(row, path, lay.subject)) if lay.subject else None
            except DataError as e:
                skip_or_raise(e, path, row)
                continue
            first_seen[sid] = (path, row.line)
            samples.append(Sample(id=sid, input=question, choices=choices, target=target, subject=subject,
                                  metadata={"file": names[path], "line": row.line, "source": source}))
    return samples


def _refuse_shared_shots(samples: Sequence[Sample], shots: Sequence[Sample], ids: bool) -> None:
    """A shot that is also a test item would put that item's answer in its own prompt: refused
    when it has the same id (id=<column>) or the same question text (whitespace aside)."""
    by_id = {s.id: s for s in samples} if ids else {}
    by_text: dict[str, Sample] = {}
    for s in samples:
        by_text.setdefault(" ".join(s.input.split()), s)
    for shot in shots:
        test = by_id.get(shot.id[len("dev-"):]) if shot.id.startswith("dev-") else None
        why = f"id {test.id!r}" if test is not None else ""
        if test is None:
            test = by_text.get(" ".join(shot.input.split()))
            why = "the question text"
        if test is not None:
            m, t = shot.metadata, test.metadata
            raise DataError(m["file"], m["line"], None, f"few-shot item shares {why} with test item "
                                                        f"{t['file']}:{t['line']}: its answer would appear in that "
                                                        "item's prompt; take the shots from another split")


def load_mcq(spec: McqSpec) -> TaskData:
    """Read the spec's items (and few-shot pool) into TaskData; paths are absolute or cwd-relative."""
    shot_files = resolve_files(spec.fewshot) if spec.fewshot is not None else []
    files = resolve_files(spec.path, exclude=shot_files)
    names = _rel_names([*files, *shot_files])
    skipped: list[dict[str, Any]] | None = [] if spec.on_invalid == "skip" else None
    samples = _read_items(spec, files, names, "", skipped)
    if not samples:
        raise DataError(files[0], None, None, f"no item could be read ({len(skipped or [])} rows skipped); the "
                                              f"first: {(skipped or [{}])[0].get('reason')}")
    fewshot: dict[str | None, list[Sample]] = {}
    if shot_files:
        shots = _read_items(spec, shot_files, names, "dev-")
        _refuse_shared_shots(samples, shots, spec.id is not None)
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
