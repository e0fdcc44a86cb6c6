"""Read the user's own item files (CSV, TSV, JSONL, JSON, XLSX) into rows, with precise errors.

Every problem is a :class:`~chimed_eval.errors.DataError` that names the file, the 1-based line
(or spreadsheet row) and, where it applies, the field, and says what was expected.

Line numbers
    A line ends at ``\\n``, ``\\r\\n`` or ``\\r`` only: U+2028, U+0085, form feeds and the like are text
    inside a line, as they are in JSON strings, not line breaks as :meth:`str.splitlines` has them.
    CSV/TSV: the physical line where the record starts (the header is line 1, so the first data
    row is line 2; a quoted field spanning several lines does not shift the rows before it).
    JSONL: the n-th physical line is line n (blank lines are skipped but still counted).
    JSON: the line where the item's ``{`` is.  XLSX: the spreadsheet row number.

Answer parsing (:func:`parse_answer`), in order:
    1. A letter, optionally decorated: ``A``, ``a``, ``(A)``, ``（A）``, ``[A]``, ``A.``, ``A．``,
       ``A、``, ``A:``, ``A)``, full-width ``Ａ``; also ``A. <option text>`` when the text matches
       that option.  A letter past the item's last option (``E`` with 4 options, ``Z``) is an
       error, as are several letters (``AB``: multi-answer items are not supported).
    2. An integer (``2``, ``"2"``, ``2.0``): an option *number*, read with ``index_base``
       (0: 0=A, 1: 1=A).  With ``index_base=None`` a number is an error asking for
       ``answer_index_base`` -- guessing would silently shift every answer by one.
       (:func:`infer_index_base` can decide the base for a whole file when the file's own
       numbers prove it.)
    3. Otherwise the exact text of one option (surrounding whitespace ignored).
    A letter or number that is also, verbatim, the text of a *different* option is ambiguous and
    an error.
"""

from __future__ import annotations

import codecs
import csv
import io
import json
import re
import sys
import unicodedata
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Iterable, Mapping, Sequence

from .errors import ConfigError, DataError

FORMATS = ("csv", "tsv", "jsonl", "json", "xlsx")
EXTENSIONS = {
    ".csv": "csv",
    ".tsv": "tsv",
    ".tab": "tsv",
    ".jsonl": "jsonl",
    ".ndjson": "jsonl",
    ".json": "json",
    ".xlsx": "xlsx",
    ".xlsm": "xlsx",
}
LETTERS = "ABCDEFGHIJ"  # at most 10 options, as in chimed_eval.prompts
MAX_OPTIONS = len(LETTERS)


@dataclass(frozen=True)
class Row:
    """One item record: ``line`` is the 1-based line (or spreadsheet row) where it starts."""

    line: int
    fields: dict[str, Any]


# --- format and decoding ------------------------------------------------------------------------


def infer_format(path: Path, fmt: str | None = None) -> str:
    """``fmt`` if given (validated), else the format named by the file extension."""
    if fmt is not None:
        f = fmt.lower().lstrip(".")
        f = {"ndjson": "jsonl", "excel": "xlsx", "tab": "tsv"}.get(f, f)
        if f not in FORMATS:
            raise ConfigError(f"unknown data format {fmt!r}; choose from {', '.join(FORMATS)}")
        return f
    suffix = Path(path).suffix.lower()
    if suffix in EXTENSIONS:
        return EXTENSIONS[suffix]
    if suffix == ".xls":
        raise DataError(path, None, None, "old-style .xls workbooks are not supported; save it as .xlsx or CSV (UTF-8)")
    raise DataError(
        path, None, None,
        f"cannot tell the format from the extension {suffix or '(none)'!r}; use one of "
        f"{', '.join(sorted(EXTENSIONS))} or pass format=csv|tsv|jsonl|json|xlsx",
    )


