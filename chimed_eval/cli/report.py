"""``chimed-eval report RUN``: one-file HTML report of a run (figures, subjects, worst items)."""

from __future__ import annotations

import argparse
from pathlib import Path

NAME = "report"


def add_parser(sub: argparse._SubParsersAction) -> None:
    """The ``report`` subcommand and its flags."""
    rp = sub.add_parser(NAME, help="one-file HTML report of a run (figures, subjects, worst items)")
    rp.add_argument("run", type=Path, help="run output directory")
    rp.add_argument("--output", "-o", type=Path, default=None, help="HTML file (default: RUN/report.html)")
    rp.add_argument("--worst", type=int, default=10, help="worst items shown per task (default 10)")


def run(a: argparse.Namespace) -> int:
    """Write the HTML report of RUN and print where."""
    from chimed_eval.reports.html import write_html

    out = write_html(a.run, a.output, a.worst)
    print(f"wrote {out}")
    return 0
