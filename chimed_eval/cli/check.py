"""``chimed-eval check``: a run against a baseline (exit codes in :data:`CHECK_EPILOG`), or
``--save-baseline`` to write one."""

from __future__ import annotations

import argparse
from pathlib import Path

from chimed_eval.core.errors import ConfigError
from chimed_eval.core.kv import split_csv

NAME = "check"
CHECK_EPILOG = """exit codes:
  0  every baseline metric within tolerance; item sets and prompts unchanged
  1  regression: a metric outside the baseline's 95%% interval (or --tolerance), or missing
  2  usage or configuration error, or a baseline or results file it cannot read (no tasks or
     metrics, a non-finite value, malformed items, an interval that does not contain its value,
     reaches outside the metric's range or covers all of it)
  3  an item set changed (hash of the item ids, or a task missing) or an item's prompt changed
     (prompt hash); takes precedence over 1
"""


def add_parser(sub: argparse._SubParsersAction) -> None:
    """The ``check`` subcommand and its flags."""
    ck = sub.add_parser(NAME, help="regression check of a run against a baseline (exit codes below)",
                        epilog=CHECK_EPILOG, formatter_class=argparse.RawDescriptionHelpFormatter)
    ck.add_argument("results", type=Path, help="run output directory or results.json")
    ck.add_argument("--baseline", type=Path, default=None,
                    help="baseline file (--save-baseline), run directory or results.json")
    ck.add_argument("--tolerance", default=None,
                    help="allowed |change| in points: NUMBER, METRIC=NUMBER, TASK:METRIC=NUMBER, comma-separated "
                         "(default: the baseline's 95%% interval)")
    ck.add_argument("--all", action="store_true", help="print every check, not only what moved")
    ck.add_argument("--save-baseline", type=Path, default=None, metavar="FILE",
                    help="write a baseline (metrics and hashes only) from RESULTS to FILE and exit")
    ck.add_argument("--tasks", default=None, help="with --save-baseline: only these tasks (comma-separated)")


def run(a: argparse.Namespace) -> int:
    """Write a baseline, or check RESULTS against one; the exit code says what moved."""
    from chimed_eval.reports.baseline import save_baseline
    from chimed_eval.reports.check import check_against_baseline, parse_tolerance

    if a.save_baseline is not None:
        doc = save_baseline(a.results, a.save_baseline, split_csv(a.tasks) or None)
        print(f"baseline of {len(doc['tasks'])} task(s) written to {a.save_baseline}")
        return 0
    if a.baseline is None:
        raise ConfigError("check needs --baseline BASELINE (or --save-baseline FILE to write one)")
    rep = check_against_baseline(a.results, a.baseline, parse_tolerance(a.tolerance))
    print(f"check {rep.results} against {rep.baseline}")
    print(rep.table(a.all), end="")
    return rep.exit_code
