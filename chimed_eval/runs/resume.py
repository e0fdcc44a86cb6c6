"""What OUT/run.json pins, and the checks a run into an existing OUT must pass.

A resumed run must match the run-wide settings, each task's definition (resolved variant and
shots, data files, a hash of every item, its type and arguments) and the model's identity;
differences are named. Tasks of an earlier run into the same OUT stay in results.json.
"""

from __future__ import annotations

import dataclasses
import json
from pathlib import Path
from typing import TYPE_CHECKING, Any, Sequence

from chimed_eval.core.errors import ConfigError
from chimed_eval.runs.jsonio import OUT_FIX, read_json_file
from chimed_eval.runs.outdir import results_json, run_json
from chimed_eval.runs.records import write_json_atomic
from chimed_eval.core.types import ModelInfo, Sample, sha256_text

if TYPE_CHECKING:
    from chimed_eval.runs.settings import PreparedTask, RunSettings

RUN_FORMAT = 2  # run.json layout: settings (resume_key), model identity, per-task definitions


def items_sha256(samples: Sequence[Sample]) -> str:
    """Everything that defines the items (ids, inputs, options, gold answers, metadata): an edited
    answer changes it even when the prompts do not."""
    return sha256_text(json.dumps([dataclasses.asdict(s) for s in samples], ensure_ascii=False,
                                  sort_keys=True, default=str))


def _task_entry(p: PreparedTask, settings: RunSettings) -> dict[str, Any]:
    entry: dict[str, Any] = {"variant": p.variant, "shots": p.shots, "n": len(p.samples),
                             "data_files": dict(p.data.files), "items_sha256": p.items_sha256}
    if p.n_total is not None:
        entry["n_total"] = p.n_total
    source = settings.task_sources.get(p.task.name)
    if source:
        entry["source"] = dict(source)  # the task's type and arguments: how `score` rebuilds it
    return entry


def _differences(old: dict[str, Any], new: dict[str, Any]) -> list[str]:
    out = []
    for k in sorted(set(old) | set(new)):
        if old.get(k) == new.get(k):
            continue
        o, n = old.get(k), new.get(k)
        if isinstance(o, dict) and isinstance(n, dict):
            out += [f"{k}.{d}" for d in _differences(o, n)]
        else:
            out.append(f"{k}: {_short(o)} -> {_short(n)}")
    return out


def _short(v: Any) -> str:
    text = json.dumps(v, ensure_ascii=False, default=str)
    return text if len(text) <= 80 else text[:77] + "..."


def _redacted(settings: Any, key: str) -> Any:
    """Settings as read from an older file with ``settings[key]``'s key-looking values redacted, so
    that no message shows a key an older version wrote (the file is rewritten redacted)."""
    from chimed_eval.core.secrets import redact_args

    if isinstance(settings, dict) and isinstance(settings.get(key), dict):
        return {**settings, key: redact_args(settings[key])}
    return settings


def check_resume(out_dir: Path, old: dict[str, Any] | None, settings: RunSettings,
                  prepared: Sequence[PreparedTask]) -> dict[str, Any]:
    """OUT/run.json pins the settings, each task's definition and the model; a second run into
    the same OUT must match them (new tasks may be added). Returns the run.json now written."""
    path = run_json(out_dir)
    current: dict[str, Any] = {"format": RUN_FORMAT, "settings": settings.resume_key(),
                               "tasks": {p.task.name: _task_entry(p, settings) for p in prepared}}
    if old is not None:
        if old.get("format") != RUN_FORMAT:
            raise ConfigError(f"{path} was written by an older chimed-eval that did not record what defines "
                              "the items and the model; its records cannot be checked: use a new --output "
                              "directory (`chimed-eval score` still reads this one)")
        diff = _differences(_redacted(old["settings"], "model_args"), current["settings"])
        for name, entry in current["tasks"].items():
            if name in old["tasks"]:
                diff += [f"task {name}: {d}" for d in _differences(old["tasks"][name], entry)]
        if diff:
            raise ConfigError(f"{out_dir} holds a run with other settings, data or task definitions (old -> new): "
                              + "; ".join(diff) + ". Use a new --output directory to start a different run")
        current["tasks"] = {**old["tasks"], **current["tasks"]}
        for kept in ("model", "batch_size_chosen"):  # pinned once the backend was open (runner)
            if kept in old:
                current[kept] = old[kept]
    write_json_atomic(path, current)
    return current


def _model_identity(model: ModelInfo) -> dict[str, Any]:
    ident = {"name": model.name, "revision": model.revision, "weights_sha256": model.weights_sha256,
             "dtype": model.dtype}
    if model.weights_sha256 is None:
        ident["path"] = model.path  # nothing else tells two unhashed checkpoints apart
    return ident


def check_model(out_dir: Path, state: dict[str, Any], model: ModelInfo) -> None:
    """The model (weights hash, revision, dtype) must be the one OUT's records came from."""
    ident = _model_identity(model)
    old = state.get("model")
    if old is not None and old != ident:
        raise ConfigError(f"{out_dir} holds records of another model or weights (old -> new): "
                          + "; ".join(_differences(old, ident)) + ". Use a new --output directory")
    if old is None:
        state["model"] = ident
        write_json_atomic(run_json(out_dir), state)


def keep_earlier_tasks(out_dir: Path, new: dict[str, Any], state: dict[str, Any]) -> dict[str, Any]:
    """The results.json to write, sealed with its digest (:mod:`chimed_eval.runs.integrity`): it keeps
    the tasks of earlier runs into the same OUT (same settings and model, checked by run.json), so
    running --tasks B after --tasks A leaves A's results in place. Earlier figures that no longer
    match their digest or records are refused, never carried into a freshly sealed file; those of
    a results.json without a digest stay flagged as unverified."""
    from chimed_eval.runs.reader import seal_results, verify_results

    path = results_json(out_dir)
    if not path.exists():
        return seal_results(new, out_dir)
    old = read_json_file(path, OUT_FIX)
    kept = {k: v for k, v in old.get("tasks", {}).items() if k not in new["tasks"] and k in state["tasks"]}
    if not kept:
        return seal_results(new, out_dir)
    verify_results(old, path, kept)  # refuses figures or records edited since
    integrity = old.get("integrity")
    carried = set(kept) if integrity is None else set(integrity.get("unverified_tasks") or ())
    settings = dict(new["settings"])
    for key in ("scoring", "variants", "shots_by_task", "generation"):
        earlier = {k: v for k, v in (old.get("settings", {}).get(key) or {}).items() if k in kept}
        if earlier:
            settings[key] = {**earlier, **(settings.get(key) or {})}
    return seal_results({**new, "settings": settings, "tasks": {**kept, **new["tasks"]}}, out_dir, carried)
