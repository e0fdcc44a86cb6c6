"""Leaderboards: board definitions (data, in ``boards.toml``) rendered from results.json files.

A board is a list of columns; each column names the measured (task, metric, protocol,
averaging) that fills it, its item set, and the published column shown beside it. The renderer
reads only results.json files (never the data, never a model) and writes Markdown, CSV, LaTeX and
a PNG chart.

The work is split in three, in the order data flows:

* :mod:`chimed_eval.leaderboards.spec` — the board definitions (``Column``, ``Board``, ``load_boards``);
* :mod:`chimed_eval.leaderboards.table` — the runs (``load_results``) and the table of one board (``build``):
  published rows first, measured cells with interval and item count, refusals, deltas only for the
  same model on a matched item set;
* :mod:`chimed_eval.leaderboards.render` — Markdown, CSV, LaTeX, PNG (``render_board``, ``write_boards``).

This module keeps the names callers import from ``chimed_eval.leaderboards.boards``.
"""

from __future__ import annotations

from .render import (FORMATS, CSV_FIELDS, cell_text, column_legend, render_board, tex_escape, to_csv, to_latex,
                     to_markdown, write_boards, write_png)
from .spec import AVERAGING_WORDS, BOARDS_FILE, DELTA_POLICIES, Board, BoardSet, Column, load_boards
from .table import BoardRefused, Cell, Row, Run, Table, build, load_results, published_model

__all__ = ["AVERAGING_WORDS", "BOARDS_FILE", "CSV_FIELDS", "DELTA_POLICIES", "FORMATS", "Board", "BoardRefused",
           "BoardSet", "Cell", "Column", "Row", "Run", "Table", "build", "cell_text", "column_legend", "load_boards",
           "load_results", "published_model", "render_board", "tex_escape", "to_csv", "to_latex", "to_markdown",
           "write_boards", "write_png"]
