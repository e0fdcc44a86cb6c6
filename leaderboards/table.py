"""The table of one board: published rows (from ``paper.py``) above measured rows (from
results.json files, read by :func:`chimed_eval.runs.reader.read_run`), cell by cell.

A measured cell carries its 95% interval and item count; a run whose figures no longer match
their digest or records is refused by the reader, one that cannot be checked (no digest: an older
version; records not beside the file) is marked unverified. A run without the column's task or
metric leaves the cell blank, never filled in from elsewhere. A figure whose protocol or averaging
differs from the column's is refused (with the reason, never placed); a ``protocol = "any"``
column whose measured rows disagree on the protocol refuses the whole board. A delta against a
published row appears only for the same model (``[aliases]``) on a matched item set.

A column is filled by the metric of exactly its name (then its protocol and averaging are
checked): ``circular_acc``, ``all_orders_acc`` and ``acc_shuffled`` (protocol
``<variant>+circular<n>`` or ``<variant>+shuffle<K>``, from ``--shuffle-choices``) never fill an
``acc`` column, and a
``--shuffle-choices`` run's ``acc`` is its unshuffled pass.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Mapping, Sequence

from chimed_eval.core.errors import ConfigError
from chimed_eval.runs.reader import read_run, results_file
from chimed_eval.core.types import Metric, RunResult, TaskResult

from . import paper
from .spec import Board, Column


class BoardRefused(ConfigError):
    """A board cannot be rendered honestly (measured protocols mixed in one column)."""


@dataclass(frozen=True)
class Run:
    """One results.json: what a measured row is made of."""

    label: str
    result: RunResult
    source: Path

    @property
    def model(self) -> str:
        return self.result.model.name

    @property
    def model_path(self) -> str:
        return self.result.model.path

    def task(self, name: str) -> TaskResult | None:
        return next((t for t in self.result.tasks if t.task == name), None)


def load_results(paths: Sequence[Path]) -> list[Run]:
    """The runs of results.json files or output directories, labelled by model name (and by
    directory when two runs share a model name)."""
    runs = []
    for p in paths:
        f = results_file(Path(p))
        result = read_run(f)
        runs.append(Run(result.model.name, result, f))
    counts: dict[str, int] = {}
    for r in runs:
        counts[r.label] = counts.get(r.label, 0) + 1
    return [Run(f"{r.label} ({r.source.parent.name or r.source.name})", r.result, r.source)
            if counts[r.label] > 1 else r for r in runs]


def published_model(run: Run, aliases: Mapping[str, Sequence[str]]) -> str | None:
    """The published model a run is, by name, path or the path's last part (case-insensitive)."""
    names = {run.model.lower(), run.model_path.lower(), run.model_path.rstrip("/").rsplit("/", 1)[-1].lower()} - {""}
    for m in paper.MODELS:
        if {m.lower(), *(a.lower() for a in aliases.get(m, ()))} & names:
            return m
    return None


@dataclass
class Cell:
    status: str  # published | measured | blank | refused
    value: float | None = None
    ci_low: float | None = None
    ci_high: float | None = None
    n: int | None = None
    delta: float | None = None
    items_sha256: str | None = None
    protocol: str | None = None
    averaging: str | None = None
    grader_status: str | None = None  # a rubric figure's grader status (its metric's grader_status.status)
    notes: list[int] = field(default_factory=list)


@dataclass
class Row:
    label: str
    kind: str  # published | measured
    source: str
    cells: list[Cell]
    run: str = ""
    notes: list[int] = field(default_factory=list)


@dataclass
class Table:
    board: Board
    rows: list[Row]
    footnotes: list[str]

    def note(self, text: str) -> int:
        """The footnote number of ``text`` (added on first use)."""
        if text not in self.footnotes:
            self.footnotes.append(text)
        return self.footnotes.index(text) + 1


def build(board: Board, runs: Sequence[Run], aliases: Mapping[str, Sequence[str]] | None = None) -> Table:
    aliases = aliases or {}
    table = Table(board, [], [])
    _check_mixed_protocols(board, runs)
    if board.published:
        cols, rows = paper.PUBLISHED[board.published]
        for model in rows:
            cells = []
            for c in board.columns:
                v = paper.published_value(board.published, model, c.published) if c.published else None
                if v is None:
                    cells.append(Cell("blank"))
                    continue
                info = paper.COLUMNS[(board.published, c.published)]
                cell = Cell("published", v, n=info.n, protocol=paper.PUBLISHED_PROTOCOL, averaging=info.averaging)
                cell.notes = [table.note(paper.FOOTNOTES[k]) for k in paper.CELL_NOTES.get((board.published, model, c.published), ())]
                cells.append(cell)
            row = Row(model, "published", f"published ({paper.PUBLISHED_PROTOCOL} protocol)", cells)
            row.notes = [table.note(paper.FOOTNOTES[k]) for k in paper.CELL_NOTES.get((board.published, model, None), ())]
            table.rows.append(row)
    for run in runs:
        table.rows.append(_measured_row(table, board, run, published_model(run, aliases)))
    return table


