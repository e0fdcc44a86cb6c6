"""Errors that tell the user which file, line and field are at fault and what was expected."""

from __future__ import annotations

import sqlite3
from pathlib import Path


class ChimedEvalError(Exception):
    """Base class: the CLI prints these as one clean line instead of a traceback."""


class DataError(ChimedEvalError, ValueError):
    """Malformed input data. ``line`` is 1-based (the header is line 1 in CSV files)."""

    def __init__(self, path: str | Path, line: int | None, field: str | None, message: str) -> None:
        self.path = str(path)
        self.line = line
        self.field = field
        self.message = message
        where = self.path if line is None else f"{self.path}:{line}"
        what = f" field {field!r}:" if field else ""
        super().__init__(f"{where}:{what} {message}")


class MissingDataError(ChimedEvalError, FileNotFoundError):
    """A data set is not where it should be; the message says what to put where."""


class ConfigError(ChimedEvalError, ValueError):
    """Bad command-line options or configuration."""


class CacheStorageError(ChimedEvalError, sqlite3.OperationalError):
    """The cache file cannot be written or read for a reason moving it aside would not cure (a
    full disk, an I/O error, a read-only directory, a lock held past the busy timeout): one line
    naming the file, the reason and the way out, instead of a traceback (still an
    ``sqlite3.OperationalError`` for callers that catch that)."""

    def __init__(self, path: Path, err: sqlite3.Error) -> None:
        full = "full" in str(err).lower() or getattr(err, "sqlite_errorcode", None) == 13  # SQLITE_FULL
        why = "the disk holding it is full" if full else "it cannot be written there"
        super().__init__(f"response cache {path}: {err} ({why}). Free space there, or give --cache DIR on another "
                         "disk, or --no-cache; the records written so far are kept: run the same command again to "
                         "resume")


class BudgetReached(ChimedEvalError):
    """``--max-cost`` / ``--max-tokens`` spent: scheduling stopped cleanly (the CLI exits
    :data:`BUDGET_EXIT`); the message says how far the run got. The records so far are kept and
    the same command with a higher budget resumes."""

    def __init__(self, message: str, done: int = 0, total: int = 0) -> None:
        super().__init__(message)
        self.done, self.total = done, total


#: the exit status of a run or sweep stopped by its budget (2 is a usage error, 130 an interrupt)
BUDGET_EXIT = 3
