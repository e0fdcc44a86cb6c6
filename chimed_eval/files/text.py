"""Item files as text: formats, decoding, line breaks, NUL bytes and cells, with precise errors.

The layer under :mod:`chimed_eval.files.tabular`'s row readers (and the NER span readers): which format
a file is, how its bytes become text (UTF-8 by default, a BOM accepted, a declared encoding
checked), where its lines end (``\\n``, ``\\r\\n`` or ``\\r`` only), and the refusal of NUL
characters, which are never text. Every problem is a :class:`~chimed_eval.core.errors.DataError` that
names the file and says what was expected.
"""

from __future__ import annotations

import codecs
import os
import re
import stat
from pathlib import Path
from typing import Any, Mapping

from chimed_eval.core.errors import ConfigError, DataError

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
        if codec == "utf-8" and _truncated_utf8(body, e.start):
            msg = (f"not valid UTF-8: it ends in the middle of a character (byte 0x{bad} at column {col}, "
                   f"the last {len(body) - e.start} byte(s) of the file); the file may be truncated "
                   "(an interrupted download or copy): fetch or save it again")
        elif codec == "utf-8":
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


def _truncated_utf8(body: bytes, start: int) -> bool:
    """Whether ``body`` is valid UTF-8 but for an incomplete multi-byte character at its very end
    (``start`` is where decoding failed): a cut file, not a file in another encoding."""
    if not 1 <= len(body) - start <= 3:
        return False
    try:
        codecs.getincrementaldecoder("utf-8")().decode(body, final=False)
    except UnicodeDecodeError:
        return False
    return True


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


_KINDS = ((stat.S_ISDIR, "a directory"), (stat.S_ISFIFO, "a fifo"), (stat.S_ISCHR, "a character device"),
          (stat.S_ISBLK, "a block device"), (stat.S_ISSOCK, "a socket"))


def _not_regular(mode: int) -> str | None:
    """What a file of this mode is when it is not a regular file ("a fifo", ...); None when it is."""
    if stat.S_ISREG(mode):
        return None
    return next((kind for test, kind in _KINDS if test(mode)), "a special file")


def read_small_file(path: Path, max_bytes: int, what: str) -> bytes:
    """The bytes of a small settings file (``what``: "task config"), refused with a ConfigError
    naming it unless it is a regular file of at most ``max_bytes``.

    Like the data paths (``is_file()`` above), a path that is not a regular file is refused before
    it is read: a fifo would block the command forever and ``/dev/zero`` would be read until memory
    runs out. The file is opened without blocking and checked again on the open descriptor, so a
    path swapped for a fifo in between is refused too; at most ``max_bytes + 1`` bytes are read.
    """
    path = Path(path)
    data = b""
    try:
        st = path.stat()
        kind = _not_regular(st.st_mode)
        if kind is None and st.st_size <= max_bytes:
            with os.fdopen(os.open(path, os.O_RDONLY | getattr(os, "O_NONBLOCK", 0)), "rb") as f:
                st = os.fstat(f.fileno())
                kind = _not_regular(st.st_mode)
                if kind is None:
                    data = f.read(max_bytes + 1)
    except FileNotFoundError:
        raise ConfigError(f"{path}: {what} not found") from None
    except OSError as e:
        raise ConfigError(f"{path}: cannot read the {what}: {e.strerror or e}") from None
    if kind is not None:
        raise ConfigError(f"{path}: the {what} is {kind}, not a regular file")
    if st.st_size > max_bytes or len(data) > max_bytes:
        raise ConfigError(f"{path}: the {what} is larger than {max_bytes:,} bytes (a {what} is a few kilobytes)")
    return data


#: a task config is a few kilobytes of settings; a larger file is not one (and is not read)
MAX_TASK_CONFIG_BYTES = 1 << 20


def read_task_config(path: Path) -> bytes:
    """The bytes of a ``--task-config`` file, the one reader of it (the task types parse it, ``run``
    records its hash): a regular file of at most :data:`MAX_TASK_CONFIG_BYTES`; a fifo, a device
    such as ``/dev/zero``, a directory or a larger file is a ConfigError naming it (exit 2)."""
    return read_small_file(path, MAX_TASK_CONFIG_BYTES, "task config")


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


# --- cells -------------------------------------------------------------------------------------


def is_empty(value: Any) -> bool:
    return value is None or (isinstance(value, str) and not value.strip())


def cell_text(value: Any) -> str:
    """A cell as text: strings stripped, 2.0 -> "2", None -> ""."""
    if value is None:
        return ""
    if isinstance(value, float) and value.is_integer():
        return str(int(value))
    return str(value).strip()
