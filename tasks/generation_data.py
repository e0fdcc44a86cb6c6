"""The data of the open-QA and dialogue tasks: the CMD and ChiMed QA readers, the HET-MC and
COVID-Dialogue readers, and the turn merging they share.  The formats, splits and item ids are
documented in :mod:`chimed_eval.tasks.generation`, which registers the tasks and re-exports these names; kept
apart so the task (prompts, decoding, scoring) and its readers each stay readable (training reads
the CMD and HET-MC data through them too)."""

from __future__ import annotations

import hashlib
import json
import re
from pathlib import Path
from typing import Any, Sequence

from chimed_eval.data.sets import CMD_QA_FILE, data_location
from chimed_eval.core.errors import DataError, MissingDataError
from chimed_eval.files.tabular import cell_text, read_rows, split_lines
from chimed_eval.core.types import file_sha256
from chimed_eval.task.options import TaskData
from chimed_eval.core.types import Sample

CMD_SPLIT_SALT = "cmd-qa-split@1"
CMD_TEST_SIZE = 500
CMD_FILE = CMD_QA_FILE.rsplit("/", 1)[1]
PATIENT, DOCTOR = "patient", "doctor"


# --- encodings ------------------------------------------------------------------------------------


def detect_encoding(path: Path, candidates: Sequence[str] = ("utf-8", "gb18030")) -> str:
    """The first of ``candidates`` that decodes the whole file (a UTF-8 BOM is accepted). A file
    that none decodes is a DataError naming it, each encoding tried and where it failed."""
    data = Path(path).read_bytes()
    failures = []
    for enc in candidates:
        body = data[3:] if enc == "utf-8" and data.startswith(b"\xef\xbb\xbf") else data
        try:
            body.decode(enc)
            return enc
        except UnicodeDecodeError as e:
            line = body.count(b"\n", 0, e.start) + 1
            failures.append(f"{enc} (byte 0x{body[e.start:e.start + 1].hex()} on line {line})")
    raise DataError(path, None, None, f"cannot decode the file: tried {', '.join(failures)}; "
                                      "convert it to UTF-8 or pass its encoding")


def _rel(data_dir: Path, path: Path) -> str:
    try:
        return str(path.relative_to(data_dir))
    except ValueError:
        return str(path)


def _need(path: Path, what: str) -> Path:
    if not path.exists():
        raise MissingDataError(f"{path} not found. {what}")
    return path


# --- QA loaders -----------------------------------------------------------------------------------


def load_cmd_qa(data_dir: Path, test_size: int = CMD_TEST_SIZE) -> TaskData:
    path = _need(data_dir / CMD_QA_FILE, "Put the CMD release there (Toyhom/Chinese-medical-dialogue-data, "
                 "样例_内科5000-6000.csv saved under that name), or run: chimed-eval data --datasets cmd")
    rows = read_rows(path, "csv", detect_encoding(path))
    keyed: list[tuple[str, Sample]] = []
    seen: set[tuple[str, str]] = set()
    rel = _rel(data_dir, path)
    for row in rows:
        for col in ("department", "title", "ask", "answer"):
            if col not in row.fields:
                raise DataError(path, row.line, col, f"missing column {col!r} (have: {', '.join(row.fields)})")
        dept, title, ask, answer = (cell_text(row.fields[c]) for c in ("department", "title", "ask", "answer"))
        question = ask if ask and ask != "无" else title
        if not question or not answer or (question, answer) in seen:
            continue
        seen.add((question, answer))
        key = hashlib.sha256("\x00".join((CMD_SPLIT_SALT, dept, title, ask, answer)).encode("utf-8")).hexdigest()
        keyed.append((key, Sample(id=f"cmd-{key[:12]}", input=question, target=answer, subject=dept or None,
                                  metadata={"file": rel, "line": row.line, "title": title, "department": dept})))
    keyed.sort(key=lambda kv: kv[0])
    return TaskData(samples=[s for _, s in keyed[:test_size]], files={rel: file_sha256(path)})


