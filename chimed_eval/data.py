"""Fetch the public evaluation data into a data dir, verify it, and say where the rest goes.

``chimed-eval data`` calls :func:`run_data_command`. It downloads every data set that has a public
release from its official home (GitHub raw files at a pinned commit, or the official zip), unpacks
what needs unpacking, and writes the files under ``--data-dir`` in exactly the layout that the task
loaders read (``cmmlu/test/anatomy.csv``, ``ceval/val/clinical_medicine_val.csv``, ...): each data
set's folder is defined once, in :data:`DATA_LOCATIONS`, and the loaders import it from here. Every
file is checked against the sha256 recorded in :data:`MANIFEST`; bytes are never re-encoded (CMD
stays GB18030, CCKS-2019 keeps its BOM).

The two sets of the paper with no public copy (ChiMed QA, ChiMST NER) cannot be downloaded; see
:func:`describe_manual` for where to put them and in what format.

Only the standard library is imported here: listing, checking and fetching data never needs numpy
or torch.
"""

from __future__ import annotations

import hashlib
import http.client
import os
import sys
import tempfile
import urllib.error
import urllib.parse
import urllib.request
import zipfile
from dataclasses import dataclass, field
from pathlib import Path, PurePosixPath
from typing import BinaryIO, Callable, Iterable, Literal, Mapping

from .errors import ChimedEvalError, ConfigError, DataError, MissingDataError

MIRROR_ENV = "CHIMED_EVAL_DATA_MIRROR"
"""Environment variable with a mirror base URL; used when ``base_url`` is not given."""

DEFAULT_TIMEOUT = 60.0
_CHUNK = 1 << 20
_USER_AGENT = "chimed-eval-data/0.1 (+python-urllib)"


# --------------------------------------------------------------------------------------------
# Errors


class DownloadError(ChimedEvalError):
    """A URL could not be fetched (network, HTTP status, not a zip). The message names the URL."""

    def __init__(self, url: str, message: str) -> None:
        self.url = url
        super().__init__(message)


class ChecksumError(DataError):
    """Downloaded bytes do not match the manifest. Nothing was written for that file."""

    def __init__(self, path: str | Path, url: str, expected: str, actual: str, note: str = "") -> None:
        self.url = url
        self.expected = expected
        self.actual = actual
        super().__init__(
            path,
            None,
            None,
            f"sha256 mismatch for the data from {url}: expected {expected}, got {actual}. "
            "The download was discarded and nothing was written for this file"
            f"{note}. The upstream file may have changed, or the transfer was corrupted; retry, "
            "or place a verified copy by hand.",
        )


# --------------------------------------------------------------------------------------------
# Data locations: the one definition shared by `chimed-eval data` and the task loaders

#: Each data set's folder under the data dir, by data set name. The manifest's destinations, the
#: placement notes of the sets with no public copy, and the task loaders all take it from here.
DATA_LOCATIONS: Mapping[str, str] = {
    "cmmlu": "cmmlu",
    "ceval": "ceval",
    "medqa_mcmle": "medqa_mcmle",
    "safetybench": "safetybench",
    "ccks2019": "ccks2019",
    "cmd": "cmd",
    "hetmc": "dialogue/hetmc",
    "covid_zh": "dialogue/covid_zh",
    "chimed_qa": "chimed",
    "chimst": "chimst",
    "cmexam": "cmexam",
}

#: Files the loaders read by name (relative to the data dir).
CMD_QA_FILE = f"{DATA_LOCATIONS['cmd']}/internal_medicine_5000-6000.csv"
CHIMED_QA_TEST = f"{DATA_LOCATIONS['chimed_qa']}/test.jsonl"
CHIMST_TEST = f"{DATA_LOCATIONS['chimst']}/test.jsonl"


def data_location(name: str) -> str:
    """The folder of data set ``name`` under the data dir (``dialogue/hetmc``, ``chimed``, ...)."""
    try:
        return DATA_LOCATIONS[name]
    except KeyError:
        raise _unknown("dataset", name, DATA_LOCATIONS) from None


# --------------------------------------------------------------------------------------------
# Manifest records


@dataclass(frozen=True)
class Download:
    """One URL and the files it yields.

    ``files`` maps each destination path (POSIX, relative to the data dir) to its expected sha256.

    - ``kind="file"``: the response body is the single file in ``files``, saved byte for byte.
    - ``kind="zip"``: the response is a zip archive; each destination is extracted byte for byte
      from the member ``members[dest]`` (default: the destination's file name). A member is looked
      up by its exact name first, then by file name anywhere in the archive (``__MACOSX`` ignored),
      so an archive with an extra top-level folder still works; the checksum decides between
      look-alikes.

    ``optional`` files (licence texts whose upstream path could not be verified offline) only warn
    when they cannot be fetched or do not match; no bad copy is ever written.
    """

    url: str
    files: Mapping[str, str]
    kind: Literal["file", "zip"] = "file"
    members: Mapping[str, str] = field(default_factory=dict)
    optional: bool = False

    def __post_init__(self) -> None:
        if self.kind not in ("file", "zip"):
            raise ValueError(f"unknown download kind {self.kind!r} for {self.url}")
        if self.kind == "file" and len(self.files) != 1:
            raise ValueError(f"a plain-file download must have exactly one destination: {self.url}")
        for dest, sha in self.files.items():
            p = PurePosixPath(dest)
            if p.is_absolute() or ".." in p.parts or not p.parts:
                raise ValueError(f"destination {dest!r} must be a relative path inside the data dir")
            if len(sha) != 64 or any(c not in "0123456789abcdef" for c in sha):
                raise ValueError(f"bad sha256 {sha!r} for {dest}")

    def member_for(self, dest: str) -> str:
        return self.members.get(dest, PurePosixPath(dest).name)


@dataclass(frozen=True)
class DatasetSpec:
    """A data set with public downloads."""

    name: str
    title: str
    licence: str
    source: str
    downloads: tuple[Download, ...]
    notes: str = ""

    def files(self, *, optional: bool = True) -> dict[str, str]:
        """All destination paths of this set with their sha256."""
        out: dict[str, str] = {}
        for d in self.downloads:
            if optional or not d.optional:
                out.update(d.files)
        return out

    def optional_files(self) -> set[str]:
        return {f for d in self.downloads if d.optional for f in d.files}


Manifest = Mapping[str, DatasetSpec]


@dataclass(frozen=True)
class ManualSet:
    """A data set that has no public copy: the user places it by hand under ``folder``."""

    name: str
    title: str
    folder: str
    availability: str
    layout: tuple[tuple[str, str], ...]  # (path under the data dir, what it holds)
    formats: tuple[str, ...]
    stand_in: str = ""


@dataclass(frozen=True)
class FetchResult:
    """What :func:`fetch` did for one destination file.

    ``action``: ``downloaded`` (written now), ``present`` (already there with the right hash),
    ``unavailable`` (an optional file that could not be fetched or verified; nothing written).
    """

    dataset: str
    path: str
    action: Literal["downloaded", "present", "unavailable"]
    url: str
    sha256: str


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


# --------------------------------------------------------------------------------------------
# Mirror URL mapping


def resolve_base_url(base_url: str | None) -> str | None:
    """``base_url`` if given, else ``$CHIMED_EVAL_DATA_MIRROR``; empty means the official hosts."""
    if base_url is None:
        base_url = os.environ.get(MIRROR_ENV)
    return base_url.rstrip("/") if base_url else None


def mirror_url(url: str, base_url: str | None) -> str:
    """Map an official URL onto a mirror: ``base_url + "/" + host + path`` (query kept).

    ``https://raw.githubusercontent.com/haonan-li/CMMLU/<commit>/data/dev/anatomy.csv`` with
    ``base_url="http://mirror.lan/chimed"`` becomes
    ``http://mirror.lan/chimed/raw.githubusercontent.com/haonan-li/CMMLU/<commit>/data/dev/anatomy.csv``.
    This is the tree that ``wget --force-directories -i urls.txt`` (with :func:`list_urls`)
    creates, so any static file server over such a folder, or ``file:///path/to/folder``, is a
    mirror. The official URL's scheme is dropped; non-ASCII path characters are percent-encoded.
    """
    parts = urllib.parse.urlsplit(url)
    if base_url:
        url = f"{base_url.rstrip('/')}/{parts.netloc}{parts.path}"
        if parts.query:
            url += "?" + parts.query
        parts = urllib.parse.urlsplit(url)
    path = urllib.parse.quote(parts.path, safe="/%:@!$&'()*+,;=~-._")
    return urllib.parse.urlunsplit((parts.scheme, parts.netloc, path, parts.query, parts.fragment))


def list_urls(names: Iterable[str] | None = None, manifest: Manifest | None = None) -> list[str]:
    """The official URLs of the selected sets, for building a mirror (``wget -x -i``)."""
    return [d.url for spec in _select(names, manifest or MANIFEST) for d in spec.downloads]


# --------------------------------------------------------------------------------------------
# Selection and did-you-mean


def _normalise(name: str) -> str:
    return name.strip().lower().replace("-", "_")


def _unknown(kind: str, name: str, known: Iterable[str]) -> ConfigError:
    from .registry import Registry  # stdlib-only module

    reg: Registry[str] = Registry(kind)
    for k in known:
        reg.add(k, k)
    return ConfigError(reg.unknown_message(name))


def _select(names: Iterable[str] | None, manifest: Manifest) -> list[DatasetSpec]:
    if names is None:
        return list(manifest.values())
    out: list[DatasetSpec] = []
    for raw in names:
        name = _normalise(raw)
        if name == "all":
            return list(manifest.values())
        if name in manifest:
            if manifest[name] not in out:
                out.append(manifest[name])
        elif name in MANUAL_SETS:
            raise MissingDataError(
                f"{name!r} has no public download; place it by hand.\n" + describe_manual([name])
            )
        else:
            raise _unknown("dataset", raw, [*manifest, *MANUAL_SETS])
    return out


# --------------------------------------------------------------------------------------------
# Fetching


def file_sha256(path: Path) -> str:
    h = hashlib.sha256()
    with open(path, "rb") as f:
        for chunk in iter(lambda: f.read(_CHUNK), b""):
            h.update(chunk)
    return h.hexdigest()


def _is_valid(path: Path, expected: str) -> bool:
    return path.is_file() and file_sha256(path) == expected


