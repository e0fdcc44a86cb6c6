"""The digest sealed into results.json, so that figures edited by hand (or records edited after
the figures were computed) are refused instead of presented.

When the runner, ``score`` or ``merge`` writes results.json it adds an ``integrity`` object:

* ``figures_sha256``: sha256 of the document itself (model, settings, tasks, figures; everything
  but ``created`` and ``integrity``) in a canonical JSON form;
* ``samples``: per task, sha256 of the bytes of ``samples/<task>.jsonl`` the figures came from;
* ``run``: sha256 of what ``run.json`` pins (the run-wide settings, and per task its entry),
  from which ``score`` would recompute the figures;
* ``unverified_tasks``: tasks carried over from a results.json without a digest (written by an
  older version), whose figures were never checked.

:func:`verify` (called by :func:`chimed_eval.runs.reader.read_run`, the one reader) recomputes them: a
mismatch is a ConfigError naming the file (exit 2) with the way back (``chimed-eval score OUT``
recomputes every figure from the records). A document without the object (an older version),
a samples file or run.json that is absent (a results.json copied alone), or carried-over tasks
read as *unverified*: presented, but flagged by the readers that present figures.

What this catches: figures, settings, records or run.json edited alone after the figures were
written (by hand, by a script, by a tool that rewrote one file). What it cannot catch without a
secret key: someone who edits the records and results.json consistently, or who recomputes this
published digest after editing; ``chimed-eval score`` (every figure recomputed from the records)
stays the ground truth.
"""

from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Callable, Iterable, Mapping

from chimed_eval.core.errors import ConfigError
from chimed_eval.runs.jsonio import OUT_FIX, read_json_file
from chimed_eval.runs.outdir import RUN_FILE

INTEGRITY_KEY = "integrity"
INTEGRITY_VERSION = 1
_NOT_FIGURES = (INTEGRITY_KEY, "created")  # the time of writing is not a figure


@dataclass(frozen=True)
class Verification:
    """What :func:`verify` found: ``verified``, or ``unverified`` with the reason."""

    status: str
    reason: str = ""

    @property
    def verified(self) -> bool:
        return self.status == "verified"

    def __str__(self) -> str:
        return self.status + (f": {self.reason}" if self.reason else "")


def _canonical_sha256(obj: Any) -> str:
    # the round trip makes what the writer holds (tuples, int/float as typed) and what a reader
    # parses hash alike
    text = json.dumps(json.loads(json.dumps(obj, ensure_ascii=False)), ensure_ascii=False, sort_keys=True,
                      separators=(",", ":"))
    return hashlib.sha256(text.encode("utf-8")).hexdigest()


def figures_sha256(doc: Mapping[str, Any]) -> str:
    """The digest of a results document's content (all but ``created`` and ``integrity``)."""
    return _canonical_sha256({k: v for k, v in doc.items() if k not in _NOT_FIGURES})


def file_digest(path: Path) -> str | None:
    """sha256 of a file's bytes; None when it does not exist."""
    from chimed_eval.core.types import file_sha256

    try:
        return file_sha256(path)
    except FileNotFoundError:
        return None
    except OSError as exc:
        raise ConfigError(f"{path}: cannot read ({exc.strerror or exc})") from None


def run_pins(run_json: Path, tasks: Iterable[str]) -> dict[str, Any] | None:
    """sha256 of what ``run_json`` pins: ``settings`` (the run-wide settings) and, per task of
    ``tasks``, its entry; None when there is no run.json object there. Per task, so that a later
    run adding a task into the same OUT changes nothing already sealed."""
    if not run_json.is_file():
        return None
    doc = read_json_file(run_json, OUT_FIX)
    if not isinstance(doc, dict) or not isinstance(doc.get("tasks"), dict):
        return None
    return {"settings": _canonical_sha256(doc.get("settings")),
            "tasks": {t: _canonical_sha256(doc["tasks"].get(t)) for t in tasks}}


