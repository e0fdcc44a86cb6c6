"""Task objects rebuilt from a run directory, for commands that recompute metrics from saved
records without the model (``score``, ``merge``, ``run --data-parallel``)."""

from __future__ import annotations

from pathlib import Path


def task_getter(task_config: Path | None, out_dir: Path):
    """Task objects by name for recomputing metrics from saved records (score, merge): rebuilt
    from what OUT/run.json recorded about each task (its type and arguments)."""
    from chimed_eval.runs.outdir import read_json

    run_path = out_dir / "run.json"
    state = read_json(run_path) if run_path.is_file() else {}
    tasks = state.get("tasks") if isinstance(state, dict) else None

    def get(name: str):
        from chimed_eval.tasks.factory import rescoring_task

        entry = tasks.get(name) if isinstance(tasks, dict) else None
        source = entry.get("source") if isinstance(entry, dict) else None
        return rescoring_task(name, out_dir, source if isinstance(source, dict) else None, task_config)

    return get