def _open_url(url: str, timeout: float) -> BinaryIO:
    req = urllib.request.Request(url, headers={"User-Agent": _USER_AGENT})
    return urllib.request.urlopen(req, timeout=timeout)  # noqa: S310 (URLs come from the manifest)


def _download_error(url: str, official: str, exc: BaseException, data_dir: Path, dl: Download) -> DownloadError:
    if isinstance(exc, urllib.error.HTTPError):
        why = f"HTTP {exc.code} {exc.reason}"
    elif isinstance(exc, urllib.error.URLError):
        why = f"{exc.reason}"
    else:
        why = f"{type(exc).__name__}: {exc}"
    dests = sorted(dl.files)
    shown = "\n".join(f"  {data_dir / d}  (sha256 {dl.files[d]})" for d in dests[:3])
    if len(dests) > 3:
        shown += f"\n  ... and {len(dests) - 3} more files ({', '.join(sorted({str(PurePosixPath(d).parent) for d in dests}))})"
    via = f" (mirror of {official})" if url != mirror_url(official, None) else ""
    unpack = " and unzip it" if dl.kind == "zip" else ""
    return DownloadError(
        url,
        f"could not download {url}{via}: {why}.\n"
        f"If this machine cannot reach it, download {official} elsewhere{unpack} and place the "
        f"files by hand:\n{shown}\n"
        f"or serve a mirror and pass --mirror / set {MIRROR_ENV} "
        "(mirror URL = base + '/' + host + path).",
    )


def _install(src: BinaryIO, dest: Path, expected: str, url: str) -> str:
    """Stream ``src`` into ``dest`` atomically if its sha256 is ``expected``; return the hash.

    Writes to a temporary file in the destination folder, then ``os.replace``; on a mismatch the
    temporary file is removed and :class:`ChecksumError` raised, so no bad file is ever in place.
    """
    dest.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp_name = tempfile.mkstemp(dir=dest.parent, prefix=f".{dest.name}.", suffix=".part")
    tmp = Path(tmp_name)
    try:
        h = hashlib.sha256()
        with os.fdopen(fd, "wb") as out:
            for chunk in iter(lambda: src.read(_CHUNK), b""):
                h.update(chunk)
                out.write(chunk)
        actual = h.hexdigest()
        if actual != expected:
            note = ""
            if dest.exists():
                note = f"; the existing {dest.name} (which does not match either) was left untouched"
            raise ChecksumError(dest, url, expected, actual, note)
        os.replace(tmp, dest)
        return actual
    finally:
        tmp.unlink(missing_ok=True)


def _fetch_to_temp(url: str, official: str, timeout: float, data_dir: Path, dl: Download) -> Path:
    """Download a whole archive into a temporary file in the data dir."""
    data_dir.mkdir(parents=True, exist_ok=True)
    fd, tmp_name = tempfile.mkstemp(dir=data_dir, prefix=".download-", suffix=".part")
    tmp = Path(tmp_name)
    try:
        with os.fdopen(fd, "wb") as out, _open_url(url, timeout) as resp:
            for chunk in iter(lambda: resp.read(_CHUNK), b""):
                out.write(chunk)
    except (OSError, http.client.HTTPException, ValueError) as exc:
        tmp.unlink(missing_ok=True)
        raise _download_error(url, official, exc, data_dir, dl) from exc
    except BaseException:
        tmp.unlink(missing_ok=True)
        raise
    return tmp


def _zip_candidates(zf: zipfile.ZipFile, wanted: str) -> list[zipfile.ZipInfo]:
    infos = [i for i in zf.infolist() if not i.is_dir()]
    exact = [i for i in infos if i.filename.replace("\\", "/") == wanted]
    if exact:
        return exact
    base = PurePosixPath(wanted).name
    return [
        i
        for i in infos
        if PurePosixPath(i.filename.replace("\\", "/")).name == base and "__MACOSX" not in i.filename
    ]


def _install_from_zip(zf: zipfile.ZipFile, member: str, dest: Path, expected: str, url: str) -> str:
    candidates = _zip_candidates(zf, member)
    if not candidates:
        some = ", ".join(i.filename for i in zf.infolist()[:8])
        raise DataError(dest, None, None, f"the archive {url} has no member {member!r} (it holds: {some}, ...)")
    first_error: ChecksumError | None = None
    for info in candidates:
        try:
            with zf.open(info) as src:
                return _install(src, dest, expected, f"{url} [{info.filename}]")
        except ChecksumError as exc:
            first_error = first_error or exc
        except (zipfile.BadZipFile, EOFError) as exc:  # CRC error, truncated member
            raise DataError(dest, None, None, f"member {info.filename!r} of {url} is damaged: {exc}") from exc
    assert first_error is not None
    raise first_error


def _fetch_download(
    spec: DatasetSpec, dl: Download, data_dir: Path, base: str | None, force: bool, timeout: float, log: Callable[[str], None]
) -> list[FetchResult]:
    url = mirror_url(dl.url, base)
    todo = {d: sha for d, sha in dl.files.items() if force or not _is_valid(data_dir / d, sha)}
    results = [FetchResult(spec.name, d, "present", url, sha) for d, sha in dl.files.items() if d not in todo]
    if not todo:
        return results
    log(f"{spec.name}: downloading {url}")
    if dl.kind == "file":
        (dest, sha), = todo.items()
        try:
            with _open_url(url, timeout) as resp:
                _install(resp, data_dir / dest, sha, url)
        except ChimedEvalError:
            raise
        except (OSError, http.client.HTTPException, ValueError) as exc:
            raise _download_error(url, dl.url, exc, data_dir, dl) from exc
        return results + [FetchResult(spec.name, dest, "downloaded", url, sha)]
    archive = _fetch_to_temp(url, dl.url, timeout, data_dir, dl)
    try:
        try:
            zf = zipfile.ZipFile(archive)
        except zipfile.BadZipFile as exc:
            raise DownloadError(url, f"{url} did not return a zip archive ({exc}); is the URL or mirror right?") from exc
        with zf:
            for dest, sha in todo.items():
                _install_from_zip(zf, dl.member_for(dest), data_dir / dest, sha, url)
                results.append(FetchResult(spec.name, dest, "downloaded", url, sha))
    finally:
        archive.unlink(missing_ok=True)
    return results


def fetch(
    names: list[str] | None,
    data_dir: Path,
    *,
    base_url: str | None = None,
    force: bool = False,
    log: Callable[[str], None] = print,
    manifest: Manifest | None = None,
    timeout: float = DEFAULT_TIMEOUT,
) -> list[FetchResult]:
    """Download the named data sets (all when ``names`` is None) into ``data_dir``; verify them.

    Files already present with the right sha256 are kept and not downloaded (``force`` downloads
    them again). Each file is written atomically (temporary file, then ``os.replace``) and only
    once its sha256 matches the manifest; a mismatch raises :class:`ChecksumError` naming the
    file, the expected and the actual hash, and leaves nothing new in place. An unreachable URL
    raises :class:`DownloadError` naming it and saying where to place the files by hand. The first
    error stops the fetch (files finished before it stay, verified).

    Mirrors: ``base_url`` (default ``$CHIMED_EVAL_DATA_MIRROR``) replaces the scheme and host of
    every official URL, keeping the host as the first path segment:
    ``mirror_url = base_url + "/" + host + path`` (see :func:`mirror_url`).
    ``manifest`` replaces :data:`MANIFEST` (tests pass their own).
    """
    manifest = MANIFEST if manifest is None else manifest
    specs = _select(names, manifest)
    base = resolve_base_url(base_url)
    data_dir = Path(data_dir)
    results: list[FetchResult] = []
    for spec in specs:
        got: list[FetchResult] = []
        for dl in spec.downloads:
            try:
                got += _fetch_download(spec, dl, data_dir, base, force, timeout, log)
            except (DownloadError, DataError) as exc:
                if not dl.optional:
                    raise
                first_line = str(exc).splitlines()[0]
                log(f"{spec.name}: warning: optional {', '.join(sorted(dl.files))} not fetched: {first_line}")
                url = mirror_url(dl.url, base)
                got += [
                    FetchResult(spec.name, d, "unavailable", url, s)
                    for d, s in dl.files.items()
                    if not _is_valid(data_dir / d, s)
                ]
        n_new = sum(r.action == "downloaded" for r in got)
        n_old = sum(r.action == "present" for r in got)
        n_off = sum(r.action == "unavailable" for r in got)
        skipped = f", {n_off} optional unavailable" if n_off else ""
        log(
            f"{spec.name}: {n_new} downloaded, {n_old} already present{skipped}; "
            f"sha256 verified -> {data_dir / _common_root(spec)}"
        )
        results += got
    return results


def _common_root(spec: DatasetSpec) -> str:
    parts = [PurePosixPath(p).parts for p in spec.files()]
    root: list[str] = []
    for seg in zip(*parts):
        if len(set(seg)) != 1:
            break
        root.append(seg[0])
    if parts and len(root) == min(len(p) for p in parts):
        root = root[:-1]
    return "/".join(root) + "/" if root else ""


# --------------------------------------------------------------------------------------------
# Status


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
    manifest = MANIFEST if manifest is None else manifest
    data_dir = Path(data_dir)
    manual_names: list[str] = []
    if names is not None:
        names = [_normalise(n) for n in names]
        manual_names = [n for n in names if n in MANUAL_SETS]
        specs = _select([n for n in names if n not in MANUAL_SETS], manifest)
    else:
        specs = list(manifest.values())
        manual_names = list(MANUAL_SETS) if include_manual else []
    out: list[DatasetStatus] = []
    for spec in specs:
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
        out.append(DatasetStatus(spec.name, tuple(present), tuple(missing), tuple(corrupt), tuple(opt_missing)))
    for name in manual_names:
        m = MANUAL_SETS[name]
        folder = data_dir / m.folder
        found = sorted(
            p.relative_to(data_dir).as_posix()
            for p in (folder.rglob("*") if folder.is_dir() else [])
            if p.is_file() and not p.name.startswith(".")
        )
        out.append(DatasetStatus(name, tuple(found), () if found else (m.folder + "/",), manual=True))
    return out


# --------------------------------------------------------------------------------------------
# Manual sets


