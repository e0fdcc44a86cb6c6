"""``chimed-eval tasks``: list the named tasks, whether their data is present under the data dir
(and how many items it holds), and the task types for your own data (``--describe TYPE``: the
arguments a type takes)."""

from __future__ import annotations

import argparse
from dataclasses import dataclass
from pathlib import Path

NAME = "tasks"


def add_parser(sub: argparse._SubParsersAction) -> None:
    """The ``tasks`` subcommand and its flags."""
    t = sub.add_parser(NAME, help="list tasks (with whether their data is present) and task types")
    t.add_argument("--describe", metavar="NAME", default=None, help="the arguments a task type takes (mcq, ner, scale, ...)")
    t.add_argument("--data-dir", default=None,
                   help="where to look for the data (default: as `run` finds it: $CHIMED_EVAL_DATA, ./data or ../shared/data)")
    t.add_argument("--no-data-check", action="store_true", help="list the tasks without loading their data")


@dataclass(frozen=True)
class DataStatus:
    """Whether a task's data loads from a data dir: ``items`` (None when it does not) and why not."""

    task: str
    items: int | None
    why: str = ""

    @property
    def present(self) -> bool:
        return self.items is not None


def task_data_status(name: str, data_dir: Path) -> DataStatus:
    """Load task ``name`` from ``data_dir`` as a run would (the same loader, the same checks): its
    item count, or the first line of the error that a run would stop on."""
    from chimed_eval.core.errors import ChimedEvalError
    from chimed_eval.tasks import get_task

    try:
        return DataStatus(name, len(get_task(name).load(data_dir).samples))
    except (ChimedEvalError, OSError, ImportError) as exc:
        return DataStatus(name, None, str(exc).splitlines()[0] if str(exc) else type(exc).__name__)


def run(a: argparse.Namespace) -> int:
    """Print the named tasks with their data status, and the task types (or one type's arguments)."""
    from chimed_eval.data.locations import default_data_dir
    from chimed_eval.tasks import TASKS
    from chimed_eval.tasks.factory import TASK_TYPES, describe

    if a.describe:
        print(describe(a.describe))
        return 0
    data_dir = Path(a.data_dir or default_data_dir())
    if not a.no_data_check:
        print(f"data dir: {data_dir}  (data: 'yes N' = present, N items; 'no' = missing: chimed-eval data)\n")
    for n in TASKS:
        if a.no_data_check:
            print(f"{n:24} {TASKS.help(n)}")
            continue
        st = task_data_status(n, data_dir)
        mark = f"yes {st.items:>5}" if st.present else "no       "
        print(f"{n:24} {mark}  {TASKS.help(n)}")
    print("\nYour own data (--tasks TYPE --task-args k=v,... or a --task-config file; "
          "chimed-eval tasks --describe TYPE lists the keys):")
    for n in TASK_TYPES:
        print(f"{n:24} {TASK_TYPES.help(n)}")
    return 0
