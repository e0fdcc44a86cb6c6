"""Download the manifest's files through pooch, verify each against its sha256, install atomically.

pooch runs the sha256 check against a registry built from the manifest; the transfer is ours
(:mod:`chimed_eval.data.transfer`: a deadline for the whole download, a size cap from the
manifest, only the wanted archive members unpacked under a ratio cap); this module decides what
is missing, maps URLs onto a mirror, picks each destination out of an archive and turns failures
into errors that name the URL, the file and what to do.

Every download goes into a private staging folder inside the data dir, which is removed
afterwards (on Ctrl-C and SIGTERM too); a verified file is then moved into place with
``os.replace``. So a file that does not match is never written, a good file survives a bad forced
download, and nothing is left behind.
pooch is imported only when something must be downloaded (``pip install pooch``).
"""

from __future__ import annotations

import logging
import os
import shutil
import tempfile
import urllib.error
import urllib.parse
import urllib.request
import zipfile
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path, PurePosixPath
from typing import Any, Callable, Iterator, Literal

from chimed_eval.data.mirrors import MIRROR_ENV, Mirror, parse_mirror, source_url, tree_url
from chimed_eval.data.specs import DatasetSpec, Download, Manifest, select, shipped_manifest
from chimed_eval.data.transfer import (DEFAULT_DEADLINE, TransferError, copy_file, download, size_cap,
                            terminate_as_interrupt, unzip_members)
from chimed_eval.core.errors import ChimedEvalError, ConfigError, DataError
from chimed_eval.core.types import file_sha256

DEFAULT_TIMEOUT = 60.0
_USER_AGENT = "chimed-eval-data/0.1 (+pooch)"
POOCH_HINT = "downloading data needs pooch: pip install pooch"


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


# --------------------------------------------------------------------------------------------
# Mirror URL mapping


def resolve_base_url(base_url: str | None) -> str | None:
    """``base_url`` if given, else ``$CHIMED_EVAL_DATA_MIRROR``; empty means the official hosts."""
    if base_url is None:
        base_url = os.environ.get(MIRROR_ENV)
    return base_url.rstrip("/") if base_url else None


def mirror_url(url: str, base_url: str | None) -> str:
    """Map an official URL onto a mirror tree (``base_url + "/" + host + path``); see
    :func:`chimed_eval.data.mirrors.tree_url`, and :mod:`chimed_eval.data.mirrors` for the other layouts."""
    return tree_url(url, base_url)


def download_url(dl: Download, mirror: Mirror) -> str:
    """Where ``dl`` is fetched from under ``mirror`` (:func:`chimed_eval.data.mirrors.source_url`)."""
    return source_url(dl.url, mirror, dl.modelscope)


# --------------------------------------------------------------------------------------------
# pooch glue


def _is_valid(path: Path, expected: str) -> bool:
    return path.is_file() and file_sha256(path) == expected


def _pooch() -> Any:
    try:
        import pooch
    except ImportError:
        raise ConfigError(POOCH_HINT) from None
    return pooch


class _Downloader:
    """The downloader pooch calls: a bounded transfer (deadline, size cap; ``file://`` URLs copied
    under the same cap), remembering the sha256 of what it wrote, so that a checksum error can
    name the bytes it got."""

    def __init__(self, timeout: float, deadline: float, max_bytes: int) -> None:
        self.timeout = timeout
        self.deadline = deadline
        self.max_bytes = max_bytes
        self.sha256 = ""

    def __call__(self, url: str, output_file: str, pooch: Any, check_only: bool = False) -> None:
        if url.startswith("file:"):
            src = Path(urllib.request.url2pathname(urllib.parse.urlsplit(url).path))
            self.sha256 = copy_file(src, Path(output_file), self.max_bytes)
        else:
            self.sha256 = download(url, Path(output_file), max_bytes=self.max_bytes, deadline=self.deadline,
                                   timeout=self.timeout, headers={"User-Agent": _USER_AGENT})


@contextmanager
def _staging(data_dir: Path) -> Iterator[Path]:
    """A private folder inside the data dir (same file system: ``os.replace`` is atomic), removed
    afterwards whatever happens; pooch's own log lines are muted meanwhile (we log our own)."""
    logger = _pooch().get_logger()  # first: without pooch, nothing is created
    data_dir.mkdir(parents=True, exist_ok=True)
    tmp = Path(tempfile.mkdtemp(dir=data_dir, prefix=".download-", suffix=".part"))
    level = logger.level
    logger.setLevel(logging.WARNING)
    try:
        yield tmp
    finally:
        logger.setLevel(level)
        shutil.rmtree(tmp, ignore_errors=True)


