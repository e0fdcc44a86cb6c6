"""``chimed-eval sweep``: models x tasks (x shards) as units on Ray, one output tree, one summary.

Layout of a sweep directory S::

    S/sweep.json                    the sweep's settings (a later sweep into S must match them)
    S/<model>/<task>/               one unit: exactly what ``chimed-eval run --model <model>
                                    --tasks <task> --output S/<model>/<task>`` writes
    S/<model>/<task>/shards/I-of-N  with --shards N: the units of that run, merged into its parent
    S/summary.csv, S/summary.json   the figures of every unit, and how each unit ended

A unit already complete (its results.json lists its task) is skipped, so the same command resumes
a sweep; an unfinished unit resumes from its records. ``<model>`` is the model name with ``/``
written as ``--`` (hub ids). The budget (``--max-cost``, ``--max-tokens``) bounds the whole sweep:
what S has spent is counted before each unit is scheduled, and each unit gets what is left.
"""

from __future__ import annotations

import csv
import dataclasses
import io
import json
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Callable, Mapping, Sequence

from chimed_eval.core.errors import BudgetReached, ConfigError
from chimed_eval.engine.distribute import Outcome, RunSpec, Unit, run_units
from chimed_eval.runs.outdir import LOCK_NAME, OutLock
from chimed_eval.core.types import RunResult
from chimed_eval.runs.reader import read_run, read_run_if_any, read_usage_summary
from chimed_eval.runs.usage import Budget, UsageMeter, run_price

SWEEP_FILE = "sweep.json"
SUMMARY_COLUMNS = ("model", "task", "status", "n", "metric", "value", "ci_low", "ci_high", "seconds",
                   "prompt_tokens", "completion_tokens", "cost_usd")
#: RunConfig fields that never change what a unit writes (so never compared between sweeps)
_FREE = ("progress", "price", "max_cost", "max_tokens", "shard")


#: unit statuses whose directory holds the unit's complete run
DONE_STATUSES = ("done", "complete")


@dataclass(frozen=True)
class UnitResult:
    """How one (model, task) of a sweep ended: ``status`` (``done``: run by this sweep,
    ``complete``: found complete and skipped, ``failed``, ``budget``, ``not scheduled``), its
    run directory, its time inside the workers, why it failed or stopped, and the worker PIDs."""

    model: str
    task: str
    status: str
    output: Path
    seconds: float
    message: str | None = None
    pids: tuple[int, ...] = ()

    @property
    def ok(self) -> bool:
        """The unit's run is complete (``done`` or ``complete``)."""
        return self.status in DONE_STATUSES

    def run(self) -> RunResult:
        """The unit's run (:func:`chimed_eval.runs.reader.read_run`: figures checked against their
        records; ``.samples(task)`` reads them); a ConfigError for a unit that is not complete."""
        if not self.ok:
            raise ConfigError(f"sweep unit {self.model} {self.task} is {self.status!r}, not complete: "
                              f"{self.message or 'no run in ' + str(self.output)}")
        return read_run(self.output)


@dataclass(frozen=True)
class SweepResult:
    """What a sweep did: ``rows`` (the summary table: one row per figure of each unit, as in
    summary.csv), ``units`` (per (model, task) its status, as in summary.json; typed in
    :attr:`results`), the wall time and the sum of the units' own times (their difference is the
    scheduling overhead), and the sweep directory."""

    rows: tuple[Mapping[str, Any], ...]
    units: tuple[Mapping[str, Any], ...]
    wall_s: float
    unit_s: float
    output: Path

    @property
    def failed(self) -> list[Mapping[str, Any]]:
        return [u for u in self.units if u["status"] == "failed"]

    @property
    def results(self) -> tuple[UnitResult, ...]:
        """Every unit, typed, in the order of the models then the tasks."""
        return tuple(UnitResult(u["model"], u["task"], u["status"], Path(u["output"]), float(u["seconds"]),
                                u.get("message"), tuple(u.get("pids") or ())) for u in self.units)

    @property
    def ok(self) -> bool:
        """Every unit's run is complete."""
        return all(u.ok for u in self.results)

    def unit(self, model: str, task: str) -> UnitResult:
        """The unit of ``model`` on ``task`` (a KeyError naming the sweep's units otherwise)."""
        for u in self.results:
            if u.model == model and u.task == task:
                return u
        raise KeyError(f"no unit ({model!r}, {task!r}) in this sweep; it has: "
                       + ", ".join(f"{u.model} {u.task}" for u in self.results))

    def run(self, model: str, task: str) -> RunResult:
        """The run of one unit (:meth:`UnitResult.run`)."""
        return self.unit(model, task).run()

    def to_pandas(self) -> Any:
        """:attr:`rows` as a ``pandas.DataFrame`` with the columns of summary.csv (pandas is
        imported here, only when asked)."""
        try:
            import pandas
        except ImportError:
            raise ImportError("SweepResult.to_pandas() needs pandas: pip install pandas") from None
        return pandas.DataFrame([dict(r) for r in self.rows], columns=list(SUMMARY_COLUMNS))


