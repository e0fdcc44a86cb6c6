"""The rubric grader's flags and its run, shared by ``chimed-eval judge`` and ``chimed-eval run --judge``.

A rubric task (``--tasks rubric``) is graded per criterion (:mod:`chimed_eval.judge.rubric`) by the
``--judge`` models; ``--grader-labels FILE`` validates the grader against human labels (macro F1,
``--grader-min-f1``, default 0.7), and a figure from a grader that is not validated is printed only
with ``--allow-unvalidated-grader`` (it is always written, labelled, to the results).
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from chimed_eval.core.errors import ConfigError


def add_grader_flags(p: argparse.ArgumentParser) -> None:
    """``--grader-labels``, ``--grader-min-f1``, ``--allow-unvalidated-grader``."""
    from chimed_eval.judge.rubric_figures import DEFAULT_MIN_F1

    p.add_argument("--grader-labels", type=Path, default=None, metavar="FILE",
                   help="rubric tasks: human labels per (response, criterion), JSONL {id, response, criterion, met}; "
                        "the grader's agreement (macro F1) validates its figures")
    p.add_argument("--grader-min-f1", type=float, default=DEFAULT_MIN_F1,
                   help=f"rubric tasks: the macro F1 a grader needs to count as validated (default {DEFAULT_MIN_F1})")
    p.add_argument("--allow-unvalidated-grader", action="store_true",
                   help="rubric tasks: print the figures of a grader that is not validated (or below the threshold)")


def check_grader_flags(a: argparse.Namespace) -> None:
    if not 0.0 < a.grader_min_f1 <= 1.0:
        raise ConfigError(f"--grader-min-f1 {a.grader_min_f1}: expected a number in (0, 1]")
    if a.grader_labels is not None and not a.grader_labels.is_file():
        raise ConfigError(f"--grader-labels {a.grader_labels}: no such file")


def grade(out: Path, settings, a: argparse.Namespace, progress: bool) -> int:
    """Grade OUT's rubric tasks and print the table (figures withheld unless validated or allowed)."""
    from chimed_eval.judge.rubric import grade as run_grading
    from chimed_eval.reports.rubric import rubric_summary_lines

    check_grader_flags(a)
    try:
        res = run_grading(out, settings, a.grader_labels, a.grader_min_f1, progress=progress)
    except KeyboardInterrupt:
        print(f"\nchimed-eval: interrupted; the verdicts finished so far are saved under {out / 'judge'}/. "
              "Run the same command again to resume.", file=sys.stderr)
        return 130
    print("\n".join(rubric_summary_lines(res, a.allow_unvalidated_grader)))
    print(f"\nrubric results: {res['path']}")
    return 0
