"""Bounded transfers for ``chimed-eval data``: a deadline, a size cap, a capped unzip, SIGTERM.

A download must end, and must not fill the disk, whatever the server does: a server that sends
one byte a second never trips a socket timeout, one that sends an endless body writes until the
disk is full, and a small zip can unpack to gigabytes. So each transfer here has

- a *deadline* for the whole download (connection, redirects and body), besides the timeout of
  each read; every read waits at most the time left, so the download stops at the deadline;
- a *size cap*: the size the manifest gives for the body plus a small slack (a fixed ceiling
  when the manifest gives none); a larger ``Content-Length`` is refused before reading, and a
  body that grows past the cap is cut off at once;
- for archives, only the members asked for are unpacked, each refused before unpacking when its
  declared size is more than :data:`MAX_RATIO` times its compressed size or the total passes
  :data:`MAX_RATIO` times the archive, and cut off if it unpacks to more than it declared.

:func:`terminate_as_interrupt` turns SIGTERM into :class:`KeyboardInterrupt` while a fetch runs,
so the ``finally`` that removes the staging folder runs on ``kill`` as it does on Ctrl-C.
The transfer is stdlib ``urllib`` (``http``, ``https`` and ``file`` URLs).
"""

from __future__ import annotations

import hashlib
import signal
import threading
import time
import urllib.error
import urllib.parse
import urllib.request
import zipfile
from contextlib import contextmanager
from pathlib import Path
from types import FrameType
from typing import Any, Iterator

from chimed_eval.core.errors import DataError

DEFAULT_DEADLINE = 600.0
"""Seconds a whole download (one URL) may take; ``chimed-eval data --deadline`` changes it."""

DEFAULT_MAX_BYTES = 256 << 20
"""The body cap when the manifest gives no size (the largest shipped file is under 4 MB)."""

MAX_RATIO = 100
"""Unpacked bytes per compressed byte above which an archive member is refused (the shipped
archives reach 5.3; a zip bomb reaches 1,000)."""

_CHUNK = 1 << 16


class TransferError(Exception):
    """A transfer was stopped (deadline, size cap); the caller turns it into an error naming
    the URL and the files. ``why`` is one sentence."""

    def __init__(self, why: str) -> None:
        self.why = why
        super().__init__(why)