def model_dir_name(model: str) -> str:
    """The folder of a model in a sweep: its name, ``/`` written as ``--``."""
    name = model.strip().replace("/", "--")
    if not name or name in (".", "..") or name.startswith("-") and name.strip("-") == "":
        raise ConfigError(f"--models: {model!r} cannot name a folder")
    return name


def unit_dir(root: Path, model: str, task: str) -> Path:
    return Path(root) / model_dir_name(model) / task


def _check_names(models: Sequence[str], tasks: Sequence[str]) -> None:
    if not models or not tasks:
        raise ConfigError("a sweep needs --models and --tasks (comma-separated)")
    for what, names in (("--models", models), ("--tasks", tasks)):
        if len(set(names)) != len(names):
            raise ConfigError(f"{what}: {sorted({n for n in names if names.count(n) > 1})[0]!r} given twice")
    folders = [model_dir_name(m) for m in models]
    if len(set(folders)) != len(folders):
        raise ConfigError("--models: two models share a folder name (one spells '/' as '--')")
    for t in tasks:
        if "/" in t or t in (".", "..") or t.startswith("."):
            raise ConfigError(f"--tasks: {t!r} cannot name a folder")


def _stamp(spec: RunSpec, shards: int) -> dict[str, Any]:
    config = {k: (str(v) if isinstance(v, Path) else v) for k, v in dataclasses.asdict(spec.config).items()
              if k not in _FREE}
    config["task_args"] = dict(spec.config.task_args)
    return {"backend": spec.backend, "model_args": dict(spec.model_args), "data_dir": spec.data_dir,
            "shards": shards, "config": config}


def _check_stamp(root: Path, stamp: dict[str, Any]) -> None:
    """S holds this sweep's settings, or is new/empty; another sweep's tree is refused."""
    path = root / SWEEP_FILE
    if path.exists():
        try:
            old = json.loads(path.read_text(encoding="utf-8"))
        except (OSError, ValueError) as exc:
            raise ConfigError(f"{path}: not a sweep settings file ({exc})") from None
        diff = sorted(k for k in set(old) | set(stamp) if k != "config" and old.get(k) != stamp.get(k))
        oc, nc = old.get("config", {}), stamp["config"]
        diff += sorted(f"config.{k}" for k in set(oc) | set(nc) if oc.get(k) != nc.get(k))
        if diff:
            raise ConfigError(f"{path}: this sweep directory was made with other settings ({', '.join(diff)}); "
                              "use another --output, or the same settings to resume it")
        return
    if root.exists() and any(e.name != LOCK_NAME for e in root.iterdir()):
        raise ConfigError(f"{root} is not empty and holds no {SWEEP_FILE}: use an empty or new --output")
    root.mkdir(parents=True, exist_ok=True)
    from chimed_eval.runs.records import write_json_atomic

    write_json_atomic(path, stamp)


def _complete(out: Path, task: str) -> bool:
    run = read_run_if_any(out, verify=False)
    return run is not None and any(t.task == task for t in run.tasks)


def plan_units(root: Path, models: Sequence[str], tasks: Sequence[str], shards: int) -> tuple[list[Unit], list[Unit]]:
    """(units to run, units already complete): one per (model, task), or per (model, task, shard)."""
    todo, done = [], []
    for m in models:
        for t in tasks:
            out = unit_dir(root, m, t)
            whole = Unit(m, (t,), out)
            if _complete(out, t):
                done.append(whole)
                continue
            if shards == 1:
                todo.append(whole)
                continue
            for i in range(shards):
                u = Unit(m, (t,), out / "shards" / f"{i}-of-{shards}", f"{i}/{shards}")
                (done if _complete(u.output, t) else todo).append(u)
    return todo, done