def describe_manual(names: Iterable[str] | None = None, data_dir: Path | None = None) -> str:
    """The text that tells the user where to put the sets with no public copy, and in what format."""
    root = f"{data_dir}/" if data_dir is not None else "<data-dir>/"
    chosen = [MANUAL_SETS[_normalise(n)] for n in names] if names is not None else list(MANUAL_SETS.values())
    blocks: list[str] = []
    for m in chosen:
        lines = [f"{m.title}  [{m.name}]", f"  {m.availability}", f"  Put it under {root}{m.folder}/:"]
        lines += [f"    {root}{path:<28} {what}" for path, what in m.layout]
        lines += ["  Formats the loaders accept:"] + [f"    - {f}" for f in m.formats]
        if m.stand_in:
            lines.append(f"  Until then: {m.stand_in}")
        blocks.append("\n".join(lines))
    return "\n\n".join(blocks)


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


def run_data_command(
    data_dir: Path,
    names: list[str] | None,
    base_url: str | None,
    check_only: bool,
    force: bool,
    *,
    manifest: Manifest | None = None,
    timeout: float = DEFAULT_TIMEOUT,
) -> int:
    """What ``chimed-eval data`` runs. Returns 0 (all good), 1 (failures or, with ``check_only``,
    missing/corrupt files) or 2 (unknown data set names).

    Fetches each selected set in turn, reporting failures and carrying on with the other sets,
    then prints where to put the sets that have no public copy.
    """
    manifest = MANIFEST if manifest is None else manifest
    data_dir = Path(data_dir)

    def err(msg: str) -> None:
        print(msg, file=sys.stderr)

    # no names (or "all"): every downloadable set, and the manual sets' placement notes
    norm = None if not names or any(_normalise(n) == "all" for n in names) else [_normalise(n) for n in names]
    manual_named = [n for n in norm or [] if n in MANUAL_SETS]
    try:
        specs = _select(None if norm is None else [n for n in norm if n not in MANUAL_SETS], manifest)
    except ConfigError as exc:
        err(f"error: {exc}")
        return 2
    spec_names = [s.name for s in specs]

    if check_only:
        rows = status(data_dir, manifest=manifest, names=None if norm is None else spec_names + manual_named)
        print(f"data dir: {data_dir}")
        _print_status(rows, print)
        bad = [s.name for s in rows if not s.ok and not s.manual]
        bad_manual = [s.name for s in rows if not s.ok and s.manual and s.name in manual_named]
        if bad:
            err(f"not ready: {', '.join(bad)} (run `chimed-eval data --data-dir {data_dir} --datasets "
                f"{','.join(bad)}` to fetch)")
        if bad_manual:
            err(f"not placed: {', '.join(bad_manual)}\n\n" + describe_manual(bad_manual, data_dir))
        return 1 if bad or bad_manual else 0

    base = resolve_base_url(base_url)
    print(f"data dir: {data_dir}" + (f"  (mirror: {base})" if base else ""))
    failed: list[str] = []
    for name in spec_names:
        try:
            fetch([name], data_dir, base_url=base or "", force=force, manifest=manifest, timeout=timeout)
        except ChimedEvalError as exc:
            err(f"error: {name}: {exc}")
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
        err(f"\nfailed: {', '.join(failed)}")
        return 1
    return 0


# --------------------------------------------------------------------------------------------
# Checksums: sha256 of the released files, computed once from byte-for-byte copies of the
# releases (the project's shared/data folder). Hashes only; no data lives in this module.

