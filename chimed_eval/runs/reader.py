"""Reading a run back: the one reader of an output directory OUT.

Every read of a run's files (run.json, results.json, samples/<task>.jsonl) goes through here: the
leaderboard, ``check`` and ``--save-baseline``, ``compare`` and ``report``, ``merge`` and ``score``,
the judge (the answers it grades), the contamination clean figures, a task rebuilt from its records.
No module outside :mod:`chimed_eval.runs` opens those files (``tests/test_one_reader.py``). Like
inspect's ``read_eval_log``, it returns typed records, never dicts of unknown shape:

* :func:`read_run` — ``OUT/results.json`` as a :class:`~chimed_eval.core.types.RunResult`
  (``ModelInfo``, ``TaskResult``, ``Metric``), validated field by field;
* :func:`iter_samples` — ``OUT/samples/<task>.jsonl`` as :class:`~chimed_eval.core.types.SampleScore`
  records in file order (torn lines of an interrupted write are skipped, as the runner skips them);
* :func:`read_run_state` — ``OUT/run.json`` (what the records depend on) as a :class:`RunState`;
* :func:`iter_records`, :func:`first_record`, :func:`sample_tasks` — the raw records, for readers
  that look at keys a SampleScore does not have (the judge, ``check``'s prompt hashes);
  :func:`recorded_model`, :func:`is_run_dir` — what the judge and ``score`` ask of OUT;
* :func:`read_json_file` / :func:`read_jsonl` (from :mod:`chimed_eval.runs.jsonio`) — the JSON
  decoding itself, for the files the judge and contamination keep beside a run.

Errors are :class:`~chimed_eval.core.errors.ConfigError` naming the file and what is wrong (the CLI
prints them as one line and exits 2). Reading is lenient about what an older writer may have left
out (a missing ``subjects`` is empty, a missing model is "unknown") and strict about types: a
field that is present must have the documented type (``chimed_eval/schema/results.schema.json``).
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field, replace
from functools import partial
from pathlib import Path
from typing import TYPE_CHECKING, Any, Iterable, Iterator, Mapping

from chimed_eval.core.errors import ConfigError
from chimed_eval.core.types import Metric, ModelInfo, RunResult, SampleScore, TaskResult
from chimed_eval.runs.jsonio import OUT_FIX, read_json_file, read_jsonl  # noqa: F401 (the one reader's door)
from chimed_eval.runs.outdir import (  # noqa: F401 (where a run's files lie, for every reader)
    RESULTS_FILE, RUN_FILE, results_json, run_json, samples_dir, samples_file,
)

if TYPE_CHECKING:
    from chimed_eval.runs.integrity import Verification


def results_file(path: Path) -> Path:
    """``path`` itself, or ``path/results.json`` when ``path`` is a directory."""
    path = Path(path)
    return results_json(path) if path.is_dir() else path


# --- results.json ------------------------------------------------------------------------------------


def read_run(path: Path, verify: bool = True, check_records: bool = True) -> RunResult:
    """The results of a run: ``path`` is its output directory or a results.json file.

    With ``verify`` (every reader that presents figures), the figures are checked against the
    digest written with them and the records beside them (:mod:`chimed_eval.runs.integrity`): a
    mismatch is a ConfigError naming the file; what cannot be checked comes back flagged in
    ``RunResult.integrity``. ``score`` reads without: it recomputes the figures anyway.
    ``RunResult.samples(task)`` then reads ``samples/<task>.jsonl`` beside the file.
    ``check_records=False``: check the figures against their digest only, not the records beside
    them (for a reader that reports stale records itself, as the report's contamination section)."""
    f = results_file(path)
    if not f.exists():
        raise ConfigError(f"{f}: no results.json there (give results.json files or run output directories)")
    doc = read_json_file(f)
    run = replace(run_from_dict(doc, f), sample_source=partial(iter_samples, f.parent),  # RunResult.samples()
                  usage=read_usage_summary(f.parent))
    if not verify:
        return run
    found = verify_results(doc, f, None if check_records else ())
    return replace(run, integrity=str(found))


def read_usage_summary(out_dir: Path) -> dict[str, Any] | None:
    """``OUT/usage.json`` (tokens, latency, cost per task and run; :mod:`chimed_eval.runs.usage`),
    or None where a run wrote none (an older run, a merge)."""
    path = Path(out_dir) / "usage.json"
    if not path.is_file():
        return None
    doc = read_json_file(path)
    if not isinstance(doc, dict):
        raise ConfigError(f"{path}: expected a JSON object (the run's usage summary)")
    return doc


def read_run_if_any(out_dir: Path, verify: bool = True) -> RunResult | None:
    """:func:`read_run` of OUT, or None when OUT holds no results.json yet (the records of a run
    that has not finished, or a run directory copied without its figures)."""
    return read_run(out_dir, verify) if results_json(out_dir).exists() else None


def verify_results(doc: Mapping[str, Any], f: Path, tasks: Iterable[str] | None = None) -> "Verification":
    """:func:`chimed_eval.runs.integrity.verify` of a results document read from ``f``, against the
    records in ``f``'s directory (only ``tasks`` when given)."""
    from chimed_eval.runs.integrity import verify

    return verify(doc, f, lambda t: samples_file(f.parent, t), tasks)


def seal_results(doc: Mapping[str, Any], out_dir: Path, unverified_tasks: Iterable[str] = ()) -> dict[str, Any]:
    """A results document about to be written to ``out_dir`` with its digest
    (:func:`chimed_eval.runs.integrity.seal`); every writer of results.json calls this."""
    from chimed_eval.runs.integrity import seal

    return seal(doc, out_dir, lambda t: samples_file(out_dir, t), unverified_tasks)


class _Fields:
    """Typed access to one JSON object; every error names the file and where in it."""

    def __init__(self, obj: Mapping[str, Any], source: Path, where: str) -> None:
        self.obj, self.source, self.where = obj, source, where

    def error(self, msg: str) -> ConfigError:
        return ConfigError(f"{self.source}: {self.where}{msg}")

    def get(self, key: str, types: type | tuple[type, ...], default: Any = None, required: bool = False) -> Any:
        if key not in self.obj or self.obj[key] is None:
            if required:
                raise self.error(f"lacks {key!r}")
            return default
        v = self.obj[key]
        if not isinstance(v, types) or (isinstance(v, bool) and bool not in _as_tuple(types)):
            names = "/".join(t.__name__ for t in _as_tuple(types))
            raise self.error(f"{key!r} must be {names}, got {v!r}")
        return v

    def obj_field(self, key: str) -> dict[str, Any]:
        return dict(self.get(key, dict, {}))


def _as_tuple(types: type | tuple[type, ...]) -> tuple[type, ...]:
    return types if isinstance(types, tuple) else (types,)


_NUMBER = (int, float)


def metric_from_dict(m: Any, source: Path, where: str) -> Metric:
    """One metric object. A null value reads as NaN (a figure that could not be computed); values
    keep their JSON type (an int stays an int), so writing a record back gives the same bytes."""
    if not isinstance(m, dict):
        raise ConfigError(f"{source}: {where}must be an object, got {type(m).__name__}")
    f = _Fields(m, source, where)
    name = f.get("name", str, required=True)
    f.where = f"{where}{name!r}: "
    if "value" not in m:
        raise f.error("has no 'value'")
    value = f.get("value", _NUMBER, math.nan)
    return Metric(name=name, value=value, ci_low=f.get("ci_low", _NUMBER), ci_high=f.get("ci_high", _NUMBER),
                  n=f.get("n", int), averaging=f.get("averaging", str), protocol=f.get("protocol", str),
                  tokenization=f.get("tokenization", str), ci_method=f.get("ci_method", str),
                  grader_status=_grader_status(f))


def _grader_status(f: _Fields) -> dict[str, Any] | None:
    """A rubric figure's ``grader_status`` object (its ``status`` one of the three), or None."""
    gs = f.get("grader_status", dict)
    if gs is not None and gs.get("status") not in ("validated", "below-threshold", "unvalidated"):
        raise f.error(f"'grader_status.status' must be validated, below-threshold or unvalidated, got {gs.get('status')!r}")
    return None if gs is None else dict(gs)


def _task_from_dict(name: str, t: Any, source: Path) -> TaskResult:
    where = f"task {name!r}: "
    if not isinstance(t, dict):
        raise ConfigError(f"{source}: {where}must be an object, got {type(t).__name__}")
    f = _Fields(t, source, where)
    n = f.get("n", int, required=True)
    if n < 0:
        raise f.error(f"'n' must be a count of items, got {n}")
    metrics = f.get("metrics", list, required=True)
    files = f.obj_field("data_files")
    if not all(isinstance(h, str) for h in files.values()):
        raise f.error("'data_files' must map file names to hash strings")
    subjects = f.obj_field("subjects")
    if not all(isinstance(v, dict) for v in subjects.values()):
        raise f.error("'subjects' must map subject names to objects")
    return TaskResult(
        task=name, n=n, items_sha256=f.get("items_sha256", str, required=True),
        prompts_sha256=f.get("prompts_sha256", str, required=True), data_files=files,
        metrics=tuple(metric_from_dict(m, source, f"{where}metric {j + 1} ") for j, m in enumerate(metrics)),
        subjects=subjects, variant=f.get("variant", str), shots=f.get("shots", int, 0),
        extraction_failures=f.get("extraction_failures", int), skipped=f.get("skipped", dict))


def run_from_dict(doc: Any, source: Path) -> RunResult:
    """A results.json document (already parsed) as typed records; ``source`` names it in errors."""
    if not isinstance(doc, dict) or not isinstance(doc.get("tasks"), dict):
        raise ConfigError(f"{source}: not a chimed-eval results.json (expected a 'tasks' object)")
    top = _Fields(doc, source, "")
    model = _Fields(top.obj_field("model"), source, "model: ")
    info = ModelInfo(name=model.get("name", str, "unknown"), path=model.get("path", str, ""),
                     revision=model.get("revision", str), weights_sha256=model.get("weights_sha256", str),
                     dtype=model.get("dtype", str))
    return RunResult(schema_version=top.get("schema_version", str, ""), model=info,
                     settings=top.obj_field("settings"),
                     tasks=tuple(_task_from_dict(str(k), v, source) for k, v in doc["tasks"].items()),
                     created=top.get("created", str, ""))


# --- samples/<task>.jsonl ----------------------------------------------------------------------------


def iter_records(out_dir: Path, task: str) -> Iterator[dict[str, Any]]:
    """The raw per-sample records of a task, in file order (nothing when the file does not exist).

    Lines are cut at ``\\n`` only (a prompt may hold a raw U+2028 or U+0085, which
    :meth:`str.splitlines` would cut); a torn or invalid line, as a killed write leaves, and a line
    that is not a record (no ``id``) are skipped: the runner recomputes those items."""
    return read_jsonl(samples_file(out_dir, task))


def iter_samples(out_dir: Path, task: str) -> Iterator[SampleScore]:
    """The per-sample records of a task as SampleScore, in file order (see :func:`iter_records`).
    A record that parses but is not a SampleScore is a ConfigError naming the file."""
    from chimed_eval.core.types import record_to_score

    for rec in iter_records(out_dir, task):
        try:
            yield record_to_score(rec)
        except TypeError as exc:
            raise ConfigError(f"{samples_file(out_dir, task)}: record {rec.get('id')!r} is not a sample "
                              f"record ({exc})") from None


def sample_tasks(out_dir: Path) -> list[str]:
    """The tasks with a records file in OUT (``samples/<task>.jsonl``), sorted by name."""
    d = samples_dir(out_dir)
    return sorted(p.stem for p in d.glob("*.jsonl")) if d.is_dir() else []


def first_record(out_dir: Path, task: str) -> dict[str, Any] | None:
    """The first saved record of a task (see :func:`iter_records`), or None: enough to tell what
    kind of task wrote the records (``score`` rebuilding a task, the judge finding generations)."""
    return next(iter_records(out_dir, task), None)


def first_record_extra(out_dir: Path, task: str) -> dict[str, Any] | None:
    """The ``extra`` mapping of the first saved record of a task, or None (no file, no record, no
    mapping): lets ``chimed-eval score`` recognise what kind of task wrote the records."""
    rec = first_record(out_dir, task)
    extra = rec.get("extra") if rec is not None else None
    return extra if isinstance(extra, dict) else None


# --- run.json ----------------------------------------------------------------------------------------


@dataclass(frozen=True)
class TaskState:
    """What OUT/run.json pins for one task: the resolved variant and shots, the items recorded,
    the data files, the hash of the items (format 2), the whole task's item count for a shard, and
    what defines a user's own task (``source``). Keys this reader does not know stay in ``extra``."""

    variant: str
    shots: int
    n: int | None = None
    data_files: Mapping[str, str] = field(default_factory=dict)
    items_sha256: str | None = None
    n_total: int | None = None
    source: Any = None
    extra: Mapping[str, Any] = field(default_factory=dict)

    def to_dict(self) -> dict[str, Any]:
        """The run.json entry, keys in the order the runner writes them; absent ones stay absent."""
        d: dict[str, Any] = {"variant": self.variant, "shots": self.shots}
        if self.n is not None:
            d["n"] = self.n
        d["data_files"] = dict(self.data_files)
        for k in ("items_sha256", "n_total", "source"):
            if getattr(self, k) is not None:
                d[k] = getattr(self, k)
        return {**d, **self.extra}


_TASK_STATE_KEYS = ("variant", "shots", "n", "data_files", "items_sha256", "n_total", "source")


@dataclass(frozen=True)
class RunState:
    """OUT/run.json: the layout ``format`` (2 since items and model are pinned; None before),
    the run-wide resume settings, per task its :class:`TaskState`, and the model identity once a
    backend has run."""

    path: Path
    format: int | None
    settings: Mapping[str, Any]
    tasks: Mapping[str, TaskState]
    model: Mapping[str, Any] | None = None

    @property
    def seed(self) -> int:
        return int(self.settings.get("seed", 1234))


def read_run_state(out_dir: Path) -> RunState:
    """OUT/run.json as a RunState; ConfigError naming the file when it is missing or malformed."""
    path = run_json(out_dir)
    if not path.exists():
        raise ConfigError(f"{path} not found: {out_dir} is not a chimed-eval output directory")
    doc = read_json_file(path, OUT_FIX)
    if not isinstance(doc, dict) or not isinstance(doc.get("settings"), dict) or not isinstance(doc.get("tasks"), dict):
        raise ConfigError(f"{path}: not a chimed-eval run.json (needs 'settings' and 'tasks' objects)")
    top = _Fields(doc, path, "")
    tasks = {}
    for name, t in doc["tasks"].items():
        if not isinstance(t, dict):
            raise ConfigError(f"{path}: task {name!r} must be an object, got {type(t).__name__}")
        f = _Fields(t, path, f"task {name!r}: ")
        tasks[name] = TaskState(
            variant=f.get("variant", str, required=True), shots=f.get("shots", int, required=True),
            n=f.get("n", int), data_files=f.obj_field("data_files"), items_sha256=f.get("items_sha256", str),
            n_total=f.get("n_total", int), source=t.get("source"),
            extra={k: v for k, v in t.items() if k not in _TASK_STATE_KEYS})
    model = top.get("model", dict)
    return RunState(path, top.get("format", int), doc["settings"], tasks, model)


def is_run_dir(out_dir: Path) -> bool:
    """Whether ``out_dir`` holds a run.json (a chimed-eval output directory, finished or not)."""
    return run_json(out_dir).is_file()


def require_run_dir(out_dir: Path) -> None:
    """ConfigError unless ``out_dir`` is a chimed-eval output directory (holds a run.json)."""
    if not is_run_dir(out_dir):
        raise ConfigError(f"{out_dir} has no run.json: not a chimed-eval output directory")


def recorded_model(out_dir: Path) -> dict[str, Any] | None:
    """The model of a run as OUT records it: results.json's ``model``, else run.json's (once a
    backend has run); None when neither records one. Read as written, without checking the
    figures (the judge pins the model it grades, not the figures)."""
    for path in (results_json(out_dir), run_json(out_dir)):
        if path.exists():
            doc = read_json_file(path, OUT_FIX)
            if isinstance(doc, dict) and isinstance(doc.get("model"), dict):
                return doc["model"]
    return None
