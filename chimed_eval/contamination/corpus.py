"""Reading a training corpus for the n-gram check: files, directories and globs, streamed as
documents (never loaded whole, except a ``.json`` file, which JSON can only parse whole, and one
JSONL line or CSV row, parsed whole).

What a document is, by format (lm-eval builds n-grams per document; here no n-gram crosses two):

* ``.jsonl`` / ``.ndjson``: each line's record: all its string values, recursively, joined in
  document order (keys are not text; numbers, booleans and null are left out): chimed-train's
  records (``text``; ``messages[].content``; ``prompt``/``completion``;
  ``prompt``/``chosen``/``rejected``; ``prompt``/``reference``/``external``) and any other shape.
  N-grams run across the strings of one record, on purpose: a test item split between ``prompt``
  and ``completion`` is found (with one document per string it was not); a role name such as
  ``user`` between two messages is a token like any other. Location ``file:line``. A line that is
  not JSON is an error naming ``file:line``.
* ``.json``: the same, each element of a top-level list being a record (location ``file#/i``),
  else the whole value one record (location ``file#``).
* ``.txt`` / ``.md``: each paragraph (lines up to a blank line), read in pieces (a paragraph or a
  line of any length is never held whole: :func:`_text_pieces`, and the scan hashes it in
  chunks); location ``file:line`` of the line where the n-gram starts.
* ``.csv`` / ``.tsv``: each row, its cells in order, header row included; location ``file:line``
  of the row's first line.

Text is UTF-8 (a BOM is accepted); CSV/TSV files that are not UTF-8 are read as GB18030 (as the
CMD release ships) when that decodes them. Anything else is an error naming the file and line.
In a directory (searched recursively) or a glob, files of other kinds are skipped and listed;
a file named on its own must be of a kind above (``.parquet``: convert it to JSONL first).
Every file's sha256 and size are taken while it is read.
"""

from __future__ import annotations

import codecs
import csv
import glob
import hashlib
import itertools
import json
import os
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Iterable, Iterator, Sequence

from chimed_eval.core.errors import ConfigError

FORMATS = {".jsonl": "jsonl", ".ndjson": "jsonl", ".json": "json", ".txt": "text", ".md": "text",
           ".csv": "csv", ".tsv": "tsv"}
Segments = Iterable[tuple[int | None, str]]
PIECE_BYTES = 1 << 18  # a longer line of a text file is read in pieces


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


def resolve_corpus(specs: Sequence[str]) -> tuple[list[CorpusFile], list[str]]:
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
                if m.is_dir():
                    walk(m)
                elif m.is_file():
                    take(m, False)
                else:
                    skipped.append(f"{m} (not a regular file)")
            continue
        p = Path(spec).expanduser()
        if p.is_dir():
            walk(p)
        elif p.is_file():
            take(p, True)
        elif p.exists():
            raise ConfigError(f"--corpus {spec}: not a regular file (a fifo, device or socket); "
                              "name a file, a directory or a glob")
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


def _text_pieces(path: Path, stats: FileStats) -> Iterator[tuple[int, str, bool]]:
    """(line number, text, whether the line ends there) of a UTF-8 text file read
    :data:`PIECE_BYTES` at most at a time and hashed as it goes: a longer line comes in several
    pieces, each cut after a whitespace character or a CJK ideograph (:func:`~.ngrams.safe_cut`, so
    no token is split)."""
    from chimed_eval.contamination.ngrams import safe_cut

    size = PIECE_BYTES
    h = hashlib.sha256()
    dec = codecs.getincrementaldecoder("utf-8")()
    i, carry = 1, ""
    with open(path, "rb") as f:
        while True:
            raw = f.readline(size)
            h.update(raw)
            stats.bytes += len(raw)
            if stats.bytes == len(raw) and raw.startswith(b"\xef\xbb\xbf"):
                raw = raw[3:]
            ends = raw.endswith(b"\n") or not raw
            try:
                text = carry + dec.decode(raw, final=ends)
            except UnicodeDecodeError as e:
                raise ConfigError(f"{path}:{i}: not utf-8 text (byte 0x{e.object[e.start:e.start + 1].hex()}); "
                                  "convert the file to UTF-8") from None
            if not raw:
                if text:
                    yield i, text, True
                break
            cut = len(text) if ends else safe_cut(text, len(text))
            carry = text[cut:]
            yield i, text[:cut], ends
            i += 1 if ends else 0
    stats.sha256 = h.hexdigest()


def _paragraphs(cf: CorpusFile, stats: FileStats) -> Iterator[tuple[str, Segments]]:
    """The paragraphs of a text file, each yielded as a lazy iterator of its line pieces (drained
    here if the caller does not read it to the end): no paragraph is held whole."""
    it = _text_pieces(cf.path, stats)

    def rest(fresh: bool) -> Iterator[tuple[int | None, str]]:
        """The paragraph's pieces up to a blank line; ``fresh``: a new line starts here."""
        for i, text, end in it:
            if text.strip():
                fresh = False
                yield i, text
            if end:
                if fresh:
                    return
                fresh = True

    for i, text, end in it:
        if text.strip():
            stats.documents += 1
            para = itertools.chain([(i, text)], rest(end))
            yield str(cf.path), para
            for _ in para:
                pass


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
            segs = [(i, s) for _, s in strings(value)]
            if segs:
                stats.documents += 1
                yield label, segs
    elif cf.format == "json":
        text = "".join(t for _, t in _lines(cf.path, stats))
        try:
            value = json.loads(text)
        except json.JSONDecodeError as e:
            raise ConfigError(f"{cf.path}:{e.lineno}: invalid JSON ({e.msg} at column {e.colno})") from None
        records = [(f"{label}#/{k}", v) for k, v in enumerate(value)] if isinstance(value, list) else [(f"{label}#", value)]
        for where, rec in records:
            segs = [(None, s) for _, s in strings(rec)]
            if segs:
                stats.documents += 1
                yield where, segs
    elif cf.format == "text":
        yield from _paragraphs(cf, stats)
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


def read_all(files: Iterable[CorpusFile], add: Any, progress: bool | None = None) -> list[tuple[CorpusFile, FileStats]]:
    """Stream every document of ``files`` into ``add(label, segments)``; the files' stats. A bar
    counts the bytes read against the files' sizes (``progress``: :func:`~chimed_eval.core.progress.progress_on`;
    a pipe has no size: its bytes are counted without a total)."""
    from chimed_eval.core.progress import progress_bar

    files = list(files)
    sizes = [_size(cf.path) for cf in files]
    total = None if None in sizes else sum(s for s in sizes if s is not None)
    out = []
    shown = before = 0  # bytes shown on the bar; bytes of the files already read
    with progress_bar(total, "scanning corpus", "B", progress, unit_scale=True, unit_divisor=1024) as bar:
        for cf in files:
            stats = FileStats()
            for label, segs in documents(cf, stats):
                add(label, segs)
                if before + stats.bytes - shown > (1 << 20):  # refreshed every MiB read
                    bar.update(before + stats.bytes - shown)
                    shown = before + stats.bytes
            before += stats.bytes
            bar.update(before - shown)
            shown = before
            bar.set_postfix_str(f"{len(out) + 1}/{len(files)} files", refresh=False)
            out.append((cf, stats))
    return out


def _size(path: Path) -> int | None:
    """A regular file's size; None for a pipe or a device (read to its end, size unknown)."""
    import stat

    st = path.stat()
    return st.st_size if stat.S_ISREG(st.st_mode) else None
