"""The NER data: CCKS-2019, ChiMST (user-provided) and a user's own span files, as TaskData.

Each record becomes a Sample whose ``metadata["spans"]`` holds its gold ``(start, end, type)``
character spans; ``TaskData.labels`` is the type inventory the data defines (``types.txt``, the
spec's ``types``, or the gold types in order of first appearance).
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import TYPE_CHECKING, Sequence

from chimed_eval.core.errors import DataError, MissingDataError
from chimed_eval.files.spans import BIO_EXTENSIONS, SpanRecord, inventory_from, read_span_file
from chimed_eval.core.types import file_sha256
from chimed_eval.task.options import TaskData
from chimed_eval.core.types import Sample

if TYPE_CHECKING:
    from .spec import NerSpec

CCKS_TYPES = ("疾病和诊断", "影像检查", "实验室检验", "手术", "药物", "解剖部位")
CCKS_ALIASES = {
    "疾病": "疾病和诊断", "诊断": "疾病和诊断", "疾病诊断": "疾病和诊断", "疾病与诊断": "疾病和诊断",
    "检查": "影像检查", "影像": "影像检查", "影像学检查": "影像检查",
    "检验": "实验室检验", "实验室检查": "实验室检验", "化验": "实验室检验",
    "手术操作": "手术", "药品": "药物", "解剖": "解剖部位", "部位": "解剖部位",
}


def _rel(data_dir: Path, path: Path) -> str:
    try:
        return str(path.relative_to(data_dir))
    except ValueError:
        return str(path)


def _samples(records: Sequence[SpanRecord], file_name: str) -> list[Sample]:
    return [Sample(id=r.id, input=r.text, target=None,
                   metadata={"spans": r.spans, "file": file_name, "line": r.line}) for r in records]


def mentions(sample: Sample) -> list[tuple[str, str]]:
    """Gold (entity, type) for every annotated mention, in text order (the oracle's answer)."""
    spans = sorted(sample.spans, key=lambda x: (x[0], x[1]))
    return [(sample.input[s:e].strip(), t) for s, e, t in spans if sample.input[s:e].strip()]


def gold_types(samples: Sequence[Sample]) -> tuple[str, ...]:
    """The gold types of ``samples`` in order of first appearance (an inventory nobody declared)."""
    return tuple(inventory_from([SpanRecord(s.id, s.input, s.spans, 0) for s in samples]))


# --- CCKS-2019 -----------------------------------------------------------------------------------

CCKS_TEST = "subtask1_test_set_with_answer.json"
CCKS_TRAIN = ("subtask1_training_part1.txt", "subtask1_training_part2.txt")


def _need(path: Path, dataset: str, hint: str = "") -> Path:
    if not path.exists():
        raise MissingDataError(hint or (
            f"{path} not found. Put the {dataset} release there (layout as in shared/data/README.md), "
            f"or run: chimed-eval data --data-dir {path.parents[1]} --datasets {dataset}"))
    return path


def load_ccks2019(data_dir: Path, first: int | None = None) -> TaskData:
    """CCKS-2019 Task 1 (Yidu-S4K): JSON lines with a BOM, ``originalText`` and
    ``entities: [{label_type, start_pos, end_pos}]`` (end exclusive)."""
    root = data_dir / "ccks2019"
    test = _need(root / CCKS_TEST, "ccks2019")
    files = {_rel(data_dir, test): file_sha256(test)}
    recs = read_span_file(test, "jsonl", CCKS_TYPES, id_prefix="test-")
    samples = _samples(recs[:first] if first else recs, _rel(data_dir, test))
    pool: list[Sample] = []
    for i, name in enumerate(CCKS_TRAIN, 1):
        p = root / name
        if p.exists():
            pool += _samples(read_span_file(p, "jsonl", CCKS_TYPES, id_prefix=f"train{i}-"), _rel(data_dir, p))
            files[_rel(data_dir, p)] = file_sha256(p)
    return TaskData(samples=samples, fewshot={None: pool} if pool else {}, files=files)


# --- ChiMST (user-provided) ----------------------------------------------------------------------

CHIMST_HINT = (
    "{missing} not found. ChiMST has no public copy (released under a data-use contract). Put its test "
    "records at {root}/test.jsonl, one JSON object per line "
    '{{"text": "...", "entities": [{{"start": 0, "end": 3, "type": "..."}}]}} (character offsets, end '
    "exclusive), or at {root}/test.bio (CoNLL: one token and its B-/I-/O tag per line, a blank line between "
    "records); optionally train.jsonl / train.bio for few-shot examples and types.txt (one type per line)."
)


def _find(root: Path, stem: str) -> Path | None:
    for ext in (".jsonl", *BIO_EXTENSIONS):
        p = root / f"{stem}{ext}"
        if p.exists():
            return p
    return None


def _read_types_file(path: Path) -> tuple[str, ...]:
    """``types.txt``: one entity type per line, ``#`` comments; a DataError names the file and line."""
    from chimed_eval.files.tabular import read_text, split_lines

    types = []
    for i, line in enumerate(split_lines(read_text(path)), 1):  # UTF-8 (BOM accepted), undecodable bytes refused
        t = line.split("#", 1)[0].strip()
        if t:
            if t in types:
                raise DataError(path, i, None, f"type {t!r} is listed twice")
            types.append(t)
    if not types:
        raise DataError(path, None, None, "no types listed (one type per line)")
    return tuple(types)


def load_chimst(data_dir: Path, first: int | None = None) -> TaskData:
    """ChiMST (user-provided, see :data:`CHIMST_HINT`); the inventory is ``types.txt`` when present,
    else the gold types of the test and shot records (``TaskData.labels``)."""
    root = data_dir / "chimst"
    test = _find(root, "test")
    if test is None:
        raise MissingDataError(CHIMST_HINT.format(missing=root / "test.jsonl", root=root))
    files = {_rel(data_dir, test): file_sha256(test)}
    types = None
    tf = root / "types.txt"
    if tf.exists():
        types = _read_types_file(tf)
        files[_rel(data_dir, tf)] = file_sha256(tf)
    recs = read_span_file(test, None, types, id_prefix="test-")
    pool: list[Sample] = []
    train = _find(root, "train")
    if train is not None:
        pool = _samples(read_span_file(train, None, types, id_prefix="train-"), _rel(data_dir, train))
        files[_rel(data_dir, train)] = file_sha256(train)
    samples = _samples(recs[:first] if first else recs, _rel(data_dir, test))
    return TaskData(samples=samples, fewshot={None: pool} if pool else {}, files=files,
                    labels=types or gold_types([*samples, *pool]))


def _refuse_test_texts(shots: Sequence[SpanRecord], shot_path: Path, tests: Sequence[SpanRecord], test_path: Path,
                       field: str) -> None:
    """A shot whose text is a test record's text would show that record its own answer: refused,
    naming both places (texts compared after stripping surrounding whitespace)."""
    by_text: dict[str, SpanRecord] = {}
    for r in tests:
        by_text.setdefault(r.text.strip(), r)
    for s in shots:
        t = by_text.get(s.text.strip())
        if t is not None:
            raise DataError(shot_path, s.line, field,
                            f"this few-shot record's text is identical to the test record at {test_path}:{t.line} "
                            f"(id {t.id!r}), whose answer would then be in its own prompt; remove it from the "
                            "fewshot= file")


def load_spec(spec: NerSpec) -> TaskData:
    path = Path(os.path.expanduser(str(spec.path)))
    if not path.exists():
        raise MissingDataError(f"{path}: no such file (the ner task's path=)")
    types = spec.types
    fields = spec.span_fields()
    recs = read_span_file(path, spec.format, types, spec.encoding, spec.token_sep, fields=fields)
    files = {path.name: file_sha256(path)}
    pool: list[Sample] = []
    if spec.fewshot is not None:
        fp = Path(os.path.expanduser(str(spec.fewshot)))
        if not fp.exists():
            raise MissingDataError(f"{fp}: no such file (the ner task's fewshot=)")
        shot_recs = read_span_file(fp, spec.format, types, spec.encoding, spec.token_sep, id_prefix="shot-", fields=fields)
        _refuse_test_texts(shot_recs, fp, recs, path, spec.text_field or "text")
        pool = _samples(shot_recs, fp.name)
        files[fp.name] = file_sha256(fp)
    samples = _samples(recs, path.name)
    return TaskData(samples=samples, fewshot={None: pool} if pool else {}, files=files,
                    labels=tuple(types) if types else gold_types([*samples, *pool]))
