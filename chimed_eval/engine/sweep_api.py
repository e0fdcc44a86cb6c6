"""The Python door of sweeps: ``chimed_eval.sweep(models, tasks, output, ...)`` (:func:`sweep_models`).

It takes what :func:`chimed_eval.engine.api.evaluate` takes (the backend, its args, the data, a
:class:`~chimed_eval.engine.api.RunConfig` or its fields as keywords) plus the sweep's own
options (where Ray is, workers and resources per model, shards, retries), and runs
:func:`chimed_eval.engine.sweep.run_sweep`: the same code, layout, resume and summary as
``chimed-eval sweep``. It returns the :class:`~chimed_eval.engine.sweep.SweepResult` (per unit its
status, directory and run; the summary rows), so a notebook never has to read summary.json.

Ray is imported when the sweep runs, never when this module is (``import chimed_eval`` stays
light); without ``ray_address`` a local Ray instance is started and shut down afterwards (one
already initialised in the process is used as it is).
"""

from __future__ import annotations

from pathlib import Path
from typing import Any, Callable, Mapping, Sequence

from chimed_eval.core.errors import ConfigError
from chimed_eval.engine.api import RunConfig, TaskResolver, with_options
from chimed_eval.engine.distribute import Outcome, RunSpec
from chimed_eval.engine.sweep import SweepResult, run_sweep

#: the keys of ``resources=`` (what each worker asks Ray for), by the names Ray gives them
RESOURCE_KEYS = ("CPU", "GPU")


def worker_resources(resources: Mapping[str, float] | None) -> tuple[float, float]:
    """(CPUs, GPUs) per worker from ``{"CPU": c, "GPU": g}`` (either may be left out: 1 CPU, 0
    GPUs); an unknown key or a negative or non-numeric amount is a ConfigError naming it."""
    cpus, gpus = 1.0, 0.0
    for key, value in (resources or {}).items():
        name = str(key).upper()
        if name not in RESOURCE_KEYS:
            raise ConfigError(f"sweep(resources=...): unknown resource {key!r}; known: {', '.join(RESOURCE_KEYS)} "
                              "(per worker, as Ray names them)")
        if isinstance(value, bool) or not isinstance(value, (int, float)) or not value >= 0:
            raise ConfigError(f"sweep(resources=...): {key}={value!r}: expected a number >= 0")
        if name == "CPU":
            cpus = float(value)
        else:
            gpus = float(value)
    return cpus, gpus


def _names(value: Sequence[str] | str, what: str) -> list[str]:
    """A list of names from a list or a comma-separated string (as ``--models``/``--tasks``)."""
    items = value.split(",") if isinstance(value, str) else list(value)
    if any(not isinstance(x, str) for x in items):
        raise TypeError(f"sweep({what}=...): expected names (strings), got "
                        f"{type(next(x for x in items if not isinstance(x, str))).__name__}")
    names = [x.strip() for x in items if x.strip()]
    if not names:
        raise ConfigError(f"sweep({what}=...): no {what} given")
    return names


def sweep_models(models: Sequence[str] | str, tasks: Sequence[str] | str, output: str | Path, *, backend: str = "hf",
          model_args: Mapping[str, str] | None = None, data_dir: str | Path | None = None,
          config: RunConfig | None = None, ray_address: str | None = None, workers: int = 1,
          resources: Mapping[str, float] | None = None, shards: int = 1, max_retries: int = 3,
          resolve_tasks: TaskResolver | None = None, get_task: Callable[[Path], Callable[[str], Any]] | None = None,
          on_result: Callable[[Outcome], None] | None = None, **options: Any) -> SweepResult:
    """Evaluate every model on every task as units on Ray into ``output`` and return the sweep's
    :class:`~chimed_eval.engine.sweep.SweepResult`.

    ``models``, ``tasks``: names (a list, or a comma-separated string). ``output``: the sweep
    directory (``OUTPUT/<model>/<task>/`` per unit, ``summary.csv``/``summary.json``); the same
    call again resumes it. ``backend``, ``model_args``, ``data_dir``, ``config`` and ``options``
    (the fields of :class:`RunConfig`: ``limit=``, ``shots=``, ``max_cost=``, ...) are those of
    ``evaluate`` and apply to every unit. ``ray_address``: a running Ray cluster (``"auto"``,
    ``"ray://host:10001"``); None starts a local instance. ``workers``: Ray workers per model, each
    loading the model once; ``resources``: what each worker asks Ray for, ``{"CPU": 1, "GPU": 0}``;
    ``shards``: units per (model, task), merged into its directory; ``max_retries``: restarts of a
    worker whose process dies. ``on_result(outcome)``: called as each unit ends.

    A spent budget raises :class:`~chimed_eval.core.errors.BudgetReached` after the summary is
    written; its ``result`` attribute is the SweepResult so far. Task names need ``resolve_tasks``
    and ``get_task`` (``chimed_eval.sweep`` hands in the plug-in tasks')."""
    if resolve_tasks is None or get_task is None:
        raise ConfigError("task names need a resolver (chimed_eval.sweep hands in the plug-in tasks)")
    if isinstance(workers, bool) or not isinstance(workers, int) or workers < 1:
        raise ConfigError(f"sweep(workers={workers!r}): expected an integer >= 1 (Ray workers per model)")
    if isinstance(shards, bool) or not isinstance(shards, int) or shards < 1:
        raise ConfigError(f"sweep(shards={shards!r}): expected an integer >= 1")
    if isinstance(max_retries, bool) or not isinstance(max_retries, int) or max_retries < 0:
        raise ConfigError(f"sweep(max_retries={max_retries!r}): expected an integer >= 0")
    cpus, gpus = worker_resources(resources)
    run_config = with_options(config, options)
    if run_config.shard is not None:
        raise ConfigError("sweep() sets each unit's shard itself: use shards=N, not shard=")
    from chimed_eval.backends import check_backend_args

    args = {str(k): str(v) for k, v in (model_args or {}).items()}
    check_backend_args(backend, args)  # a missing library or a bad arg: refused before OUTPUT is made
    spec = RunSpec(backend=backend, model_args=args, data_dir=None if data_dir is None else str(data_dir),
                   config=run_config, resolve_tasks=resolve_tasks)
    return run_sweep(_names(models, "models"), _names(tasks, "tasks"), Path(output), spec, get_task=get_task,
                     shards=shards, address=ray_address, workers_per_model=workers, cpus_per_model=cpus,
                     gpus_per_model=gpus, max_retries=max_retries, on_result=on_result)