def _decode(path: Path, data: bytes, encoding: str | None) -> str:
    """``data`` as text in ``encoding`` (default UTF-8, BOM accepted; BOM-marked UTF-16 too).

    Bytes that do not decode are a DataError at their line. A declared non-UTF-8 encoding on a
    file that is valid UTF-8 with non-ASCII text is refused too: latin-1 or cp1252 decode *any*
    bytes, so ``encoding=latin-1`` on a UTF-8 file would otherwise run on garbled prompts.
    """
    enc = (encoding or "utf-8").lower().replace("_", "-")
    offset = 0
    if enc in ("utf-8", "utf8", "utf-8-sig"):
        if data.startswith(b"\xef\xbb\xbf"):
            offset = 3
        codec = "utf-8"
        if encoding is None and (data.startswith(b"\xff\xfe") or data.startswith(b"\xfe\xff")):
            codec, offset = "utf-16", 0  # BOM-marked UTF-16 ("Unicode text" from Excel)
    else:
        codec = encoding or "utf-8"
    body = data[offset:]
    try:
        codec_name = codecs.lookup(codec).name
        text = body.decode(codec)
    except LookupError:
        raise ConfigError(f"{path}: unknown encoding {encoding!r}") from None
    except UnicodeDecodeError as e:
        line = body.count(b"\n", 0, e.start) + 1
        col = e.start - (body.rfind(b"\n", 0, e.start) + 1) + 1
        bad = body[e.start:e.start + 1].hex()
        if body.startswith(b"PK\x03\x04"):
            raise DataError(path, None, None, "this is a zip file, probably an Excel workbook: "
                                              "name it .xlsx or pass format=xlsx") from None
        if codec == "utf-8":
            msg = (f"not valid UTF-8 (byte 0x{bad} at column {col}); the file is probably GBK/GB18030, "
                   "as saved by Excel on Chinese Windows: pass encoding=gb18030, or re-save it as UTF-8")
        elif _is_utf8(data):
            msg = (f"not valid {encoding} (byte 0x{bad} at column {col}), but the file is valid UTF-8: "
                   "pass encoding=utf-8 (or leave encoding out)")
        else:
            msg = f"not valid {encoding} (byte 0x{bad} at column {col}); pass the file's real encoding= (e.g. utf-8)"
        raise DataError(path, line, None, msg) from None
    if codec_name not in ("utf-8", "utf-8-sig") and encoding is not None:
        _refuse_utf8_declared_otherwise(path, data, encoding, codec)
    if codec == "utf-8" and text.count("\x00") * 4 >= len(text) > 0:
        # ASCII in UTF-16/32 is valid UTF-8 with a NUL after (or before) every character
        raise DataError(path, text.count("\n", 0, text.index("\x00")) + 1, None,
                        f"{text.count(chr(0))} of its {len(text)} characters are NUL bytes: the file is probably "
                        "UTF-16 without a byte order mark; pass encoding=utf-16-le (or utf-16-be), or re-save it as UTF-8")
    if text.startswith("\ufeff"):
        text = text[1:]
    return text


def _is_utf8(data: bytes) -> bool:
    try:
        data.decode("utf-8")
    except UnicodeDecodeError:
        return False
    return True


_NON_ASCII = re.compile(rb"[\x80-\xff]")


def _refuse_utf8_declared_otherwise(path: Path, data: bytes, encoding: str, codec: str) -> None:
    """A DataError when ``data`` is valid UTF-8 holding non-ASCII text but ``encoding`` is another one.

    Text in a legacy encoding (latin-1, cp1252, GBK...) that also happens to be valid UTF-8 is
    vanishingly rare past a few characters, while UTF-8 read as latin-1 garbles every prompt
    without a single decoding error. Pure-ASCII files read the same in any of them and pass.
    """
    m = _NON_ASCII.search(data)
    if m is None or not _is_utf8(data):
        return
    start = data.rfind(b"\n", 0, m.start()) + 1
    end = data.find(b"\n", m.start())
    raw = data[start:] if end < 0 else data[start:end]
    good = raw.decode("utf-8", "replace").strip()[:20]
    garbled = raw.decode(codec, "replace").strip()[:20]
    line = data.count(b"\n", 0, m.start()) + 1
    raise DataError(path, line, None,
                    f"the file is UTF-8 but encoding={encoding} was given: {good!r} would be read as {garbled!r}; "
                    "pass encoding=utf-8 (or leave encoding out)")


def split_lines(text: str) -> list[str]:
    r"""``text`` cut at ``\r\n``, ``\n`` or ``\r`` (universal newlines, as a text-mode file and
    editors count them), so the line numbers in errors match an editor's.

    Unlike :meth:`str.splitlines`, U+2028/U+2029, U+0085, ``\v``, ``\f`` and ``\x1c``-``\x1e`` stay
    inside their line: JSON allows them raw inside strings, and a data file's records must not be
    cut there. A final newline gives a last empty line, which readers skip as blank.
    """
    return _NEWLINE.split(text)


