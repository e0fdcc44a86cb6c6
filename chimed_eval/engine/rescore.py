"""``chimed-eval score``: recompute every metric from OUT's records, without the model, and seal
results.json with the digest of those records (:mod:`chimed_eval.runs.integrity`).

results.json is written once, atomically, after every figure is computed: a ``finish`` step
(figures made from other records than the samples, e.g. a rubric grading's verdicts, which live in
a layer above this one) runs before the write, so a refusal there leaves results.json as it was."""

from __future__ import annotations

import datetime as _dt
from pathlib import Path
from typing import Any, Callable

from chimed_eval.core.version import SCHEMA_VERSION
from chimed_eval.runs.outdir import OutLock, check_adoptable
from chimed_eval.runs.reader import read_run_if_any, read_run_state, require_run_dir, results_json, seal_results
from chimed_eval.runs.records import SampleStore, run_result_to_dict, write_json_atomic
from chimed_eval.engine.runner import task_result
from chimed_eval.core.types import ModelInfo, RunResult

#: ``finish(doc, old)``: the rebuilt results document completed (``old``: the run before, unverified);
#: it may raise, and then nothing is written
Finish = Callable[[dict[str, Any], "RunResult | None"], dict[str, Any]]


def rescore_run(out_dir: Path, get_task, finish: Finish | None = None) -> RunResult:
    """Recompute every metric from OUT/samples without the model; rewrites results.json (after
    ``finish``, if given, completed the document: see the module doc). Returns the sample figures."""
    require_run_dir(out_dir)
    with OutLock(out_dir):
        return _rescore_locked(out_dir, get_task, finish)


def _rescore_locked(out_dir: Path, get_task, finish: Finish | None = None) -> RunResult:
    check_adoptable(out_dir)
    state = read_run_state(out_dir)
    # not verified: every figure is recomputed from the records here (the way back from a
    # results.json that no longer matches its records)
    old = read_run_if_any(out_dir, verify=False)
    results = []
    for name, meta in state.tasks.items():
        store = SampleStore(out_dir, name)
        if not store.path.exists():
            continue
        task = get_task(name)
        scores = [task.rescore(r, meta.variant) for r in store.load().values()]
        results.append(task_result(task, None, scores, state.seed, variant=meta.variant, shots=meta.shots,
                                   data_files=dict(meta.data_files)))
    model = old.model if old is not None else ModelInfo("unknown", "unknown", None, None, None)
    settings = (old.settings if old is not None else None) or state.settings
    rr = RunResult(schema_version=SCHEMA_VERSION, model=model, settings=settings, tasks=tuple(results),
                   created=_dt.datetime.now(_dt.timezone.utc).isoformat(timespec="seconds"))
    doc = run_result_to_dict(rr)
    if finish is not None:
        doc = finish(doc, old)  # may refuse: results.json is not touched before this returns
    write_json_atomic(results_json(out_dir), seal_results(doc, out_dir))
    return rr
