"""Reading a training corpus for the n-gram check: files, directories and globs, streamed as
documents (never loaded whole, except a ``.json`` file, which JSON can only parse whole).

What a document is, by format (lm-eval builds n-grams per document; here no n-gram crosses two):

* ``.jsonl`` / ``.ndjson``: every string value of every line's JSON value, recursively (keys are
  not text): chimed-train's records (``text``; ``messages[].content``; ``prompt``/``completion``;
  ``prompt``/``chosen``/``rejected``; ``prompt``/``reference``/``external``) and any other shape.
  Location ``file:line``. A line that is not JSON is an error naming ``file:line``.
* ``.json``: the same, one document per string value; location ``file#/json/pointer``.
* ``.txt`` / ``.md``: each paragraph (lines up to a blank line); location ``file:line`` of the
  line where the n-gram starts.
* ``.csv`` / ``.tsv``: each row, its cells in order, header row included; location ``file:line``
  of the row's first line.

Text is UTF-8 (a BOM is accepted); CSV/TSV files that are not UTF-8 are read as GB18030 (as the
CMD release ships) when that decodes them. Anything else is an error naming the file and line.
In a directory (searched recursively) or a glob, files of other kinds are skipped and listed;
a file named on its own must be of a kind above (``.parquet``: convert it to JSONL first).
Every file's sha256 and size are taken while it is read.
"""

from __future__ import annotations

import csv
import glob
import hashlib
import json
import os
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Iterable, Iterator, Sequence

from chimed_eval.errors import ConfigError

FORMATS = {".jsonl": "jsonl", ".ndjson": "jsonl", ".json": "json", ".txt": "text", ".md": "text",
           ".csv": "csv", ".tsv": "tsv"}
Segments = list[tuple[int | None, str]]


@dataclass(frozen=True)
class CorpusFile:
    path: Path
    format: str


@dataclass
class FileStats:
    """Filled while a file is read: its sha256, size in bytes, documents and encoding."""

    sha256: str = ""
    bytes: int = 0
    documents: int = 0
    encoding: str = "utf-8"


def _format(path: Path) -> str | None:
    return FORMATS.get(path.suffix.lower())


def resolve(specs: Sequence[str]) -> tuple[list[CorpusFile], list[str]]:
    """The corpus files named by ``specs`` (files, directories, globs) in order, without repeats,
    and the files skipped in directories and globs (not a corpus format)."""
    files: dict[Path, CorpusFile] = {}
    skipped: list[str] = []

    def take(p: Path, named: bool) -> None:
        fmt = _format(p)
        if fmt is None:
            if named:
                raise ConfigError(f"--corpus {p}: not a corpus format (use {', '.join(sorted(FORMATS))}"
                                  + ("; convert parquet to JSONL first" if p.suffix.lower() == ".parquet" else "") + ")")
            skipped.append(str(p))
        else:
            files.setdefault(p.resolve(), CorpusFile(p, fmt))

    def walk(d: Path) -> None:
        for p in sorted(d.rglob("*")):
            if p.is_file() and not any(part.startswith(".") for part in p.relative_to(d).parts):
                take(p, False)

    for spec in specs:
        if any(c in spec for c in "*?["):
            matches = sorted(glob.glob(os.path.expanduser(spec), recursive=True))
            if not matches:
                raise ConfigError(f"--corpus {spec}: no file matches")
            for m in map(Path, matches):
                walk(m) if m.is_dir() else take(m, False)
            continue
        p = Path(spec).expanduser()
        if p.is_dir():
            walk(p)
        elif p.is_file():
            take(p, True)
        else:
            raise ConfigError(f"--corpus {spec}: not found")
    if not files:
        raise ConfigError(f"--corpus {' '.join(specs)}: no corpus file there ({', '.join(sorted(FORMATS))})"
                          + (f"; skipped: {', '.join(skipped[:5])}" if skipped else ""))
    return list(files.values()), skipped


