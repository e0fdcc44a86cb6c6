"""Board definitions: which measured (task, metric, protocol, averaging) fills each column of a
board, its item set, and the published column shown beside it; read from ``boards.toml`` (or your
own TOML or JSON of the same shape) and validated, errors naming the file, board, column and field.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Mapping

from chimed_eval.metrics import metric_direction
from chimed_eval.core.errors import ConfigError

from . import paper

BOARDS_FILE = Path(__file__).with_name("boards.toml")
AVERAGING_WORDS = {"items": "micro (items)", "corpus": "micro (corpus)", "subjects": "macro (subjects)",
                   "records": "micro (records)"}
DELTA_POLICIES = ("same-items", "same-count", "none")


@dataclass(frozen=True)
class Column:
    title: str
    task: str
    metric: str
    protocol: str
    averaging: str | None = None
    items: str = ""
    n: int | None = None
    items_sha256: str | None = None
    shots: int | None = None
    published: str | None = None
    delta: str = "none"
    no_delta: str = ""

    @property
    def measured_as(self) -> str:
        parts = [f"{self.task}/{self.metric}", self.protocol]
        if self.averaging:
            parts.append(AVERAGING_WORDS.get(self.averaging, self.averaging))
        if self.n is not None:
            parts.append(f"n={self.n}")
        if metric_direction(self.metric) == "lower":
            parts.append("lower is better")
        return " · ".join(parts)


@dataclass(frozen=True)
class Board:
    name: str
    title: str
    columns: tuple[Column, ...]
    description: str = ""
    published: str | None = None
    in_all: bool = True


@dataclass(frozen=True)
class BoardSet:
    boards: Mapping[str, Board]
    aliases: Mapping[str, tuple[str, ...]]
    source: Path

    def select(self, name: str) -> list[Board]:
        if name == "all":
            return [b for b in self.boards.values() if b.in_all]
        if name not in self.boards:
            raise ConfigError(f"unknown board {name!r}; known: {', '.join(sorted(self.boards))} or all "
                              f"(definitions: {self.source})")
        return [self.boards[name]]


def _read_toml(path: Path) -> dict[str, Any]:
    try:
        import tomllib
    except ModuleNotFoundError:  # Python 3.10
        try:
            import tomli as tomllib  # type: ignore[no-redef]
        except ModuleNotFoundError:
            raise ConfigError(f"{path}: reading TOML on Python 3.10 needs tomli (pip install tomli), "
                              "or give --boards a JSON file of the same shape") from None
    try:
        return tomllib.loads(path.read_text(encoding="utf-8"))
    except tomllib.TOMLDecodeError as e:
        raise ConfigError(f"{path}: invalid TOML: {e}") from None


_COLUMN_FIELDS = {"title": str, "task": str, "metric": str, "protocol": str, "averaging": str, "items": str,
                  "n": int, "items_sha256": str, "shots": int, "published": str, "delta": str, "no_delta": str}
_BOARD_FIELDS = {"title", "description", "published", "in_all", "columns"}


def load_boards(path: Path | None = None) -> BoardSet:
    """Read and validate board definitions (TOML, or JSON of the same shape); errors name the
    file, the board, the column and the field."""
    path = Path(path) if path is not None else BOARDS_FILE
    if not path.exists():
        raise ConfigError(f"board definitions {path} not found")
    if path.suffix == ".json":
        try:
            doc = json.loads(path.read_text(encoding="utf-8"))
        except json.JSONDecodeError as e:
            raise ConfigError(f"{path}:{e.lineno}: invalid JSON: {e.msg}") from None
    else:
        doc = _read_toml(path)
    boards: dict[str, Board] = {}
    for name, spec in (doc.get("boards") or {}).items():
        where = f"{path}: boards.{name}"
        if name == "all":
            raise ConfigError(f"{where}: 'all' is reserved")
        unknown = set(spec) - _BOARD_FIELDS
        if unknown:
            raise ConfigError(f"{where}: unknown field(s) {sorted(unknown)}; expected {sorted(_BOARD_FIELDS)}")
        if "title" not in spec or not spec.get("columns"):
            raise ConfigError(f"{where}: needs a title and at least one [[boards.{name}.columns]]")
        table = spec.get("published")
        if table is not None and table not in paper.PUBLISHED:
            raise ConfigError(f"{where}.published: {table!r} is not a published table; expected one of "
                              f"{sorted(paper.PUBLISHED)}")
        cols = tuple(_column(c, f"{where}.columns[{i}]", table) for i, c in enumerate(spec["columns"]))
        boards[name] = Board(name, spec["title"], cols, spec.get("description", ""), table,
                             bool(spec.get("in_all", True)))
    if not boards:
        raise ConfigError(f"{path}: no [boards.<name>] defined")
    aliases = {k: tuple(v) for k, v in (doc.get("aliases") or {}).items()}
    for k in aliases:
        if k not in paper.MODELS:
            raise ConfigError(f"{path}: aliases.{k!r} is not a published model; expected one of {paper.MODELS}")
    return BoardSet(boards, aliases, path)


def _column(spec: Mapping[str, Any], where: str, table: str | None) -> Column:
    for k, v in spec.items():
        if k not in _COLUMN_FIELDS:
            raise ConfigError(f"{where}: unknown field {k!r}; expected {sorted(_COLUMN_FIELDS)}")
        if not isinstance(v, _COLUMN_FIELDS[k]) or isinstance(v, bool):
            raise ConfigError(f"{where}.{k}: expected {_COLUMN_FIELDS[k].__name__}, got {v!r}")
    for k in ("title", "task", "metric", "protocol"):
        if k not in spec:
            raise ConfigError(f"{where}: missing {k!r}")
    col = Column(**spec)
    if col.delta not in DELTA_POLICIES:
        raise ConfigError(f"{where}.delta: {col.delta!r}; expected one of {DELTA_POLICIES}")
    if col.averaging is not None and col.averaging not in AVERAGING_WORDS:
        raise ConfigError(f"{where}.averaging: {col.averaging!r}; expected one of {sorted(AVERAGING_WORDS)}")
    if col.published is not None:
        if table is None:
            raise ConfigError(f"{where}.published: the board shows no published table")
        if col.published not in paper.PUBLISHED[table][0]:
            raise ConfigError(f"{where}.published: {col.published!r} is not a column of {table} "
                              f"{paper.PUBLISHED[table][0]}")
        if col.protocol != paper.PUBLISHED_PROTOCOL:
            raise ConfigError(f"{where}: protocol {col.protocol!r} beside published figures obtained with the "
                              f"{paper.PUBLISHED_PROTOCOL!r} protocol; mixing protocols in one column is refused")
    if col.delta == "same-items" and not col.items_sha256:
        raise ConfigError(f"{where}: delta = 'same-items' needs items_sha256")
    if col.delta == "same-count" and col.n is None:
        raise ConfigError(f"{where}: delta = 'same-count' needs n")
    return col