_CMMLU_SHA256: dict[str, str] = {
    "dev/agronomy.csv": "17d0d80683455a4a12259b8c653c951af4ad4cd32ac23615908e9a9e509bb48c",
    "dev/anatomy.csv": "5e2d407357f3ad71d267d615ebdf0dba2ff720548cf504f87026c8e15990d82e",
    "dev/ancient_chinese.csv": "646d4a02d4998f176c111091e5fc23d12ce457ffbd8d2b500d33df06421a2231",
    "dev/arts.csv": "1604b536191d75d73d944f51f191f97192f94a00c61f8c3c3464c1ac85c40f0b",
    "dev/astronomy.csv": "9e06297324a977a33ac1e293fce080ee57184e5bca56b179492474ec80787612",
    "dev/business_ethics.csv": "aefc81ada3ae18bfbe1e64f40b34274ad1349013d64dc5b43c3c8d99c385c6f0",
    "dev/chinese_civil_service_exam.csv": "ff8903a93de0cb9951e815afd581d4a98bb004725ae4f85b69721a96d5eb727f",
    "dev/chinese_driving_rule.csv": "b5f88cf888f44d1136dbb68d671c932198bac944da0d16a947019b7c21cbd28e",
    "dev/chinese_food_culture.csv": "7c8fe26eac8b77014c93c555023f5f2707a49194f7c9748b55cf33aea4f1ab3b",
    "dev/chinese_foreign_policy.csv": "bb1759fd0a009035765af90696c0411234bbe261e19d990add8e796325839d54",
    "dev/chinese_history.csv": "b2e1e6ca053566e1879fa0b62b2b71b2248026ed2ae5306a789c0fff2f101173",
    "dev/chinese_literature.csv": "b908688b20bd7a293e92580d39f9c63857d9b7b1c7366cb7d7beab7d2fa2a634",
    "dev/chinese_teacher_qualification.csv": "57e5fa732de23068e3ee709841cb15f695ff425a5501b82c732c08ab33a41e60",
    "dev/clinical_knowledge.csv": "7197883c51ee9f42fd89372d6dcae809adcdef37e89718640fb1356abfeca540",
    "dev/college_actuarial_science.csv": "6fa08c27516db844de123f6f1db88706e608bc37be1eb3e76993965a7d4841bb",
    "dev/college_education.csv": "5e2d9e9ebbf68eca7bc1de64a3be4cb6aa56e4e13ae34eadd7144f0303ae1d36",
    "dev/college_engineering_hydrology.csv": "a52db1525a3d79984680838c01a33f73a65f1d913c983c87936e59d5237c9e81",
    "dev/college_law.csv": "7515682cb500b4aac53ba405124872785077437180f8350bb6d4d4d3864bda8f",
    "dev/college_mathematics.csv": "68831d82cc5df956856692968b96264dbf37cb9070b63cb55fe8164256be3d73",
    "dev/college_medical_statistics.csv": "d9f01a0d1f1776789d39a205a72f2949a9c1127ac159acb5e785aad33567e770",
    "dev/college_medicine.csv": "9f54c3fc7e9fab4e1583afb6be85f21e9b8b83a2bcbaff336df68e2d4296ee04",
    "dev/computer_science.csv": "73d4e0b6280067ded704dbe3ff41c0e8e7d2c966479a000d828d9f5a15feedd0",
    "dev/computer_security.csv": "9f9e202bc3de749dbbdfa749edf4bbab1b3c2e8cbb589636e1f6a367ee457a02",
    "dev/conceptual_physics.csv": "95c0665f0ad2882c00d9d02bc847de17759b39b523a01f2e22d4f1f9f5192c3f",
    "dev/construction_project_management.csv": "2ec78148e982c006e8653e89e40cadcc191d25f09e4aedc1285db56ea0876ae4",
    "dev/economics.csv": "c684acb94918c969882a0d94724450f329bea27da835a29d3f26515f0d82af8c",
    "dev/education.csv": "a4b1c264f65941fe7873dd449db717c582ea0b533b442a92ea6599f65cbac6a2",
    "dev/electrical_engineering.csv": "4ba5c1ead9783af3f72ac6a03ba6d166e7496f6e43a18c51f39b64154977dd9d",
    "dev/elementary_chinese.csv": "d8cbcc1db6360d47af57bc049fed0f274c52079881085c95213960d52bc06e69",
    "dev/elementary_commonsense.csv": "bc9f130062e73b49cda3252c91fc219d4b2928e292209d29c9637055b7f01740",
    "dev/elementary_information_and_technology.csv": "4bbef6a470e53e2138ecbe4ead689954ad64e1e1c4a2603b02747ffd02c33f07",
    "dev/elementary_mathematics.csv": "4c11ad0ba61c22d50fd2807548e5f7b48d8989e697e7a5c8a50b47dd5eae4922",
    "dev/ethnology.csv": "e79415bda0d57799c0050c8649fa1aee495f5799a7857dc20aee01e0f2eb6fc2",
    "dev/food_science.csv": "f15d58e9fdce979b25b43316aab1ca99a49abc26e8792367485b093d1c9bc2c4",
    "dev/genetics.csv": "cca416a0efc91c77af33cb0e9674853e1ff31b2573d09f94b1b9b36e1bbae2b9",
    "dev/global_facts.csv": "d421df9caab568af80d2e3a7fb5e0e8efaf15a2a037ab9e2aea19bfd90eb39a6",
    "dev/high_school_biology.csv": "1c6ff5688fd7550eea4a2051183db1a1d0bf80166e60300e131b0b2420e31fcd",
    "dev/high_school_chemistry.csv": "59a99f3bb1d8b16b9f8837000197c7ed94fbe0fe746b64af16920ce50ce9604a",
    "dev/high_school_geography.csv": "0d62a6e09046a322ca3b976f98dac700e7efd17bb442f585a93b3571cef3bb71",
    "dev/high_school_mathematics.csv": "7175e27a845260f0c97088c7dbcf4a571d46e617d6c0378aa45ac219119ab473",
    "dev/high_school_physics.csv": "b0b6cf2222e11c18ca40f95606d75617092671ccb55cd34851137c111922eef2",
    "dev/high_school_politics.csv": "767e7a0c8cc2ef19041d70fba89cc5f59ccc7167d6f732f3cd4e6bbf3f32b734",
    "dev/human_sexuality.csv": "021b36054f6119c8cda64a5bac4d311e4254d18142bd084f0522eb6c4a45f087",
    "dev/international_law.csv": "372776bc2e9a6e971ee34e1cc1297745dcffe80244cd3a0364159b47ac3fdbcd",
    "dev/journalism.csv": "4c77bd61ce1db07166cec95edc4713a0cc9a72807e08b71694c62baa85f34f7d",
    "dev/jurisprudence.csv": "ae555827e729451197419f336fa77fcf9d47cce4e76fcd16d425102ce53da17f",
    "dev/legal_and_moral_basis.csv": "3f7ba972a0ad19f590873ff7fd12cb0100d022fd6a7833af4f1180f35a0e21fd",
    "dev/logical.csv": "d09aa9ccaa15b6d673e5c93a4a2bc26d5bb07b8004012f322c7f714f6afcf82f",
    "dev/machine_learning.csv": "a000c451322ef32c8102b3ec6376cdbcfd5633745d4714ecbfc1bfe61c1d2793",
    "dev/management.csv": "2d92db04dd1cd6f17d6bcf2fb2c3f085618a8660ad45569e2f1a5cc8563439ff",
    "dev/marketing.csv": "ac61a5f64bb8389adf19fb603877be672114c5c06f04a26125bb76877913f6d0",
    "dev/marxist_theory.csv": "7ea29b9820c9804c11d0ff982a1c6cffeb1dce0a3efcb6568c34f1a389d923d1",
    "dev/modern_chinese.csv": "d1cad007847eb75750063c148b0f44abdd4493b567e90c9bb61cf655373228cc",
    "dev/nutrition.csv": "8b318b013c5e17074c7efdf11d67a2f7fd55f1ae457bf77c48d110f6e4ee3f6e",
    "dev/philosophy.csv": "ce8cab700cef6bfaff2d73b80ebba477527ccc7a1d585ca3a032e214f571dff1",
    "dev/professional_accounting.csv": "5b2efd1586fff58119a82a525ef0985ad16b7372ca449c61f6037cd9273e5bb5",
    "dev/professional_law.csv": "688bc4646c9250008f79e0563b411a460a7ac103f584d49974c3bf06dd51b0ff",
    "dev/professional_medicine.csv": "371291e6848a9857a3dbad1869126d9ce774d7d6c3fe9b3c9200c9e9d1ebd444",
    "dev/professional_psychology.csv": "f2fb45c2ee934027f2e2cdc88c4e03e084d3d55ceae2c3163575be51545d321c",
    "dev/public_relations.csv": "b60523a275d074bd750ff8c3d41fa36738fe1b5fcdf71340818bd0d632debd99",
    "dev/security_study.csv": "a9b3f940a470feb546cbf76c3dc34fe56d2dc1bbaf82d7dc82182a1720672549",
    "dev/sociology.csv": "74b0e4cd4586b2e6e20e6b7a0a87a4991a5685d3cdf6a5e5b57d53a094f4beae",
    "dev/sports_science.csv": "94f3aa68cbde254db0707a3627153b4200b9efb752b1d8168e246fbf8d391c72",
    "dev/traditional_chinese_medicine.csv": "345875ca92e284db9a55cb697fdccce270efdd588d7f60d9276a125ea6ed366d",
    "dev/virology.csv": "049ffecfb092b2a6d3299e67737c3a0c468a2e21968adaabb29771e4d2f3197c",
    "dev/world_history.csv": "1f9172bdf584bf9157e04c04d20887133331ae378fce5d9a2a6a7c3b403b66e5",
    "dev/world_religions.csv": "5626706525abd57b0122b9b3ffbf64730198205343678704e31b00eb2b262817",
    "test/agronomy.csv": "df621d68ea7a6d9adca9c3e98f902cbb5f193a51d7f1c4c4ae2f242fd23961d5",
    "test/anatomy.csv": "b0488d7a394473ba9f3d6ba92a4a88f9c5b7738bc812b8aaea057218c9cf909c",
    "test/ancient_chinese.csv": "0668734669ce0bd646a21e71050e8821c0526cbf0d1707cc707f3d63a7e59883",
    "test/arts.csv": "e7695e56891cbf9f67163067791c5a2ab107be65702a61c7f30da01590fac3f1",
    "test/astronomy.csv": "e35a393d61a91860c1b120bba75824857aeab01c23d7ff9ed19505a11a949e39",
    "test/business_ethics.csv": "86cf9918c75f73b084faebea7dd0866bd6e95950a27ca874501303703f986953",
    "test/chinese_civil_service_exam.csv": "735d0ce6e82254d93aa8efe0c44aec8563e652b80b4fe00601383a28ccc56474",
    "test/chinese_driving_rule.csv": "e12e4a67bf7fb90f8d278c90d8f06abf8abfd138ec4388a4bb7feed266c9c1ac",
    "test/chinese_food_culture.csv": "5e39a97b05f604bb7ba66f5362aa373c0898288e8a3548a1277a5a6a923ff042",
    "test/chinese_foreign_policy.csv": "f44422c71ad74908a7530e45a502c61d49cc3a1fc8c34968bd45922375f7e345",
    "test/chinese_history.csv": "1f7b977f5e3ff67eb5a910c3adce74c725fccb7ab286ef97e266eeffbbc51644",
    "test/chinese_literature.csv": "6214c6e48a22c8e9960cd1653e3720125d68d3035ef7d1c390c9e6d1eaa8c34c",
    "test/chinese_teacher_qualification.csv": "eb3425ee8d80f14f23766810fddcad2fa6eda19f27f34fe21d21c6c8a0f2c656",
    "test/clinical_knowledge.csv": "f203dff6c9ae45611ba380f2a60453c2d1440303e9d3304c8cb42c1886edd49c",
    "test/college_actuarial_science.csv": "85a044386c41215e6005f668328b85bf245a2ace6d2a6258a84b91031c91f3c2",
    "test/college_education.csv": "cd13856f5ef865059a47b2f2693f85be227b07cce1c48acb516e9d4c0128f20f",
    "test/college_engineering_hydrology.csv": "94726a0c4d647aae3e32ef574ececcdbc92afd303b9c11fd0f27db5e13168c2a",
    "test/college_law.csv": "cb9a57f6a59d66ee6d9206585c9c4bcca95ae30a8299550b2901cf7ecb506a60",
    "test/college_mathematics.csv": "480e71728c8d5e70cecfab238ae1e5c31e425d0d9d109ee6822ea6c563d3ddea",
    "test/college_medical_statistics.csv": "cf738c68e6e6b20ae674d6b440a4cc1bad865e7145355f822ea60a67ccc13dbb",
    "test/college_medicine.csv": "aa24898b813f7c9567e8ed4cda70ddc79082630bb6bc00939018d65b1de70988",
    "test/computer_science.csv": "5a0ba2cf68147a330ac37a34cf4c68bd4590d9f5dd7e5ea5eee7b49fbe9ded6b",
    "test/computer_security.csv": "107fd397ddbd280ad899a4ccdc87900fe5b0786007783d26a087e2af5e1b71ba",
    "test/conceptual_physics.csv": "600baefcb8a636fe3a4997dbf9000807dc9e45d7f2d10eac1d180084ed02bdc6",
    "test/construction_project_management.csv": "82da4f3a01e23b77e718f17f5bebe6b74fccea3b1f8827fd32d1d5739a6a191f",
    "test/economics.csv": "58509422d04afc4c0e3cc0fe7fac73f3e49066a4539252fe509d288672b3f25a",
    "test/education.csv": "c66b832678d1c59b21230cbd9145de73d42d27089e9d1604314f3b147fb692e4",
    "test/electrical_engineering.csv": "21331d07dbe8eee97bab374b7e722dfbbbbb38d3ca27061d7f92acd7abf10efe",
    "test/elementary_chinese.csv": "6b01b98f8e5d9423095adfef329974e3b1f48a02bd7e92d202d7c46912bbb798",
    "test/elementary_commonsense.csv": "ebe564f23db3bb74b7a52bcf06f5eabc4a5ba649c7c50261385c431999af6e11",
    "test/elementary_information_and_technology.csv": "d1de41bed87ceaab723808c79a283290231df843b77e6daf3f16de674ae88cd0",
    "test/elementary_mathematics.csv": "53ec0f72b779347388a515f15a8f6bf77da0954574664c4b866dd78e4fdd06bc",
    "test/ethnology.csv": "4d43d06de785147a41ab52e560d049ac6cfee0a3ab7d0a75b38b281ca7d8cb0a",
    "test/food_science.csv": "d7723214b9fc9ee0044436540e12917ab7a9b704bc6c3c325d155c430ce37c24",
    "test/genetics.csv": "54988038f3ac9e07a337411d393315429e92ae97b76fab24ebcda0c0c65ecc78",
    "test/global_facts.csv": "e74b95a28ee8df13fbeafa836c8d4054b1ffd4a0e94e201e192bb3cb1d11889a",
    "test/high_school_biology.csv": "9755be53e6a5719d5249db95b0af9f47b9ef1d7795b7d1a2a69dc45bd98edb8d",
    "test/high_school_chemistry.csv": "638f437fc0e0c6216db2f03ba07f7636cc82e4111b47f48fc68e2e9ecf39777c",
    "test/high_school_geography.csv": "7d557bd8b01e2f73e543f3ba7220df31f77c2233b4c10ad651a8368f07008a83",
    "test/high_school_mathematics.csv": "8fa2fd48768defe7473e1b13f3d3864f792ae99a153f1eb6fea8b4d2842f021d",
    "test/high_school_physics.csv": "c21a1c6725d2933f0ebd52e1b300a9bb7d49e37097fbe58ad8c256da82bf5b91",
    "test/high_school_politics.csv": "8a24336a0a00fc49d1b88b8a61d0b3e65e3a10cbbd614d2aee49fea31f703cfd",
    "test/human_sexuality.csv": "1aea3017ffbfa6a1ca2e89f51a11f63990280baa552176a1845024fb0cced68c",
    "test/international_law.csv": "8680d07f0d703793dcc71e9b01b6bdcee765a89474dc5a0a4f2d4b8010799f7a",
    "test/journalism.csv": "1550a3492c86f639327e051c2de511b884d1128a648458e5aacbd936607b5b62",
    "test/jurisprudence.csv": "8806f36a6b91781bfb3ab71f926876bd3b577d9ca7893ce85356334fd2a37df9",
    "test/legal_and_moral_basis.csv": "bb17449ec248520f42dcd239f776c7a9487f8061265d142ac0ff8cf10a3a6ee0",
    "test/logical.csv": "8c0434d1b536268e35b153646a8c478e5fed258cfaf91b3196f496097957bfde",
    "test/machine_learning.csv": "d709ba631b927cb5694b16c74fe82668f47a8634c367844ebea3eb12a6e97cff",
    "test/management.csv": "a02852d014a196db44b5e20a888d24e10fb37fc1eb9c0f2bbd3e19cb44d30415",
    "test/marketing.csv": "32973150ea13549439ef453d0e72df44bcee00965714919f485c43a1be2a4548",
    "test/marxist_theory.csv": "014f1e0fad946d722ce1ee0156dbee66745f60da22a6291462401683f7455786",
    "test/modern_chinese.csv": "c9a88c2819f49498f33db858713e4e8dfcda626f2c593aa4985949333c3914f7",
    "test/nutrition.csv": "7e407acf9be29fcad7e73796bfec196af3c3c16d48f44eb82332a887eb097941",
    "test/philosophy.csv": "d921532efb00a7e8c63ce78c99ce62bd623e7eff74665682a161792863975aef",
    "test/professional_accounting.csv": "109f4d0885450b6544e0da1ddeb3f86e60151c872df29f7cadf4a1dfb521d306",
    "test/professional_law.csv": "07a492026b8c12d04932b09bbe42e14bd00ec95b51219522b662e38d795f405a",
    "test/professional_medicine.csv": "c662d2b70f0b5d4082172c3c7554d249635056705f5da9b506d6dfd442c2e9ec",
    "test/professional_psychology.csv": "e9f45c2a238c6e2323cbebfc42836668dc9a27df4d2a8611f33b6216f8cf5542",
    "test/public_relations.csv": "9ae5d1b049fd223853f738913112eb5bd52a56429932e8d9ded3450980c29dda",
    "test/security_study.csv": "a352cbd0c01be8d0b3f1c4fbada2d4f313ae5eab4a0960b660e31d2c70b7648f",
    "test/sociology.csv": "ce70f1a1cef9eb50a549ab3a204b63130fb6da1ac5e4e8ff9915ee941b946fdf",
    "test/sports_science.csv": "de1cb02fbc963e07caf0f49376fc3a5d3a1cce5471ba3b063c4391db2320a8c1",
    "test/traditional_chinese_medicine.csv": "dfbb4f311649576bb20e165cfdff0d1d5633d64e156eaa5bb57373d491418b16",
    "test/virology.csv": "ac411d3d869e86bce60b8aab78e568fb74f607da2ac188ce11dcf55eb018b7ba",
    "test/world_history.csv": "c90510266dde54e3878b6fa7b00d8c85285f75daed398e0c19353eb66e9e23f0",
    "test/world_religions.csv": "799eabc90e3baf58fe266644e548c637986feacc7fed733d707c4e110c037cad",
}

