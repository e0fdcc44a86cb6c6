"""Read the user's own item files (CSV, TSV, JSONL, JSON, XLSX) into rows, with precise errors.

Every problem is a :class:`~chimed_eval.core.errors.DataError` that names the file, the 1-based line
(or spreadsheet row) and, where it applies, the field, and says what was expected.

Line numbers
    A line ends at ``\\n``, ``\\r\\n`` or ``\\r`` only: U+2028, U+0085, form feeds and the like are text
    inside a line, as they are in JSON strings, not line breaks as :meth:`str.splitlines` has them.
    CSV/TSV: the physical line where the record starts (the header is line 1, so the first data
    row is line 2; a quoted field spanning several lines does not shift the rows before it).
    JSONL: the n-th physical line is line n (blank lines are skipped but still counted).
    JSON: the line where the item's ``{`` is.  XLSX: the spreadsheet row number.

Formats, decoding and cells are :mod:`chimed_eval.files.text`; answers and options
(:func:`parse_answer`, :func:`parse_answers`, :func:`split_options`) are :mod:`chimed_eval.files.answers`, both
re-exported here.
"""

from __future__ import annotations

import csv
import io
import json
import re
import sys
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Sequence

from chimed_eval.core.errors import ConfigError, DataError
from chimed_eval.files.answers import LETTERS, MAX_OPTIONS, infer_index_base, parse_answer, parse_answers, split_options
from chimed_eval.files.text import EXTENSIONS, FORMATS, cell_text, infer_format, is_empty, read_text, refuse_nul, split_lines

__all__ = [
    "EXTENSIONS", "FORMATS", "LETTERS", "MAX_OPTIONS", "Row", "cell_text", "infer_format", "infer_index_base",
    "is_empty", "keep_rows", "parse_answer", "parse_answers", "parse_where", "read_rows", "read_text", "refuse_nul",
    "require", "split_lines", "split_options", "where_text",
]


@dataclass(frozen=True)
class Row:
    """One item record: ``line`` is the 1-based line (or spreadsheet row) where it starts."""

    line: int
    fields: dict[str, Any]


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


def read_json_array(path: Path, what: str = "objects", encoding: str | None = None) -> list[Row]:
    """A JSON array of objects (a release's question, answer or case file) as rows, each with the
    line its object starts on, so every later check can name file, line and field. ``what`` names
    the objects in the errors (``expected a JSON list of {what}``). The one reader of such files
    (``read_rows(path, "json")`` reads them the same way)."""
    path = Path(path)
    if not path.is_file():
        raise DataError(path, None, None, "no such file" if not path.exists() else "not a file")
    text = read_text(path, encoding)
    if not text.strip():
        raise DataError(path, None, None, "the file is empty: it has no items")
    rows = _read_json(path, text, what)
    _refuse_nul_rows(path, rows)
    return rows


def _read_json(path: Path, text: str, what: str = "objects") -> list[Row]:
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
        raise DataError(path, None, None, f"expected a JSON list of {what}, got {kind}{hint}")
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
            raise DataError(path, line, f"[{len(rows)}]", f"item {len(rows) + 1}: expected a JSON object, got {_json_kind(obj)}")
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


# --- row filter (where=column=value) -------------------------------------------------------------


def parse_where(value: Any, where: str) -> tuple[tuple[str, str], ...]:
    """A row filter's conditions: ``column=value`` (several joined by ``;``), or a table
    ``{column: value}`` from a TOML/JSON config. A row is kept when every named cell equals its
    value (as text, surrounding whitespace aside)."""
    if isinstance(value, dict):
        pairs = [(str(k).strip(), "" if v is None else str(v).strip()) for k, v in value.items()]
    elif isinstance(value, str):
        pairs = []
        for part in (p for p in value.split(";") if p.strip()):
            col, eq, val = part.partition("=")
            if not eq or not col.strip():
                raise ConfigError(f"{where}key 'where': expected column=value (several joined by ;), got {part.strip()!r}")
            pairs.append((col.strip(), val.strip()))
    else:
        raise ConfigError(f"{where}key 'where': expected column=value or a table of column = value, got {value!r}")
    if not pairs:
        raise ConfigError(f"{where}key 'where' is empty")
    return tuple(pairs)


def keep_rows(path: Path, rows: Sequence[Row], conditions: Sequence[tuple[str, str]]) -> list[Row]:
    """The rows whose cells equal every condition's value (``where=``). A condition on a column
    that no row of the file has is a DataError naming the file and the column (a misspelt column
    would otherwise filter out everything, or nothing)."""
    for col, _ in conditions:
        if not any(col in r.fields for r in rows):
            have = ", ".join(repr(k) for k in dict.fromkeys(k for r in rows for k in r.fields))
            raise DataError(path, rows[0].line if rows else None, col, f"where= names column {col!r}, which the file "
                                                                        f"does not have (have: {have})")
    return [r for r in rows if all(cell_text(r.fields.get(col)) == val for col, val in conditions)]


def where_text(conditions: Sequence[tuple[str, str]]) -> str:
    """The filter as written: ``科室=内科;年份=2020``."""
    return ";".join(f"{c}={v}" for c, v in conditions)
