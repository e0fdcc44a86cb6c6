"""CMB-Clin (the CMB benchmark's clinical case analysis): the case records and their questions.

The release (``<data-dir>/cmb-clin/CMB-Clin-qa.json``, FreedomIntelligence/CMB, Apache-2.0) is a
JSON array of ``{id, title, description, QA_pairs: [{question, answer}]}``: 74 cases, 208 questions
(1-4 per case), asked in order about the same case. :func:`read_cases` turns it into typed
records, shared by the ``cmb-clin`` task and by the simulated consultations (``consult``), so the
file is read and checked in one place.

A few questions embed lettered options (``A. 脾破裂\\n B. 肝破裂 ...``) and their reference answers
state the letter (``所以答案是B。``, ``答案： C``): such a question carries its options and its
answer letter, and is scored as multiple choice besides (``ClinQuestion.answer_letter``).
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from pathlib import Path

from chimed_eval.core.errors import DataError, MissingDataError
from chimed_eval.data.sets import data_location
from chimed_eval.files.answers import split_options
from chimed_eval.files.tabular import read_json_array

FOLDER = data_location("cmb_clin")
FILE = "CMB-Clin-qa.json"

#: The first option label at the start of a line: where a question's stem ends and its options begin.
_OPTIONS_START = re.compile(r"\n[ \t\u3000]*A[.．、]")
#: The answer letter a reference states: ``所以答案是B``, ``答案： C``, ``答案为D``.
_ANSWER_LETTER = re.compile(r"答案\s*(?:是|为|[:：])\s*([A-J])(?![A-Za-z])")


@dataclass(frozen=True)
class ClinQuestion:
    """One question of a case, in its asked order (``index`` from 0)."""

    index: int
    question: str
    answer: str
    options: tuple[str, ...] = ()  # the embedded options' texts, A first (empty: an open question)
    answer_letter: str | None = None  # the reference's stated letter (only with options)

    @property
    def is_choice(self) -> bool:
        """A question with embedded options and a stated answer letter (also scored as multiple choice)."""
        return bool(self.options) and self.answer_letter is not None


@dataclass(frozen=True)
class ClinCase:
    """One case record: ``description`` is the record (history, examination, tests) as one text."""

    id: str
    title: str
    description: str
    questions: tuple[ClinQuestion, ...]


def _options(question: str, path: Path, field: str) -> tuple[str, ...]:
    m = _OPTIONS_START.search(question)
    if m is None:
        return ()
    block = "\n".join(line.strip() for line in question[m.start():].strip().splitlines() if line.strip())
    try:
        return tuple(split_options(block, path=path, field=field))
    except DataError:
        return ()  # a line that merely starts "A." inside an open question: not options


def _question(raw: object, k: int, path: Path, where: str, line: int | None = None) -> ClinQuestion:
    field = f"{where}.QA_pairs[{k}]"
    if not isinstance(raw, dict):
        raise DataError(path, line, field, "expected an object {question, answer}")
    q, a = raw.get("question"), raw.get("answer")
    if not isinstance(q, str) or not q.strip():
        raise DataError(path, line, f"{field}.question", "missing or empty question")
    if not isinstance(a, str) or not a.strip():
        raise DataError(path, line, f"{field}.answer", "missing or empty answer")
    options = _options(q, path, f"{field}.question")
    letter = None
    if options:
        found = _ANSWER_LETTER.findall(a)
        letter = found[-1] if found else None
        if letter is not None and ord(letter) - ord("A") >= len(options):
            raise DataError(path, line, f"{field}.answer", f"answer letter {letter} beyond the {len(options)} options")
    return ClinQuestion(k, q.strip(), a.strip(), options, letter)


def read_cases(path: str | Path) -> list[ClinCase]:
    """The cases of a CMB-Clin file, in file order; a malformed case is a DataError naming its field."""
    p = Path(path).expanduser()
    if p.is_dir():
        p = p / FILE
    if not p.is_file():
        raise MissingDataError(f"{p} not found. Put CMB-Clin there ({FILE} from github.com/FreedomIntelligence/CMB, "
                               f"Data/CME-test-qa/; `chimed-eval data --datasets cmb_clin`)")
    cases: list[ClinCase] = []
    seen: set[str] = set()
    for i, row in enumerate(read_json_array(p, "cases {id, title, description, QA_pairs}")):
        c, line, where = row.fields, row.line, f"[{i}]"
        cid = str(c.get("id", i)).strip()
        if cid in seen:
            raise DataError(p, line, f"{where}.id", f"duplicate case id {cid!r}")
        seen.add(cid)
        desc = c.get("description")
        if not isinstance(desc, str) or not desc.strip():
            raise DataError(p, line, f"{where}.description", "missing or empty case record")
        pairs = c.get("QA_pairs")
        if not isinstance(pairs, list) or not pairs:
            raise DataError(p, line, f"{where}.QA_pairs", "expected a non-empty list of {question, answer}")
        qs = tuple(_question(q, k, p, where, line) for k, q in enumerate(pairs))
        cases.append(ClinCase(cid, str(c.get("title") or "").strip(), desc.strip(), qs))
    return cases


def cases_file(data_dir: Path) -> Path:
    """Where CMB-Clin lives under a data dir."""
    return Path(data_dir) / FOLDER / FILE
