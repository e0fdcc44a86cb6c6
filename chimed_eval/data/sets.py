"""Fetch the public evaluation data into a data dir, verify it, and say where the rest goes.

``chimed-eval data`` calls :func:`run_data_command`. It downloads every data set that has a public
release from its official home (GitHub raw files at a pinned commit, or the official zip), unpacks
what needs unpacking, and writes the files under ``--data-dir`` in exactly the layout that the task
loaders read (``cmmlu/test/anatomy.csv``, ``ceval/val/clinical_medicine_val.csv``, ...): each data
set's folder is defined once, in :data:`DATA_LOCATIONS`, and the loaders import it from here. Every
file is checked against the sha256 recorded in :data:`MANIFEST`; bytes are never re-encoded (CMD
stays GB18030, CCKS-2019 keeps its BOM).

The pieces: :mod:`chimed_eval.data.specs` (locations, the records, the manifest read from the
shipped ``data/manifest.json``, the sets with no public copy), :mod:`chimed_eval.data.fetch` (the
download through pooch), and here the status of a data dir and the command. The two sets of the
paper with no public copy (ChiMed QA, ChiMST NER) cannot be downloaded; see :func:`describe_manual`
for where to put them and in what format.

Only the standard library is imported here: listing and checking data never needs numpy or torch,
and pooch is imported only when something is downloaded.
"""

from __future__ import annotations

import sys
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Callable, Iterable

from chimed_eval.data.fetch import (
    DEFAULT_TIMEOUT, MIRROR_ENV, ChecksumError, DownloadError, FetchResult, fetch_datasets, file_sha256, mirror_url,
    resolve_base_url,
)
from chimed_eval.data.mirrors import parse_mirror
from chimed_eval.data.transfer import DEFAULT_DEADLINE
from chimed_eval.data.specs import (
    CHIMED_QA_TEST, CHIMST_TEST, CMD_QA_FILE, DATA_LOCATIONS, MANIFEST_FILE, MANUAL_SETS, DatasetSpec, Download,
    Manifest, ManualSet, data_location, describe_manual, load_manifest, normalise, select, shipped_manifest,
)
from chimed_eval.core.errors import ChimedEvalError, ConfigError

__all__ = [
    "CHIMED_QA_TEST", "CHIMST_TEST", "CMD_QA_FILE", "DATA_LOCATIONS", "DEFAULT_DEADLINE", "DEFAULT_TIMEOUT", "MANIFEST_FILE",
    "MANUAL_SETS", "MIRROR_ENV", "ChecksumError", "DatasetSpec", "DatasetStatus", "Download", "DownloadError",
    "FetchResult", "Manifest", "ManualSet", "data_location", "describe_manual", "fetch_datasets", "file_sha256",
    "list_urls", "load_manifest", "mirror_url", "resolve_base_url", "run_data_command", "shipped_manifest", "status",
]


def __getattr__(name: str) -> Any:
    """``MANIFEST``: the shipped manifest, read on first use (see :func:`shipped_manifest`)."""
    if name == "MANIFEST":
        return shipped_manifest()
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")


def list_urls(names: Iterable[str] | None = None, manifest: Manifest | None = None) -> list[str]:
    """The official URLs of the selected sets, for building a mirror (``wget -x -i``)."""
    return [d.url for spec in select(names, manifest or shipped_manifest()) for d in spec.downloads]


# --------------------------------------------------------------------------------------------
# Status


@dataclass(frozen=True)
class DatasetStatus:
    """Which files of a data set are present, missing or corrupt (wrong sha256) in a data dir."""

    name: str
    present: tuple[str, ...]
    missing: tuple[str, ...]
    corrupt: tuple[tuple[str, str, str], ...] = ()  # (path, expected sha256, actual sha256)
    optional_missing: tuple[str, ...] = ()
    manual: bool = False

    @property
    def ok(self) -> bool:
        return not self.missing and not self.corrupt

    @property
    def state(self) -> str:
        if self.corrupt:
            return "corrupt"
        if not self.missing:
            return "present"
        return "partial" if self.present else "missing"


def _spec_status(spec: DatasetSpec, data_dir: Path) -> DatasetStatus:
    optional = spec.optional_files()
    present: list[str] = []
    missing: list[str] = []
    opt_missing: list[str] = []
    corrupt: list[tuple[str, str, str]] = []
    for rel, sha in spec.files().items():
        path = data_dir / rel
        if not path.is_file():
            (opt_missing if rel in optional else missing).append(rel)
            continue
        actual = file_sha256(path)
        if actual == sha:
            present.append(rel)
        else:
            corrupt.append((rel, sha, actual))
    return DatasetStatus(spec.name, tuple(present), tuple(missing), tuple(corrupt), tuple(opt_missing))


def _manual_status(name: str, data_dir: Path) -> DatasetStatus:
    folder = data_dir / MANUAL_SETS[name].folder
    found = sorted(
        p.relative_to(data_dir).as_posix()
        for p in (folder.rglob("*") if folder.is_dir() else [])
        if p.is_file() and not p.name.startswith(".")
    )
    return DatasetStatus(name, tuple(found), () if found else (MANUAL_SETS[name].folder + "/",), manual=True)


