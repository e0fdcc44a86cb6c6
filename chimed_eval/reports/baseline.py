"""Baseline files: what ``chimed-eval check RUN --save-baseline FILE`` writes, and the strict
validation that both a baseline and a results file pass before :mod:`chimed_eval.reports.check` compares them.

A baseline holds metrics and hashes only (item ids and prompt hashes, never prompt or item text,
no local paths). Any document that cannot be compared is refused here with a ConfigError naming
the file and what is wrong (exit 2), so the comparison itself never meets a malformed value.

A baseline's 95% interval is what a metric may move within, so an interval that makes no sense is
refused too: one that does not contain its own value (the very run it came from would fail it),
one reaching outside the metric's range (:func:`metric_range`: ``[-1000, 1000]`` for an accuracy),
and one covering the whole range (``[0, 100]``), which lets any value pass and which no 95%
interval over more than :data:`FULL_RANGE_MAX_N` items can be.
"""

from __future__ import annotations

import datetime as _dt
import math
from pathlib import Path
from typing import TYPE_CHECKING, Any, Callable, Mapping, Sequence

from chimed_eval.core.errors import ConfigError
from chimed_eval.runs.records import metric_to_dict

if TYPE_CHECKING:
    from chimed_eval.reports.check import RunView

BASELINE_VERSION = 1
BASELINE_KEY = "chimed_eval_baseline"  # what marks a baseline file (its version)
#: figures whose range is not 0..100 (percentage points, every other figure with an interval)
_RANGES = {"brier": (0.0, 2.0), "position_bias": (-100.0, 100.0)}
#: counts, sums and means of scale points or log-probabilities: no range to check against
_UNBOUNDED_SUFFIXES = ("_count", "_sum", "_mean")
#: the most items over which a 95% interval can cover a metric's whole range: a bootstrap interval
#: reaches both ends only when at least 2.5% of the resamples sit at each, i.e. 0.5 ** n >= 0.025
#: (n <= 5, stratified or not), and a Wilson interval never does
FULL_RANGE_MAX_N = 5
SETTINGS_KEPT = ("backend", "variant", "shots", "seed", "limit", "batch_size", "dtype", "decoding", "max_new_tokens")


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
    from chimed_eval.reports.check import load_view  # lazily: check imports this module
    from chimed_eval.runs.records import write_json_atomic

    view = load_view(results)  # figures edited after they were written are refused there (exit 2)
    if view.integrity.startswith("unverified"):
        import sys

        print(f"note: {view.source}: figures {view.integrity}; the baseline takes them as they are", file=sys.stderr)
    doc = baseline_dict(view, tasks)
    _validate(view.source, doc, baseline=True)  # never write a baseline that check would refuse
    write_json_atomic(Path(out), doc)
    return doc
