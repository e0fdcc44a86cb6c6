"""The output directory OUT: one process at a time, and only a chimed-eval run adopts it.

* :class:`OutLock` takes an exclusive ``fcntl`` lock on ``OUT/.chimed-eval.lock`` for the whole
  run (held by the open file, so a killed process releases it); a second process gets
  "OUT is in use by PID ...".
* :func:`check_adoptable` refuses an OUT that is not empty and holds no ``run.json`` (its records
  would otherwise be relabelled as this run's), and a ``results.json`` that chimed-eval did not
  write (it would be overwritten).
* :func:`run_json`, :func:`results_json`, :func:`samples_file`: where a run's files lie in OUT
  (read them through :mod:`chimed_eval.runs.reader`, the one reader of runs).
* :func:`remove_stale_temp_files` deletes what a killed atomic write left behind.
"""

from __future__ import annotations

import os
import re
from pathlib import Path
from typing import Any

from chimed_eval.core.errors import ConfigError
from chimed_eval.runs.jsonio import OUT_FIX, read_json_file

LOCK_NAME = ".chimed-eval.lock"
RUN_FILE = "run.json"
RESULTS_FILE = "results.json"
SAMPLES_DIR = "samples"
#: a temporary file of :func:`chimed_eval.runs.records._replace_atomic`: ``.<name>.<8 random chars>.tmp`` (mkstemp)
_TEMP_FILE = re.compile(r"\..+\.[a-z0-9_]{8}\.tmp")


def run_json(out_dir: Path) -> Path:
    """``OUT/run.json``: what the records depend on (settings, per task its definition, the model)."""
    return Path(out_dir) / RUN_FILE


def results_json(out_dir: Path) -> Path:
    """``OUT/results.json``: the figures, sealed with their digest."""
    return Path(out_dir) / RESULTS_FILE


def samples_dir(out_dir: Path) -> Path:
    """``OUT/samples``: one JSONL file of per-item records per task."""
    return Path(out_dir) / SAMPLES_DIR


def samples_file(out_dir: Path, task: str) -> Path:
    """``OUT/samples/<task>.jsonl``."""
    return samples_dir(out_dir) / f"{task}.jsonl"


def ensure_dir(path: Path, what: str = "--output") -> None:
    """``mkdir -p`` with a clear error (OUT is a file, a parent is read-only, ...)."""
    if path.exists() and not path.is_dir():
        raise ConfigError(f"{what} {path} exists and is not a directory")
    try:
        path.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise ConfigError(f"{what} {path}: cannot create the directory ({exc.strerror or exc})") from None


class OutLock:
    """Exclusive lock on OUT for the lifetime of a run (``with OutLock(out): ...``)."""

    def __init__(self, out_dir: Path) -> None:
        self.out_dir = Path(out_dir)
        self.path = self.out_dir / LOCK_NAME
        self._f = None

    def __enter__(self) -> "OutLock":
        import fcntl

        ensure_dir(self.out_dir)
        try:
            f = open(self.path, "a+", encoding="utf-8")
        except OSError as exc:
            raise ConfigError(f"{self.out_dir}: cannot write in the output directory "
                              f"({exc.strerror or exc}): {self.path}") from None
        try:
            fcntl.flock(f.fileno(), fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            f.seek(0)
            holder = f.read().strip() or "unknown"
            f.close()
            raise ConfigError(f"{self.out_dir} is in use by PID {holder} (another chimed-eval process); "
                              "wait for it to finish or use another --output") from None
        f.seek(0)
        f.truncate()
        f.write(str(os.getpid()))
        f.flush()
        self._f = f
        return self

    def __exit__(self, *exc: object) -> None:
        if self._f is not None:
            import fcntl

            try:
                self._f.seek(0)
                self._f.truncate()
            except OSError:
                pass
            fcntl.flock(self._f.fileno(), fcntl.LOCK_UN)
            self._f.close()
            self._f = None


def remove_stale_temp_files(out_dir: Path) -> list[Path]:
    """Delete the temporary files a killed atomic write left (``.<task>.jsonl.<random>.tmp``,
    ``.results.json.<random>.tmp``...) in OUT, ``OUT/samples`` and each ``OUT/judge/<dir>`` and its
    ``records``; returns those removed. Call only holding OUT's lock (:class:`OutLock`): every
    process that writes there holds it, so no such file belongs to a live write."""
    judge = Path(out_dir) / "judge"
    dirs = [Path(out_dir), samples_dir(out_dir)]
    if judge.is_dir():
        dirs += [d for j in sorted(judge.iterdir()) if j.is_dir() for d in (j, j / "records")]
    removed = []
    for d in dirs:
        if not d.is_dir():
            continue
        for p in sorted(d.iterdir()):
            if _TEMP_FILE.fullmatch(p.name) and p.is_file() and not p.is_symlink():
                try:
                    p.unlink()
                except FileNotFoundError:
                    continue
                removed.append(p)
    return removed


def is_chimed_results(obj: Any) -> bool:
    """What chimed-eval writes as results.json: an object with its schema version, model,
    settings and tasks."""
    return (isinstance(obj, dict) and isinstance(obj.get("schema_version"), str)
            and isinstance(obj.get("model"), dict) and isinstance(obj.get("settings"), dict)
            and isinstance(obj.get("tasks"), dict))


def check_adoptable(out_dir: Path, allowed_extra: tuple[str, ...] = ()) -> dict[str, Any] | None:
    """The run.json of OUT (None for an empty or new OUT); refuses anything else.

    ``allowed_extra``: names that may sit in an OUT without run.json (``shards`` of an unfinished
    --data-parallel run). The temporary files of an atomic write that a kill interrupted (``.run.json.<random>.tmp``
    before the first run.json landed) do not make OUT foreign: the caller removes them under the lock."""
    if not out_dir.exists():
        return None
    if not out_dir.is_dir():
        raise ConfigError(f"--output {out_dir} exists and is not a directory")
    entries = sorted(e.name for e in out_dir.iterdir() if e.name != LOCK_NAME and e.name not in allowed_extra
                     and not (_TEMP_FILE.fullmatch(e.name) and e.is_file()))  # a killed first write's leftovers
    run_path = run_json(out_dir)
    if not run_path.exists():
        if entries:
            shown = ", ".join(entries[:5]) + (" ..." if len(entries) > 5 else "")
            raise ConfigError(f"{out_dir} is not empty ({shown}) and holds no chimed-eval run.json: refusing to "
                              "adopt records this run did not write; use an empty or new --output directory")
        return None
    run = read_json_file(run_path, OUT_FIX)
    if not (isinstance(run, dict) and isinstance(run.get("settings"), dict) and isinstance(run.get("tasks"), dict)):
        raise ConfigError(f"{run_path}: not a chimed-eval run.json (needs 'settings' and 'tasks' objects)")
    res_path = results_json(out_dir)
    if res_path.exists() and not is_chimed_results(read_json_file(res_path, OUT_FIX)):
        raise ConfigError(f"{res_path} was not written by chimed-eval (no schema_version/model/settings/tasks); "
                          "refusing to overwrite it: move it away or use a new --output directory")
    return run