def _lines(path: Path, stats: FileStats, encoding: str = "utf-8") -> Iterator[tuple[int, str]]:
    """(line number, text) of a file read in binary, hashed as it goes, decoded line by line."""
    h = hashlib.sha256()
    with open(path, "rb") as f:
        for i, raw in enumerate(f, 1):
            h.update(raw)
            stats.bytes += len(raw)
            if i == 1 and raw.startswith(b"\xef\xbb\xbf") and encoding == "utf-8":
                raw = raw[3:]
            try:
                yield i, raw.decode(encoding)
            except UnicodeDecodeError as e:
                raise ConfigError(f"{path}:{i}: not {encoding} text (byte 0x{raw[e.start:e.start + 1].hex()}); "
                                  "convert the file to UTF-8") from None
    stats.sha256 = h.hexdigest()


def _decodes(path: Path, encoding: str) -> bool:
    try:
        for _ in _lines(path, FileStats(), encoding):
            pass
        return True
    except ConfigError:
        return False


def strings(value: Any, pointer: str = "") -> Iterator[tuple[str, str]]:
    """(JSON pointer, string) for every string value inside ``value``, in document order."""
    if isinstance(value, str):
        yield pointer, value
    elif isinstance(value, dict):
        for k, v in value.items():
            yield from strings(v, f"{pointer}/{str(k).replace('~', '~0').replace('/', '~1')}")
    elif isinstance(value, list):
        for i, v in enumerate(value):
            yield from strings(v, f"{pointer}/{i}")


def documents(cf: CorpusFile, stats: FileStats) -> Iterator[tuple[str, Segments]]:
    """(location label, segments) of every document of ``cf`` (see the module doc)."""
    label = str(cf.path)
    if cf.format == "jsonl":
        for i, text in _lines(cf.path, stats):
            if not text.strip():
                continue
            try:
                value = json.loads(text)
            except json.JSONDecodeError as e:
                raise ConfigError(f"{cf.path}:{i}: invalid JSON ({e.msg} at column {e.colno}); a .jsonl file "
                                  "holds one JSON value per line") from None
            for _, s in strings(value):
                stats.documents += 1
                yield label, [(i, s)]
    elif cf.format == "json":
        text = "".join(t for _, t in _lines(cf.path, stats))
        try:
            value = json.loads(text)
        except json.JSONDecodeError as e:
            raise ConfigError(f"{cf.path}:{e.lineno}: invalid JSON ({e.msg} at column {e.colno})") from None
        for ptr, s in strings(value):
            stats.documents += 1
            yield f"{label}#{ptr}", [(None, s)]
    elif cf.format == "text":
        para: Segments = []
        for i, text in _lines(cf.path, stats):
            if text.strip():
                para.append((i, text))
            elif para:
                stats.documents += 1
                yield label, para
                para = []
        if para:
            stats.documents += 1
            yield label, para
    else:
        yield from _rows(cf, stats)


def _rows(cf: CorpusFile, stats: FileStats) -> Iterator[tuple[str, Segments]]:
    enc = "utf-8" if _decodes(cf.path, "utf-8") else "gb18030" if _decodes(cf.path, "gb18030") else "utf-8"
    stats.encoding = enc
    csv.field_size_limit(max(csv.field_size_limit(), 1 << 28))  # a long document in one cell
    lines = _lines(cf.path, stats, enc)  # not UTF-8 nor GB18030: the UTF-8 error, naming the line
    reader = csv.reader((t for _, t in lines), delimiter="\t" if cf.format == "tsv" else ",")
    start = 1
    try:
        for row in reader:
            if any(c.strip() for c in row):
                stats.documents += 1
                yield str(cf.path), [(start, c) for c in row]
            start = reader.line_num + 1
    except csv.Error as e:
        raise ConfigError(f"{cf.path}:{reader.line_num}: not a readable {cf.format.upper()} row ({e})") from None


def read_all(files: Iterable[CorpusFile], add: Any) -> list[tuple[CorpusFile, FileStats]]:
    """Stream every document of ``files`` into ``add(label, segments)``; the files' stats."""
    out = []
    for cf in files:
        stats = FileStats()
        for label, segs in documents(cf, stats):
            add(label, segs)
        out.append((cf, stats))
    return out
