"""``chimed_eval.evaluate``: the engine's :func:`~chimed_eval.engine.api.evaluate` with the plug-in
tasks' resolver handed in.

It lives in the cli layer because this layer is the only importer of the plug-ins (``tasks/``):
the Python API and the ``run`` command are the package's two doors, and both resolve task names
the same way (:func:`chimed_eval.tasks.factory.build_tasks`).
"""

from __future__ import annotations

from typing import Any, Sequence

from chimed_eval.core.types import RunResult
from chimed_eval.engine import api
from chimed_eval.task.base import Task


def evaluate(model: Any, tasks: Sequence[str | Task] | str | Task, **kwargs: Any) -> RunResult:
    """Evaluate ``model`` on ``tasks`` (names or Task objects); see
    :func:`chimed_eval.engine.api.evaluate` for every argument."""
    from chimed_eval.tasks.factory import build_tasks

    return api.evaluate(model, tasks, resolve_tasks=build_tasks, **kwargs)


evaluate.__doc__ = api.evaluate.__doc__