_NEWLINE = re.compile(r"\r\n|\r|\n")


def read_text(path: Path, encoding: str | None = None) -> str:
    """A user's text data file, decoded as :func:`read_rows` does (DataError if missing or undecodable)."""
    path = Path(path)
    if not path.is_file():
        raise DataError(path, None, None, "no such file" if not path.exists() else "not a file")
    try:
        data = path.read_bytes()
    except OSError as e:
        raise DataError(path, None, None, f"cannot read: {e.strerror or e}") from None
    return _decode(path, data, encoding)


def refuse_nul(path: str | Path, line: int | None, field: str | None, value: Any) -> None:
    """A DataError if ``value`` (a string, or lists/objects of them) holds a NUL character.

    NUL is never text: it comes from a UTF-16 file read as UTF-8, a binary file or a broken
    export, and it would reach the model inside a prompt (C-string tokenizers cut there).
    """
    if isinstance(value, str):
        if "\x00" in value:
            i = value.index("\x00")
            raise DataError(path, line, field, f"holds a NUL byte at character {i + 1} ({value[max(0, i - 10):i]!r} "
                                               "before it); is the file UTF-16, or binary?")
    elif isinstance(value, Mapping):
        for k, v in value.items():
            refuse_nul(path, line, field, k)
            refuse_nul(path, line, field, v)
    elif isinstance(value, (list, tuple)):
        for v in value:
            refuse_nul(path, line, field, v)


def _refuse_nul_rows(path: Path, rows: Sequence[Row]) -> None:
    for row in rows:
        for k, v in row.fields.items():
            refuse_nul(path, row.line, str(k), k)
            refuse_nul(path, row.line, str(k), v)


def _allow_large_csv_fields() -> None:
    """Lift the csv module's 128 KiB field limit (a long case report is one field), to the
    largest value the platform's C long holds (``sys.maxsize`` overflows it on Windows)."""
    limit = sys.maxsize
    while True:
        try:
            csv.field_size_limit(limit)
            return
        except OverflowError:
            limit //= 2


# --- readers -----------------------------------------------------------------------------------


def read_rows(path: Path, fmt: str | None = None, encoding: str | None = None, *, sheet: str | None = None) -> list[Row]:
    """Read one item file into rows (see the module docstring for line numbers).

    ``fmt`` is one of csv, tsv, jsonl, json, xlsx (default: from the extension); ``encoding``
    defaults to UTF-8 (a BOM is accepted); ``sheet`` picks an XLSX sheet (default: the first).
    A file with no items, duplicate or empty column names, or ragged rows is a DataError.
    """
    path = Path(path)
    f = infer_format(path, fmt)
    if not path.is_file():
        raise DataError(path, None, None, "no such file" if not path.exists() else "not a file")
    if f == "xlsx":
        rows = _read_xlsx(path, sheet)
    else:
        text = read_text(path, encoding)
        if not text.strip():
            raise DataError(path, None, None, "the file is empty: it has no items")
        if f in ("csv", "tsv"):
            rows = _read_csv(path, text, "\t" if f == "tsv" else ",")
        elif f == "jsonl":
            rows = _read_jsonl(path, text)
        else:
            rows = _read_json(path, text)
    _refuse_nul_rows(path, rows)
    return rows


def _check_header(path: Path, names: list[str], line: int) -> int:
    """Validate header names; return how many columns count (trailing empty names are dropped)."""
    n = len(names)
    while n and not names[n - 1]:
        n -= 1
    if n == 0:
        raise DataError(path, line, None, "the header row is empty")
    seen: dict[str, int] = {}
    for i, name in enumerate(names[:n]):
        if not name:
            # An unnamed column before named ones is usually a pandas index (CMMLU's files start
            # with one): keep it under a positional name rather than reject the file.
            name = names[i] = f"_col{i + 1}"
        if name in seen:
            raise DataError(path, line, name, f"duplicate column name (columns {seen[name] + 1} and {i + 1})")
        seen[name] = i
    return n


