"""Where the data folder is when none is given: ``$CHIMED_EVAL_DATA``, else ``./data`` or
``../shared/data`` (the layout of shared/data), else ``data``.

One answer for the CLI, the training recipes and the benchmarks, so they all find the same files.
"""

from __future__ import annotations

import os
from pathlib import Path


def default_data_dir() -> str:
    """The data folder used when ``--data-dir`` is not given."""
    env = os.environ.get("CHIMED_EVAL_DATA")
    if env:
        return env
    for cand in (Path("data"), Path("../shared/data")):
        if cand.is_dir():
            return str(cand)
    return "data"