class _SweepBudget:
    """The sweep's budget: what S spent (every unit's usage lines) against --max-cost/--max-tokens."""

    def __init__(self, root: Path, units: Sequence[Unit], spec: RunSpec, price_for: Callable[[str], Any]) -> None:
        self.budget = Budget(spec.config.max_cost, spec.config.max_tokens)
        self.spent: dict[Path, tuple[float, int]] = {}
        self.price_for = price_for
        if self.budget.active:
            for u in units:
                self.budget.check(price_for(u.model))
                meter = UsageMeter(u.output, list(u.tasks), price_for(u.model), None)
                cost, tokens = meter.spent()
                self.spent[u.output] = (cost or 0.0, tokens)

    def total(self) -> tuple[float, int]:
        return sum(c for c, _ in self.spent.values()), sum(t for _, t in self.spent.values())

    def next(self, unit: Unit) -> Unit | None:
        if not self.budget.active:
            return unit
        cost, tokens = self.total()
        own_cost, own_tokens = self.spent.get(unit.output, (0.0, 0))
        left_cost = None if self.budget.max_cost is None else self.budget.max_cost - cost
        left_tokens = None if self.budget.max_tokens is None else self.budget.max_tokens - tokens
        if (left_cost is not None and left_cost <= 0) or (left_tokens is not None and left_tokens <= 0):
            return None
        # the unit's own meter counts its earlier spending too: it may spend what is left on top
        return dataclasses.replace(unit, budget=(None if left_cost is None else own_cost + left_cost,
                                                 None if left_tokens is None else own_tokens + left_tokens))

    def add(self, outcome: Outcome) -> None:
        if not self.budget.active:
            return
        run = (outcome.usage or {}).get("run") if outcome.usage else None
        if run is None:
            meter = UsageMeter(outcome.unit.output, list(outcome.unit.tasks), self.price_for(outcome.unit.model), None)
            cost, tokens = meter.spent()
        else:
            cost, tokens = run.get("cost_usd"), run["prompt_tokens"] + run["completion_tokens"]
        self.spent[outcome.unit.output] = (cost or 0.0, tokens)


def run_sweep(models: Sequence[str], tasks: Sequence[str], output: Path, spec: RunSpec, *,
          get_task: Callable[[Path], Callable[[str], Any]], shards: int = 1, address: str | None = None,
          workers_per_model: int = 1, cpus_per_model: float = 1.0, gpus_per_model: float = 0.0,
          max_retries: int = 3, on_result: Callable[[Outcome], None] | None = None) -> SweepResult:
    """Run every (model, task[, shard]) unit of the sweep not yet complete on Ray, merge sharded
    units, and write the summary. Raises :class:`BudgetReached` (after writing the summary) when
    the budget stopped the sweep. ``get_task(dir)``: task objects by name for merging the shards
    in ``dir`` (:func:`chimed_eval.cli.rebuild.task_getter`)."""
    if shards < 1:
        raise ConfigError("--shards must be >= 1")
    _check_names(list(models), list(tasks))
    spec.config.check()
    root = Path(output)
    started = time.perf_counter()
    with OutLock(root):
        _check_stamp(root, _stamp(spec, shards))
        todo, done = plan_units(root, models, tasks, shards)
        # workers do not share the driver's working directory (a Ray instance started elsewhere)
        todo = [dataclasses.replace(u, output=u.output.absolute()) for u in todo]
        prices = {m: run_price(m, spec.config.price) for m in models}
        budget = _SweepBudget(root, todo, spec, prices.__getitem__)
        outcomes: list[Outcome] = []

        def ended(o: Outcome) -> None:
            outcomes.append(o)
            budget.add(o)
            if on_result is not None:
                on_result(o)

        run_units(todo, spec, workers_per_model=workers_per_model, cpus=cpus_per_model, gpus=gpus_per_model,
                  max_retries=max_retries, address=address, next_budget=budget.next, on_result=ended)
        merged = _merge_sharded(root, models, tasks, shards, get_task) if shards > 1 else set()
        result = _summary(root, models, tasks, outcomes, done, merged, time.perf_counter() - started)
    stopped = [u for u in result.units if u["status"] in ("budget", "not scheduled")]
    if stopped:
        n_done = sum(1 for u in result.units if u["status"] in ("done", "complete"))
        exc = BudgetReached(f"budget: sweep stopped after {n_done}/{len(result.units)} units "
                            f"({len(stopped)} stopped or not scheduled); summary in {root / 'summary.csv'}. "
                            "Run the same command with a higher budget to resume.", n_done, len(result.units))
        exc.result = result  # type: ignore[attr-defined]  # what the sweep did before it stopped
        raise exc
    return result


