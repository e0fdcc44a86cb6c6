"""``dialogue``: your own doctor-patient dialogues (JSON or JSONL), scored on the doctor's next turn
exactly as the built-in dialogue tasks (``mc-dialogue``, ``covid-dialogue-zh``) are: the last
doctor turn after a patient turn is the reference, every turn before it the context, consecutive
utterances of one speaker merged (:mod:`chimed_eval.tasks.generation`), BLEU/ROUGE in both protocols.

``chimed-eval run --tasks dialogue --task-args path=dialogues.jsonl,turns=对话``, or a ``type =
"dialogue"`` entry of a ``--task-config`` file. Two turn layouts, one per dialogue record:

* strings with a role prefix (COVID-Dialogue's ``"病人：..."`` / ``"医生：..."``):
  ``patient_prefix=病人：,doctor_prefix=医生：`` (the defaults; a prefix ending in ``：`` or ``:``
  matches either colon);
* objects with a role and a text field (``{"role": "user", "content": "..."}``, ShareGPT's
  ``{"from": "human", "value": "..."}``): ``role_field``/``text_field`` (default: detected), and
  the role values of each side, ``patient_roles`` / ``doctor_roles`` (``a;b``).

The records are objects holding the turn list under ``turns=`` (default: the first of turns,
dialogue, dialog, conversation, conversations, messages, utterances), or, in a JSON file, the
turn lists themselves (COVID-Dialogue's layout: a list of lists). Item ids: the ``id=`` field, else
the line (JSONL / JSON objects) or the 0-based position (a list of lists). Empty utterances are
dropped; a dialogue with no doctor turn after a patient turn, or a turn of neither side, is a
DataError naming the file, line and turn.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Mapping

from chimed_eval.core.errors import DataError, MissingDataError
from chimed_eval.files.tabular import cell_text, infer_format, keep_rows, parse_where, read_rows, read_text, where_text
from chimed_eval.core.types import file_sha256
from chimed_eval.task.options import TaskData
from chimed_eval.core.types import Sample
from chimed_eval.tasks.config import split_list
from chimed_eval.tasks.generation import DOCTOR, PATIENT
from chimed_eval.tasks.generation_data import dialogue_sample
from chimed_eval.tasks.qa import register_generation_type

TURN_FIELDS = ("turns", "dialogue", "dialog", "conversation", "conversations", "messages", "utterances")
ROLE_FIELDS = ("role", "from", "speaker")
TEXT_FIELDS = ("content", "value", "text", "utterance")


@dataclass(frozen=True)
class DialogueSpec:
    path: str
    format: str | None = None
    encoding: str | None = None
    turns: str | None = None
    patient_prefix: str = "病人："
    doctor_prefix: str = "医生："
    role_field: str | None = None
    text_field: str | None = None
    patient_roles: str = "patient;user;human;病人;患者"
    doctor_roles: str = "doctor;assistant;gpt;bot;医生"
    id: str | None = None
    where: tuple[tuple[str, str], ...] | None = None
    name: str = "dialogue"


HELP = {
    "path": "your dialogues: JSONL (one dialogue per line) or JSON (a list of dialogue records or of turn lists)",
    "format": "json | jsonl (default: from the file extension)", "encoding": "the file's encoding (default: UTF-8)",
    "turns": "the field holding a dialogue's turn list (default: turns, dialogue, messages, ... detected)",
    "patient_prefix": "prefix of a patient turn given as text (default 病人：)",
    "doctor_prefix": "prefix of a doctor turn given as text (default 医生：)",
    "role_field": "turns as objects: the role key (default: role / from / speaker)",
    "text_field": "turns as objects: the text key (default: content / value / text / utterance)",
    "patient_roles": "turns as objects: the patient's role values, a;b", "doctor_roles": "the doctor's role values, a;b",
    "id": "a stable id field (default: the line, or the position in a list of lists)",
    "where": "keep only records whose field holds value: field=value (several joined by ;)",
    "name": "the task name in results",
}


def _prefix_forms(prefix: str) -> tuple[str, ...]:
    """A role prefix and, when it ends in a colon, its other-width twin (病人： and 病人:)."""
    if prefix.endswith(("：", ":")):
        return (prefix, prefix[:-1] + ("：" if prefix.endswith(":") else ":"))
    return (prefix,)


class _Turns:
    """Reads one dialogue's turn list into (role, text) utterances, per the spec."""

    def __init__(self, spec: DialogueSpec, path: Path) -> None:
        self.spec, self.path = spec, path
        self.prefixes = [(p, PATIENT) for p in _prefix_forms(spec.patient_prefix)] + \
                        [(p, DOCTOR) for p in _prefix_forms(spec.doctor_prefix)]
        self.prefixes.sort(key=lambda pr: -len(pr[0]))  # the longer prefix first
        self.roles = {**{r.lower(): PATIENT for r in split_list(spec.patient_roles)},
                      **{r.lower(): DOCTOR for r in split_list(spec.doctor_roles)}}

    def read(self, turns: Any, line: int | None, field: str) -> list[tuple[str, str]]:
        if not isinstance(turns, list) or not turns:
            raise DataError(self.path, line, field, "expected a non-empty list of turns")
        return [self._turn(t, line, f"{field}[{j}]") for j, t in enumerate(turns)]

    def _turn(self, t: Any, line: int | None, field: str) -> tuple[str, str]:
        if isinstance(t, str):
            s = t.strip()
            for prefix, role in self.prefixes:
                if s.startswith(prefix):
                    return role, s[len(prefix):].strip()
            raise DataError(self.path, line, field, f"expected a turn starting {self.spec.patient_prefix} or "
                                                    f"{self.spec.doctor_prefix}, got {s[:20]!r}; set patient_prefix= "
                                                    "and doctor_prefix=")
        if isinstance(t, dict):
            rkey = self._key(t, self.spec.role_field, ROLE_FIELDS, "role_field", line, field)
            tkey = self._key(t, self.spec.text_field, TEXT_FIELDS, "text_field", line, field)
            role = self.roles.get(cell_text(t.get(rkey)).lower())
            if role is None:
                raise DataError(self.path, line, f"{field}.{rkey}", f"role {cell_text(t.get(rkey))!r} is neither a "
                                                                    f"patient role ({self.spec.patient_roles}) nor a "
                                                                    f"doctor role ({self.spec.doctor_roles})")
            return role, cell_text(t.get(tkey))
        raise DataError(self.path, line, field, "expected a turn: a text with a role prefix, or an object")

    def _key(self, t: Mapping[str, Any], given: str | None, candidates: tuple[str, ...], arg: str,
             line: int | None, field: str) -> str:
        if given is not None:
            if given not in t:
                raise DataError(self.path, line, field, f"no key {given!r} (named by {arg}=; have: {', '.join(t)})")
            return given
        found = next((c for c in candidates if c in t), None)
        if found is None:
            raise DataError(self.path, line, field, f"no {arg[:-6]} key: looked for {', '.join(candidates)} "
                                                    f"(have: {', '.join(t)}); name it with {arg}=")
        return found


