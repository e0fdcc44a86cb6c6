"""A judge's own figures, ``OUT/judge/<dir>/results.json``, sealed like the run's results.json.

Every writer of that file (:mod:`chimed_eval.judge.pipeline`, :mod:`chimed_eval.judge.rubric`)
goes through :func:`write_judge_results`, which adds an ``integrity`` object: the sha256 of the
figures (everything but ``integrity`` and ``created``, canonical JSON, as
:func:`chimed_eval.runs.integrity.figures_sha256`) and of each ``records/<task>.jsonl`` the
figures came from. Every reader that presents them goes through :func:`read_judge_results`: a
figure edited by hand, or verdict records edited after the figures were computed, is a
ConfigError naming the file and the way back (the same ``chimed-eval judge`` command recomputes
the figures from the saved verdicts without asking the judge again). A file without the object
(written before this check) is read as it is.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any, Mapping

from chimed_eval.core.errors import ConfigError
from chimed_eval.runs.integrity import INTEGRITY_KEY, check_seal, file_digest, figures_sha256
from chimed_eval.runs.jsonio import read_json_file

_FIX = ("run the same `chimed-eval judge` command again: it recomputes the figures from the saved verdicts "
        "without asking the judge again")


def _records(jdir: Path, tasks: Any) -> dict[str, str | None]:
    return {str(t): file_digest(jdir / "records" / f"{t}.jsonl") for t in (tasks or {})}


def write_judge_results(path: Path, res: Mapping[str, Any]) -> None:
    """Write ``res`` to ``path`` (atomically) with its digest."""
    from chimed_eval.runs.records import write_json_atomic

    body = {k: v for k, v in res.items() if k != INTEGRITY_KEY}
    seal = {"version": 1, "figures_sha256": figures_sha256(body), "records": _records(path.parent, body.get("tasks"))}
    write_json_atomic(path, {**body, INTEGRITY_KEY: seal})


def read_judge_results(path: Path) -> dict[str, Any]:
    """The judge results in ``path``, checked against their digest and the verdict records beside
    them; ConfigError naming the file when they do not match or the file is not a results object."""
    res = read_json_file(path)
    if not isinstance(res, dict) or not isinstance(res.get("tasks", {}), dict):
        raise ConfigError(f"{path}: not a judge results object with a 'tasks' object")
    seal = check_seal(res, path, "records", _FIX)
    if seal is None:
        return res
    for task, want in seal["records"].items():
        got = file_digest(path.parent / "records" / f"{task}.jsonl")
        if want is not None and got is not None and got != want:
            raise ConfigError(f"{path.parent / 'records' / (task + '.jsonl')}: the verdicts changed after {path} "
                              f"was written from them; the figures no longer describe them: {_FIX}")
    return res
