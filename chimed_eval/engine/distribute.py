"""Units of evaluation on Ray: one actor per model worker, loaded once, serving its units in-process.

A *unit* is one ordinary run: a model, some tasks, an optional shard ``I/N`` and an output
directory. Each unit is run by :func:`chimed_eval.engine.api.plan_run` / ``run_plan`` inside a Ray
actor (:class:`UnitWorker`) that holds the model's backend: the first unit opens it, the others
borrow it, so a model loads once per worker, not once per unit. Because a unit is the same code
with the same settings as ``chimed-eval run``, its records and figures are those of the run made
alone; because the runner resumes from its records, a unit is idempotent.

Ray does the rest (this project runs on an existing engine, not a scheduler of its own):

* resources: each worker asks for ``cpus`` and ``gpus`` (Ray sets ``CUDA_VISIBLE_DEVICES`` per
  worker, so a vLLM engine with ``tensor_parallel_size`` T asks for T GPUs);
* retries: an actor whose process dies is restarted (``max_restarts``) and the calls it held are
  retried on the new process (``max_task_retries``); the unit resumes from what it had written
  (the output lock is an ``flock``, released by the dead process);
* the driver keeps at most ``in_flight`` units queued per worker, so a spent budget stops
  scheduling after the units already under way, and kills each model's workers once its units are
  done (freeing their resources for the next model).

Without ``address`` a local Ray instance is started (and shut down afterwards).
"""

from __future__ import annotations

import dataclasses
import os
import sys
import time
from collections import deque
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable, Mapping, Sequence

from chimed_eval.core.errors import BudgetReached, ChimedEvalError, ConfigError

INSTALL_HINT = "Ray is not installed: pip install 'chimed-eval[ray]'"


@dataclass(frozen=True)
class Unit:
    """One run: ``model`` on ``tasks`` (shard ``shard`` of each, or all items) into ``output``;
    ``budget``: this unit's (max_cost, max_tokens), or None."""

    model: str
    tasks: tuple[str, ...]
    output: Path
    shard: str | None = None
    budget: tuple[float | None, int | None] | None = None

    @property
    def label(self) -> str:
        return f"{self.model} {','.join(self.tasks)}" + (f" shard {self.shard}" if self.shard else "")


@dataclass(frozen=True)
class RunSpec:
    """What every unit shares: the backend and its args, the data, the run options and the task
    resolver (picklable: a module-level function)."""

    backend: str
    model_args: Mapping[str, str]
    data_dir: str | None
    config: Any  # chimed_eval.engine.api.RunConfig
    resolve_tasks: Callable[..., Any] | None


@dataclass(frozen=True)
class Outcome:
    """How a unit ended: ``done``, ``budget`` (its budget stopped it; records kept) or ``failed``
    (``message`` says why); ``seconds``: its time inside the worker; ``usage``: its usage.json."""

    unit: Unit
    status: str
    seconds: float = 0.0
    pid: int | None = None
    message: str | None = None
    usage: Mapping[str, Any] | None = field(default=None, repr=False)


class UnitWorker:
    """A Ray actor's body: one model, its backend opened by the first unit and lent to the next."""

    def __init__(self, model: str, spec: RunSpec) -> None:
        self.model, self.spec = model, spec
        self._backend: Any = None

    def pid(self) -> int:
        return os.getpid()

    def run_unit(self, unit: Unit) -> Outcome:
        """Plan and run the unit as ``chimed-eval run`` would (no progress bar); errors of the
        unit's own (a bad task, a budget) come back as an Outcome, not as a worker failure."""
        from chimed_eval.engine.api import plan_run, run_plan

        started = time.perf_counter()
        cost, tokens = unit.budget or (None, None)
        config = dataclasses.replace(self.spec.config, shard=unit.shard, progress=False, max_cost=cost,
                                     max_tokens=tokens)
        try:
            plan = plan_run(self.model, list(unit.tasks), backend=self.spec.backend,
                            model_args=self.spec.model_args, data_dir=self.spec.data_dir, output=unit.output,
                            config=config, resolve_tasks=self.spec.resolve_tasks)
            result = run_plan(dataclasses.replace(plan, backend_factory=self._shared(plan.backend_factory)))
        except BudgetReached as exc:
            return Outcome(unit, "budget", time.perf_counter() - started, os.getpid(), str(exc))
        except (ChimedEvalError, OSError) as exc:
            return Outcome(unit, "failed", time.perf_counter() - started, os.getpid(), str(exc))
        return Outcome(unit, "done", time.perf_counter() - started, os.getpid(), usage=result.usage)

    def _shared(self, factory: Callable[..., Any]) -> Callable[..., Any]:
        def open_shared(script: Any = None) -> Any:
            if script is not None:  # the fake oracle answers from the unit's own script: nothing to load
                return factory(script=script)
            if self._backend is None:
                self._backend = factory()
            from chimed_eval.engine.api import _Borrowed  # close() leaves it open for the next unit

            return _Borrowed(self._backend)

        return open_shared

    def close(self) -> None:
        if self._backend is not None:
            self._backend.close()
            self._backend = None


def import_ray() -> Any:
    try:
        import ray
    except ImportError:
        raise ConfigError(INSTALL_HINT) from None
    return ray