def _records(spec: DialogueSpec, path: Path) -> list[tuple[str, int | None, Any, str]]:
    """(id, line, turn list, field) per dialogue: records holding a turn list, or in a JSON file
    the turn lists themselves (a list of lists: no line, the position is the id)."""
    fmt = infer_format(path, spec.format)
    if fmt == "json":
        text = read_text(path, spec.encoding).lstrip()
        if text.startswith("[") and text[1:].lstrip().startswith("["):
            if spec.where or spec.id:
                raise DataError(path, None, None, "a list of turn lists has no fields for where= or id=")
            try:
                doc = json.loads(text)
            except json.JSONDecodeError as e:
                raise DataError(path, e.lineno, None, f"invalid JSON: {e.msg} (column {e.colno})") from None
            return [(str(i), None, turns, f"[{i}]") for i, turns in enumerate(doc)]
    rows = read_rows(path, fmt, spec.encoding)
    if spec.where:
        rows = keep_rows(path, rows, spec.where)
        if not rows:
            raise DataError(path, None, spec.where[0][0], f"no record matches where={where_text(spec.where)}")
    key = spec.turns or next((c for c in TURN_FIELDS if c in rows[0].fields), None)
    if key is None:
        raise DataError(path, rows[0].line, None, f"no turn list: looked for {', '.join(TURN_FIELDS)} "
                                                  f"(have: {', '.join(rows[0].fields)}); name it with turns=")
    out = []
    for row in rows:
        if key not in row.fields:
            raise DataError(path, row.line, key, f"missing field {key!r} (have: {', '.join(row.fields)})")
        rid = cell_text(row.fields.get(spec.id)) if spec.id else str(row.line)
        if spec.id and not rid:
            raise DataError(path, row.line, spec.id, "the id is missing or empty")
        out.append((rid, row.line, row.fields[key], key))
    return out


def load(spec: DialogueSpec) -> TaskData:
    path = Path(spec.path).expanduser()
    if not path.is_file():
        raise MissingDataError(f"{path}: no such file (the dialogue task's path=)")
    reader = _Turns(spec, path)
    samples: list[Sample] = []
    first: dict[str, int | None] = {}
    for rid, line, turns, field in _records(spec, path):
        if rid in first:
            raise DataError(path, line, spec.id, f"duplicate dialogue id {rid!r} (first at line {first[rid]}); "
                                                 "ids must be unique")
        first[rid] = line
        meta: dict[str, Any] = {"file": path.name, **({"line": line} if line is not None else {"index": int(rid)})}
        s = dialogue_sample(rid, reader.read(turns, line, field), meta)
        if s is None:
            raise DataError(path, line, field, "no doctor turn with text after a patient turn: nothing to score "
                                               "(are patient_prefix/doctor_prefix or the roles right?)")
        samples.append(s)
    return TaskData(samples=samples, files={path.name: file_sha256(path)})


register_generation_type(
    "dialogue", "your own doctor-patient dialogues (JSON/JSONL): the doctor's next turn, BLEU/ROUGE", DialogueSpec, HELP,
    {"where": parse_where}, load, lambda spec: f"your dialogues from {spec.path}: the doctor's next turn",
    "--tasks dialogue --task-args path=dialogues.jsonl,turns=对话,patient_prefix=病人：,doctor_prefix=医生：")