_CEVAL_ZIP_SHA256: dict[str, str] = {
    "dev/accountant_dev.csv": "f12a00b9542308d24299564a2cba7d67cda4922a7689024cc083458fade85ea7",
    "dev/advanced_mathematics_dev.csv": "1173b8b5011b29e832f76f6ea2c7ff28a862e7803fa7ddec85f7ea24672a8698",
    "dev/art_studies_dev.csv": "ce5cd4bf630fe9f5fc6407318f9aa4ec56041a023cfc5adfa9a1a31581b72b4d",
    "dev/basic_medicine_dev.csv": "eb92eb4868b360203b694871baee7bad69a92093f20ea4d0df5f6a5cf7b7befb",
    "dev/business_administration_dev.csv": "f2c586adaf48c1edae9767d90b7ef919024fac72c5c1667c903685ecf6bf2c04",
    "dev/chinese_language_and_literature_dev.csv": "b8817c0c2db88329fa359d12dafae151ba535d85979711ea25fa3ac50168a0e5",
    "dev/civil_servant_dev.csv": "17da92d9803e749c6b1adc75d54bccfe0bab13044a54acb1ba0113cdc392679a",
    "dev/clinical_medicine_dev.csv": "4e0bf68ab8c2230ab1c71ad92be9af6be883f1d6d0265dc73bd8817f350570e6",
    "dev/college_chemistry_dev.csv": "47cd850dbfeb4745886b1266c25cfc39421dbcaf26c2ab9466cb59a089c4be3f",
    "dev/college_economics_dev.csv": "21901a18935ca5224a846b339f396a914562c0d18b5567c3aed4f096f169375d",
    "dev/college_physics_dev.csv": "fd47a87b87ddd0571bdf74a5dd868262c1238542cc6e31e2293ccf71abf556f0",
    "dev/college_programming_dev.csv": "fa8eb0b514affe5041b166b0a303b12d45003d01b6ce971e342b4a76424af5f7",
    "dev/computer_architecture_dev.csv": "c7e540d3d0f1a30671509ebbb5975e87357d2bab511e1aca71c979647ad7c0a1",
    "dev/computer_network_dev.csv": "718b60a7c604d24e4cf643f945d3bb77da16073bd098b9e4d93f55a8d7018754",
    "dev/discrete_mathematics_dev.csv": "4083b51df634ce2aa158bb5762f356646000f5aecb324255b3d2452c82ad8f06",
    "dev/education_science_dev.csv": "3857710926b26972131ed0f6eacd635dbb81fb27643682129203bb7d721b6e52",
    "dev/electrical_engineer_dev.csv": "a99d32f338debe3f14b2d262ac1b10afdd92dd61cf7db80d70fb75ce07b9b7dc",
    "dev/environmental_impact_assessment_engineer_dev.csv": "698dba9393885c67a697c642b32791f1e780f1a35d24c6cf0981c371b2d49937",
    "dev/fire_engineer_dev.csv": "381eb8a62ac37946e8d80d98ba2145ea62d4a756022ddd9d3a1e4415da402a4d",
    "dev/high_school_biology_dev.csv": "70f069dfe51045e1206d97a63eb3b03d022b9e126c1807e5786536b8af035290",
    "dev/high_school_chemistry_dev.csv": "9d2a55b05d73c883588c9e7111a6d2dbe50b461bc20d6c3da41a4b4957fd9e8a",
    "dev/high_school_chinese_dev.csv": "ff772ce2736ca352741042374ec79494ccc67d102faf821c62745061a6134c07",
    "dev/high_school_geography_dev.csv": "12406fa2df446e38564a84ab8354950e3e549ad2fe3ba5bc8e3cfeff4e417618",
    "dev/high_school_history_dev.csv": "36808cbeb33c8d34f2a78647a7063c34667aadcdf6399e74d177a211607893d6",
    "dev/high_school_mathematics_dev.csv": "f508c7015fc67baf974bb1d2a0e65626fff9a6747f1d07ddeb6672563d48e0f6",
    "dev/high_school_physics_dev.csv": "1373d10712fff1d23d960b192ed1bfe48e11d5e52336ea6f98ef4ea5979adbe8",
    "dev/high_school_politics_dev.csv": "ea56e334e3a619f50dff2ba18a0c17aa054453146397fb5bc2967e94b0a2c59d",
    "dev/ideological_and_moral_cultivation_dev.csv": "a65cc7eb7c1e98e7fb39f7499852c521601c54f22c6818cbfb4cac2403c3e2fd",
    "dev/law_dev.csv": "68dd52403d6bb4d5086f81edbf6537c170b999d1d2de8eca47210de2f4640c75",
    "dev/legal_professional_dev.csv": "575180af37908cf2c2c4ab8a978c0c86fe7b3e4125906fbdb90e51af395c51a8",
    "dev/logic_dev.csv": "bda35271a4a22632627fe9acf099454d893146454f7c3fd20ecab0e224f89864",
    "dev/mao_zedong_thought_dev.csv": "537b5a56356572847a8719b6cc40f3ea9778868eb707ae420a7152b42b08bdb3",
    "dev/marxism_dev.csv": "52932374b40efd64501e2b35c14d8b33ead717a81f969435e9b602a0b6784c60",
    "dev/metrology_engineer_dev.csv": "cac65544934307464d52ee6212b659b4ae49746ff5f1db7e1f34bb2afac7b42a",
    "dev/middle_school_biology_dev.csv": "78ce1f4daf15e946994048f0476268ce31c25592bd9baf9f4fba9362e4db9358",
    "dev/middle_school_chemistry_dev.csv": "89bb51a05a6d3a7f2e772265925e585dc08483b5a7797b4eae7da831f256489d",
    "dev/middle_school_geography_dev.csv": "66b46df6a9d05c4a85c0a9979a93a3e845c81252cc10b79bc0c81dfbdb990e97",
    "dev/middle_school_history_dev.csv": "49413cba8f826a5f224309172737a57982eeae7416709c3ba91ed98e1b53979d",
    "dev/middle_school_mathematics_dev.csv": "b27291e801e7f2f331671feacc8bd075a5c9ebe10f6b87cdb38e4f5ac1fa89a2",
    "dev/middle_school_physics_dev.csv": "a95aa32963d96996a2767087d249309014e38ac823ddae052beaf61610a909d7",
    "dev/middle_school_politics_dev.csv": "406e6a435bb36b0218f7c68308182276cef585e610b8298d05eddf1d02a18292",
    "dev/modern_chinese_history_dev.csv": "b151be7ed3c8d0abe3c7e88ba3d817c3478862d1757e053c3a4383b0f59b4990",
    "dev/operating_system_dev.csv": "1e9baf0ced78dc26b3599df277d86ade268d24fd3ecbf69fd4b7484c2ba2c5d5",
    "dev/physician_dev.csv": "4f353b61c12f6d89e09d7789273dd17038b71e3b6a9a7c54b2c27952e74b3ddc",
    "dev/plant_protection_dev.csv": "b309e161706707fcd9daac247d3d0bb233ea3b333a1957d69da86fa6185de097",
    "dev/probability_and_statistics_dev.csv": "0446d13faae3aecc3c5516e9ca52ef5f86612a23037afae6a08c05b5f595e6bb",
    "dev/professional_tour_guide_dev.csv": "40c100e2c7850be6def6cc4ed2c505701fb13f063ba9834b14cad661d26a1c66",
    "dev/sports_science_dev.csv": "0aa29a6b9175d32e79ad139cde365ac2d54599e4231e43b9389851dd8b4e8011",
    "dev/tax_accountant_dev.csv": "3fbbdb2eb7f6ef22106323bafa23f1af2804e28bc67178afc77371d95f4c641d",
    "dev/teacher_qualification_dev.csv": "a6c6a1dbfca3feb14379255990b580efc23bbafa9e04ff33b0a2e3df892c2c1c",
    "dev/urban_and_rural_planner_dev.csv": "ed05d7b0d98be21bb17e00733d8cc42d576a07a66727e28970d522fcb1734d2b",
    "dev/veterinary_medicine_dev.csv": "f863c061134d767fef2ce4524911180be47f54de9086cd343f980c9cc0f32c76",
    "test/accountant_test.csv": "c946ee1644044b55fff93016e15fd96b6eac092d1e6b556bd82a6c032ee5b6a8",
    "test/advanced_mathematics_test.csv": "0179348b94fc229f1b042ea591fcafe6e92be0c98028bbdf1aafcf8f8a232c48",
    "test/art_studies_test.csv": "1ae71700a55372bde55bd60a1d056148f931cdae2c5318cc61910faf9c5ea4ac",
    "test/basic_medicine_test.csv": "4b524fabe76a12fc839f33e7b11a6d5ec2d9381b2e825612924d18e97875f95f",
    "test/business_administration_test.csv": "7b4a85391937c5a241da590a15bc67b1f1211e36b5810035d29b0e467637c6d0",
    "test/chinese_language_and_literature_test.csv": "6d7d4920d0e32231d77634b285ade0aebf3ab35f13cbef772d5dc43e8938a4a7",
    "test/civil_servant_test.csv": "821ae443bc912adda3966258dbf219fa0b187f7fe6821cdd29ee4388f9747038",
    "test/clinical_medicine_test.csv": "808d994e707855a212bcaed672b84b19b16e31ce8734615089c7218651ba7949",
    "test/college_chemistry_test.csv": "43c4597d0e6a2d79be4280bafe8ff2134e67e20be01b7e1860340064d3f486fe",
    "test/college_economics_test.csv": "04ea0a3dfea3ca97fcd45b69f6ef1b0265e7d904b3b8e0b80aa6e2929cf7a503",
    "test/college_physics_test.csv": "638f7f280e72103420c0740745d5974e9f6651ff92c460fa184efb7b0bce2083",
    "test/college_programming_test.csv": "137f5bdbb8e33f1913f2b088e8379c9d14340ee1614e4132ee4f74f00eeba0c2",
    "test/computer_architecture_test.csv": "d48c6774131d48c57c0e6567d3ff25e8268a621d0c5f8d6404a90995ba4fe1c5",
    "test/computer_network_test.csv": "8cb061a67d6304befd11073d9fa15a9958d788beac1cbeebfb872e4e77fddd65",
    "test/discrete_mathematics_test.csv": "b6fa9336c096746787210ab9c423b7bfd102f9ecd7ea3f11dc9449b155e33aed",
    "test/education_science_test.csv": "9efcbcda1f8a938d9312ca6a5e8b23bc17b813ced13a5b2513e7dd4d142a9616",
    "test/electrical_engineer_test.csv": "69fbeaf3f97a4cdf81337273a869fa89a5bd9e82e926b23fc46597e5f4466019",
    "test/environmental_impact_assessment_engineer_test.csv": "efd52f71fa9099bf9ee71d1c8ffb7c6388dc7e2e38af7f75c3255f601d3db380",
    "test/fire_engineer_test.csv": "11e78421f45260faf36749fc3e0e91fccc36178d790a6409c9b637921e302a62",
    "test/high_school_biology_test.csv": "ba057a0fd8ae8b27a7c0c929ecb3da8824d2137c14f29381743cf9a985ba11a7",
    "test/high_school_chemistry_test.csv": "e3b706b75533528b0eaa65865dca65cd3a4ab41612e6814b2d12b2e8db0d85fc",
    "test/high_school_chinese_test.csv": "b8223ce769ff0da1cbcf29a86d37fc5bb66a8b9df6c336605f734793c10c1064",
    "test/high_school_geography_test.csv": "fa21aad10e069e864aba6045b23fe682459e70d57084d26b7d82132053ee70d6",
    "test/high_school_history_test.csv": "4378424f05cfd299050d6ed1354cdc5e48bd0131778306012d8561847cd0070a",
    "test/high_school_mathematics_test.csv": "1b75e958db5a7427791efd1959558e8f0bbfa7521f6f4be8a494a0ae71f39261",
    "test/high_school_physics_test.csv": "53871a775fac7c5fef93624a3fe8b037d4b66027de48a7e4685c1b224164c3f2",
    "test/high_school_politics_test.csv": "f8a00a1784e7e88e637d77d3087529034abd660a35b3fdd07350f77924d45fe2",
    "test/ideological_and_moral_cultivation_test.csv": "f432bacaa7fae6bee91926948d03c33f7cd3b7a14cb3dc13d98bc1bf3329c182",
    "test/law_test.csv": "a970ca797082e5f5412b47ac95bcd43b838e9e5516820bcde5b3450f38734a26",
    "test/legal_professional_test.csv": "f2f4cc951f04bd9b54140b1a5c11597b39a322ce337730d8a4f1a0d89eff52db",
    "test/logic_test.csv": "8778906ef1bb182c94fede138942e828615616c822fd2861fd91096ea096d789",
    "test/mao_zedong_thought_test.csv": "2fd61ea696d6a9dc8b52e984ec573967a74158bf3f9ba7af8040a38975f686f2",
    "test/marxism_test.csv": "809f472a4f283ed72d8becc51201219595e47d046641bac6b5c7f102442e952f",
    "test/metrology_engineer_test.csv": "8003be1bbe72fc7783e63c49ced31bd89ca6bef9126fa25328bc9868e4f340c0",
    "test/middle_school_biology_test.csv": "ffd24a5fdb967cefa1bb67820a47e78db4daf0fb8d6ff4e7a6bb1a13eb47ff89",
    "test/middle_school_chemistry_test.csv": "babb5d1e97972d4b55d14cde5bd505b25563ef10568c4881bb075bad7b83e831",
    "test/middle_school_geography_test.csv": "d27006a777b9ea032cbba3b8f71590696f0202472eefe8e61132612f62d055f8",
    "test/middle_school_history_test.csv": "6d1f2f2801356b52ef6b03fbc0d3e26746dc6062b3dc8473e74deabf2ff08b7f",
    "test/middle_school_mathematics_test.csv": "e3e8a719855336985499ad533d8e405d6d41c6a3c967e8597d0b072243b35b4e",
    "test/middle_school_physics_test.csv": "3ef6d865f8dfce68e2c626daade637b989a2e2a0de95db85b59f2a30d94adf9c",
    "test/middle_school_politics_test.csv": "6ea321f75f53a712f3d577f0b9c837c877eccc49a64d865e5b866668008b6785",
    "test/modern_chinese_history_test.csv": "372d897713ebf13f598e032b92c906ba55144037204159fc4f8588bdbda6f24e",
    "test/operating_system_test.csv": "a8b9f1902d49ce71d96cd56aa3ec1b11caaeefef95ef5f1e54c1a009409c4526",
    "test/physician_test.csv": "22b87b58315810fd340ca8c0fb42b42ef86d7da77ddc565da8eef7933387aa3c",
    "test/plant_protection_test.csv": "887129fa5389aebb22e9f570c1f73154276aa05afd22b6d092f446e08d20f7cf",
    "test/probability_and_statistics_test.csv": "4d3541cc4219239c223f90d7a543da478c2ea8ee5597919c14b92d27d3e8ea46",
    "test/professional_tour_guide_test.csv": "c880c8effa58dfacfb73cd8fffb350096d3938833fe80cb0d6fd18304275c8ba",
    "test/sports_science_test.csv": "1998c5605e203a4e4a48bb3b295c1c94de7a0fe372e0abde487338709d6d82eb",
    "test/tax_accountant_test.csv": "c0f9cde63548debe4c44f03bcfdad1cf5c28d4bb946d957296bc3a01608c1b91",
    "test/teacher_qualification_test.csv": "69e9d6a1b9af2372ced4ca2c3a6b93743af1a19fcb6ba0197e930cfe985ffc7f",
    "test/urban_and_rural_planner_test.csv": "17aca31020bd84f07f4a96612ecd635933cbbc9c7e4b03502423fa9cd3d07a04",
    "test/veterinary_medicine_test.csv": "9cc90fa81fac61f6b69e277ffa75776c2c92150bcda6bc3fad0a1aaed6013a94",
    "val/accountant_val.csv": "59c43314fdbf4295aad1adfb195b50d09cfb0ede413fcf72b15e4a871e101b52",
    "val/advanced_mathematics_val.csv": "7642fef6968812be15152753ff97b20505cb105a9d73e278b3e8c9439e00cf73",
    "val/art_studies_val.csv": "48e8f631b3642f08173f89215223dc6611cc23d73499805b6e40c984025efaf8",
    "val/basic_medicine_val.csv": "ac6a9382a6692df467b8d7e3124ea48edf5d60060fc3651aa59c566380095d0b",
    "val/business_administration_val.csv": "8d57963d4f49f2e8d6aa31b2b7408c461d077c0f1309ab76c8215d6dca239098",
    "val/chinese_language_and_literature_val.csv": "13df23705c10bc7e6bc16dbc1b21a0b9652191300b7d39ea4f38c9eb0815ac81",
    "val/civil_servant_val.csv": "750c4533bf98ec8eddf9f0096e1f8858ebb48a3f8baa4dc4ac94c21b9b0e8eb4",
    "val/clinical_medicine_val.csv": "dd0a50d18836ed7f9ab333b25b0ccf4a9bcdc7c2701c3aae64c219b480296247",
    "val/college_chemistry_val.csv": "a94d67d9d623530ef960d70e79238ea227e39cc0d2c4bc525a10fc546fd0644c",
    "val/college_economics_val.csv": "d4d074de13bd9799d6a445dba630aa1e2484f7550ac6ca651773beb4d30de5a0",
    "val/college_physics_val.csv": "8c6d98e7a4eb9e36bf47164827a69738c25a72aa1aad947c5934b0abf18f7a00",
    "val/college_programming_val.csv": "a5d76380501fe583261f5554cfb4e37a0474ba6665b6ba267944c9a1260b8149",
    "val/computer_architecture_val.csv": "cfda7f1ca027969c0bae0876b6484d57924609b06abf668763fcc9c2d7409a38",
    "val/computer_network_val.csv": "c8c3e01398f0f2285a00f10570c7003881684b01af161ecb8ffc41595938ac2f",
    "val/discrete_mathematics_val.csv": "d231ce39065237183e468450f8fbed9103246537a344d236bef1d7a7e8bf61d3",
    "val/education_science_val.csv": "ab62a5d24ad9c02813559881724c46435c737e7d7e5db2081426ab92b7ba9823",
    "val/electrical_engineer_val.csv": "8a95e6dc26dcdc75b5d5f8d6ae23d67fe75676554769c76565222510748fcd9e",
    "val/environmental_impact_assessment_engineer_val.csv": "3eee58b914fbc6032161c6a1a703c485abf498d8b9a44c53310701b9d73f84bc",
    "val/fire_engineer_val.csv": "e11cb5a10ee11f8ad59f7d1c94e755238916827c0dcee9ed6dbb84349f8344eb",
    "val/high_school_biology_val.csv": "9943a5c4add3f2d22ac57e92b5429a60ffa4b14b5230608272a4721586bf4172",
    "val/high_school_chemistry_val.csv": "73eb3190bb324593134a02bd9f62ed958a51a8c9ebff533fa62ffd6127cca180",
    "val/high_school_chinese_val.csv": "102ce0c1fb9308729c725f2cd816055f61205d284c72cdb1a6ad37d81d85a6a3",
    "val/high_school_geography_val.csv": "ecd398181d52935c26d71cdae42a5d378172992133c5ae778b564c4da2b9ab3c",
    "val/high_school_history_val.csv": "25eb2b1d037975d8d5492c4941c600cebfdabd6828aa8f569b28da9f099a2e95",
    "val/high_school_mathematics_val.csv": "4aa1f49c1efca69d0895c3bf4a11f166f9eb5949e249fdf9ae71c5cadc3f8761",
    "val/high_school_physics_val.csv": "6c17bb12dcf58c5988d00b60c025800bb2e264f58362e405b597ef17b644d5f2",
    "val/high_school_politics_val.csv": "aff49ff0f9b1323630abb913880167d84457fbf4d659ed78b91a0081b0de0054",
    "val/ideological_and_moral_cultivation_val.csv": "51f72483b19dbe5f977447267cd6b25a351b96a00775da8cb5825cee711b96d6",
    "val/law_val.csv": "2125ce87342cf1ed0f42b51768a2a77efb926cb8e27a07fed9df7fb1e8ccd21f",
    "val/legal_professional_val.csv": "9d0a237368b3dced58139a3126d8d28782ac5f75b58ac0d11d5013c5afc10466",
    "val/logic_val.csv": "11cb509195b461ab7e001197c7750ca8f4297e799a05707724bc75f010a778ca",
    "val/mao_zedong_thought_val.csv": "4bb1d4e013f82d33169032862e274c8ca5f5aa658f541392bc74f81e3d6f2f2e",
    "val/marxism_val.csv": "10374e707ff03a33bb12024a1516fbca8297955fbcdae3574f2128a61a33fb57",
    "val/metrology_engineer_val.csv": "a1fc932cdb057c0bc191448fcbbf3e8bed8549693008812a517c41704a62858e",
    "val/middle_school_biology_val.csv": "43d343db9eb3b854b9b15a806e951f6b8b92e1fd9ef9719ebd648a3e1be63011",
    "val/middle_school_chemistry_val.csv": "6da0253a76fbb52ea3064deed347b2f81671b67abea792c5989aa210df8ed4bb",
    "val/middle_school_geography_val.csv": "b9006e82372508523516d21b7edaeb87698ed7f2e5948ab6cd4aeff09c564c93",
    "val/middle_school_history_val.csv": "581852f0375705748bfe2a695e54b820a0c5d4085290402fb78a6ad2b0818809",
    "val/middle_school_mathematics_val.csv": "2b99472c716904072a7b7b19d10342ab555ccb0dd1287c8f4a7f3aec93cafc46",
    "val/middle_school_physics_val.csv": "81637ce04f1a6f20106c7840e618e05f132200d17e397bcc5c249a694f80c430",
    "val/middle_school_politics_val.csv": "dfdb504e243ae47dcb8708417cdb2313275da72fe4b9d6458eb2cd9cdadba2b8",
    "val/modern_chinese_history_val.csv": "2ffb3a476cfaf3a7df6c9a7c7a6731f618c8f108a4ca5fb085d542301ba73fac",
    "val/operating_system_val.csv": "0b83d579286cbd4d043e7ee11c1da84d55f496dc4bf2b5c353978298816097d8",
    "val/physician_val.csv": "4d9577b8ff8a818b7b27f87390bb66b6c7123660d3806408e7f236e197f6c383",
    "val/plant_protection_val.csv": "bde7ab5da36192287a425b981edf03d86ddb4f515aabeab7d514a128fee61eeb",
    "val/probability_and_statistics_val.csv": "8b4a28984005edae73e1c892a5389a76b0877b466b7b07cdaf13b09646f360a4",
    "val/professional_tour_guide_val.csv": "0ad8742e07e05eb73dfb8ffbe976b442e321f5909ebb429725a815362d9edfd0",
    "val/sports_science_val.csv": "320f401d9f3b5655a62d21c4ddb4596974b38ab57b8f8cc171b087385927898c",
    "val/tax_accountant_val.csv": "763b9d1a32df4e3a409e86fd6032f9b988b742b088e4578db0bd895f15203e0a",
    "val/teacher_qualification_val.csv": "535d4fb0a9dff7b944353e7c7304692e2695cfed16e50f4e760759d8877c8c87",
    "val/urban_and_rural_planner_val.csv": "2f55fee2619e80282cb82d09c9a598e45116cf61b5b995854d784abf59b64580",
    "val/veterinary_medicine_val.csv": "357bafde7fc6db9ce5fa60c3b70189db5ee41e2e909d7a4c0c1cde967cbd5be0",
}