def _download_error(url: str, exc: BaseException, data_dir: Path, dl: Download) -> DownloadError:
    if isinstance(exc, TransferError):
        why = exc.why
    elif isinstance(exc, urllib.error.HTTPError):
        why = f"HTTP {exc.code} {exc.reason}"
    elif isinstance(exc, urllib.error.URLError):
        why = f"{type(exc.reason).__name__}: {exc.reason}"
    else:
        why = f"{type(exc).__name__}: {exc}"
    dests = sorted(dl.files)
    shown = "\n".join(f"  {data_dir / d}  (sha256 {dl.files[d]})" for d in dests[:3])
    if len(dests) > 3:
        shown += f"\n  ... and {len(dests) - 3} more files ({', '.join(sorted({str(PurePosixPath(d).parent) for d in dests}))})"
    via = f" (mirror of {dl.url})" if url != tree_url(dl.url, None) else ""
    unpack = " and unzip it" if dl.kind == "zip" else ""
    return DownloadError(
        url,
        f"could not download {url}{via}: {why}.\n"
        f"If this machine cannot reach it, download {dl.url} elsewhere{unpack} and place the "
        f"files by hand:\n{shown}\n"
        f"or use a mirror: --mirror / ${MIRROR_ENV} (hf-mirror.com or hf:URL for files on huggingface.co, "
        "modelscope, or a URL or folder laid out as base/host/path), or $HF_ENDPOINT.",
    )


def _mismatch(dest: Path, url: str, expected: str, actual: str) -> ChecksumError:
    note = f"; the existing {dest.name} (which does not match either) was left untouched" if dest.exists() else ""
    return ChecksumError(dest, url, expected, actual, note)


def _retrieve(url: str, name: str, sha: str | None, staging: Path, dl: Download, data_dir: Path,
              timeout: float, deadline: float) -> Path:
    """pooch fetches ``url`` into ``staging/name`` through our bounded downloader, checked against
    ``sha`` (None: unchecked); returns the path. Failures become our errors."""
    pooch = _pooch()
    registry = pooch.create(path=staging, base_url="", registry={name: f"sha256:{sha}" if sha else None},
                            urls={name: url})
    downloader = _Downloader(timeout, deadline, size_cap(dl.size))
    try:
        return Path(registry.fetch(name, downloader=downloader))
    except ChimedEvalError:
        raise
    except (OSError, TransferError) as exc:  # urllib's errors are OSErrors
        raise _download_error(url, exc, data_dir, dl) from exc
    except ValueError as exc:  # pooch: the hash does not match
        if not downloader.sha256 or downloader.sha256 == sha:
            raise _download_error(url, exc, data_dir, dl) from exc
        raise _mismatch(data_dir / name, url, str(sha), downloader.sha256) from None


def _unzip(archive: Path, url: str, wanted: list[str]) -> dict[str, Path]:
    """The archive members that may hold the ``wanted`` names (see :func:`_zip_candidates`),
    unpacked under the caps of :func:`unzip_members`, after checking that the download is a zip
    at all (a login page is not)."""
    if not zipfile.is_zipfile(archive):
        raise DownloadError(url, f"{url} did not return a zip archive; is the URL or mirror right?")
    try:
        with zipfile.ZipFile(archive) as zf:
            names = [i.filename for i in zf.infolist() if not i.is_dir()]
        members = sorted({m for w in wanted for m in _zip_candidates(names, w)})
        return unzip_members(archive, members, archive.parent / "unzipped", url)
    except (zipfile.BadZipFile, EOFError) as exc:  # CRC error, truncated member
        raise DataError(archive, None, None, f"the archive {url} is damaged: {exc}") from exc


def _zip_candidates(members: list[str], wanted: str) -> list[str]:
    """Extracted members for ``wanted``: its exact name, else the same file name anywhere
    (``__MACOSX`` ignored)."""
    if wanted in members:
        return [wanted]
    base = PurePosixPath(wanted).name
    return [m for m in members if PurePosixPath(m).name == base and "__MACOSX" not in m]


def _install(src: Path, dest: Path, expected: str, url: str) -> None:
    """Move a staged file into place if its sha256 is ``expected`` (else :class:`ChecksumError`)."""
    actual = file_sha256(src)
    if actual != expected:
        raise _mismatch(dest, url, expected, actual)
    dest.parent.mkdir(parents=True, exist_ok=True)
    os.replace(src, dest)


