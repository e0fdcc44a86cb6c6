"""Per-sample JSONL records and results.json, written so that a killed run loses nothing.

* Records are appended one batch at a time with a single ``write`` followed by ``fsync``; a
  SIGKILL can at worst leave a torn last line, which the reader drops (that item is recomputed).
* When a task finishes, its records are rewritten in item order through a temporary file and
  ``os.replace`` (atomic on POSIX), as is every JSON file.
"""

from __future__ import annotations

import dataclasses
import json
import os
import tempfile
from pathlib import Path
from typing import Any, Iterable

from chimed_eval.core.errors import ConfigError
from chimed_eval.core.types import Metric, RunResult, TaskResult
from chimed_eval.runs.jsonio import read_jsonl
from chimed_eval.runs.outdir import samples_file


def _current_umask() -> int:
    mask = os.umask(0)
    os.umask(mask)
    return mask


_UMASK = _current_umask()


def _replace_atomic(path: Path, write) -> None:
    """Write through a uniquely named temporary file in the same directory, fsync, then
    ``os.replace``: readers see the old file or the new one, two processes never share a
    temporary file, and a failure (full disk, read-only directory) leaves no temporary file
    behind and raises ConfigError naming ``path``."""
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
        os.fchmod(fd, 0o666 & ~_UMASK)  # mkstemp makes 0600 files; results are as readable as any file
    except OSError as exc:
        raise ConfigError(f"{path}: cannot write ({exc.strerror or exc})") from None
    try:
        with os.fdopen(fd, "w", encoding="utf-8") as f:
            write(f)
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, path)
    except BaseException as exc:
        try:
            os.unlink(tmp)
        except OSError:
            pass
        if isinstance(exc, OSError):
            raise ConfigError(f"{path}: cannot write ({exc.strerror or exc}); nothing was replaced") from None
        raise


def write_text_atomic(path: Path, text: str) -> None:
    """``text`` written to ``path`` as :func:`_replace_atomic` does (pages and tables of reports)."""
    _replace_atomic(path, lambda f: f.write(text))


def write_json_atomic(path: Path, obj: Any) -> None:
    def write(f) -> None:
        json.dump(obj, f, ensure_ascii=False, indent=2)
        f.write("\n")

    _replace_atomic(path, write)


class SampleStore:
    """``OUT/samples/<task>.jsonl``: append batches while running, finalize in item order."""

    def __init__(self, out_dir: Path, task: str) -> None:
        self.path = samples_file(out_dir, task)

    def load(self) -> dict[str, dict[str, Any]]:
        """Records already written, by item id. A torn or invalid line is ignored."""
        return {str(rec["id"]): rec for rec in read_jsonl(self.path)}

    def append(self, records: Iterable[dict[str, Any]]) -> None:
        lines = "".join(json.dumps(r, ensure_ascii=False) + "\n" for r in records)
        if not lines:
            return
        try:
            self.path.parent.mkdir(parents=True, exist_ok=True)
            # If a previous run was killed mid-line, start on a fresh line.
            needs_newline = self.path.exists() and self.path.stat().st_size > 0 and not _ends_with_newline(self.path)
            with open(self.path, "ab") as f:
                f.write((("\n" if needs_newline else "") + lines).encode("utf-8"))
                f.flush()
                os.fsync(f.fileno())
        except OSError as exc:
            # a torn last line (full disk) is dropped by load(): those items are recomputed
            raise ConfigError(f"{self.path}: cannot append records ({exc.strerror or exc}); "
                              "the records saved before are kept, run the same command again to resume") from None

    def finalize(self, ordered: list[dict[str, Any]]) -> None:
        def write(f) -> None:
            for r in ordered:
                f.write(json.dumps(r, ensure_ascii=False) + "\n")

        _replace_atomic(self.path, write)


def _ends_with_newline(path: Path) -> bool:
    with open(path, "rb") as f:
        f.seek(-1, os.SEEK_END)
        return f.read(1) == b"\n"


def metric_to_dict(m: Metric) -> dict[str, Any]:
    """A metric as results.json holds it; ``grader_status`` only on a rubric grader's figures."""
    d = dataclasses.asdict(m)
    if d.get("grader_status") is None:
        d.pop("grader_status", None)
    else:
        d["grader_status"] = dict(m.grader_status or {})
    return d


def task_result_to_dict(t: TaskResult) -> dict[str, Any]:
    d = dataclasses.asdict(t)
    d["metrics"] = [metric_to_dict(m) for m in t.metrics]
    d["data_files"] = dict(t.data_files)
    d["subjects"] = {k: dict(v) for k, v in t.subjects.items()}
    if d.get("skipped") is None:
        d.pop("skipped", None)  # only tasks that skipped rows (on_invalid=skip) say so
    return d


def run_result_to_dict(r: RunResult) -> dict[str, Any]:
    return {
        "schema_version": r.schema_version,
        "created": r.created,
        "model": dataclasses.asdict(r.model),
        "settings": dict(r.settings),
        "tasks": {t.task: task_result_to_dict(t) for t in r.tasks},
    }
