"""Scale of ``chimed-eval sweep`` on a local Ray instance: MODELS fake models x TASKS tasks.

The models are the fake backend's ``random:1`` ... ``random:M`` (each its own seeded random
model); the tasks are T copies of a small synthetic exam (a task-config file), each run with
``--limit``. Printed, with the baseline measured in the same process just before:

* baseline: the same units run one after another in this process through the Python API
  (``plan_run`` / ``run_plan``), no Ray: the cost of a unit itself;
* the sweep: Ray start-up, the sweep's wall time, the sum of the units' own times (measured inside
  the workers), the parallel slots (CPUs / CPUs per worker), and the scheduler overhead per unit:
  (wall x slots - sum of unit times) / units: slot-seconds that went to anything but running units
  (worker start-up and model loading per model, the driver's round trips, resume checks, the summary).

Usage: python benchmarks/sweep_scale.py [--models 100] [--tasks 50] [--limit 2] [--cpus 2]
       [--cpus-per-model 0.5] [--baseline-units 50]
The machine this ran on is shared: figures are from one run, not a controlled measurement.
"""

from __future__ import annotations

import argparse
import dataclasses
import os
import shutil
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))


def write_tasks(root: Path, n_tasks: int, n_items: int) -> Path:
    lines = [",Question,A,B,C,D,Answer"]
    for i in range(n_items):
        lines.append(f"{i},第{i}题：哪一项正确？,甲{i},乙{i},丙{i},丁{i},{'ABCD'[i % 4]}")
    exam = root / "exam.csv"
    exam.write_text("\n".join(lines) + "\n", encoding="utf-8")
    cfg = root / "tasks.toml"
    cfg.write_text("".join(f'[[tasks]]\nname = "task{j:03d}"\npath = "{exam}"\n\n' for j in range(n_tasks)),
                   encoding="utf-8")
    return cfg


def main() -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--models", type=int, default=100)
    p.add_argument("--tasks", type=int, default=50)
    p.add_argument("--limit", type=int, default=2)
    p.add_argument("--cpus", type=float, default=2, help="CPUs of the local Ray instance")
    p.add_argument("--cpus-per-model", type=float, default=0.5)
    p.add_argument("--baseline-units", type=int, default=50)
    p.add_argument("--keep", type=Path, default=None, help="write the sweep here (default: a temporary directory)")
    a = p.parse_args()

    import ray

    from chimed_eval.cli.rebuild import task_getter
    from chimed_eval.engine.api import RunConfig, plan_run, run_plan
    from chimed_eval.engine.distribute import Outcome, RunSpec
    from chimed_eval.engine.sweep import run_sweep
    from chimed_eval.tasks.factory import build_tasks

    tmp = Path(tempfile.mkdtemp(prefix="sweep-scale-"))
    try:
        cfg = write_tasks(tmp, a.tasks, max(a.limit, 4))
        config = RunConfig(limit=a.limit, task_config=cfg, progress=False, batch_size=8)
        models = [f"random:{i + 1}" for i in range(a.models)]
        tasks = [f"task{j:03d}" for j in range(a.tasks)]

        # baseline: units one after another in this process, no Ray
        n_base = min(a.baseline_units, a.models * a.tasks)
        t0 = time.perf_counter()
        for k in range(n_base):
            m, t = models[k // a.tasks], tasks[k % a.tasks]
            run_plan(plan_run(m, [t], backend="fake", output=tmp / "base" / m / t, config=config,
                              resolve_tasks=build_tasks))
        base_per_unit = (time.perf_counter() - t0) / n_base

        t0 = time.perf_counter()
        ray.init(num_cpus=a.cpus, include_dashboard=False, log_to_driver=False)
        ray_start = time.perf_counter() - t0
        done = [0]

        def ended(o: Outcome) -> None:
            done[0] += 1
            if o.status != "done" or done[0] % 500 == 0:
                print(f"  {done[0]} units ended ({o.status}{': ' + o.message if o.message else ''})",
                      file=sys.stderr, flush=True)

        out = a.keep or tmp / "S"
        spec = RunSpec("fake", {}, None, config, build_tasks)
        t0 = time.perf_counter()
        result = run_sweep(models, tasks, out, spec, get_task=lambda d: task_getter(cfg, d),
                       cpus_per_model=a.cpus_per_model, on_result=ended)
        wall = time.perf_counter() - t0
        ray.shutdown()
    finally:
        shutil.rmtree(tmp, ignore_errors=True)

    units = len(result.units)
    slots = a.cpus / a.cpus_per_model
    overhead = (wall * slots - result.unit_s) / units
    rows = [
        ("units (models x tasks)", f"{units} ({a.models} x {a.tasks}), --limit {a.limit}"),
        ("units failed", f"{len(result.failed)}"),
        ("baseline: one unit in-process, no Ray (s)", f"{base_per_unit:.4f} (mean of {n_base})"),
        ("Ray start-up (s)", f"{ray_start:.1f}"),
        ("sweep wall time (s)", f"{wall:.1f}"),
        ("sum of unit times inside workers (s)", f"{result.unit_s:.1f}"),
        ("mean unit time inside a worker (s)", f"{result.unit_s / units:.4f}"),
        ("parallel slots (CPUs / CPUs per worker)", f"{slots:g}"),
        ("ideal wall = sum of unit times / slots (s)", f"{result.unit_s / slots:.1f}"),
        ("wall / ideal", f"{wall / (result.unit_s / slots):.2f}"),
        ("scheduler overhead per unit (slot-s)", f"{overhead:.4f}"),
        ("overhead per unit / baseline unit time", f"{overhead / base_per_unit:.2f}"),
    ]
    width = max(len(k) for k, _ in rows)
    print(f"\nsweep scale on a local Ray instance ({os.cpu_count()} CPUs on this machine, shared)")
    for k, v in rows:
        print(f"{k:<{width}}  {v}")
    return 1 if result.failed else 0


if __name__ == "__main__":
    sys.exit(main())
