"""``chimed-eval score``: recompute every metric from OUT/samples without the model (optionally
also on the items a contamination report does not flag); a rubric task's figures are recomputed
from its grading's verdict records (:mod:`chimed_eval.judge.rubric_rescore`)."""

from __future__ import annotations

import argparse
from pathlib import Path

from chimed_eval.cli.rebuild import task_getter
from chimed_eval.cli.summary import print_summary

NAME = "score"


def add_parser(sub: argparse._SubParsersAction) -> None:
    """The ``score`` subcommand and its flags."""
    s = sub.add_parser(NAME, help="recompute every metric from OUT/samples without the model")
    s.add_argument("output", type=Path)
    s.add_argument("--task-config", type=Path, default=None)
    s.add_argument("--all-metrics", action="store_true", help="print every figure (default: the headline figures of each task; all are in results.json)")
    s.add_argument("--allow-unvalidated-grader", action="store_true",
                   help="rubric tasks: print the figures of a grader that is not validated (results.json holds them anyway)")
    s.add_argument("--exclude-contaminated", type=Path, default=None, metavar="REPORT",
                   help="also score the items a `chimed-eval contamination` report does not flag: OUT/results.clean.json")


def run(a: argparse.Namespace) -> int:
    """Recompute OUT's figures from its records (and, with --exclude-contaminated, the clean ones)."""
    from chimed_eval.engine.rescore import rescore_run

    get = task_getter(a.task_config, a.output)
    if a.exclude_contaminated is not None:
        from chimed_eval.contamination.clean import score_clean

        return score_clean(a.output, a.exclude_contaminated, get)
    old = _old_results(a.output)
    run = rescore_run(a.output, get)
    from chimed_eval.judge.rubric_rescore import rescore_rubric_figures

    if rescore_rubric_figures(a.output, old) is not None:  # rubric figures: from their grading's verdict records
        from chimed_eval.runs.reader import read_run

        run = read_run(a.output)
    print_summary(run, a.all_metrics, a.allow_unvalidated_grader)
    return 0


def _old_results(out: Path):
    """OUT's run before re-scoring (its figures unverified), read only for which grading its rubric
    figures came from (never for a figure); None when absent or unreadable."""
    from chimed_eval.core.errors import ChimedEvalError
    from chimed_eval.runs.reader import read_run_if_any

    try:
        return read_run_if_any(out, verify=False)
    except (ChimedEvalError, OSError, ValueError):
        return None