def seal(doc: Mapping[str, Any], out_dir: Path, samples: Callable[[str], Path],
         unverified_tasks: Iterable[str] = ()) -> dict[str, Any]:
    """``doc`` with its ``integrity`` object, computed from the files of ``out_dir`` now.

    ``samples(task)`` is the records file of a task; ``unverified_tasks``: tasks whose figures
    were carried over unchecked (they stay flagged)."""
    body = {k: v for k, v in doc.items() if k != INTEGRITY_KEY}
    names = list(body.get("tasks") or {})
    integrity: dict[str, Any] = {
        "version": INTEGRITY_VERSION,
        "figures_sha256": figures_sha256(body),
        "samples": {t: file_digest(samples(t)) for t in names},
        "run": run_pins(Path(out_dir) / RUN_FILE, names),
    }
    carried = sorted(set(unverified_tasks) & set(names))
    if carried:
        integrity["unverified_tasks"] = carried
    return {**body, INTEGRITY_KEY: integrity}


def check_seal(doc: Mapping[str, Any], source: Path, files_key: str, fix: str) -> dict[str, Any] | None:
    """``doc``'s ``integrity`` object once its figures match their digest; None when it has none.
    ConfigError naming ``source`` (with ``fix``, the way back) when the object is malformed (it
    needs ``figures_sha256`` and the ``files_key`` object of file digests) or the figures differ."""
    seal = doc.get(INTEGRITY_KEY)
    if seal is None:
        return None
    if not (isinstance(seal, dict) and isinstance(seal.get("figures_sha256"), str)
            and isinstance(seal.get(files_key), dict)):
        raise ConfigError(f"{source}: field 'integrity' is malformed (needs 'figures_sha256' and '{files_key}'); "
                          f"the file was edited: {fix}")
    if figures_sha256(doc) != seal["figures_sha256"]:
        raise ConfigError(f"{source}: the figures do not match the digest written with them "
                          f"(integrity.figures_sha256): the file was edited after it was written; {fix}")
    return seal


def verify(doc: Mapping[str, Any], source: Path, samples: Callable[[str], Path],
           tasks: Iterable[str] | None = None) -> Verification:
    """Check ``doc`` (read from ``source``) against its digest and the files beside it.

    ``tasks``: check only these tasks' records (default: all). Raises ConfigError naming the file
    that does not match; returns ``unverified`` with the reason when something cannot be checked."""
    fix = f"recompute them from the records with `chimed-eval score {source.parent}`"
    integrity = check_seal(doc, source, "samples", fix)
    if integrity is None:
        return Verification("unverified", "no digest: written by an older chimed-eval or by hand")
    names = list(doc.get("tasks") or {}) if tasks is None else list(tasks)
    absent = []
    for t in names:
        path = samples(t)
        got, want = file_digest(path), integrity["samples"].get(t)
        if got is None or want is None:
            absent.append(t)
        elif got != want:
            raise ConfigError(f"{path}: the records changed after {source.name} was written from them "
                              f"(sha256 {got[:12]} vs {str(want)[:12]} in {source}); the figures no longer "
                              f"describe them: {fix}")
    _verify_run_pins(integrity.get("run"), source, names, fix)
    reasons = []
    if absent:
        reasons.append(f"records of {', '.join(absent)} not beside {source.name}")
    carried = [t for t in integrity.get("unverified_tasks") or [] if t in names]
    if carried:
        reasons.append(f"{', '.join(carried)} carried over from a results.json without a digest")
    return Verification("unverified", "; ".join(reasons)) if reasons else Verification("verified")


def _verify_run_pins(want: Any, source: Path, names: list[str], fix: str) -> None:
    """run.json beside ``source`` still pins what it pinned when the figures were written (for the
    tasks ``names``); nothing to check when either side is absent."""
    run_json = source.parent / RUN_FILE
    if not isinstance(want, dict):
        return
    got = run_pins(run_json, names)
    if got is None:
        return
    changed = (["settings"] if got["settings"] != want.get("settings") else []) + [
        f"task {t!r}" for t in names if t in (want.get("tasks") or {}) and got["tasks"][t] != want["tasks"][t]]
    if changed:
        raise ConfigError(f"{run_json}: {', '.join(changed)} changed after {source.name} was written "
                          f"(integrity.run in {source}): {fix}")
