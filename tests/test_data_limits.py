"""``chimed-eval data`` ends and stays small whatever the server does (issue 22, item 16).

Servers on 127.0.0.1 that misbehave on purpose: one that drips a byte at a time (never tripping
a read timeout), one that sends an endless body, one that announces a huge body, one that serves
a zip bomb made here. Each download must stop with an error naming the URL and leave nothing in
the data dir; SIGTERM and Ctrl-C must remove the partial download.
"""

from __future__ import annotations

import http.server
import json
import os
import signal
import subprocess
import sys
import threading
import time
from pathlib import Path
from typing import Iterator

import pytest

from conftest import default_sigint
from test_data_fetch import leftovers, make_zip, official, quiet, sha

from chimed_eval.data import sets as data
from chimed_eval.data.sets import DatasetSpec, Download, DownloadError
from chimed_eval.core.errors import DataError

ROOT = Path(__file__).resolve().parents[1]


class Misbehaving:
    """A server whose every GET runs ``mode``: ``drip`` (1 byte per 20 ms of a announced 10^6),
    ``endless`` (64 KiB chunks, no length, until 20 MB), ``huge`` (announces 10 GB), or serves
    ``body`` as is. ``sent`` counts the body bytes written."""

    def __init__(self, mode: str, body: bytes = b"") -> None:
        self.sent = 0
        self.started = threading.Event()
        owner = self

        class Handler(http.server.BaseHTTPRequestHandler):
            def log_message(self, *args: object) -> None:
                pass

            def do_GET(self) -> None:  # noqa: N802 (http.server's name)
                try:
                    owner.serve(self, mode, body)
                except (BrokenPipeError, ConnectionResetError):
                    pass

        self.httpd = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.httpd.daemon_threads = True
        self.url = f"http://127.0.0.1:{self.httpd.server_address[1]}"
        threading.Thread(target=self.httpd.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True).start()

    def serve(self, h: http.server.BaseHTTPRequestHandler, mode: str, body: bytes) -> None:
        h.send_response(200)
        if mode == "drip":
            h.send_header("Content-Length", str(10**6))
        elif mode == "huge":
            h.send_header("Content-Length", str(10**10))
        elif mode == "file":
            h.send_header("Content-Length", str(len(body)))
        h.end_headers()
        h.wfile.flush()
        if mode == "file":
            h.wfile.write(body)
            return
        chunk = b"x" if mode == "drip" else b"y" * (64 << 10)
        while self.sent < 20 << 20:
            h.wfile.write(chunk)
            h.wfile.flush()
            self.sent += len(chunk)
            self.started.set()
            if mode == "drip":
                time.sleep(0.02)

    def close(self) -> None:
        self.httpd.shutdown()
        self.httpd.server_close()


@pytest.fixture
def misbehaving() -> Iterator[list[Misbehaving]]:
    servers: list[Misbehaving] = []
    yield servers
    for s in servers:
        s.close()


def one_file(size: int) -> dict[str, DatasetSpec]:
    dl = Download(official("repo/abc/big.csv"), {"alpha/big.csv": sha(b"x" * size)}, size=size)
    return {"alpha": DatasetSpec("alpha", "one file", "MIT", "example.org", (dl,))}


def test_a_dripping_server_stops_at_the_deadline(misbehaving: list[Misbehaving], tmp_path: Path) -> None:
    """One byte every 20 ms never trips the 60 s read timeout; the whole-download deadline ends it."""
    srv = Misbehaving("drip")
    misbehaving.append(srv)
    with pytest.raises(DownloadError) as info:
        data.fetch_datasets(["alpha"], tmp_path / "data", base_url=srv.url, log=quiet, manifest=one_file(10**6),
                   timeout=60, deadline=0.5)
    msg = str(info.value)
    assert "deadline of 0.5 s" in msg and "--deadline" in msg and "/example.org/repo/abc/big.csv" in msg
    assert srv.sent < 10**6
    assert leftovers(tmp_path / "data") == [] and not (tmp_path / "data/alpha").exists()


def test_an_endless_body_stops_at_the_manifest_size(misbehaving: list[Misbehaving], tmp_path: Path) -> None:
    srv = Misbehaving("endless")
    misbehaving.append(srv)
    with pytest.raises(DownloadError) as info:
        data.fetch_datasets(["alpha"], tmp_path / "data", base_url=srv.url, log=quiet, manifest=one_file(1000))
    from chimed_eval.data.transfer import size_cap

    cap = size_cap(1000)
    assert f"more than the {cap} bytes" in str(info.value) and cap < 200_000
    assert leftovers(tmp_path / "data") == [] and not (tmp_path / "data/alpha").exists()


def test_an_announced_huge_body_is_refused_before_reading(misbehaving: list[Misbehaving], tmp_path: Path) -> None:
    srv = Misbehaving("huge")
    misbehaving.append(srv)
    with pytest.raises(DownloadError, match="announced 10000000000 bytes"):
        data.fetch_datasets(["alpha"], tmp_path / "data", base_url=srv.url, log=quiet, manifest=one_file(1000))
    assert leftovers(tmp_path / "data") == []