CHIMED_HINT = ("ChiMed open QA has no public copy. Put its test records at {root}/test.jsonl, one JSON object per "
               'line {{"question": "...", "answer_1": "...", "answer_2": "..."}} (answer_2 optional; an "id" '
               "field is used when present), or the same columns in test.json / test.csv / test.tsv / test.xlsx.")


def _first_text(v: Any) -> str:
    if isinstance(v, list):
        v = v[0] if v else ""
    return cell_text(v)


def load_chimed_qa(data_dir: Path) -> TaskData:
    root = data_dir / data_location("chimed_qa")
    path = next((root / f"test{ext}" for ext in (".jsonl", ".json", ".csv", ".tsv", ".xlsx")
                 if (root / f"test{ext}").exists()), None)
    if path is None:
        raise MissingDataError(f"{root / 'test.jsonl'} not found. " + CHIMED_HINT.format(root=root))
    enc = None if path.suffix == ".xlsx" else detect_encoding(path)
    rows = read_rows(path, None, enc)
    rel = _rel(data_dir, path)
    samples = []
    for row in rows:
        f = row.fields
        if "prompt" in f and "output" in f and "question" not in f:
            question, answers = _first_text(f["prompt"]), [_first_text(f["output"])]
        else:
            if "question" not in f:
                raise DataError(path, row.line, "question", f"missing field 'question' (have: {', '.join(f)})")
            question = cell_text(f["question"])
            answers = [cell_text(f.get(k)) for k in ("answer_1", "answer_2", "answer")]
        if not question:
            raise DataError(path, row.line, "question", "the question is empty")
        if not any(answers):
            raise DataError(path, row.line, "answer_1", "no reference answer (answer_1 / answer_2 are empty)")
        rid = cell_text(f.get("id")) or str(row.line)
        for k, ans in enumerate(answers, 1):
            if ans:
                samples.append(Sample(id=f"chimed-{rid}-{k}", input=question, target=ans,
                                      metadata={"file": rel, "line": row.line}))
    return TaskData(samples=samples, files={rel: file_sha256(path)})


# --- dialogue loaders -----------------------------------------------------------------------------


def merge_turns(utterances: Sequence[tuple[str, str]]) -> list[tuple[str, str]]:
    """Consecutive utterances of one speaker become one turn, each utterance followed by ``\\n``."""
    out: list[tuple[str, str]] = []
    for role, text in utterances:
        if out and out[-1][0] == role:
            out[-1] = (role, out[-1][1] + text + "\n")
        else:
            out.append((role, text + "\n"))
    return out


def dialogue_item(turns: list[tuple[str, str]]) -> tuple[list[tuple[str, str]], str] | None:
    """(context turns, target) for the last doctor turn, or None when there is none after a
    patient turn."""
    last = max((i for i, (role, _) in enumerate(turns) if role == DOCTOR), default=-1)
    if last < 1:
        return None
    return turns[:last], turns[last][1].rstrip("\n")


def dialogue_sample(sid: str, utterances: list[tuple[str, str]], meta: dict[str, Any]) -> Sample | None:
    """The item of one dialogue: the last doctor turn after a patient turn is the reference, the
    turns before it the context; None when there is no such turn. Empty utterances (a role prefix
    and nothing else) are dropped first: an empty reply is no reference (every model would score
    0 on it) and no turn of the context."""
    item = dialogue_item(merge_turns([(role, text) for role, text in utterances if text.strip()]))
    if item is None:
        return None
    context, target = item
    paper = "".join(("[human]:" if r == PATIENT else "[bot]:") + t for r, t in context) + "[bot]:"
    return Sample(id=sid, input=paper, target=target, metadata={**meta, "turns": [list(t) for t in context]})


