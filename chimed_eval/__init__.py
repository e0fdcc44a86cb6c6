"""chimed-eval: an evaluation-first toolkit for Chinese medical language models.

The public Python API::

    import chimed_eval
    r = chimed_eval.evaluate(model="oracle", backend="fake", tasks=["ceval-medical-paper"])
    r.to_pandas()                          # one row per figure
    list(r.samples("ceval-medical-paper"))  # the per-item records
    chimed_eval.read_run("out/run1")       # the same object for a run on disk

Importing the package is cheap: the API loads on first use (module ``__getattr__``), and torch,
transformers and vllm are imported only by the backends that need them.
"""

from __future__ import annotations

import importlib
from typing import Any

__version__ = "0.1.0"
SCHEMA_VERSION = "1.0"

#: public name -> the module that defines it (imported on first access)
_LAZY = {
    "evaluate": "chimed_eval.cli.api",  # the engine's evaluate with the plug-in tasks resolved
    "read_run": "chimed_eval.engine.api",
    "RunConfig": "chimed_eval.engine.api",
    "RunResult": "chimed_eval.core.types",
}

__all__ = ["__version__", "SCHEMA_VERSION", *_LAZY]


def __getattr__(name: str) -> Any:
    module = _LAZY.get(name)
    if module is None:
        raise AttributeError(f"module 'chimed_eval' has no attribute {name!r}")
    value = getattr(importlib.import_module(module), name)
    globals()[name] = value
    return value


def __dir__() -> list[str]:
    return sorted(set(globals()) | set(_LAZY))
