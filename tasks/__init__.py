"""Benchmark tasks. Each module registers its tasks in ``TASKS`` (importing them is cheap)."""

from __future__ import annotations

from chimed_eval.registry import Registry
from chimed_eval.task import Task

TASKS: Registry = Registry("task")


def get_task(name: str) -> Task:
    """A fresh task object for a registered name."""
    return TASKS.get(name)()


from . import exams  # noqa: E402,F401  (registers the exam tasks)
from . import ner  # noqa: E402,F401  (registers the NER tasks)
from . import generation  # noqa: E402,F401  (registers open QA and dialogue)
from . import scales  # noqa: E402,F401  (the attitude-scale task type)