def run_units(units: Sequence[Unit], spec: RunSpec, *, workers_per_model: int = 1, cpus: float = 1.0,
              gpus: float = 0.0, max_retries: int = 3, address: str | None = None, in_flight: int = 2,
              next_budget: Callable[[Unit], Unit | None] | None = None,
              on_result: Callable[[Outcome], None] | None = None) -> list[Outcome]:
    """Run ``units`` on Ray and return their outcomes (in the order they ended).

    ``next_budget(unit)``: called before each unit is scheduled; returns the unit with its budget
    set, or None to schedule no more (a spent budget: the driver then waits for the units under
    way and returns). ``on_result``: called in the driver as each unit ends."""
    if workers_per_model < 1 or max_retries < 0 or cpus < 0 or gpus < 0:
        raise ConfigError("workers per model must be >= 1, retries, CPUs and GPUs >= 0")
    if not units:
        return []
    ray = import_ray()
    started = not ray.is_initialized()
    if started:
        ray.init(address=address, include_dashboard=False, log_to_driver=False, configure_logging=False)
    try:
        return _schedule(ray, units, spec, workers_per_model, cpus, gpus, max_retries, in_flight, next_budget,
                         on_result)
    finally:
        if started:
            ray.shutdown()


def _schedule(ray: Any, units: Sequence[Unit], spec: RunSpec, workers: int, cpus: float, gpus: float,
              max_retries: int, in_flight: int, next_budget: Callable[[Unit], Unit | None] | None,
              on_result: Callable[[Outcome], None] | None) -> list[Outcome]:
    worker_cls = ray.remote(UnitWorker).options(num_cpus=cpus, num_gpus=gpus, max_restarts=max_retries,
                                                max_task_retries=max_retries)
    queues: dict[str, deque[Unit]] = {}
    for u in units:
        queues.setdefault(u.model, deque()).append(u)
    actors = {m: [worker_cls.remote(m, spec) for _ in range(min(workers, len(q)))] for m, q in queues.items()}
    pending: dict[Any, tuple[Unit, Any]] = {}
    busy: dict[int, int] = {}  # units queued on each worker (by id of its handle)
    stopped = False

    def submit(model: str, actor: Any) -> None:
        nonlocal stopped
        if queues[model] and not stopped:
            unit = queues[model].popleft()
            if next_budget is not None:
                budgeted = next_budget(unit)
                if budgeted is None:
                    stopped = True
                    return
                unit = budgeted
            pending[actor.run_unit.remote(unit)] = (unit, actor)
            busy[id(actor)] = busy.get(id(actor), 0) + 1

    for model, handles in actors.items():
        for actor in handles:
            for _ in range(in_flight):
                submit(model, actor)
    outcomes: list[Outcome] = []
    while pending:
        ready, _ = ray.wait(list(pending), num_returns=1)
        unit, actor = pending.pop(ready[0])
        busy[id(actor)] -= 1
        try:
            outcome = ray.get(ready[0])
        except ray.exceptions.RayError as exc:  # the worker died more often than max_retries
            outcome = Outcome(unit, "failed", message=f"worker lost after {max_retries} restarts: {exc}"[:500])
        outcomes.append(outcome)
        if on_result is not None:
            on_result(outcome)
        submit(unit.model, actor)
        if busy[id(actor)] == 0:  # nothing left for this worker: its resources go to the next model
            actors[unit.model].remove(actor)
            _release(ray, [actor], busy)
    for handles in actors.values():  # workers never given a unit (a spent budget, more workers than units)
        _release(ray, handles, busy)
    return outcomes


def _release(ray: Any, handles: Sequence[Any], used: Mapping[int, int]) -> None:
    """Close the workers' backends, then end their processes (their resources go to the next
    model); a worker never given a unit (it may never have started) is only ended."""
    for h in handles:
        if id(h) in used:
            try:
                ray.get(h.close.remote(), timeout=120)
            except Exception as exc:  # noqa: BLE001 -- a worker that cannot close still has to go
                print(f"chimed-eval: a worker did not close cleanly: {str(exc)[:200]}", file=sys.stderr)
        ray.kill(h)


def run_shards(model: str, tasks: Sequence[str], output: Path, n: int, spec: RunSpec, gpus: float,
               address: str | None = None) -> list[Path]:
    """``--data-parallel N``: the run as N units ``--shard I/N`` into ``OUTPUT/shards/I-of-N`` on N
    workers (one engine each; ``gpus`` each where the Ray cluster has GPUs, else CPU workers);
    returns their directories, or raises ConfigError naming the shards that failed."""
    dirs = [Path(output) / "shards" / f"{i}-of-{n}" for i in range(n)]
    units = [Unit(model, tuple(tasks), d, f"{i}/{n}") for i, d in enumerate(dirs)]
    ray = import_ray()
    started = not ray.is_initialized()
    if started:
        ray.init(address=address, include_dashboard=False, log_to_driver=False, configure_logging=False)
    try:
        have = ray.cluster_resources().get("GPU", 0)
        if gpus and have and have < gpus * n:
            raise ConfigError(f"--data-parallel {n} with {gpus:g} GPU(s) per engine needs {gpus * n:g} GPUs; "
                              f"the Ray cluster has {have:g}")
        outcomes = run_units(units, spec, workers_per_model=n, gpus=gpus if have else 0.0, in_flight=1,
                             cpus=max(0.01, min(4.0, ray.cluster_resources().get("CPU", 1) / n)))
    finally:
        if started:
            ray.shutdown()
    failed = [o for o in outcomes if o.status != "done"]
    if failed:
        raise ConfigError("data-parallel shards failed: " + "; ".join(f"{o.unit.shard} ({o.message})" for o in failed)
                          + "; run the same command again to resume them")
    return dirs
