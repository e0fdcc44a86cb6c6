"""One side of a ``check``: a run's results.json or a baseline file, validated and read as a
:class:`RunView` (:func:`load_view`).

``chimed-eval check`` compares two of these; ``--save-baseline`` writes the view of a run as a
baseline file (:mod:`chimed_eval.reports.baseline`). A results.json is read through the one reader
of runs (:mod:`chimed_eval.runs.reader`: typed records, the figures verified against their digest,
the per-item prompt hashes from ``samples/<task>.jsonl``); a baseline file holds metrics and hashes
only (item ids and prompt hashes, never prompt or item text, no local paths).

Any document that cannot be compared is refused here with a ConfigError naming the file and what
is wrong (exit 2), so the comparison itself never meets a malformed value (:func:`_validate`: the
same checks for both, stricter for a baseline). A baseline's 95% interval is what a metric may
move within, so an interval that makes no sense is refused too: one that does not contain its own
value (the very run it came from would fail it), one reaching outside the metric's range
(:func:`metric_range`: ``[-1000, 1000]`` for an accuracy), and one covering the whole range
(``[0, 100]``), which lets any value pass and which no 95% interval over more than
:data:`FULL_RANGE_MAX_N` items can be.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Callable, Mapping

from chimed_eval.core.errors import ConfigError
from chimed_eval.core.types import Metric, TaskResult
from chimed_eval.runs.reader import (
    iter_records, metric_from_dict, read_json_file, results_file, run_from_dict, samples_file, verify_results,
)

BASELINE_KEY = "chimed_eval_baseline"  # what marks a baseline file (its version)
#: figures whose range is not 0..100 (percentage points, every other figure with an interval)
_RANGES = {"brier": (0.0, 2.0), "position_bias": (-100.0, 100.0)}
#: counts, sums and means of scale points or log-probabilities: no range to check against
_UNBOUNDED_SUFFIXES = ("_count", "_sum", "_mean")
#: the most items over which a 95% interval can cover a metric's whole range: a bootstrap interval
#: reaches both ends only when at least 2.5% of the resamples sit at each, i.e. 0.5 ** n >= 0.025
#: (n <= 5, stratified or not), and a Wilson interval never does
FULL_RANGE_MAX_N = 5

def _is_number(x: Any) -> bool:
    return isinstance(x, (int, float)) and not isinstance(x, bool)


def _validate(path: Path, doc: Mapping[str, Any], baseline: bool) -> None:
    """Refuse (ConfigError, exit 2) a document ``check`` cannot compare, before any comparison.

    Both sides need the shape the comparison reads (hashes, ``n``, a list of named metrics each
    with a ``value``). A baseline must also hold something to check (tasks, metrics) and only
    finite numbers as values: a NaN or missing value cannot be compared, and passing would hide
    that the baseline is broken. On the current side a null or NaN value is a finding (a
    regression), not a usage error.
    """
    what = "baseline" if baseline else "results file"

    def bad(msg: str) -> ConfigError:
        return ConfigError(f"{path}: not a usable {what}: {msg}")

    for key in ("model", "settings"):
        if doc.get(key) is not None and not isinstance(doc[key], dict):
            raise bad(f"'{key}' must be an object, got {type(doc[key]).__name__}")
    if baseline and not doc["tasks"]:
        raise bad("'tasks' is empty: there is nothing to check against")
    for name, t in doc["tasks"].items():
        where = f"task {name!r}"
        if not isinstance(t, dict):
            raise bad(f"{where} must be an object, got {type(t).__name__}")
        for key in ("items_sha256", "prompts_sha256"):
            if not isinstance(t.get(key), str):
                raise bad(f"{where} lacks {key} (a hash string)" if key not in t
                          else f"{where}: {key} must be a hash string, got {t[key]!r}")
        if not isinstance(t.get("n"), int) or isinstance(t["n"], bool) or t["n"] < 0:
            raise bad(f"{where}: 'n' must be a count of items, got {t.get('n')!r}")
        _validate_metrics(t.get("metrics"), where, baseline, bad)
        if "items" in t:
            _validate_items(t["items"], t["n"], where, bad)
        data = t.get("data_sha256")
        if data is not None and not (isinstance(data, list) and all(isinstance(h, str) for h in data)):
            raise bad(f"{where}: 'data_sha256' must be a list of hash strings, got {data!r}")
        files = t.get("data_files")
        if files is not None and not (isinstance(files, dict) and all(isinstance(h, str) for h in files.values())):
            raise bad(f"{where}: 'data_files' must map file names to hash strings")


def _validate_metrics(metrics: Any, where: str, baseline: bool, bad: Callable[[str], ConfigError]) -> None:
    if not isinstance(metrics, list):
        raise bad(f"{where} lacks metrics" if metrics is None
                  else f"{where}: 'metrics' must be a list of metric objects, got {type(metrics).__name__}")
    if baseline and not metrics:
        raise bad(f"{where}: 'metrics' is empty: there is nothing to check")
    seen: set[str] = set()
    for j, m in enumerate(metrics):
        at = f"{where} metric {j + 1}"
        if not isinstance(m, dict):
            raise bad(f"{at} must be an object, got {type(m).__name__}")
        if not isinstance(m.get("name"), str) or not m["name"]:
            raise bad(f"{at} lacks a 'name'")
        at = f"{where} metric {m['name']!r}"
        if m["name"] in seen:
            raise bad(f"{at} is listed twice")
        seen.add(m["name"])
        if "value" not in m:
            raise bad(f"{at} has no 'value'")
        v = m["value"]
        if baseline and not (_is_number(v) and math.isfinite(v)):
            raise bad(f"{at}: value {v!r} is not a finite number")
        if not baseline and v is not None and not _is_number(v):
            raise bad(f"{at}: value {v!r} is not a number")
        for key in ("ci_low", "ci_high"):
            c = m.get(key)
            if c is not None and not (_is_number(c) and (math.isfinite(c) or not baseline)):
                raise bad(f"{at}: {key} {c!r} is not a finite number")
        if baseline:
            _check_interval(m, at, bad)


def metric_range(name: str) -> tuple[float, float] | None:
    """The values metric ``name`` can take: ``(0, 100)`` for a percentage (accuracies, F1, BLEU,
    ROUGE, rates, ECE, AUC, shares), ``(0, 2)`` for ``brier``, ``(-100, 100)`` for
    ``position_bias``; None for counts, sums and means of points or log-probabilities."""
    if name in _RANGES:
        return _RANGES[name]
    return None if name.endswith(_UNBOUNDED_SUFFIXES) else (0.0, 100.0)


def _check_interval(m: Mapping[str, Any], at: str, bad: Callable[[str], ConfigError]) -> None:
    """Refuse a baseline interval that does not contain its value, reaches outside the metric's
    range, or covers all of it over more than :data:`FULL_RANGE_MAX_N` items (or an unstated
    number): it then checks nothing, and no interval computed from the run can be that wide. A
    slack of 1e-9 of the scale absorbs the rounding of values computed at the edge (a ROUGE of
    99.99999949999999 in [99.9999995, 99.9999995])."""
    lo, hi, v = m.get("ci_low"), m.get("ci_high"), m["value"]
    if lo is None or hi is None:
        return
    rng = metric_range(m["name"])
    slack = 1e-9 * max(1.0, abs(v), *(abs(x) for x in rng or ()))
    shown = f"interval [{lo:g}, {hi:g}]"
    if not lo - slack <= v <= hi + slack:
        raise bad(f"{at}: {shown} does not contain its value {v:g}")
    if rng is None:
        return
    if lo < rng[0] - slack or hi > rng[1] + slack:
        raise bad(f"{at}: {shown} reaches outside the metric's range {rng[0]:g}..{rng[1]:g}")
    n = m.get("n")
    few = _is_number(n) and n <= FULL_RANGE_MAX_N
    if hi - lo >= rng[1] - rng[0] - slack and not few:
        over = f"over {n} items " if _is_number(n) else "with no item count "
        raise bad(f"{at}: {shown} covers the metric's whole range {rng[0]:g}..{rng[1]:g} {over}(so any value "
                  f"would pass), which no 95% interval over more than {FULL_RANGE_MAX_N} items can")


def _validate_items(items: Any, n: int, where: str, bad: Callable[[str], ConfigError]) -> None:
    if not isinstance(items, list):
        raise bad(f"{where}: 'items' must be a list of [item id, prompt hash] pairs, got {type(items).__name__}")
    for k, pair in enumerate(items):
        if not (isinstance(pair, list) and len(pair) == 2 and isinstance(pair[0], (str, int))
                and not isinstance(pair[0], bool) and isinstance(pair[1], str)):
            raise bad(f"{where}: items[{k}] must be an [item id, prompt hash] pair, got {pair!r}")
    if len(items) != n:
        raise bad(f"{where}: 'items' lists {len(items)} items but 'n' is {n}")



# --- the view ------------------------------------------------------------------------------------


@dataclass(frozen=True)
class TaskView:
    """What a check compares of one task, from a results.json or a baseline file alike."""

    n: int
    items_sha256: str
    prompts_sha256: str
    metrics: tuple[Metric, ...]
    variant: str | None = None
    shots: int | None = None
    data_sha256: tuple[str, ...] = ()


@dataclass(frozen=True)
class RunView:
    """What a check needs of one side: per task n, hashes, metrics and (when known) the ordered
    (item id, prompt hash) pairs."""

    source: Path
    model_name: str | None
    weights_sha256: str | None
    settings: Mapping[str, Any]
    tasks: Mapping[str, TaskView]
    items: Mapping[str, list[tuple[str, str]]]
    integrity: str = ""  # a results.json's check against its digest: "verified" or "unverified: why"


def _read_json(path: Path) -> dict[str, Any]:
    """The JSON object in ``path``; anything unreadable is a ConfigError naming the file (exit 2)."""
    doc = read_json_file(path)
    if not isinstance(doc, dict) or not isinstance(doc.get("tasks"), dict):
        raise ConfigError(f"{path}: not a chimed-eval results.json or baseline (expected a 'tasks' object)")
    return doc


def _sample_items(out_dir: Path, task: str) -> list[tuple[str, str]] | None:
    """(id, prompt hash) of each record of ``OUT/samples/<task>.jsonl`` (torn lines skipped); None
    when there are none to read."""
    if not samples_file(out_dir, task).is_file():
        return None
    # the raw records: only id and prompt hash are compared, and a record that would not parse as a
    # whole sample must never switch the per-item comparison off
    return [(str(r["id"]), str(r.get("prompt_hash"))) for r in iter_records(out_dir, task)]


def _baseline_task(t: Mapping[str, Any], source: Path, name: str) -> TaskView:
    """A task of a baseline file (already validated by :func:`_validate`)."""
    return TaskView(
        n=t["n"], items_sha256=t["items_sha256"], prompts_sha256=t["prompts_sha256"],
        metrics=tuple(metric_from_dict(m, source, f"task {name!r} metric ") for m in t["metrics"]),
        variant=t.get("variant"), shots=t.get("shots"),
        data_sha256=tuple(sorted(t.get("data_sha256") or set((t.get("data_files") or {}).values()))))


def _result_task(t: TaskResult) -> TaskView:
    return TaskView(n=t.n, items_sha256=t.items_sha256, prompts_sha256=t.prompts_sha256, metrics=t.metrics,
                    variant=t.variant, shots=t.shots, data_sha256=tuple(sorted(set(t.data_files.values()))))


def load_view(path: Path, role: str = "results") -> RunView:
    """A run directory, a results.json or a baseline file; ``role`` is ``results`` or ``baseline``
    (a baseline is validated strictly, see :func:`_validate`)."""
    path = Path(path)
    f = results_file(path)
    if not f.exists():
        raise ConfigError(f"{f}: not found (give a run's output directory, its results.json or a baseline file)")
    doc = _read_json(f)
    _validate(f, doc, baseline=role == "baseline")
    items: dict[str, list[tuple[str, str]]] = {}
    for name, t in doc["tasks"].items():
        if "items" in t:
            items[name] = [(str(i), str(h)) for i, h in t["items"]]
        else:
            got = _sample_items(f.parent, name)
            if got is not None and len(got) == t["n"]:
                items[name] = got
    if BASELINE_KEY in doc:  # a baseline file: its own shape, validated above
        model = doc.get("model") or {}
        tasks = {name: _baseline_task(t, f, name) for name, t in doc["tasks"].items()}
        return RunView(f, model.get("name"), model.get("weights_sha256"), doc.get("settings") or {}, tasks, items)
    run = run_from_dict(doc, f)  # a results.json: the one reader of runs
    found = verify_results(doc, f)  # figures or records edited after they were written: refused (exit 2)
    return RunView(f, run.model.name, run.model.weights_sha256, run.settings,
                   {t.task: _result_task(t) for t in run.tasks}, items, str(found))