_SHA256: dict[str, str] = {
    "ceval/subject_mapping.json": "671018e9d1ac8e51e8c3ea02574c89be8ff7660ebe67c8ec31b30b9035e064a7",
    "ceval/LICENSE-DATA": "1349a4b6148492b44f629e64eed676612e234fe9a839e4f3b277c1482c8849f1",
    "medqa_mcmle/test.jsonl": "a9cdeab9f204fd6015471d8c63602fece5517710be66d2577a935ea9b5986908",
    "medqa_mcmle/dev.jsonl": "52172a875f78c45e744cd0e625d7db352adc4a1e46800041f28758d72a54e23a",
    "medqa_mcmle/LICENSE-Apollo": "c71d239df91726fc519c6eb72d318ec65820627232b2f796219e87dcf35d0ab4",
    "medqa_mcmle/LICENSE-MedQA": "8a35478f13bfaa114cd157592ba06b9a27db0f9767ac1cb9b36d435de6157378",
    "safetybench/test_zh_subset.json": "8760b0621df0fa81b99f7e49961853f1ff8b5ac0e4f1f96dad20a587c33aea4f",
    "safetybench/test_answers_zh_subset.json": "41c3e40330a7a96375de54b46df4839f6a46e8c9f6be974a2d31b35b8012af6c",
    "safetybench/LICENSE": "d33dbec11dfcde5970d43c1a502b62e7d7dccec1f181266a0809a92409244a91",
    "ccks2019/subtask1_training_part1.txt": "21aa30b69cd1a6d5984123b3abf46787b8a7ed608613133e3cb30e7f153aa5ce",
    "ccks2019/subtask1_training_part2.txt": "9bcc48e16295bb6f7771afbe69cb1619e827e3d807956108d7fa130b0cbea621",
    "ccks2019/subtask1_test_set_with_answer.json": "f27e1002754c222c013294f1409044a8adb7ed5afb3119be9d229b2d2123b32c",
    "cmd/internal_medicine_5000-6000.csv": "133e5f7e9a3255468375c258381d131b1dc0a4fff6d431cbe743884139b1eb25",
    "cmd/internal_medicine.txt": "f1bb7d8d25aceb5f50957396ecb99b040ccfa8c6d4e6cba68ac6c4fa8df4c244",
    "cmd/LICENSE": "bcae5bb4b3faa628bd6925bfc44fb52fc03e732b32b7ddb8678a52e5215b904b",
    "dialogue/hetmc/train.dialog": "97f93f183ee17e35df73be611ac4ddd23155a3fcb1f8e25b7e5de2ba1d18bc8d",
    "dialogue/hetmc/test.dialog": "e2ebd9a05d7f6c0e2bca093e19dbd4b8d3d1cf42269962a2ce571f0b7fa9992f",
    "dialogue/hetmc/LICENSE": "91d37aa0c81530425fce5a0cd93b29918de2cb032970332d228d975233c9d395",
    "dialogue/covid_zh/COVID-Dialogue-Dataset-Chinese.json": "34b58ecfb357cf7ff33a78d59627a116b8b2de0a64e15889a2013e0e260d9148",
    "dialogue/covid_zh/train_data.json": "b415bb0d35e96e13b4bb066d37be757ba0ea249c7efcf9bc61290269bda33408",
    "dialogue/covid_zh/validate_data.json": "076603bcffc35e14704a2f19201280d0e2c4ee24235286a8db4edb01d31b324a",
    "dialogue/covid_zh/test_data.json": "740bcdc3140190ef1e1d2e3842b5239f2f5f0a00bfcb6591274daf0e238cab3c",
    "cmexam/val.xlsx": "635448289ada26e163a352b150861e501ab8198bc338dafc1c4b6034210b02cf",
}