def size_cap(size: int | None) -> int:
    """The most bytes accepted for a body the manifest says is ``size`` bytes: ``size`` plus 1 %
    (at least 64 KiB) of slack; :data:`DEFAULT_MAX_BYTES` when the size is unknown."""
    if size is None:
        return DEFAULT_MAX_BYTES
    return size + max(size // 100, 64 << 10)


def _limit_reads(resp: Any, seconds: float) -> None:
    """Make the next socket read of ``resp`` wait at most ``seconds`` (a ``file:`` URL has no
    socket). The socket sits behind the response's buffered reader."""
    sock = getattr(getattr(getattr(resp, "fp", None), "raw", None), "_sock", None)
    if sock is not None:
        sock.settimeout(max(seconds, 0.001))


def download(url: str, dest: Path, *, max_bytes: int, deadline: float, timeout: float,
             headers: dict[str, str]) -> str:
    """Write the body of ``url`` to ``dest``; return its sha256 (hex).

    Raises :class:`TransferError` past ``deadline`` seconds or ``max_bytes`` bytes, and lets
    ``urllib``'s errors (HTTP status, unreachable host, socket timeout) through.
    """
    end = time.monotonic() + deadline
    late = f"the download did not finish within its deadline of {deadline:g} s (--deadline)"
    digest = hashlib.sha256()
    got = 0
    try:
        with urllib.request.urlopen(urllib.request.Request(url, headers=headers),
                                    timeout=min(timeout, deadline)) as resp:
            announced = resp.headers.get("Content-Length")
            if announced and announced.strip().isdigit() and int(announced) > max_bytes:
                raise TransferError(f"the server announced {int(announced)} bytes, more than the "
                                    f"{max_bytes} expected at most for this file")
            from chimed_eval.core.progress import progress_bar

            size = int(announced) if announced and announced.strip().isdigit() else None
            name = urllib.parse.urlsplit(url).path.rsplit("/", 1)[-1] or dest.name
            with open(dest, "wb") as out, progress_bar(size, f"downloading {name}", "B", unit_scale=True,
                                                       unit_divisor=1024) as bar:
                while True:
                    left = end - time.monotonic()
                    if left <= 0:
                        raise TransferError(f"{late} ({got} bytes received)")
                    _limit_reads(resp, min(timeout, left))
                    chunk = resp.read1(_CHUNK)
                    if not chunk:
                        break
                    got += len(chunk)
                    if got > max_bytes:
                        raise TransferError(f"the server sent more than the {max_bytes} bytes expected "
                                            "at most for this file; stopped there")
                    digest.update(chunk)
                    out.write(chunk)
                    bar.update(len(chunk))
    except (TimeoutError, urllib.error.URLError) as exc:  # urllib wraps a connect timeout in a URLError
        timed_out = isinstance(exc, TimeoutError) or isinstance(getattr(exc, "reason", None), TimeoutError)
        if timed_out and time.monotonic() >= end:
            raise TransferError(f"{late} ({got} bytes received)") from None
        raise
    return digest.hexdigest()


def unzip_members(archive: Path, members: list[str], out_dir: Path, url: str) -> dict[str, Path]:
    """Unpack the named ``members`` of ``archive`` into ``out_dir`` (as numbered files, so a
    member's name never chooses a path); return member -> path.

    Refused before anything is unpacked (:class:`DataError` naming the member and the sizes):
    a member that declares more than :data:`MAX_RATIO` times its compressed size, or members
    that together declare more than :data:`MAX_RATIO` times the archive. A member that unpacks
    to more than it declared is cut off and refused as damaged.
    """
    with zipfile.ZipFile(archive) as zf:
        infos = [zf.getinfo(m) for m in members]
        archive_bytes = archive.stat().st_size
        for info in infos:
            if info.file_size > MAX_RATIO * max(info.compress_size, 1):
                raise DataError(archive, None, None,
                                f"the archive {url} looks like a zip bomb: member {info.filename!r} would "
                                f"unpack {info.file_size} bytes from {info.compress_size} (more than "
                                f"{MAX_RATIO} times); nothing was unpacked")
        total = sum(i.file_size for i in infos)
        if total > MAX_RATIO * archive_bytes:
            raise DataError(archive, None, None,
                            f"the archive {url} would unpack {total} bytes from {archive_bytes} (more than "
                            f"{MAX_RATIO} times); nothing was unpacked")
        out_dir.mkdir(parents=True, exist_ok=True)
        paths: dict[str, Path] = {}
        for n, info in enumerate(infos):
            path = out_dir / f"member-{n}"
            with zf.open(info) as src, open(path, "wb") as dst:
                copied = _copy_capped(src, dst, info.file_size)
            if copied > info.file_size:
                raise DataError(archive, None, None,
                                f"the archive {url} is damaged: member {info.filename!r} unpacks to more "
                                f"than the {info.file_size} bytes it declares; stopped there")
            paths[info.filename] = path
    return paths


def _copy_capped(src: Any, dst: Any, cap: int) -> int:
    """Copy until EOF or one byte past ``cap``; return the bytes read."""
    copied = 0
    while copied <= cap:
        chunk = src.read(min(_CHUNK, cap + 1 - copied))
        if not chunk:
            break
        copied += len(chunk)
        dst.write(chunk)
    return copied


def copy_file(src: Path, dest: Path, max_bytes: int) -> str:
    """Copy a local file (a ``file:`` mirror) under the same size cap; return its sha256."""
    digest = hashlib.sha256()
    with open(src, "rb") as f, open(dest, "wb") as out:
        copied = _copy_capped(f, _Hashing(out, digest), max_bytes)
    if copied > max_bytes:
        raise TransferError(f"{src} holds more than the {max_bytes} bytes expected at most for this file")
    return digest.hexdigest()


class _Hashing:
    """A writer that also feeds a hash."""

    def __init__(self, out: Any, digest: Any) -> None:
        self.out, self.digest = out, digest

    def write(self, data: bytes) -> None:
        self.digest.update(data)
        self.out.write(data)


@contextmanager
def terminate_as_interrupt() -> Iterator[None]:
    """While inside, SIGTERM raises :class:`KeyboardInterrupt` (in the main thread only), so the
    clean-up that Ctrl-C runs (removing the partial download) runs on ``kill`` too."""
    if threading.current_thread() is not threading.main_thread():
        yield
        return

    def interrupt(signum: int, frame: FrameType | None) -> None:
        raise KeyboardInterrupt(f"signal {signum}")

    previous = signal.signal(signal.SIGTERM, interrupt)
    try:
        yield
    finally:
        signal.signal(signal.SIGTERM, previous)


__all__ = ["DEFAULT_DEADLINE", "DEFAULT_MAX_BYTES", "MAX_RATIO", "TransferError", "copy_file", "download",
           "size_cap", "terminate_as_interrupt", "unzip_members"]