def _read_csv(path: Path, text: str, delimiter: str) -> list[Row]:
    _allow_large_csv_fields()
    reader = csv.reader(io.StringIO(text, newline=""), delimiter=delimiter)
    header: list[str] | None = None
    width = n = 0
    header_line = 1
    rows: list[Row] = []
    end = 0  # physical lines consumed so far
    try:
        for record in reader:
            start, end = end + 1, reader.line_num
            if not any(c.strip() for c in record):
                continue  # blank line (or only delimiters)
            if header is None:
                header = [c.strip() for c in record]
                header_line = start
                width = len(header)
                n = _check_header(path, header, start)
                continue
            if len(record) != width:
                hint = ""
                if any("\n" in c for c in record):
                    hint = " (a field spans several lines: is a quote \" left open?)"
                raise DataError(
                    path, start, None,
                    f"row has {len(record)} field{'s' if len(record) != 1 else ''} but the header "
                    f"(line {header_line}) has {width}{hint}",
                )
            for j in range(n, width):
                if record[j].strip():
                    raise DataError(path, start, None, f"value {record[j]!r} in column {j + 1}, which has no header name")
            rows.append(Row(start, dict(zip(header[:n], record[:n]))))
    except csv.Error as e:
        raise DataError(path, end + 1, None, f"malformed CSV: {e}") from None
    if header is None:
        raise DataError(path, None, None, "the file is empty: it has no items")
    if not rows:
        raise DataError(path, None, None, f"the file has a header (line {header_line}) but no data rows: it has no items")
    return rows


def _read_jsonl(path: Path, text: str) -> list[Row]:
    rows = []
    for i, line in enumerate(split_lines(text), 1):
        if not line.strip():
            continue
        try:
            obj = json.loads(line)
        except json.JSONDecodeError as e:
            raise DataError(path, i, None, f"invalid JSON: {e.msg} (column {e.colno})") from None
        if not isinstance(obj, dict):
            raise DataError(path, i, None, f"expected a JSON object per line, got {_json_kind(obj)}")
        rows.append(Row(i, obj))
    if not rows:
        raise DataError(path, None, None, "the file is empty: it has no items")
    return rows


def _json_kind(obj: Any) -> str:
    if isinstance(obj, list):
        return "a list"
    if isinstance(obj, str):
        return "a string"
    if obj is None:
        return "null"
    if isinstance(obj, bool):
        return "a boolean"
    return "a number" if isinstance(obj, (int, float)) else type(obj).__name__


_WS = re.compile(r"[ \t\r\n]*")


def _read_json(path: Path, text: str) -> list[Row]:
    """A JSON array of objects, decoded item by item so each item's start line is known."""
    dec = json.JSONDecoder()

    def fail(e: json.JSONDecodeError) -> DataError:
        return DataError(path, e.lineno, None, f"invalid JSON: {e.msg} (column {e.colno})")

    pos = _WS.match(text, 0).end()  # type: ignore[union-attr]
    if text[pos] != "[":
        try:
            obj, end = dec.raw_decode(text, pos)
        except json.JSONDecodeError as e:
            raise fail(e) from None
        rest = _WS.match(text, end).end()  # type: ignore[union-attr]
        hint = " (one object per line? name the file .jsonl or pass format=jsonl)" if rest < len(text) else ""
        kind = "an object" if isinstance(obj, dict) else _json_kind(obj)
        raise DataError(path, None, None, f"expected a JSON list of objects, got {kind}{hint}")
    rows: list[Row] = []
    line, counted = 1, 0  # line number at position `counted`
    pos += 1
    while True:
        pos = _WS.match(text, pos).end()  # type: ignore[union-attr]
        if pos < len(text) and text[pos] == "]" and not rows:
            pos += 1
            break
        line += text.count("\n", counted, pos)
        counted = pos
        try:
            obj, pos = dec.raw_decode(text, pos)
        except json.JSONDecodeError as e:
            raise fail(e) from None
        if not isinstance(obj, dict):
            raise DataError(path, line, None, f"item {len(rows) + 1}: expected a JSON object, got {_json_kind(obj)}")
        rows.append(Row(line, obj))
        pos = _WS.match(text, pos).end()  # type: ignore[union-attr]
        if pos < len(text) and text[pos] == ",":
            pos += 1
            continue
        if pos < len(text) and text[pos] == "]":
            pos += 1
            break
        lineno = text.count("\n", 0, pos) + 1
        raise DataError(path, lineno, None, "invalid JSON: expected ',' or ']' after an item" if pos < len(text)
                        else "invalid JSON: the list is not closed with ']'")
    if _WS.match(text, pos).end() != len(text):  # type: ignore[union-attr]
        raise DataError(path, text.count("\n", 0, pos) + 1, None, "invalid JSON: extra data after the list")
    if not rows:
        raise DataError(path, None, None, "the JSON list is empty: the file has no items")
    return rows


