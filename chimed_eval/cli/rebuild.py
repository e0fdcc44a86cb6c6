"""Task objects rebuilt from a run directory, for commands that recompute metrics from saved
records without the model (``score``, ``merge``, ``run --data-parallel``)."""

from __future__ import annotations

from pathlib import Path


def task_getter(task_config: Path | None, out_dir: Path):
    """Task objects by name for recomputing metrics from saved records (score, merge): rebuilt
    from what OUT/run.json recorded about each task (its type and arguments)."""
    from chimed_eval.runs.reader import is_run_dir, read_run_state

    tasks = read_run_state(out_dir).tasks if is_run_dir(out_dir) else {}

    def get(name: str):
        from chimed_eval.tasks.factory import rescoring_task

        entry = tasks.get(name)
        source = entry.source if entry is not None else None
        return rescoring_task(name, out_dir, source if isinstance(source, dict) else None, task_config)

    return get