def test_a_file_mirror_is_capped_too(tmp_path: Path) -> None:
    mirror = tmp_path / "mirror/example.org/repo/abc"
    mirror.mkdir(parents=True)
    (mirror / "big.csv").write_bytes(b"z" * 300_000)
    with pytest.raises(DownloadError, match="more than the"):
        data.fetch_datasets(["alpha"], tmp_path / "data", base_url=(tmp_path / "mirror").as_uri(), log=quiet,
                   manifest=one_file(1000))
    assert leftovers(tmp_path / "data") == []


def test_a_zip_bomb_is_refused_before_unpacking(misbehaving: list[Misbehaving], tmp_path: Path) -> None:
    """20 MB of zeros in a 20 KB zip: refused by the ratio cap, nothing unpacked or written."""
    bomb = make_zip({"Task1/part1.txt": bytes(20 << 20), "other.txt": b"small"})
    assert len(bomb) < 100_000
    srv = Misbehaving("file", bomb)
    misbehaving.append(srv)
    dl = Download(official("repo/abc/bomb.zip"), {"beta/part1.txt": sha(b"wanted")}, kind="zip", size=len(bomb))
    manifest = {"beta": DatasetSpec("beta", "a zip", "MIT", "example.org", (dl,))}
    with pytest.raises(DataError) as info:
        data.fetch_datasets(["beta"], tmp_path / "data", base_url=srv.url, log=quiet, manifest=manifest)
    msg = str(info.value)
    assert "zip bomb" in msg and "'Task1/part1.txt'" in msg and str(20 << 20) in msg and "bomb.zip" in msg
    assert [p for p in (tmp_path / "data").rglob("*") if p.is_file()] == []


def test_only_the_wanted_members_are_unpacked(misbehaving: list[Misbehaving], tmp_path: Path) -> None:
    """A bomb beside the wanted member is never unpacked: the wanted file arrives."""
    archive = make_zip({"data/wanted.txt": b"wanted", "junk/bomb.bin": bytes(20 << 20)})
    srv = Misbehaving("file", archive)
    misbehaving.append(srv)
    dl = Download(official("repo/abc/mixed.zip"), {"beta/wanted.txt": sha(b"wanted")}, kind="zip", size=len(archive))
    manifest = {"beta": DatasetSpec("beta", "a zip", "MIT", "example.org", (dl,))}
    [res] = data.fetch_datasets(["beta"], tmp_path / "data", base_url=srv.url, log=quiet, manifest=manifest)
    assert res.action == "downloaded" and (tmp_path / "data/beta/wanted.txt").read_bytes() == b"wanted"
    assert [p.name for p in (tmp_path / "data").rglob("*") if p.is_file()] == ["wanted.txt"]


@pytest.mark.parametrize("sig", [signal.SIGTERM, signal.SIGINT])
def test_a_signal_removes_the_partial_download(misbehaving: list[Misbehaving], tmp_path: Path, sig: int) -> None:
    """``chimed-eval data`` killed mid-download (SIGTERM) or interrupted (Ctrl-C) exits 130 with a
    one-line note and leaves no ``.download-*.part`` folder behind."""
    srv = Misbehaving("drip")
    misbehaving.append(srv)
    out = tmp_path / "data"
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    proc = subprocess.Popen(
        [sys.executable, "-m", "chimed_eval.cli.app", "data", "--datasets", "cmexam", "--mirror", srv.url,
         "--data-dir", str(out)],
        stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=env, preexec_fn=default_sigint)
    try:
        assert srv.started.wait(60), proc.stderr.read() if proc.poll() is not None else "no request"
        while not leftovers(out):  # the staging folder exists once bytes flow
            time.sleep(0.02)
        proc.send_signal(sig)
        _, err = proc.communicate(timeout=60)
    finally:
        if proc.poll() is None:
            proc.kill()
    assert proc.returncode == 130, err
    assert "interrupted" in err and "Traceback" not in err
    assert leftovers(out) == [] and not list(out.glob(".download-*"))


def test_deadline_must_be_positive(capsys: pytest.CaptureFixture[str]) -> None:
    from chimed_eval.cli.app import main

    with pytest.raises(SystemExit) as info:
        main(["data", "--deadline", "0"])
    err = capsys.readouterr().err
    assert info.value.code == 2 and "--deadline" in err and "positive number of seconds" in err


def test_every_shipped_download_has_its_size(shared_data: Path) -> None:
    """The manifest's sizes are those of the released files (the archives' sizes were read from
    the pinned copies), so the caps never refuse a good download."""
    raw = json.loads(data.MANIFEST_FILE.read_text(encoding="utf-8"))
    assert all(isinstance(d.get("size"), int) for s in raw["datasets"] for d in s["downloads"])
    for spec in data.MANIFEST.values():
        for dl in spec.downloads:
            assert dl.size is not None, dl.url
            if dl.kind == "file":
                [dest] = dl.files
                assert (shared_data / dest).stat().st_size == dl.size, dl.url
            else:  # the archive is larger than nothing and smaller than what it yields plus headers
                unpacked = sum((shared_data / dest).stat().st_size for dest in dl.files)
                assert 0 < dl.size < 4 * unpacked, dl.url