def _read_xlsx(path: Path, sheet: str | None) -> list[Row]:
    try:
        import openpyxl  # lazy: only XLSX users need it
    except ImportError:
        raise ConfigError(f"{path}: reading .xlsx files needs openpyxl: pip install 'chimed-eval[xlsx]'") from None
    try:
        wb = openpyxl.load_workbook(path, read_only=True, data_only=True)
    except Exception as e:  # zipfile.BadZipFile, KeyError, InvalidFileException, ...
        raise DataError(path, None, None, f"cannot open as an .xlsx workbook: {e}") from None
    try:
        if sheet is None:
            ws = wb.worksheets[0]
        elif sheet in wb.sheetnames:
            ws = wb[sheet]
        else:
            raise DataError(path, None, None, f"no sheet {sheet!r}; the workbook has {', '.join(map(repr, wb.sheetnames))}")
        header: list[str] | None = None
        n = 0
        rows: list[Row] = []
        for r, values in enumerate(ws.iter_rows(min_row=1, values_only=True), 1):
            cells = ["" if v is None else v for v in values]
            if not any(str(c).strip() for c in cells):
                continue
            if header is None:
                header = [str(c).strip() for c in cells]
                n = _check_header(path, header, r)
                header_row = r
                continue
            for j in range(n, len(cells)):
                if str(cells[j]).strip():
                    raise DataError(path, r, None, f"value {cells[j]!r} in column {_col_name(j)}, which has no header name")
            cells = (cells + [None] * n)[:n]
            rows.append(Row(r, {h: (None if c == "" else c) for h, c in zip(header[:n], cells)}))
    finally:
        wb.close()
    if header is None:
        raise DataError(path, None, None, "the sheet is empty: it has no items")
    if not rows:
        raise DataError(path, None, None, f"the sheet has a header (row {header_row}) but no data rows: it has no items")
    return rows


def _col_name(j: int) -> str:
    s = ""
    j += 1
    while j:
        j, r = divmod(j - 1, 26)
        s = chr(65 + r) + s
    return s


# --- fields ------------------------------------------------------------------------------------


def is_empty(value: Any) -> bool:
    return value is None or (isinstance(value, str) and not value.strip())


def cell_text(value: Any) -> str:
    """A cell as text: strings stripped, 2.0 -> "2", None -> ""."""
    if value is None:
        return ""
    if isinstance(value, float) and value.is_integer():
        return str(int(value))
    return str(value).strip()


def require(row: Row, path: str | Path, field: str) -> Any:
    """``row.fields[field]``, or a DataError naming the file, line and field if missing or empty.

    Strings come back stripped.
    """
    if field not in row.fields:
        have = ", ".join(repr(k) for k in row.fields) or "none"
        raise DataError(path, row.line, field, f"missing column/field {field!r} (have: {have})")
    value = row.fields[field]
    if is_empty(value):
        raise DataError(path, row.line, field, f"column/field {field!r} is empty")
    return value.strip() if isinstance(value, str) else value


# --- answers -----------------------------------------------------------------------------------

_LETTER_ANSWER = re.compile(
    r"^\s*(?:\(\s*([A-Za-z])\s*\)|\[\s*([A-Za-z])\s*\]|([A-Za-z])(?![A-Za-z]))\s*[.:,、)]?\s*(.*?)\s*$", re.S
)
_INT = re.compile(r"^\s*[+-]?\d+(?:\.0*)?\s*$")


def _letters(n: int) -> str:
    return f"A-{LETTERS[n - 1]}" if 1 <= n <= MAX_OPTIONS else "A"