def load_hetmc(data_dir: Path, split: str = "test", *, allow_duplicate_ids: bool = False) -> TaskData:
    """HET-MC ``.dialog``: blank-line-separated blocks; header ``id\\t<id>\\tapartment\\t<dept>\\tdisease\\t<d>``,
    then ``P``/``D`` TAB utterance TAB label lines, then ``SUM...`` summary lines. A repeated
    dialogue id is an error, except for training, which reads the sample ``train.dialog`` (its 36
    dialogues repeated 10 times) with ``allow_duplicate_ids``."""
    path = _need(data_dir / data_location("hetmc") / f"{split}.dialog",
                 "Put the HET-MC sample release (cuhksz-nlp/HET-MC sample_data) there, or run: chimed-eval data --datasets hetmc")
    text = path.read_text(encoding=detect_encoding(path)).lstrip("\ufeff")
    rel = _rel(data_dir, path)
    samples, seen = [], set()
    block: list[tuple[int, str]] = []
    for lineno, line in enumerate([*split_lines(text), ""], 1):  # never on U+2028/U+0085
        if line.strip():
            block.append((lineno, line))
            continue
        if not block:
            continue
        (hline, header), body = block[0], block[1:]
        block = []
        h = header.split("\t")
        if h[0] != "id" or len(h) < 2:
            raise DataError(path, hline, None, f"expected a header 'id<TAB>...', got {header[:40]!r}")
        meta = dict(zip(h[0::2], h[1::2]))
        utts = []
        for ln, row in body:
            parts = row.split("\t")
            if parts[0] in ("P", "D"):
                if len(parts) < 2:
                    raise DataError(path, ln, None, "a turn line needs P|D<TAB>utterance")
                utts.append((PATIENT if parts[0] == "P" else DOCTOR, parts[1].strip()))
            elif not parts[0].startswith("SUM"):
                raise DataError(path, ln, None, f"expected a P/D turn or a SUM line, got {row[:40]!r}")
        did = meta["id"].strip()
        sid = f"hetmc-{split}-{did}"
        if sid in seen and not allow_duplicate_ids:
            raise DataError(path, hline, "id", f"dialogue id {did!r} appears twice")
        seen.add(sid)
        s = dialogue_sample(sid, utts, {"file": rel, "line": hline, "department": meta.get("apartment", ""),
                                         "disease": meta.get("disease", "")})
        if s is not None:
            samples.append(s)
    return TaskData(samples=samples, files={rel: file_sha256(path)})


_COVID_ROLE = re.compile(r"^(病人|医生)[：:]")


def load_covid_zh(data_dir: Path, split: str = "test") -> TaskData:
    """COVID-Dialogue (Chinese) ``<split>_data.json``: a list of dialogues, each a list of
    utterances prefixed ``病人：`` or ``医生：``."""
    path = _need(data_dir / data_location("covid_zh") / f"{split}_data.json",
                 "Put the COVID-Dialogue Chinese files (UCSD-AI4H/COVID-Dialogue) there, or run: chimed-eval data --datasets covid_zh")
    try:
        doc = json.loads(path.read_text(encoding=detect_encoding(path)).lstrip("\ufeff"))
    except json.JSONDecodeError as e:
        raise DataError(path, e.lineno, None, f"invalid JSON: {e.msg}") from None
    if not isinstance(doc, list):
        raise DataError(path, None, None, "expected a JSON list of dialogues")
    rel = _rel(data_dir, path)
    samples = []
    for i, dialog in enumerate(doc):
        if not isinstance(dialog, list) or not all(isinstance(u, str) for u in dialog):
            raise DataError(path, None, f"[{i}]", "expected a list of utterance strings")
        utts = []
        for j, u in enumerate(dialog):
            m = _COVID_ROLE.match(u.strip())
            if m is None:
                raise DataError(path, None, f"[{i}][{j}]", f"expected an utterance starting 病人： or 医生：, got {u[:20]!r}")
            utts.append((PATIENT if m.group(1) == "病人" else DOCTOR, u.strip()[m.end():].strip()))
        s = dialogue_sample(f"covid-{split}-{i:03d}", utts, {"file": rel, "line": None, "index": i})
        if s is not None:
            samples.append(s)
    return TaskData(samples=samples, files={rel: file_sha256(path)})
