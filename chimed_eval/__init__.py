"""chimed-eval: an evaluation-first toolkit for Chinese medical language models.

The public Python API::

    import chimed_eval
    r = chimed_eval.evaluate(model="oracle", backend="fake", tasks=["ceval-medical-paper"])
    r.to_pandas()                          # one row per figure
    list(r.samples("ceval-medical-paper"))  # the per-item records
    chimed_eval.read_run("out/run1")       # the same object for a run on disk
    chimed_eval.export(["out/run1", r], "figures.csv")  # one tidy table (csv, jsonl, parquet)
    chimed_eval.view(["out/run1", "out/run2"], "view.html")  # the page comparing runs
    s = chimed_eval.sweep(["oracle", "random"], ["ceval-medical-paper"], "out/sweep", backend="fake")  # on Ray
    s.run("oracle", "ceval-medical-paper")  # a unit's RunResult; s.to_pandas(): the summary rows

Importing the package is cheap: the API loads on first use (module ``__getattr__``), and torch,
transformers and vllm are imported only by the backends that need them.
"""

from __future__ import annotations

from typing import Any

from chimed_eval.core.version import SCHEMA_VERSION, __version__

__all__ = ["__version__", "SCHEMA_VERSION", "evaluate", "read_run", "RunConfig", "RunResult", "export", "export_rows",
           "view", "sweep", "SweepResult"]


def __getattr__(name: str) -> Any:
    """The public API, imported on first access (``import chimed_eval`` stays light)."""
    if name == "evaluate":  # the engine's evaluate with the plug-in tasks' resolver handed in
        from chimed_eval.cli.api import evaluate as value
    elif name == "read_run":
        from chimed_eval.engine.api import read_run as value
    elif name == "RunConfig":
        from chimed_eval.engine.options import RunConfig as value
    elif name == "export":  # tidy tables of runs: CSV, JSONL, Parquet (chimed-eval export)
        from chimed_eval.reports.tidy import export_table as value
    elif name == "export_rows":
        from chimed_eval.reports.tidy import export_rows as value
    elif name == "view":  # the page comparing runs (chimed-eval view)
        from chimed_eval.reports.viewer import write_view as value
    elif name == "sweep":  # models x tasks on Ray (chimed-eval sweep), the plug-in tasks' resolver handed in
        from chimed_eval.cli.api import sweep_models as value
    elif name == "SweepResult":
        from chimed_eval.engine.sweep import SweepResult as value
    elif name == "RunResult":
        from chimed_eval.core.types import RunResult as value
    else:
        raise AttributeError(f"module 'chimed_eval' has no attribute {name!r}")
    globals()[name] = value
    return value


def __dir__() -> list[str]:
    return sorted(set(globals()) | set(__all__))