def parse_answer(
    value: Any,
    choices: Sequence[str],
    *,
    path: str | Path,
    line: int | None,
    field: str | None,
    index_base: int | None = None,
) -> int:
    """The 0-based index of the gold option (rules in the module docstring)."""
    n = len(choices)
    texts = [str(c).strip() for c in choices]

    def err(msg: str) -> DataError:
        return DataError(path, line, field, msg)

    numbers = f"a {index_base}-based option number ({index_base}-{n - 1 + index_base}), " if index_base is not None else ""
    expected = f"expected an option letter ({_letters(n)}), {numbers}or the exact text of one of the options"

    def by_text(s: str) -> int | None:
        hits = [i for i, t in enumerate(texts) if t == s]
        if len(hits) > 1:
            raise err(f"answer {s!r} matches the text of several options ({', '.join(LETTERS[i] for i in hits)})")
        return hits[0] if hits else None

    def unambiguous(idx: int, raw: str) -> int:
        # A bare capital letter, or a number with an explicit base, is what exam files mean by an
        # answer (CMMLU has items whose option A reads "B"): it wins over a text match.
        if (len(raw.strip()) == 1 and raw.strip() in LETTERS) or index_base is not None:
            return idx
        other = by_text(raw)
        if other is not None and other != idx:
            raise err(f"answer {raw!r} is ambiguous: it reads as option {LETTERS[idx]} but is also the text of option "
                      f"{LETTERS[other]}")
        return idx

    if isinstance(value, bool) or is_empty(value):
        raise err(f"empty answer; {expected}" if not isinstance(value, bool) else f"answer {value!r} is not valid; {expected}")
    if isinstance(value, (int, float)):
        if isinstance(value, float) and not value.is_integer():
            raise err(f"answer {value!r} is not a whole number; {expected}")
        return _from_number(int(value), n, index_base, str(cell_text(value)), err, unambiguous)
    if not isinstance(value, str):
        raise err(f"answer {value!r} is {type(value).__name__}; {expected}")

    raw = value.strip()
    norm = unicodedata.normalize("NFKC", raw)  # full-width Ａ．（） -> A.()
    norm = norm.replace("【", "[").replace("】", "]")
    if _INT.match(norm):
        return _from_number(int(float(norm)), n, index_base, raw, err, unambiguous)
    m = _LETTER_ANSWER.match(norm)
    if m:
        letter = (m.group(1) or m.group(2) or m.group(3)).upper()
        rest = m.group(4)
        if not rest or norm.strip().upper() == letter:
            idx = LETTERS.find(letter)
            if idx < 0:
                raise err(f"answer {raw!r} is not valid; {expected}")
            if idx >= n:
                raise err(f"answer {raw!r} names option {letter}, but the item has only {n} options ({_letters(n)})")
            return unambiguous(idx, raw)
        # "A. <option text>": the letter must agree with the text
        idx = LETTERS.find(letter)
        if 0 <= idx < n and unicodedata.normalize("NFKC", texts[idx]) == rest:
            return idx
    if re.fullmatch(r"[A-Za-z]{2,%d}" % MAX_OPTIONS, norm) and len(set(norm.upper())) == len(norm) and by_text(raw) is None:
        if all(c in LETTERS[:n] for c in norm.upper()):
            raise err(f"answer {raw!r} has several letters; only single-answer items are supported")
    idx = by_text(raw)
    if idx is not None:
        return idx
    raise err(f"answer {raw!r} is not valid; {expected}")


def _from_number(k: int, n: int, base: int | None, raw: str, err, unambiguous) -> int:
    if base is None:
        raise err(f"numeric answer {raw!r} is ambiguous: set answer_index_base=0 (0 means A) or "
                  f"answer_index_base=1 (1 means A)")
    idx = k - base
    if not 0 <= idx < n:
        raise err(f"answer {raw!r} is out of range: with answer_index_base={base} and {n} options it must be "
                  f"{base}-{n - 1 + base}")
    return unambiguous(idx, raw)


def infer_index_base(values: Iterable[tuple[Any, int]]) -> int | None:
    """Decide 0- or 1-based numbering for a file from ``(answer, n_options)`` pairs.

    A number 0 proves 0-based, a number equal to the option count proves 1-based; returns None
    when the numbers prove neither (or both), so the caller must ask for ``answer_index_base``.
    """
    zero = one = False
    for v, n in values:
        if isinstance(v, bool):
            continue
        if isinstance(v, float) and v.is_integer():
            v = int(v)
        if isinstance(v, str):
            s = unicodedata.normalize("NFKC", v).strip()
            if not _INT.match(s):
                continue
            v = int(float(s))
        if not isinstance(v, int):
            continue
        zero |= v == 0
        one |= v == n
    if zero == one:
        return None
    return 0 if zero else 1


