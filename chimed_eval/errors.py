"""Errors that tell the user which file, line and field are at fault and what was expected."""

from __future__ import annotations

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
