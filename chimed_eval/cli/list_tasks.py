"""``chimed-eval tasks``: list the named tasks and the task types for your own data
(``--describe TYPE``: the arguments a type takes)."""

from __future__ import annotations

import argparse

NAME = "tasks"


def add_parser(sub: argparse._SubParsersAction) -> None:
    """The ``tasks`` subcommand and its flags."""
    t = sub.add_parser(NAME, help="list tasks and task types")
    t.add_argument("--describe", metavar="NAME", default=None, help="the arguments a task type takes (mcq, ner, scale, ...)")


def run(a: argparse.Namespace) -> int:
    """Print the named tasks and the task types (or one type's arguments)."""
    from chimed_eval.tasks import TASKS
    from chimed_eval.tasks.factory import TASK_TYPES, describe

    if a.describe:
        print(describe(a.describe))
        return 0
    for n in TASKS:
        print(f"{n:24} {TASKS.help(n)}")
    print("\nYour own data (--tasks TYPE --task-args k=v,... or a --task-config file; "
          "chimed-eval tasks --describe TYPE lists the keys):")
    for n in TASK_TYPES:
        print(f"{n:24} {TASK_TYPES.help(n)}")
    return 0