# --- options -----------------------------------------------------------------------------------

_FW = "ＡＢＣＤＥＦＧＨＩＪ"
_L = f"[A-J{_FW}]"
# a label: "(A)"/"（A）" anywhere; "A." "A、" "A:" "A)" after start/whitespace/punctuation;
# a bare "A " only at the start of a line.
_LABEL = re.compile(
    rf"[(（]\s*(?P<p>{_L})\s*[)）]\s*"
    rf"|(?:^|(?<=[\s;；,，。]))(?P<s>{_L})\s*[.．、:：)）]\s*"
    rf"|(?:^|(?<=\n))(?P<b>{_L})[ \t\u3000]+",
)


def _label_index(ch: str) -> int:
    return LETTERS.find(unicodedata.normalize("NFKC", ch).upper())


def _strip_labels(items: list[str]) -> list[str]:
    """Drop "A. " style labels from list elements, but only when every element has the right one."""
    out = []
    for i, s in enumerate(items):
        m = _LABEL.match(s)
        if not m or _label_index(m.group("p") or m.group("s") or m.group("b")) != i:
            return items
        out.append(s[m.end():].strip())
    return out


def split_options(
    value: str | Sequence[Any] | Mapping[str, Any],
    *,
    path: str | Path = "<options>",
    line: int | None = None,
    field: str | None = None,
) -> list[str]:
    """Split one field holding all the options into option texts, in letter order.

    Accepts a list (or a JSON list in a string), a mapping ``{"A": ..., "B": ...}`` (or a JSON
    object in a string), or text with labels: ``"(A) x\\n(B) y"``, ``"A. x\\nB. y"``,
    ``"A、x B、y"``, ``"A：x"``, ``"A x\\nB y"`` (one per line); unlabelled text with one option
    per line is split by lines.  Texts are kept as written except surrounding whitespace.
    """

    def err(msg: str) -> DataError:
        return DataError(path, line, field, msg)

    if isinstance(value, str):
        s = value.strip()
        if s[:1] in "[{":
            try:
                return split_options(json.loads(s), path=path, line=line, field=field)
            except json.JSONDecodeError:
                pass  # text that happens to start with a bracket
    if isinstance(value, Mapping):
        keyed = {}
        for k, v in value.items():
            ks = unicodedata.normalize("NFKC", str(k)).strip().strip("().").upper()
            if len(ks) != 1 or ks not in LETTERS:
                raise err(f"options key {k!r} is not an option letter A-J")
            if ks in keyed:
                raise err(f"option {ks} is given twice")
            keyed[ks] = v
        letters = sorted(keyed)
        if letters != list(LETTERS[: len(letters)]):
            missing = next(c for c in LETTERS if c not in keyed)
            raise err(f"options are keyed {', '.join(letters)}: option {missing} is missing")
        return [cell_text(keyed[c]) for c in letters]
    if isinstance(value, (list, tuple)):
        return _strip_labels([cell_text(v) for v in value])
    if not isinstance(value, str):
        raise err(f"options must be text, a list or a mapping, got {type(value).__name__}")

    text = value.strip()
    if not text:
        raise err("the options field is empty")
    found: list[re.Match[str]] = []
    for m in _LABEL.finditer(text):
        if _label_index(m.group("p") or m.group("s") or m.group("b")) == len(found):
            found.append(m)
    if len(found) >= 2:
        if text[: found[0].start()].strip():
            raise err(f"text before option A: {text[: found[0].start()].strip()!r}")
        bounds = [m.start() for m in found[1:]] + [len(text)]
        out = [text[m.end():b].strip() for m, b in zip(found, bounds)]
        # "A：x；B：y": the separator between inline options is not part of the option
        return [o.rstrip(";；").rstrip() for o in out[:-1]] + out[-1:]
    lines = [ln.strip() for ln in text.splitlines() if ln.strip()]
    if len(lines) >= 2:
        return lines
    raise err(f"cannot split {text[:60]!r} into options: expected labels like 'A. x' / '(A) x' / 'A、x', "
              "one option per line, or a JSON list")
