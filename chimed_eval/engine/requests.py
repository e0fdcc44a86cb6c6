"""What the runner does to a run's requests before they reach the backend: ``--limit`` as a count
(fractions of a task), ``--gen_kwargs`` on generate requests, and the batch size (``auto``
chosen once and pinned in run.json, so a resumed run keeps its batch boundaries)."""

from __future__ import annotations

import dataclasses
import math
from pathlib import Path
from typing import Any

from chimed_eval.core.types import REQUEST_KINDS, Request
from chimed_eval.runs.records import write_json_atomic
from chimed_eval.runs.settings import RunSettings


def limit_count(limit: int | float, n: int) -> int:
    """``--limit`` as a number of items of a task of ``n``: N, or for a fraction 0 < x < 1,
    ``ceil(x * n)`` (at least one item), taken from the start of the task's documented order."""
    if isinstance(limit, float) and 0 < limit < 1:
        return max(1, math.ceil(limit * n)) if n else 0
    return int(limit)


def apply_gen_kwargs(requests: list[Request], gen_kwargs: Any) -> list[Request]:
    """``--gen_kwargs`` set on every ``generate`` request (:mod:`chimed_eval.core.gen_kwargs`); the
    other kinds are scored, not decoded, and stay as they are."""
    if not gen_kwargs:
        return requests
    from chimed_eval.core.gen_kwargs import parse_gen_kwargs

    gk = parse_gen_kwargs(gen_kwargs)
    return [dataclasses.replace(r, generation=gk.apply(r.generation)) if r.kind == "generate" and r.generation
            is not None else r for r in requests]


def batch_size_for(backend: Any, settings: RunSettings, by_key: dict, out_dir: Path | None,
                   state: dict[str, Any]) -> int:
    """The batch size of this run. A number: itself (or the hand-over size of an engine that
    schedules its own batches, vLLM). ``auto``: the size pinned in OUT/run.json by the run that
    chose it (so a resumed run keeps its batch boundaries), else the engine's hand-over size,
    else the backend's choice on the longest requests (:mod:`chimed_eval.backends.batching`),
    else 8; pinned in run.json and recorded as ``settings.batch_size_chosen``."""
    engine = int(getattr(backend, "run_batch_size", None) or 0)
    if settings.batch_size != "auto":
        return max(int(settings.batch_size), engine)
    chosen = int(state.get("batch_size_chosen") or 0) or engine
    if not chosen:
        chooser = getattr(backend, "choose_batch_size", None)
        kinds = [k for k in REQUEST_KINDS if any(v[2].kind == k for v in by_key.values())]
        if chooser is not None and kinds:
            reqs = [v[2] for v in by_key.values() if v[2].kind == kinds[0]]
            chosen = int(chooser(kinds[0], sorted(reqs, key=backend.sort_key)) or 0)
    chosen = chosen or 8
    settings.batch_size_chosen = chosen
    if out_dir is not None and state.get("batch_size_chosen") != chosen:
        from chimed_eval.runs.outdir import run_json

        state["batch_size_chosen"] = chosen
        write_json_atomic(run_json(out_dir), state)
    return chosen
