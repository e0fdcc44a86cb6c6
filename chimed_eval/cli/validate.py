"""``chimed-eval validate``: read every item of a task, check each option against its source text
(:mod:`chimed_eval.files.option_checks`), and show the rendered prompts with the gold as read
(:mod:`chimed_eval.reports.gold`), without a model.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from chimed_eval.core.kv import parse_kv
from chimed_eval.data.locations import default_data_dir
from chimed_eval.files.option_checks import option_problems

NAME = "validate"


def add_parser(sub: Any) -> None:
    """The ``validate`` subcommand and its flags."""
    v = sub.add_parser(NAME, help="read every item of your tasks, check each option against its source "
                                        "and print the first prompts (no model)")
    v.add_argument("--tasks", required=True, help="comma-separated task names or types (mcq, ner, ...)")
    v.add_argument("--task-args", default="", help="k=v,... for a task type (as for run)")
    v.add_argument("--task-config", type=Path, default=None, help="JSON/TOML file defining your own tasks")
    v.add_argument("--data-dir", default=None, help="for named tasks (as for run)")
    v.add_argument("--show", type=int, default=3, metavar="N", help="print the rendered prompt and the gold of the first N items")
    v.add_argument("--variant", default=None, help="prompt variant to render (default: the task's)")
    v.add_argument("--shots", type=int, default=0)


def run(a: Any) -> int:
    """Load each task, check every option of every item, print the first ``--show`` prompts;
    exit 1 when an option does not match its source, 0 otherwise."""
    from chimed_eval.tasks.factory import build_tasks

    from chimed_eval.task.options import TaskRunOptions
    from chimed_eval.reports.gold import gold_lines

    names = [t.strip() for t in a.tasks.split(",") if t.strip()]
    data_dir = Path(a.data_dir or default_data_dir())
    bad_total = 0
    for built in build_tasks(names, parse_kv(a.task_args, "--task-args"), a.task_config):
        task = built.task
        data = task.load(data_dir)
        problems = []
        for s in data.samples:
            where = f"{s.metadata.get('file')}:{s.metadata.get('line')}" if s.metadata and "line" in s.metadata else s.id
            problems += [f"{where}: {p}" for p in option_problems(s)]
        skipped = getattr(data, "skipped", None)
        print(f"{task.name}: {len(data.samples)} items read"
              + (f", {skipped['count']} rows skipped" if skipped else "")
              + (f", {len(problems)} options differ from their source" if problems
                 else ", every option matches its source" if any(s.choices for s in data.samples) else ""))
        for r in (skipped or {}).get("rows", []):
            print(f"  skipped {r['file']}:{r['line']}: {r['reason']}")
        for p in problems:
            print(f"  {p}")
        bad_total += len(problems)
        variant = a.variant or task.default_variant
        shown = data.samples[: max(0, a.show)]
        if shown:
            reqs = task.build_requests(data, shown, TaskRunOptions(variant, a.shots))
            seen: set[str] = set()
            for s, r in zip(shown, reqs):
                if s.id in seen:
                    continue
                seen.add(s.id)
                print(f"\n--- {task.name} {s.id} (variant {variant}) ---\n{r.context}")
                print("\n".join(gold_lines(s)))
    return 1 if bad_total else 0
