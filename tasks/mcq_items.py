"""How the ``mcq`` task finds its items: the files a path names, which columns hold the question,
options and answer (named or detected), an answer that names its option column, and the refusal
of few-shot items that are also test items.  Split out of :mod:`chimed_eval.tasks.mcq`, which reads the
rows with these and re-exports the public names."""

from __future__ import annotations

import difflib
import glob as globmod
import os
import re
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Sequence

from chimed_eval.core.errors import DataError, MissingDataError
from chimed_eval.files.tabular import EXTENSIONS, LETTERS, Row, infer_format
from chimed_eval.core.types import Sample

from .mcq_spec import McqSpec


QUESTION_COLUMNS = ("question", "Question", "题目", "问题", "题干")
ANSWER_COLUMNS = ("answer", "Answer", "答案", "anwer")
OPTIONS_FIELDS = ("options", "Options", "option", "choices", "选项")
#: ``subject=@file``: each file is one subject, named by the file (:func:`file_subject`)
FILE_SUBJECT = "@file"
_SPLIT_SUFFIX = re.compile(r"[_\-.](?:dev|val|valid|validation|test|train)$", re.I)


def file_subject(path: Path) -> str:
    """A one-file-per-subject exam's subject: the file name without its extension and without a
    split suffix (``anatomy_test.csv`` and ``anatomy_dev.csv`` are both ``anatomy``), so test items
    and their few-shot pool meet."""
    return _SPLIT_SUFFIX.sub("", path.stem) or path.stem


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
    if spec.subject == FILE_SUBJECT:
        subject = FILE_SUBJECT
    elif spec.subject is not None and (not fewshot or spec.subject in have):
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


def _refuse_shared_shots(samples: Sequence[Sample], shots: Sequence[Sample]) -> None:
    """A shot that is also a test item would put that item's answer in its own prompt: refused
    when it has the same question text (whitespace aside). Ids are not compared across files: an
    id names an item within its own file (its split), and C-Eval-style splits restart their ids at
    0, so a dev item and a test item sharing an id are two different items; the text is what a
    copied item shares across splits."""
    by_text: dict[str, Sample] = {}
    for s in samples:
        by_text.setdefault(" ".join(s.input.split()), s)
    for shot in shots:
        test = by_text.get(" ".join(shot.input.split()))
        if test is not None:
            m, t = shot.metadata, test.metadata
            raise DataError(m["file"], m["line"], None, f"few-shot item shares the question text with test item "
                                                        f"{t['file']}:{t['line']}: its answer would appear in that "
                                                        "item's prompt; take the shots from another split")
