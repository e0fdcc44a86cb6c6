"""Benchmark tasks. Each module registers its tasks in ``TASKS`` and its configurable task types
in :data:`chimed_eval.tasks.factory.TASK_TYPES` (importing them is cheap); every module of this package is
imported, so a new kind of task is one new file."""

from __future__ import annotations

if __name__ != "chimed_eval.tasks":  # one name only: a module loaded twice would split the registries
    raise ImportError(f"import chimed_eval.tasks, not {__name__} (this folder installs under chimed_eval)")

from chimed_eval.core.registry import Registry
from chimed_eval.task.base import Task

TASKS: Registry = Registry("task")


def get_task(name: str) -> Task:
    """A fresh task object for a registered name."""
    return TASKS.get(name)()


def _import_all() -> None:
    import importlib
    import pkgutil

    for m in pkgutil.iter_modules(__path__):
        importlib.import_module(f"{__name__}.{m.name}")


_import_all()
