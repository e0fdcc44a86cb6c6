"""``chimed-eval score``: recompute every metric from OUT/samples without the model (optionally
also on the items a contamination report does not flag); a rubric task's figures are recomputed
from its grading's verdict records (:mod:`chimed_eval.judge.rubric_rescore`)."""

from __future__ import annotations

import argparse
from dataclasses import replace
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
    """Recompute OUT's figures from its records (and, with --exclude-contaminated, the clean ones).

    results.json is written once, after the rubric figures too were recomputed (every verdict
    checked): a refused ``score`` (exit 2) leaves it byte for byte as it was."""
    import sys

    from chimed_eval.engine.rescore import rescore_run
    from chimed_eval.judge.rubric_rescore import score_finish
    from chimed_eval.runs.reader import read_run

    get = task_getter(a.task_config, a.output)
    if a.exclude_contaminated is not None:
        from chimed_eval.contamination.clean import score_clean

        return score_clean(a.output, a.exclude_contaminated, get)
    notes: list[str] = []
    run = rescore_run(a.output, get, score_finish(a.output, notes))
    for line in notes:  # rubric figures kept, not recomputed: which grading, what to run
        print(line, file=sys.stderr)
    # the figures as written: the sample figures and the rubric figures put in beside them
    run = replace(run, tasks=read_run(a.output).tasks)
    print_summary(run, a.all_metrics, a.allow_unvalidated_grader)
    return 0
