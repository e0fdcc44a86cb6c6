"""CMExam (Chinese National Medical Licensing Examination), validation split: 6,811 rows; 6,810
items are scored, 210 of them with several correct answers (2-5 letters), 5 options (205 have 4).

One row (5358) has the answer ``nan``, a missing value written out as text by the release's
tooling: it has no gold answer and is left out (:data:`NO_ANSWER`). Counting ``nan`` as a
three-letter answer is how "211 with several answers" elsewhere comes about. Three rows (5591,
5598, 6029) lack one option in the release (labels ``B C D E`` or ``A B D E``): their options are
relettered in order (A, B, ...) and the answer follows its option's text, so a model is never
shown a gap in the letters.

The file (``<data-dir>/cmexam/val.xlsx``) has one sheet with columns ``Question, Options, Answer,
Explanation``; ``Options`` holds every option in one cell as ``A 文本``, separated by the two
characters backslash and n (not a line break), read with ``option_sep``. There is no subject
column, so no per-subject breakdown. Items keep file order; ids are ``val-<row>``.

Scoring: exact set match (``acc_exact_set``, the official rule) and option F1, never ``acc``
(:mod:`chimed_eval.evidence.multi_choice`). The default variant is ``generate``: the letter-scoring
variants (``paper``, ``lm-eval``) refuse the 211 several-answer items.
"""

from __future__ import annotations

import re
import unicodedata
from pathlib import Path

from chimed_eval.data.sets import data_location
from chimed_eval.core.errors import DataError, MissingDataError
from chimed_eval.evidence.multi_choice import multi_target
from chimed_eval.files.tabular import cell_text, read_rows, require
from chimed_eval.core.types import file_sha256
from chimed_eval.task.multiple_choice import MCQTask
from chimed_eval.task.options import TaskData
from chimed_eval.core.types import Sample

from . import TASKS

OPTION_SEP = "\\n"  # the two characters backslash and n
FILE = "val.xlsx"
NO_ANSWER = "nan"  # the release's text for a missing answer; such rows are left out
_LABELLED = re.compile(r"\s*([A-J])\s+(\S.*)\Z", re.S)


def labelled_options(cell: str, path: Path, line: int) -> tuple[str, tuple[str, ...]]:
    """``"A 文本\\nB 文本"`` -> (the labels in order, ``"AB"``; the texts). Labels must be
    ascending option letters; a gap (a missing option) is allowed, see the module docstring."""
    labels, texts = "", []
    for piece in cell.split(OPTION_SEP):
        m = _LABELLED.match(piece)
        if m is None or (labels and m.group(1) <= labels[-1]):
            raise DataError(path, line, "Options", f"option {piece[:30]!r}: expected '<letter> <text>' with "
                                                   f"ascending letters, separated by {OPTION_SEP!r}")
        labels += m.group(1)
        texts.append(m.group(2).strip())
    if len(texts) < 2:
        raise DataError(path, line, "Options", f"{len(texts)} option(s); expected at least 2")
    return labels, tuple(texts)


def load_cmexam(data_dir: Path) -> TaskData:
    """The validation items in file order (rows of ``val.xlsx``)."""
    rel = f"{data_location('cmexam')}/{FILE}"
    path = Path(data_dir) / rel
    if not path.exists():
        raise MissingDataError(f"{path} not found. Put CMExam's val.xlsx there (see shared/data/README.md), "
                               f"or run: chimed-eval data --data-dir {data_dir} --datasets cmexam")
    samples = []
    for row in read_rows(path, fmt="xlsx"):
        if cell_text(row.fields.get("Answer")).strip() == NO_ANSWER:
            continue
        labels, choices = labelled_options(cell_text(require(row, path, "Options")), path, row.line)
        answer = unicodedata.normalize("NFKC", cell_text(require(row, path, "Answer"))).strip().upper()
        missing = [c for c in answer if c not in labels]
        if not answer or missing or len(set(answer)) != len(answer):
            raise DataError(path, row.line, "Answer", f"answer {answer!r} must name each of the options "
                                                      f"{''.join(labels)} at most once")
        target = multi_target([labels.index(c) for c in answer])
        samples.append(Sample(id=f"val-{row.line}", input=cell_text(require(row, path, "Question")), choices=choices,
                              target=target, metadata={"file": rel, "line": row.line}))
    return TaskData(samples=samples, files={rel: file_sha256(path)})


TASKS.add("cmexam", lambda: MCQTask("cmexam", load_cmexam, "CMExam val: 6,810 licensing-exam items, 210 with "
                                    "several answers; exact set match and option F1", multi_answer=True,
                                    default_variant="generate"),
          "CMExam val (6,810 items, 210 with several answers): exact set match + option F1; --variant generate or cot")