def status(
    data_dir: Path,
    *,
    manifest: Manifest | None = None,
    names: list[str] | None = None,
    include_manual: bool = True,
) -> list[DatasetStatus]:
    """For each data set: which files are present, missing, or corrupt (wrong sha256).

    Manual sets (ChiMed QA, ChiMST) are listed last with ``manual=True``: present means their
    folder holds at least one file (their contents cannot be checked against a hash).
    """
    manifest = shipped_manifest() if manifest is None else manifest
    data_dir = Path(data_dir)
    if names is not None:
        names = [normalise(n) for n in names]
        manual_names = [n for n in names if n in MANUAL_SETS]
        specs = select([n for n in names if n not in MANUAL_SETS], manifest)
    else:
        specs = list(manifest.values())
        manual_names = list(MANUAL_SETS) if include_manual else []
    return [_spec_status(s, data_dir) for s in specs] + [_manual_status(n, data_dir) for n in manual_names]


# --------------------------------------------------------------------------------------------
# CLI entry


def _print_status(rows: list[DatasetStatus], out: Callable[[str], None]) -> None:
    for s in rows:
        if s.manual:
            found = f"{len(s.present)} file(s) found" if s.present else f"nothing under {s.missing[0]}"
            out(f"{s.name:<12} {s.state:<8} {found} (no public copy: place by hand)")
            continue
        n = len(s.present) + len(s.missing) + len(s.corrupt)
        out(f"{s.name:<12} {s.state:<8} {len(s.present)}/{n} files")
        for rel in s.missing[:5]:
            out(f"    missing  {rel}")
        if len(s.missing) > 5:
            out(f"    ... and {len(s.missing) - 5} more missing")
        for rel, exp, act in s.corrupt:
            out(f"    corrupt  {rel}: expected sha256 {exp}, got {act}")
        for rel in s.optional_missing:
            out(f"    optional file missing: {rel}")


def _err(msg: str) -> None:
    print(msg, file=sys.stderr)


def _check(data_dir: Path, norm: list[str] | None, spec_names: list[str], manual_named: list[str],
           manifest: Manifest) -> int:
    """``--check``: print the status; 1 when a selected set is missing, corrupt or not placed."""
    rows = status(data_dir, manifest=manifest, names=None if norm is None else spec_names + manual_named)
    print(f"data dir: {data_dir}")
    _print_status(rows, print)
    bad = [s.name for s in rows if not s.ok and not s.manual]
    bad_manual = [s.name for s in rows if not s.ok and s.manual and s.name in manual_named]
    if bad:
        _err(f"not ready: {', '.join(bad)} (run `chimed-eval data --data-dir {data_dir} --datasets "
             f"{','.join(bad)}` to fetch)")
    if bad_manual:
        _err(f"not placed: {', '.join(bad_manual)}\n\n" + describe_manual(bad_manual, data_dir))
    return 1 if bad or bad_manual else 0


def run_data_command(
    data_dir: Path,
    names: list[str] | None,
    base_url: str | None,
    check_only: bool,
    force: bool,
    *,
    manifest: Manifest | None = None,
    timeout: float = DEFAULT_TIMEOUT,
    deadline: float = DEFAULT_DEADLINE,
) -> int:
    """What ``chimed-eval data`` runs. Returns 0 (all good), 1 (failures or, with ``check_only``,
    missing/corrupt files) or 2 (unknown data set names).

    Fetches each selected set in turn, reporting failures and carrying on with the other sets,
    then prints where to put the sets that have no public copy.
    """
    manifest = shipped_manifest() if manifest is None else manifest
    data_dir = Path(data_dir)
    # no names (or "all"): every downloadable set, and the manual sets' placement notes
    norm = None if not names or any(normalise(n) == "all" for n in names) else [normalise(n) for n in names]
    manual_named = [n for n in norm or [] if n in MANUAL_SETS]
    try:
        specs = select(None if norm is None else [n for n in norm if n not in MANUAL_SETS], manifest)
    except ConfigError as exc:
        _err(f"error: {exc}")
        return 2
    spec_names = [s.name for s in specs]
    if check_only:
        return _check(data_dir, norm, spec_names, manual_named, manifest)

    try:
        mirror = parse_mirror(base_url)
    except ConfigError as exc:
        _err(f"error: {exc}")
        return 2
    print(f"data dir: {data_dir}" + (f"  (mirror: {mirror.describe()})" if mirror.kind != "official" else ""))
    failed: list[str] = []
    for name in spec_names:
        try:
            fetch_datasets([name], data_dir, base_url=mirror, force=force, manifest=manifest, timeout=timeout,
                  deadline=deadline)
        except ChimedEvalError as exc:
            _err(f"error: {name}: {exc}")
            failed.append(name)
    manual_rows = status(data_dir, manifest={}, names=manual_named if norm is not None else list(MANUAL_SETS))
    for row in manual_rows:
        if row.ok:
            where = data_dir / MANUAL_SETS[row.name].folder
            print(f"{row.name}: {len(row.present)} file(s) placed by hand under {where}")
    missing_manual = [row.name for row in manual_rows if not row.ok]
    if missing_manual:
        print("\nSets with no public copy (place them by hand):\n")
        print(describe_manual(missing_manual, data_dir))
    if failed:
        _err(f"\nfailed: {', '.join(failed)}")
        return 1
    return 0
