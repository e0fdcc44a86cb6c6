"""``chimed-eval leaderboard``: render boards (the paper's tables and others) from results.json files,
as Markdown, CSV, LaTeX and a PNG chart (matplotlib only when a PNG is written). Runs given without
a board named make an ad-hoc board of their own tasks (``--tasks``, ``--metric``; no TOML)."""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from chimed_eval.core.errors import ConfigError
from chimed_eval.core.kv import split_csv

NAME = "leaderboard"


def add_parser(sub: argparse._SubParsersAction) -> None:
    """The ``leaderboard`` subcommand and its flags."""
    lb = sub.add_parser(NAME, help="render boards (the paper's tables and others) from results.json files",
                        description="Render boards from results.json files: published rows beside measured ones, "
                                    "as Markdown (also printed), CSV, LaTeX and a PNG chart.")
    lb.add_argument("results", nargs="*", type=Path, help="results.json files or run output directories")
    lb.add_argument("--board", default=None,
                    help="paper-table-a | paper-table-b | paper-table-c | ... | all; default: an ad-hoc board of "
                         "the runs' own tasks (all boards with --list)")
    lb.add_argument("--tasks", default=None, help="ad-hoc board: these tasks as columns (comma-separated; default: "
                                                   "every task of the runs)")
    lb.add_argument("--metric", default=None, help="ad-hoc board: this figure in every column (default: each "
                                                    "task's headline figure, e.g. acc)")
    lb.add_argument("--output-dir", "-o", type=Path, default=Path("leaderboards"),
                    help="where to write <board>.md/.csv/.tex/.png (default: ./leaderboards)")
    lb.add_argument("--formats", default="md,csv,tex,png", help="comma-separated subset of md,csv,tex,png")
    lb.add_argument("--boards", type=Path, default=None, help="your own board definitions (TOML or JSON)")
    lb.add_argument("--list", action="store_true", help="list the boards and exit")
    lb.add_argument("--no-write", action="store_true", help="only print the Markdown")


def run(a: argparse.Namespace) -> int:
    """List the boards, or render them from the results given (printed, and written unless --no-write)."""
    from chimed_eval.leaderboards.render import render_board, write_boards
    from chimed_eval.leaderboards.spec import load_boards
    from chimed_eval.leaderboards.table import load_results

    boards = load_boards(a.boards)
    if a.list:
        for b in boards.boards.values():
            cols = ", ".join(f"{c.title}={c.task}/{c.metric}({c.protocol})" for c in b.columns)
            print(f"{b.name:24} {b.title}\n{'':24} {cols}")
        return 0
    if not a.results:
        raise ConfigError("leaderboard needs at least one results.json or run directory (or --list)")
    runs = load_results(a.results)
    board = a.board
    if a.tasks or a.metric or (board is None and a.boards is None):  # the runs' own tasks, no board file
        if board is not None:
            raise ConfigError("--tasks/--metric build an ad-hoc board; they do not combine with --board")
        from chimed_eval.leaderboards.adhoc import ADHOC, adhoc_boards

        boards, board = adhoc_boards(runs, split_csv(a.tasks) or None, a.metric, boards), ADHOC
    board = board or "all"
    if a.no_write:
        print(render_board(board, runs, boards), end="")
        return 0
    md, written = write_boards(board, runs, a.output_dir, split_csv(a.formats), boards)
    print(md, end="")
    for p in written:
        print(f"wrote {p}", file=sys.stderr)
    return 0
