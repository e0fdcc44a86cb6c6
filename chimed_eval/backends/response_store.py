"""Where the response cache keeps its entries: one SQLite file per cache directory.

Storage: one SQLite file in WAL mode (``responses.sqlite3``): writers in other threads and
processes wait for each other (busy timeout), every write is one transaction, so a crash
mid-write leaves the previous state (SQLite discards a torn WAL tail), and each row carries the
sha256 of its value so a damaged row is a miss, never a wrong answer. A damaged file (not a
database, truncated, overwritten pages: ``PRAGMA quick_check`` on open, any "malformed"/"not a
database" error later) is moved aside (``*.corrupt-<time>-<pid>``) with a warning; the run goes on.
Any other SQLite failure (a full disk, a read-only directory) is one line naming the file
(:class:`~chimed_eval.core.errors.CacheStorageError`); the records written so far are kept.
"""

from __future__ import annotations

import dataclasses
import hashlib
import json
import logging
import os
import random
import sqlite3
import threading
import time
from pathlib import Path
from typing import Callable, Sequence, TypeVar

from chimed_eval.core.errors import CacheStorageError
from chimed_eval.core.types import Response

log = logging.getLogger("chimed_eval.backends.cache")
_T = TypeVar("_T")

DB_NAME = "responses.sqlite3"
#: SQLite's primary result codes for a damaged file (SQLITE_CORRUPT, SQLITE_NOTADB).
_CORRUPT_CODES = frozenset({11, 26})

_LATER_FIELDS = ("token_logprobs", "token_moments")  # stored only when set: older entries unchanged


def _encode(resp: Response) -> str:  # tuples are stored as JSON lists
    # usage (tokens, latency) is what one call cost, not the answer: a cache hit costs nothing
    d = {k: v for k, v in dataclasses.asdict(resp).items()
         if k != "usage" and (v is not None or k not in _LATER_FIELDS)}
    return json.dumps(d, ensure_ascii=False)  # -inf / nan survive (Python's JSON extension)


def _decode(text: str) -> Response:
    d = json.loads(text)
    for k, v in d.items():  # lists back to tuples (token_moments: a tuple of (mu, sigma) pairs)
        if isinstance(v, list):
            d[k] = tuple(tuple(x) if isinstance(x, list) else x for x in v)
    return Response(**d)


def _is_busy(exc: sqlite3.OperationalError) -> bool:
    """Another connection holds the lock (SQLITE_BUSY / SQLITE_LOCKED), as opposed to a real fault."""
    msg = str(exc).lower()
    return "locked" in msg or "busy" in msg


class CorruptCacheError(sqlite3.DatabaseError):
    """``PRAGMA quick_check`` found damage that SQLite had not reported as an error yet."""


def is_corruption(exc: sqlite3.Error) -> bool:
    """Whether an SQLite error means a damaged file (as opposed to a busy lock, a full disk or a
    missing directory, which moving the file aside would not cure)."""
    if isinstance(exc, CorruptCacheError):
        return True
    code = getattr(exc, "sqlite_errorcode", None)  # Python >= 3.11
    if isinstance(code, int):
        return (code & 0xFF) in _CORRUPT_CODES
    msg = str(exc).lower()
    return "malformed" in msg or "not a database" in msg


