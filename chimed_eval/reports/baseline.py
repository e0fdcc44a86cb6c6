"""Baseline files: what ``chimed-eval check RUN --save-baseline FILE`` writes.

A baseline holds metrics and hashes only (item ids and prompt hashes, never prompt or item text,
no local paths): the :class:`~chimed_eval.reports.view.RunView` of a run, written as a file that
:func:`chimed_eval.reports.view.load_view` reads back and validates strictly (a baseline that
check would refuse is never written).
"""

from __future__ import annotations

import datetime as _dt
from pathlib import Path
from typing import Any, Sequence

from chimed_eval.core.errors import ConfigError
from chimed_eval.reports.view import BASELINE_KEY, RunView, _validate, load_view
from chimed_eval.runs.records import metric_to_dict

BASELINE_VERSION = 1
SETTINGS_KEPT = ("backend", "variant", "shots", "seed", "limit", "batch_size", "dtype", "decoding", "max_new_tokens")


def baseline_dict(view: RunView, tasks: Sequence[str] | None = None) -> dict[str, Any]:
    """Metrics and hashes only: no prompt, item or generation text, no local paths."""
    names = list(tasks) if tasks else list(view.tasks)
    missing = [n for n in names if n not in view.tasks]
    if missing:
        raise ConfigError(f"{view.source}: no task(s) {missing}; has {sorted(view.tasks)}")
    out_tasks = {}
    for n in names:
        t = view.tasks[n]
        d: dict[str, Any] = {
            "n": t.n, "items_sha256": t.items_sha256, "prompts_sha256": t.prompts_sha256,
            "variant": t.variant, "shots": t.shots, "data_sha256": list(t.data_sha256),
            "metrics": [metric_to_dict(m) for m in t.metrics],
        }
        if n in view.items:
            d["items"] = [list(p) for p in view.items[n]]
        out_tasks[n] = d
    return {
        BASELINE_KEY: BASELINE_VERSION,
        "created": _dt.datetime.now(_dt.timezone.utc).isoformat(timespec="seconds"),
        "model": {"name": view.model_name, "weights_sha256": view.weights_sha256},
        "settings": {k: view.settings.get(k) for k in SETTINGS_KEPT if k in view.settings},
        "tasks": out_tasks,
    }


def save_baseline(results: Path, out: Path, tasks: Sequence[str] | None = None) -> dict[str, Any]:
    """Write the baseline of run ``results`` (only ``tasks`` when given) to ``out`` and return it."""
    from chimed_eval.runs.records import write_json_atomic

    view = load_view(results)  # figures edited after they were written are refused there (exit 2)
    if view.integrity.startswith("unverified"):
        import sys

        print(f"note: {view.source}: figures {view.integrity}; the baseline takes them as they are", file=sys.stderr)
    doc = baseline_dict(view, tasks)
    _validate(view.source, doc, baseline=True)  # never write a baseline that check would refuse
    write_json_atomic(Path(out), doc)
    return doc
