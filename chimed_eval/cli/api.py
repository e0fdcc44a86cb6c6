"""``chimed_eval.evaluate``: the engine's :func:`~chimed_eval.engine.api.evaluate` with the plug-in
tasks' resolver handed in, and the judges of ``run --judge`` after it; ``chimed_eval.sweep``: the
engine's :func:`~chimed_eval.engine.sweep_api.sweep_models` with the same resolver.

It lives in the cli layer because this layer is the only importer of the plug-ins (``tasks/``):
the Python API and the ``run`` command are the package's two doors, and both resolve task names
the same way (:func:`chimed_eval.tasks.factory.build_tasks`).
"""

from __future__ import annotations

import dataclasses
from pathlib import Path
from typing import Any, Mapping, Sequence

from chimed_eval.core.errors import ConfigError
from chimed_eval.core.types import RunResult
from chimed_eval.engine import api
from chimed_eval.task.base import Task


def evaluate(model: Any, tasks: Sequence[str | Task] | str | Task, *, judge: str | Sequence[str] | None = None,
             judge_backend: str = "hf", judge_args: Mapping[str, str] | None = None, judge_verdict: str = "generate",
             judge_rubric: str | None = None, grader_labels: str | Path | None = None, grader_min_f1: float | None = None,
             **kwargs: Any) -> RunResult:
    """Evaluate ``model`` on ``tasks`` (names or Task objects); see
    :func:`chimed_eval.engine.api.evaluate` for every other argument.

    ``judge``: judge model(s) (``run --judge``), on ``judge_backend`` with ``judge_args``, once the
    run succeeds (it needs ``output=``: the verdicts are saved under ``OUT/judge/``): open-QA and
    dialogue tasks (``cmb-clin`` too) are judged pointwise (``judge_rubric``: default ``cmb-clin``
    when only cmb-clin is judged, else ``medical``), ``rubric`` tasks graded per criterion, validated
    against ``grader_labels`` (``grader_min_f1``, default 0.7). The results, by results file, are
    the returned run's ``judgements``; a rubric figure's grader status is in each of them, and the
    returned run's figures include the rubric figures, each with its ``grader_status``."""
    from chimed_eval.tasks.factory import build_tasks

    if judge is not None and kwargs.get("output") is None:
        raise ConfigError("judge= needs output= (the verdicts are saved beside the run's records, under OUT/judge/)")
    run = api.evaluate(model, tasks, resolve_tasks=build_tasks, **kwargs)
    if judge is None:
        return run
    found = _judge(Path(kwargs["output"]), run, judge, judge_backend, dict(judge_args or {}), judge_verdict,
                   judge_rubric, grader_labels, grader_min_f1, kwargs)
    if any(r.get("protocol") == "judge-rubric" for r in found.values()):
        from chimed_eval.runs.reader import read_run

        # the grading wrote its figures (with their grader_status) into results.json: the run's figures are those now
        run = dataclasses.replace(run, tasks=read_run(Path(kwargs["output"])).tasks)
    return dataclasses.replace(run, judgements=found)


def _judge(out: Path, run: RunResult, judge: str | Sequence[str], backend: str, args: dict[str, str], verdict: str,
           rubric: str | None, labels: str | Path | None, min_f1: float | None, kwargs: Mapping[str, Any]) -> dict:
    from chimed_eval.cli.judge import default_rubric
    from chimed_eval.judge.inputs import generation_tasks
    from chimed_eval.judge.pipeline import run_judges
    from chimed_eval.judge.rubric import grade, rubric_tasks
    from chimed_eval.judge.rubric_figures import DEFAULT_MIN_F1
    from chimed_eval.judge.store import JudgeSettings

    from chimed_eval.backends import run_cache

    judges = (judge,) if isinstance(judge, str) else tuple(judge)
    names = [t.task for t in run.tasks]
    common = dict(judges=judges, backend=backend, judge_args=args, verdict=verdict, seed=int(kwargs.get("seed", 1234)),
                  batch_size=int(kwargs.get("batch_size", 8)), device=kwargs.get("device"),
                  cache=run_cache(backend, False, None))
    found: dict[str, Any] = {}
    graded = [t for t in rubric_tasks(out, None) if t in names]
    if graded:
        res = grade(out, JudgeSettings(protocol="rubric", tasks=tuple(graded), **common),
                    Path(labels) if labels is not None else None,
                    DEFAULT_MIN_F1 if min_f1 is None else min_f1, progress=False)
        found[res["path"]] = res
    judged = [t for t in generation_tasks(out, None, required=False) if t in names]
    if judged:
        res = run_judges(out, JudgeSettings(protocol="pointwise", rubric=rubric or default_rubric(judged),
                                            tasks=tuple(judged), **common), progress=False)
        found[res["path"]] = res
    return found


def sweep_models(models: Sequence[str] | str, tasks: Sequence[str] | str, output: str | Path, **kwargs: Any) -> Any:
    """Evaluate many models on many tasks on Ray (``chimed-eval sweep``) with the plug-in tasks'
    resolver handed in; see :func:`chimed_eval.engine.sweep_api.sweep_models` for every argument. Returns
    the :class:`~chimed_eval.engine.sweep.SweepResult`."""
    from chimed_eval.cli.rebuild import task_getter
    from chimed_eval.engine.api import RunConfig
    from chimed_eval.engine.sweep_api import sweep_models as run
    from chimed_eval.tasks.factory import build_tasks

    config = kwargs.get("config")
    task_config = kwargs.get("task_config", config.task_config if isinstance(config, RunConfig) else None)
    return run(models, tasks, output, resolve_tasks=build_tasks,
               get_task=lambda d: task_getter(None if task_config is None else Path(task_config), d), **kwargs)


evaluate.__doc__ = (evaluate.__doc__ or "") + "\n\n" + (api.evaluate.__doc__ or "")