class ResponseCache:
    """A key -> Response store in ``DIR/responses.sqlite3``; thread- and process-safe.

    A damaged file never stops a run: it is moved aside (kept for inspection) and the cache starts
    again empty, on open and on any later read or write that meets the damage."""

    def __init__(self, directory: Path | str, busy_timeout_s: float = 60.0) -> None:
        self.dir = Path(directory).expanduser()
        self.dir.mkdir(parents=True, exist_ok=True)
        self.path = self.dir / DB_NAME
        self.busy_timeout_s = busy_timeout_s
        self._lock = threading.Lock()
        self._file_id: tuple[int, int] | None = None  # (st_dev, st_ino) of the file the connection opened
        try:
            try:
                self._conn = self._open_waiting()
            except sqlite3.DatabaseError as e:
                if not is_corruption(e):
                    raise
                self._move_aside(e)
                self._conn = self._open_waiting()
        except sqlite3.OperationalError as e:
            raise CacheStorageError(self.path, e) from None

    def _open_waiting(self) -> sqlite3.Connection:
        """``_open``, tried again while another process holds the file: SQLite answers "database is
        locked" at once, without waiting out the busy timeout, when processes open a new file and
        switch it to WAL at the same moment (CI met it with four writers starting together)."""
        deadline = time.monotonic() + self.busy_timeout_s
        pause = 0.005
        while True:
            try:
                return self._open()
            except sqlite3.OperationalError as e:
                if not _is_busy(e) or time.monotonic() > deadline:
                    raise
                time.sleep(pause * (1 + random.random()))
                pause = min(pause * 2, 0.2)

    def _open(self) -> sqlite3.Connection:
        """Connect, check the whole file (``quick_check``: every page, not only the table's) and
        create the table; raises ``sqlite3.DatabaseError`` for a damaged file."""
        conn = sqlite3.connect(str(self.path), timeout=self.busy_timeout_s, isolation_level=None,
                               check_same_thread=False)
        try:
            st = self.path.stat()
            self._file_id = (st.st_dev, st.st_ino)
            conn.execute(f"PRAGMA busy_timeout={int(self.busy_timeout_s * 1000)}")
            if str(conn.execute("PRAGMA journal_mode").fetchone()[0]).lower() != "wal":
                conn.execute("PRAGMA journal_mode=WAL")  # a write: only the first opener makes it
            conn.execute("PRAGMA synchronous=NORMAL")
            self._check(conn)
            conn.execute("CREATE TABLE IF NOT EXISTS responses (key TEXT PRIMARY KEY, kind TEXT NOT NULL, "
                         "value TEXT NOT NULL, sha256 TEXT NOT NULL, created REAL NOT NULL)")
            conn.execute("SELECT count(*) FROM responses").fetchone()
        except sqlite3.DatabaseError:
            conn.close()
            raise
        return conn

    @staticmethod
    def _check(conn: sqlite3.Connection) -> None:
        """``PRAGMA quick_check``: reads every page (a plain query reads only those it needs, so
        damage elsewhere would surface mid-run); O(size), about a second per GB."""
        problems = [str(row[0]) for row in conn.execute("PRAGMA quick_check").fetchall()]
        if problems != ["ok"]:
            lines = [line for p in problems for line in p.splitlines() if line.strip() and "***" not in line]
            raise CorruptCacheError("quick_check: " + "; ".join(lines[:2]) + ("; ..." if len(lines) > 2 else ""))

    def _aside_path(self) -> Path:
        """``responses.sqlite3.corrupt-<unix time>-<pid>``, unique even for two in one second."""
        base = f"{self.path.name}.corrupt-{int(time.time())}-{os.getpid()}"
        aside, n = self.path.with_name(base), 1
        while aside.exists():
            aside, n = self.path.with_name(f"{base}.{n}"), n + 1
        return aside

    def _move_aside(self, err: sqlite3.Error) -> None:
        """Move the damaged file and its WAL/SHM aside, unless another process already did (the
        file at ``self.path`` is no longer the one this connection opened): never move away the
        fresh cache that process started."""
        try:
            st = self.path.stat()
        except FileNotFoundError:
            return
        if self._file_id is not None and (st.st_dev, st.st_ino) != self._file_id:
            log.warning("response cache %s was damaged (%s); another process (or connection) has already "
                        "replaced it", self.path, err)
            return
        aside = self._aside_path()
        os.replace(self.path, aside)
        for suffix in ("-wal", "-shm"):
            side = self.path.with_name(self.path.name + suffix)
            try:
                os.replace(side, aside.with_name(aside.name + suffix))
            except FileNotFoundError:
                pass
        log.warning("response cache %s is damaged (%s); moved to %s, continuing with an empty cache",
                    self.path, err, aside.name)

    def _recover(self, err: sqlite3.Error) -> None:
        """After a read or write met a damaged file: close it, move it aside, open a new one.
        Called with ``self._lock`` held."""
        try:
            self._conn.close()
        except sqlite3.Error:
            pass
        self._move_aside(err)
        self._conn = self._open()

    def _guarded(self, fn: Callable[[], _T]) -> _T:
        """``fn()`` under the lock; if the file turns out damaged, recover and run it once more on
        the new file (which another process may already have started filling)."""
        with self._lock:
            try:
                try:
                    return fn()
                except sqlite3.DatabaseError as e:
                    if not is_corruption(e):
                        raise
                    self._recover(e)
                    return fn()
            except sqlite3.OperationalError as e:  # full disk, I/O error, read-only, locked past the timeout
                raise CacheStorageError(self.path, e) from None

    def get_many(self, keys: Sequence[str]) -> dict[str, Response]:
        """The stored responses for those keys that have one (after damage: those in the new file)."""
        return self._guarded(lambda: self._get_many(keys))

    def _get_many(self, keys: Sequence[str]) -> dict[str, Response]:
        out: dict[str, Response] = {}
        bad: list[str] = []
        for start in range(0, len(keys), 500):
            chunk = list(keys[start:start + 500])
            marks = ",".join("?" * len(chunk))
            rows = self._conn.execute(f"SELECT key, value, sha256 FROM responses WHERE key IN ({marks})",
                                      chunk).fetchall()
            for key, value, digest in rows:
                try:
                    if hashlib.sha256(value.encode("utf-8")).hexdigest() != digest:
                        raise ValueError("checksum mismatch")
                    out[key] = _decode(value)
                except (ValueError, TypeError):
                    bad.append(key)
        if bad:
            log.warning("response cache: %d damaged entries dropped (recomputed)", len(bad))
            self._write(lambda c: c.executemany("DELETE FROM responses WHERE key = ?", [(k,) for k in bad]))
        return out

    def put_many(self, items: Sequence[tuple[str, str, Response]]) -> None:
        """Store (key, kind, response) triples in one transaction; existing keys are kept. On a
        damaged file they go into the fresh one that replaces it."""
        if not items:
            return
        now = time.time()
        rows = []
        for key, kind, resp in items:
            value = _encode(resp)
            rows.append((key, kind, value, hashlib.sha256(value.encode("utf-8")).hexdigest(), now))

        def insert() -> None:
            self._write(lambda c: c.executemany(
                "INSERT OR IGNORE INTO responses (key, kind, value, sha256, created) VALUES (?, ?, ?, ?, ?)", rows))

        self._guarded(insert)

    def _write(self, fn) -> None:
        """One IMMEDIATE transaction (takes the write lock up front: no reader-upgrade deadlock),
        retried while another process holds the lock past the busy timeout."""
        deadline = time.monotonic() + self.busy_timeout_s
        while True:
            try:
                self._conn.execute("BEGIN IMMEDIATE")
                try:
                    fn(self._conn)
                    self._conn.execute("COMMIT")
                except BaseException:
                    try:
                        self._conn.execute("ROLLBACK")
                    except sqlite3.Error:  # SQLite may have rolled back already (e.g. on damage)
                        pass
                    raise
                return
            except sqlite3.OperationalError as e:
                if not _is_busy(e) or time.monotonic() > deadline:
                    raise
                time.sleep(0.01)

    def __len__(self) -> int:
        return self._guarded(lambda: int(self._conn.execute("SELECT count(*) FROM responses").fetchone()[0]))

    def close(self) -> None:
        with self._lock:
            self._conn.close()