# --------------------------------------------------------------------------------------------
# The manifest: official homes, pinned commits, destinations


_GH = "https://raw.githubusercontent.com"
_CMMLU = ("haonan-li/CMMLU", "d6e7b716d8ac694f38969a6c0407437d1fded799")
_CEVAL_REPO = ("hkust-nlp/ceval", "cba65ae93bcf189149ced9f66ae0c958201faed9")
_CEVAL_ZIP = "https://huggingface.co/datasets/ceval/ceval-exam/resolve/main/ceval-exam.zip"
_APOLLO = ("FreedomIntelligence/Apollo", "639c9e884dbf9e93533fd18040a8662c11adf7d4")
_MEDQA = ("jind11/MedQA", "27b02f66aac217933c9648a06f82e9f720377925")
_SAFETY = ("thu-coai/SafetyBench", "960833692a1ec82b191ff3e902daca7993c35cc1")
_CCKS = ("Svpur/Chinese-Medical-Entity-Recognition", "08fad7be")  # full id not known offline
_CMD = ("Toyhom/Chinese-medical-dialogue-data", "26724a4357fcd142f0cab81188cacf1a2dd8a827")
_HETMC = ("cuhksz-nlp/HET-MC", "bcec54ea")  # full id not known offline
_COVID = ("UCSD-AI4H/COVID-Dialogue", "029e8ab2fc406366809815f000ed5bac71b16c1f")
# CMExam's authors (williamliujl/CMExam) link the data from a drive; this mirror holds the same val.xlsx
_CMEXAM = ("kyre-99/CMExam-Dataset", "303a45e5")  # full id not known offline


