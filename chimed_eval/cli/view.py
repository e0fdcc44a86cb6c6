"""``chimed-eval view RUN...``: one self-contained HTML page comparing runs (charts, paired
differences, an item browser); ``--serve`` shows it on 127.0.0.1 (:mod:`chimed_eval.reports.viewer`)."""

from __future__ import annotations

import argparse
from pathlib import Path

NAME = "view"


def add_parser(sub: argparse._SubParsersAction) -> None:
    """The ``view`` subcommand and its flags."""
    v = sub.add_parser(NAME, help="one self-contained HTML page comparing runs (charts, paired differences, items)",
                       description="Write one HTML page (offline: data, script and Chart.js inline) comparing the "
                                   "runs: headline and per-subject figures with intervals, paired differences "
                                   "against the first run, reliability, position bias, extraction rules, judges, "
                                   "and a sortable, filterable item browser.")
    v.add_argument("runs", nargs="+", type=Path, help="run output directories (the first is the reference)")
    v.add_argument("--output", "-o", type=Path, default=Path("view.html"), help="HTML file (default: ./view.html)")
    v.add_argument("--seed", type=int, default=1234, help="seed of the paired bootstrap and the intervals")
    v.add_argument("--max-items", type=int, default=5000, help="items per task in the browser (default 5000)")
    v.add_argument("--serve", action="store_true", help="then serve the page on 127.0.0.1 until Ctrl-C")
    v.add_argument("--port", type=int, default=8765, help="port for --serve (default 8765; 0: any free one)")


def run(a: argparse.Namespace) -> int:
    """Write the page, print where, and with --serve serve it."""
    from chimed_eval.core.errors import ConfigError
    from chimed_eval.reports.viewer import serve, write_view

    if a.max_items < 1:
        raise ConfigError(f"--max-items must be at least 1, got {a.max_items}")
    out = write_view(a.runs, a.output, a.seed, a.max_items)
    print(f"wrote {out}")
    if a.serve:
        serve(out, a.port)
    return 0
