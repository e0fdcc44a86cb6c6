"""``chimed-eval export RUN...``: the runs' figures (or with ``--items`` their records) as one tidy
table, CSV, JSONL or Parquet (:mod:`chimed_eval.reports.tidy`)."""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

NAME = "export"


def add_parser(sub: argparse._SubParsersAction) -> None:
    """The ``export`` subcommand and its flags."""
    ex = sub.add_parser(NAME, help="runs' figures (or records, --items) as one tidy table: CSV, JSONL or Parquet",
                        description="One row per (run, task, metric): run, model, task, metric, value, ci_low, "
                                    "ci_high, ci_method, n, averaging, protocol, grader_status (a rubric grader's figures: "
                                    "validated, below-threshold or unvalidated), tokenization, variant, shots, seed, "
                                    "integrity. With --items, one row per record.")
    ex.add_argument("runs", nargs="+", type=Path, help="run output directories or results.json files")
    ex.add_argument("--format", "-f", choices=("csv", "jsonl", "parquet"), default=None,
                    help="default: from --output's suffix, else csv")
    ex.add_argument("--items", action="store_true", help="one row per record (prompt, output, extracted answer, "
                                                         "gold, score...) instead of one per figure")
    ex.add_argument("--cases", action="store_true", help="one row per (task, judging, judge, case, criterion) of the "
                                                         "judges' per-case scores (cmb-clin: which cases scored low)")
    ex.add_argument("--output", "-o", type=Path, default=None, help="file to write (default: print CSV/JSONL)")


def run(a: argparse.Namespace) -> int:
    """Print the table, or write it and say where."""
    from chimed_eval.reports.tidy import export_table

    got = export_table(a.runs, a.output, a.format, a.items, cases=a.cases)
    if a.output is None:
        sys.stdout.write(str(got))
    else:
        print(f"wrote {got}", file=sys.stderr)
    return 0
