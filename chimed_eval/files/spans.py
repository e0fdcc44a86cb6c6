"""Span-annotated NER files: JSONL with character offsets, and CoNLL-style BIO.

Every problem is a :class:`~chimed_eval.core.errors.DataError` naming the file, the 1-based line and
the field, and saying what was expected. Lines end at newlines only, not at U+2028 and the like (see :func:`chimed_eval.files.tabular.split_lines`).

JSONL (UTF-8, a BOM is accepted), one record per line (a ``.json`` file may instead hold a JSON
array of the same records, ``[{...}, {...}]``; a record's line is then the line of its ``{``)::

    {"text": "患者服用阿司匹林", "entities": [{"start": 4, "end": 8, "type": "药物"}]}

``start`` is inclusive and ``end`` exclusive, in characters of ``text``. Accepted key spellings:
text / originalText / sentence; entities / spans / labels; start / start_pos / start_offset;
end / end_pos / end_offset; type / label / label_type / category. An optional ``id`` is the
record id (else ``<file stem>-<line>``, or ``<id_prefix><line>`` when the caller gives a prefix); an optional ``entity`` / ``mention`` string in an entity
must equal ``text[start:end]`` (this catches inclusive ends and shifted offsets). Records without
that string are checked together (:mod:`chimed_eval.files.span_checks`): spans that mostly stop one
character before punctuation or whitespace, or end or start on it, stop the reading with the
evidence and the fix (``check_ends=false`` accepts such spans as they are). Other key names
are given with :class:`SpanFields` (``text_field=``, ``entities_field=``, ``start_field=``,
``end_field=``, ``type_field=``); ``end_inclusive=true`` reads ``end`` as the offset of the
entity's last character (stored exclusive, the mention check then compares ``text[start:end+1]``).

BIO (``.bio``, ``.conll``, ``.txt``): one token per line, the token first and its tag last,
separated by a tab or spaces (extra middle columns are ignored); a blank line ends a record;
``-DOCSTART-`` lines are skipped. Tags: ``O``, ``B-T``, ``I-T`` (IOB2), also ``E-T``/``S-T``
(BIOES) and ``M-T`` (BMES). An ``I-``/``E-``/``M-`` tag that does not continue an entity of the
same type is an error (IOB1 files must be converted). Tokens are joined with ``token_sep``
(default ``""``: Chinese characters or words) and the entity offsets are character offsets into
that joined text. A line holding only a tag after leading whitespace is a space token.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Sequence

from chimed_eval.core.errors import ConfigError, DataError
from chimed_eval.files.span_checks import EndSignals, end_convention_problem
from chimed_eval.files.tabular import read_rows, read_text, refuse_nul, split_lines

Span = tuple[int, int, str]

TEXT_KEYS = ("text", "originalText", "sentence")
ENTITIES_KEYS = ("entities", "spans", "labels")
START_KEYS = ("start", "start_pos", "start_offset")
END_KEYS = ("end", "end_pos", "end_offset")
TYPE_KEYS = ("type", "label", "label_type", "category")
MENTION_KEYS = ("entity", "mention")
BIO_EXTENSIONS = (".bio", ".conll", ".txt", ".tsv")


@dataclass(frozen=True)
class SpanRecord:
    """One annotated text: ``spans`` are (start, end-exclusive, type) in file order."""

    id: str
    text: str
    spans: tuple[Span, ...]
    line: int


def _auto_id(path: Path, line: int, id_prefix: str) -> str:
    """``<id_prefix><line>`` when a prefix is given (``test-12``), else ``<file stem>-<line>``."""
    return f"{id_prefix}{line}" if id_prefix else f"{path.stem}-{line}"


def _first(obj: dict[str, Any], keys: Sequence[str]) -> str | None:
    return next((k for k in keys if k in obj), None)


def _check_type(path: Path, line: int, field: str, t: Any, types: Sequence[str] | None) -> str:
    if not isinstance(t, str) or not t.strip():
        raise DataError(path, line, field, f"entity type must be a non-empty string, got {t!r}")
    t = t.strip()
    if types is not None and t not in types:
        raise DataError(path, line, field, f"entity type {t!r} is not in the type inventory ({', '.join(types)})")
    return t


@dataclass(frozen=True)
class SpanFields:
    """Which keys hold what in JSON/JSONL span records. A given name is the only key read for
    that field (an error names it when a record lacks it); None accepts the usual spellings
    (:data:`TEXT_KEYS` ...). ``end_inclusive``: ``end`` is the offset of the entity's last
    character (CMeEE's ``end_idx``) and is converted to the exclusive end on reading.
    ``check_ends``: refuse spans whose boundaries look off by one (see :mod:`chimed_eval.files.span_checks`)."""

    text: str | None = None
    entities: str | None = None
    start: str | None = None
    end: str | None = None
    type: str | None = None
    end_inclusive: bool = False
    check_ends: bool = True

    def renamed(self) -> list[str]:
        """The ``<x>_field`` settings given (they apply to JSON/JSONL records only)."""
        return [f"{k}_field" for k in ("text", "entities", "start", "end", "type") if getattr(self, k) is not None]


DEFAULT_FIELDS = SpanFields()


def _keys(given: str | None, default: Sequence[str]) -> tuple[str, ...]:
    return (given,) if given is not None else tuple(default)


def _is_json_array(path: Path, encoding: str | None) -> bool:
    """True when the file's first non-blank character is ``[``: a JSON array of records, not JSONL."""
    return read_text(path, encoding).lstrip(" \t\r\n").startswith("[")


def read_span_jsonl(path: Path, types: Sequence[str] | None = None, encoding: str | None = None,
                    id_prefix: str = "", fields: SpanFields = DEFAULT_FIELDS, *, array: bool = False) -> list[SpanRecord]:
    """Read a JSONL span file (see the module docstring), or with ``array`` a JSON array of the
    same records (each record's line is the line of its ``{``); ``types`` (if given) is enforced,
    ``fields`` renames keys and may declare inclusive ends."""
    path = Path(path)
    text_keys, ent_keys = _keys(fields.text, TEXT_KEYS), _keys(fields.entities, ENTITIES_KEYS)
    start_keys, end_keys, type_keys = _keys(fields.start, START_KEYS), _keys(fields.end, END_KEYS), _keys(fields.type, TYPE_KEYS)
    incl = fields.end_inclusive
    out: list[SpanRecord] = []
    seen: dict[str, int] = {}
    signals, end_key = EndSignals(), end_keys[0]
    for row in read_rows(path, fmt="json" if array else "jsonl", encoding=encoding):
        f = row.fields
        tk = _first(f, text_keys)
        if tk is None or not isinstance(f[tk], str):
            have = f" (the record's keys: {', '.join(map(str, f))}; pass text_field=<key>)" if fields.text is None else ""
            raise DataError(path, row.line, fields.text or "text",
                            f"missing text: expected a string field {' / '.join(text_keys)}{have}")
        text = f[tk]
        ek = _first(f, ent_keys)
        if ek is None and fields.entities is not None:
            raise DataError(path, row.line, fields.entities, "missing: the record has no such key (entities_field=)")
        ents = f.get(ek, []) if ek else None
        if not isinstance(ents, list):
            raise DataError(path, row.line, ek or "entities",
                            f"expected a list of entities under {' / '.join(ent_keys)}")
        spans: list[Span] = []
        for j, e in enumerate(ents):
            where = f"{ek}[{j}]"
            if not isinstance(e, dict):
                raise DataError(path, row.line, where, f"expected an object {{{start_keys[0]}, {end_keys[0]}, {type_keys[0]}}}")
            sk, nk, yk = _first(e, start_keys), _first(e, end_keys), _first(e, type_keys)
            for k, keys in ((sk, start_keys), (nk, end_keys), (yk, type_keys)):
                if k is None:
                    raise DataError(path, row.line, where, f"missing {' / '.join(keys)} (the entity's keys: {', '.join(map(str, e))})")
            s, n = e[sk], e[nk]
            if isinstance(s, bool) or isinstance(n, bool) or not isinstance(s, int) or not isinstance(n, int):
                raise DataError(path, row.line, where, f"{sk} and {nk} must be integers, got {s!r}, {n!r}")
            if incl:
                if not 0 <= s <= n < len(text):
                    raise DataError(path, row.line, where,
                                    f"offsets {sk}={s}, {nk}={n} do not fit the text of {len(text)} characters "
                                    "(end_inclusive=true: 0 <= start <= end < len(text))")
                n += 1
            elif not 0 <= s < n <= len(text):
                hint = " (if the end is the last character's offset, pass end_inclusive=true)" if 0 <= s == n < len(text) else ""
                raise DataError(path, row.line, where,
                                f"offsets [{s}, {n}) do not fit the text of {len(text)} characters "
                                f"(start inclusive, end exclusive, 0 <= start < end <= len(text)){hint}")
            t = _check_type(path, row.line, f"{where}.{yk}", e[yk], types)
            mk = _first(e, MENTION_KEYS)
            if mk is not None and isinstance(e[mk], str) and e[mk] != text[s:n]:
                if incl:
                    rule = f"end_inclusive=true: {nk} is the offset of the entity's last character"
                elif e[mk] == text[s:n + 1]:
                    rule = f"end must be exclusive; it is text[{s}:{n + 1}]: if the ends are inclusive, pass end_inclusive=true"
                else:
                    rule = "end must be exclusive"
                raise DataError(path, row.line, f"{where}.{mk}", f"{e[mk]!r} is not text[{s}:{n}] = {text[s:n]!r} ({rule})")
            if mk is None or not isinstance(e[mk], str):  # no mention string settles this span's ends
                signals.add(row.line, text, s, n)
                end_key = nk
            spans.append((s, n, t))
        rid = str(f["id"]).strip() if "id" in f and str(f["id"]).strip() else _auto_id(path, row.line, id_prefix)
        if "id" in f and str(f["id"]).strip():
            rid = id_prefix + rid
        if rid in seen:
            raise DataError(path, row.line, "id", f"duplicate record id {rid!r} (first at line {seen[rid]})")
        seen[rid] = row.line
        out.append(SpanRecord(rid, text, tuple(spans), row.line))
    problem = end_convention_problem(signals, incl) if fields.check_ends else None
    if problem is not None:
        raise DataError(path, problem[0], end_key, f"{problem[1]}; if these spans are right as they are, "
                                                   "pass check_ends=false")
    return out


_TAG = re.compile(r"^(?:O|(?P<p>[BIESM])-(?P<t>.+))$")


def read_bio(path: Path, types: Sequence[str] | None = None, encoding: str | None = None,
             token_sep: str = "", id_prefix: str = "") -> list[SpanRecord]:
    """Read a CoNLL-style BIO file into records (see the module docstring)."""
    path = Path(path)
    text = read_text(path, encoding)
    records: list[SpanRecord] = []
    tokens: list[str] = []
    spans: list[Span] = []
    start_line = 0
    pos = 0
    open_: tuple[int, str, int] | None = None  # (start, type, line) of the entity being read

    def close(end: int) -> None:
        nonlocal open_
        if open_ is not None:
            spans.append((open_[0], end, open_[1]))
            open_ = None

    def flush() -> None:
        nonlocal tokens, spans, pos
        close(pos)
        if tokens:
            records.append(SpanRecord(_auto_id(path, start_line, id_prefix), token_sep.join(tokens), tuple(spans), start_line))
        tokens, spans, pos = [], [], 0

    for i, line in enumerate(split_lines(text), 1):  # not str.splitlines: U+2028 etc. would shift lines
        if not line.strip():
            flush()
            continue
        if line.startswith("-DOCSTART-"):
            continue
        if "\t" in line:
            cols = line.split("\t")
            token, tag = cols[0], cols[-1].strip()
            if not token:
                raise DataError(path, i, None, f"empty token before the tag in {line!r}")
        else:
            parts = line.split(" ")
            nonempty = [p for p in parts if p]
            tag = nonempty[-1]
            if len(nonempty) >= 2:
                token = nonempty[0]
            elif line[:1] in (" ", "\u3000"):
                token = line[0]  # a space token: the line is " O"
            else:
                raise DataError(path, i, None, f"expected a token and its tag separated by a tab or space, got {line!r}")
        refuse_nul(path, i, "token", token)
        m = _TAG.match(tag)
        if not m:
            raise DataError(path, i, "tag", f"tag {tag!r} is not O, B-<type>, I-<type> (or E-/S-/M-<type>)")
        if not tokens:
            start_line = i
        if tokens and token_sep:
            pos += len(token_sep)
        begin, end = pos, pos + len(token)
        prefix, typ = m.group("p"), m.group("t")
        if typ is not None:
            typ = _check_type(path, i, "tag", typ, types)
        if prefix is None:
            close(begin)
        elif prefix in ("B", "S"):
            close(begin)
            open_ = (begin, typ, i)  # type: ignore[assignment]
        else:  # I / E / M continue an entity of the same type
            if open_ is None or open_[1] != typ:
                what = "O" if open_ is None else f"an entity of type {open_[1]!r}"
                raise DataError(path, i, "tag", f"{tag} follows {what}: an entity must start with B-{typ} "
                                                 "(IOB2); convert IOB1 files first")
        tokens.append(token)
        pos = end
        if prefix in ("E", "S"):
            close(end)
    flush()
    if not records:
        raise DataError(path, None, None, "the file is empty: it has no records")
    return records


def read_span_file(path: Path, fmt: str | None = None, types: Sequence[str] | None = None,
                   encoding: str | None = None, token_sep: str = "", id_prefix: str = "",
                   fields: SpanFields = DEFAULT_FIELDS) -> list[SpanRecord]:
    """A JSON/JSONL or BIO file by ``fmt`` (json | jsonl | bio) or by extension (.jsonl/.ndjson:
    JSONL; .json: a JSON array of records when the file starts with ``[``, else JSONL; else BIO).
    ``format=json`` reads either shape the same way; ``format=jsonl`` only JSON lines."""
    path = Path(path)
    f = (fmt or "").lower().strip() or ("json" if path.suffix.lower() == ".json" else
                                        "jsonl" if path.suffix.lower() in (".jsonl", ".ndjson") else "bio")
    if f in ("jsonl", "json", "ndjson"):
        array = f == "json" and path.is_file() and _is_json_array(path, encoding)
        return read_span_jsonl(path, types, encoding, id_prefix, fields, array=array)
    if f in ("bio", "conll", "iob", "iob2", "bioes", "txt"):
        given = fields.renamed() + (["end_inclusive"] if fields.end_inclusive else [])
        if given:
            raise ConfigError(f"{path}: {', '.join(given)} appl{'ies' if len(given) == 1 else 'y'} to JSON/JSONL "
                              "records, not to a BIO file (its entities come from the tags)")
        return read_bio(path, types, encoding, token_sep, id_prefix)
    raise DataError(path, None, None, f"unknown NER file format {fmt!r}: use json, jsonl or bio")


def inventory_from(records: Sequence[SpanRecord]) -> tuple[str, ...]:
    """Entity types in order of first appearance (for data given without a type list)."""
    return tuple(dict.fromkeys(t for r in records for _, _, t in r.spans))