def _gh(repo: tuple[str, str], path: str) -> str:
    return f"{_GH}/{repo[0]}/{repo[1]}/{path}"


def _raw(repo: tuple[str, str], path: str, dest: str, *, optional: bool = False) -> Download:
    return Download(_gh(repo, path), {dest: _SHA256[dest]}, optional=optional)


def _loc(name: str) -> str:
    return DATA_LOCATIONS[name]


def _build_manifest() -> dict[str, DatasetSpec]:
    """Destinations are built from :data:`DATA_LOCATIONS` (the hash tables above are keyed by the
    resulting paths, so moving a location without its hashes fails at import, not at run time)."""
    specs = [
        DatasetSpec(
            "cmmlu",
            "CMMLU (67 subjects; dev + test)",
            "CC BY-NC-SA 4.0",
            f"github.com/{_CMMLU[0]} @ {_CMMLU[1][:8]}, data/{{dev,test}}/*.csv",
            tuple(
                Download(_gh(_CMMLU, f"data/{rel}"), {f"{_loc('cmmlu')}/{rel}": sha})
                for rel, sha in _CMMLU_SHA256.items()
            ),
        ),
        DatasetSpec(
            "ceval",
            "C-Eval (52 subjects; dev, val, test without answers)",
            "CC BY-NC-SA 4.0",
            "official ceval-exam.zip (Hugging Face ceval/ceval-exam); subject_mapping.json from "
            f"github.com/{_CEVAL_REPO[0]} @ {_CEVAL_REPO[1][:8]}",
            (
                Download(
                    _CEVAL_ZIP,
                    {f"{_loc('ceval')}/{rel}": sha for rel, sha in _CEVAL_ZIP_SHA256.items()},
                    kind="zip",
                    members={f"{_loc('ceval')}/{rel}": rel for rel in _CEVAL_ZIP_SHA256},
                ),
                _raw(_CEVAL_REPO, "subject_mapping.json", f"{_loc('ceval')}/subject_mapping.json"),
                # The data licence text; its upstream file name could not be checked offline.
                _raw(_CEVAL_REPO, "DATA_LICENSE", f"{_loc('ceval')}/LICENSE-DATA", optional=True),
            ),
            "score on val (test has no answers); take shots from dev",
        ),
        DatasetSpec(
            "medqa_mcmle",
            "MedQA Mainland China (MCMLE), 4 options: test 3,426, dev 171",
            "MedQA: MIT; Apollo packaging: Apache-2.0",
            f"github.com/{_APOLLO[0]} @ {_APOLLO[1][:8]}, metadata/{{test,dev/exam}}/zh/medqa-mcmle.jsonl",
            (
                _raw(_APOLLO, "metadata/test/zh/medqa-mcmle.jsonl", f"{_loc('medqa_mcmle')}/test.jsonl"),
                _raw(_APOLLO, "metadata/dev/exam/zh/medqa-mcmle.jsonl", f"{_loc('medqa_mcmle')}/dev.jsonl"),
                _raw(_APOLLO, "LICENSE", f"{_loc('medqa_mcmle')}/LICENSE-Apollo", optional=True),
                _raw(_MEDQA, "LICENSE", f"{_loc('medqa_mcmle')}/LICENSE-MedQA", optional=True),
            ),
        ),
        DatasetSpec(
            "safetybench",
            "SafetyBench, Chinese subset (2,100 items) and its answers",
            "MIT",
            f"github.com/{_SAFETY[0]} @ {_SAFETY[1][:8]}, opensource_data/",
            (
                _raw(_SAFETY, "opensource_data/test_zh_subset.json", f"{_loc('safetybench')}/test_zh_subset.json"),
                _raw(_SAFETY, "opensource_data/test_answers_zh_subset.json", f"{_loc('safetybench')}/test_answers_zh_subset.json"),
                _raw(_SAFETY, "LICENSE", f"{_loc('safetybench')}/LICENSE", optional=True),
            ),
        ),
        DatasetSpec(
            "ccks2019",
            "CCKS-2019 Task 1 clinical NER (Yidu-S4K): train 1,000, test 379",
            "competition data, no licence stated",
            f"github.com/{_CCKS[0]} @ {_CCKS[1]}, CCKS_2019_Task1.zip",
            (
                Download(
                    _gh(_CCKS, "CCKS_2019_Task1.zip"),
                    {
                        f"{_loc('ccks2019')}/{n}": _SHA256[f"{_loc('ccks2019')}/{n}"]
                        for n in (
                            "subtask1_training_part1.txt",
                            "subtask1_training_part2.txt",
                            "subtask1_test_set_with_answer.json",
                        )
                    },
                    kind="zip",
                ),
            ),
            "UTF-8 with BOM, kept as is",
        ),
        DatasetSpec(
            "cmd",
            "CMD Chinese medical dialogue data, internal medicine part",
            "MIT",
            f"github.com/{_CMD[0]} @ {_CMD[1][:8]}",
            (
                _raw(_CMD, "样例_内科5000-6000.csv", CMD_QA_FILE),
                _raw(_CMD, "Data_数据/IM_内科/内科.txt", f"{_loc('cmd')}/internal_medicine.txt"),
                _raw(_CMD, "LICENSE", f"{_loc('cmd')}/LICENSE", optional=True),
            ),
            "GB18030 encoded, kept as is; files renamed to ASCII",
        ),
        DatasetSpec(
            "hetmc",
            "HET-MC sample release (Chunyu consultations): train 360, test 18 dialogues",
            "MIT",
            f"github.com/{_HETMC[0]} @ {_HETMC[1]}, sample_data/{{train,test}}.dialog",
            (
                _raw(_HETMC, "sample_data/train.dialog", f"{_loc('hetmc')}/train.dialog"),
                _raw(_HETMC, "sample_data/test.dialog", f"{_loc('hetmc')}/test.dialog"),
                _raw(_HETMC, "LICENSE", f"{_loc('hetmc')}/LICENSE", optional=True),
            ),
        ),
        DatasetSpec(
            "covid_zh",
            "COVID-Dialogue, Chinese (haodf.com): 1,088 dialogues",
            "no licence file; copyright haodf.com, research use with citation",
            f"github.com/{_COVID[0]} @ {_COVID[1][:8]}, CovidDialog/Chinese-COVID-dialogue-code/data/*.json",
            tuple(
                _raw(_COVID, f"CovidDialog/Chinese-COVID-dialogue-code/data/{n}", f"{_loc('covid_zh')}/{n}")
                for n in ("COVID-Dialogue-Dataset-Chinese.json", "train_data.json", "validate_data.json", "test_data.json")
            ),
        ),
        DatasetSpec(
            "cmexam",
            "CMExam, Chinese National Medical Licensing Examination, validation split: 6,811 questions "
            "(211 with several answers)",
            "Apache-2.0 (the authors ask for research use)",
            f"github.com/{_CMEXAM[0]} @ {_CMEXAM[1]}, val.xlsx (mirror of williamliujl/CMExam)",
            (_raw(_CMEXAM, "val.xlsx", f"{_loc('cmexam')}/val.xlsx"),),
            "one sheet; options in one cell separated by the two characters backslash and n",
        ),
    ]
    return {s.name: s for s in specs}


MANIFEST: dict[str, DatasetSpec] = _build_manifest()
"""The data sets with a public release, by name."""


MANUAL_SETS: dict[str, ManualSet] = {
    "chimed_qa": ManualSet(
        "chimed_qa",
        "ChiMed QA (the paper's open medical QA set; task chimed-qa)",
        DATA_LOCATIONS["chimed_qa"],
        "No public copy: the ChiMed-GPT authors release it only under a signed data-use contract.",
        (
            (CHIMED_QA_TEST, "the evaluation items (or test.json / test.csv / test.tsv / test.xlsx)"),
        ),
        (
            'JSON lines, UTF-8: {"question": "...", "answer_1": "...", "answer_2": "..."} per line '
            '(answer_2 optional, one item per reference answer; an optional "id" field is kept as the '
            "item id, otherwise the line number is)",
            'or the authors\' processed form {"prompt": ["question"], "output": ["answer"]} per line',
            "or the same columns in test.json / test.csv / test.tsv / test.xlsx",
        ),
        f"{DATA_LOCATIONS['cmd']}/ (CMD internal medicine, task cmd-qa: "
        "`chimed-eval data --datasets cmd`) is the public stand-in for open QA.",
    ),
    "chimst": ManualSet(
        "chimst",
        "ChiMST (the paper's medical NER set; tasks chimst-ner, chimst-ner-paper)",
        DATA_LOCATIONS["chimst"],
        "No public copy: released only under a signed data-use contract.",
        (
            (CHIMST_TEST, "the evaluation records (or test.bio / test.conll / test.txt, CoNLL)"),
            (f"{DATA_LOCATIONS['chimst']}/train.jsonl", "optional: the pool for few-shot examples (or train.bio)"),
        ),
        (
            'JSON lines, UTF-8: {"text": "...", "entities": [{"start": 0, "end": 3, "type": "症状"}]} '
            "with character offsets, start inclusive, end exclusive",
            "or CoNLL BIO (.bio/.conll/.txt): one character and its tag per line separated by "
            "whitespace (B-type / I-type / O), a blank line between records",
            f"optional {DATA_LOCATIONS['chimst']}/types.txt: the type inventory, one type per line "
            "(default: the gold types in order of first appearance)",
        ),
        f"{DATA_LOCATIONS['ccks2019']}/ (`chimed-eval data --datasets ccks2019`) is the public clinical NER set.",
    ),
}
"""The data sets with no public copy, by name: where to put them and in what format."""