def _merge_sharded(root: Path, models: Sequence[str], tasks: Sequence[str], shards: int,
                   get_task: Callable[[Path], Callable[[str], Any]]) -> set[tuple[str, str]]:
    from chimed_eval.engine.merge import merge_shards

    merged = set()
    for m in models:
        for t in tasks:
            out = unit_dir(root, m, t)
            dirs = [out / "shards" / f"{i}-of-{shards}" for i in range(shards)]
            if _complete(out, t) or not all(_complete(d, t) for d in dirs):
                continue
            merge_shards(dirs, out, get_task(dirs[0]), allowed_extra=("shards",))
            merged.add((m, t))
    return merged


def _summary(root: Path, models: Sequence[str], tasks: Sequence[str], outcomes: Sequence[Outcome],
             done: Sequence[Unit], merged: set[tuple[str, str]], wall: float) -> SweepResult:
    by_pair: dict[tuple[str, str], list[Outcome]] = {}
    for o in outcomes:
        by_pair.setdefault((o.unit.model, o.unit.tasks[0]), []).append(o)
    complete = {(u.model, u.tasks[0]) for u in done if u.shard is None}
    rows, units = [], []
    for m in models:
        for t in tasks:
            out = unit_dir(root, m, t)
            mine = by_pair.get((m, t), [])
            statuses = {o.status for o in mine}
            status = ("complete" if (m, t) in complete else "failed" if "failed" in statuses else
                      "budget" if "budget" in statuses else "done" if _complete(out, t) else "not scheduled")
            seconds = round(sum(o.seconds for o in mine), 6)
            message = "; ".join(o.message for o in mine if o.message) or None
            units.append({"model": m, "task": t, "status": status, "seconds": seconds, "output": str(out),
                          "message": message, "pids": sorted({o.pid for o in mine if o.pid is not None})})
            run = read_run_if_any(out) if status in ("done", "complete") else None
            usage = _usage_of(out)
            base = {"model": m, "task": t, "status": status, "seconds": seconds,
                    "prompt_tokens": usage.get("prompt_tokens"), "completion_tokens": usage.get("completion_tokens"),
                    "cost_usd": usage.get("cost_usd")}
            figures = [] if run is None else [(tr, x) for tr in run.tasks if tr.task == t for x in tr.metrics]
            for tr, x in figures:
                rows.append({**base, "n": x.n if x.n is not None else tr.n, "metric": x.name, "value": x.value,
                             "ci_low": x.ci_low, "ci_high": x.ci_high})
            if not figures:
                rows.append({**base, "n": None, "metric": None, "value": None, "ci_low": None, "ci_high": None})
    unit_s = sum(o.seconds for o in outcomes)
    result = SweepResult(tuple(rows), tuple(units), round(wall, 3), round(unit_s, 3), root)
    _write_summary(result)
    return result


def _usage_of(out: Path) -> Mapping[str, Any]:
    try:
        doc = read_usage_summary(out)
    except ConfigError:
        return {}
    run = (doc or {}).get("run")
    return run if isinstance(run, dict) else {}


def _write_summary(result: SweepResult) -> None:
    from chimed_eval.runs.records import write_json_atomic

    buf = io.StringIO()
    w = csv.DictWriter(buf, fieldnames=SUMMARY_COLUMNS, lineterminator="\n")
    w.writeheader()
    for r in result.rows:
        w.writerow({k: ("" if r.get(k) is None else r.get(k)) for k in SUMMARY_COLUMNS})
    (result.output / "summary.csv").write_text(buf.getvalue(), encoding="utf-8")
    write_json_atomic(result.output / "summary.json", {"wall_s": result.wall_s, "unit_s": result.unit_s,
                                                       "units": list(result.units), "figures": list(result.rows)})


def summary_lines(result: SweepResult) -> list[str]:
    """The summary as a table: one line per (model, task), its first figure."""
    lines = [f"{'model':24} {'task':28} {'status':13} {'n':>5}  {'metric':16} {'value':>8} {'seconds':>8}"]
    seen = set()
    for r in result.rows:
        key = (r["model"], r["task"])
        if key in seen:
            continue
        seen.add(key)
        value = "" if r["value"] is None else f"{r['value']:8.3f}"
        lines.append(f"{r['model'][:24]:24} {r['task'][:28]:28} {r['status']:13} {r['n'] if r['n'] is not None else '':>5}  "
                     f"{(r['metric'] or '')[:16]:16} {value:>8} {r['seconds']:8.2f}")
    lines.append(f"{len(result.units)} units; wall {result.wall_s:.1f} s, sum of unit times {result.unit_s:.1f} s")
    return lines