def _metric(run: Run, col: Column) -> tuple[TaskResult | None, Metric | None]:
    """The column's task and its metric of exactly the column's name (never a similar one)."""
    t = run.task(col.task)
    if t is None:
        return None, None
    return t, next((m for m in t.metrics if m.name == col.metric), None)


def _check_mixed_protocols(board: Board, runs: Sequence[Run]) -> None:
    for col in board.columns:
        if col.protocol != "any":
            continue
        seen = {}
        for run in runs:
            _, m = _metric(run, col)
            if m is not None:
                seen.setdefault(m.protocol, []).append(run.label)
        if len(seen) > 1:
            detail = "; ".join(f"{p}: {', '.join(labels)}" for p, labels in seen.items())
            raise BoardRefused(f"board {board.name!r}, column {col.title!r} ({col.task}/{col.metric}): measured "
                               f"rows use different protocols ({detail}); refusing to put them in one column. "
                               "Give the column a protocol, or render the runs separately.")


def _measured_row(table: Table, board: Board, run: Run, pub_model: str | None) -> Row:
    cells = []
    variants, shots = set(), set()
    for col in board.columns:
        t, m = _metric(run, col)
        if t is None or m is None:
            cells.append(Cell("blank"))
            continue
        variants.add(str(t.variant or "-"))
        shots.add(str(t.shots))
        proto, avg = m.protocol, m.averaging
        if col.protocol != "any" and proto != col.protocol:
            cells.append(Cell("refused", protocol=proto, averaging=avg, notes=[table.note(
                f"refused: {run.label} measured {col.task}/{col.metric} with protocol {proto!r}; "
                f"the column {col.title!r} is protocol {col.protocol!r}")]))
            continue
        if col.averaging and avg != col.averaging:
            cells.append(Cell("refused", protocol=proto, averaging=avg, notes=[table.note(
                f"refused: {run.label} {col.task}/{col.metric} averages over {avg!r}; the column {col.title!r} over "
                f"{col.averaging!r}")]))
            continue
        n = m.n if m.n is not None else t.n
        cell = Cell("measured", float(m.value), m.ci_low, m.ci_high, n,
                    items_sha256=t.items_sha256, protocol=proto, averaging=avg,
                    grader_status=(m.grader_status or {}).get("status"))
        if col.shots is not None and t.shots != col.shots:
            cell.notes.append(table.note(f"measured with {t.shots} shots; the column's protocol is {col.shots}-shot"))
        if col.items_sha256 and t.items_sha256 != col.items_sha256:
            cell.notes.append(table.note(
                f"{col.title}: a different item set than the column's ({col.items}"
                + (f", n={col.n}" if col.n is not None else "") + "), e.g. a --limit run"))
        if pub_model and board.published and col.published:
            _delta(table, board, col, cell, t, pub_model)
        cells.append(cell)
    source = "measured"
    if variants:
        source += f" ({'/'.join(sorted(variants))}, {'/'.join(sorted(shots))}-shot)"
    row = Row(run.label, "measured", source, cells, run=str(run.source))
    if run.result.unverified:  # figures that could not be checked against their records
        row.notes.append(table.note(f"unverified: {run.label}'s figures were not checked against its records "
                                    f"({run.result.unverified})"))
    if pub_model:
        row.notes.append(table.note(f"{run.label} is the published model {pub_model}"))
    return row


def _delta(table: Table, board: Board, col: Column, cell: Cell, t: TaskResult, pub_model: str) -> None:
    pv = paper.published_value(board.published or "", pub_model, col.published or "")
    if pv is None or cell.value is None:
        return
    if col.delta == "none":
        cell.notes.append(table.note(f"no Δ for {col.title}: {col.no_delta or 'the item sets cannot be matched'}"))
    elif col.delta == "same-items":
        if t.items_sha256 == col.items_sha256:
            cell.delta = cell.value - pv
        else:
            cell.notes.append(table.note(f"no Δ for {col.title}: the measured item set is not the paper's "
                                         f"(items_sha256 differs)"))
    elif col.delta == "same-count":
        if t.n == col.n:
            cell.delta = cell.value - pv
            cell.notes.append(table.note(f"Δ for {col.title}: item set matched by task and count only ({col.n}); "
                                         "the data is not public, so no item hash can be pinned"))
        else:
            cell.notes.append(table.note(f"no Δ for {col.title}: {t.n} items measured, the paper's set has {col.n}"))
