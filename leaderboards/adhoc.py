"""An ad-hoc board: the runs' own tasks as columns, without a TOML file
(``chimed-eval leaderboard RUN... [--tasks X,Y] [--metric acc]``).

Each column is one task; its metric is ``--metric`` where given, else the figure the task is
summed up by (:func:`chimed_eval.metrics.primary_metric`: ``acc`` for multiple choice, the paper's
ROUGE-L for generations, ``f1`` for NER, as the pages' headline charts) in the first run holding it. The column's
protocol is ``any``: runs that measured the same figure under different protocols are refused
together (:func:`chimed_eval.leaderboards.table.build`), never placed side by side.
"""

from __future__ import annotations

from pathlib import Path
from typing import Sequence

from chimed_eval.core.errors import ConfigError
from chimed_eval.metrics import primary_metric

from .spec import Board, BoardSet, Column
from .table import Run

ADHOC = "adhoc"


def adhoc_board(runs: Sequence[Run], tasks: Sequence[str] | None = None, metric: str | None = None) -> Board:
    """The board of ``tasks`` (default: every task of the runs, in the order first seen) by
    ``metric`` (default: each task's headline figure). A task no run holds, or a metric no run
    reports for a task, is a ConfigError naming what the runs do have."""
    seen: list[str] = []
    for r in runs:
        seen += [t.task for t in r.result.tasks if t.task not in seen]
    wanted = list(tasks) if tasks else seen
    missing = [t for t in wanted if t not in seen]
    if missing:
        raise ConfigError(f"task(s) {', '.join(missing)} in none of the runs; they hold: {', '.join(seen) or 'none'}")
    cols = []
    for task in wanted:
        held = [t for r in runs for t in r.result.tasks if t.task == task]
        names = [m.name for t in held for m in t.metrics]
        if metric is not None:
            if metric not in names:
                raise ConfigError(f"no run reports metric {metric!r} for task {task!r}; it has: "
                                  f"{', '.join(dict.fromkeys(names))}")
            name = metric
        else:
            head = primary_metric(held[0].metrics)
            if head is None:
                raise ConfigError(f"task {task!r} reports no figure")
            name = head.name
        cols.append(Column(title=task if metric else f"{task} {name}", task=task, metric=name, protocol="any"))
    title = "Ad-hoc board: " + ", ".join(c.title for c in cols)
    return Board(ADHOC, title, tuple(cols), description="built from the runs given, without a board file",
                 in_all=False)


def adhoc_boards(runs: Sequence[Run], tasks: Sequence[str] | None, metric: str | None,
                 aliases: BoardSet | None = None) -> BoardSet:
    """A :class:`BoardSet` holding only the ad-hoc board (``aliases`` kept from the known boards,
    so a published model is still recognised)."""
    board = adhoc_board(runs, tasks, metric)
    return BoardSet({ADHOC: board}, aliases.aliases if aliases else {}, Path("(ad hoc: --tasks/--metric)"))