def _fetch_download(spec: DatasetSpec, dl: Download, data_dir: Path, mirror: Mirror, force: bool,
                    timeout: float, deadline: float, log: Callable[[str], None]) -> list[FetchResult]:
    url = download_url(dl, mirror)
    todo = {d: sha for d, sha in dl.files.items() if force or not _is_valid(data_dir / d, sha)}
    results = [FetchResult(spec.name, d, "present", url, sha) for d, sha in dl.files.items() if d not in todo]
    if not todo:
        return results
    log(f"{spec.name}: downloading {url}")
    with _staging(data_dir) as staging:
        if dl.kind == "file":
            (dest, sha), = todo.items()
            got = _retrieve(url, dest, sha, staging, dl, data_dir, timeout, deadline)
            (data_dir / dest).parent.mkdir(parents=True, exist_ok=True)
            os.replace(got, data_dir / dest)  # verified by pooch against the registry
            return results + [FetchResult(spec.name, dest, "downloaded", url, sha)]
        archive = _retrieve(url, "archive.zip", None, staging, dl, data_dir, timeout, deadline)
        unpacked = _unzip(archive, url, [dl.member_for(dest) for dest in todo])
        members = sorted(unpacked)
        for dest, sha in todo.items():
            found = _zip_candidates(members, dl.member_for(dest))
            if not found:
                raise DataError(data_dir / dest, None, None,
                                f"the archive {url} has no member {dl.member_for(dest)!r} (it holds: "
                                f"{', '.join(members[:8])}, ...)")
            first_error: ChecksumError | None = None
            for member in found:
                try:
                    _install(unpacked[member], data_dir / dest, sha, f"{url} [{member}]")
                    break
                except ChecksumError as exc:
                    first_error = first_error or exc
            else:
                assert first_error is not None
                raise first_error
            results.append(FetchResult(spec.name, dest, "downloaded", url, sha))
    return results


def fetch_datasets(
    names: list[str] | None,
    data_dir: Path,
    *,
    base_url: str | Mirror | None = None,
    force: bool = False,
    log: Callable[[str], None] = print,
    manifest: Manifest | None = None,
    timeout: float = DEFAULT_TIMEOUT,
    deadline: float = DEFAULT_DEADLINE,
) -> list[FetchResult]:
    """Download the named data sets (all when ``names`` is None) into ``data_dir``; verify them.

    Files already present with the right sha256 are kept and not downloaded (``force`` downloads
    them again). Each file is moved into place only once its sha256 matches the manifest; a
    mismatch raises :class:`ChecksumError` naming the file, the expected and the actual hash, and
    leaves nothing new in place. An unreachable URL raises :class:`DownloadError` naming it and
    saying where to place the files by hand. The first error stops the fetch (files finished
    before it stay, verified).

    Each download (one URL) must finish within ``deadline`` seconds and stops as soon as it
    passes the size the manifest gives (plus a small slack); an archive unpacks only the wanted
    members, under a decompression-ratio cap (:mod:`chimed_eval.data.transfer`). SIGTERM, like
    Ctrl-C, raises :class:`KeyboardInterrupt` meanwhile, so no partial download stays behind.

    Mirrors: ``base_url`` (default ``$CHIMED_EVAL_DATA_MIRROR``) is any ``--mirror`` form: a
    mirror tree (URL or folder, ``base/host/path``), a Hugging Face endpoint (``hf-mirror.com``,
    ``hf:URL``) or ``modelscope``; without one, ``$HF_ENDPOINT`` serves the files hosted on
    huggingface.co (:mod:`chimed_eval.data.mirrors`).
    ``manifest`` replaces the shipped manifest (tests pass their own).
    """
    manifest = shipped_manifest() if manifest is None else manifest
    specs = select(names, manifest)
    mirror = base_url if isinstance(base_url, Mirror) else parse_mirror(base_url)
    data_dir = Path(data_dir)
    with terminate_as_interrupt():
        return _fetch_all(specs, data_dir, mirror, force, timeout, deadline, log)


def _fetch_all(specs: list[DatasetSpec], data_dir: Path, base: Mirror, force: bool, timeout: float,
               deadline: float, log: Callable[[str], None]) -> list[FetchResult]:
    results: list[FetchResult] = []
    for spec in specs:
        got: list[FetchResult] = []
        for dl in spec.downloads:
            try:
                got += _fetch_download(spec, dl, data_dir, base, force, timeout, deadline, log)
            except (DownloadError, DataError) as exc:
                if not dl.optional:
                    raise
                first_line = str(exc).splitlines()[0]
                log(f"{spec.name}: warning: optional {', '.join(sorted(dl.files))} not fetched: {first_line}")
                url = download_url(dl, base)
                got += [FetchResult(spec.name, d, "unavailable", url, s)
                        for d, s in dl.files.items() if not _is_valid(data_dir / d, s)]
        n_new = sum(r.action == "downloaded" for r in got)
        n_old = sum(r.action == "present" for r in got)
        n_off = sum(r.action == "unavailable" for r in got)
        skipped = f", {n_off} optional unavailable" if n_off else ""
        log(f"{spec.name}: {n_new} downloaded, {n_old} already present{skipped}; "
            f"sha256 verified -> {data_dir / _common_root(spec)}")
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
